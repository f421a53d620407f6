use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

/// Set to `1`, every DynamoDB round trip and every argon2id run logs one `cost` line with its
/// wall-clock start and end, so that `make bench` can count and time them from outside the
/// process (and tell calls that overlap from calls in sequence).
pub const COST_LOG_VARIABLE: &str = "FOG_LOG_COSTS";

/// JSON log lines on stdout, which Lambda forwards to CloudWatch.
pub fn init() {
    tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::INFO)
        .with_target(false)
        .with_current_span(false)
        .with_ansi(false)
        .init();
}

pub fn costs_logged() -> bool {
    static LOGGED: OnceLock<bool> = OnceLock::new();
    *LOGGED.get_or_init(|| std::env::var(COST_LOG_VARIABLE).is_ok_and(|value| value == "1"))
}

/// Runs `work`, logging its cost line when costs are logged.
pub fn costed<T>(kind: &'static str, operation: &str, work: impl FnOnce() -> T) -> T {
    if !costs_logged() {
        return work();
    }
    let started = SystemTime::now();
    let result = work();
    log_cost(kind, operation, started);
    result
}

/// One cost line: `kind` (`dynamodb`, `argon2id`) and `operation` ran from `started` until now.
pub fn log_cost(kind: &'static str, operation: &str, started: SystemTime) {
    tracing::info!(
        cost = kind,
        operation,
        started_us = epoch_micros(started),
        finished_us = epoch_micros(SystemTime::now()),
        "cost"
    );
}

fn epoch_micros(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_micros() as u64)
}
