//! The second factor (issue 24), in-process against the local DynamoDB: setup and verification,
//! a login's second step, replay refusal (RFC 6238 section 5.2) with one step of skew, racing
//! requests of one code, the temp token's single use and burn, the hourly limit, backup codes,
//! the admin routes' requirement, reauthentication with a code, and faults at every DynamoDB
//! call of setup, verify, login/mfa and disable. Time moves with the test app's clock
//! (`TestApp::later`), never by sleeping: each app is 30 seconds (one TOTP step) apart.

use crate::support::faults::{Fault, FaultInjector};
use crate::support::sessions::{Item, Pair};
use crate::support::{PASSWORD, TestApp, TestResponse, event};
use serde_json::{Value, json};
use shared::domain::Assurance;
use shared::handlers::{
    ADMIN_LIST_USERS, LOGIN_MFA, MFA_DISABLE, MFA_REGENERATE_BACKUP_CODES, MFA_SETUP, MFA_STATUS,
    MFA_VALIDATE, MFA_VERIFY, REAUTHENTICATE,
};
use shared::store::keys;
use time::Duration;
use uuid::Uuid;

const STEP: i64 = 30;

/// The TOTP code of `secret` (base32) at `at` (epoch s), as an authenticator app computes it.
fn totp(secret: &str, at: i64) -> String {
    let bytes = totp_rs::Secret::try_from_base32(secret).unwrap();
    totp_rs::Builder::new()
        .with_secret(bytes.as_bytes().to_vec())
        .build()
        .unwrap()
        .generate(at as u64)
        .to_string()
}

/// An app whose clock is `steps` TOTP steps ahead.
async fn steps_later(steps: i64) -> TestApp {
    TestApp::later(Duration::seconds(steps * STEP)).await
}

fn now(app: &TestApp) -> i64 {
    app.state.clock.now().unix_timestamp()
}

async fn post(
    app: &TestApp,
    endpoint: &shared::http::Endpoint,
    path: &str,
    token: &str,
    body: Value,
) -> TestResponse {
    let request = event("POST", path).bearer(token).json(&body).build();
    app.call(endpoint, request).await
}

async fn setup(app: &TestApp, access: &str) -> Value {
    let answer = post(app, &MFA_SETUP, "/api/auth/mfa/setup", access, json!({})).await;
    assert_eq!(answer.status(), 200, "{}", answer.text());
    answer.json()
}

async fn verify(app: &TestApp, access: &str, code: &str) -> TestResponse {
    post(
        app,
        &MFA_VERIFY,
        "/api/auth/mfa/verify",
        access,
        json!({"code": code}),
    )
    .await
}

async fn validate(app: &TestApp, access: &str, code: &str) -> TestResponse {
    post(
        app,
        &MFA_VALIDATE,
        "/api/auth/mfa/validate",
        access,
        json!({"code": code}),
    )
    .await
}

async fn status(app: &TestApp, access: &str) -> Value {
    let request = event("GET", "/api/auth/mfa/status").bearer(access).build();
    let answer = app.call(&MFA_STATUS, request).await;
    assert_eq!(answer.status(), 200, "{}", answer.text());
    answer.json()
}

async fn login_mfa(app: &TestApp, temp_token: &str, code: &str) -> TestResponse {
    let request = event("POST", "/api/auth/login/mfa")
        .json(&json!({"temp_token": temp_token, "mfa_code": code}))
        .build();
    app.call(&LOGIN_MFA, request).await
}

/// A login's first step for a user with a second factor: its temp token.
async fn temp_token(app: &TestApp, username: &str) -> String {
    let answer = app.login(username, PASSWORD).await;
    assert_eq!(answer.status(), 200, "{}", answer.text());
    let body = answer.json();
    assert_eq!(body["mfa_required"], true, "{body}");
    assert!(body.get("access_token").is_none());
    body["temp_token"].as_str().unwrap().to_owned()
}

