//! `/v1/charts`: natal charts as JSON or as the SVG wheel, transits, synastry and saved charts.
//! Computing routes are metered under the `charts` quota class; reading and deleting saved
//! charts under `management` (they compute nothing). Handlers only translate HTTP; the work is
//! in `orrery_charts`.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use orrery::access::{Caller, QuotaClass, metered};
use orrery::error::Problem;
use orrery::http::{ApiJson, ApiQuery, ListQuery, ListResponse, with_content_type};
use orrery::openapi::MeteredProblems;
use orrery::{ApiError, App, idempotency};
use orrery_charts::presentation::{Presentation, Rendered, Representation, present};
use orrery_charts::relations::{self, ChartLabel, SynastryRequest, TransitsRequest};
use orrery_charts::relations::{Synastry, Transits};
use orrery_charts::saved::{self, SavedChartSummary};
use orrery_charts::schema::{
    ChartFormat, ChartRequestBody, ChartResponse, ChartTheme, SavedChartResponse, SynastryBody,
    TransitsBody,
};
use orrery_charts::{ChartRequest, compute};
use serde::Deserialize;
use serde_json::{Map, Value};

/// Query parameters of the chart routes.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ChartQuery {
    /// `json` (default) or `svg`.
    #[serde(default)]
    #[param(inline, value_type = Option<ChartFormat>)]
    format: Option<String>,
    /// `svg` embeds the wheel in the JSON as `svg`.
    #[serde(default)]
    #[param(value_type = Option<String>, pattern = "^(svg)?$")]
    include: Option<String>,
    /// `light` (default) or `dark`.
    #[serde(default)]
    #[param(inline, value_type = Option<ChartTheme>)]
    theme: Option<String>,
    /// `true` (or empty) stores the chart under the account.
    #[serde(default)]
    #[param(value_type = Option<String>, pattern = "^(true|false)?$")]
    save: Option<String>,
}

impl ChartQuery {
    fn presentation(&self, headers: &HeaderMap) -> Result<Presentation, ApiError> {
        Presentation::negotiate(
            self.format.as_deref(),
            self.include.as_deref(),
            self.theme.as_deref(),
            headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()),
        )
    }

    fn save(&self) -> Result<bool, ApiError> {
        match self.save.as_deref() {
            None | Some("false") => Ok(false),
            Some("true") | Some("") => Ok(true),
            Some(_) => Err(ApiError::validation("save", "must be true or false")),
        }
    }
}

fn respond(status: StatusCode, rendered: Rendered) -> Response {
    let mut response = with_content_type(rendered.body, rendered.content_type);
    *response.status_mut() = status;
    response
}

fn chart_request(body: Value) -> Result<ChartRequest, ApiError> {
    ChartRequest::from_value(body, "").map_err(ApiError::Validation)
}

#[utoipa::path(
    post, path = "/v1/charts", operation_id = "create_chart", tag = "charts",
    params(ChartQuery, ("Idempotency-Key" = Option<String>, Header, pattern = "^[!-~]{1,255}$", description = "Makes a save safe to retry: the same key and body return the first chart (200, `Idempotent-Replayed: true`); the same key with another body is a 422. Remembered 24 h. 1 to 255 visible ASCII characters.")),
    request_body(content = ChartRequestBody, description = "A local time with `timezone` (IANA) or `utc_offset`, or an RFC 3339 instant; the site; options"),
    responses(
        (status = 200, description = "The chart; the SVG wheel with `?format=svg` or `Accept: image/svg+xml`. Metered under `charts`: `RateLimit-Policy`, `RateLimit` and `X-RateLimit-*` headers on every response", content(
            (ChartResponse = "application/json"),
            (String = "image/svg+xml")
        )),
        (status = 201, description = "Saved (`?save=true`); `Location` names it", content((SavedChartResponse = "application/json"), (String = "image/svg+xml")), links(
            ("get_saved_chart" = (operation_id = "get_saved_chart", parameters(("id" = "$response.body#/id")), description = "Read the saved chart")),
            ("delete_saved_chart" = (operation_id = "delete_saved_chart", parameters(("id" = "$response.body#/id")), description = "Delete the saved chart"))
        )),
        (status = 409, description = "A concurrent request with the same Idempotency-Key is still saving; retry", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "The chart an earlier request with this Idempotency-Key saved has since been deleted", body = Problem, content_type = "application/problem+json"),
        MeteredProblems
    )
)]
async fn create(
    State(app): State<App>,
    caller: Caller,
    ApiQuery(query): ApiQuery<ChartQuery>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<Value>,
) -> Result<Response, ApiError> {
    let presentation = query.presentation(&headers)?;
    let request = chart_request(body)?;
    if query.save()? {
        return save_chart(&app, &caller, &headers, &request, &presentation).await;
    }
    let computed = compute(&app, &request, "").await?;
    orrery_charts::compute::publish_calculated(&app, &caller, &request, &computed).await;
    let mut leading = Map::new();
    leading.insert(
        "name".into(),
        request.name.clone().map_or(Value::Null, Value::String),
    );
    leading.insert("input_hash".into(), computed.input_hash.clone().into());
    let rendered = present(
        &presentation,
        computed.json(),
        || computed.chart().map(|c| c.into_owned()),
        leading,
        request.name.as_deref(),
    )?;
    let mut response = respond(StatusCode::OK, rendered);
    response.extensions_mut().insert(computed.cache_use());
    Ok(response)
}

