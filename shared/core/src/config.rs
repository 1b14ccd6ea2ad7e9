//! Typed configuration from environment variables, read once per cold start. A bad or missing
//! variable is an error that names it.

use std::str::FromStr;
use std::time::Duration;

use crate::access::tiers::TierLimits;
use crate::cache::CacheConfig;
use crate::store::dynamo::{ClientSettings, TableNames};

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[error("configuration variable {variable}: {reason}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub reason: String,
}

/// Reads `variable`, falling back to `default` when unset or empty.
pub fn env_or<T: FromStr>(variable: &'static str, default: T) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    match std::env::var(variable) {
        Ok(text) if !text.trim().is_empty() => parse_value(variable, &text),
        Ok(_) | Err(std::env::VarError::NotPresent) => Ok(default),
        Err(std::env::VarError::NotUnicode(_)) => Err(ConfigError {
            variable,
            reason: "is not valid UTF-8".into(),
        }),
    }
}

/// A variable's text as a `T`; the error names the variable and the value.
fn parse_value<T: FromStr>(variable: &'static str, text: &str) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    text.trim().parse().map_err(|err: T::Err| ConfigError {
        variable,
        reason: format!("cannot parse {text:?}: {err}"),
    })
}

/// Reads a required variable.
pub fn env_required(variable: &'static str) -> Result<String, ConfigError> {
    match std::env::var(variable) {
        Ok(text) if !text.trim().is_empty() => Ok(text.trim().to_owned()),
        _ => Err(ConfigError {
            variable,
            reason: "is required and not set".into(),
        }),
    }
}

/// Settings shared by both runtimes.
#[derive(Debug, Clone)]
pub struct Config {
    pub max_body_bytes: usize,
    pub secret_cache_ttl: Duration,
    /// Secret id of the admin key (Secrets Manager name/ARN, or file name locally).
    pub admin_key_secret: String,
    /// Secret id of the pepper that API key hashes are keyed with.
    pub key_pepper_secret: String,
    pub cache: CacheConfig,
    /// The shared L2 cache (Redis protocol); none means L1 only.
    pub redis_url: Option<String>,
    pub tiers: TierLimits,
    /// How long a rotated key keeps working.
    pub key_rotation_grace: Duration,
    /// Which webhook URLs may be registered and called.
    pub webhook_urls: crate::webhooks::ssrf::UrlPolicy,
    /// How long a rotated webhook secret keeps signing alongside the new one.
    pub webhook_secret_grace: Duration,
    /// Multiplies the retry schedule's delays (1 in production; tests shrink it).
    pub webhook_retry_scale: f64,
    /// How long one delivery attempt may take.
    pub webhook_timeout: Duration,
    /// A batch's window: items not started within it are given up (`expired`).
    pub batch_window: Duration,
    /// The most bytes one results response carries before it ends (the caller continues with
    /// `?after=`): Lambda answers at most 6 MB, so the template sets 5 MiB; none streams all.
    pub batch_results_max_bytes: Option<usize>,
    /// How often an idle event stream sends a comment line (keeps proxies from closing it).
    pub stream_heartbeat: Duration,
    /// How often a container flushes its aggregated analytics at most (≤ 10 s; tests shorten it).
    pub analytics_flush_interval: Duration,
    /// Whether requests are counted for analytics (`ORRERY_ANALYTICS`, default on). Off, the
    /// quota writes carry no usage cells and nothing is aggregated: counters stay one small
    /// item a day, and the reports show nothing from then on. The benchmark's baseline.
    pub analytics: bool,
    /// Whether the DynamoDB adapter asks for and logs the capacity every call consumed
    /// (`ORRERY_DYNAMODB_CAPACITY_LOG`, default off; target `orrery::capacity`).
    pub log_dynamodb_capacity: bool,
    /// The share (0–1) of successful, fast requests that write a request log line
    /// (`ORRERY_REQUEST_LOG_SAMPLE`, default 1: every one); 429s are sampled alike. Other 4xx,
    /// 5xx and requests slower than `http::SLOW_REQUEST` are always logged; each line says the
    /// rate it was sampled at.
    pub request_log_sample: f64,
    /// Whether an account whose quota counter write is throttled is marked hot at once and
    /// counts on quota blocks from then on (`ORRERY_HOT_QUOTA_AUTO`, default on; off, only the
    /// admin API marks accounts hot and a throttled counter is a 503).
    pub hot_quota_auto: bool,
    /// Timeouts and retries of the DynamoDB client (`ORRERY_DYNAMODB_*_MS`,
    /// `ORRERY_DYNAMODB_MAX_ATTEMPTS`).
    pub dynamodb: ClientSettings,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            max_body_bytes: crate::http::DEFAULT_MAX_BODY_BYTES,
            secret_cache_ttl: Duration::from_secs(300),
            admin_key_secret: "orrery-admin-key".into(),
            key_pepper_secret: "orrery-key-pepper".into(),
            cache: CacheConfig::default(),
            redis_url: None,
            tiers: TierLimits::default_plan(),
            key_rotation_grace: Duration::from_secs(24 * 60 * 60),
            webhook_urls: crate::webhooks::ssrf::UrlPolicy::default(),
            webhook_secret_grace: Duration::from_secs(24 * 60 * 60),
            webhook_retry_scale: 1.0,
            webhook_timeout: crate::webhooks::client::TIMEOUT,
            batch_window: Duration::from_secs(24 * 60 * 60),
            batch_results_max_bytes: None,
            stream_heartbeat: Duration::from_secs(15),
            analytics_flush_interval: crate::analytics::MAX_FLUSH_INTERVAL,
            analytics: true,
            log_dynamodb_capacity: false,
            request_log_sample: 1.0,
            hot_quota_auto: true,
            dynamodb: ClientSettings::default(),
        }
    }
}

