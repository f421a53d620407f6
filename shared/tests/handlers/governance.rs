//! Governance in-process: a token backs at most one vote per proposal. A vote locks the stake it
//! weighed until the proposal's voting ends; votes after that are refused.

use crate::support::{TestApp, TestResponse, event};
use serde_json::{Value, json};
use shared::handlers::{
    BALANCE, CREATE_PROPOSAL, LIST_PROPOSALS, MINT, STAKE, TRANSFER, UNSTAKE, VOTE,
};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

const TITLE: &str = "Lower the fees";
const DESCRIPTION: &str = "Halve the platform fee for jobs on the bronze tier, for a quarter.";
/// Past the default voting period of 168 hours.
const AFTER_THE_DEFAULT_PERIOD: Duration = Duration::hours(169);

async fn post(app: &TestApp, path: &str, token: &str, body: Value) -> TestResponse {
    let request = event("POST", &format!("/api/tokenomics/{path}"))
        .bearer(token)
        .json(&body)
        .build();
    match path {
        "mint" => app.call(&MINT, request).await,
        "stake" => app.call(&STAKE, request).await,
        "unstake" => app.call(&UNSTAKE, request).await,
        "transfer" => app.call(&TRANSFER, request).await,
        "proposals" => app.call(&CREATE_PROPOSAL, request).await,
        "vote" => app.call(&VOTE, request).await,
        _ => unreachable!("no such route here: {path}"),
    }
}

/// A new user's token and wallet, with `amount` tokens minted and staked (none for "0").
async fn staker(app: &TestApp, admin: &str, amount: &str) -> (String, String) {
    let (_, token) = app.user_with_token().await;
    let address = app.wallet(&token).await;
    if amount != "0" {
        let body = json!({"address": address, "amount": amount});
        let minted = post(app, "mint", admin, body.clone()).await;
        assert_eq!(minted.status(), 200, "{}", minted.text());
        let staked = post(app, "stake", &token, body).await;
        assert_eq!(staked.status(), 200, "{}", staked.text());
    }
    (token, address)
}

/// A new proposal's id, with `extra` fields in the request (e.g. `voting_period_hours`).
async fn propose(app: &TestApp, token: &str, address: &str, extra: Value) -> String {
    let mut body = json!({"title": TITLE, "description": DESCRIPTION, "proposer": address});
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    let created = post(app, "proposals", token, body).await;
    assert_eq!(created.status(), 201, "{}", created.text());
    created.json()["proposalId"].as_str().unwrap().to_owned()
}

async fn cast(app: &TestApp, token: &str, voter: &str, proposal_id: &str) -> TestResponse {
    let body = json!({"proposal_id": proposal_id, "voter": voter, "vote": true});
    post(app, "vote", token, body).await
}

async fn unstake_amount(app: &TestApp, token: &str, address: &str, amount: &str) -> TestResponse {
    post(
        app,
        "unstake",
        token,
        json!({"address": address, "amount": amount}),
    )
    .await
}

async fn wallet_figures(app: &TestApp, token: &str) -> Value {
    let response = app
        .call(
            &BALANCE,
            event("GET", "/api/tokenomics/balance")
                .bearer(token)
                .build(),
        )
        .await;
    assert_eq!(response.status(), 200, "{}", response.text());
    response.json()
}

/// Every proposal the listing answers, walking its pages.
async fn every_proposal(app: &TestApp, token: &str) -> Vec<Value> {
    let mut query = "limit=100".to_owned();
    let mut proposals = Vec::new();
    loop {
        let page = app
            .call(
                &LIST_PROPOSALS,
                event("GET", "/api/tokenomics/proposals")
                    .bearer(token)
                    .query(&query)
                    .build(),
            )
            .await;
        assert_eq!(page.status(), 200, "{}", page.text());
        let page = page.json();
        proposals.extend(page["proposals"].as_array().unwrap().iter().cloned());
        let Some(cursor) = page["next_cursor"].as_str() else {
            return proposals;
        };
        query = format!("limit=100&cursor={cursor}");
    }
}

