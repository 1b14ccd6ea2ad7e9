//! Pieces every function's OpenAPI paths share: the problem responses, the security schemes
//! and the rate-limit headers. The document itself is assembled by the `openapi` function from
//! each function crate's `openapi()`.
//!
//! What every route has in common is declared here once, not on each path: [`Conventions`] gives
//! every `/v1` operation its security requirement and the problems the platform layer and the
//! extractors answer with (414 and 431 everywhere; 400, 413 and 415 where a body is taken; 404
//! where the path names a resource), as references to `components.responses`.

use utoipa::openapi::path::Operation;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{ContentBuilder, Ref, RefOr};
use utoipa::{IntoResponses, Modify};

use crate::error::Problem;

/// White space as Rust's `str::trim` removes it (Unicode `White_Space`), in patterns that state
/// what a trimmed length means.
macro_rules! space {
    () => {
        "[\\t-\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]"
    };
}
/// Anything but that white space.
macro_rules! not_space {
    () => {
        "[^\\t-\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]"
    };
}
/// A text whose trimmed length is 1 to `$max` characters (`$inner` = `$max` − 2), or, with
/// `optional`, also 0.
macro_rules! trimmed {
    ($inner:literal) => {
        concat!(
            "^",
            space!(),
            "*",
            not_space!(),
            "([\\s\\S]{0,",
            $inner,
            "}",
            not_space!(),
            ")?",
            space!(),
            "*$"
        )
    };
    (optional $inner:literal) => {
        concat!(
            "^",
            space!(),
            "*(",
            not_space!(),
            "([\\s\\S]{0,",
            $inner,
            "}",
            not_space!(),
            ")?)?",
            space!(),
            "*$"
        )
    };
}

/// Patterns of names the handlers trim before checking their length.
pub const TRIMMED_1_TO_100: &str = trimmed!("98");
pub const TRIMMED_1_TO_200: &str = trimmed!("198");
pub const TRIMMED_UP_TO_200: &str = trimmed!(optional "198");
pub const TRIMMED_UP_TO_500: &str = trimmed!(optional "498");
/// What `Idempotency-Key` may hold: 1 to 255 visible ASCII characters.
pub const IDEMPOTENCY_KEY_PATTERN: &str = "^[!-~]{1,255}$";

/// Security scheme names used by the paths.
pub const API_KEY: &str = "api_key";
pub const API_KEY_HEADER: &str = "api_key_header";
pub const ADMIN_KEY: &str = "admin_key";

