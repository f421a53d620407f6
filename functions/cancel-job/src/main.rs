#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    shared::http::run(&shared::routes::CANCEL_JOB, shared::handlers::cancel_job).await
}
