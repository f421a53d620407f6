//! The ledger in-process: what a movement writes, and the idempotency records.

use crate::support::{TestApp, TestResponse, event};
use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::json;
use shared::handlers::{MINT, TRANSFER};
use time::OffsetDateTime;

async fn post(
    app: &TestApp,
    handler: &str,
    token: &str,
    key: Option<&str>,
    body: serde_json::Value,
) -> TestResponse {
    let mut request = event("POST", &format!("/api/tokenomics/{handler}"))
        .bearer(token)
        .json(&body);
    if let Some(key) = key {
        request = request.header("idempotency-key", key);
    }
    let request = request.build();
    match handler {
        "mint" => app.call(&MINT, request).await,
        "transfer" => app.call(&TRANSFER, request).await,
        _ => unreachable!("only mint and transfer are used here"),
    }
}

/// Two users, the first holding `amount` tokens: (sender token, sender, receiver).
async fn funded_pair(app: &TestApp, amount: &str) -> (String, String, String) {
    let (_, admin) = app.admin_with_token().await;
    let (_, sender_token) = app.user_with_token().await;
    let (_, receiver_token) = app.user_with_token().await;
    let sender = app.wallet(&sender_token).await;
    let receiver = app.wallet(&receiver_token).await;
    let minted = post(
        app,
        "mint",
        &admin,
        None,
        json!({"address": sender, "amount": amount}),
    )
    .await;
    assert_eq!(minted.status(), 200, "{}", minted.text());
    (sender_token, sender, receiver)
}

async fn items_of(
    app: &TestApp,
    partition: &str,
) -> Vec<std::collections::HashMap<String, AttributeValue>> {
    app.dynamodb()
        .query()
        .table_name(app.table())
        .key_condition_expression("PK = :pk")
        .expression_attribute_values(":pk", AttributeValue::S(partition.to_owned()))
        .send()
        .await
        .unwrap()
        .items
        .unwrap_or_default()
}

#[tokio::test]
async fn a_transfer_writes_one_ledger_entry_and_a_refused_one_writes_nothing() {
    let app = TestApp::new().await;
    let (token, sender, receiver) = funded_pair(&app, "2").await;
    let body =
        |amount: &str| json!({"from_address": sender, "to_address": receiver, "amount": amount});
    let refused = post(&app, "transfer", &token, Some("refused"), body("2.5")).await;
    assert_eq!(refused.status(), 409);
    let done = post(&app, "transfer", &token, None, body("1.5")).await;
    assert_eq!(done.status(), 200, "{}", done.text());
    let transaction_id = done.json()["transactionId"].as_str().unwrap().to_owned();

    let sender_items = items_of(&app, &format!("WALLET#{sender}")).await;
    let kinds: Vec<_> = sender_items
        .iter()
        .filter(|item| item["SK"].as_s().unwrap().starts_with("TX#"))
        .map(|item| item["kind"].as_s().unwrap().as_str())
        .collect();
    assert_eq!(
        kinds,
        ["mint", "transfer"],
        "the refused transfer left no entry"
    );
    let entry = sender_items
        .iter()
        .find(|item| {
            item.get("kind")
                .is_some_and(|kind| kind.as_s().unwrap() == "transfer")
        })
        .unwrap();
    assert_eq!(entry["SK"].as_s().unwrap(), &format!("TX#{transaction_id}"));
    assert_eq!(entry["kind"].as_s().unwrap(), "transfer");
    assert_eq!(entry["amount"].as_n().unwrap(), "1500000000000000000");
    assert_eq!(entry["to_address"].as_s().unwrap(), &receiver);
    let wallet = sender_items
        .iter()
        .find(|item| item["SK"].as_s().unwrap() == "WALLET")
        .unwrap();
    assert_eq!(wallet["balance"].as_n().unwrap(), "500000000000000000");
    // The refused request's key was not kept: nothing of it was written.
    let user_id = app.state.jwt_keys().unwrap().verify(&token).unwrap().sub;
    assert!(
        items_of(&app, &format!("IDEMPOTENCY#{user_id}#refused"))
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn an_idempotency_record_is_kept_at_least_a_day() {
    let app = TestApp::new().await;
    let (token, sender, receiver) = funded_pair(&app, "1").await;
    let before = OffsetDateTime::now_utc().unix_timestamp();
    let body = json!({"from_address": sender, "to_address": receiver, "amount": "1"});
    assert_eq!(
        post(&app, "transfer", &token, Some("day"), body)
            .await
            .status(),
        200
    );
    let user_id = app.state.jwt_keys().unwrap().verify(&token).unwrap().sub;
    let records = items_of(&app, &format!("IDEMPOTENCY#{user_id}#day")).await;
    let [record] = records.as_slice() else {
        panic!("one record expected, got {records:?}")
    };
    let expires_at: i64 = record["expires_at"].as_n().unwrap().parse().unwrap();
    assert!(expires_at >= before + 24 * 3600);
    assert_eq!(record["status"].as_n().unwrap(), "200");
    assert!(!record["fingerprint"].as_s().unwrap().is_empty());
    let stored: serde_json::Value = serde_json::from_str(record["body"].as_s().unwrap()).unwrap();
    assert_eq!(stored["amount"], "1");
}

#[tokio::test]
async fn an_expired_idempotency_record_counts_as_absent() {
    let app = TestApp::new().await;
    let (token, sender, receiver) = funded_pair(&app, "2").await;
    let user_id = app.state.jwt_keys().unwrap().verify(&token).unwrap().sub;
    let expired = OffsetDateTime::now_utc().unix_timestamp() - 1;
    app.dynamodb()
        .put_item()
        .table_name(app.table())
        .item(
            "PK",
            AttributeValue::S(format!("IDEMPOTENCY#{user_id}#old")),
        )
        .item("SK", AttributeValue::S("IDEMPOTENCY".into()))
        .item("fingerprint", AttributeValue::S("another request".into()))
        .item("status", AttributeValue::N("200".into()))
        .item("body", AttributeValue::S("{}".into()))
        .item("expires_at", AttributeValue::N(expired.to_string()))
        .send()
        .await
        .unwrap();
    let body = json!({"from_address": sender, "to_address": receiver, "amount": "1"});
    let response = post(&app, "transfer", &token, Some("old"), body).await;
    assert_eq!(response.status(), 200, "{}", response.text());
    assert_eq!(response.json()["balance"], "1");
}

#[tokio::test]
async fn an_idempotency_key_beyond_visible_ascii_is_a_validation_error() {
    // API Gateway passes such a header on as UTF-8 text; cargo-lambda's emulator answers its own
    // 500 before any function runs, so the conformance run leaves these cases to this test.
    let app = TestApp::new().await;
    let (token, sender, receiver) = funded_pair(&app, "1").await;
    let body = json!({"from_address": sender, "to_address": receiver, "amount": "1"});
    let response = post(&app, "transfer", &token, Some("clé-×\u{9b}"), body).await;
    assert_eq!(response.status(), 422, "{}", response.text());
    assert_eq!(response.json()["errors"][0]["field"], "Idempotency-Key");
    let entries = items_of(&app, &format!("WALLET#{sender}")).await;
    let transfers = entries
        .iter()
        .filter(|item| {
            item.get("kind")
                .is_some_and(|kind| kind.as_s().unwrap() == "transfer")
        })
        .count();
    assert_eq!(transfers, 0, "nothing moved");
}
