//! HTTP conventions shared by every function: the JSON extractor, request ids, tracing spans,
//! problem responses for unknown routes, wrong methods, oversized bodies and panics.

use std::any::Any;

use axum::Router;
use axum::body::Body;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, Request};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::de::DeserializeOwned;
use tower_http::catch_panic::CatchPanicLayer;

use crate::error::ApiError;

pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// The request id of the current request, available to handlers as an extension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub String);

/// A JSON request body. Syntax errors are 400 with the line and column; well-formed JSON of the
/// wrong shape is 422 naming the field; a non-JSON content type is 415; an oversized body is 413.
#[derive(Debug, Clone)]
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split(';').next())
            .map(|mime| {
                let mime = mime.trim().to_ascii_lowercase();
                mime == "application/json"
                    || (mime.starts_with("application/") && mime.ends_with("+json"))
            })
            .unwrap_or(false);
        if !is_json {
            return Err(ApiError::UnsupportedMediaType(
                "Send the body as Content-Type: application/json.".into(),
            ));
        }
        let limit = req
            .extensions()
            .get::<BodyLimit>()
            .map_or(DEFAULT_MAX_BODY_BYTES, |l| l.0);
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|rejection| body_rejection(rejection, limit))?;
        let value = parse_json(&bytes)?;
        // Every body this API takes is a JSON object; serde would also fill a struct from an
        // array of its fields in order (`["Acme", "premium"]`), which no schema admits.
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
            return Err(ApiError::validation("", "the body must be a JSON object"));
        }
        Ok(ApiJson(value))
    }
}

/// An optional JSON body: absent (no content type, empty body) is `None`.
impl<T, S> axum::extract::OptionalFromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Option<Self>, Self::Rejection> {
        let empty = req.headers().get(header::CONTENT_TYPE).is_none()
            && req
                .headers()
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .is_none_or(|length| length.trim() == "0");
        if empty {
            return Ok(None);
        }
        <ApiJson<T> as FromRequest<S>>::from_request(req, state)
            .await
            .map(Some)
    }
}

/// Parses JSON, separating syntax errors (400) from shape errors (422 with the field path).
/// Anything after the JSON value but white space is a 400 naming where it starts.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data => {
                let field = if path == "." { String::new() } else { path };
                ApiError::validation(field, strip_position(&inner.to_string()))
            }
            serde_json::error::Category::Syntax
            | serde_json::error::Category::Eof
            | serde_json::error::Category::Io => ApiError::BadRequest(format!(
                "Malformed JSON at line {}, column {}: {}",
                inner.line(),
                inner.column(),
                strip_position(&inner.to_string())
            )),
        }
    })?;
    deserializer.end().map_err(|err| {
        ApiError::BadRequest(format!(
            "Unexpected data after the JSON value at line {}, column {}: send exactly one JSON value.",
            err.line(),
            err.column()
        ))
    })?;
    Ok(value)
}

/// serde_json appends " at line L column C"; the problem states the position its own way.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(at) => message[..at].to_owned(),
        None => message.to_owned(),
    }
}

fn body_rejection(rejection: BytesRejection, limit: usize) -> ApiError {
    match rejection {
        BytesRejection::FailedToBufferBody(
            axum::extract::rejection::FailedToBufferBody::LengthLimitError(_),
        ) => ApiError::PayloadTooLarge { limit },
        other => ApiError::BadRequest(format!("The request body could not be read: {other}")),
    }
}

pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;

/// Deserialises an optional whole number also when it is written with a zero fraction (`409.0`):
/// JSON has one number type, and JSON Schema's `integer` admits such values.
pub fn whole_number<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: TryFrom<u64>,
{
    use serde::de::{Deserialize, Error};
    let Some(number) = Option::<serde_json::Number>::deserialize(deserializer)? else {
        return Ok(None);
    };
    let whole = number.as_u64().or_else(|| {
        number
            .as_f64()
            .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f < u64::MAX as f64)
            .map(|f| f as u64)
    });
    whole
        .and_then(|n| T::try_from(n).ok())
        .map(Some)
        .ok_or_else(|| {
            D::Error::custom(format!(
                "invalid value: {number}, expected a whole number in range"
            ))
        })
}

