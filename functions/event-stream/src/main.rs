#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    orrery::lambda::run_http_streaming(orrery_fn_event_stream::router).await
}
