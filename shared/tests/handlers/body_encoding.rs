//! Request bodies that are not UTF-8, as API Gateway hands them to a function: base64-encoded,
//! with `isBase64Encoded: true` (cargo-lambda's emulator answers such a request with its own 500
//! before any function runs, so `make run` cannot show this). Every body-reading route answers
//! 400 in the problem shape and stores nothing.

use crate::support::{PASSWORD, TestApp, TestResponse, event, unique_username};
use aws_sdk_dynamodb::types::AttributeValue;
use shared::handlers::{
    CREATE_PROPOSAL, LOGIN, MINT, REGISTER, REGISTER_DEVICE, STAKE, SUBMIT_JOB, TRANSFER, UNSTAKE,
    VOTE,
};

/// A registration whose password a client sent in Latin-1: `é` as the single byte 0xE9.
fn latin1_registration(username: &str) -> Vec<u8> {
    let mut body = format!(
        r#"{{"username":"{username}","email":"{username}@example.com","password":"{PASSWORD}"#
    )
    .into_bytes();
    body.push(0xe9);
    body.extend_from_slice(br#""}"#);
    body
}

fn assert_not_utf8_problem(response: &TestResponse) {
    assert_eq!(response.status(), 400, "{}", response.text());
    assert_eq!(
        response.header("content-type"),
        Some("application/problem+json")
    );
    let problem = response.json();
    assert_eq!(problem["status"], 400);
    assert_eq!(problem["title"], "Bad Request");
    let detail = problem["detail"].as_str().unwrap();
    assert!(detail.contains("not UTF-8"), "{detail}");
}

async fn item_exists(app: &TestApp, pk: &str, sk: &str) -> bool {
    app.dynamodb()
        .get_item()
        .table_name(app.table())
        .key("PK", AttributeValue::S(pk.to_owned()))
        .key("SK", AttributeValue::S(sk.to_owned()))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
        .is_some()
}

#[tokio::test]
async fn a_registration_in_latin1_is_a_400_and_registers_nobody() {
    let app = TestApp::new().await;
    let username = unique_username();
    let request = event("POST", "/api/auth/register")
        .header("content-type", "application/json")
        .base64_body(&latin1_registration(&username))
        .build();
    assert_not_utf8_problem(&app.call(&REGISTER, request).await);
    assert!(!item_exists(&app, &format!("USERNAME#{username}"), "CREDENTIAL").await);
    assert!(!item_exists(&app, &format!("EMAIL#{username}@example.com"), "EMAIL").await);
    // The same registration in UTF-8 is fine.
    let mut utf8 = latin1_registration(&username);
    utf8.splice(utf8.len() - 3..utf8.len() - 2, "é".bytes());
    let request = event("POST", "/api/auth/register")
        .header("content-type", "application/json")
        .base64_body(&utf8)
        .build();
    let response = app.call(&REGISTER, request).await;
    assert_eq!(response.status(), 201, "{}", response.text());
}

#[tokio::test]
async fn a_transfer_that_is_not_utf8_is_a_400_and_moves_nothing() {
    let app = TestApp::new().await;
    let (_, token) = app.user_with_token().await;
    let (_, other) = app.user_with_token().await;
    let sender = app.wallet(&token).await;
    let receiver = app.wallet(&other).await;
    let mut body = format!(r#"{{"from_address":"{sender}","to_address":"{receiver}","amount":"1"#)
        .into_bytes();
    body.extend_from_slice(b"\xff\xfe\"}");
    let request = event("POST", "/api/tokenomics/transfer")
        .bearer(&token)
        .header("content-type", "application/json")
        .header("idempotency-key", "not-utf8-transfer")
        .base64_body(&body)
        .build();
    assert_not_utf8_problem(&app.call(&TRANSFER, request).await);
    let entries = app
        .dynamodb()
        .query()
        .table_name(app.table())
        .key_condition_expression("PK = :pk AND begins_with(SK, :tx)")
        .expression_attribute_values(":pk", AttributeValue::S(format!("WALLET#{sender}")))
        .expression_attribute_values(":tx", AttributeValue::S("TX#".into()))
        .send()
        .await
        .unwrap();
    assert_eq!(entries.count(), 0, "no ledger entry");
    let user_id = app.state.jwt_keys().unwrap().verify(&token).unwrap().sub;
    assert!(
        !item_exists(
            &app,
            &format!("IDEMPOTENCY#{user_id}#not-utf8-transfer"),
            "IDEMPOTENCY"
        )
        .await,
        "no idempotency record"
    );
}

#[tokio::test]
async fn every_body_reading_route_refuses_a_body_that_is_not_utf8() {
    let app = TestApp::new().await;
    // An administrator's token: mint checks the caller before it reads the body.
    let (_, token) = app.admin_with_token().await;
    // Bytes that no UTF-8 decoder accepts: in a string, at the top level, a lone continuation
    // byte, a truncated sequence, an overlong encoding, a UTF-16 surrogate encoded as UTF-8.
    let bodies: [&[u8]; 6] = [
        b"{\"name\":\"caf\xe9\"}",
        b"\xff\xfe{\"a\":1}",
        b"{\"a\":\"\x80\"}",
        b"{\"a\":\"\xe2\x82\"}",
        b"{\"a\":\"\xc0\xaf\"}",
        b"{\"a\":\"\xed\xa0\x80\"}",
    ];
    let routes = [
        "/api/auth/register",
        "/api/auth/login",
        "/api/scheduler/jobs",
        "/api/idle-compute/devices",
        "/api/tokenomics/transfer",
        "/api/tokenomics/stake",
        "/api/tokenomics/unstake",
        "/api/tokenomics/mint",
        "/api/tokenomics/proposals",
        "/api/tokenomics/vote",
    ];
    for path in routes {
        for body in bodies {
            let request = event("POST", path)
                .bearer(&token)
                .header("content-type", "application/json")
                .base64_body(body)
                .build();
            let response = match path {
                "/api/auth/register" => app.call(&REGISTER, request).await,
                "/api/auth/login" => app.call(&LOGIN, request).await,
                "/api/scheduler/jobs" => app.call(&SUBMIT_JOB, request).await,
                "/api/idle-compute/devices" => app.call(&REGISTER_DEVICE, request).await,
                "/api/tokenomics/transfer" => app.call(&TRANSFER, request).await,
                "/api/tokenomics/stake" => app.call(&STAKE, request).await,
                "/api/tokenomics/unstake" => app.call(&UNSTAKE, request).await,
                "/api/tokenomics/mint" => app.call(&MINT, request).await,
                "/api/tokenomics/proposals" => app.call(&CREATE_PROPOSAL, request).await,
                "/api/tokenomics/vote" => app.call(&VOTE, request).await,
                _ => unreachable!(),
            };
            assert_not_utf8_problem(&response);
        }
    }
}
