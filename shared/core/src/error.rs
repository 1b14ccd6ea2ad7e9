//! The one error type of the HTTP surface, rendered once as RFC 9457 `application/problem+json`.
//! 5xx bodies say nothing internal: the detail goes to the log, inside the request's span (which
//! carries the request id that is also in the response's `x-request-id`).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::queue::QueueError;
use crate::secrets::SecretError;
use crate::store::StoreError;

pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";
const PROBLEM_BASE: &str = "https://orrery.dev/problems/";

/// One invalid input field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    /// Dotted path of the field in the request (`datetime`, `options.orbs.trine`, `cursor`).
    pub field: String,
    pub message: String,
}

/// Longest field path or message a problem carries: messages quote the invalid value, and a
/// 200 KB value must not come back (twice) in the answer.
const MAX_ECHO_CHARS: usize = 240;

/// `text` cut to [`MAX_ECHO_CHARS`] characters, saying how much was left out.
fn capped(mut text: String) -> String {
    if let Some((cut, _)) = text.char_indices().nth(MAX_ECHO_CHARS) {
        let omitted = text[cut..].chars().count();
        text.truncate(cut);
        text.push_str(&format!("… ({omitted} more characters)"));
    }
    text
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: capped(field.into()),
            message: capped(message.into()),
        }
    }
}

/// The errors of one item of a list the request carries (a batch's `requests`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ItemProblem {
    /// The item's position in the list, from 0.
    pub index: usize,
    /// The item's `custom_id`, when it has a readable one.
    pub custom_id: Option<String>,
    /// Its field errors, paths relative to the item (`body.latitude`).
    pub errors: Vec<FieldError>,
}