/// A user with an enabled factor: the name, the pair of the session that verified it, the
/// secret and the backup codes. The verification spent the step of `app`'s now.
struct Enabled {
    username: String,
    pair: Pair,
    secret: String,
    codes: Vec<String>,
    /// When the verification's code was computed: its step is spent.
    verified_at: i64,
}

async fn enabled_user(app: &TestApp) -> Enabled {
    let (username, pair) = app.user_with_pair().await;
    let set_up = setup(app, &pair.access).await;
    let secret = set_up["secret"].as_str().unwrap().to_owned();
    let verified_at = now(app);
    let answer = verify(app, &pair.access, &totp(&secret, verified_at)).await;
    assert_eq!(answer.status(), 200, "{}", answer.text());
    let codes = set_up["backup_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|code| code.as_str().unwrap().to_owned())
        .collect();
    Enabled {
        username,
        pair,
        secret,
        codes,
        verified_at,
    }
}

fn user_id(app: &TestApp, access: &str) -> Uuid {
    app.claims(access).sub
}

/// Every attribute of the user's items, as text: what a scan of the table would show.
async fn stored_text(app: &TestApp, user: Uuid, username: &str) -> String {
    let mut text = String::new();
    for key in [
        keys::second_factor(user),
        keys::second_factor_failures(user),
        keys::user(user),
        keys::username(username),
    ] {
        if let Some(item) = app.item(&key).await {
            text.push_str(&format!("{item:?}"));
        }
    }
    text
}

#[tokio::test]
async fn a_verified_factor_is_asked_for_at_login_and_tokens_say_so() {
    let app = TestApp::new().await;
    let (username, pair) = app.user_with_pair().await;
    let other = app.another_session(&username).await;
    let none = status(&app, &pair.access).await;
    assert_eq!(
        none,
        json!({"mfa_enabled": false, "mfa_verified": false, "backup_codes_remaining": 0, "enabled_at": null})
    );

    let set_up = setup(&app, &pair.access).await;
    let secret = set_up["secret"].as_str().unwrap();
    assert_eq!(secret.len(), 32, "160 bits in base32");
    assert_eq!(
        set_up["provisioning_uri"],
        format!("otpauth://totp/FogCompute:{username}?secret={secret}&issuer=FogCompute")
    );
    assert!(set_up["qr_svg"].as_str().unwrap().contains("<svg"));
    let codes = set_up["backup_codes"].as_array().unwrap();
    assert_eq!(codes.len(), 10);
    // A second setup before verification replaces the first.
    let set_up = setup(&app, &pair.access).await;
    let secret = set_up["secret"].as_str().unwrap().to_owned();
    assert_eq!(status(&app, &pair.access).await["mfa_enabled"], false);
    // Not enabled yet: a login answers tokens.
    assert!(app.login(&username, PASSWORD).await.json()["access_token"].is_string());

    let wrong = verify(&app, &pair.access, "000000").await;
    assert_eq!(wrong.status(), 401, "{}", wrong.text());
    let verified = verify(&app, &pair.access, &totp(&secret, now(&app))).await;
    assert_eq!(verified.status(), 200, "{}", verified.text());
    assert_eq!(verified.json()["verified"], true);
    assert_eq!(verified.json()["backup_codes_remaining"], 10);
    let enabled = status(&app, &pair.access).await;
    assert_eq!(enabled["mfa_enabled"], true);
    assert_eq!(enabled["backup_codes_remaining"], 10);
    assert!(enabled["enabled_at"].is_string());
    assert_eq!(
        post(
            &app,
            &MFA_SETUP,
            "/api/auth/mfa/setup",
            &pair.access,
            json!({})
        )
        .await
        .status(),
        400,
        "already enabled"
    );
    // Every other session ended; this one goes on, raised to the second factor.
    assert_eq!(app.me(&other.access).await.status(), 401);
    assert_eq!(app.me(&pair.access).await.status(), 200);
    let raised = Pair::of(&app.refresh(&pair.refresh).await);
    let claims = app.claims(&raised.access);
    assert_eq!(claims.amr, ["pwd", "otp"]);
    assert_eq!(claims.assurance(), Assurance::SecondFactor);

    // The login asks for the second factor; its second step answers the usual pair.
    let later = steps_later(1).await;
    let temp = temp_token(&later, &username).await;
    let signed_in = Pair::of(&login_mfa(&later, &temp, &totp(&secret, now(&later))).await);
    assert!(signed_in.body.get("warning").is_none());
    let claims = later.claims(&signed_in.access);
    assert_eq!(
        (claims.amr.clone(), claims.aal.clone()),
        (
            vec!["pwd".to_owned(), "otp".to_owned()],
            Some("aal2".to_owned())
        )
    );
    // A refresh keeps how the session was signed in to.
    let refreshed = Pair::of(&later.refresh(&signed_in.refresh).await);
    assert_eq!(later.claims(&refreshed.access).aal.as_deref(), Some("aal2"));

    // Neither the secret nor a backup code nor their hashes' inputs are stored in the clear.
    let user = user_id(&app, &pair.access);
    let stored = stored_text(&app, user, &username).await;
    assert!(!stored.contains(&secret), "the secret is stored encrypted");
    for code in set_up["backup_codes"].as_array().unwrap() {
        let code = code.as_str().unwrap();
        assert!(!stored.contains(code) && !stored.contains(&code.replace('-', "")));
    }
}

#[tokio::test]
async fn a_password_alone_gets_tokens_of_aal1() {
    let app = TestApp::new().await;
    let (_, pair) = app.user_with_pair().await;
    let claims = app.claims(&pair.access);
    assert_eq!(claims.amr, ["pwd"]);
    assert_eq!(claims.aal.as_deref(), Some("aal1"));
}

#[tokio::test]
async fn a_code_is_accepted_once_with_one_step_of_skew_either_way() {
    let app = TestApp::new().await;
    let user = enabled_user(&app).await;
    let access = &user.pair.access;
    // The verification spent this step: its code again is a replay.
    let replay = validate(&app, access, &totp(&user.secret, user.verified_at)).await;
    assert_eq!(replay.status(), 401, "{}", replay.text());

    let later = steps_later(2).await;
    let at = now(&later);
    // One step behind is accepted, once; then the current step, once.
    assert_eq!(
        validate(&later, access, &totp(&user.secret, at - STEP))
            .await
            .status(),
        200
    );
    assert_eq!(
        validate(&later, access, &totp(&user.secret, at - STEP))
            .await
            .status(),
        401
    );
    assert_eq!(
        validate(&later, access, &totp(&user.secret, at))
            .await
            .status(),
        200
    );
    assert_eq!(
        validate(&later, access, &totp(&user.secret, at))
            .await
            .status(),
        401
    );
    // One step ahead is accepted; two are not; and an earlier step never is again.
    assert_eq!(
        validate(&later, access, &totp(&user.secret, at + 2 * STEP))
            .await
            .status(),
        401
    );
    assert_eq!(
        validate(&later, access, &totp(&user.secret, at + STEP))
            .await
            .status(),
        200
    );
    assert_eq!(
        validate(&later, access, &totp(&user.secret, at))
            .await
            .status(),
        401
    );
}

#[tokio::test]
async fn of_two_racing_requests_with_one_code_exactly_one_wins() {
    let app = TestApp::new().await;
    let user = enabled_user(&app).await;
    let later = steps_later(1).await;
    let code = totp(&user.secret, now(&later));
    let (a, b) = tokio::join!(
        validate(&later, &user.pair.access, &code),
        validate(&later, &user.pair.access, &code)
    );
    let mut statuses = [a.status(), b.status()];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 401], "{} / {}", a.text(), b.text());

    // Two logins' second steps with one code: one session starts.
    let later = steps_later(2).await;
    let (first, second) = tokio::join!(
        temp_token(&later, &user.username),
        temp_token(&later, &user.username)
    );
    let code = totp(&user.secret, now(&later));
    let (a, b) = tokio::join!(
        login_mfa(&later, &first, &code),
        login_mfa(&later, &second, &code)
    );
    let mut statuses = [a.status(), b.status()];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 401], "{} / {}", a.text(), b.text());
}

