#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    orrery::lambda::run_http(orrery_fn_event_log::router).await
}