/// `?limit=&cursor=` of list endpoints, checked: limit 1..=100 (default 20), cursor opaque.
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Page size, 1 to 100 (default 20; empty: the default).
    #[serde(default)]
    #[param(value_type = Option<String>, pattern = r"^(\+?0*([1-9][0-9]?|100))?$")]
    pub limit: Option<String>,
    /// `next_cursor` of the previous page.
    #[serde(default)]
    pub cursor: Option<String>,
}

impl ListQuery {
    pub fn parse(
        &self,
        seal: &crate::store::CursorSeal,
    ) -> Result<(usize, Option<crate::store::Cursor>), ApiError> {
        let limit = parse_limit(self.limit.as_deref(), 20)?;
        let cursor = match self.cursor.as_deref() {
            None | Some("") => None,
            Some(text) => Some(seal.open(text).map_err(ApiError::from)?),
        };
        Ok((limit, cursor))
    }
}

/// A `limit=` parameter: 1 to 100, `default` when absent or empty.
pub fn parse_limit(text: Option<&str>, default: usize) -> Result<usize, ApiError> {
    match text {
        None | Some("") => Ok(default),
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=100).contains(n))
            .ok_or_else(|| ApiError::validation("limit", "must be an integer in 1..=100")),
    }
}

/// The shape of every list response.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ListResponse<T> {
    pub data: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<T> ListResponse<T> {
    pub fn new(
        data: Vec<T>,
        next: Option<crate::store::Cursor>,
        seal: &crate::store::CursorSeal,
    ) -> Self {
        Self {
            data,
            next_cursor: next.map(|cursor| seal.seal(&cursor)),
        }
    }
}

/// Query parameters whose malformed values are problems, not axum's plain-text rejections.
#[derive(Debug, Clone)]
pub struct ApiQuery<T>(pub T);

impl<T, S> axum::extract::FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        parse_query(query).map(ApiQuery)
    }
}

/// Deserialises a query string with axum's own rules, as a 422 problem naming `query` on failure.
fn parse_query<T: DeserializeOwned>(query: &str) -> Result<T, ApiError> {
    axum::extract::Query::<T>::try_from_uri(
        &format!("/?{query}")
            .parse()
            .map_err(|_| ApiError::BadRequest("Malformed query string.".into()))?,
    )
    .map(|axum::extract::Query(value)| value)
    .map_err(|rejection| ApiError::validation("query", rejection.body_text()))
}

/// The configured body limit, recorded so rejections can state it.
#[derive(Debug, Clone, Copy)]
struct BodyLimit(usize);

/// What the platform layers take from the configuration.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Platform {
    pub max_body_bytes: usize,
    /// The share of successful, fast requests that write a log line (see [`RequestLog`]).
    pub request_log_sample: f64,
}

impl Platform {
    pub fn of(config: &crate::config::Config) -> Self {
        Self {
            max_body_bytes: config.max_body_bytes,
            request_log_sample: config.request_log_sample,
        }
    }
}

impl Default for Platform {
    fn default() -> Self {
        Self::of(&crate::config::Config::default())
    }
}

/// Wraps a router with the platform behaviour every function shares.
pub fn platform_layers(router: Router, platform: Platform) -> Router {
    platform_layers_with(
        router,
        platform,
        axum::routing::any(|| async { ApiError::NotFound("No resource at this path.".into()) }),
    )
}

/// [`platform_layers`] with another answer for paths no route has.
pub fn platform_layers_with(
    router: Router,
    platform: Platform,
    fallback: axum::routing::MethodRouter,
) -> Router {
    let Platform {
        max_body_bytes,
        request_log_sample,
    } = platform;
    let log = RequestLog {
        sample: request_log_sample,
    };
    router
        .fallback(fallback)
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(middleware::from_fn(crate::events::within_request))
        .layer(middleware::from_fn(
            move |mut req: Request, next: Next| async move {
                req.extensions_mut().insert(BodyLimit(max_body_bytes));
                request_span(req, next, log).await
            },
        ))
}

fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("unknown panic");
    ApiError::Internal(format!("handler panicked: {message}")).into_response()
}

/// The longest request target (path and query) served; longer is a 414 problem.
pub const MAX_URI_BYTES: usize = 8 * 1024;
/// The most header bytes (names and values) and header fields a request may carry; beyond
/// either is a 431 problem. (API Gateway's own limit is 10 KB; `orrery-local`'s HTTP server is
/// set well above these so that the answer is always this problem, not a bare status.)
pub const MAX_HEADER_BYTES: usize = 32 * 1024;
pub const MAX_HEADER_FIELDS: usize = 100;

/// A 414 or 431 problem for a request beyond the documented limits.
fn oversized_head(req: &Request) -> Option<ApiError> {
    let target = req.uri().path_and_query().map_or(0, |pq| pq.as_str().len());
    if target > MAX_URI_BYTES {
        return Some(ApiError::UriTooLong {
            limit: MAX_URI_BYTES,
        });
    }
    let headers = req.headers();
    let bytes: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if headers.len() > MAX_HEADER_FIELDS || bytes > MAX_HEADER_BYTES {
        return Some(ApiError::HeadersTooLarge(format!(
            "The request carries {} header fields and {bytes} header bytes; the limits are \
             {MAX_HEADER_FIELDS} fields and {MAX_HEADER_BYTES} bytes.",
            headers.len()
        )));
    }
    None
}

/// A request slower than this is always logged, whatever the sample rate.
pub const SLOW_REQUEST: std::time::Duration = std::time::Duration::from_secs(1);

/// Which requests write the one "response" log line. At a million requests the lines cost about
/// as much as the compute (docs/cost.md), so a deployment may keep only a share of the ordinary
/// ones (successes and 429s); every other 4xx, every 5xx and every slow request is kept, and
/// each line carries `sample_rate` so that counts taken from the logs can be scaled back.
#[derive(Debug, Clone, Copy, PartialEq)]
struct RequestLog {
    sample: f64,
}

impl RequestLog {
    /// The rate this response is logged at, or `None` when it is left out. `draw` is uniform in
    /// [0, 1).
    fn rate(&self, status: StatusCode, latency: std::time::Duration, draw: f64) -> Option<f64> {
        // A 429 is a client running past its quota, maybe many times a second: sampled like a
        // success (its count is in the analytics either way).
        let error = (status.is_client_error() && status != StatusCode::TOO_MANY_REQUESTS)
            || status.is_server_error();
        let always = error || latency >= SLOW_REQUEST;
        if always || self.sample >= 1.0 {
            Some(1.0)
        } else {
            (draw < self.sample).then_some(self.sample)
        }
    }
}

/// A uniform draw in [0, 1) from the OS generator (one 8-byte read, only when sampling).
fn uniform_draw() -> f64 {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        return 0.0;
    }
    (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64
}

/// Picks the request id (a sane caller-supplied `x-request-id`, else Lambda's, else a new one),
/// runs the request inside a span that carries it, logs the response (see [`RequestLog`]) and
/// echoes the id on it.
async fn request_span(mut req: Request, next: Next, log: RequestLog) -> Response {
    let request_id = req
        .headers()
        .get(&REQUEST_ID_HEADER)
        .and_then(|value| value.to_str().ok())
        .filter(|id| !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_owned)
        .or_else(|| {
            req.extensions()
                .get::<lambda_runtime::Context>()
                .map(|ctx| ctx.request_id.clone())
        })
        .unwrap_or_else(|| crate::ids::new_id("req"));
    req.extensions_mut().insert(RequestId(request_id.clone()));
    if let Some(problem) = oversized_head(&req) {
        let mut response = problem.into_response();
        if let Ok(value) = HeaderValue::from_str(&request_id) {
            response.headers_mut().insert(REQUEST_ID_HEADER, value);
        }
        return response;
    }
    let span = tracing::info_span!(
        "request",
        request_id = %request_id,
        method = %req.method(),
        path = %req.uri().path(),
        account_id = tracing::field::Empty,
    );
    let started = std::time::Instant::now();
    let mut response = tracing::Instrument::instrument(next.run(req), span.clone()).await;
    let latency = started.elapsed();
    let draw = if log.sample < 1.0 {
        uniform_draw()
    } else {
        0.0
    };
    if let Some(sample_rate) = log.rate(response.status(), latency, draw) {
        span.in_scope(|| {
            tracing::info!(
                status = response.status().as_u16(),
                latency_ms = latency.as_millis() as u64,
                sample_rate,
                "response"
            );
        });
    }
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    response
}

