//! Account recovery by email (issue 25), in process against the local server, which serves SES
//! v2 beside DynamoDB: the mail read back is what the SDK really sent (support/mail.rs).

use crate::support::faults::{FAULTS, FaultInjector, injected_at};
use crate::support::mail::mail_to;
use crate::support::{PASSWORD, TestApp, TestResponse, event, unique_username};
use serde_json::json;
use shared::handlers::{
    ADMIN_LIST_USERS, ME, PASSWORD_RESET_CONFIRM, PASSWORD_RESET_REQUEST, SUBMIT_JOB, VERIFY_EMAIL,
    VERIFY_EMAIL_RESEND,
};
use shared::store::keys;
use time::Duration;
use uuid::Uuid;

const NEW_PASSWORD: &str = "Quiet-Harbour-Lantern-7";
const REQUESTED: &str =
    r#"{"message":"If an account exists with that email, a password reset link has been sent."}"#;

fn email_of(username: &str) -> String {
    format!("{username}@example.com")
}

impl TestApp {
    async fn request_reset(&self, email: &str) -> TestResponse {
        let request = event("POST", "/api/auth/password-reset/request")
            .json(&json!({"email": email}))
            .build();
        self.call(&PASSWORD_RESET_REQUEST, request).await
    }

    async fn confirm_reset(&self, token: &str, password: &str) -> TestResponse {
        let request = event("POST", "/api/auth/password-reset/confirm")
            .json(&json!({"token": token, "new_password": password}))
            .build();
        self.call(&PASSWORD_RESET_CONFIRM, request).await
    }

    async fn verify(&self, token: &str) -> TestResponse {
        let request = event("POST", "/api/auth/verify-email")
            .json(&json!({"token": token}))
            .build();
        self.call(&VERIFY_EMAIL, request).await
    }

    async fn resend(&self, access: &str) -> TestResponse {
        let request = event("POST", "/api/auth/verify-email/resend")
            .bearer(access)
            .build();
        self.call(&VERIFY_EMAIL_RESEND, request).await
    }

    async fn me_of(&self, access: &str) -> TestResponse {
        let request = event("GET", "/api/auth/me").bearer(access).build();
        self.call(&ME, request).await
    }

    async fn user_id(&self, username: &str) -> Uuid {
        let user = self.state.store.user_by_username(username).await.unwrap();
        user.unwrap().id
    }
}

/// The reset tokens mailed to `email`, oldest first.
async fn reset_tokens(email: &str) -> Vec<String> {
    mail_to(email)
        .await
        .iter()
        .filter(|mail| mail.subject.contains("Reset"))
        .map(|mail| mail.token("reset-password"))
        .collect()
}

async fn verification_tokens(email: &str) -> Vec<String> {
    mail_to(email)
        .await
        .iter()
        .filter(|mail| mail.subject.contains("Verify"))
        .map(|mail| mail.token("verify-email"))
        .collect()
}

/// A new user (registered, logged in): its name, address and access token.
async fn user(app: &TestApp) -> (String, String, String) {
    let (username, access) = app.user_with_token().await;
    let email = email_of(&username);
    (username, email, access)
}

/// A new user and one reset token mailed to it.
async fn user_with_reset_token(app: &TestApp) -> (String, String, String, String) {
    let (username, email, access) = user(app).await;
    assert_eq!(app.request_reset(&email).await.text(), REQUESTED);
    let tokens = reset_tokens(&email).await;
    assert_eq!(tokens.len(), 1);
    (username, email, access, tokens[0].clone())
}