impl Config {
    /// The endpoint a quota write also counts usage cells for: none when analytics are off.
    pub fn usage_cells_for<'a>(&self, endpoint: &'a str) -> Option<&'a str> {
        self.analytics.then_some(endpoint)
    }

    pub fn from_env() -> Result<Self, ConfigError> {
        let defaults = Config::default();
        let max_body_bytes = env_or("ORRERY_MAX_BODY_BYTES", defaults.max_body_bytes)?;
        if !(1024..=6 * 1024 * 1024).contains(&max_body_bytes) {
            return Err(ConfigError {
                variable: "ORRERY_MAX_BODY_BYTES",
                reason: "must be between 1024 and 6291456 (Lambda's payload limit)".into(),
            });
        }
        let tiers = match std::env::var("ORRERY_TIERS_FILE") {
            Ok(path) if !path.trim().is_empty() => {
                let text = std::fs::read_to_string(path.trim()).map_err(|err| ConfigError {
                    variable: "ORRERY_TIERS_FILE",
                    reason: format!("cannot read {path}: {err}"),
                })?;
                TierLimits::parse(&text).map_err(|err| ConfigError {
                    variable: "ORRERY_TIERS_FILE",
                    reason: err.to_string(),
                })?
            }
            _ => defaults.tiers,
        };
        let staleness = env_or(
            "ORRERY_CACHE_STALENESS_SECONDS",
            defaults.cache.staleness.as_secs(),
        )?;
        if staleness == 0 {
            return Err(ConfigError {
                variable: "ORRERY_CACHE_STALENESS_SECONDS",
                reason: "must be at least 1".into(),
            });
        }
        let sync_ms = env_or(
            "ORRERY_CACHE_SYNC_MS",
            defaults.cache.sync_interval.as_millis() as u64,
        )?;
        if !(50..=5_000).contains(&sync_ms) {
            return Err(ConfigError {
                variable: "ORRERY_CACHE_SYNC_MS",
                reason: format!("{sync_ms} is outside 50..=5000 (ms)"),
            });
        }
        Ok(Self {
            max_body_bytes,
            secret_cache_ttl: Duration::from_secs(env_or("ORRERY_SECRET_CACHE_SECONDS", 300u64)?),
            admin_key_secret: env_or("ORRERY_ADMIN_KEY_SECRET", defaults.admin_key_secret)?,
            key_pepper_secret: env_or("ORRERY_KEY_PEPPER_SECRET", defaults.key_pepper_secret)?,
            cache: CacheConfig {
                max_entries: env_or("ORRERY_CACHE_MAX_ENTRIES", defaults.cache.max_entries)?.max(1),
                max_bytes: env_or("ORRERY_CACHE_MAX_BYTES", defaults.cache.max_bytes)?.max(1024),
                staleness: Duration::from_secs(staleness),
                hot_set_size: defaults.cache.hot_set_size,
                sync_interval: Duration::from_millis(sync_ms),
            },
            redis_url: std::env::var("ORRERY_REDIS_URL")
                .ok()
                .filter(|url| !url.trim().is_empty()),
            tiers,
            key_rotation_grace: Duration::from_secs(env_or(
                "ORRERY_KEY_ROTATION_GRACE_SECONDS",
                86_400u64,
            )?),
            webhook_urls: crate::webhooks::ssrf::UrlPolicy::from_env()
                .map_err(|(variable, reason)| ConfigError { variable, reason })?,
            webhook_secret_grace: Duration::from_secs(env_or(
                "ORRERY_WEBHOOK_SECRET_GRACE_SECONDS",
                86_400u64,
            )?),
            webhook_retry_scale: {
                let scale = env_or("ORRERY_WEBHOOK_RETRY_SCALE", 1.0f64)?;
                if !(scale > 0.0 && scale <= 1.0) {
                    return Err(ConfigError {
                        variable: "ORRERY_WEBHOOK_RETRY_SCALE",
                        reason: "must be in (0, 1]".into(),
                    });
                }
                scale
            },
            webhook_timeout: Duration::from_millis(env_or(
                "ORRERY_WEBHOOK_TIMEOUT_MS",
                crate::webhooks::client::TIMEOUT.as_millis() as u64,
            )?)
            .clamp(Duration::from_millis(100), crate::webhooks::client::TIMEOUT),
            batch_window: Duration::from_secs(
                env_or("ORRERY_BATCH_WINDOW_SECONDS", 86_400u64)?.clamp(0, 7 * 86_400),
            ),
            batch_results_max_bytes: match env_or("ORRERY_BATCH_RESULTS_MAX_BYTES", 0usize)? {
                0 => None,
                bytes => Some(bytes.max(64 * 1024)),
            },
            stream_heartbeat: Duration::from_secs(
                env_or("ORRERY_STREAM_HEARTBEAT_SECONDS", 15u64)?.clamp(1, 300),
            ),
            analytics_flush_interval: Duration::from_millis(
                env_or("ORRERY_ANALYTICS_FLUSH_MILLIS", 10_000u64)?.clamp(100, 10_000),
            ),
            analytics: env_or("ORRERY_ANALYTICS", true)?,
            log_dynamodb_capacity: env_or("ORRERY_DYNAMODB_CAPACITY_LOG", false)?,
            request_log_sample: {
                let sample = env_or("ORRERY_REQUEST_LOG_SAMPLE", 1.0f64)?;
                if !(0.0..=1.0).contains(&sample) {
                    return Err(ConfigError {
                        variable: "ORRERY_REQUEST_LOG_SAMPLE",
                        reason: format!("must be within 0..=1, not {sample}"),
                    });
                }
                sample
            },
            hot_quota_auto: env_or("ORRERY_HOT_QUOTA_AUTO", true)?,
            dynamodb: dynamodb_client_settings()?,
        })
    }
}

