#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    orrery::telemetry::init();
    // The document needs no AWS resources: no App, no clients.
    let router = orrery::http::platform_layers(
        orrery_openapi::router(),
        orrery::http::DEFAULT_MAX_BODY_BYTES,
    );
    lambda_http::run(router).await
}