#[tokio::test]
async fn a_reset_mails_a_link_that_sets_a_new_password_once_and_ends_every_session() {
    let app = TestApp::new().await;
    let (username, email, access) = user(&app).await;
    let requested = app.request_reset(&email).await;
    assert_eq!(requested.status(), 200);
    assert_eq!(requested.text(), REQUESTED);

    let mails = mail_to(&email).await;
    let mail = mails
        .iter()
        .find(|mail| mail.subject.contains("Reset"))
        .unwrap();
    assert!(
        mail.body
            .contains("http://localhost:5173/reset-password?token="),
        "{mail:?}"
    );
    assert!(
        mail.body.contains("203.0.113.10"),
        "the mail names the IP that asked"
    );
    let token = mail.token("reset-password");
    assert_eq!(token.len(), 43);
    // Only the token's hash is stored.
    let hash = shared::domain::RecoveryToken::parse(&token).unwrap().hash();
    let stored = app.item(&keys::reset_token(hash.as_str())).await.unwrap();
    assert!(!format!("{stored:?}").contains(&token));

    let confirmed = app.confirm_reset(&token, NEW_PASSWORD).await;
    assert_eq!(confirmed.status(), 200, "{}", confirmed.text());
    assert_eq!(
        confirmed.json(),
        json!({"message": "Your password has been reset successfully."})
    );
    assert_eq!(
        app.me_of(&access).await.status(),
        401,
        "every session ended"
    );
    assert_eq!(app.login(&username, PASSWORD).await.status(), 401);
    assert_eq!(app.login(&username, NEW_PASSWORD).await.status(), 200);

    let again = app.confirm_reset(&token, "Another-Fine-Password-8").await;
    assert_eq!(again.status(), 400);
    assert_eq!(again.json()["detail"], "Invalid or expired reset token");
    let user_id = app.user_id(&username).await;
    let events = app.events(user_id, "password.reset").await;
    assert_eq!(events.len(), 1);
    assert!(!serde_json::to_string(&events).unwrap().contains(&token));
}

#[tokio::test]
async fn racing_confirms_of_one_token_make_one_reset() {
    let app = TestApp::new().await;
    let (username, _, _, token) = user_with_reset_token(&app).await;
    let (first, second) = tokio::join!(
        app.confirm_reset(&token, NEW_PASSWORD),
        app.confirm_reset(&token, "Another-Fine-Password-8"),
    );
    let mut statuses = [first.status(), second.status()];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 400], "{} / {}", first.text(), second.text());
    let winner = if first.status() == 200 {
        NEW_PASSWORD
    } else {
        "Another-Fine-Password-8"
    };
    assert_eq!(app.login(&username, winner).await.status(), 200);
    let user_id = app.user_id(&username).await;
    assert_eq!(app.events(user_id, "password.reset").await.len(), 1);
}

#[tokio::test]
async fn a_reset_kills_every_other_reset_token_of_the_user() {
    let app = TestApp::new().await;
    let (username, email, _, first) = user_with_reset_token(&app).await;
    app.request_reset(&email).await;
    let tokens = reset_tokens(&email).await;
    assert_eq!(tokens.len(), 2);
    // Two tokens racing: one reset.
    let (a, b) = tokio::join!(
        app.confirm_reset(&tokens[1], NEW_PASSWORD),
        app.confirm_reset(&first, "Another-Fine-Password-8"),
    );
    let mut statuses = [a.status(), b.status()];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 400], "{} / {}", a.text(), b.text());
    let user_id = app.user_id(&username).await;
    assert_eq!(app.events(user_id, "password.reset").await.len(), 1);
}

#[tokio::test]
async fn a_token_expires_after_its_minutes() {
    let app = TestApp::new().await;
    let (username, _, _, token) = user_with_reset_token(&app).await;
    let later = TestApp::later(Duration::minutes(60) + Duration::seconds(1)).await;
    let expired = later.confirm_reset(&token, NEW_PASSWORD).await;
    assert_eq!(expired.status(), 400);
    assert_eq!(expired.json()["detail"], "Invalid or expired reset token");
    let almost = TestApp::later(Duration::minutes(59)).await;
    assert_eq!(
        almost.confirm_reset(&token, NEW_PASSWORD).await.status(),
        200
    );
    assert_eq!(app.login(&username, NEW_PASSWORD).await.status(), 200);
}

