//! `/v1/batches`: batch jobs (scope `batches`). Submitting and retrying reserve one
//! `batch_items` unit per item at once; reading, listing, cancelling and the results are
//! metered under `management`. Handlers only translate HTTP; the work is in `orrery_batches`.

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use orrery::access::{Caller, QuotaClass, authenticated, metered};
use orrery::error::Problem;
use orrery::http::{ApiQuery, ListQuery, ListResponse};
use orrery::openapi::MeteredProblems;
use orrery::{ApiError, App, idempotency};
use orrery_batches::items::{BatchSubmissionBody, MAX_BODY_BYTES, NDJSON};
use orrery_batches::submit::Submitted;
use orrery_batches::{BatchView, control, results, submit};
use serde::Deserialize;

const IDEMPOTENCY: &str = "Makes the submission safe to retry: the same key and body return the first batch (200, `Idempotent-Replayed: true`) and reserve nothing; the same key with another body is a 422. Remembered 24 h.";

/// 202 (or 200 for a replay) with `Location` and the `batch_items` quota headers.
fn accepted(submitted: Submitted) -> Response {
    let status = if submitted.replayed {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    let location = format!("/v1/batches/{}", submitted.batch.id);
    let mut response = (status, Json(submitted.batch)).into_response();
    if let Some(quota) = submitted.quota {
        quota.apply(response.headers_mut());
    }
    idempotency::mark_created(response, &location, submitted.replayed)
}

#[utoipa::path(
    post, path = "/v1/batches", operation_id = "create_batch", tag = "batches",
    params(("Idempotency-Key" = Option<String>, Header, pattern = "^[!-~]{1,255}$", description = IDEMPOTENCY)),
    request_body(description = "Up to 10,000 items (5 MiB), operations mixed; as JSON, or the items alone as JSON Lines. Every item is validated before anything is accepted.", content(
        (BatchSubmissionBody = "application/json", example = json!({"requests": [
            {"custom_id": "user-1", "operation": "chart", "body": {"datetime": "1990-05-17T14:30", "timezone": "Europe/London", "latitude": 51.5074, "longitude": -0.1278}},
            {"custom_id": "user-1-reading", "operation": "reading", "body": {"datetime": "1990-05-17T14:30", "timezone": "Europe/London", "latitude": 51.5074, "longitude": -0.1278}}
        ], "metadata": {"import": "2026-12"}})),
        (String = "application/x-ndjson")
    )),
    responses(
        (status = 202, description = "Accepted: one `batch_items` unit per item is reserved (the quota headers show it); `Location` names the batch", body = BatchView, links(
            ("get_batch" = (operation_id = "get_batch", parameters(("id" = "$response.body#/id")), description = "The batch's status")),
            ("get_batch_results" = (operation_id = "get_batch_results", parameters(("id" = "$response.body#/id")), description = "Its results, while it runs")),
            ("cancel_batch" = (operation_id = "cancel_batch", parameters(("id" = "$response.body#/id")), description = "Cancel it")),
            ("retry_batch" = (operation_id = "retry_batch", parameters(("id" = "$response.body#/id")), description = "Retry its failed items once it has finished"))
        )),
        (status = 200, description = "A replay of an earlier submission with the same Idempotency-Key", body = BatchView),
        (status = 409, description = "A request with the same Idempotency-Key is being handled; retry", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Over 5 MiB", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Neither JSON nor JSON Lines", body = Problem, content_type = "application/problem+json"),
        MeteredProblems
    )
)]
async fn create(
    State(app): State<App>,
    caller: Caller,
    request: Request,
) -> Result<Response, ApiError> {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|_| ApiError::PayloadTooLarge {
            limit: MAX_BODY_BYTES,
        })?;
    Ok(accepted(
        submit::submit(&app, &caller, &parts.headers, &body).await?,
    ))
}

