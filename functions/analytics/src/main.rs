#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    orrery::lambda::run_http(orrery_fn_analytics::router).await
}
