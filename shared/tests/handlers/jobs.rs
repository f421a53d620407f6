//! The job handlers in-process: what is stored, and the listing's pages.

use std::collections::HashSet;

use crate::support::{TestApp, event};
use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{Value, json};
use shared::handlers::{CANCEL_JOB, GET_JOB, LIST_JOBS, SUBMIT_JOB};

async fn submit(app: &TestApp, token: &str, body: Value) -> crate::support::TestResponse {
    app.call(
        &SUBMIT_JOB,
        event("POST", "/api/scheduler/jobs")
            .bearer(token)
            .json(&body)
            .build(),
    )
    .await
}

fn job_body(name: &str) -> Value {
    json!({"name": name, "sla_tier": "gold", "cpu_required": 2, "memory_required": 4})
}

#[tokio::test]
async fn the_stored_job_is_escaped_and_holds_no_unknown_field() {
    let app = TestApp::new().await;
    let (_, token) = app.user_with_token().await;
    let mut body = job_body("  <b>render</b> & encode ");
    body["status"] = json!("completed");
    body["user_id"] = json!("someone-else");
    body["injected"] = json!("x");
    let response = submit(&app, &token, body).await;
    assert_eq!(response.status(), 201, "{}", response.text());
    let answered = response.json();
    assert_eq!(answered["status"], "pending");
    let job_id = answered["jobId"].as_str().unwrap();
    let user_id = app.state.jwt_keys().unwrap().verify(&token).unwrap().sub;
    let item = app
        .dynamodb()
        .get_item()
        .table_name(app.table())
        .key("PK", AttributeValue::S(format!("USER#{user_id}")))
        .key("SK", AttributeValue::S(format!("JOB#{job_id}")))
        .send()
        .await
        .unwrap()
        .item
        .expect("the job item");
    assert_eq!(
        item["name"].as_s().unwrap(),
        "&lt;b&gt;render&lt;/b&gt; &amp; encode"
    );
    assert_eq!(item["status"].as_s().unwrap(), "pending");
    assert_eq!(item["user_id"].as_s().unwrap(), &user_id.to_string());
    assert_eq!(item["gpu_required"].as_n().unwrap(), "0");
    assert!(!item.contains_key("injected"));
    assert!(!item.contains_key("duration_estimate"));
}

#[tokio::test]
async fn pages_walk_every_job_once_newest_first_and_filter_by_status() {
    let app = TestApp::new().await;
    let (_, token) = app.user_with_token().await;
    let mut submitted = Vec::new();
    for n in 0..7 {
        let response = submit(&app, &token, job_body(&format!("job {n}"))).await;
        submitted.push(response.json()["jobId"].as_str().unwrap().to_owned());
    }
    for cancelled in [&submitted[1], &submitted[4]] {
        let response = app
            .call(
                &CANCEL_JOB,
                event("DELETE", "/api/scheduler/jobs/x")
                    .path_parameter("id", cancelled)
                    .bearer(&token)
                    .build(),
            )
            .await;
        assert_eq!(response.status(), 200);
    }

    let walk = |filter: &'static str| {
        let app = &app;
        let token = token.clone();
        async move {
            let mut seen = Vec::new();
            let mut cursor: Option<String> = None;
            loop {
                let mut query = format!("limit=3{filter}");
                if let Some(cursor) = &cursor {
                    query.push_str(&format!("&cursor={cursor}"));
                }
                let page = app
                    .call(
                        &LIST_JOBS,
                        event("GET", "/api/scheduler/jobs")
                            .query(&query)
                            .bearer(&token)
                            .build(),
                    )
                    .await;
                assert_eq!(page.status(), 200, "{}", page.text());
                let page = page.json();
                let jobs = page["jobs"].as_array().unwrap();
                assert!(jobs.len() <= 3);
                assert_eq!(page["total"], jobs.len());
                seen.extend(
                    jobs.iter()
                        .map(|job| job["id"].as_str().unwrap().to_owned()),
                );
                match page["next_cursor"].as_str() {
                    Some(next) => cursor = Some(next.to_owned()),
                    None => return seen,
                }
            }
        }
    };

    let all = walk("").await;
    let newest_first: Vec<_> = submitted.iter().rev().cloned().collect();
    assert_eq!(all, newest_first);

    let pending = walk("&status=PENDING").await;
    let expected: Vec<_> = newest_first
        .iter()
        .filter(|id| *id != &submitted[1] && *id != &submitted[4])
        .cloned()
        .collect();
    assert_eq!(pending, expected);
    assert_eq!(
        walk("&status=cancelled")
            .await
            .into_iter()
            .collect::<HashSet<_>>(),
        HashSet::from([submitted[1].clone(), submitted[4].clone()])
    );
}

#[tokio::test]
async fn malformed_job_ids_and_cursors() {
    let app = TestApp::new().await;
    let (_, token) = app.user_with_token().await;
    for id in ["not-a-uuid", "", "00000000-0000-0000-0000-000000000000"] {
        let response = app
            .call(
                &GET_JOB,
                event("GET", "/api/scheduler/jobs/x")
                    .path_parameter("id", id)
                    .bearer(&token)
                    .build(),
            )
            .await;
        assert_eq!(response.status(), 404, "{id:?}");
    }
    let bad_cursor = app
        .call(
            &LIST_JOBS,
            event("GET", "/api/scheduler/jobs")
                .query("cursor=%21%21not-base64")
                .bearer(&token)
                .build(),
        )
        .await;
    assert_eq!(bad_cursor.status(), 400);
    let bad_query = app
        .call(
            &LIST_JOBS,
            event("GET", "/api/scheduler/jobs")
                .query("limit=0&status=done")
                .bearer(&token)
                .build(),
        )
        .await;
    assert_eq!(bad_query.status(), 422);
    let fields: HashSet<_> = bad_query.json()["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|error| error["field"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(fields, HashSet::from(["limit".into(), "status".into()]));
}

#[tokio::test]
async fn get_job_reads_the_job_in_the_rate_limiters_round_trip() {
    let injector = crate::support::faults::FaultInjector::start().await;
    let app = TestApp::with_fault_injector(&injector).await;
    let (_, owner) = app.user_with_token().await;
    let (_, other) = app.user_with_token().await;
    let submitted = submit(&app, &owner, job_body("render")).await.json();
    let job_id = submitted["jobId"].as_str().unwrap();
    let get = |token: &str| {
        event("GET", &format!("/api/scheduler/jobs/{job_id}"))
            .path_parameter("id", job_id)
            .bearer(token)
            .build()
    };

    injector.observe();
    let response = app.call(&GET_JOB, get(&owner)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.json()["id"], job_id);
    assert_eq!(injector.calls(), ["UpdateItem", "BatchGetItem"]);

    injector.observe();
    assert_eq!(app.call(&GET_JOB, get(&other)).await.status(), 404);
    assert_eq!(injector.calls(), ["UpdateItem", "BatchGetItem"]);
}