fn dynamodb_client_settings() -> Result<ClientSettings, ConfigError> {
    let defaults = ClientSettings::default();
    let millis =
        |variable: &'static str, default: Duration, range: std::ops::RangeInclusive<u64>| {
            let value = env_or(variable, default.as_millis() as u64)?;
            if !range.contains(&value) {
                return Err(ConfigError {
                    variable,
                    reason: format!("{value} is outside {range:?} (ms)"),
                });
            }
            Ok(Duration::from_millis(value))
        };
    let settings = ClientSettings {
        connect_timeout: millis(
            "ORRERY_DYNAMODB_CONNECT_TIMEOUT_MS",
            defaults.connect_timeout,
            10..=10_000,
        )?,
        attempt_timeout: millis(
            "ORRERY_DYNAMODB_ATTEMPT_TIMEOUT_MS",
            defaults.attempt_timeout,
            10..=30_000,
        )?,
        operation_timeout: millis(
            "ORRERY_DYNAMODB_OPERATION_TIMEOUT_MS",
            defaults.operation_timeout,
            10..=60_000,
        )?,
        max_attempts: env_or("ORRERY_DYNAMODB_MAX_ATTEMPTS", defaults.max_attempts)?,
        initial_backoff: millis(
            "ORRERY_DYNAMODB_INITIAL_BACKOFF_MS",
            defaults.initial_backoff,
            1..=10_000,
        )?,
        max_backoff: defaults.max_backoff,
    };
    if !(1..=10).contains(&settings.max_attempts) {
        return Err(ConfigError {
            variable: "ORRERY_DYNAMODB_MAX_ATTEMPTS",
            reason: "must be between 1 and 10".into(),
        });
    }
    if settings.attempt_timeout > settings.operation_timeout {
        return Err(ConfigError {
            variable: "ORRERY_DYNAMODB_ATTEMPT_TIMEOUT_MS",
            reason: "must not exceed ORRERY_DYNAMODB_OPERATION_TIMEOUT_MS".into(),
        });
    }
    Ok(settings)
}

