#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    shared::http::run(&shared::routes::SUBMIT_JOB, shared::handlers::submit_job).await
}
