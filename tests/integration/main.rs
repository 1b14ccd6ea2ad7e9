//! One integration binary. Each suite function runs once per backend (see `on_both_backends!`),
//! so the output lists `…::embedded::name` and `…::moto::name` side by side; the store and
//! capacity suites also run on DynamoDB Local (`on_every_store!`: `…::dynamodb_local::name`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

/// Instantiates `async fn name(kind: Backend)` suite functions for both backends; each suite
/// builds the backend it needs (so none is provisioned on moto only to be replaced).
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name(orrery_tests::Backend::Embedded).await;
                }
            )*
        }
        mod moto {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name(orrery_tests::Backend::Moto).await;
                }
            )*
        }
    };
}

/// Instantiates suite functions for the embedded store, moto and DynamoDB Local.
macro_rules! on_every_store {
    ($($name:ident),* $(,)?) => {
        on_both_backends!($($name),*);
        mod dynamodb_local {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name(orrery_tests::Backend::DynamoDbLocal).await;
                }
            )*
        }
    };
}

mod access;
mod analytics;
mod batch_crash;
mod batches;
mod cache;
mod capacity;
mod charts;
mod compaction;
mod crash;
mod deliveries;
mod dynamodb_client;
mod event_log;
mod event_stream;
mod events;
mod hardening;
mod hot_accounts;
mod http;
mod queue;
mod realtime_gateway;
mod secrets;
mod store;
mod webhooks;
mod websocket;
mod websocket_crash;
