use orrery::App;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    orrery::telemetry::init();
    let app = App::from_env_aws().await?;
    // Build the ephemeris index and ΔT table during the cold start, not in the first request.
    orrery_astro::warm_up();
    let router = orrery::http::platform_layers(
        orrery_readings_api::router(app.clone()),
        app.config.max_body_bytes,
    );
    lambda_http::run(router).await
}
