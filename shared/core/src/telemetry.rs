//! Tracing: JSON lines on Lambda (honouring `AWS_LAMBDA_LOG_FORMAT` and `AWS_LAMBDA_LOG_LEVEL`),
//! readable text locally. Every line inside a request carries the request span's fields
//! (request id, and the account id once known) — never keys or secrets.

use tracing_subscriber::EnvFilter;

pub fn init() {
    let on_lambda = std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some();
    let format = std::env::var("ORRERY_LOG_FORMAT")
        .ok()
        .or_else(|| std::env::var("AWS_LAMBDA_LOG_FORMAT").ok())
        .map(|f| f.to_ascii_lowercase());
    let json = match format.as_deref() {
        Some("json") => true,
        Some(_) => false,
        None => on_lambda,
    };
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .map(|l| l.to_ascii_lowercase())
        .unwrap_or_else(|_| "info".into());
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new(format!(
            "{level},aws_smithy_runtime=warn,aws_config=warn,hyper=warn"
        ))
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    let result = if json {
        // Lambda adds its own timestamp and request id columns; ours travel in the JSON.
        builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .flatten_event(true)
            .try_init()
    } else {
        builder.with_ansi(!on_lambda).compact().try_init()
    };
    // A second init (tests) keeps the first subscriber.
    drop(result);
}