/// The proposal as the listing answers it.
async fn listed(app: &TestApp, token: &str, proposal_id: &str) -> Value {
    every_proposal(app, token)
        .await
        .into_iter()
        .find(|proposal| proposal["id"] == proposal_id)
        .unwrap_or_else(|| panic!("proposal {proposal_id} not listed"))
}

fn time_of(text: &Value) -> OffsetDateTime {
    OffsetDateTime::parse(text.as_str().unwrap(), &Rfc3339).unwrap()
}

#[tokio::test]
async fn the_same_stake_cannot_vote_twice_on_a_proposal() {
    // Issue 12: A stakes 100 and votes; A unstakes, sends the tokens to B; B stakes and votes.
    let app = TestApp::new().await;
    let (_, admin) = app.admin_with_token().await;
    let (a, a_wallet) = staker(&app, &admin, "100").await;
    let (b, b_wallet) = staker(&app, &admin, "0").await;
    let proposal_id = propose(&app, &a, &a_wallet, json!({})).await;
    let voted = cast(&app, &a, &a_wallet, &proposal_id).await;
    assert_eq!(voted.status(), 200, "{}", voted.text());

    let refused = unstake_amount(&app, &a, &a_wallet, "100").await;
    assert_eq!(refused.status(), 409, "{}", refused.text());
    let detail = refused.json()["detail"].as_str().unwrap().to_owned();
    let voting_ends_at = listed(&app, &a, &proposal_id).await["voting_ends_at"].clone();
    assert!(
        detail.contains("100 ") && detail.contains("locked"),
        "{detail}"
    );
    assert!(
        detail.contains(voting_ends_at.as_str().unwrap()),
        "names when the unstake becomes possible: {detail}"
    );

    // The rest of the attack, as far as it goes.
    let sent = post(
        &app,
        "transfer",
        &a,
        json!({"from_address": a_wallet, "to_address": b_wallet, "amount": "100"}),
    )
    .await;
    assert_eq!(
        sent.status(),
        409,
        "A's balance holds nothing: {}",
        sent.text()
    );
    let staked = post(
        &app,
        "stake",
        &b,
        json!({"address": b_wallet, "amount": "100"}),
    )
    .await;
    assert_eq!(staked.status(), 409, "{}", staked.text());
    let second = cast(&app, &b, &b_wallet, &proposal_id).await;
    assert_eq!(
        second.status(),
        422,
        "B has nothing staked: {}",
        second.text()
    );

    let proposal = listed(&app, &a, &proposal_id).await;
    assert_eq!(proposal["votesFor"], "100");
    let figures = wallet_figures(&app, &a).await;
    assert_eq!(
        (&figures["staked"], &figures["locked"], &figures["balance"]),
        (&json!("100"), &json!("100"), &json!("0"))
    );
}

#[tokio::test]
async fn a_vote_and_an_unstake_at_once_never_both_succeed() {
    let app = TestApp::new().await;
    let (_, admin) = app.admin_with_token().await;
    let (proposer, proposer_wallet) = staker(&app, &admin, "0").await;
    let proposal_id = propose(&app, &proposer, &proposer_wallet, json!({})).await;
    let mut votes_won = 0;
    for round in 0..10 {
        let (token, wallet) = staker(&app, &admin, "10").await;
        let voting = cast(&app, &token, &wallet, &proposal_id);
        let unstaking = unstake_amount(&app, &token, &wallet, "10");
        // Each goes first in turn, so that each wins some of the races.
        let (voted, unstaked) = if round % 2 == 0 {
            tokio::join!(voting, unstaking)
        } else {
            let (unstaked, voted) = tokio::join!(unstaking, voting);
            (voted, unstaked)
        };
        let outcome = (voted.status(), unstaked.status());
        assert!(
            matches!(outcome, (200, 409) | (409, 200) | (422, 200)),
            "round {round}: {outcome:?} {} {}",
            voted.text(),
            unstaked.text()
        );
        let figures = wallet_figures(&app, &token).await;
        if voted.status() == 200 {
            votes_won += 1;
            assert_eq!(
                (&figures["staked"], &figures["locked"]),
                (&json!("10"), &json!("10")),
                "round {round}"
            );
        } else {
            assert_eq!(
                (&figures["staked"], &figures["locked"], &figures["balance"]),
                (&json!("0"), &json!("0"), &json!("10")),
                "round {round}"
            );
        }
    }
    let proposal = listed(&app, &proposer, &proposal_id).await;
    assert_eq!(proposal["votesFor"], json!((votes_won * 10).to_string()));
}

