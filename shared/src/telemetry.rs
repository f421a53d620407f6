use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::Subscriber;
use tracing::level_filters::LevelFilter;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;

use crate::routes::Route;

/// Set to `1`, every DynamoDB round trip and every argon2id run logs one `cost` line with its
/// wall-clock start and end, so that `make bench` can count and time them from outside the
/// process (and tell calls that overlap from calls in sequence).
pub const COST_LOG_VARIABLE: &str = "FOG_LOG_COSTS";

/// Set by Lambda from the function's `LoggingConfig.ApplicationLogLevel`.
const LOG_LEVEL_VARIABLE: &str = "AWS_LAMBDA_LOG_LEVEL";

/// JSON log lines on stdout, which Lambda forwards to CloudWatch, at the level
/// `AWS_LAMBDA_LOG_LEVEL` names (INFO when it is unset or names no level).
pub fn init() {
    let configured =
        std::env::var_os(LOG_LEVEL_VARIABLE).map(|value| value.to_string_lossy().into_owned());
    let level = max_level(configured.as_deref());
    tracing::subscriber::set_global_default(subscriber(
        level.unwrap_or(LevelFilter::INFO),
        std::io::stdout,
    ))
    .expect("telemetry::init runs once per process");
    if let Err(unknown) = level {
        tracing::warn!(
            value = unknown,
            "{LOG_LEVEL_VARIABLE} names no level (TRACE, DEBUG, INFO, WARN, ERROR, FATAL); logging at INFO"
        );
    }
}

/// The most detailed level to log: INFO when `configured` is unset, the unknown value as the
/// error. tracing has no FATAL, its least detailed level being ERROR.
fn max_level(configured: Option<&str>) -> Result<LevelFilter, &str> {
    let Some(configured) = configured else {
        return Ok(LevelFilter::INFO);
    };
    match configured.to_ascii_uppercase().as_str() {
        "TRACE" => Ok(LevelFilter::TRACE),
        "DEBUG" => Ok(LevelFilter::DEBUG),
        "INFO" => Ok(LevelFilter::INFO),
        "WARN" => Ok(LevelFilter::WARN),
        "ERROR" | "FATAL" => Ok(LevelFilter::ERROR),
        _ => Err(configured),
    }
}

/// One JSON object per line: `timestamp`, `level`, the event's `fields`, and the request's
/// `span` (`request_id`, `route`) on every line logged while serving a request. The request
/// span is the only span recorded: a span of another crate (the SDK's, at DEBUG) would
/// otherwise become the current span of the lines logged inside it and hide the request's.
fn subscriber<W>(level: LevelFilter, writer: W) -> impl Subscriber + Send + Sync
where
    W: for<'writer> MakeWriter<'writer> + Send + Sync + 'static,
{
    let events_and_the_request_span = filter_fn(move |metadata| {
        *metadata.level() <= level && (metadata.is_event() || metadata.target() == module_path!())
    })
    .with_max_level_hint(level);
    tracing_subscriber::registry().with(
        tracing_subscriber::fmt::layer()
            .json()
            .with_target(false)
            .with_current_span(true)
            .with_span_list(false)
            .with_ansi(false)
            .with_writer(writer)
            .with_filter(events_and_the_request_span),
    )
}

/// The span of one request: every line logged while it is entered carries `request_id`,
/// `correlation_id` (the client's `X-Correlation-ID`, or the request id) and `route` ("METHOD
/// path", the `Display` of `Route`). At ERROR, the least detailed level, so that it is recorded
/// whatever the level logged (a span's level only decides whether it is recorded).
pub fn request_span(
    request_id: Option<&str>,
    correlation_id: Option<&str>,
    route: &Route,
) -> tracing::Span {
    tracing::error_span!(
        "request",
        request_id,
        correlation_id,
        route = %route
    )
}

