#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    shared::http::run(&shared::handlers::VERIFY_EMAIL_RESEND).await
}
