//! `GET /openapi.json`: the OpenAPI 3.1 document of every `/v1` endpoint, assembled from each
//! function crate's `openapi()` — the paths, schemas and examples are generated from the
//! handlers and types themselves (utoipa), so the document cannot drift from the code.

use std::sync::OnceLock;

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use utoipa::Modify;
use utoipa::openapi::{InfoBuilder, OpenApi};

const DESCRIPTION: &str = "Natal charts, SVG chart wheels, transits, synastry and readings, \
computed from the JPL DE422 ephemeris.\n\n\
**Authentication**: an API key (`orr_live_…` or `orr_test_…`) as `Authorization: Bearer <key>` \
or `X-API-Key`. The admin API takes the admin key.\n\n\
**Quotas**: every `/v1` route belongs to a daily quota class (`charts`, `readings`, \
`management`, …) whose size depends on the account's tier. Every metered response carries \
`RateLimit-Policy: \"charts-daily\";q=200;w=86400`, `RateLimit: \"charts-daily\";r=57;t=3600` \
and `X-RateLimit-Limit/Remaining/Reset/Used`; a refused request is a 429 with `Retry-After`. \
Requests answered with a 4xx cost nothing.\n\n\
**Errors** are RFC 9457 `application/problem+json`; validation problems (422) list every \
invalid field in `errors[]` with the accepted range or values.";

/// The whole document.
pub fn document() -> OpenApi {
    let mut document = orrery_charts_api::openapi();
    for part in [
        orrery_readings_api::openapi(),
        orrery_webhooks_api::openapi(),
        orrery_api_keys::openapi(),
        orrery_admin::openapi(),
    ] {
        document.merge(part);
    }
    document.info = InfoBuilder::new()
        .title("Orrery API")
        .version(env!("CARGO_PKG_VERSION"))
        .description(Some(DESCRIPTION))
        .build();
    orrery::openapi::SecuritySchemes.modify(&mut document);
    document
}

/// The document as served: built once per process.
pub fn document_json() -> &'static str {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| document().to_json().unwrap_or_else(|_| "{}".to_owned()))
}

async fn serve() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        document_json(),
    )
}

/// Routes outside the document, served by every deployment.
const UNDOCUMENTED_ROUTES: [(&str, &str); 2] = [("/health", "GET"), ("/openapi.json", "GET")];

/// The methods the API serves at `path` (`None`: no route has this path). Path templates
/// (`/v1/charts/saved/{id}`) match any one non-empty segment where they hold a parameter.
pub fn methods_at(path: &str) -> Option<Vec<String>> {
    static TABLE: OnceLock<Vec<(String, Vec<String>)>> = OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let mut table: Vec<(String, Vec<String>)> = document()
            .paths
            .paths
            .iter()
            .map(|(template, item)| {
                let methods = serde_json::to_value(item)
                    .ok()
                    .and_then(|value| value.as_object().cloned())
                    .map(|operations| {
                        operations
                            .keys()
                            .filter(|key| {
                                matches!(
                                    key.as_str(),
                                    "get"
                                        | "put"
                                        | "post"
                                        | "delete"
                                        | "patch"
                                        | "head"
                                        | "options"
                                )
                            })
                            .map(|key| key.to_ascii_uppercase())
                            .collect()
                    })
                    .unwrap_or_default();
                (template.clone(), methods)
            })
            .collect();
        for (path, method) in UNDOCUMENTED_ROUTES {
            table.push((path.to_owned(), vec![method.to_owned()]));
        }
        table
    });
    let matches = |template: &str| {
        let (mut wanted, mut given) = (template.split('/'), path.split('/'));
        loop {
            match (wanted.next(), given.next()) {
                (None, None) => return true,
                (Some(w), Some(g)) if w.starts_with('{') && w.ends_with('}') && !g.is_empty() => {}
                (Some(w), Some(g)) if w == g => {}
                _ => return false,
            }
        }
    };
    // A literal segment wins over a parameter (`/v1/webhooks/event-types` vs `/{id}`), as in
    // the routers themselves: take the matching template with the fewest parameters.
    table
        .iter()
        .filter(|(template, _)| matches(template))
        .min_by_key(|(template, _)| template.matches('{').count())
        .map(|(_, methods)| methods.clone())
}

/// What API Gateway's `$default` route answers: every request no route took, as the same
/// problem+json `orrery-local` gives — a 405 with `Allow` for a path that exists, else a 404.
async fn unrouted(method: axum::http::Method, uri: axum::http::Uri) -> axum::response::Response {
    match methods_at(uri.path()) {
        Some(methods) if !methods.iter().any(|m| m == method.as_str()) => {
            let mut response = orrery::ApiError::MethodNotAllowed.into_response();
            if let Ok(allow) = axum::http::HeaderValue::from_str(&methods.join(", ")) {
                response.headers_mut().insert(header::ALLOW, allow);
            }
            response
        }
        _ => orrery::ApiError::NotFound("No resource at this path.".into()).into_response(),
    }
}

/// The document at `/openapi.json`, and every unrouted request (API Gateway's `$default`).
pub fn router() -> Router {
    Router::new().route("/openapi.json", get(serve))
}