/// `work`, to run on another thread (Tokio's blocking pool) inside the current span, so that
/// what it logs stays with the request.
pub fn in_current_span<T>(work: impl FnOnce() -> T + Send) -> impl FnOnce() -> T + Send {
    let span = tracing::Span::current();
    move || span.in_scope(work)
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

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use serde_json::Value;

    use super::*;
    use crate::routes::{RateLimit, Route};

    const ME: Route = Route {
        function: "me",
        method: "GET",
        paths: &["/api/auth/me"],
        rate_limit: RateLimit::Auth,
        api_keys: crate::routes::ApiKeys::Ignored,
        serves: crate::routes::Serves::Json,
        query: &[],
    };

    #[test]
    fn the_log_level_is_lambdas_in_either_case_and_info_otherwise() {
        for (configured, level) in [
            ("TRACE", LevelFilter::TRACE),
            ("DEBUG", LevelFilter::DEBUG),
            ("INFO", LevelFilter::INFO),
            ("WARN", LevelFilter::WARN),
            ("ERROR", LevelFilter::ERROR),
            ("FATAL", LevelFilter::ERROR),
            ("trace", LevelFilter::TRACE),
            ("debug", LevelFilter::DEBUG),
            ("info", LevelFilter::INFO),
            ("warn", LevelFilter::WARN),
            ("error", LevelFilter::ERROR),
            ("fatal", LevelFilter::ERROR),
            ("Warn", LevelFilter::WARN),
        ] {
            assert_eq!(max_level(Some(configured)), Ok(level), "{configured}");
        }
        assert_eq!(max_level(None), Ok(LevelFilter::INFO));
        for unknown in ["VERBOSE", "WARNING", "", " INFO", "3"] {
            assert_eq!(max_level(Some(unknown)), Err(unknown));
        }
    }

    /// What `log` wrote through the subscriber `init` installs, one JSON value per line.
    fn logged(level: LevelFilter, log: impl FnOnce()) -> Vec<Value> {
        #[derive(Clone, Default)]
        struct Output(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Output {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(bytes);
                Ok(bytes.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let output = Output::default();
        let writer = output.clone();
        tracing::subscriber::with_default(subscriber(level, move || writer.clone()), log);
        let text = String::from_utf8(output.0.lock().unwrap().clone()).unwrap();
        text.lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }

    #[test]
    fn every_line_of_a_request_carries_its_id_and_route() {
        let lines = logged(LevelFilter::DEBUG, || {
            tracing::info!("outside any request");
            let handed_over =
                request_span(Some("request-1"), Some("client-7.a_b"), &ME).in_scope(|| {
                    tracing::info!(user_id = "user-1", "handled");
                    tracing::debug_span!(target: "aws_smithy_runtime", "try_attempt")
                        .in_scope(|| log_cost("dynamodb", "GetItem", SystemTime::now()));
                    in_current_span(|| tracing::warn!("handed over"))
                });
            handed_over();
        });
        assert_eq!(lines.len(), 4, "{lines:?}");
        assert_eq!(lines[0]["fields"]["message"], "outside any request");
        assert_eq!(lines[0].get("span"), None);
        for line in &lines[1..] {
            assert_eq!(
                line["span"],
                serde_json::json!({
                    "request_id": "request-1",
                    "correlation_id": "client-7.a_b",
                    "route": "GET /api/auth/me",
                    "name": "request"
                }),
                "{line}"
            );
        }
        let handled = lines[1].as_object().unwrap();
        assert_eq!(
            handled.keys().collect::<Vec<_>>(),
            ["fields", "level", "span", "timestamp"]
        );
        assert_eq!(lines[1]["fields"]["user_id"], "user-1");
        assert_eq!(lines[2]["fields"]["message"], "cost");
    }

    #[test]
    fn a_less_detailed_level_drops_lines_but_keeps_the_request_span() {
        let lines = logged(LevelFilter::WARN, || {
            let _request = request_span(Some("request-1"), Some("request-1"), &ME).entered();
            tracing::info!("dropped");
            tracing::warn!("kept");
        });
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert_eq!(lines[0]["level"], "WARN");
        assert_eq!(lines[0]["span"]["request_id"], "request-1");
    }
}