async fn save_chart(
    app: &App,
    caller: &Caller,
    headers: &HeaderMap,
    request: &ChartRequest,
    presentation: &Presentation,
) -> Result<Response, ApiError> {
    let idempotency_key = idempotency::from_headers(headers)?;
    let earlier = match &idempotency_key {
        Some(key) => saved::replayed(app, &caller.account_id, request, key).await?,
        None => None,
    };
    let (saved, replayed) = match earlier {
        Some(saved) => (saved, true),
        None => {
            let computed = compute(app, request, "").await?;
            orrery_charts::compute::publish_calculated(app, caller, request, &computed).await;
            saved::save(
                app,
                &caller.account_id,
                request,
                &computed,
                idempotency_key.as_deref(),
            )
            .await?
        }
    };
    let response = respond(
        idempotency::status(replayed),
        present_saved(&saved, presentation)?,
    );
    Ok(idempotency::mark_created(
        response,
        &format!("/v1/charts/saved/{}", saved.id),
        replayed,
    ))
}

/// A saved chart as asked: its stored document (name and summary first), the wheel titled with
/// its name.
fn present_saved(
    saved: &saved::SavedChart,
    presentation: &Presentation,
) -> Result<Rendered, ApiError> {
    // The name is read from the document only when a wheel is drawn.
    let name = match presentation.representation {
        Representation::Json { embed_svg: false } => None,
        _ => serde_json::from_str::<Map<String, Value>>(&saved.body)
            .map_err(ApiError::internal)?
            .get("name")
            .and_then(Value::as_str)
            .map(str::to_owned),
    };
    present(
        presentation,
        &saved.body,
        || saved.chart(),
        Map::new(),
        name.as_deref(),
    )
}

#[utoipa::path(
    post, path = "/v1/charts/saved", operation_id = "save_chart", tag = "saved charts",
    params(
        ("format" = inline(Option<ChartFormat>), Query, description = "`json` (default) or `svg`."),
        ("include" = Option<String>, Query, pattern = "^(svg)?$", description = "`svg` embeds the wheel in the JSON as `svg`."),
        ("theme" = inline(Option<ChartTheme>), Query, description = "`light` (default) or `dark`."),
        ("Idempotency-Key" = Option<String>, Header, pattern = "^[!-~]{1,255}$", description = "Makes a save safe to retry: the same key and body return the first chart (200, `Idempotent-Replayed: true`); the same key with another body is a 422. Remembered 24 h. 1 to 255 visible ASCII characters.")),
    request_body(content = ChartRequestBody),
    responses(
        (status = 201, description = "Saved; `Location` names it", content((SavedChartResponse = "application/json"), (String = "image/svg+xml")), links(
            ("get_saved_chart" = (operation_id = "get_saved_chart", parameters(("id" = "$response.body#/id")), description = "Read the saved chart")),
            ("delete_saved_chart" = (operation_id = "delete_saved_chart", parameters(("id" = "$response.body#/id")), description = "Delete the saved chart"))
        )),
        (status = 409, description = "A concurrent request with the same Idempotency-Key is still saving; retry", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "The chart an earlier request with this Idempotency-Key saved has since been deleted", body = Problem, content_type = "application/problem+json"),
        (status = 200, description = "A replay of an earlier save with the same Idempotency-Key", content((SavedChartResponse = "application/json"), (String = "image/svg+xml"))),
        MeteredProblems
    )
)]
async fn create_saved(
    State(app): State<App>,
    caller: Caller,
    ApiQuery(query): ApiQuery<ChartQuery>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<Value>,
) -> Result<Response, ApiError> {
    let presentation = query.presentation(&headers)?;
    let request = chart_request(body)?;
    save_chart(&app, &caller, &headers, &request, &presentation).await
}