#[tokio::test]
async fn the_stake_unlocks_when_voting_ends() {
    let app = TestApp::new().await;
    let later = TestApp::later(AFTER_THE_DEFAULT_PERIOD).await;
    let (_, admin) = app.admin_with_token().await;
    let (token, wallet) = staker(&app, &admin, "100").await;
    let (late_voter, late_wallet) = staker(&app, &admin, "5").await;
    let before = OffsetDateTime::now_utc();
    let proposal_id = propose(&app, &token, &wallet, json!({})).await;
    let proposal = listed(&app, &token, &proposal_id).await;
    assert_eq!(proposal["status"], "active");
    let ends = time_of(&proposal["voting_ends_at"]);
    assert!(
        ends >= before + Duration::hours(168) - Duration::seconds(1)
            && ends <= OffsetDateTime::now_utc() + Duration::hours(168),
        "{ends}"
    );
    assert_eq!(
        cast(&app, &token, &wallet, &proposal_id).await.status(),
        200
    );
    assert_eq!(wallet_figures(&app, &token).await["locked"], "100");
    assert_eq!(
        unstake_amount(&app, &token, &wallet, "0.000000000000000001")
            .await
            .status(),
        409
    );

    assert_eq!(
        listed(&later, &token, &proposal_id).await["status"],
        "closed"
    );
    assert_eq!(wallet_figures(&later, &token).await["locked"], "0");
    let closed = cast(&later, &late_voter, &late_wallet, &proposal_id).await;
    assert_eq!(closed.status(), 409, "{}", closed.text());
    assert!(
        closed.json()["detail"].as_str().unwrap().contains("closed"),
        "{}",
        closed.text()
    );
    let unstaked = unstake_amount(&later, &token, &wallet, "100").await;
    assert_eq!(unstaked.status(), 200, "{}", unstaked.text());
    assert_eq!(unstaked.json()["totalStaked"], "0");

    let proposal = listed(&later, &token, &proposal_id).await;
    assert_eq!(
        (&proposal["votesFor"], &proposal["votesAgainst"]),
        (&json!("100"), &json!("0")),
        "the refused late vote counted nothing"
    );
    assert_eq!(wallet_figures(&later, &late_voter).await["locked"], "0");
}

#[tokio::test]
async fn the_largest_active_lock_binds_and_the_refusal_says_when_it_frees() {
    let app = TestApp::new().await;
    let in_two_hours = TestApp::later(Duration::hours(2)).await;
    let (_, admin) = app.admin_with_token().await;
    let (token, wallet) = staker(&app, &admin, "100").await;
    let week = propose(&app, &token, &wallet, json!({})).await;
    let hour = propose(&app, &token, &wallet, json!({"voting_period_hours": 1})).await;
    assert_eq!(cast(&app, &token, &wallet, &week).await.status(), 200);
    let more = json!({"address": wallet, "amount": "50"});
    assert_eq!(post(&app, "mint", &admin, more.clone()).await.status(), 200);
    assert_eq!(post(&app, "stake", &token, more).await.status(), 200);
    assert_eq!(cast(&app, &token, &wallet, &hour).await.status(), 200);

    let figures = wallet_figures(&app, &token).await;
    assert_eq!(
        (&figures["staked"], &figures["locked"]),
        (&json!("150"), &json!("150"))
    );
    let refused = unstake_amount(&app, &token, &wallet, "50").await;
    assert_eq!(refused.status(), 409, "{}", refused.text());
    let hour_ends = listed(&app, &token, &hour).await["voting_ends_at"].clone();
    let detail = refused.json()["detail"].as_str().unwrap().to_owned();
    assert!(detail.contains(hour_ends.as_str().unwrap()), "{detail}");

    // Two hours on, only the week-long vote's 100 stay locked.
    assert_eq!(wallet_figures(&in_two_hours, &token).await["locked"], "100");
    let freed = unstake_amount(&in_two_hours, &token, &wallet, "50").await;
    assert_eq!(freed.status(), 200, "{}", freed.text());
    let refused = unstake_amount(&in_two_hours, &token, &wallet, "1").await;
    assert_eq!(refused.status(), 409, "{}", refused.text());
    let week_ends = listed(&app, &token, &week).await["voting_ends_at"].clone();
    let detail = refused.json()["detail"].as_str().unwrap().to_owned();
    assert!(detail.contains(week_ends.as_str().unwrap()), "{detail}");
    let figures = wallet_figures(&in_two_hours, &token).await;
    assert_eq!(
        (&figures["staked"], &figures["locked"], &figures["balance"]),
        (&json!("100"), &json!("100"), &json!("50"))
    );
}

