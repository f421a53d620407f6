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
