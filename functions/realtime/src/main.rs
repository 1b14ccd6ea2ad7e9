use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    orrery::telemetry::init();
    let app = orrery::App::from_env_aws().await?;
    let management = orrery_realtime::fanout::GatewayManagement::from_env()
        .await
        .ok_or("ORRERY_WEBSOCKET_ENDPOINT is not set")?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        let (app, management) = (app.clone(), management.clone());
        async move {
            Ok::<_, lambda_runtime::Error>(
                orrery_fn_realtime::gateway::handle_invocation(
                    &app,
                    management.as_ref(),
                    event.payload,
                )
                .await,
            )
        }
    }))
    .await
}
