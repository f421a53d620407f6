#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    shared::http::run(
        &shared::routes::LIST_PROPOSALS,
        shared::handlers::list_proposals,
    )
    .await
}
