//! Pieces every function's OpenAPI paths share: the problem responses, the security schemes
//! and the rate-limit headers. The document itself is assembled by the `openapi` function from
//! each function crate's `openapi()`.

use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{IntoResponses, Modify};

use crate::error::Problem;

/// Security scheme names used by the paths.
pub const API_KEY: &str = "api_key";
pub const API_KEY_HEADER: &str = "api_key_header";
pub const ADMIN_KEY: &str = "admin_key";

/// The problems any metered `/v1` route can answer with (RFC 9457 bodies).
#[derive(IntoResponses)]
pub enum MeteredProblems {
    /// Malformed JSON (with line and column), or a bad header such as `Idempotency-Key`.
    #[response(status = 400, content_type = "application/problem+json")]
    BadRequest(#[to_schema] Problem),
    /// The API key is missing, malformed, unknown, revoked or expired; `detail` says which.
    #[response(status = 401, content_type = "application/problem+json")]
    Unauthorized(#[to_schema] Problem),
    /// The key lacks the scope this route needs.
    #[response(status = 403, content_type = "application/problem+json")]
    Forbidden(#[to_schema] Problem),
    /// The body is larger than the limit.
    #[response(status = 413, content_type = "application/problem+json")]
    PayloadTooLarge(#[to_schema] Problem),
    /// Invalid fields: `errors[]` names each one with the accepted range or values.
    #[response(status = 422, content_type = "application/problem+json")]
    Invalid(#[to_schema] Problem),
    /// The daily quota of this route's class is used up; `Retry-After` says when it resets.
    #[response(
        status = 429,
        content_type = "application/problem+json",
        headers(("Retry-After" = u64, description = "Seconds until the quota resets (midnight UTC)"))
    )]
    RateLimited(#[to_schema] Problem),
}

/// The problems of the admin API.
#[derive(IntoResponses)]
pub enum AdminProblems {
    #[response(status = 400, content_type = "application/problem+json")]
    BadRequest(#[to_schema] Problem),
    /// The admin key is missing or wrong.
    #[response(status = 401, content_type = "application/problem+json")]
    Unauthorized(#[to_schema] Problem),
    #[response(status = 422, content_type = "application/problem+json")]
    Invalid(#[to_schema] Problem),
}

/// Adds the security schemes: an API key as `Authorization: Bearer` or `X-API-Key`, and the
/// admin key.
#[derive(Debug, Clone, Copy)]
pub struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            API_KEY,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("orr_live_… / orr_test_…")
                    .description(Some("An API key as `Authorization: Bearer <key>`."))
                    .build(),
            ),
        );
        components.add_security_scheme(
            API_KEY_HEADER,
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-API-Key",
                "The same API key in the `X-API-Key` header.",
            ))),
        );
        components.add_security_scheme(
            ADMIN_KEY,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "The admin key (Secrets Manager; `ORRERY_ADMIN_KEY` locally), as \
                         `Authorization: Bearer` or `X-Admin-Key`.",
                    ))
                    .build(),
            ),
        );
    }
}