/// The problems any metered `/v1` route can answer with (RFC 9457 bodies).
#[derive(IntoResponses)]
pub enum MeteredProblems {
    /// Malformed JSON (with its line and column) or data after the JSON value; a bad header such
    /// as `Idempotency-Key`; a malformed query string; a `cursor` no list returned (cursors are
    /// tamper-evident).
    #[response(status = 400, content_type = "application/problem+json")]
    BadRequest(#[to_schema] Problem),
    /// The API key is missing, malformed, unknown, revoked or expired; `detail` says which.
    #[response(status = 401, content_type = "application/problem+json")]
    Unauthorized(#[to_schema] Problem),
    /// The key lacks the scope this route needs.
    #[response(status = 403, content_type = "application/problem+json")]
    Forbidden(#[to_schema] Problem),
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
    /// Malformed JSON (with its line and column) or data after the JSON value; a malformed query
    /// string; a `cursor` no list returned.
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

/// The problems every `/v1` operation shares, by status: (status, component name, description).
/// The platform layer answers 414 and 431 before any route runs.
const EVERY_ROUTE: [(&str, &str, &str); 2] = [
    (
        "414",
        "UriTooLong",
        "The request target (path and query) is longer than 8 KiB.",
    ),
    (
        "431",
        "HeaderFieldsTooLarge",
        "The header section is larger than 32 KiB or has more than 100 fields.",
    ),
];

/// The problems of every operation that takes a JSON body.
const BODY_ROUTE: [(&str, &str, &str); 2] = [
    (
        "413",
        "PayloadTooLarge",
        "The body, or the item it would store, is larger than the limit.",
    ),
    (
        "415",
        "UnsupportedMediaType",
        "The body is not sent as `Content-Type: application/json` (or another `+json` type).",
    ),
];

/// The problem of every operation whose path names a resource.
const RESOURCE_ROUTE: (&str, &str, &str) = (
    "404",
    "NotFound",
    "Nothing with this id in the caller's account (a malformed id is not found either).",
);

fn problem_response(description: &str) -> Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            crate::error::PROBLEM_CONTENT_TYPE,
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Problem")))
                .build(),
        )
        .build()
}

/// Gives every `/v1` operation what all routes share: the security requirement (the admin key
/// under `/v1/admin`, an API key elsewhere) and the shared problem responses, declared once in
/// `components.responses`. Responses a path declares itself (a 404 with its own wording) win.
#[derive(Debug, Clone, Copy)]
pub struct Conventions;

impl Conventions {
    fn apply(path: &str, operation: &mut Operation) {
        if operation.security.is_none() {
            operation.security = Some(if path.starts_with("/v1/admin/") {
                vec![SecurityRequirement::new(ADMIN_KEY, Vec::<String>::new())]
            } else {
                vec![
                    SecurityRequirement::new(API_KEY, Vec::<String>::new()),
                    SecurityRequirement::new(API_KEY_HEADER, Vec::<String>::new()),
                ]
            });
        }
        if let Some(body) = operation.request_body.as_mut() {
            absent_not_null(body);
        }
        let mut shared: Vec<(&str, &str)> = EVERY_ROUTE
            .iter()
            .map(|(status, name, _)| (*status, *name))
            .collect();
        if operation.request_body.is_some() {
            shared.extend(BODY_ROUTE.iter().map(|(status, name, _)| (*status, *name)));
        }
        if path.contains('{') {
            shared.push((RESOURCE_ROUTE.0, RESOURCE_ROUTE.1));
        }
        for (status, name) in shared {
            operation
                .responses
                .responses
                .entry(status.to_owned())
                .or_insert_with(|| RefOr::Ref(Ref::from_response_name(name)));
        }
    }
}

/// utoipa states an optional body (`request_body = Option<T>`) as a schema that also admits JSON
/// `null`; the handlers take an optional body as one that is absent (no body, no content type),
/// and a `null` body is a 422 like any other value of the wrong type. Keep `required: false`
/// and state the body's own schema.
fn absent_not_null(body: &mut utoipa::openapi::request_body::RequestBody) {
    use utoipa::openapi::schema::{Schema, SchemaType, Type};
    if !matches!(body.required, None | Some(utoipa::openapi::Required::False)) {
        return;
    }
    for content in body.content.values_mut() {
        let Some(RefOr::T(Schema::OneOf(one_of))) = &content.schema else {
            continue;
        };
        let is_null = |schema: &RefOr<Schema>| {
            matches!(schema, RefOr::T(Schema::Object(object))
                if object.schema_type == SchemaType::Type(Type::Null))
        };
        let others: Vec<&RefOr<Schema>> = one_of.items.iter().filter(|s| !is_null(s)).collect();
        if let [only] = others[..]
            && others.len() < one_of.items.len()
        {
            content.schema = Some(only.clone());
        }
    }
}

impl Modify for Conventions {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        for (_, name, description) in EVERY_ROUTE
            .iter()
            .chain(BODY_ROUTE.iter())
            .chain([&RESOURCE_ROUTE])
        {
            components
                .responses
                .insert((*name).to_owned(), RefOr::T(problem_response(description)));
        }
        for (path, item) in openapi.paths.paths.iter_mut() {
            if !path.starts_with("/v1/") {
                continue;
            }
            for operation in [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
                &mut item.head,
                &mut item.options,
                &mut item.trace,
            ]
            .into_iter()
            .flatten()
            {
                Conventions::apply(path, operation);
            }
        }
    }
}

/// Building blocks for schemas that derive macros cannot state (patterns measured after
/// trimming, nullable patches), for `#[schema(schema_with = …)]`. Each domain module writes its
/// own fields' schemas with these next to its types, from the lists its handlers check against,
/// so the document cannot drift from them and this module depends on no domain module.
pub mod schemas {
    use utoipa::openapi::schema::{Object, ObjectBuilder, SchemaType, Type};

    /// A string that is one of `values`.
    pub fn names(values: impl IntoIterator<Item = &'static str>) -> Object {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(values))
            .build()
    }

    /// `kind` or null (a patch field that absent or null leaves as it is).
    pub fn nullable(kind: Type) -> SchemaType {
        SchemaType::from_iter([kind, Type::Null])
    }

    /// A string matching `pattern`, optionally nullable.
    pub fn text(pattern: &str, description: &str, null: bool) -> Object {
        ObjectBuilder::new()
            .schema_type(if null {
                nullable(Type::String)
            } else {
                Type::String.into()
            })
            .pattern(Some(pattern))
            .description(Some(description))
            .build()
    }

    /// A chart's display name (empty once trimmed: none).
    pub fn chart_name() -> Object {
        text(
            super::TRIMMED_UP_TO_200,
            "Display name, at most 200 characters once trimmed; not part of the chart's identity.",
            true,
        )
    }

    /// A cache namespace of [`crate::cache::NAMESPACES`].
    pub fn cache_namespace() -> Object {
        names(crate::cache::NAMESPACES.map(|namespace| namespace.name))
    }
}
