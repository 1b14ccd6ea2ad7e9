#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    // The ephemeris index and ΔT table are built during the cold start, not in the first request.
    orrery_astro::warm_up();
    orrery::lambda::run_http(orrery_fn_readings::router).await
}
