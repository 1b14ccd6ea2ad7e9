//! `/v1/readings`: a natal reading of a chart request or of a saved chart, metered under the
//! `readings` quota class. The reading is assembled by `orrery_charts::reading`.

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use orrery::access::{Caller, QuotaClass, metered};
use orrery::http::ApiJson;
use orrery::openapi::MeteredProblems;
use orrery::{ApiError, App};
use orrery_charts::ChartRef;
use orrery_charts::reading::Reading;
use orrery_charts::schema::ChartRefBody;
use serde_json::Value;

#[utoipa::path(
    post, path = "/v1/readings", operation_id = "create_reading", tag = "readings",
    request_body(content = ChartRefBody, description = "A chart request, or `{\"chart_id\": \"chart_…\"}` of a saved chart"),
    responses((status = 200, description = "The natal reading (metered under `readings`)", body = Reading), MeteredProblems)
)]
async fn create(
    State(app): State<App>,
    caller: Caller,
    ApiJson(body): ApiJson<Value>,
) -> Result<axum::response::Response, ApiError> {
    let chart = ChartRef::from_value(body, "").map_err(ApiError::Validation)?;
    let reading = orrery_charts::reading::generate(&app, &caller, chart).await?;
    let cache_use = reading.chart.cache_use;
    let mut response = axum::response::IntoResponse::into_response(Json(reading));
    if let Some(cache_use) = cache_use {
        // The meter counts it as a chart cache hit or miss (analytics).
        response.extensions_mut().insert(cache_use);
    }
    Ok(response)
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(create))]
struct ReadingsApi;

/// The OpenAPI paths of this function.
pub fn openapi() -> utoipa::openapi::OpenApi {
    <ReadingsApi as utoipa::OpenApi>::openapi()
}

pub fn router(app: App) -> Router {
    let routes = Router::new()
        .route("/v1/readings", post(create))
        .with_state(app.clone());
    metered(routes, &app, QuotaClass::Readings, "readings")
}
