//! The developer portal: the page an account owner opens in a browser (`/`), and its script and
//! styles (`/portal/…`). The files are built from `portal/` by esbuild and committed in
//! `portal/dist/` (the test command rebuilds them and fails if they differ), then embedded here,
//! so the binary serves every asset itself: no CDN, no file system at run time.
//!
//! The page uses only the public API, with the owner's key kept in `sessionStorage`; it needs no
//! server state. `config.json` tells it where the real-time WebSocket is (on AWS a different
//! host: the WebSocket API; in orrery-local `/v1/realtime` beside the page).

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// One embedded file.
struct Asset {
    body: &'static [u8],
    content_type: &'static str,
}

/// An asset with its ETag, hashed once when the router is built rather than on every request.
#[derive(Clone)]
struct Served {
    asset: &'static Asset,
    tag: std::sync::Arc<str>,
}

impl Served {
    fn new(asset: &'static Asset) -> Self {
        Self {
            asset,
            tag: etag(asset.body).into(),
        }
    }
}

const INDEX: Asset = Asset {
    body: include_bytes!("../../../portal/dist/index.html"),
    content_type: "text/html; charset=utf-8",
};
const SCRIPT: Asset = Asset {
    body: include_bytes!("../../../portal/dist/app.js"),
    content_type: "text/javascript; charset=utf-8",
};
const STYLES: Asset = Asset {
    body: include_bytes!("../../../portal/dist/app.css"),
    content_type: "text/css; charset=utf-8",
};

/// Where the portal's real-time client connects (`ORRERY_REALTIME_URL` on AWS: the WebSocket
/// API's `wss://` stage URL); `None` means `/v1/realtime` on the page's own host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortalConfig {
    pub realtime_url: Option<String>,
}

impl PortalConfig {
    pub fn from_env() -> Self {
        Self {
            realtime_url: std::env::var("ORRERY_REALTIME_URL")
                .ok()
                .filter(|url| url.starts_with("wss://") || url.starts_with("ws://")),
        }
    }

    /// The page's Content-Security-Policy: its own files only; API calls and the WebSocket to
    /// its own host, or to the configured real-time host.
    fn content_security_policy(&self) -> String {
        let realtime = self
            .realtime_url
            .as_deref()
            .and_then(origin_of)
            .map(|origin| format!(" {origin}"))
            .unwrap_or_default();
        format!(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; \
             connect-src 'self'{realtime}; font-src 'self'; base-uri 'none'; form-action 'none'; \
             frame-ancestors 'none'"
        )
    }
}

/// `scheme://host[:port]` of a URL.
fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let host = rest.split('/').next().filter(|host| !host.is_empty())?;
    Some(format!("{scheme}://{host}"))
}

/// An ETag from the file's bytes (FNV-1a: stable across builds of the same file).
fn etag(body: &[u8]) -> String {
    let hash = body.iter().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("\"{hash:016x}\"")
}

fn serve(served: &Served, request: &HeaderMap, extra: &[(header::HeaderName, String)]) -> Response {
    let Served { asset, tag } = served;
    let mut response = if request
        .get(header::IF_NONE_MATCH)
        .is_some_and(|value| value.as_bytes() == tag.as_bytes())
    {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        asset.body.into_response()
    };
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    // Revalidated on every load (a 304 when unchanged): a new deploy is seen at once.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if let Ok(value) = HeaderValue::from_str(tag) {
        headers.insert(header::ETAG, value);
    }
    for (name, value) in extra {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(name.clone(), value);
        }
    }
    response
}

/// `GET /`, `GET /portal/app.js`, `GET /portal/app.css`, `GET /portal/config.json`.
pub fn router(config: PortalConfig) -> Router {
    let policy = config.content_security_policy();
    let settings = serde_json::json!({ "realtime_url": config.realtime_url }).to_string();
    let (index, script, styles) = (
        Served::new(&INDEX),
        Served::new(&SCRIPT),
        Served::new(&STYLES),
    );
    Router::new()
        .route(
            "/",
            get(move |request: HeaderMap| async move {
                serve(
                    &index,
                    &request,
                    &[
                        (header::CONTENT_SECURITY_POLICY, policy.clone()),
                        (header::X_FRAME_OPTIONS, "DENY".to_owned()),
                    ],
                )
            }),
        )
        .route(
            "/portal/app.js",
            get(move |request: HeaderMap| async move { serve(&script, &request, &[]) }),
        )
        .route(
            "/portal/app.css",
            get(move |request: HeaderMap| async move { serve(&styles, &request, &[]) }),
        )
        .route(
            "/portal/config.json",
            get(move || async move {
                (
                    [
                        (header::CONTENT_TYPE, "application/json"),
                        (header::CACHE_CONTROL, "no-cache"),
                    ],
                    settings.clone(),
                )
            }),
        )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use axum::body::{Body, to_bytes};
    use tower::ServiceExt;

    async fn get(router: &Router, path: &str, headers: &[(&str, &str)]) -> Response {
        let mut request = http::Request::get(path);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        router
            .clone()
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn the_page_and_its_assets_are_served_with_a_strict_policy() {
        let router = router(PortalConfig::default());
        let page = get(&router, "/", &[]).await;
        assert_eq!(page.status(), StatusCode::OK);
        assert_eq!(page.headers()[header::CONTENT_TYPE], INDEX.content_type);
        let policy = page.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(policy.contains("script-src 'self'"), "{policy}");
        assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
        let html = to_bytes(page.into_body(), usize::MAX).await.unwrap();
        let html = String::from_utf8(html.to_vec()).unwrap();
        assert!(html.contains("/portal/app.js") && html.contains("/portal/app.css"));
        assert!(
            !html.contains("http://") && !html.contains("https://"),
            "no CDN"
        );

        let script = get(&router, "/portal/app.js", &[]).await;
        assert_eq!(script.headers()[header::CONTENT_TYPE], SCRIPT.content_type);
        let tag = script.headers()[header::ETAG].to_str().unwrap().to_owned();
        let again = get(&router, "/portal/app.js", &[("if-none-match", &tag)]).await;
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    }

    #[tokio::test]
    async fn the_realtime_host_is_configured_and_allowed() {
        let router = router(PortalConfig {
            realtime_url: Some("wss://abc.execute-api.eu-west-1.amazonaws.com/live".into()),
        });
        let page = get(&router, "/", &[]).await;
        let policy = page.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            policy.contains("connect-src 'self' wss://abc.execute-api.eu-west-1.amazonaws.com;"),
            "{policy}"
        );
        let config = get(&router, "/portal/config.json", &[]).await;
        let body = to_bytes(config.into_body(), usize::MAX).await.unwrap();
        let config: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            config["realtime_url"],
            "wss://abc.execute-api.eu-west-1.amazonaws.com/live"
        );
    }
}