/// A request for several quota units that the day's remaining quota cannot cover.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shortfall {
    pub policy: String,
    pub needed: u32,
    pub available: u32,
    pub resets_at: chrono::DateTime<chrono::Utc>,
    pub retry_after_seconds: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("payload too large (limit {limit} bytes)")]
    PayloadTooLarge { limit: usize },
    #[error("unsupported media type: {0}")]
    UnsupportedMediaType(String),
    #[error("URI too long (limit {limit} bytes)")]
    UriTooLong { limit: usize },
    #[error("request header fields too large: {0}")]
    HeadersTooLarge(String),
    #[error("validation failed: {0:?}")]
    Validation(Vec<FieldError>),
    #[error("rate limited: {detail}")]
    RateLimited {
        detail: String,
        retry_after_seconds: u64,
    },
    /// 429: all-or-nothing units the quota cannot cover (`needed`, `available`, `resets_at`).
    #[error("quota shortfall: {0:?}")]
    QuotaShortfall(Box<Shortfall>),
    /// 422: invalid items of a list, each by index and `custom_id`.
    #[error("invalid items: {} of them", .0.len())]
    InvalidItems(Vec<ItemProblem>),
    /// 410: a log cursor older than the log's retention; the log now starts after `oldest`.
    #[error("cursor expired; the log starts after {oldest}")]
    CursorExpired { oldest: String, retention: String },
    /// 503: the store is throttling (past the table's maximum throughput, or a hot partition)
    /// after the client's retries; worth retrying shortly.
    #[error("unavailable: {0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::Validation(vec![FieldError::new(field, message)])
    }

    pub fn internal(err: impl std::fmt::Display) -> Self {
        ApiError::Internal(err.to_string())
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::UriTooLong { .. } => StatusCode::URI_TOO_LONG,
            ApiError::HeadersTooLarge(_) => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ApiError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::RateLimited { .. } | ApiError::QuotaShortfall(_) => {
                StatusCode::TOO_MANY_REQUESTS
            }
            ApiError::InvalidItems(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::CursorExpired { .. } => StatusCode::GONE,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn slug_and_title(&self) -> (&'static str, &'static str) {
        match self {
            ApiError::BadRequest(_) => ("bad-request", "Bad request"),
            ApiError::Unauthorized(_) => ("unauthorized", "Unauthorized"),
            ApiError::Forbidden(_) => ("forbidden", "Forbidden"),
            ApiError::NotFound(_) => ("not-found", "Not found"),
            ApiError::MethodNotAllowed => ("method-not-allowed", "Method not allowed"),
            ApiError::Conflict(_) => ("conflict", "Conflict"),
            ApiError::PayloadTooLarge { .. } => ("payload-too-large", "Payload too large"),
            ApiError::UnsupportedMediaType(_) => {
                ("unsupported-media-type", "Unsupported media type")
            }
            ApiError::UriTooLong { .. } => ("uri-too-long", "URI too long"),
            ApiError::HeadersTooLarge(_) => {
                ("header-fields-too-large", "Request header fields too large")
            }
            ApiError::Validation(_) | ApiError::InvalidItems(_) => {
                ("validation-error", "Invalid request")
            }
            ApiError::RateLimited { .. } => ("rate-limited", "Too many requests"),
            ApiError::QuotaShortfall(_) => ("quota-shortfall", "Not enough quota left today"),
            ApiError::CursorExpired { .. } => ("cursor-expired", "Cursor expired"),
            ApiError::Unavailable(_) => ("unavailable", "Service unavailable"),
            ApiError::Internal(_) => ("internal-error", "Internal server error"),
        }
    }

    pub fn problem(&self) -> Problem {
        let (slug, title) = self.slug_and_title();
        let detail = match self {
            ApiError::BadRequest(d)
            | ApiError::Unauthorized(d)
            | ApiError::Forbidden(d)
            | ApiError::NotFound(d)
            | ApiError::Conflict(d)
            | ApiError::HeadersTooLarge(d)
            | ApiError::UnsupportedMediaType(d) => d.clone(),
            ApiError::UriTooLong { limit } => {
                format!("The request target exceeds the limit of {limit} bytes.")
            }
            ApiError::MethodNotAllowed => "This method is not supported on this resource.".into(),
            ApiError::PayloadTooLarge { limit } => {
                format!("The request body exceeds the limit of {limit} bytes.")
            }
            ApiError::Validation(errors) if errors.len() == 1 => {
                format!("{}: {}", errors[0].field, errors[0].message)
            }
            ApiError::Validation(errors) => format!("{} fields are invalid.", errors.len()),
            ApiError::RateLimited { detail, .. } => detail.clone(),
            ApiError::QuotaShortfall(shortfall) => format!(
                "This request needs {} units of the {} quota and {} are left today; it resets at {}.",
                shortfall.needed,
                shortfall.policy,
                shortfall.available,
                crate::clock::rfc3339(shortfall.resets_at)
            ),
            ApiError::InvalidItems(items) => format!(
                "{} item{} of the request {} invalid; nothing was accepted.",
                items.len(),
                if items.len() == 1 { "" } else { "s" },
                if items.len() == 1 { "is" } else { "are" }
            ),
            ApiError::CursorExpired { oldest, retention } => format!(
                "The events after this cursor are gone: the log keeps {retention}. It now starts \
                 after cursor {oldest}; resume from there (the events in between are lost to this \
                 client)."
            ),
            ApiError::Unavailable(_) => {
                "The service is handling more requests than it can take right now; retry in a \
                 moment."
                    .into()
            }
            ApiError::Internal(_) => {
                "The server failed to handle the request; it has been logged.".into()
            }
        };
        Problem {
            kind: format!("{PROBLEM_BASE}{slug}"),
            title,
            status: self.status().as_u16(),
            detail,
            errors: match self {
                ApiError::Validation(errors) => errors.clone(),
                _ => Vec::new(),
            },
            items: match self {
                ApiError::InvalidItems(items) => Some(items.clone()),
                _ => None,
            },
            needed: match self {
                ApiError::QuotaShortfall(shortfall) => Some(shortfall.needed),
                _ => None,
            },
            available: match self {
                ApiError::QuotaShortfall(shortfall) => Some(shortfall.available),
                _ => None,
            },
            oldest_cursor: match self {
                ApiError::CursorExpired { oldest, .. } => Some(oldest.clone()),
                _ => None,
            },
            resets_at: match self {
                ApiError::QuotaShortfall(shortfall) => {
                    Some(crate::clock::rfc3339(shortfall.resets_at))
                }
                _ => None,
            },
        }
    }
}

/// The RFC 9457 body.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: &'static str,
    pub status: u16,
    pub detail: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// Invalid items of a list (a batch), each with its own field errors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub items: Option<Vec<ItemProblem>>,
    /// Quota shortfall: the units the request needs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub needed: Option<u32>,
    /// Quota shortfall: the units left today.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub available: Option<u32>,
    /// Quota shortfall: when the quota resets (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resets_at: Option<String>,
    /// Expired cursor: the cursor the log now starts after (resume with it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oldest_cursor: Option<String>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self {
            ApiError::Internal(detail) => tracing::error!(error = %detail, "request failed"),
            ApiError::Unavailable(detail) => {
                tracing::warn!(error = %detail, "request refused: the store is throttling")
            }
            _ => {}
        }
        let problem = self.problem();
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut response = (self.status(), body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(PROBLEM_CONTENT_TYPE),
        );
        match &self {
            ApiError::RateLimited {
                retry_after_seconds,
                ..
            } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_seconds));
            }
            ApiError::QuotaShortfall(shortfall) => {
                headers.insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(shortfall.retry_after_seconds),
                );
            }
            ApiError::Unavailable(_) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(1u64));
            }
            ApiError::Unauthorized(_) => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"orrery\""),
                );
            }
            _ => {}
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::ConditionFailed | StoreError::TransactionCanceled { .. } => {
                ApiError::Conflict("The resource was changed by another request; retry.".into())
            }
            StoreError::InvalidCursor => ApiError::BadRequest(
                "The cursor is not one this list returned: pass `next_cursor` back unchanged."
                    .into(),
            ),
            StoreError::ItemTooLarge { limit, .. } => ApiError::PayloadTooLarge { limit },
            StoreError::Throttled(reason) => ApiError::Unavailable(reason),
            other @ (StoreError::LimitExceeded { .. }
            | StoreError::Invalid(_)
            | StoreError::Backend(_)) => ApiError::internal(other),
        }
    }
}

