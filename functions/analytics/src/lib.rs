//! `GET /v1/analytics/usage`, `/latency` and `/summary` (scope `analytics`, metered under
//! `analytics`): the caller's account's reports; `GET /v1/admin/analytics/accounts` (the heaviest
//! accounts) and `/v1/admin/analytics/accounts/{id}/…` (one account's reports) with the admin
//! key. Every report is JSON, CSV or JSON Lines (`?format=` or `Accept`), streamed. The reports
//! are `orrery_analytics`; this is the HTTP edge.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use chrono::Duration as ChronoDuration;
use orrery::access::accounts;
use orrery::access::{Admin, Caller, QuotaClass, Tier, metered};
use orrery::cache::REPORTS;
use orrery::error::FieldError;
use orrery::http::ApiQuery;
use orrery::ids::AccountId;
use orrery::openapi::{AdminProblems, MeteredProblems};
use orrery::{ApiError, App, clock};
use orrery_analytics::export::{self, Format, RowSource};
use orrery_analytics::latency::{self, EndpointLatency, LatencyReport};
use orrery_analytics::range::{checked, parse_format, parse_range};
use orrery_analytics::summary::{self, Summary};
use orrery_analytics::usage::{UsageQuery, UsageRows};
use serde::Deserialize;
use serde::de::DeserializeOwned;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct UsageParams {
    /// Start (inclusive): an RFC 3339 time or a UTC date. Default: 7 days (hourly) or 30 days
    /// (daily) before `to`.
    from: Option<String>,
    /// End (exclusive): an RFC 3339 time or a UTC date (its start). Default: now.
    to: Option<String>,
    /// `hour` or `day` (default).
    #[param(value_type = Option<String>, pattern = "^(hour|day)?$")]
    granularity: Option<String>,
    /// `endpoint`, `key` (daily only: per-key counts are kept per day) or `outcome`.
    #[param(value_type = Option<String>, pattern = "^(endpoint|key|outcome)?$")]
    group_by: Option<String>,
    /// `json` (default), `csv` or `jsonl`; overrides `Accept`.
    #[param(value_type = Option<String>, pattern = "^(json|csv|jsonl|ndjson)?$")]
    format: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct LatencyParams {
    /// Start (inclusive): an RFC 3339 time or a UTC date. Default: 24 hours before `to`.
    from: Option<String>,
    /// End (exclusive). Default: now. Ranges up to 48 hours are answered from hourly
    /// histograms, longer ones (up to 400 days) from daily ones.
    to: Option<String>,
    /// One endpoint only, as the usage report names it (`POST /v1/charts`).
    endpoint: Option<String>,
    /// `json` (default), `csv` or `jsonl` (one row per endpoint); overrides `Accept`.
    #[param(value_type = Option<String>, pattern = "^(json|csv|jsonl|ndjson)?$")]
    format: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct SummaryParams {
    /// `json` (default), `csv` or `jsonl` (`metric,value` rows); overrides `Accept`.
    #[param(value_type = Option<String>, pattern = "^(json|csv|jsonl|ndjson)?$")]
    format: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct AccountsParams {
    /// Start (inclusive). Default: 30 days before `to`; at most 90 days before it.
    from: Option<String>,
    /// End (exclusive). Default: now.
    to: Option<String>,
    /// How many accounts (1–1000, default 20).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    /// `json` (default), `csv` or `jsonl`; overrides `Accept`.
    #[param(value_type = Option<String>, pattern = "^(json|csv|jsonl|ndjson)?$")]
    format: Option<String>,
}

/// The longest latency range (the daily retention).
const MAX_LATENCY_DAYS: i64 = orrery::store::keyspace::DAILY_ANALYTICS_DAYS;
/// The longest range of the top-accounts report (the counters' retention).
const MAX_ACCOUNTS_DAYS: i64 = orrery::store::keyspace::HOURLY_ANALYTICS_DAYS;

fn accept(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::ACCEPT).and_then(|v| v.to_str().ok())
}

/// A streamed report response.
fn streamed(format: Format, body: Body) -> Response {
    let mut response = Response::new(body);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    response
}

/// Rows already in hand, as a source for [`export::stream`].
struct Ready<T>(Option<Vec<T>>);

#[async_trait::async_trait]
impl<T: serde::Serialize + Send + 'static> RowSource for Ready<T> {
    type Row = T;
    async fn next_rows(&mut self) -> Result<Option<Vec<T>>, orrery::store::StoreError> {
        Ok(self.0.take())
    }
}

async fn rows_response<S: RowSource>(
    format: Format,
    columns: &'static [&'static str],
    source: S,
) -> Result<Response, ApiError> {
    let body = export::stream(format, columns, source).await?;
    Ok(streamed(format, Body::from_stream(body)))
}

