//! API keys in-process, against the local DynamoDB (issue 14): managing them, using them on
//! every route family, their refusals, their hourly budget, the 25-key cap, `last_used`, and
//! what each key-authenticated request costs.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::support::faults::FaultInjector;
use crate::support::{EventBuilder, TestApp, TestResponse, event};
use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use shared::domain::UserAction;
use shared::handlers::{
    BALANCE, CANCEL_JOB, CREATE_API_KEY, CREATE_PROPOSAL, GET_API_KEY, GET_JOB, LIST_API_KEYS,
    LIST_DEVICES, LIST_JOBS, LIST_PROPOSALS, LOGOUT, ME, MINT, REGISTER_DEVICE, REVOKE_API_KEY,
    ROOT, STAKE, SUBMIT_JOB, TRANSFER, UNSTAKE, VOTE,
};
use shared::http::Endpoint;
use uuid::Uuid;

const LIMITER: [&str; 2] = ["UpdateItem", "BatchGetItem"];
const ALL_SCOPES: [&str; 7] = [
    "jobs:read",
    "jobs:write",
    "devices:read",
    "devices:write",
    "tokens:read",
    "tokens:write",
    "governance:write",
];

fn key_body(scopes: &[&str]) -> Value {
    json!({"name": "agent", "scopes": scopes})
}

async fn list_jobs(app: &TestApp, secret: &str) -> TestResponse {
    app.call(
        &LIST_JOBS,
        event("GET", "/api/scheduler/jobs").api_key(secret).build(),
    )
    .await
}

fn assert_invalid_key(response: &TestResponse) {
    assert_eq!(response.status(), 401, "{}", response.text());
    assert_eq!(response.header("www-authenticate"), Some("ApiKey"));
    assert_eq!(
        response.header("content-type"),
        Some("application/problem+json")
    );
    assert_eq!(response.json()["detail"], "Invalid API key");
}

fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// `secret` with its body changed by `change` and the checksum recomputed: well-formed, but
/// not the secret the key was issued with.
fn forged(secret: &str, change: impl FnOnce(&mut Vec<u8>)) -> String {
    let mut body = URL_SAFE_NO_PAD.decode(&secret[7..98]).unwrap();
    change(&mut body);
    let sum = crc32fast::hash(&body).to_be_bytes();
    format!(
        "fog_sk_{}{}",
        URL_SAFE_NO_PAD.encode(&body),
        URL_SAFE_NO_PAD.encode(sum)
    )
}

async fn key_item(app: &TestApp, id: &str) -> std::collections::HashMap<String, AttributeValue> {
    app.dynamodb()
        .get_item()
        .table_name(app.table())
        .key("PK", AttributeValue::S(format!("APIKEY#{id}")))
        .key("SK", AttributeValue::S("APIKEY".into()))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
        .expect("the key item")
}

async fn set_key_attribute(app: &TestApp, id: &str, name: &str, value: AttributeValue) {
    app.dynamodb()
        .update_item()
        .table_name(app.table())
        .key("PK", AttributeValue::S(format!("APIKEY#{id}")))
        .key("SK", AttributeValue::S("APIKEY".into()))
        .update_expression("SET #name = :value")
        .expression_attribute_names("#name", name)
        .expression_attribute_values(":value", value)
        .send()
        .await
        .unwrap();
}