/// Where the AWS resources are; set by `template.yaml` on every function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsResources {
    pub tables: TableNames,
    pub events_queue_url: String,
    pub events_dlq_url: String,
    pub deliveries_queue_url: String,
    pub deliveries_dlq_url: String,
    pub batch_items_queue_url: String,
    pub batch_items_dlq_url: String,
    /// The home region of global tables, when this stack runs in a replica region
    /// (`ORRERY_DYNAMODB_WRITE_REGION`; unset or this region: every call stays here).
    pub write_region: Option<String>,
}

impl AwsResources {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            tables: TableNames {
                entities: env_required("ORRERY_ENTITIES_TABLE")?,
                counters: env_required("ORRERY_COUNTERS_TABLE")?,
                logs: env_required("ORRERY_LOGS_TABLE")?,
                bulk: env_required("ORRERY_BULK_TABLE")?,
                connections: env_required("ORRERY_CONNECTIONS_TABLE")?,
            },
            events_queue_url: env_required("ORRERY_EVENTS_QUEUE_URL")?,
            events_dlq_url: env_required("ORRERY_EVENTS_DLQ_URL")?,
            deliveries_queue_url: env_required("ORRERY_DELIVERIES_QUEUE_URL")?,
            deliveries_dlq_url: env_required("ORRERY_DELIVERIES_DLQ_URL")?,
            batch_items_queue_url: env_required("ORRERY_BATCH_ITEMS_QUEUE_URL")?,
            batch_items_dlq_url: env_required("ORRERY_BATCH_ITEMS_DLQ_URL")?,
            write_region: std::env::var("ORRERY_DYNAMODB_WRITE_REGION")
                .ok()
                .map(|region| region.trim().to_owned())
                .filter(|region| !region.is_empty()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_errors_name_the_variable() {
        // A variable no other test touches, so setting it cannot race.
        // SAFETY-free: std::env::set_var is unsafe in edition 2024; use a name that is never set.
        let err = env_or::<u64>("ORRERY_TEST_UNSET_VARIABLE", 7).expect("default");
        assert_eq!(err, 7);
        let missing = env_required("ORRERY_TEST_UNSET_VARIABLE").expect_err("missing");
        assert_eq!(missing.variable, "ORRERY_TEST_UNSET_VARIABLE");
        assert!(missing.to_string().contains("ORRERY_TEST_UNSET_VARIABLE"));
        // A bad value: the message names the variable and quotes what was given.
        let bad = parse_value::<u64>("ORRERY_MAX_BODY_BYTES", " ten ").expect_err("not a number");
        assert_eq!(bad.variable, "ORRERY_MAX_BODY_BYTES");
        let text = bad.to_string();
        assert!(
            text.contains("ORRERY_MAX_BODY_BYTES") && text.contains("\" ten \""),
            "{text}"
        );
        assert_eq!(
            parse_value::<u64>("ORRERY_MAX_BODY_BYTES", " 42 ").expect("a number"),
            42
        );
    }
}