/// The handler for API Gateway's `$default` route.
pub fn unrouted_fallback() -> axum::routing::MethodRouter {
    axum::routing::any(unrouted)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use axum::body::to_bytes;
    use serde_json::Value;
    use tower::ServiceExt;

    /// Runs an API Gateway event from `events/` through this function as Lambda would.
    async fn invoke(event: &str) -> axum::response::Response {
        let router = orrery::http::platform_layers_with(
            super::router(),
            orrery::http::DEFAULT_MAX_BODY_BYTES,
            super::unrouted_fallback(),
        );
        let request = lambda_http::request::from_str(event).expect("a valid API Gateway event");
        let (parts, body) = request.into_parts();
        let request = http::Request::from_parts(parts, axum::body::Body::from(body.to_vec()));
        router.oneshot(request).await.unwrap()
    }

    #[tokio::test]
    async fn unrouted_requests_get_the_same_problems_as_orrery_local() {
        let response = invoke(include_str!("../../../events/method-not-allowed.json")).await;
        assert_eq!(response.status(), 405);
        assert_eq!(response.headers()["allow"], "POST");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
        assert_eq!(response.headers()["x-request-id"], "client-trace-42");
        let body: Value =
            serde_json::from_slice(&to_bytes(response.into_body(), 1 << 16).await.unwrap())
                .unwrap();
        assert_eq!(body["status"], 405);

        let response = invoke(include_str!("../../../events/not-found.json")).await;
        assert_eq!(response.status(), 404);
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
    }

    #[test]
    fn the_route_table_knows_every_path_and_method() {
        let sorted = |path: &str| {
            let mut methods = super::methods_at(path).unwrap();
            methods.sort();
            methods
        };
        assert_eq!(sorted("/v1/charts"), ["POST"]);
        assert_eq!(sorted("/v1/webhooks/wh_123"), ["DELETE", "GET", "PATCH"]);
        assert_eq!(sorted("/v1/webhooks/event-types"), ["GET"]);
        assert_eq!(sorted("/health"), ["GET"]);
        assert_eq!(super::methods_at("/v1/nothing"), None);
        assert_eq!(super::methods_at("/v1/webhooks/"), None);
    }

    #[test]
    fn every_v1_route_is_documented_with_its_schemas_and_examples() {
        let doc: Value = serde_json::from_str(super::document_json()).unwrap();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
        let paths = doc["paths"].as_object().unwrap();
        for (path, methods) in [
            ("/v1/charts", &["post"][..]),
            ("/v1/charts/transits", &["post"]),
            ("/v1/charts/synastry", &["post"]),
            ("/v1/charts/saved", &["get", "post"]),
            ("/v1/charts/saved/{id}", &["get", "delete"]),
            ("/v1/readings", &["post"]),
            ("/v1/api-keys", &["get", "post"]),
            ("/v1/api-keys/{id}", &["get", "delete"]),
            ("/v1/api-keys/{id}/revoke", &["patch"]),
            ("/v1/api-keys/{id}/rotate", &["post"]),
            ("/v1/api-keys/{id}/usage", &["get"]),
            ("/v1/admin/accounts", &["get", "post"]),
            ("/v1/admin/accounts/{id}", &["get", "patch"]),
            ("/v1/admin/cache/stats", &["get"]),
            ("/v1/admin/cache/warm", &["post"]),
            ("/v1/admin/cache/invalidate", &["post"]),
            ("/v1/webhooks", &["get", "post"]),
            ("/v1/webhooks/{id}", &["get", "patch", "delete"]),
            ("/v1/webhooks/{id}/rotate-secret", &["post"]),
            ("/v1/webhooks/{id}/secret", &["get"]),
            ("/v1/webhooks/{id}/test", &["post"]),
            ("/v1/webhooks/{id}/deliveries", &["get"]),
            ("/v1/webhooks/{id}/replay", &["post"]),
            ("/v1/webhooks/event-types", &["get"]),
        ] {
            for method in methods {
                let operation = &paths[path][method];
                assert!(operation.is_object(), "{method} {path}");
                assert!(
                    operation["responses"].as_object().unwrap().len() >= 2,
                    "{method} {path} documents its problems"
                );
            }
        }
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        for schema in [
            "ChartRequestBody",
            "ChartResponse",
            "Chart",
            "BodyEntry",
            "Aspect",
            "HouseSystem",
            "Transits",
            "Synastry",
            "Reading",
            "SavedChartSummary",
            "Problem",
            "FieldError",
            "KeyView",
        ] {
            assert!(schemas.contains_key(schema), "schema {schema}");
        }
        let houses = serde_json::to_string(&schemas["HouseSystem"]).unwrap();
        assert!(houses.contains("placidus") && houses.contains("whole_sign"));
        assert!(
            schemas["ChartRequestBody"]["example"].is_object(),
            "request bodies carry examples"
        );
        let chart_post = &paths["/v1/charts"]["post"];
        assert!(chart_post["responses"]["200"]["content"]["image/svg+xml"].is_object());
        assert!(chart_post["responses"]["429"]["headers"]["Retry-After"].is_object());
        assert!(doc["components"]["securitySchemes"]["api_key"].is_object());
    }
}
