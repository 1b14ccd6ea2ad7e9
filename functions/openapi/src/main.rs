#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    orrery::telemetry::init();
    // The document and the route table need no AWS resources: no App, no clients. This
    // function also takes API Gateway's `$default` route (every unrouted request).
    let platform = orrery::http::Platform::of(&orrery::config::Config::from_env()?);
    let router = orrery::http::platform_layers_with(
        orrery_fn_openapi::router(),
        platform,
        orrery_fn_openapi::unrouted_fallback(),
    );
    lambda_http::run(router).await
}
