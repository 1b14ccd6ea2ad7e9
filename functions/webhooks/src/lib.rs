//! `/v1/webhooks`: a caller registers and manages its account's webhook endpoints (scope
//! `webhooks`, quota class `management`). Handlers only translate HTTP; the work is in
//! `orrery::webhooks::endpoints`.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use orrery::access::{Caller, QuotaClass, metered};
use orrery::error::Problem;
use orrery::http::{ApiJson, ApiQuery, ListQuery, ListResponse};
use orrery::openapi::MeteredProblems;
use orrery::webhooks::endpoints::{
    self, CreatedEndpointView, EndpointPatch, EndpointView, EventTypeInfo, NewEndpoint, SecretView,
    TestDelivery,
};
use orrery::webhooks::log::{self as delivery, LoggedAttempt, Replayed};
use orrery::{ApiError, App, idempotency};
use serde::Deserialize;

#[utoipa::path(
    post, path = "/v1/webhooks", operation_id = "create_webhook", tag = "webhooks",
    params(("Idempotency-Key" = Option<String>, Header, pattern = "^[!-~]{1,255}$", description = "Makes the registration safe to retry (24 h): 1 to 255 visible ASCII characters")),
    request_body(content = NewEndpoint, example = json!({"url": "https://example.com/hooks/orrery", "event_types": ["chart.saved", "reading.generated"], "description": "production"})),
    responses(
        (status = 201, description = "Registered; the signing secret is in the body", body = CreatedEndpointView, links(
            ("get_webhook" = (operation_id = "get_webhook", parameters(("id" = "$response.body#/id")), description = "Read the endpoint")),
            ("update_webhook" = (operation_id = "update_webhook", parameters(("id" = "$response.body#/id")), description = "Change the endpoint")),
            ("delete_webhook" = (operation_id = "delete_webhook", parameters(("id" = "$response.body#/id")), description = "Delete the endpoint")),
            ("get_webhook_secret" = (operation_id = "get_webhook_secret", parameters(("id" = "$response.body#/id")), description = "The endpoint's signing secrets")),
            ("rotate_webhook_secret" = (operation_id = "rotate_webhook_secret", parameters(("id" = "$response.body#/id")), description = "Rotate the signing secret")),
            ("list_webhook_deliveries" = (operation_id = "list_webhook_deliveries", parameters(("id" = "$response.body#/id")), description = "The endpoint's delivery attempts")),
            ("replay_webhook_deliveries" = (operation_id = "replay_webhook_deliveries", parameters(("id" = "$response.body#/id")), description = "Replay failed deliveries")),
            ("test_webhook" = (operation_id = "test_webhook", parameters(("id" = "$response.body#/id")), description = "Send a test event"))
        )),
        (status = 200, description = "A replay of an earlier registration with the same Idempotency-Key", body = CreatedEndpointView),
        (status = 409, description = "The account has the most endpoints it may have", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "The endpoint an earlier request with this Idempotency-Key registered has since been deleted", body = Problem, content_type = "application/problem+json"),
        MeteredProblems
    )
)]
async fn create(
    State(app): State<App>,
    caller: Caller,
    headers: HeaderMap,
    ApiJson(request): ApiJson<NewEndpoint>,
) -> Result<Response, ApiError> {
    let key = idempotency::from_headers(&headers)?;
    let (created, replayed) = endpoints::create(&app, &caller, request, key.as_deref()).await?;
    let location = format!("/v1/webhooks/{}", created.endpoint.id);
    let response = (idempotency::status(replayed), Json(created)).into_response();
    Ok(idempotency::mark_created(response, &location, replayed))
}

#[utoipa::path(
    get, path = "/v1/webhooks", operation_id = "list_webhooks", tag = "webhooks",
    params(ListQuery),
    responses((status = 200, description = "The account's endpoints, newest first", body = ListResponse<EndpointView>), MeteredProblems)
)]
async fn list(
    State(app): State<App>,
    caller: Caller,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<ListResponse<EndpointView>>, ApiError> {
    let seal = app.cursor_seal().await?;
    let (limit, cursor) = query.parse(&seal)?;
    let (data, next) = endpoints::list(&app, &caller.account_id, limit, cursor).await?;
    Ok(Json(ListResponse::new(data, next, &seal)))
}

#[utoipa::path(
    get, path = "/v1/webhooks/{id}", operation_id = "get_webhook", tag = "webhooks",
    params(("id" = String, Path, description = "Endpoint id (`wh_…`)")),
    responses((status = 200, body = EndpointView),  MeteredProblems)
)]
async fn show(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<EndpointView>, ApiError> {
    Ok(Json(endpoints::get(&app, &caller.account_id, &id).await?))
}

#[utoipa::path(
    patch, path = "/v1/webhooks/{id}", operation_id = "update_webhook", tag = "webhooks",
    params(("id" = String, Path, description = "Endpoint id (`wh_…`)")),
    request_body(content = EndpointPatch, example = json!({"enabled": false})),
    responses(
        (status = 200, body = EndpointView),
        (status = 409, description = "Changed concurrently; read it again and retry", body = Problem, content_type = "application/problem+json"),
        MeteredProblems
    )
)]
async fn update(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(patch): ApiJson<EndpointPatch>,
) -> Result<Json<EndpointView>, ApiError> {
    Ok(Json(endpoints::update(&app, &caller, &id, patch).await?))
}