/// A report from the cache (at most [`REPORTS`]' TTL old), or computed and cached.
async fn cached<T, F>(app: &App, key: String, compute: F) -> Result<T, ApiError>
where
    T: serde::Serialize + DeserializeOwned,
    F: Future<Output = Result<T, orrery::store::StoreError>>,
{
    if let Some(report) = app.cache.get::<T>(&REPORTS, &key).await {
        return Ok(report);
    }
    let report = compute.await?;
    app.cache.put(&REPORTS, &key, &report).await;
    Ok(report)
}

async fn usage_report(
    app: &App,
    account: &AccountId,
    headers: &HeaderMap,
    params: UsageParams,
) -> Result<Response, ApiError> {
    let mut errors = Vec::new();
    let format = parse_format(params.format.as_deref(), accept(headers), &mut errors);
    let query = UsageQuery::parse(
        params.from.as_deref(),
        params.to.as_deref(),
        params.granularity.as_deref(),
        params.group_by.as_deref(),
        clock::now(),
        &mut errors,
    );
    let query = checked(query, errors)?;
    let rows = UsageRows::new(Arc::clone(&app.store), account, &query);
    rows_response(format, &orrery_analytics::usage::COLUMNS, rows).await
}

async fn latency_report(
    app: &App,
    account: &AccountId,
    headers: &HeaderMap,
    params: LatencyParams,
) -> Result<Response, ApiError> {
    let mut errors = Vec::new();
    let format = parse_format(params.format.as_deref(), accept(headers), &mut errors);
    let range = parse_range(
        params.from.as_deref(),
        params.to.as_deref(),
        clock::now(),
        ChronoDuration::hours(24),
        MAX_LATENCY_DAYS,
        &mut errors,
    );
    if params.endpoint.as_ref().is_some_and(|e| e.len() > 200) {
        errors.push(FieldError::new(
            "endpoint",
            "must be at most 200 characters",
        ));
    }
    let range = checked(range, errors)?;
    let endpoint = params
        .endpoint
        .as_deref()
        .map(str::trim)
        .filter(|endpoint| !endpoint.is_empty());
    let key = format!(
        "latency:{account}:{}:{}:{}",
        range.from.timestamp_millis(),
        range.to.timestamp_millis(),
        endpoint.unwrap_or("*")
    );
    let report: LatencyReport = cached(
        app,
        key,
        latency::latency(app.store.as_ref(), account, range.from, range.to, endpoint),
    )
    .await?;
    if format == Format::Json {
        return Ok(json_response(&report));
    }
    let rows: Vec<EndpointLatency> = report.endpoints;
    rows_response(format, &latency::COLUMNS, Ready(Some(rows))).await
}

async fn summary_report(
    app: &App,
    account: &AccountId,
    tier: Tier,
    headers: &HeaderMap,
    params: SummaryParams,
) -> Result<Response, ApiError> {
    let mut errors = Vec::new();
    let format = parse_format(params.format.as_deref(), accept(headers), &mut errors);
    checked(Some(()), errors)?;
    let now = clock::now();
    let key = format!("summary:{account}:{}", tier.as_str());
    let report: Summary = cached(app, key, summary::summary(app, account, tier, now)).await?;
    if format == Format::Json {
        return Ok(json_response(&report));
    }
    let rows = export::metrics(&report);
    rows_response(format, &export::METRIC_COLUMNS, Ready(Some(rows))).await
}

/// A list report's JSON: `{"data": [...]}`, rows in their fields' order.
#[derive(serde::Serialize)]
struct Data<T> {
    data: T,
}