#[tokio::test]
async fn a_weak_password_is_422_and_leaves_the_token_usable() {
    let app = TestApp::new().await;
    let (username, _, _, token) = user_with_reset_token(&app).await;
    let weak = app.confirm_reset(&token, "password").await;
    assert_eq!(weak.status(), 422);
    assert_eq!(weak.json()["errors"][0]["field"], "new_password");
    for wrong in ["", "not-a-token", &"A".repeat(43)] {
        let refused = app.confirm_reset(wrong, NEW_PASSWORD).await;
        assert_eq!(refused.status(), 400, "{wrong:?}");
        assert_eq!(refused.json()["detail"], "Invalid or expired reset token");
    }
    assert_eq!(app.confirm_reset(&token, NEW_PASSWORD).await.status(), 200);
    assert_eq!(app.login(&username, NEW_PASSWORD).await.status(), 200);
}

#[tokio::test]
async fn three_mails_an_hour_per_address_and_the_same_answer_beyond() {
    let app = TestApp::new().await;
    let (_, email, _) = user(&app).await;
    for _ in 0..5 {
        let answer = app.request_reset(&email).await;
        assert_eq!((answer.status(), answer.text()), (200, REQUESTED));
    }
    assert_eq!(reset_tokens(&email).await.len(), 3);
    // Counted in the table: another instance (another app) sees the same count.
    let other = TestApp::new().await;
    other.request_reset(&email).await;
    assert_eq!(reset_tokens(&email).await.len(), 3);
    let next_hour = TestApp::later(Duration::hours(1)).await;
    next_hour.request_reset(&email).await;
    assert_eq!(reset_tokens(&email).await.len(), 4);
}

/// An app whose clock reads `seconds` past the next full hour of the system's clock (negative:
/// before it).
async fn app_at_next_hour(seconds: i64) -> TestApp {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    TestApp::later(Duration::seconds(3600 - now.rem_euclid(3600) + seconds)).await
}

#[tokio::test]
async fn the_cap_holds_in_any_sixty_minutes_not_only_within_a_clock_hour() {
    let app = TestApp::new().await;
    let (_, email, access) = user(&app).await;
    let before_the_hour = app_at_next_hour(-60).await;
    for _ in 0..3 {
        before_the_hour.request_reset(&email).await;
    }
    assert_eq!(reset_tokens(&email).await.len(), 3);
    let after_the_hour = app_at_next_hour(60).await;
    let answer = after_the_hour.request_reset(&email).await;
    assert_eq!((answer.status(), answer.text()), (200, REQUESTED));
    assert_eq!(reset_tokens(&email).await.len(), 3);
    // An hour after the first three, their places are free again.
    let an_hour_on = app_at_next_hour(3600).await;
    for _ in 0..2 {
        an_hour_on.request_reset(&email).await;
    }
    assert_eq!(reset_tokens(&email).await.len(), 5);

    // The resend's cap likewise, and its Retry-After is when its oldest mail ages out: about
    // 3480 s, give or take the seconds the apps' clocks ran apart (each reads the system's
    // clock plus its own offset); the clock hour would say about 3540.
    for _ in 0..3 {
        assert_eq!(before_the_hour.resend(&access).await.status(), 202);
    }
    let capped = after_the_hour.resend(&access).await;
    assert_eq!(capped.status(), 429, "{}", capped.text());
    let retry_after: i64 = capped.header("retry-after").unwrap().parse().unwrap();
    assert!((3460..=3500).contains(&retry_after), "{retry_after}");
}

#[tokio::test]
async fn an_unknown_address_gets_the_same_answer_and_no_mail() {
    let app = TestApp::new().await;
    let (_, email, _) = user(&app).await;
    let unknown = format!("nobody-{}", email);
    let known_answer = app.request_reset(&email).await;
    let unknown_answer = app.request_reset(&unknown).await;
    assert_eq!(unknown_answer.status(), known_answer.status());
    assert_eq!(unknown_answer.text(), known_answer.text());
    let headers = |response: &TestResponse| {
        let mut names = response.header_names();
        names.retain(|name| !name.starts_with("x-ratelimit") && name != "x-correlation-id");
        names
    };
    assert_eq!(headers(&unknown_answer), headers(&known_answer));
    assert!(mail_to(&unknown).await.is_empty());
    let malformed = app.request_reset("not an address").await;
    assert_eq!(malformed.status(), 422);
}

