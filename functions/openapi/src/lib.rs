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

pub fn router() -> Router {
    Router::new().route("/openapi.json", get(serve))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use serde_json::Value;

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