fn json_response<T: serde::Serialize>(report: &T) -> Response {
    axum::response::IntoResponse::into_response(Json(report))
}

#[utoipa::path(
    get, path = "/v1/analytics/usage", operation_id = "analytics_usage", tag = "analytics", params(UsageParams),
    responses(
        (status = 200, description = "The usage series, streamed: per period (and group) the quota units charged and the requests by outcome (`2xx`, `4xx`, `429`, `5xx`). Units add up exactly to the quota counters (what `x-ratelimit-used` said). JSON is `{\"data\": [row, …]}`; CSV (RFC 4180, header line) and JSON Lines carry one row a line.",
            content(("application/json"), ("text/csv"), ("application/x-ndjson"))),
        MeteredProblems
    )
)]
async fn usage(
    State(app): State<App>,
    caller: Caller,
    headers: HeaderMap,
    ApiQuery(params): ApiQuery<UsageParams>,
) -> Result<Response, ApiError> {
    usage_report(&app, &caller.account_id, &headers, params).await
}

#[utoipa::path(
    get, path = "/v1/analytics/latency", operation_id = "analytics_latency", tag = "analytics", params(LatencyParams),
    responses(
        (status = 200, description = "Latency over the range: count, p50/p90/p95/p99 in ms (within 2 %), cache hits and misses, the histogram, and the same per endpoint. CSV and JSON Lines carry the per-endpoint rows. Up to 5 s old (cached); the newest 10 s may not be flushed yet.",
            content(("application/json"), ("text/csv"), ("application/x-ndjson"))),
        MeteredProblems
    )
)]
async fn latency_of(
    State(app): State<App>,
    caller: Caller,
    headers: HeaderMap,
    ApiQuery(params): ApiQuery<LatencyParams>,
) -> Result<Response, ApiError> {
    latency_report(&app, &caller.account_id, &headers, params).await
}

#[utoipa::path(
    get, path = "/v1/analytics/summary", operation_id = "analytics_summary", tag = "analytics", params(SummaryParams),
    responses(
        (status = 200, description = "The dashboard: today against yesterday (units, requests, errors, error rate, 429s), the top endpoints today, per quota class the headroom and the projected time of exhaustion at today's rate, today's webhook delivery outcomes and success rate, today's batches by status. Up to 5 s old (cached). CSV and JSON Lines carry `metric,value` rows.",
            content(("application/json"), ("text/csv"), ("application/x-ndjson"))),
        MeteredProblems
    )
)]
async fn summary_of(
    State(app): State<App>,
    caller: Caller,
    headers: HeaderMap,
    ApiQuery(params): ApiQuery<SummaryParams>,
) -> Result<Response, ApiError> {
    summary_report(&app, &caller.account_id, caller.tier, &headers, params).await
}

#[utoipa::path(
    get, path = "/v1/admin/analytics/accounts", operation_id = "admin_analytics_accounts", tag = "admin", params(AccountsParams),
    responses(
        (status = 200, description = "The heaviest accounts of the range by quota units (per class too), heaviest first; accounts without usage are left out.",
            content(("application/json"), ("text/csv"), ("application/x-ndjson"))),
        AdminProblems
    )
)]
async fn top_accounts(
    _: Admin,
    State(app): State<App>,
    headers: HeaderMap,
    ApiQuery(params): ApiQuery<AccountsParams>,
) -> Result<Response, ApiError> {
    let mut errors = Vec::new();
    let format = parse_format(params.format.as_deref(), accept(&headers), &mut errors);
    let range = parse_range(
        params.from.as_deref(),
        params.to.as_deref(),
        clock::now(),
        ChronoDuration::days(30),
        MAX_ACCOUNTS_DAYS,
        &mut errors,
    );
    let limit = params.limit.unwrap_or(20);
    if !(1..=1000).contains(&limit) {
        errors.push(FieldError::new("limit", "must be between 1 and 1000"));
    }
    let range = checked(range, errors)?;
    let key = format!(
        "accounts:{}:{}:{limit}",
        range.from.timestamp_millis(),
        range.to.timestamp_millis()
    );
    let lines = cached(
        &app,
        key,
        orrery_analytics::accounts::top_accounts(Arc::clone(&app.store), range, limit as usize),
    )
    .await?;
    if format == Format::Json {
        return Ok(json_response(&Data { data: lines }));
    }
    rows_response(
        format,
        &orrery_analytics::accounts::COLUMNS,
        Ready(Some(lines)),
    )
    .await
}