impl From<QueueError> for ApiError {
    fn from(err: QueueError) -> Self {
        ApiError::internal(err)
    }
}

impl From<SecretError> for ApiError {
    fn from(err: SecretError) -> Self {
        ApiError::internal(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_throttled_store_is_a_503_to_retry_in_a_second() {
        let response = ApiError::from(StoreError::Throttled(
            "ProvisionedThroughputExceeded".into(),
        ))
        .into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            PROBLEM_CONTENT_TYPE
        );
    }

    #[test]
    fn internal_errors_hide_their_detail() {
        let problem = ApiError::internal("table orrery-entities unreachable").problem();
        assert_eq!(problem.status, 500);
        assert!(!problem.detail.contains("orrery-entities"));
    }

    #[test]
    fn echoed_values_are_capped() {
        let huge = "x".repeat(200_000);
        let problem =
            ApiError::validation("timezone", format!("unknown time zone {huge:?}")).problem();
        let body = serde_json::to_string(&problem).expect("serialises");
        assert!(body.len() < 1_000, "{} bytes", body.len());
        assert!(
            problem.errors[0]
                .message
                .ends_with("… (199780 more characters)")
        );
    }

    #[test]
    fn validation_problems_name_fields() {
        let problem = ApiError::validation("latitude", "must be within -90..=90").problem();
        assert_eq!(problem.status, 422);
        assert_eq!(
            problem.errors,
            vec![FieldError::new("latitude", "must be within -90..=90")]
        );
        let body = serde_json::to_value(&problem).expect("serialises");
        assert_eq!(body["type"], "https://orrery.dev/problems/validation-error");
    }
}
