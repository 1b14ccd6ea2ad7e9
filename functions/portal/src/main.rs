#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    orrery::telemetry::init();
    // Static files and a config document: no App, no AWS clients.
    let platform = orrery::http::Platform::of(&orrery::config::Config::from_env()?);
    let router = orrery::http::platform_layers(
        orrery_fn_portal::router(orrery_fn_portal::PortalConfig::from_env()),
        platform,
    );
    lambda_http::run(router).await
}
