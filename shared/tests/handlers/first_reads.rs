//! Every route that declares a first read gets it from the rate limiter's one round trip: after
//! the limiter's `UpdateItem ‖ BatchGetItem`, the handler makes only the calls of its own work.
//! A route whose declared first read differs from what its handler reads would show a second read
//! here.

use crate::support::faults::FaultInjector;
use crate::support::{PASSWORD, TestApp, event};
use serde_json::json;
use shared::handlers::{
    GET_JOB, LOGIN, LOGOUT, ME, MINT, REAUTHENTICATE, REFRESH, REVOKE, STAKE, SUBMIT_JOB, UNSTAKE,
    VOTE,
};

const LIMITER: [&str; 2] = ["UpdateItem", "BatchGetItem"];

fn after_the_limiter(calls: &[&str]) -> Vec<String> {
    LIMITER
        .iter()
        .chain(calls)
        .map(|call| call.to_string())
        .collect()
}

#[tokio::test]
async fn first_reads_ride_in_the_rate_limiters_round_trip() {
    let injector = FaultInjector::start().await;
    let app = TestApp::with_fault_injector(&injector).await;
    let (username, token) = app.user_with_token().await;
    let (_, admin) = app.admin_with_token().await;
    let wallet = app.wallet(&token).await;
    let post = |path: &str, token: &str, body: serde_json::Value| {
        event("POST", path).bearer(token).json(&body).build()
    };
    let minted = post(
        "/api/tokenomics/mint",
        &admin,
        json!({"address": wallet, "amount": "10"}),
    );
    assert_eq!(app.call(&MINT, minted).await.status(), 200);
    let staked = post(
        "/api/tokenomics/stake",
        &token,
        json!({"address": wallet, "amount": "5"}),
    );
    assert_eq!(app.call(&STAKE, staked).await.status(), 200);
    let job = json!({"name": "render", "sla_tier": "gold", "cpu_required": 1, "memory_required": 1, "gpu_required": 0});
    let submitted = app
        .call(&SUBMIT_JOB, post("/api/scheduler/jobs", &token, job))
        .await;
    let job_id = submitted.json()["jobId"].as_str().unwrap().to_owned();
    let proposal = json!({"title": "Lower the fees", "description": "Halve the platform fee for bronze-tier jobs for one trial quarter.", "proposer": wallet});
    let created = app
        .call(
            &shared::handlers::CREATE_PROPOSAL,
            post("/api/tokenomics/proposals", &token, proposal),
        )
        .await;
    let proposal_id = created.json()["proposalId"].as_str().unwrap().to_owned();

    injector.observe();
    let login = json!({"username": username, "password": PASSWORD});
    let response = app
        .call(
            &LOGIN,
            event("POST", "/api/auth/login").json(&login).build(),
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        injector.calls(),
        after_the_limiter(&["TransactWriteItems", "UpdateItem", "TransactWriteItems"]),
        "login: the attempt's reservation (with its provisional failure events), then last_login, then the session (releasing the attempt, on the conditions that the credential and the session epoch are as read)"
    );
    let refresh_token = response.json()["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();

    injector.observe();
    let refresh = event("POST", "/api/auth/refresh")
        .json(&json!({"refresh_token": refresh_token}))
        .build();
    let response = app.call(&REFRESH, refresh).await;
    assert_eq!(response.status(), 200, "{}", response.text());
    assert_eq!(
        injector.calls(),
        after_the_limiter(&["TransactWriteItems"]),
        "refresh: the token, its session and its user read with the limiter, then the rotation"
    );

    injector.observe();
    let revoke = event("POST", "/api/auth/revoke")
        .json(&json!({"refresh_token": refresh_token}))
        .build();
    assert_eq!(app.call(&REVOKE, revoke).await.status(), 200);
    assert_eq!(
        injector.calls(),
        after_the_limiter(&["TransactWriteItems"]),
        "revoke: the same read, then the session's end and its event"
    );

    injector.observe();
    let get = event("GET", &format!("/api/scheduler/jobs/{job_id}"))
        .path_parameter("id", &job_id)
        .bearer(&token)
        .build();
    assert_eq!(app.call(&GET_JOB, get).await.status(), 200);
    assert_eq!(injector.calls(), after_the_limiter(&[]), "get-job");

    injector.observe();
    let vote = json!({"proposal_id": proposal_id, "voter": wallet, "vote": true});
    let response = app
        .call(&VOTE, post("/api/tokenomics/vote", &token, vote))
        .await;
    assert_eq!(response.status(), 200, "{}", response.text());
    assert_eq!(
        injector.calls(),
        after_the_limiter(&["TransactWriteItems"]),
        "vote"
    );

    injector.observe();
    let unstake = json!({"address": wallet, "amount": "1"});
    let response = app
        .call(&UNSTAKE, post("/api/tokenomics/unstake", &token, unstake))
        .await;
    assert_eq!(
        response.status(),
        409,
        "the vote locks the stake: {}",
        response.text()
    );
    assert_eq!(
        injector.calls(),
        after_the_limiter(&["TransactWriteItems"]),
        "unstake: its transaction, refused by the lock"
    );
}

/// Issue 15: an authenticated request reads its user, its token's revocation and its session in
/// the rate limiter's one BatchGetItem, beside the counter's UpdateItem: two round trips in all,
/// whether the session is live or not.
#[tokio::test]
async fn an_authenticated_request_checks_its_session_in_the_limiters_round_trip() {
    let injector = FaultInjector::start().await;
    let app = TestApp::with_fault_injector(&injector).await;
    let (_, token) = app.user_with_token().await;
    let me = || event("GET", "/api/auth/me").bearer(&token).build();

    injector.observe();
    assert_eq!(app.call(&ME, me()).await.status(), 200);
    assert_eq!(injector.calls(), after_the_limiter(&[]), "a live session");

    let logout = event("POST", "/api/auth/logout").bearer(&token).build();
    assert_eq!(app.call(&LOGOUT, logout).await.status(), 200);
    injector.observe();
    assert_eq!(app.call(&ME, me()).await.status(), 401);
    assert_eq!(injector.calls(), after_the_limiter(&[]), "an ended session");
}

/// Reauthenticate reads the credential and failed logins of the username its token states in
/// the limiter's round trip, then makes the calls of a login: the attempt's reservation (with its
/// provisional failure events), then its release beside one transaction (the session's
/// `auth_time`, the success event, the provisional events withdrawn).
#[tokio::test]
async fn reauthenticate_reads_the_credential_in_the_limiters_round_trip() {
    let injector = FaultInjector::start().await;
    let app = TestApp::with_fault_injector(&injector).await;
    let (_, token) = app.user_with_token().await;
    injector.observe();
    let request = event("POST", "/api/auth/reauthenticate")
        .bearer(&token)
        .json(&json!({"password": PASSWORD}))
        .build();
    let response = app.call(&REAUTHENTICATE, request).await;
    assert_eq!(response.status(), 200, "{}", response.text());
    assert_eq!(
        injector.calls(),
        after_the_limiter(&["TransactWriteItems", "UpdateItem", "TransactWriteItems"]),
        "the reservation, then the release beside the reauthentication's transaction"
    );
}
