//! Orrery core: one domain, two runtimes. Everything a request or message needs lives here;
//! the function crates only wire it to Lambda or to `orrery-local`.

pub mod access;
pub mod analytics;
pub mod app;
pub mod cache;
pub mod clock;
pub mod config;
pub mod consumer;
pub mod embedded;
pub mod error;
pub mod events;
pub mod http;
pub mod idempotency;
pub mod ids;
pub mod lambda;
pub mod openapi;
pub mod queue;
pub mod secrets;
pub mod store;
pub mod telemetry;
pub mod webhooks;

pub use app::App;
pub use error::{ApiError, FieldError};