#[tokio::test]
async fn a_reset_clears_the_usernames_lockout() {
    let app = TestApp::new().await;
    let (username, _, _, token) = user_with_reset_token(&app).await;
    for _ in 0..5 {
        app.login(&username, "Wrong-Password-1").await;
    }
    assert_eq!(app.login(&username, PASSWORD).await.status(), 423);
    assert_eq!(app.confirm_reset(&token, NEW_PASSWORD).await.status(), 200);
    assert_eq!(app.login(&username, NEW_PASSWORD).await.status(), 200);
}

#[tokio::test]
async fn registration_mails_a_verification_link_that_verifies_the_address_once() {
    let app = TestApp::new().await;
    let username = unique_username();
    let registered = app.register(&username).await;
    assert_eq!(registered.status(), 201);
    assert_eq!(registered.json()["email_verified"], false);
    let email = email_of(&username);
    let tokens = verification_tokens(&email).await;
    assert_eq!(tokens.len(), 1);
    let access = app.login(&username, PASSWORD).await.json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(app.me_of(&access).await.json()["email_verified"], false);

    let verified = app.verify(&tokens[0]).await;
    assert_eq!(verified.status(), 200, "{}", verified.text());
    assert_eq!(verified.json()["email_verified"], true);
    assert_eq!(app.me_of(&access).await.json()["email_verified"], true);
    let again = app.verify(&tokens[0]).await;
    assert_eq!(again.status(), 400);
    assert_eq!(
        again.json()["detail"],
        "Invalid or expired verification token"
    );
    let user_id = app.user_id(&username).await;
    assert_eq!(app.events(user_id, "email.verified").await.len(), 1);

    // The admin user list says so too.
    let (_, admin) = app.admin_with_token().await;
    let request = event("GET", "/api/admin/users")
        .bearer(&admin)
        .query(&format!("q={username}"))
        .build();
    let listed = app.call(&ADMIN_LIST_USERS, request).await;
    assert_eq!(
        listed.json()["users"][0]["email_verified"],
        true,
        "{}",
        listed.text()
    );
    // Verified: nothing to resend.
    assert_eq!(app.resend(&access).await.status(), 400);
}

#[tokio::test]
async fn a_verification_link_expires_and_a_resend_mails_a_new_one_three_times_an_hour() {
    let app = TestApp::new().await;
    let (_, email, access) = user(&app).await;
    let first = verification_tokens(&email).await[0].clone();
    let later = TestApp::later(Duration::hours(48) + Duration::seconds(1)).await;
    assert_eq!(later.verify(&first).await.status(), 400);
    for _ in 0..3 {
        let resent = app.resend(&access).await;
        assert_eq!(resent.status(), 202, "{}", resent.text());
    }
    let capped = app.resend(&access).await;
    assert_eq!(capped.status(), 429);
    assert!(capped.header("retry-after").is_some());
    let tokens = verification_tokens(&email).await;
    assert_eq!(tokens.len(), 4);
    assert_eq!(app.verify(&tokens[3]).await.status(), 200);
}

#[tokio::test]
async fn with_verified_addresses_required_the_platform_writes_refuse_unverified_users() {
    let app = TestApp::with_settings(&[("REQUIRE_VERIFIED_EMAIL", "true")]).await;
    let (_, email, access) = user(&app).await;
    let job =
        json!({"name": "render", "sla_tier": "gold", "cpu_required": 1, "memory_required": 1});
    let submit = |access: &str| {
        event("POST", "/api/scheduler/jobs")
            .bearer(access)
            .json(&job)
            .build()
    };
    let refused = app.call(&SUBMIT_JOB, submit(&access)).await;
    assert_eq!(refused.status(), 403);
    assert!(
        refused.json()["detail"]
            .as_str()
            .unwrap()
            .contains("Verify your email address"),
        "{}",
        refused.text()
    );
    // Logging in and reading still work.
    assert_eq!(app.me_of(&access).await.status(), 200);
    let token = verification_tokens(&email).await[0].clone();
    assert_eq!(app.verify(&token).await.status(), 200);
    assert_eq!(app.call(&SUBMIT_JOB, submit(&access)).await.status(), 201);
}