#[tokio::test]
async fn backup_codes_are_single_use_even_racing() {
    let app = TestApp::new().await;
    let user = enabled_user(&app).await;
    let code = &user.codes[0];
    let typed_otherwise = code.to_lowercase().replace('-', "");
    let (a, b) = tokio::join!(
        validate(&app, &user.pair.access, code),
        validate(&app, &user.pair.access, &typed_otherwise)
    );
    let mut statuses = [a.status(), b.status()];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 401], "{} / {}", a.text(), b.text());
    assert_eq!(
        status(&app, &user.pair.access).await["backup_codes_remaining"],
        9
    );

    // A login with a backup code says how many remain.
    let temp = temp_token(&app, &user.username).await;
    let signed_in = Pair::of(&login_mfa(&app, &temp, &user.codes[1]).await);
    let warning = signed_in.body["warning"].as_str().unwrap();
    assert!(warning.contains("8 remain"), "{warning}");
    let temp = temp_token(&app, &user.username).await;
    assert_eq!(login_mfa(&app, &temp, &user.codes[1]).await.status(), 401);

    // New codes: the old ones die.
    let later = steps_later(1).await;
    let regenerated = post(
        &later,
        &MFA_REGENERATE_BACKUP_CODES,
        "/api/auth/mfa/regenerate-backup-codes",
        &user.pair.access,
        json!({"code": totp(&user.secret, now(&later))}),
    )
    .await;
    assert_eq!(regenerated.status(), 200, "{}", regenerated.text());
    let fresh = regenerated.json()["backup_codes"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(fresh.len(), 10);
    assert_eq!(
        validate(&later, &user.pair.access, &user.codes[2])
            .await
            .status(),
        401
    );
    assert_eq!(
        validate(&later, &user.pair.access, fresh[0].as_str().unwrap())
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn a_temp_token_is_single_use_and_dies_after_five_wrong_codes() {
    let app = TestApp::new().await;
    let user = enabled_user(&app).await;
    let later = steps_later(1).await;
    let temp = temp_token(&later, &user.username).await;
    assert_eq!(
        login_mfa(&later, &temp, &totp(&user.secret, now(&later)))
            .await
            .status(),
        200
    );
    let again = steps_later(2).await;
    let used = login_mfa(&again, &temp, &totp(&user.secret, now(&again))).await;
    assert_eq!(used.status(), 401, "{}", used.text());

    let temp = temp_token(&again, &user.username).await;
    for _ in 0..5 {
        assert_eq!(login_mfa(&again, &temp, "000000").await.status(), 401);
    }
    let burnt = login_mfa(&again, &temp, &totp(&user.secret, now(&again))).await;
    assert_eq!(burnt.status(), 401, "{}", burnt.text());
    assert!(burnt.text().contains("log in again"), "{}", burnt.text());
    // Stored only as its hash, and the token itself nowhere.
    assert!(app.item(&keys::mfa_login(&temp)).await.is_none());
    // A token expires after 5 minutes.
    let temp = temp_token(&again, &user.username).await;
    let expired = TestApp::later(Duration::seconds(2 * STEP + 301)).await;
    assert_eq!(
        login_mfa(&expired, &temp, &totp(&user.secret, now(&expired)))
            .await
            .status(),
        401
    );
}

#[tokio::test]
async fn ten_wrong_second_factors_in_an_hour_answer_429_until_it_passes() {
    let app = TestApp::new().await;
    let user = enabled_user(&app).await;
    for _ in 0..10 {
        assert_eq!(
            validate(&app, &user.pair.access, "000000").await.status(),
            401
        );
    }
    let later = steps_later(1).await;
    let limited = validate(&later, &user.pair.access, &totp(&user.secret, now(&later))).await;
    assert_eq!(limited.status(), 429, "{}", limited.text());
    let retry_after: i64 = limited.header("retry-after").unwrap().parse().unwrap();
    assert!((3000..=3600).contains(&retry_after), "{retry_after}");
    // Logins' second steps too.
    let temp = temp_token(&later, &user.username).await;
    assert_eq!(
        login_mfa(&later, &temp, &totp(&user.secret, now(&later)))
            .await
            .status(),
        429
    );
    let events = later
        .state
        .store
        .audit_events(&shared::store::AuditQuery {
            at: later.state.clock.now(),
            kind: Some(shared::domain::AuditEventType::MfaFailed),
            subject: Some(user_id(&app, &user.pair.access).to_string()),
            since: later.state.clock.now() - Duration::hours(1),
            until: later.state.clock.now() + Duration::hours(1),
            before: None,
            limit: 100,
        })
        .await
        .unwrap()
        .events;
    let reasons: Vec<&str> = events
        .iter()
        .map(|event| event.detail["reason"].as_str().unwrap())
        .collect();
    assert_eq!(
        reasons
            .iter()
            .filter(|reason| **reason == "wrong_code")
            .count(),
        10
    );
    assert!(reasons.contains(&"limited"));
    // No event holds a code or the secret.
    let text = serde_json::to_string(&events).unwrap();
    assert!(!text.contains("000000") && !text.contains(&user.secret));

    let hour_later = TestApp::later(Duration::seconds(3600 + 2 * STEP)).await;
    let access = Pair::of(&hour_later.refresh(&user.pair.refresh).await).access;
    let code = totp(&user.secret, now(&hour_later));
    assert_eq!(validate(&hour_later, &access, &code).await.status(), 200);
}

#[tokio::test]
async fn admin_routes_need_the_second_factor_when_configured() {
    let settings = [("ADMIN_MFA_REQUIRED", "true")];
    let app = TestApp::with_settings(&settings).await;
    let (username, pair) = app.user_with_pair().await;
    app.act_on(&username, shared::domain::UserAction::Promote)
        .await;
    let list = |token: &str| event("GET", "/api/admin/users").bearer(token).build();
    let refused = app.call(&ADMIN_LIST_USERS, list(&pair.access)).await;
    assert_eq!(refused.status(), 403, "{}", refused.text());
    assert!(
        refused.text().contains("second factor"),
        "{}",
        refused.text()
    );
    let unrequired = TestApp::new().await;
    assert_eq!(
        unrequired
            .call(&ADMIN_LIST_USERS, list(&pair.access))
            .await
            .status(),
        200
    );

    let set_up = setup(&app, &pair.access).await;
    let secret = set_up["secret"].as_str().unwrap().to_owned();
    assert_eq!(
        verify(&app, &pair.access, &totp(&secret, now(&app)))
            .await
            .status(),
        200
    );
    // The session that verified is raised: its refresh answers an aal2 token.
    let raised = Pair::of(&app.refresh(&pair.refresh).await);
    assert_eq!(
        app.call(&ADMIN_LIST_USERS, list(&raised.access))
            .await
            .status(),
        200
    );
    // And a login with the second factor.
    let later = TestApp::later_with_settings(Duration::seconds(STEP), &settings).await;
    let temp = temp_token(&later, &username).await;
    let signed_in = Pair::of(&login_mfa(&later, &temp, &totp(&secret, now(&later))).await);
    assert_eq!(
        later
            .call(&ADMIN_LIST_USERS, list(&signed_in.access))
            .await
            .status(),
        200
    );
}

async fn reauthenticate(app: &TestApp, access: &str, body: Value) -> TestResponse {
    post(
        app,
        &REAUTHENTICATE,
        "/api/auth/reauthenticate",
        access,
        body,
    )
    .await
}

#[tokio::test]
async fn reauthentication_needs_the_code_of_a_user_with_a_second_factor() {
    let app = TestApp::new().await;
    let user = enabled_user(&app).await;
    let access = &user.pair.access;
    let alone = reauthenticate(&app, access, json!({"password": PASSWORD})).await;
    assert_eq!(alone.status(), 422, "{}", alone.text());
    assert!(alone.text().contains("code"), "{}", alone.text());
    let later = steps_later(1).await;
    let wrong = reauthenticate(
        &later,
        access,
        json!({"password": PASSWORD, "code": "000000"}),
    )
    .await;
    assert_eq!(wrong.status(), 401, "{}", wrong.text());
    let code = totp(&user.secret, now(&later));
    let both = reauthenticate(&later, access, json!({"password": PASSWORD, "code": code})).await;
    assert_eq!(both.status(), 200, "{}", both.text());
    let token = both.json()["access_token"].as_str().unwrap().to_owned();
    assert_eq!(later.claims(&token).aal.as_deref(), Some("aal2"));
    // The code was spent.
    let replay = reauthenticate(&later, access, json!({"password": PASSWORD, "code": code})).await;
    assert_eq!(replay.status(), 401, "{}", replay.text());
    // A user without one reauthenticates with the password alone.
    let (_, plain) = app.user_with_pair().await;
    let plain = reauthenticate(&app, &plain.access, json!({"password": PASSWORD})).await;
    assert_eq!(plain.status(), 200, "{}", plain.text());
}

async fn disable(app: &TestApp, access: &str, password: &str, code: &str) -> TestResponse {
    post(
        app,
        &MFA_DISABLE,
        "/api/auth/mfa/disable",
        access,
        json!({"password": password, "code": code}),
    )
    .await
}

#[tokio::test]
async fn disabling_needs_the_password_and_a_code() {
    let app = TestApp::new().await;
    let user = enabled_user(&app).await;
    let access = &user.pair.access;
    let later = steps_later(1).await;
    let code = totp(&user.secret, now(&later));
    assert_eq!(
        disable(&later, access, PASSWORD, "000000").await.status(),
        401
    );
    let wrong_password = disable(&later, access, "Not-The-Password-1", &code).await;
    assert_eq!(wrong_password.status(), 401, "{}", wrong_password.text());
    assert!(wrong_password.text().contains("Incorrect password"));
    let disabled = disable(&later, access, PASSWORD, &code).await;
    assert_eq!(disabled.status(), 200, "{}", disabled.text());
    assert_eq!(status(&later, access).await["mfa_enabled"], false);
    assert!(later.login(&user.username, PASSWORD).await.json()["access_token"].is_string());
    assert_eq!(
        validate(&later, access, &user.codes[0]).await.status(),
        409,
        "no factor any more"
    );
}

/// Login's second step reads everything its temp token names in the rate limiter's round trip,
/// then writes once: two round trips in all.
#[tokio::test]
async fn login_mfa_takes_two_round_trips() {
    let injector = FaultInjector::start().await;
    let app = TestApp::with_fault_injector(&injector).await;
    let user = enabled_user(&app).await;
    let later = steps_later(1).await;
    let temp = temp_token(&later, &user.username).await;
    let code = totp(&user.secret, now(&later));
    injector.observe();
    let request = event("POST", "/api/auth/login/mfa")
        .json(&json!({"temp_token": temp, "mfa_code": code}))
        .build();
    assert_eq!(app.call(&LOGIN_MFA, request).await.status(), 200);
    assert_eq!(
        injector.calls(),
        ["UpdateItem", "BatchGetItem", "TransactWriteItems"]
    );
}

#[derive(Clone, Copy, Debug)]
enum Operation {
    Setup,
    Verify,
    LoginMfa,
    Disable,
}

/// A request of `operation` for a fresh user, as the faulty app (whose clock is now) sends it,
/// and the items it may change. The factors are enabled a step earlier, so that now's code is
/// unspent.
async fn prepare(
    operation: Operation,
    earlier: &TestApp,
) -> (crate::support::EventBuilder, Vec<keys::Key>) {
    let at = now(earlier) + STEP;
    let (username, pair, secret) = match operation {
        Operation::Setup | Operation::Verify => {
            let (username, pair) = earlier.user_with_pair().await;
            (username, pair, None)
        }
        Operation::LoginMfa | Operation::Disable => {
            let user = enabled_user(earlier).await;
            (user.username, user.pair, Some(user.secret))
        }
    };
    let user = user_id(earlier, &pair.access);
    let mut items = vec![
        keys::second_factor(user),
        keys::second_factor_failures(user),
        keys::user(user),
        keys::username(&username),
    ];
    let request = match operation {
        Operation::Setup => event("POST", "/api/auth/mfa/setup")
            .bearer(&pair.access)
            .json(&json!({})),
        Operation::Verify => {
            let secret = setup(earlier, &pair.access).await["secret"]
                .as_str()
                .unwrap()
                .to_owned();
            event("POST", "/api/auth/mfa/verify")
                .bearer(&pair.access)
                .json(&json!({"code": totp(&secret, at)}))
        }
        Operation::LoginMfa => {
            let temp = temp_token(earlier, &username).await;
            let token = shared::domain::MfaLoginToken::parse(&temp).unwrap();
            items.push(keys::mfa_login(&token.hash()));
            event("POST", "/api/auth/login/mfa").json(
                &json!({"temp_token": temp, "mfa_code": totp(secret.as_deref().unwrap(), at)}),
            )
        }
        Operation::Disable => event("POST", "/api/auth/mfa/disable")
            .bearer(&pair.access)
            .json(&json!({"password": PASSWORD, "code": totp(secret.as_deref().unwrap(), at)})),
    };
    (request, items)
}

async fn send(
    app: &TestApp,
    operation: Operation,
    request: crate::support::EventBuilder,
) -> TestResponse {
    let endpoint = match operation {
        Operation::Setup => &MFA_SETUP,
        Operation::Verify => &MFA_VERIFY,
        Operation::LoginMfa => &LOGIN_MFA,
        Operation::Disable => &MFA_DISABLE,
    };
    app.call(endpoint, request.build()).await
}

async fn snapshot(app: &TestApp, items: &[keys::Key]) -> Vec<Option<Item>> {
    let mut snapshot = Vec::new();
    for key in items {
        snapshot.push(app.item(key).await);
    }
    snapshot
}

/// A fault at each DynamoDB call the operation makes (each unreachable in turn) answers 503 and
/// leaves every item it may change as it was; sent again, it succeeds.
async fn all_or_nothing_at_every_call(operation: Operation) {
    let injector = FaultInjector::start().await;
    let faulty = TestApp::with_fault_injector(&injector).await;
    let earlier = TestApp::later(Duration::seconds(-STEP)).await;

    let (request, _) = prepare(operation, &earlier).await;
    injector.observe();
    let clean = send(&faulty, operation, request).await;
    assert_eq!(clean.status(), 200, "{operation:?}: {}", clean.text());
    let calls = injector.calls();
    assert!(calls.len() >= 3, "{operation:?}: {calls:?}");

    for (call, name) in (1..).zip(&calls) {
        let case = format!("{operation:?}, call {call} ({name})");
        let (request, items) = prepare(operation, &earlier).await;
        let before = snapshot(&faulty, &items).await;
        injector.arm(call, Fault::Unreachable);
        let failed = send(&faulty, operation, request.clone()).await;
        assert_eq!(failed.status(), 503, "{case}: {}", failed.text());
        assert_eq!(
            snapshot(&faulty, &items).await,
            before,
            "{case}: half written"
        );
        injector.observe();
        let retry = send(&faulty, operation, request).await;
        assert_eq!(retry.status(), 200, "{case}: retry {}", retry.text());
    }
}

#[tokio::test]
async fn setup_is_all_or_nothing() {
    all_or_nothing_at_every_call(Operation::Setup).await;
}

#[tokio::test]
async fn verification_is_all_or_nothing() {
    all_or_nothing_at_every_call(Operation::Verify).await;
}

#[tokio::test]
async fn a_logins_second_step_is_all_or_nothing() {
    all_or_nothing_at_every_call(Operation::LoginMfa).await;
}

#[tokio::test]
async fn disabling_is_all_or_nothing() {
    all_or_nothing_at_every_call(Operation::Disable).await;
}