#[utoipa::path(
    get, path = "/v1/charts/saved", operation_id = "list_saved_charts", tag = "saved charts", params(ListQuery),
    responses((status = 200, description = "Summaries, newest first (metered under `management`)", body = ListResponse<SavedChartSummary>), MeteredProblems)
)]
async fn list_saved(
    State(app): State<App>,
    caller: Caller,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<ListResponse<SavedChartSummary>>, ApiError> {
    let seal = app.cursor_seal().await?;
    let (limit, cursor) = query.parse(&seal)?;
    let (charts, next) = saved::list(&app, &caller.account_id, limit, cursor).await?;
    Ok(Json(ListResponse::new(charts, next, &seal)))
}

#[utoipa::path(
    get, path = "/v1/charts/saved/{id}", operation_id = "get_saved_chart", tag = "saved charts",
    params(
        ("id" = String, Path, description = "Saved chart id (`chart_…`)"),
        ("format" = inline(Option<ChartFormat>), Query, description = "`json` (default) or `svg`."),
        ("include" = Option<String>, Query, pattern = "^(svg)?$", description = "`svg` embeds the wheel in the JSON as `svg`."),
        ("theme" = inline(Option<ChartTheme>), Query, description = "`light` (default) or `dark`.")
    ),
    responses(
        (status = 200, description = "The saved chart, or its wheel", content(
            (SavedChartResponse = "application/json"),
            (String = "image/svg+xml")
        )),
        MeteredProblems
    )
)]
async fn show_saved(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<ChartQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let presentation = query.presentation(&headers)?;
    if query.save.is_some() {
        return Err(ApiError::validation(
            "save",
            "only applies when creating a chart",
        ));
    }
    let saved = saved::get(&app, &caller.account_id, &id).await?;
    Ok(respond(
        StatusCode::OK,
        present_saved(&saved, &presentation)?,
    ))
}

#[utoipa::path(
    delete, path = "/v1/charts/saved/{id}", operation_id = "delete_saved_chart", tag = "saved charts",
    params(("id" = String, Path, description = "Saved chart id (`chart_…`)")),
    responses((status = 204, description = "Deleted"),  MeteredProblems)
)]
async fn delete_saved(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    saved::delete(&app, &caller.account_id, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    post, path = "/v1/charts/transits", operation_id = "chart_transits", tag = "charts",
    request_body(content = TransitsBody),
    responses((status = 200, description = "Transiting bodies with the natal house they cross, and transit-to-natal aspects, tightest first", body = Transits), MeteredProblems)
)]
async fn transits(
    State(app): State<App>,
    caller: Caller,
    ApiJson(body): ApiJson<Value>,
) -> Result<impl IntoResponse, ApiError> {
    let request = TransitsRequest::from_value(body)?;
    let transits = relations::transits(&app, &caller.account_id, &request).await?;
    let cache_use = ChartLabel::cache_use_of(&[&transits.natal]);
    Ok(with_cache_use(Json(transits), cache_use))
}

#[utoipa::path(
    post, path = "/v1/charts/synastry", operation_id = "chart_synastry", tag = "charts",
    request_body(content = SynastryBody),
    responses((status = 200, description = "Inter-aspects (tightest first) and house overlays both ways", body = Synastry), MeteredProblems)
)]
async fn synastry(
    State(app): State<App>,
    caller: Caller,
    ApiJson(body): ApiJson<Value>,
) -> Result<impl IntoResponse, ApiError> {
    let request = SynastryRequest::from_value(body)?;
    let synastry = relations::synastry(&app, &caller.account_id, &request).await?;
    let cache_use = ChartLabel::cache_use_of(&[&synastry.first, &synastry.second]);
    Ok(with_cache_use(Json(synastry), cache_use))
}

/// The response, telling the meter how the chart cache served it (analytics' hit/miss counts).
fn with_cache_use(
    response: impl IntoResponse,
    cache_use: Option<orrery::analytics::CacheUse>,
) -> axum::response::Response {
    let mut response = response.into_response();
    if let Some(cache_use) = cache_use {
        response.extensions_mut().insert(cache_use);
    }
    response
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(
    create,
    transits,
    synastry,
    create_saved,
    list_saved,
    show_saved,
    delete_saved
))]
struct ChartsApi;

/// The OpenAPI paths of this function.
pub fn openapi() -> utoipa::openapi::OpenApi {
    <ChartsApi as utoipa::OpenApi>::openapi()
}

pub fn router(app: App) -> Router {
    let computing = Router::new()
        .route("/v1/charts", post(create))
        .route("/v1/charts/transits", post(transits))
        .route("/v1/charts/synastry", post(synastry))
        .route("/v1/charts/saved", post(create_saved))
        .with_state(app.clone());
    let stored = Router::new()
        .route("/v1/charts/saved", get(list_saved))
        .route(
            "/v1/charts/saved/{id}",
            get(show_saved).delete(delete_saved),
        )
        .with_state(app.clone());
    metered(computing, &app, QuotaClass::Charts, "charts").merge(metered(
        stored,
        &app,
        QuotaClass::Management,
        "charts",
    ))
}