#[tokio::test]
async fn an_unstake_beside_a_lock_is_replayed_from_its_idempotency_key() {
    let app = TestApp::new().await;
    let (_, admin) = app.admin_with_token().await;
    let (token, wallet) = staker(&app, &admin, "10").await;
    let proposal_id = propose(&app, &token, &wallet, json!({})).await;
    assert_eq!(
        cast(&app, &token, &wallet, &proposal_id).await.status(),
        200
    );
    let more = json!({"address": wallet, "amount": "4"});
    assert_eq!(post(&app, "mint", &admin, more.clone()).await.status(), 200);
    assert_eq!(post(&app, "stake", &token, more).await.status(), 200);
    let send = || {
        app.call(
            &UNSTAKE,
            event("POST", "/api/tokenomics/unstake")
                .bearer(&token)
                .header("idempotency-key", "beside-the-lock")
                .json(&json!({"address": wallet, "amount": "4"}))
                .build(),
        )
    };
    let first = send().await;
    assert_eq!(first.status(), 200, "{}", first.text());
    let again = send().await;
    assert_eq!(again.status(), 200, "{}", again.text());
    assert_eq!(again.json()["unstakedAmount"], "4");
    let figures = wallet_figures(&app, &token).await;
    assert_eq!(
        (&figures["staked"], &figures["locked"], &figures["balance"]),
        (&json!("10"), &json!("10"), &json!("4")),
        "moved once"
    );
}

#[tokio::test]
async fn the_voting_period_is_a_whole_number_of_hours_from_1_to_720() {
    let app = TestApp::new().await;
    let (_, token) = app.user_with_token().await;
    let wallet = app.wallet(&token).await;
    for hours in [1, 720] {
        let before = OffsetDateTime::now_utc();
        let id = propose(&app, &token, &wallet, json!({"voting_period_hours": hours})).await;
        let ends = time_of(&listed(&app, &token, &id).await["voting_ends_at"]);
        let period = Duration::hours(hours);
        assert!(
            ends >= before + period - Duration::seconds(1)
                && ends <= OffsetDateTime::now_utc() + period,
            "{hours} h: {ends}"
        );
    }
    for bad in [
        json!(0),
        json!(721),
        json!("x"),
        json!(1.5),
        json!(-1),
        json!(true),
    ] {
        let body = json!({"title": TITLE, "description": DESCRIPTION, "proposer": wallet, "voting_period_hours": bad});
        let refused = post(&app, "proposals", &token, body).await;
        assert_eq!(refused.status(), 422, "{bad}: {}", refused.text());
        assert_eq!(
            refused.header("content-type"),
            Some("application/problem+json")
        );
        let errors = refused.json()["errors"].clone();
        assert_eq!(errors.as_array().unwrap().len(), 1, "{bad}: {errors}");
        assert_eq!(errors[0]["field"], "voting_period_hours", "{bad}");
    }
    let theirs = every_proposal(&app, &token)
        .await
        .into_iter()
        .filter(|proposal| proposal["proposer"] == wallet.as_str())
        .count();
    assert_eq!(theirs, 2, "the refusals stored nothing");
}