#[utoipa::path(
    delete, path = "/v1/webhooks/{id}", operation_id = "delete_webhook", tag = "webhooks",
    params(("id" = String, Path, description = "Endpoint id (`wh_…`)")),
    responses((status = 204, description = "Deleted"),  MeteredProblems)
)]
async fn remove(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    endpoints::delete(&app, &caller.account_id, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    post, path = "/v1/webhooks/{id}/rotate-secret", operation_id = "rotate_webhook_secret", tag = "webhooks",
    params(("id" = String, Path, description = "Endpoint id (`wh_…`)")),
    responses(
        (status = 200, description = "The new secret; the previous one keeps signing alongside it for 24 h", body = SecretView),
        MeteredProblems
    )
)]
async fn rotate_secret(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<SecretView>, ApiError> {
    Ok(Json(
        endpoints::rotate_secret(&app, &caller.account_id, &id).await?,
    ))
}

#[utoipa::path(
    get, path = "/v1/webhooks/{id}/secret", operation_id = "get_webhook_secret", tag = "webhooks",
    params(("id" = String, Path, description = "Endpoint id (`wh_…`)")),
    responses((status = 200, body = SecretView),  MeteredProblems)
)]
async fn secret(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<SecretView>, ApiError> {
    Ok(Json(
        endpoints::secret(&app, &caller.account_id, &id).await?,
    ))
}

#[utoipa::path(
    post, path = "/v1/webhooks/{id}/test", operation_id = "test_webhook", tag = "webhooks",
    params(("id" = String, Path, description = "Endpoint id (`wh_…`)")),
    responses(
        (status = 200, description = "A signed `webhook.test` event was sent now; the receiver's status, the latency and up to 1 KB of its answer (metered under `webhook_tests`)", body = TestDelivery),
        MeteredProblems
    )
)]
async fn test(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<TestDelivery>, ApiError> {
    Ok(Json(
        endpoints::send_test(&app, &caller.account_id, &id).await?,
    ))
}

#[utoipa::path(
    get, path = "/v1/webhooks/{id}/deliveries", operation_id = "list_webhook_deliveries", tag = "webhooks",
    params(("id" = String, Path, description = "Endpoint id (`wh_…`)"), ListQuery),
    responses(
        (status = 200, description = "Every attempt (kept 30 days), newest first: time, status, latency, up to 1 KB of the answer, error class, outcome", body = ListResponse<LoggedAttempt>),
        MeteredProblems
    )
)]
async fn deliveries(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<ListResponse<LoggedAttempt>>, ApiError> {
    let seal = app.cursor_seal().await?;
    let (limit, cursor) = query.parse(&seal)?;
    let (data, next) = delivery::attempts(&app, &caller.account_id, &id, limit, cursor).await?;
    Ok(Json(ListResponse::new(data, next, &seal)))
}

/// `POST /v1/webhooks/{id}/replay`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplayRequest {
    /// Replay deliveries dead-lettered at or after this instant (RFC 3339; at most 14 days back).
    pub since: chrono::DateTime<chrono::Utc>,
}

#[utoipa::path(
    post, path = "/v1/webhooks/{id}/replay", operation_id = "replay_webhook_deliveries", tag = "webhooks",
    params(("id" = String, Path, description = "Endpoint id (`wh_…`)")),
    request_body(content = ReplayRequest, example = json!({"since": "2026-11-28T00:00:00Z"})),
    responses(
        (status = 202, description = "The failed deliveries are queued again with their original webhook-id", body = Replayed),
        (status = 409, description = "The endpoint is disabled", body = Problem, content_type = "application/problem+json"),
        MeteredProblems
    )
)]
async fn replay(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<ReplayRequest>,
) -> Result<(StatusCode, Json<Replayed>), ApiError> {
    Ok((
        StatusCode::ACCEPTED,
        Json(delivery::replay(&app, &caller.account_id, &id, request.since).await?),
    ))
}

#[utoipa::path(
    get, path = "/v1/webhooks/event-types", operation_id = "list_webhook_event_types", tag = "webhooks",
    responses((status = 200, description = "Every event type an endpoint can subscribe to", body = Vec<EventTypeInfo>), MeteredProblems)
)]
async fn event_types() -> Json<Vec<EventTypeInfo>> {
    Json(endpoints::catalogue())
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(
    create,
    list,
    show,
    update,
    remove,
    rotate_secret,
    secret,
    test,
    deliveries,
    replay,
    event_types
))]
struct WebhooksApi;

/// The OpenAPI paths of this function.
pub fn openapi() -> utoipa::openapi::OpenApi {
    <WebhooksApi as utoipa::OpenApi>::openapi()
}

pub fn router(app: App) -> Router {
    let routes = Router::new()
        .route("/v1/webhooks", post(create).get(list))
        .route("/v1/webhooks/event-types", get(event_types))
        .route("/v1/webhooks/{id}", get(show).patch(update).delete(remove))
        .route("/v1/webhooks/{id}/rotate-secret", post(rotate_secret))
        .route("/v1/webhooks/{id}/secret", get(secret))
        .route("/v1/webhooks/{id}/deliveries", get(deliveries))
        .route("/v1/webhooks/{id}/replay", post(replay))
        .with_state(app.clone());
    let tests = Router::new()
        .route("/v1/webhooks/{id}/test", post(test))
        .with_state(app.clone());
    metered(routes, &app, QuotaClass::Management, "webhooks").merge(metered(
        tests,
        &app,
        QuotaClass::WebhookTests,
        "webhooks",
    ))
}
