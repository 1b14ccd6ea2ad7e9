//! The HTTP client that delivers webhooks, and one delivery attempt.
//!
//! SSRF defence at delivery time: the URL is checked again (the policy may have changed since
//! registration), and host names go through a resolver that refuses the whole lookup if any
//! address is not allowed and hands reqwest only the checked addresses, so a DNS answer cannot
//! change between the check and the connection (rebinding). Redirects are not followed,
//! proxies from the environment are ignored, and an attempt ends after 15 s.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use serde::Serialize;

use super::signature::{WebhookSecret, signature_header};
use super::ssrf::{UrlPolicy, check_ip, check_url};

/// The longest an attempt may take, connection to last byte (`ORRERY_WEBHOOK_TIMEOUT_MS`).
pub const TIMEOUT: Duration = Duration::from_secs(15);
/// How much of the receiver's response is kept for the delivery log.
pub const SNIPPET_BYTES: usize = 1024;

/// Resolves with the system resolver and refuses any answer holding a forbidden address.
#[derive(Debug)]
struct CheckedResolver {
    policy: UrlPolicy,
}

impl Resolve for CheckedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if addrs.is_empty() {
                return Err(format!("{host} has no addresses").into());
            }
            for addr in &addrs {
                check_ip(addr.ip(), &policy).map_err(|refusal| {
                    Box::new(refusal) as Box<dyn std::error::Error + Send + Sync>
                })?;
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// Why an attempt failed without an HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// The URL or a resolved address is not allowed.
    Refused,
    Timeout,
    Connect,
    Other,
}

/// What one attempt produced.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Attempt {
    /// The receiver's status, if it answered.
    pub status: Option<u16>,
    pub latency_ms: u64,
    /// Up to 1 KB of the response body (lossy UTF-8).
    pub response_snippet: String,
    pub error: Option<ErrorClass>,
    /// What went wrong, when no status says it.
    pub error_detail: Option<String>,
    /// A `Retry-After` the receiver sent, as it sent it.
    #[serde(skip)]
    pub retry_after: Option<String>,
}

impl Attempt {
    pub fn succeeded(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }

    fn failed(error: ErrorClass, detail: String, started: Instant) -> Self {
        Self {
            status: None,
            latency_ms: started.elapsed().as_millis() as u64,
            response_snippet: String::new(),
            error: Some(error),
            error_detail: Some(detail),
            retry_after: None,
        }
    }
}

/// Delivers signed webhook requests.
#[derive(Debug, Clone)]
pub struct DeliveryClient {
    http: reqwest::Client,
    policy: UrlPolicy,
}

impl DeliveryClient {
    pub fn new(policy: UrlPolicy, timeout: Duration) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .dns_resolver(Arc::new(CheckedResolver {
                policy: policy.clone(),
            }))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .user_agent(concat!("Orrery-Webhooks/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self { http, policy })
    }

    /// One attempt: POSTs `body` to `url` signed with `secrets` under the stable message id.
    pub async fn attempt(
        &self,
        url: &str,
        message_id: &str,
        timestamp: i64,
        body: &[u8],
        secrets: &[WebhookSecret],
    ) -> Attempt {
        let started = Instant::now();
        // IP-literal hosts never reach the resolver: the URL check covers them.
        let url = match check_url(url, &self.policy) {
            Ok(url) => url,
            Err(refusal) => {
                return Attempt::failed(ErrorClass::Refused, refusal.to_string(), started);
            }
        };
        let secrets: Vec<&WebhookSecret> = secrets.iter().collect();
        let request = self
            .http
            .post(url)
            .header("content-type", "application/json")
            .header("webhook-id", message_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header(
                "webhook-signature",
                signature_header(&secrets, message_id, timestamp, body),
            )
            .body(body.to_vec());
        let mut response = match request.send().await {
            Ok(response) => response,
            Err(err) => {
                let class = if err.is_timeout() {
                    ErrorClass::Timeout
                } else if err.is_connect() {
                    // A refused resolution surfaces as a connect error; say which.
                    let text = error_chain(&err);
                    if text.contains("webhooks only go to public addresses") {
                        return Attempt::failed(ErrorClass::Refused, text, started);
                    }
                    ErrorClass::Connect
                } else {
                    ErrorClass::Other
                };
                return Attempt::failed(class, error_chain(&err), started);
            }
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        // Read at most the snippet; a huge or endless body is not read further.
        let mut snippet = Vec::with_capacity(SNIPPET_BYTES);
        let mut error = None;
        while snippet.len() < SNIPPET_BYTES {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    let room = SNIPPET_BYTES - snippet.len();
                    snippet.extend_from_slice(&chunk[..chunk.len().min(room)]);
                }
                Ok(None) => break,
                Err(err) => {
                    // The status counts; a body cut short is noted, not a failure of its own.
                    error = Some(error_chain(&err));
                    break;
                }
            }
        }
        Attempt {
            status: Some(status),
            latency_ms: started.elapsed().as_millis() as u64,
            response_snippet: String::from_utf8_lossy(&snippet).into_owned(),
            error: None,
            error_detail: error,
            retry_after,
        }
    }
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::str::FromStr;

    /// A name whose addresses are not allowed fails to resolve: reqwest never connects, so a
    /// DNS answer cannot swap a checked address for a private one (the rebinding defence).
    #[tokio::test]
    async fn names_resolving_to_refused_addresses_are_not_resolved() {
        let resolver = CheckedResolver {
            policy: UrlPolicy::default(),
        };
        let err = match resolver.resolve(Name::from_str("localhost").unwrap()).await {
            Ok(_) => panic!("localhost resolved under the default policy"),
            Err(err) => err.to_string(),
        };
        assert!(err.contains("loopback"), "{err}");

        let local = CheckedResolver {
            policy: UrlPolicy {
                allow_http: true,
                allowlist: vec!["127.0.0.0/8".parse().unwrap(), "::1".parse().unwrap()],
            },
        };
        let addrs: Vec<SocketAddr> = local
            .resolve(Name::from_str("localhost").unwrap())
            .await
            .unwrap()
            .collect();
        assert!(!addrs.is_empty());
        assert!(addrs.iter().all(|a| a.ip().is_loopback()));
    }

    #[tokio::test]
    async fn refused_urls_are_reported_without_a_request() {
        let client = DeliveryClient::new(UrlPolicy::default(), TIMEOUT).unwrap();
        let attempt = client
            .attempt("https://169.254.169.254/latest", "msg_1", 0, b"{}", &[])
            .await;
        assert_eq!(attempt.error, Some(ErrorClass::Refused));
        assert_eq!(attempt.status, None);
        assert!(!attempt.succeeded());
    }
}