#[utoipa::path(
    get, path = "/v1/batches", operation_id = "list_batches", tag = "batches", params(ListQuery),
    responses((status = 200, description = "The account's batches, newest first", body = ListResponse<BatchView>), MeteredProblems)
)]
async fn list(
    State(app): State<App>,
    caller: Caller,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<ListResponse<BatchView>>, ApiError> {
    let seal = app.cursor_seal().await?;
    let (limit, cursor) = query.parse(&seal)?;
    let (batches, next) = control::list(&app, &caller, limit, cursor).await?;
    Ok(Json(ListResponse::new(batches, next, &seal)))
}

#[utoipa::path(
    get, path = "/v1/batches/{id}", operation_id = "get_batch", tag = "batches",
    params(("id" = String, Path, description = "Batch id (`batch_…`)")),
    responses((status = 200, description = "Status, counts, rate and ETA (never the results)", body = BatchView), MeteredProblems)
)]
async fn show(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<BatchView>, ApiError> {
    Ok(Json(control::get(&app, &caller, &id).await?))
}

#[utoipa::path(
    post, path = "/v1/batches/{id}/cancel", operation_id = "cancel_batch", tag = "batches",
    params(("id" = String, Path, description = "Batch id (`batch_…`)")),
    responses(
        (status = 200, description = "No item starts from now on; items already running finish (`cancelling` until they have). Unstarted items give their units back", body = BatchView),
        (status = 409, description = "The batch has already finished", body = Problem, content_type = "application/problem+json"),
        MeteredProblems
    )
)]
async fn cancel(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<BatchView>, ApiError> {
    Ok(Json(control::cancel(&app, &caller, &id).await?))
}

#[utoipa::path(
    post, path = "/v1/batches/{id}/retry", operation_id = "retry_batch", tag = "batches",
    params(
        ("id" = String, Path, description = "Batch id (`batch_…`) of a finished batch with failed items"),
        ("Idempotency-Key" = Option<String>, Header, pattern = "^[!-~]{1,255}$", description = IDEMPOTENCY)
    ),
    responses(
        (status = 202, description = "A new batch of the failed items (`parent_id` links it); one `batch_items` unit per item is reserved", body = BatchView),
        (status = 200, description = "A replay of an earlier retry with the same Idempotency-Key", body = BatchView),
        (status = 409, description = "The batch is still running, or has no failed items", body = Problem, content_type = "application/problem+json"),
        MeteredProblems
    )
)]
async fn retry(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    Ok(accepted(
        control::retry(&app, &caller, &id, &headers).await?,
    ))
}

/// Query parameters of the results.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ResultsQuery {
    /// A line's `cursor`: continue after that line.
    #[serde(default)]
    #[param(max_length = 4096)]
    after: Option<String>,
    /// Only `succeeded` or only `failed` lines.
    #[serde(default)]
    #[param(value_type = Option<String>, pattern = "^(succeeded|failed)?$")]
    status: Option<String>,
}

#[utoipa::path(
    get, path = "/v1/batches/{id}/results", operation_id = "get_batch_results", tag = "batches",
    params(("id" = String, Path, description = "Batch id (`batch_…`)"), ResultsQuery),
    responses(
        (status = 200, description = "JSON Lines in submission order, streamed, available while the batch runs: `{cursor, custom_id, status, response}` or `{cursor, custom_id, status, error}` (the problem the single-item endpoint gives). `Orrery-Batch-Status` is the batch's status when the stream began: while it is not final, more lines may follow (continue with `?after=` the last line's cursor). Kept 29 days.",
            content_type = "application/x-ndjson", body = String,
            headers(("Orrery-Batch-Status" = String, description = "The batch's status when the stream began"))),
        MeteredProblems
    )
)]
async fn results_of(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<ResultsQuery>,
) -> Result<Response, ApiError> {
    let results = results::open(
        &app,
        &caller,
        &id,
        query.after.as_deref(),
        query.status.as_deref(),
    )
    .await?;
    let mut response = Response::new(Body::from_stream(results.body));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(NDJSON));
    headers.insert(
        "orrery-batch-status",
        HeaderValue::from_static(results.status.as_str()),
    );
    Ok(response)
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(create, list, show, cancel, retry, results_of))]
struct BatchesApi;

/// The OpenAPI paths of this function.
pub fn openapi() -> utoipa::openapi::OpenApi {
    <BatchesApi as utoipa::OpenApi>::openapi()
}

pub fn router(app: App) -> Router {
    let submissions = Router::new()
        .route("/v1/batches", post(create))
        .route("/v1/batches/{id}/retry", post(retry))
        .with_state(app.clone());
    let reads = Router::new()
        .route("/v1/batches", get(list))
        .route("/v1/batches/{id}", get(show))
        .route("/v1/batches/{id}/cancel", post(cancel))
        .route("/v1/batches/{id}/results", get(results_of))
        .with_state(app.clone());
    authenticated(submissions, &app, "batches").merge(metered(
        reads,
        &app,
        QuotaClass::Management,
        "batches",
    ))
}