#[tokio::test]
async fn a_mail_ses_refuses_is_recorded_and_the_request_still_succeeds() {
    // An unverified sender: SES (and the local server) refuses every mail from it.
    let app = TestApp::with_settings(&[("MAIL_FROM", "nobody@unverified.example")]).await;
    let username = unique_username();
    let registered = app.register(&username).await;
    assert_eq!(registered.status(), 201, "{}", registered.text());
    let email = email_of(&username);
    assert!(mail_to(&email).await.is_empty());
    let user_id = app.user_id(&username).await;
    let failed = app.events(user_id, "mail.failed").await;
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].detail["mail"], "verify");

    let requested = app.request_reset(&email).await;
    assert_eq!((requested.status(), requested.text()), (200, REQUESTED));
    let failed = app.events(user_id, "mail.failed").await;
    assert_eq!(failed.len(), 2);
    assert!(failed.iter().any(|event| event.detail["mail"] == "reset"));
    let logged = serde_json::to_string(&failed).unwrap();
    assert!(!logged.contains("token="), "{logged}");
}

/// A confirm's effect, as stored: the token gone, the password changed, the sessions' epoch
/// moved, the lockout cleared, `password.reset` recorded.
async fn reset_effect(app: &TestApp, username: &str, token: &str) -> [bool; 5] {
    let hash = shared::domain::RecoveryToken::parse(token).unwrap().hash();
    let user_id = app.user_id(username).await;
    let profile = app.item(&keys::user(user_id)).await.unwrap();
    let epoch_moved = profile
        .get("session_epoch")
        .is_some_and(|epoch| epoch.as_n().unwrap() != "0");
    let credential = app.item(&keys::username(username)).await.unwrap();
    let old_password_hash = credential["password_hash"].as_s().unwrap();
    let password_changed = !shared::auth::verify_password(
        shared::domain::normalized_password(PASSWORD),
        Some(old_password_hash.clone()),
    )
    .await;
    [
        app.item(&keys::reset_token(hash.as_str())).await.is_none(),
        password_changed,
        epoch_moved,
        app.item(&keys::login_failures(username)).await.is_none(),
        !app.events(user_id, "password.reset").await.is_empty(),
    ]
}

#[tokio::test]
async fn a_fault_at_any_call_of_a_confirm_leaves_all_of_it_or_none() {
    let app = TestApp::new().await;
    let injector = FaultInjector::start().await;
    let faulty = TestApp::with_fault_injector(&injector).await;

    let (_, _, _, token) = user_with_reset_token(&app).await;
    injector.observe();
    assert_eq!(
        faulty.confirm_reset(&token, NEW_PASSWORD).await.status(),
        200
    );
    let calls = injector.calls();
    assert_eq!(
        calls,
        [
            "UpdateItem",
            "BatchGetItem",
            "GetItem",
            "TransactWriteItems"
        ]
    );

    for fault in FAULTS {
        for (call, call_name) in (1..).zip(&calls) {
            if !injected_at(fault, call, call_name) {
                continue;
            }
            let case = format!("call {call} ({call_name}) {fault}");
            let (username, _, _, token) = user_with_reset_token(&app).await;
            // A failed login, so that clearing the lockout is part of the effect.
            app.login(&username, "Wrong-Password-1").await;
            let before = reset_effect(&app, &username, &token).await;
            assert_eq!(before, [false; 5], "{case}");

            injector.arm(call, fault);
            let answer = faulty.confirm_reset(&token, NEW_PASSWORD).await;
            assert_eq!(answer.status(), 503, "{case}: {}", answer.text());
            let done = reset_effect(&app, &username, &token).await;
            assert!(
                done == [false; 5] || done == [true; 5],
                "{case}: partial {done:?}"
            );

            injector.observe();
            let retry = faulty.confirm_reset(&token, NEW_PASSWORD).await;
            let expected = if done[0] { 400 } else { 200 };
            assert_eq!(retry.status(), expected, "{case}: retry {}", retry.text());
            assert_eq!(
                reset_effect(&app, &username, &token).await,
                [true; 5],
                "{case}"
            );
            assert_eq!(
                app.login(&username, NEW_PASSWORD).await.status(),
                200,
                "{case}"
            );
        }
    }
}
