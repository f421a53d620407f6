//! The bench's Runtime API driving a real lambda_runtime loop: the floor binary, built for the
//! test, through a cold start and warm invocations.

use std::path::PathBuf;

use bench::events::api_gateway_event;
use bench::measure::{Answer, Subject, cold_start, warm};

fn floor() -> Subject {
    Subject {
        name: "floor".into(),
        binary: PathBuf::from(env!("CARGO_BIN_EXE_floor")),
        memory_mb: 128,
        env: Vec::new(),
        event: api_gateway_event("GET", "/", None),
        tokens: None,
        chain: None,
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_cold_start_is_timed_from_spawn_to_poll_and_to_answer() {
    let run = cold_start(&floor()).await.expect("the floor starts");
    assert!(run.init_ms > 0.0);
    assert!(run.cold_ms > run.init_ms);
    assert_eq!(
        run.answer,
        Answer::Http {
            status: 200,
            body: "ok".into()
        }
    );
    assert_eq!(run.init_costs.dynamodb_calls(), 0);
}

#[tokio::test(flavor = "current_thread")]
async fn warm_invocations_are_each_answered_and_timed() {
    let run = warm(&floor(), 25).await.expect("the floor answers");
    assert_eq!(run.latencies_ms.len(), 25);
    assert!(run.latencies_ms.iter().all(|ms| *ms > 0.0));
    assert_eq!(run.answers.get("200"), Some(&25));
    assert!(run.peak_rss_bytes > 0);
}

#[tokio::test(flavor = "current_thread")]
async fn a_function_that_dies_at_init_is_reported() {
    let mut subject = floor();
    // It exits before it ever polls: reported at once, not waited for.
    subject.binary = PathBuf::from("/bin/false");
    assert!(cold_start(&subject).await.is_err());
}