/// Builds a response body from bytes with a content type (for non-JSON representations).
pub fn with_content_type(body: impl Into<Body>, content_type: &'static str) -> Response {
    let mut response = Response::new(body.into());
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_and_slow_requests_are_always_logged_and_the_rest_sampled() {
        let fast = std::time::Duration::from_millis(3);
        let sampled = RequestLog { sample: 0.05 };
        assert_eq!(sampled.rate(StatusCode::OK, fast, 0.049), Some(0.05));
        assert_eq!(sampled.rate(StatusCode::OK, fast, 0.05), None);
        for status in [StatusCode::NOT_FOUND, StatusCode::INTERNAL_SERVER_ERROR] {
            assert_eq!(sampled.rate(status, fast, 0.99), Some(1.0), "{status}");
        }
        assert_eq!(
            sampled.rate(StatusCode::TOO_MANY_REQUESTS, fast, 0.99),
            None,
            "429s are sampled"
        );
        assert_eq!(sampled.rate(StatusCode::OK, SLOW_REQUEST, 0.99), Some(1.0));
        let every = RequestLog { sample: 1.0 };
        assert_eq!(every.rate(StatusCode::OK, fast, 0.999), Some(1.0));
        let none = RequestLog { sample: 0.0 };
        assert_eq!(none.rate(StatusCode::OK, fast, 0.0), None);
        let draws: Vec<f64> = (0..1000).map(|_| uniform_draw()).collect();
        assert!(draws.iter().all(|d| (0.0..1.0).contains(d)));
        let below = draws.iter().filter(|d| **d < 0.5).count();
        assert!(
            (350..650).contains(&below),
            "uniform-ish: {below} of 1000 below 0.5"
        );
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Input {
        name: String,
        nested: Nested,
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Nested {
        count: u32,
    }

    #[test]
    fn syntax_errors_are_400_with_position() {
        let err = parse_json::<Input>(b"{\n  \"name\": \"x\",\n  oops\n}").expect_err("malformed");
        let problem = err.problem();
        assert_eq!(problem.status, 400);
        assert!(
            problem.detail.contains("line 3, column 3"),
            "{}",
            problem.detail
        );
    }

    #[test]
    fn trailing_data_after_the_value_is_400_with_position() {
        for (body, column) in [
            (&br#"{"name": "x", "nested": {"count": 1}} garbage"#[..], 39),
            (
                &br#"{"name": "x", "nested": {"count": 1}}{"name": "y"}"#[..],
                38,
            ),
        ] {
            let problem = parse_json::<Input>(body)
                .expect_err("trailing data")
                .problem();
            assert_eq!(problem.status, 400);
            assert!(
                problem.detail.contains(&format!("line 1, column {column}")),
                "{}",
                problem.detail
            );
        }
        assert!(parse_json::<Input>(b"{\"name\": \"x\", \"nested\": {\"count\": 1}} \n").is_ok());
    }

    #[test]
    fn shape_errors_are_422_naming_the_field() {
        let err = parse_json::<Input>(br#"{"name": "x", "nested": {"count": -1}}"#)
            .expect_err("negative");
        let problem = err.problem();
        assert_eq!(problem.status, 422);
        assert_eq!(problem.errors[0].field, "nested.count");
    }
}