/// The account an admin report is about: a 404 when there is none.
async fn reported_account(app: &App, id: &str) -> Result<(AccountId, Tier), ApiError> {
    let not_found = || ApiError::NotFound("No account with this id.".into());
    let id = AccountId::parse(id).ok_or_else(not_found)?;
    let account = accounts::get(app.store.as_ref(), &id)
        .await?
        .ok_or_else(not_found)?;
    Ok((account.id, account.tier))
}

#[utoipa::path(
    get, path = "/v1/admin/analytics/accounts/{id}/usage", operation_id = "admin_analytics_account_usage", tag = "admin",
    params(("id" = String, Path, description = "Account id (`acct_…`)"), UsageParams),
    responses((status = 200, description = "The account's usage series (as `GET /v1/analytics/usage`)", content(("application/json"), ("text/csv"), ("application/x-ndjson"))), AdminProblems)
)]
async fn account_usage(
    _: Admin,
    State(app): State<App>,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiQuery(params): ApiQuery<UsageParams>,
) -> Result<Response, ApiError> {
    let (account, _) = reported_account(&app, &id).await?;
    usage_report(&app, &account, &headers, params).await
}

#[utoipa::path(
    get, path = "/v1/admin/analytics/accounts/{id}/latency", operation_id = "admin_analytics_account_latency", tag = "admin",
    params(("id" = String, Path, description = "Account id (`acct_…`)"), LatencyParams),
    responses((status = 200, description = "The account's latency report (as `GET /v1/analytics/latency`)", content(("application/json"), ("text/csv"), ("application/x-ndjson"))), AdminProblems)
)]
async fn account_latency(
    _: Admin,
    State(app): State<App>,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiQuery(params): ApiQuery<LatencyParams>,
) -> Result<Response, ApiError> {
    let (account, _) = reported_account(&app, &id).await?;
    latency_report(&app, &account, &headers, params).await
}

#[utoipa::path(
    get, path = "/v1/admin/analytics/accounts/{id}/summary", operation_id = "admin_analytics_account_summary", tag = "admin",
    params(("id" = String, Path, description = "Account id (`acct_…`)"), SummaryParams),
    responses((status = 200, description = "The account's dashboard (as `GET /v1/analytics/summary`)", content(("application/json"), ("text/csv"), ("application/x-ndjson"))), AdminProblems)
)]
async fn account_summary(
    _: Admin,
    State(app): State<App>,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiQuery(params): ApiQuery<SummaryParams>,
) -> Result<Response, ApiError> {
    let (account, tier) = reported_account(&app, &id).await?;
    summary_report(&app, &account, tier, &headers, params).await
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(
    usage,
    latency_of,
    summary_of,
    top_accounts,
    account_usage,
    account_latency,
    account_summary
))]
struct AnalyticsApi;

/// The OpenAPI paths of this function.
pub fn openapi() -> utoipa::openapi::OpenApi {
    <AnalyticsApi as utoipa::OpenApi>::openapi()
}

pub fn router(app: App) -> Router {
    let reports = Router::new()
        .route("/v1/analytics/usage", get(usage))
        .route("/v1/analytics/latency", get(latency_of))
        .route("/v1/analytics/summary", get(summary_of))
        .with_state(app.clone());
    let admin = Router::new()
        .route("/v1/admin/analytics/accounts", get(top_accounts))
        .route(
            "/v1/admin/analytics/accounts/{id}/usage",
            get(account_usage),
        )
        .route(
            "/v1/admin/analytics/accounts/{id}/latency",
            get(account_latency),
        )
        .route(
            "/v1/admin/analytics/accounts/{id}/summary",
            get(account_summary),
        )
        .with_state(app.clone());
    metered(reports, &app, QuotaClass::Analytics, "analytics").merge(admin)
}
