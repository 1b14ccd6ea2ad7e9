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
    let mut document = orrery_fn_charts::openapi();
    for part in [
        orrery_fn_readings::openapi(),
        orrery_fn_webhooks::openapi(),
        orrery_fn_batches::openapi(),
        orrery_fn_analytics::openapi(),
        orrery_fn_event_log::openapi(),
        orrery_fn_event_stream::openapi(),
        orrery_fn_api_keys::openapi(),
        orrery_fn_admin::openapi(),
    ] {
        document.merge(part);
    }
    document.info = InfoBuilder::new()
        .title("Orrery API")
        .version(env!("CARGO_PKG_VERSION"))
        .description(Some(DESCRIPTION))
        .build();
    orrery::openapi::SecuritySchemes.modify(&mut document);
    orrery::openapi::Conventions.modify(&mut document);
    document
}

/// The document as served: built once per process.
pub fn document_json() -> &'static str {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| {
        serde_json::to_value(document())
            .map(|mut value| {
                camel_case_links(&mut value);
                value.to_string()
            })
            .unwrap_or_else(|_| "{}".to_owned())
    })
}

/// utoipa 5 serialises a Link Object's fields in snake case (`operation_id`); OpenAPI names
/// them `operationId`, `operationRef` and `requestBody`.
fn camel_case_links(document: &mut serde_json::Value) {
    let Some(paths) = document
        .get_mut("paths")
        .and_then(serde_json::Value::as_object_mut)
    else {
        return;
    };
    let links = paths
        .values_mut()
        .filter_map(serde_json::Value::as_object_mut)
        .flat_map(|item| item.values_mut())
        .filter_map(|operation| operation.get_mut("responses"))
        .filter_map(serde_json::Value::as_object_mut)
        .flat_map(|responses| responses.values_mut())
        .filter_map(|response| response.get_mut("links"))
        .filter_map(serde_json::Value::as_object_mut)
        .flat_map(|links| links.values_mut())
        .filter_map(serde_json::Value::as_object_mut);
    for link in links {
        for (snake, camel) in [
            ("operation_id", "operationId"),
            ("operation_ref", "operationRef"),
            ("request_body", "requestBody"),
        ] {
            if let Some(value) = link.remove(snake) {
                link.insert(camel.to_owned(), value);
            }
        }
    }
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
            orrery::http::Platform::default(),
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
            ("/v1/analytics/usage", &["get"]),
            ("/v1/analytics/latency", &["get"]),
            ("/v1/analytics/summary", &["get"]),
            ("/v1/admin/analytics/accounts", &["get"]),
            ("/v1/admin/analytics/accounts/{id}/usage", &["get"]),
            ("/v1/admin/analytics/accounts/{id}/latency", &["get"]),
            ("/v1/admin/analytics/accounts/{id}/summary", &["get"]),
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

    /// Every status a route can answer is documented: the platform's 414 and 431 everywhere,
    /// 413 and 415 wherever a body is taken, 404 wherever the path names a resource, and a
    /// security requirement on every operation.
    #[test]
    fn every_operation_documents_the_shared_problems_and_its_security() {
        let doc: Value = serde_json::from_str(super::document_json()).unwrap();
        let mut operations = 0;
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                operations += 1;
                let responses = operation["responses"].as_object().unwrap();
                let has = |status: &str| responses.contains_key(status);
                for status in ["400", "401", "414", "422", "431"] {
                    assert!(has(status), "{method} {path} documents {status}");
                }
                if operation.get("requestBody").is_some() {
                    for status in ["413", "415"] {
                        assert!(has(status), "{method} {path} takes a body: {status}");
                    }
                }
                if path.contains('{') {
                    assert!(has("404"), "{method} {path} names a resource: 404");
                }
                let security = operation["security"].as_array().unwrap();
                let scheme = if path.starts_with("/v1/admin/") {
                    "admin_key"
                } else {
                    "api_key"
                };
                assert!(
                    security.iter().any(|s| s.get(scheme).is_some()),
                    "{method} {path} needs {scheme}"
                );
                if !path.starts_with("/v1/admin/") {
                    assert!(has("403") && has("429"), "{method} {path} is metered");
                }
            }
        }
        assert!(operations >= 34, "{operations} operations");
        for name in [
            "NotFound",
            "UnsupportedMediaType",
            "PayloadTooLarge",
            "UriTooLong",
        ] {
            assert!(doc["components"]["responses"][name].is_object(), "{name}");
        }
    }

    /// Each create links to the reads and changes of what it created, by the id in its body.
    #[test]
    fn creates_link_to_what_they_created() {
        let doc: Value = serde_json::from_str(super::document_json()).unwrap();
        let operation_ids: Vec<&str> = doc["paths"]
            .as_object()
            .unwrap()
            .values()
            .flat_map(|item| item.as_object().unwrap().values())
            .filter_map(|operation| operation["operationId"].as_str())
            .collect();
        for (path, status, pointer, targets) in [
            (
                "/v1/api-keys",
                "201",
                "$response.body#/id",
                &[
                    "get_api_key",
                    "delete_api_key",
                    "revoke_api_key",
                    "rotate_api_key",
                ][..],
            ),
            (
                "/v1/webhooks",
                "201",
                "$response.body#/id",
                &["get_webhook", "update_webhook", "delete_webhook"],
            ),
            (
                "/v1/charts/saved",
                "201",
                "$response.body#/id",
                &["get_saved_chart", "delete_saved_chart"],
            ),
            (
                "/v1/charts",
                "201",
                "$response.body#/id",
                &["get_saved_chart", "delete_saved_chart"],
            ),
            (
                "/v1/admin/accounts",
                "201",
                "$response.body#/account/id",
                &["get_account", "update_account"],
            ),
        ] {
            let links = doc["paths"][path]["post"]["responses"][status]["links"]
                .as_object()
                .unwrap_or_else(|| panic!("POST {path} {status} has links"));
            for target in targets {
                let link = links
                    .values()
                    .find(|link| link["operationId"] == *target)
                    .unwrap_or_else(|| panic!("POST {path} links to {target}"));
                assert!(operation_ids.contains(target), "{target} exists");
                assert_eq!(link["parameters"]["id"], pointer, "POST {path} → {target}");
                assert!(link.get("operation_id").is_none(), "camelCase keys");
            }
        }
    }

    /// The schemas are as strict as the validation: ranges, enums and formats.
    #[test]
    fn request_schemas_state_the_validation() {
        let doc: Value = serde_json::from_str(super::document_json()).unwrap();
        let schemas = &doc["components"]["schemas"];
        let chart = &schemas["ChartRequestBody"];
        assert_eq!(chart["additionalProperties"], false);
        assert_eq!(chart["properties"]["latitude"]["minimum"], -90);
        assert_eq!(chart["properties"]["latitude"]["maximum"], 90);
        assert_eq!(chart["properties"]["longitude"]["minimum"], -180);
        assert_eq!(chart["properties"]["longitude"]["maximum"], 180);
        assert!(chart["properties"]["datetime"]["pattern"].is_string());
        let key = &schemas["NewKeyRequest"];
        let scopes: Vec<&str> = key["properties"]["scopes"]["items"]["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap())
            .collect();
        assert_eq!(scopes, orrery::access::keys::SCOPES);
        assert_eq!(key["properties"]["expires_at"]["format"], "date-time");
        assert_eq!(
            schemas["RotateRequest"]["properties"]["grace_seconds"]["maximum"],
            604800
        );
        let url = &schemas["NewEndpoint"]["properties"]["url"];
        assert_eq!(url["format"], "uri");
        assert!(
            url["pattern"]
                .as_str()
                .unwrap()
                .contains("[Hh][Tt][Tt][Pp][Ss]")
        );
        let events = schemas["NewEndpoint"]["properties"]["event_types"]["items"]["enum"]
            .as_array()
            .unwrap()
            .len();
        assert_eq!(events, orrery::events::EventType::DELIVERABLE.len());
        let usage = &doc["paths"]["/v1/api-keys/{id}/usage"]["get"]["parameters"];
        let days = usage
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "days")
            .unwrap();
        assert_eq!(
            days["schema"]["maximum"],
            orrery::access::quota::USAGE_RETENTION_DAYS
        );
        let limit = doc["paths"]["/v1/webhooks"]["get"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "limit")
            .unwrap()
            .clone();
        let pattern = limit["schema"]["pattern"].as_str().unwrap();
        assert!(pattern.contains("100"), "{pattern}");
        // An optional body may be absent, not JSON `null`.
        let rotate = &doc["paths"]["/v1/api-keys/{id}/rotate"]["post"]["requestBody"];
        assert_ne!(rotate["required"], true);
        assert!(rotate["content"]["application/json"]["schema"]["$ref"].is_string());
    }
}