fn epoch_seconds() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[tokio::test]
async fn create_list_get_revoke_and_the_secret_is_shown_once() {
    let app = TestApp::new().await;
    let (_, token) = app.user_with_token().await;
    let created = app
        .create_key(
            &token,
            &json!({"name": " deploy <bot> ", "expires_in_days": 30, "rate_limit": 50,
                    "scopes": ["tokens:read", "jobs:read"]}),
        )
        .await;
    assert_eq!(created.status(), 201, "{}", created.text());
    let key = created.json();
    let secret = key["secret_key"].as_str().unwrap().to_owned();
    let id = key["id"].as_str().unwrap().to_owned();
    assert_eq!(secret.len(), 104);
    assert!(secret.starts_with("fog_sk_"));
    assert_eq!(key["prefix"], secret[..12]);
    assert_eq!(key["name"], "deploy &lt;bot&gt;");
    assert_eq!(key["scopes"], json!(["jobs:read", "tokens:read"]));
    assert_eq!(key["rate_limit"], 50);
    assert_eq!(key["is_active"], true);
    assert_eq!(key["last_used"], Value::Null);
    let created_at = time::OffsetDateTime::parse(
        key["created_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let expires_at = time::OffsetDateTime::parse(
        key["expires_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert_eq!(expires_at - created_at, time::Duration::days(30));

    // Only the secret's hash is stored.
    let item = key_item(&app, &id).await;
    assert_eq!(item["secret_hash"].as_s().unwrap(), &sha256_hex(&secret));
    assert!(!format!("{item:?}").contains(&secret[7..]));

    // The key works, and never shows its secret again.
    assert_eq!(list_jobs(&app, &secret).await.status(), 200);
    let listed = app
        .call(
            &LIST_API_KEYS,
            event("GET", "/api/keys").bearer(&token).build(),
        )
        .await;
    assert_eq!(listed.status(), 200);
    assert_eq!(listed.json()["total"], 1);
    let fetched = app
        .call(
            &GET_API_KEY,
            event("GET", &format!("/api/keys/{id}"))
                .path_parameter("id", &id)
                .bearer(&token)
                .build(),
        )
        .await;
    assert_eq!(fetched.status(), 200);
    for answer in [&listed, &fetched] {
        assert!(!answer.text().contains(&secret[7..]), "{}", answer.text());
        assert!(!answer.text().contains("secret"), "{}", answer.text());
        assert!(!answer.text().contains(&sha256_hex(&secret)));
    }
    let fetched = fetched.json();
    assert_eq!(fetched["id"], id.as_str());
    assert_eq!(fetched["prefix"], secret[..12]);
    assert_eq!(listed.json()["keys"][0], fetched);

    // Revoked: it stops working at once, and leaves the default list.
    let revoke = |id: String| {
        app.call(
            &REVOKE_API_KEY,
            event("DELETE", &format!("/api/keys/{id}"))
                .path_parameter("id", &id)
                .bearer(&token)
                .build(),
        )
    };
    let revoked = revoke(id.clone()).await;
    assert_eq!(revoked.status(), 200, "{}", revoked.text());
    let revoked = revoked.json();
    assert_eq!(revoked["success"], true);
    assert_eq!(revoked["key_id"], id.as_str());
    assert!(revoked["message"].is_string());
    assert_invalid_key(&list_jobs(&app, &secret).await);
    let listed = app
        .call(
            &LIST_API_KEYS,
            event("GET", "/api/keys").bearer(&token).build(),
        )
        .await;
    assert_eq!(listed.json(), json!({"keys": [], "total": 0}));
    let with_inactive = app
        .call(
            &LIST_API_KEYS,
            event("GET", "/api/keys")
                .query("include_inactive=true")
                .bearer(&token)
                .build(),
        )
        .await
        .json();
    assert_eq!(with_inactive["total"], 1);
    assert_eq!(with_inactive["keys"][0]["is_active"], false);
    // Revoking it again changes nothing.
    assert_eq!(revoke(id).await.status(), 200);
    let bad_flag = app
        .call(
            &LIST_API_KEYS,
            event("GET", "/api/keys")
                .query("include_inactive=yes")
                .bearer(&token)
                .build(),
        )
        .await;
    assert_eq!(bad_flag.status(), 422);
}

#[tokio::test]
async fn a_new_key_gets_the_defaults_and_bad_fields_store_nothing() {
    let app = TestApp::new().await;
    let (_, token) = app.user_with_token().await;
    let defaults = app.create_key(&token, &json!({"name": "ci"})).await;
    assert_eq!(defaults.status(), 201, "{}", defaults.text());
    let defaults = defaults.json();
    assert_eq!(defaults["rate_limit"], 1000);
    assert_eq!(defaults["scopes"], json!(ALL_SCOPES));
    assert_eq!(defaults["expires_at"], Value::Null);
    let nulls = app
        .create_key(
            &token,
            &json!({"name": "ci", "expires_in_days": null, "rate_limit": null, "scopes": null}),
        )
        .await;
    assert_eq!(nulls.status(), 201);

    let refused = [
        (json!({}), "name"),
        (json!({"name": "   "}), "name"),
        (json!({"name": "x".repeat(101)}), "name"),
        (json!({"name": "a\u{0}b"}), "name"),
        (json!({"name": 5}), "name"),
        (
            json!({"name": "ci", "expires_in_days": 0}),
            "expires_in_days",
        ),
        (
            json!({"name": "ci", "expires_in_days": 3651}),
            "expires_in_days",
        ),
        (
            json!({"name": "ci", "expires_in_days": 1.5}),
            "expires_in_days",
        ),
        (
            json!({"name": "ci", "expires_in_days": "7"}),
            "expires_in_days",
        ),
        (json!({"name": "ci", "rate_limit": 0}), "rate_limit"),
        (json!({"name": "ci", "rate_limit": 100_001}), "rate_limit"),
        (json!({"name": "ci", "rate_limit": -1}), "rate_limit"),
        (json!({"name": "ci", "scopes": []}), "scopes"),
        (json!({"name": "ci", "scopes": ["admin"]}), "scopes"),
        (json!({"name": "ci", "scopes": "jobs:read"}), "scopes"),
        (json!({"name": "ci", "scopes": ["jobs:read", 1]}), "scopes"),
        (
            json!({"name": "ci", "scopes": ["jobs:read", "jobs:read"]}),
            "scopes",
        ),
    ];
    for (body, field) in refused {
        let response = app.create_key(&token, &body).await;
        assert_eq!(response.status(), 422, "{body}: {}", response.text());
        let fields: Vec<Value> = response.json()["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|error| error["field"].clone())
            .collect();
        assert_eq!(fields, [json!(field)], "{body}");
    }
    let everything_wrong = app
        .create_key(
            &token,
            &json!({"name": "", "expires_in_days": 0, "rate_limit": 0, "scopes": []}),
        )
        .await;
    assert_eq!(
        everything_wrong.json()["errors"].as_array().unwrap().len(),
        4
    );
    let all = app
        .call(
            &LIST_API_KEYS,
            event("GET", "/api/keys")
                .query("include_inactive=true")
                .bearer(&token)
                .build(),
        )
        .await
        .json();
    assert_eq!(all["total"], 2, "only the two valid keys were stored");
}

#[tokio::test]
async fn get_and_revoke_answer_400_for_a_malformed_id_and_404_for_another_users_key() {
    let app = TestApp::new().await;
    let (_, owner) = app.user_with_token().await;
    let (_, other) = app.user_with_token().await;
    let (id, secret) = app.key(&owner, &key_body(&["jobs:read"])).await;
    let on = |endpoint: &'static Endpoint, method: &str, id: &str, token: &str| {
        app.call(
            endpoint,
            event(method, &format!("/api/keys/{id}"))
                .path_parameter("id", id)
                .bearer(token)
                .build(),
        )
    };
    for (endpoint, method) in [(&GET_API_KEY, "GET"), (&REVOKE_API_KEY, "DELETE")] {
        assert_eq!(
            on(endpoint, method, "not-a-key", &owner).await.status(),
            400
        );
        assert_eq!(on(endpoint, method, "12345", &owner).await.status(), 400);
        let unknown = Uuid::now_v7().to_string();
        assert_eq!(on(endpoint, method, &unknown, &owner).await.status(), 404);
        assert_eq!(on(endpoint, method, &id, &other).await.status(), 404);
    }
    // The other user's attempt to revoke changed nothing.
    assert_eq!(list_jobs(&app, &secret).await.status(), 200);
    let other_list = app
        .call(
            &LIST_API_KEYS,
            event("GET", "/api/keys").bearer(&other).build(),
        )
        .await;
    assert_eq!(other_list.json()["total"], 0);
}

#[tokio::test]
async fn an_expired_key_is_refused() {
    let app = TestApp::new().await;
    let (_, token) = app.user_with_token().await;
    let (id, secret) = app
        .key(&token, &json!({"name": "short", "expires_in_days": 1}))
        .await;
    assert_eq!(list_jobs(&app, &secret).await.status(), 200);
    // A day and a bit later, as the API will see it.
    let later = TestApp::later(time::Duration::hours(25)).await;
    assert_invalid_key(&list_jobs(&later, &secret).await);
    let seen_later = later
        .call(
            &GET_API_KEY,
            event("GET", &format!("/api/keys/{id}"))
                .path_parameter("id", &id)
                .bearer(&token)
                .build(),
        )
        .await;
    assert_eq!(seen_later.json()["is_active"], false);
    // Today, with its expiry forced into the past in the table.
    assert_eq!(list_jobs(&app, &secret).await.status(), 200);
    let past = (epoch_seconds() - 1).to_string();
    set_key_attribute(&app, &id, "valid_until", AttributeValue::N(past)).await;
    assert_invalid_key(&list_jobs(&app, &secret).await);
}

#[tokio::test]
async fn malformed_and_tampered_keys_are_refused_without_any_dynamodb_call() {
    let injector = FaultInjector::start().await;
    let app = TestApp::with_fault_injector(&injector).await;
    let (_, token) = app.user_with_token().await;
    let (_, secret) = app.key(&token, &key_body(&["jobs:read"])).await;
    let mut tampered_checksum: Vec<char> = secret.chars().collect();
    let last = tampered_checksum.len() - 1;
    tampered_checksum[last] = if tampered_checksum[last] == 'A' {
        'B'
    } else {
        'A'
    };
    let tampered_checksum: String = tampered_checksum.into_iter().collect();
    let mut tampered_body: Vec<char> = secret.chars().collect();
    tampered_body[40] = if tampered_body[40] == 'x' { 'y' } else { 'x' };
    let tampered_body: String = tampered_body.into_iter().collect();
    for malformed in [
        tampered_checksum.as_str(),
        tampered_body.as_str(),
        &secret[..103],
        &format!("{secret}x"),
        "fog_sk_",
        "",
        "not-a-key",
        &secret.replace("fog_sk_", "fog_pk_"),
        &format!("Bearer {secret}"),
    ] {
        injector.observe();
        let response = list_jobs(&app, malformed).await;
        assert_invalid_key(&response);
        assert_eq!(injector.calls(), Vec::<String>::new(), "{malformed:?}");
        assert!(response.header("x-ratelimit-limit").is_none());
    }
    injector.observe();
    assert_eq!(list_jobs(&app, &secret).await.status(), 200);
    assert!(!injector.calls().is_empty());
}

#[tokio::test]
async fn unknown_and_forged_keys_are_refused() {
    let app = TestApp::new().await;
    let (_, token) = app.user_with_token().await;
    let (_, other_token) = app.user_with_token().await;
    let (_, secret) = app.key(&token, &key_body(&["jobs:read"])).await;
    let (_, other_secret) = app.key(&other_token, &key_body(&["jobs:read"])).await;
    let other_owner = &URL_SAFE_NO_PAD.decode(&other_secret[7..98]).unwrap()[32..48];
    let unknown = shared::auth::issue_key(Uuid::new_v4(), Uuid::now_v7(), 1000);
    let candidates = [
        // Well-formed, but no key has this id.
        unknown.secret.expose().to_owned(),
        // This key, with a higher rate limit.
        forged(&secret, |body| {
            body[64..68].copy_from_slice(&100_000u32.to_be_bytes())
        }),
        // This key, claiming the other user as its owner.
        forged(&secret, |body| body[32..48].copy_from_slice(other_owner)),
        // This key's claims with other random bytes.
        forged(&secret, |body| body[0] ^= 0xff),
    ];
    for candidate in &candidates {
        assert_invalid_key(&list_jobs(&app, candidate).await);
    }
    // The genuine keys still work.
    assert_eq!(list_jobs(&app, &secret).await.status(), 200);
    assert_eq!(list_jobs(&app, &other_secret).await.status(), 200);
}

#[tokio::test]
async fn a_key_reaches_only_its_owners_things() {
    let app = TestApp::new().await;
    let (_, owner) = app.user_with_token().await;
    let (_, other) = app.user_with_token().await;
    let job = app
        .call(
            &SUBMIT_JOB,
            event("POST", "/api/scheduler/jobs")
                .bearer(&owner)
                .json(&json!({"name": "render", "sla_tier": "gold", "cpu_required": 1, "memory_required": 1}))
                .build(),
        )
        .await
        .json();
    let job_id = job["jobId"].as_str().unwrap().to_owned();
    let (_, owners_key) = app.key(&owner, &key_body(&["jobs:read"])).await;
    let (_, others_key) = app.key(&other, &key_body(&["jobs:read"])).await;
    let get = |secret: String| {
        app.call(
            &GET_JOB,
            event("GET", &format!("/api/scheduler/jobs/{job_id}"))
                .path_parameter("id", &job_id)
                .api_key(&secret)
                .build(),
        )
    };
    assert_eq!(get(owners_key.clone()).await.status(), 200);
    assert_eq!(get(others_key.clone()).await.status(), 404);
    let me = app
        .call(
            &ME,
            event("GET", "/api/auth/me").api_key(&others_key).build(),
        )
        .await;
    assert_eq!(me.status(), 200);
    let other_me = app
        .call(&ME, event("GET", "/api/auth/me").bearer(&other).build())
        .await;
    assert_eq!(me.json(), other_me.json(), "a key acts as its owner");
}

/// Every route family, with a key holding every scope but the one the route needs (403 naming
/// it), then with that scope alone (past the scope check).
#[tokio::test]
async fn each_route_needs_its_scope() {
    let app = TestApp::new().await;
    let (_, token) = app.user_with_token().await;
    let wallet = app.wallet(&token).await;
    let job_id = Uuid::now_v7().to_string();
    let proposal_id = Uuid::now_v7().to_string();
    let routes: Vec<(&'static Endpoint, &str, EventBuilder)> = vec![
        (
            &SUBMIT_JOB,
            "jobs:write",
            event("POST", "/api/scheduler/jobs").json(
                &json!({"name": "r", "sla_tier": "gold", "cpu_required": 1, "memory_required": 1}),
            ),
        ),
        (&LIST_JOBS, "jobs:read", event("GET", "/api/scheduler/jobs")),
        (
            &GET_JOB,
            "jobs:read",
            event("GET", "/api/scheduler/jobs/x").path_parameter("id", &job_id),
        ),
        (
            &CANCEL_JOB,
            "jobs:write",
            event("DELETE", "/api/scheduler/jobs/x").path_parameter("id", &job_id),
        ),
        (
            &REGISTER_DEVICE,
            "devices:write",
            event("POST", "/api/idle-compute/devices").json(&json!({"device_id": "d1", "device_type": "laptop", "cpu_cores": 4, "memory_mb": 8192})),
        ),
        (&LIST_DEVICES, "devices:read", event("GET", "/api/idle-compute/devices")),
        (&BALANCE, "tokens:read", event("GET", "/api/tokenomics/balance")),
        (
            &TRANSFER,
            "tokens:write",
            event("POST", "/api/tokenomics/transfer").json(&json!({"from_address": wallet, "to_address": format!("0x{}", "ab".repeat(32)), "amount": "1"})),
        ),
        (
            &STAKE,
            "tokens:write",
            event("POST", "/api/tokenomics/stake")
                .json(&json!({"address": wallet, "amount": "1"})),
        ),
        (
            &UNSTAKE,
            "tokens:write",
            event("POST", "/api/tokenomics/unstake")
                .json(&json!({"address": wallet, "amount": "1"})),
        ),
        (
            &CREATE_PROPOSAL,
            "governance:write",
            event("POST", "/api/tokenomics/proposals").json(&json!({"title": "Lower the fees", "description": "Halve the platform fee for bronze-tier jobs for one trial quarter.", "proposer": wallet})),
        ),
        (
            &VOTE,
            "governance:write",
            event("POST", "/api/tokenomics/vote").json(
                &json!({"proposal_id": proposal_id, "voter": wallet, "vote": true}),
            ),
        ),
    ];
    for (endpoint, scope, request) in routes {
        let others: Vec<&str> = ALL_SCOPES
            .iter()
            .copied()
            .filter(|other| *other != scope)
            .collect();
        let (_, without) = app.key(&token, &key_body(&others)).await;
        let refused = app
            .call(endpoint, request.clone().api_key(&without).build())
            .await;
        assert_eq!(refused.status(), 403, "{scope}: {}", refused.text());
        assert_eq!(
            refused.json()["detail"],
            format!("This API key lacks the scope {scope}")
        );
        let (_, with) = app.key(&token, &key_body(&[scope])).await;
        let admitted = app.call(endpoint, request.api_key(&with).build()).await;
        assert!(
            ![401, 403].contains(&admitted.status()),
            "{scope}: {} {}",
            admitted.status(),
            admitted.text()
        );
    }
    // Reading proposals and `me` take any valid key.
    let (_, narrow) = app.key(&token, &key_body(&["jobs:read"])).await;
    for (endpoint, path) in [
        (&LIST_PROPOSALS, "/api/tokenomics/proposals"),
        (&ME, "/api/auth/me"),
    ] {
        let response = app
            .call(endpoint, event("GET", path).api_key(&narrow).build())
            .await;
        assert_eq!(response.status(), 200, "{path}: {}", response.text());
    }
}

#[tokio::test]
async fn admin_and_account_routes_refuse_keys_whatever_the_owner() {
    let injector = FaultInjector::start().await;
    let app = TestApp::with_fault_injector(&injector).await;
    let (_, admin) = app.admin_with_token().await;
    let wallet = app.wallet(&admin).await;
    let (id, secret) = app.key(&admin, &key_body(&ALL_SCOPES)).await;
    let requests: Vec<(&'static Endpoint, EventBuilder)> = vec![
        (
            &MINT,
            event("POST", "/api/tokenomics/mint").json(&json!({"address": wallet, "amount": "5"})),
        ),
        (&LOGOUT, event("POST", "/api/auth/logout")),
        (
            &CREATE_API_KEY,
            event("POST", "/api/keys").json(&json!({"name": "x"})),
        ),
        (&LIST_API_KEYS, event("GET", "/api/keys")),
        (
            &GET_API_KEY,
            event("GET", &format!("/api/keys/{id}")).path_parameter("id", &id),
        ),
        (
            &REVOKE_API_KEY,
            event("DELETE", &format!("/api/keys/{id}")).path_parameter("id", &id),
        ),
    ];
    for (endpoint, request) in requests {
        injector.observe();
        let response = app.call(endpoint, request.api_key(&secret).build()).await;
        assert_eq!(response.status(), 403, "{}", response.text());
        assert_eq!(
            response.json()["detail"],
            "API keys are not accepted on this route; use a bearer token"
        );
        assert_eq!(
            injector.calls(),
            Vec::<String>::new(),
            "refused before any call"
        );
    }
    // Nothing was minted, no key revoked or created.
    let balance = app
        .call(
            &BALANCE,
            event("GET", "/api/tokenomics/balance")
                .bearer(&admin)
                .build(),
        )
        .await;
    assert_eq!(balance.json()["balance"], "0");
    assert_eq!(list_jobs(&app, &secret).await.status(), 200);
    let keys = app
        .call(
            &LIST_API_KEYS,
            event("GET", "/api/keys").bearer(&admin).build(),
        )
        .await;
    assert_eq!(keys.json()["total"], 1);
}

#[tokio::test]
async fn a_bearer_token_and_a_key_together_are_400() {
    let app = TestApp::new().await;
    let (_, token) = app.user_with_token().await;
    let (_, secret) = app.key(&token, &key_body(&["jobs:read"])).await;
    let both = app
        .call(
            &LIST_JOBS,
            event("GET", "/api/scheduler/jobs")
                .bearer(&token)
                .api_key(&secret)
                .build(),
        )
        .await;
    assert_eq!(both.status(), 400, "{}", both.text());
    assert_eq!(
        both.json()["detail"],
        "Send either a bearer token or an API key, not both"
    );
    // A public route does not read the key at all.
    let root = app
        .call(&ROOT, event("GET", "/").api_key("not-a-key").build())
        .await;
    assert_eq!(root.status(), 200);
}

#[tokio::test]
async fn a_deactivated_owners_keys_stop_working_until_reactivated() {
    let app = TestApp::new().await;
    let (username, token) = app.user_with_token().await;
    let (_, secret) = app.key(&token, &key_body(&["jobs:read"])).await;
    assert_eq!(list_jobs(&app, &secret).await.status(), 200);
    app.act_on(&username, UserAction::Deactivate).await;
    assert_invalid_key(&list_jobs(&app, &secret).await);
    let me = app
        .call(&ME, event("GET", "/api/auth/me").api_key(&secret).build())
        .await;
    assert_invalid_key(&me);
    app.act_on(&username, UserAction::Activate).await;
    assert_eq!(list_jobs(&app, &secret).await.status(), 200);
}

/// Waits, if need be, so that a burst falls inside one hour-long window (and one minute-long
/// window of the route buckets).
async fn start_of_an_hour() {
    let elapsed = (epoch_seconds() % 3600) as u64;
    if elapsed > 3600 - 30 {
        tokio::time::sleep(Duration::from_secs(3600 - elapsed + 1)).await;
    }
    let elapsed = (epoch_seconds() % 60) as u64;
    if elapsed > 45 {
        tokio::time::sleep(Duration::from_secs(60 - elapsed + 1)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_requests_against_a_key_limit_of_ten_admit_exactly_ten() {
    let app = TestApp::new().await;
    let state = app.state;
    let (_, token) = app.user_with_token().await;
    let (_, secret) = app
        .key(&token, &json!({"name": "burst", "rate_limit": 10}))
        .await;
    start_of_an_hour().await;
    let requests: Vec<_> = (0..50)
        .map(|n| {
            // Spread over routes and source addresses: the budget is the key's, per hour.
            let (endpoint, request) = match n % 3 {
                0 => (&LIST_JOBS, event("GET", "/api/scheduler/jobs")),
                1 => (&ME, event("GET", "/api/auth/me")),
                _ => (&LIST_DEVICES, event("GET", "/api/idle-compute/devices")),
            };
            let request = request
                .api_key(&secret)
                .source_ip(&format!("10.0.{}.{}", n / 200, n % 200))
                .build();
            tokio::spawn(async move {
                let response = shared::http::dispatch(endpoint, request, state).await;
                let limit = response
                    .headers()
                    .get("x-ratelimit-limit")
                    .and_then(|value| value.to_str().ok())
                    .map(str::to_owned);
                (response.status().as_u16(), limit)
            })
        })
        .collect();
    let mut answers = Vec::new();
    for request in requests {
        answers.push(request.await.unwrap());
    }
    let statuses: Vec<u16> = answers.iter().map(|(status, _)| *status).collect();
    assert_eq!(
        statuses.iter().filter(|&&s| s == 200).count(),
        10,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|&&s| s == 429).count(),
        40,
        "{statuses:?}"
    );
    assert!(
        answers
            .iter()
            .all(|(_, limit)| limit.as_deref() == Some("10")),
        "{answers:?}"
    );
    let refused = list_jobs(&app, &secret).await;
    assert_eq!(refused.status(), 429);
    let retry_after: u64 = refused.header("retry-after").unwrap().parse().unwrap();
    assert!(retry_after > 60, "an hour's window: {retry_after}");
    // The owner's token has budgets of its own.
    let with_token = app
        .call(
            &LIST_JOBS,
            event("GET", "/api/scheduler/jobs").bearer(&token).build(),
        )
        .await;
    assert_eq!(with_token.status(), 200);
}

#[tokio::test]
async fn a_refused_key_is_charged_to_the_ip_not_to_the_key() {
    let app = TestApp::with_settings(&[("RATE_LIMIT_READ_PER_MIN", "3")]).await;
    let (_, token) = app.user_with_token().await;
    let (_, secret) = app
        .key(&token, &json!({"name": "small", "rate_limit": 2}))
        .await;
    start_of_an_hour().await;
    let ip = format!("10.9.{}.{}", epoch_seconds() % 200, epoch_seconds() % 199);
    let forged_limit = forged(&secret, |body| {
        body[64..68].copy_from_slice(&1_000u32.to_be_bytes())
    });
    let on_ip = |secret: String| {
        app.call(
            &LIST_JOBS,
            event("GET", "/api/scheduler/jobs")
                .api_key(&secret)
                .source_ip(&ip)
                .build(),
        )
    };
    for _ in 0..3 {
        assert_invalid_key(&on_ip(forged_limit.clone()).await);
    }
    // The IP's read bucket is spent; the key's own budget is untouched.
    assert_eq!(on_ip(forged_limit.clone()).await.status(), 429);
    let genuine = list_jobs(&app, &secret).await;
    assert_eq!(genuine.status(), 200);
    assert_eq!(genuine.header("x-ratelimit-remaining"), Some("1"));
}

#[tokio::test]
async fn the_26th_active_key_is_refused_and_an_expired_or_revoked_one_frees_a_place() {
    let app = TestApp::new().await;
    let (_, token) = app.user_with_token().await;
    let mut ids = Vec::new();
    for n in 0..25 {
        ids.push(app.key(&token, &json!({"name": format!("k{n}")})).await.0);
    }
    let refused = app.create_key(&token, &json!({"name": "k25"})).await;
    assert_eq!(refused.status(), 409, "{}", refused.text());
    assert!(refused.json()["detail"].as_str().unwrap().contains("25"));
    let listed = app
        .call(
            &LIST_API_KEYS,
            event("GET", "/api/keys").bearer(&token).build(),
        )
        .await;
    assert_eq!(listed.json()["total"], 25, "the refused key was not stored");
    // An expired key's place is taken back when a new key needs it.
    let past = (epoch_seconds() - 1).to_string();
    set_key_attribute(&app, &ids[3], "valid_until", AttributeValue::N(past)).await;
    assert_eq!(
        app.create_key(&token, &json!({"name": "k25"}))
            .await
            .status(),
        201
    );
    assert_eq!(
        app.create_key(&token, &json!({"name": "k26"}))
            .await
            .status(),
        409
    );
    // So is a revoked key's.
    let revoked = app
        .call(
            &REVOKE_API_KEY,
            event("DELETE", "/api/keys/x")
                .path_parameter("id", &ids[7])
                .bearer(&token)
                .build(),
        )
        .await;
    assert_eq!(revoked.status(), 200);
    assert_eq!(
        app.create_key(&token, &json!({"name": "k26"}))
            .await
            .status(),
        201
    );
    assert_eq!(
        app.create_key(&token, &json!({"name": "k27"}))
            .await
            .status(),
        409
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thirty_concurrent_creations_leave_exactly_twenty_five_keys() {
    let app = TestApp::new().await;
    let state = app.state;
    let (_, token) = app.user_with_token().await;
    let creations: Vec<_> = (0..30)
        .map(|n| {
            let request = event("POST", "/api/keys")
                .bearer(&token)
                .json(&json!({"name": format!("k{n}")}))
                .build();
            tokio::spawn(async move {
                shared::http::dispatch(&CREATE_API_KEY, request, state)
                    .await
                    .status()
                    .as_u16()
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for creation in creations {
        statuses.push(creation.await.unwrap());
    }
    assert_eq!(
        statuses.iter().filter(|&&s| s == 201).count(),
        25,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|&&s| s == 409).count(),
        5,
        "{statuses:?}"
    );
    let listed = app
        .call(
            &LIST_API_KEYS,
            event("GET", "/api/keys").bearer(&token).build(),
        )
        .await;
    assert_eq!(listed.json()["total"], 25);
}

/// The issue's cost budget: a key-authenticated request reads its key and the key's owner in the
/// rate limiter's one BatchGetItem, beside the counter's one write; the handler's first read
/// rides in it too. `last_used`, when due, is written beside the handler.
#[tokio::test]
async fn a_key_authenticated_request_costs_the_limiters_two_round_trips() {
    let injector = FaultInjector::start().await;
    let app = TestApp::with_fault_injector(&injector).await;
    let (_, token) = app.user_with_token().await;
    let job = app
        .call(
            &SUBMIT_JOB,
            event("POST", "/api/scheduler/jobs")
                .bearer(&token)
                .json(&json!({"name": "render", "sla_tier": "gold", "cpu_required": 1, "memory_required": 1}))
                .build(),
        )
        .await
        .json();
    let job_id = job["jobId"].as_str().unwrap().to_owned();
    let (_, secret) = app.key(&token, &key_body(&["jobs:read"])).await;
    let get_job = || {
        app.call(
            &GET_JOB,
            event("GET", &format!("/api/scheduler/jobs/{job_id}"))
                .path_parameter("id", &job_id)
                .api_key(&secret)
                .build(),
        )
    };
    let limiter: Vec<String> = LIMITER.iter().map(|call| call.to_string()).collect();

    // First use: last_used is due, so one UpdateItem of the key beside the (empty) handler.
    injector.observe();
    assert_eq!(get_job().await.status(), 200);
    let mut first = limiter.clone();
    first.push("UpdateItem".into());
    assert_eq!(injector.calls(), first);
    let written: Vec<_> = injector.written_keys().into_iter().collect();
    assert_eq!(written.len(), 1);
    assert!(written[0].0.starts_with("APIKEY#"), "{written:?}");

    // Within the minute: the limiter's two concurrent calls and nothing else.
    injector.observe();
    assert_eq!(get_job().await.status(), 200);
    assert_eq!(injector.calls(), limiter);
    injector.observe();
    assert_eq!(list_jobs(&app, &secret).await.status(), 200);
    let mut listing = limiter.clone();
    listing.push("Query".into());
    assert_eq!(injector.calls(), listing);
    assert!(injector.written_keys().is_empty());
}

#[tokio::test]
async fn last_used_is_written_at_most_once_a_minute() {
    let app = TestApp::new().await;
    let (_, token) = app.user_with_token().await;
    let (id, secret) = app.key(&token, &key_body(&["jobs:read"])).await;
    let last_used = || async {
        key_item(&app, &id)
            .await
            .get("last_used")
            .map(|value| value.as_n().unwrap().parse::<i64>().unwrap())
    };
    assert_eq!(last_used().await, None);
    let before = epoch_seconds();
    assert_eq!(list_jobs(&app, &secret).await.status(), 200);
    let first = last_used().await.expect("written on first use");
    assert!((before..=epoch_seconds()).contains(&first), "{first}");
    // Set it a little back: within the minute, requests leave it alone.
    set_key_attribute(
        &app,
        &id,
        "last_used",
        AttributeValue::N((first - 30).to_string()),
    )
    .await;
    assert_eq!(list_jobs(&app, &secret).await.status(), 200);
    assert_eq!(last_used().await, Some(first - 30));
    // Past the minute, the next request writes it again.
    let later = TestApp::later(time::Duration::seconds(31)).await;
    assert_eq!(list_jobs(&later, &secret).await.status(), 200);
    let second = last_used().await.unwrap();
    assert!(second >= first + 31 - 1, "{first} -> {second}");
    let fetched = app
        .call(
            &GET_API_KEY,
            event("GET", &format!("/api/keys/{id}"))
                .path_parameter("id", &id)
                .bearer(&token)
                .build(),
        )
        .await
        .json();
    assert!(fetched["last_used"].is_string(), "{fetched}");
}
