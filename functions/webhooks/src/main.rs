use orrery::App;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    orrery::telemetry::init();
    let app = App::from_env_aws().await?;
    let router = orrery::http::platform_layers(
        orrery_webhooks_api::router(app.clone()),
        app.config.max_body_bytes,
    );
    lambda_http::run(router).await
}
