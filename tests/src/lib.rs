//! Test harness: the two backends behind one constructor, and `spawn_app()` serving the real
//! router on `127.0.0.1:0`.
//!
//! The AWS backend talks to moto server at `ORRERY_TEST_MOTO_ENDPOINT`, which the README's test
//! command starts. Each test provisions its own tables and queues (unique names, the same
//! definitions as `template.yaml`), so tests run in parallel without resetting moto. The third
//! backend keeps its tables on DynamoDB Local (`ORRERY_TEST_DYNAMODB_LOCAL_ENDPOINT`, also
//! started by the test command) and its queues and secrets on moto; its store records the
//! capacity every call consumed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
};
use aws_sdk_sqs::types::QueueAttributeName;
use orrery::App;
use orrery::config::{AwsResources, Config};
use orrery::embedded::EmbeddedDb;
use orrery::secrets::FileSecrets;
use orrery::store::dynamo::TableNames;
use tempfile::TempDir;

pub mod child;
pub mod faulty;
pub mod lagging;
pub mod ws;

pub const MOTO_ENDPOINT_VARIABLE: &str = "ORRERY_TEST_MOTO_ENDPOINT";
pub const DYNAMODB_LOCAL_ENDPOINT_VARIABLE: &str = "ORRERY_TEST_DYNAMODB_LOCAL_ENDPOINT";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Embedded,
    /// Everything on moto server.
    Moto,
    /// The tables on DynamoDB Local, queues and secrets on moto.
    DynamoDbLocal,
}

impl Backend {
    /// Whether the runtime is the AWS one (an emulator behind the AWS SDK).
    pub fn is_aws(self) -> bool {
        matches!(self, Backend::Moto | Backend::DynamoDbLocal)
    }
}

/// An `App` on one backend, with whatever keeps that backend alive.
pub struct TestBackend {
    pub app: App,
    pub kind: Backend,
    pub sdk: Option<aws_config::SdkConfig>,
    /// The tables and queues of the emulated stack.
    pub resources: Option<AwsResources>,
    /// DynamoDB Local's store: what every call consumed, and which access pattern it was.
    pub capacity: Option<Arc<orrery::store::capacity::CapacityMeter>>,
    /// The embedded backend's engine (a second container shares it: one file, one writer).
    db: Option<EmbeddedDb>,
    _data_dir: Option<TempDir>,
}

/// Options the suites vary.
#[derive(Debug, Clone, Default)]
pub struct TestOptions {
    pub config: Config,
}

impl TestBackend {
    /// The embedded backend's data directory.
    pub fn data_dir(&self) -> Option<&std::path::Path> {
        self._data_dir.as_ref().map(TempDir::path)
    }

    /// Wraps the backend's store so a test can count the calls that reach it.
    pub fn count_store_calls(mut self) -> (Self, Arc<CountingStore>) {
        let counting = Arc::new(CountingStore::new(self.app.store.clone()));
        let app = &self.app;
        self.app = App::from_parts(
            (*app.config).clone(),
            counting.clone(),
            app.queues.clone(),
            app.secrets.clone(),
        );
        (self, counting)
    }

    /// Another container of the API on the same backend, with a cache of its own and no
    /// shared level: what a second Lambda function (or a second container of one) is.
    pub fn second_container(&self) -> App {
        let config = (*self.app.config).clone();
        match self.kind {
            Backend::Embedded => App::embedded_with(
                config,
                self.db.clone().expect("an embedded backend has its engine"),
                Arc::new(FileSecrets::new(self.data_dir().unwrap().join("secrets"))),
            ),
            Backend::Moto => App::aws(
                config,
                self.resources.as_ref().unwrap(),
                self.sdk.as_ref().unwrap(),
            ),
            Backend::DynamoDbLocal => App::aws_on(
                config,
                self.resources.as_ref().unwrap(),
                self.sdk.as_ref().unwrap(),
                self.app.store.clone(),
            ),
        }
    }

    /// Writes a secret straight to the backend, around the app's cache (a rotation elsewhere).
    pub async fn put_secret_out_of_band(&self, name: &str, value: &str) {
        use orrery::secrets::{SecretString, Secrets};
        match self.kind {
            Backend::Moto | Backend::DynamoDbLocal => {
                let client = aws_sdk_secretsmanager::Client::new(self.sdk.as_ref().unwrap());
                client
                    .put_secret_value()
                    .secret_id(name)
                    .secret_string(value)
                    .send()
                    .await
                    .unwrap();
            }
            Backend::Embedded => {
                let files = FileSecrets::new(self.data_dir().unwrap().join("secrets"));
                files.put(name, &SecretString::new(value)).await.unwrap();
            }
        }
    }
}

pub async fn backend(kind: Backend) -> TestBackend {
    backend_with(kind, TestOptions::default()).await
}

pub async fn backend_with(kind: Backend, options: TestOptions) -> TestBackend {
    match kind {
        Backend::Embedded => {
            let dir = tempfile::tempdir().expect("temporary data directory");
            let db = EmbeddedDb::open(&dir.path().join("orrery.redb")).expect("embedded db");
            let app = App::embedded_with(
                options.config,
                db.clone(),
                Arc::new(FileSecrets::new(dir.path().join("secrets"))),
            );
            TestBackend {
                app,
                kind,
                sdk: None,
                resources: None,
                capacity: None,
                db: Some(db),
                _data_dir: Some(dir),
            }
        }
        Backend::Moto | Backend::DynamoDbLocal => {
            let sdk = moto_sdk_config().await;
            let tables_sdk = match kind {
                Backend::DynamoDbLocal => dynamodb_local_sdk_config().await,
                _ => sdk.clone(),
            };
            let suffix = unique_suffix();
            let resources = provision(&sdk, &tables_sdk, &suffix).await;
            let mut config = options.config;
            // The secrets template.yaml creates, with per-test names.
            let secrets = aws_sdk_secretsmanager::Client::new(&sdk);
            config.admin_key_secret = format!("orrery-admin-key-{suffix}");
            config.key_pepper_secret = format!("orrery-key-pepper-{suffix}");
            for name in [&config.admin_key_secret, &config.key_pepper_secret] {
                let value = orrery::access::keys::random_token("");
                secrets
                    .create_secret()
                    .name(name)
                    .secret_string(value)
                    .send()
                    .await
                    .expect("create secret on moto");
            }
            let (app, capacity) = match kind {
                Backend::DynamoDbLocal => {
                    let meter = Arc::new(orrery::store::capacity::CapacityMeter::default());
                    let store = orrery::store::dynamo::DynamoStore::new(
                        aws_sdk_dynamodb::Client::new(&tables_sdk),
                        resources.tables.clone(),
                    )
                    .measuring(meter.clone());
                    let app = App::aws_on(config, &resources, &sdk, Arc::new(store));
                    (app, Some(meter))
                }
                _ => (App::aws(config, &resources, &sdk), None),
            };
            TestBackend {
                app,
                kind,
                sdk: Some(sdk),
                resources: Some(resources),
                capacity,
                db: None,
                _data_dir: None,
            }
        }
    }
}

/// The shipped tier plan with some limits changed: `(tier, class, limit)` each.
pub fn tiers_with(limits: &[(&str, &str, u64)]) -> orrery::access::tiers::TierLimits {
    let mut plan: serde_json::Value =
        serde_json::from_str(include_str!("../../shared/core/data/tiers.json"))
            .expect("tiers.json");
    for (tier, class, limit) in limits {
        plan[*tier][*class] = serde_json::json!(limit);
    }
    orrery::access::tiers::TierLimits::parse(&plan.to_string()).expect("a valid tier plan")
}

/// An embedded app over a file-backed database the caller controls (crash tests reopen it).
pub fn embedded_at(dir: &std::path::Path) -> App {
    let db = EmbeddedDb::open(&dir.join("orrery.redb")).expect("open embedded db");
    App::embedded_with(
        Config::default(),
        db,
        Arc::new(FileSecrets::new(dir.join("secrets"))),
    )
}

pub fn moto_endpoint() -> String {
    std::env::var(MOTO_ENDPOINT_VARIABLE).unwrap_or_else(|_| {
        panic!(
            "{MOTO_ENDPOINT_VARIABLE} is not set: run the test command from README.md (scripts/test.sh), \
             which starts moto server; the AWS suites are never skipped"
        )
    })
}

pub async fn moto_sdk_config() -> aws_config::SdkConfig {
    sdk_config_at(&moto_endpoint(), "us-east-1").await
}

/// An SDK configuration for an emulator (or a proxy in front of one) at `endpoint`, in `region`,
/// with static test credentials.
pub async fn sdk_config_at(endpoint: &str, region: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new(region.to_owned()))
        .test_credentials()
        .load()
        .await
}

pub fn dynamodb_local_endpoint() -> String {
    std::env::var(DYNAMODB_LOCAL_ENDPOINT_VARIABLE).unwrap_or_else(|_| {
        panic!(
            "{DYNAMODB_LOCAL_ENDPOINT_VARIABLE} is not set: run the test command from README.md \
             (scripts/test.sh), which starts DynamoDB Local; its suites are never skipped"
        )
    })
}

pub async fn dynamodb_local_sdk_config() -> aws_config::SdkConfig {
    sdk_config_at(&dynamodb_local_endpoint(), "us-east-1").await
}

/// The units of `class` an account used today, summed over its day's counter and (for a hot
/// account) the counter's blocks, read strongly.
pub async fn units_used_today(
    app: &App,
    account: &orrery::ids::AccountId,
    class: orrery::access::QuotaClass,
) -> i64 {
    use orrery::store::keyspace;
    let day = orrery::access::quota::Window::containing(orrery::clock::now()).day;
    let page = app
        .store
        .query(
            keyspace::quota_counters(account)
                .with_limit(1000)
                .consistent(),
        )
        .await
        .unwrap();
    page.items
        .iter()
        .filter(|item| keyspace::parse_quota_counter(&item.key.sk) == Some((day, class.as_str())))
        .map(orrery::access::quota::units_used)
        .sum()
}

pub fn unique_suffix() -> String {
    orrery::ids::new_id("t").to_ascii_lowercase()
}

/// Creates the tables (on `tables_sdk`'s endpoint), queues and dead-letter queues (on `sdk`'s)
/// of one stack, as `template.yaml` does.
pub async fn provision(
    sdk: &aws_config::SdkConfig,
    tables_sdk: &aws_config::SdkConfig,
    suffix: &str,
) -> AwsResources {
    let dynamodb = aws_sdk_dynamodb::Client::new(tables_sdk);
    let tables = TableNames {
        entities: format!("entities-{suffix}"),
        counters: format!("counters-{suffix}"),
        logs: format!("logs-{suffix}"),
        bulk: format!("bulk-{suffix}"),
        connections: format!("connections-{suffix}"),
    };
    // As template.yaml: the entities and connections tables have the secondary index.
    create_table(&dynamodb, &tables.entities, true).await;
    create_table(&dynamodb, &tables.connections, true).await;
    for name in [&tables.counters, &tables.logs, &tables.bulk] {
        create_table(&dynamodb, name, false).await;
    }
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let (events_queue_url, events_dlq_url) = create_queue_pair(
        &sqs,
        &format!("events-{suffix}"),
        orrery::app::EVENTS_MAX_RECEIVES,
    )
    .await;
    let (deliveries_queue_url, deliveries_dlq_url) = create_queue_pair(
        &sqs,
        &format!("deliveries-{suffix}"),
        orrery::app::DELIVERIES_MAX_RECEIVES,
    )
    .await;
    let (batch_items_queue_url, batch_items_dlq_url) = create_queue_pair(
        &sqs,
        &format!("batch-items-{suffix}"),
        orrery::app::BATCH_ITEMS_MAX_RECEIVES + 1,
    )
    .await;
    AwsResources {
        tables,
        events_queue_url,
        events_dlq_url,
        deliveries_queue_url,
        deliveries_dlq_url,
        batch_items_queue_url,
        batch_items_dlq_url,
        write_region: None,
    }
}

fn attribute(name: &str) -> AttributeDefinition {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ScalarAttributeType::S)
        .build()
        .unwrap()
}

fn key(name: &str, kind: KeyType) -> KeySchemaElement {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(kind)
        .build()
        .unwrap()
}

pub async fn create_table(client: &aws_sdk_dynamodb::Client, name: &str, with_index: bool) {
    let mut attributes = vec![attribute("pk"), attribute("sk")];
    if with_index {
        attributes.extend([attribute("gsi1pk"), attribute("gsi1sk")]);
    }
    let mut request = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .set_attribute_definitions(Some(attributes))
        .set_key_schema(Some(vec![
            key("pk", KeyType::Hash),
            key("sk", KeyType::Range),
        ]));
    if with_index {
        request = request.global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name("gsi1")
                .set_key_schema(Some(vec![
                    key("gsi1pk", KeyType::Hash),
                    key("gsi1sk", KeyType::Range),
                ]))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::All)
                        .build(),
                )
                .build()
                .unwrap(),
        );
    }
    request.send().await.expect("create table on the emulator");
    client
        .update_time_to_live()
        .table_name(name)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .enabled(true)
                .attribute_name("expires_at")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("enable TTL on the emulator");
}

/// Creates `name` with a dead-letter queue `name-dlq` after `max_receives` receives.
pub async fn create_queue_pair(
    client: &aws_sdk_sqs::Client,
    name: &str,
    max_receives: u32,
) -> (String, String) {
    let dlq_url = client
        .create_queue()
        .queue_name(format!("{name}-dlq"))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let dlq_arn = client
        .get_queue_attributes()
        .queue_url(&dlq_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap()
        .remove(&QueueAttributeName::QueueArn)
        .unwrap();
    let policy = serde_json::json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receives.to_string()});
    let url = client
        .create_queue()
        .queue_name(name)
        .attributes(QueueAttributeName::RedrivePolicy, policy.to_string())
        .attributes(QueueAttributeName::VisibilityTimeout, "30")
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    (url, dlq_url)
}

/// The real router and workers, served on an ephemeral loopback port.
pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub backend: TestBackend,
    stop: tokio::sync::watch::Sender<bool>,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub fn app(&self) -> &App {
        &self.backend.app
    }

    /// `GET path` with `Authorization: Bearer key`.
    pub async fn get_as(&self, path: &str, key: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .bearer_auth(key)
            .send()
            .await
            .unwrap()
    }

    /// `POST path` with a bearer key and a JSON body: the status and the JSON answer (`null`
    /// when there is none).
    pub async fn post_json(
        &self,
        path: &str,
        key: &str,
        body: serde_json::Value,
    ) -> (reqwest::StatusCode, serde_json::Value) {
        let response = self
            .send_as(reqwest::Method::POST, path, key, Some(body))
            .await;
        let status = response.status();
        (
            status,
            response.json().await.unwrap_or(serde_json::Value::Null),
        )
    }

    /// `method path` with a bearer key and an optional JSON body.
    pub async fn send_as(
        &self,
        method: reqwest::Method,
        path: &str,
        key: &str,
        body: Option<serde_json::Value>,
    ) -> reqwest::Response {
        let mut request = self.client.request(method, self.url(path)).bearer_auth(key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.unwrap()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.stop.send_replace(true);
    }
}

pub async fn spawn_app(kind: Backend) -> TestApp {
    spawn_app_with(backend(kind).await, |router| router).await
}

/// Serves what `orrery-local` serves; `extend` may add probe routes (under the same platform
/// layers) for tests of the shared HTTP behaviour.
pub async fn spawn_app_with(
    backend: TestBackend,
    extend: impl FnOnce(axum::Router) -> axum::Router,
) -> TestApp {
    serve_routes(backend, extend, true).await
}

/// Serves the routes without the queue workers, so a test can read what requests publish.
pub async fn spawn_app_without_workers(backend: TestBackend) -> TestApp {
    serve_routes(backend, |router| router, false).await
}

/// [`spawn_app_with`] without the queue workers.
pub async fn spawn_app_without_workers_with(
    backend: TestBackend,
    extend: impl FnOnce(axum::Router) -> axum::Router,
) -> TestApp {
    serve_routes(backend, extend, false).await
}

async fn serve_routes(
    backend: TestBackend,
    extend: impl FnOnce(axum::Router) -> axum::Router,
    workers: bool,
) -> TestApp {
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    if workers {
        orrery_local::spawn_workers(&backend.app, shutdown.clone());
    }
    let routes = extend(orrery_local::routes(&backend.app));
    let router =
        orrery::http::platform_layers(routes, orrery::http::Platform::of(&backend.app.config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    let mut server_shutdown = shutdown;
    tokio::spawn(orrery_local::serve(listener, router, async move {
        let _ = server_shutdown.wait_for(|stop| *stop).await;
    }));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    TestApp {
        address,
        client,
        backend,
        stop,
    }
}

/// The admin key every served test app is started with.
pub const ADMIN_KEY: &str = "orr_admin_test_key_for_the_suite";

/// Serves `backend` as `orrery-local` does (routes and workers), with [`ADMIN_KEY`].
pub async fn serve(backend: TestBackend) -> TestApp {
    orrery::access::ensure_local_secrets(&backend.app, Some(ADMIN_KEY))
        .await
        .unwrap();
    spawn_app_with(backend, |routes| routes).await
}

/// [`serve`] without the queue workers: what requests publish stays in the events queue, to
/// be read with [`published_events`].
pub async fn serve_without_workers(backend: TestBackend) -> TestApp {
    orrery::access::ensure_local_secrets(&backend.app, Some(ADMIN_KEY))
        .await
        .unwrap();
    spawn_app_without_workers(backend).await
}

/// `Authorization: Bearer <key>`, for calling the access layer directly.
pub fn bearer_headers(key: &str) -> axum::http::HeaderMap {
    let mut headers = axum::http::HeaderMap::new();
    headers.insert("authorization", format!("Bearer {key}").parse().unwrap());
    headers
}

/// A new account on `tier` through the admin API, with activity events on (the suites watch
/// `chart.calculated`; `events::activity_events_are_off_unless_the_account_turns_them_on` covers
/// the default): its id and its first key.
pub async fn create_account(server: &TestApp, tier: &str) -> (String, String) {
    let created = server
        .as_key(ADMIN_KEY)
        .post(
            "/v1/admin/accounts",
            serde_json::json!({"name": "Acme", "tier": tier, "activity_events": true}),
        )
        .expect(reqwest::StatusCode::CREATED)
        .await;
    (
        created["account"]["id"].as_str().unwrap().to_owned(),
        created["api_key"]["key"].as_str().unwrap().to_owned(),
    )
}

/// A new account on `tier` through the admin API of a server at `base` that is not a
/// [`TestApp`] (a child process, a benchmark's server): its first key and that key's id.
pub async fn admin_account(client: &reqwest::Client, base: &str, tier: &str) -> (String, String) {
    let created = admin_account_created(client, base, tier).await;
    (
        created["api_key"]["key"].as_str().unwrap().to_owned(),
        created["api_key"]["id"].as_str().unwrap().to_owned(),
    )
}

/// The admin API's whole answer to creating an account on `tier` (the account and its key), with
/// activity events on.
pub async fn admin_account_created(
    client: &reqwest::Client,
    base: &str,
    tier: &str,
) -> serde_json::Value {
    client
        .post(format!("{base}/v1/admin/accounts"))
        .bearer_auth(ADMIN_KEY)
        .json(&serde_json::json!({"name": "Acme", "tier": tier, "activity_events": true}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// A served app (routes and workers) whose idle SSE streams and WebSockets send a heartbeat
/// every 200 ms (15 s in production), so a test sees a few.
pub async fn serve_with_quick_heartbeats(kind: Backend) -> TestApp {
    let options = TestOptions {
        config: Config {
            stream_heartbeat: Duration::from_millis(200),
            ..Default::default()
        },
    };
    serve(backend_with(kind, options).await).await
}

/// Runs the test command's Python (`ORRERY_TEST_PYTHON`, the venv with the reference libraries)
/// with `args`, `input` on its stdin: its exit status and stdout.
pub fn run_python(args: &[&str], input: &[u8]) -> (std::process::ExitStatus, Vec<u8>) {
    use std::io::Write as _;
    let python = std::env::var("ORRERY_TEST_PYTHON")
        .expect("ORRERY_TEST_PYTHON: run the tests with scripts/test.sh, which installs the venv");
    let mut child = std::process::Command::new(python)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    let output = child.wait_with_output().unwrap();
    (output.status, output.stdout)
}

/// The `p`-quantile (0–1) of `sorted` values, nearest rank: the benchmarks' percentiles.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// A new free-tier account made through the domain API (no server), with activity events on (the
/// suites watch `chart.calculated`): the account and its first key, shown once.
pub async fn new_free_account(app: &App) -> orrery::access::manage::NewAccountView {
    orrery::access::manage::create_account(
        app,
        orrery::access::manage::NewAccountRequest {
            name: "Acme".into(),
            tier: orrery::access::Tier::Free,
            key_name: None,
            activity_events: true,
        },
    )
    .await
    .unwrap()
}

/// A new free-tier account on an app that may never have served (its secrets made first),
/// marked `hot_quota` when `hot`: the account and its first key.
pub async fn new_account_on(app: &App, hot: bool) -> orrery::access::manage::NewAccountView {
    orrery::access::ensure_local_secrets(app, Some(ADMIN_KEY))
        .await
        .unwrap();
    let mut created = new_free_account(app).await;
    if hot {
        created.account = orrery::access::manage::update_account(
            app,
            created.account.id.as_str(),
            orrery::access::manage::AccountPatch {
                hot_quota: Some(true),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    }
    created
}

/// A natal chart request the suites share (a London birth, local time with a zone).
pub fn london() -> serde_json::Value {
    serde_json::json!({"datetime": "1990-05-17T14:30", "timezone": "Europe/London",
                       "latitude": 51.5, "longitude": -0.1, "name": "Ada"})
}

/// A typed client on a served app, acting with one key: each call reads as the request it
/// makes and the status it expects, e.g.
/// `app.as_key(&key).post("/v1/api-keys", json!({"name": "ci"})).expect(StatusCode::CREATED).await`.
pub struct Client<'a> {
    app: &'a TestApp,
    key: String,
}

/// One request, not yet sent.
pub struct Call {
    request: reqwest::RequestBuilder,
    description: String,
}

impl TestApp {
    /// A client that authenticates with `key` (`Authorization: Bearer`).
    pub fn as_key(&self, key: &str) -> Client<'_> {
        Client {
            app: self,
            key: key.to_owned(),
        }
    }
}

impl Client<'_> {
    fn call(&self, method: reqwest::Method, path: &str) -> Call {
        Call {
            description: format!("{method} {path}"),
            request: self
                .app
                .client
                .request(method, self.app.url(path))
                .bearer_auth(&self.key),
        }
    }

    pub fn get(&self, path: &str) -> Call {
        self.call(reqwest::Method::GET, path)
    }

    pub fn delete(&self, path: &str) -> Call {
        self.call(reqwest::Method::DELETE, path)
    }

    pub fn post(&self, path: &str, body: serde_json::Value) -> Call {
        self.call(reqwest::Method::POST, path).json(body)
    }

    pub fn patch(&self, path: &str, body: serde_json::Value) -> Call {
        self.call(reqwest::Method::PATCH, path).json(body)
    }
}

impl Call {
    fn json(mut self, body: serde_json::Value) -> Self {
        self.request = self.request.json(&body);
        self
    }

    /// Adds a header (e.g. `Idempotency-Key`).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.request = self.request.header(name, value);
        self
    }

    /// Sends it, asserts the status, and returns the JSON answer (`null` when there is none).
    pub async fn expect(self, status: reqwest::StatusCode) -> serde_json::Value {
        self.expect_as(status).await
    }

    /// Sends it, asserts the status, and returns the body as text (SVG, or to measure it).
    pub async fn expect_text(self, status: reqwest::StatusCode) -> String {
        let response = self.request.send().await.unwrap();
        let got = response.status();
        let text = response.text().await.unwrap_or_default();
        assert_eq!(got, status, "{}: {text}", self.description);
        text
    }

    /// [`Call::expect`], read as `T`.
    pub async fn expect_as<T: serde::de::DeserializeOwned>(self, status: reqwest::StatusCode) -> T {
        let response = self.request.send().await.unwrap();
        let got = response.status();
        let text = response.text().await.unwrap_or_default();
        assert_eq!(got, status, "{}: {text}", self.description);
        let text = if text.is_empty() { "null" } else { &text };
        serde_json::from_str(text)
            .unwrap_or_else(|err| panic!("{}: {err}: {text}", self.description))
    }
}

/// Every event published so far for `account_id` (the events queue is drained).
pub async fn published_events(app: &App, account_id: &str) -> Vec<serde_json::Value> {
    let queue = app.queues.events.main.clone();
    let mut events = Vec::new();
    loop {
        let batch = queue
            .receive(10, Duration::from_secs(300), Duration::from_millis(300))
            .await
            .unwrap();
        if batch.is_empty() {
            break;
        }
        for message in batch {
            events.push(serde_json::from_str::<serde_json::Value>(&message.body).unwrap());
            queue.delete(&message.receipt).await.unwrap();
        }
    }
    events
        .into_iter()
        .filter(|e| e["account_id"] == account_id)
        .collect()
}

/// Polls `check` until it returns `Some` or `timeout` passes.
pub async fn eventually<T, F, Fut>(timeout: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return Some(value);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub use counting::CountingStore;

mod counting {
    use orrery::store::{Condition, Increment, Item, Key, Page, Query, Store, StoreError, WriteOp};

    /// Counts the operations that reach the wrapped store (tests and benchmarks of "how many store
    /// calls does a request make").
    pub struct CountingStore {
        inner: std::sync::Arc<dyn Store>,
        pub reads: std::sync::atomic::AtomicU64,
        pub writes: std::sync::atomic::AtomicU64,
    }

    impl CountingStore {
        pub fn new(inner: std::sync::Arc<dyn Store>) -> Self {
            Self {
                inner,
                reads: Default::default(),
                writes: Default::default(),
            }
        }

        /// (reads, writes) so far.
        pub fn counts(&self) -> (u64, u64) {
            use std::sync::atomic::Ordering::Relaxed;
            (self.reads.load(Relaxed), self.writes.load(Relaxed))
        }

        fn read(&self) {
            self.reads
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }

        fn write(&self) {
            self.writes
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    #[async_trait::async_trait]
    impl Store for CountingStore {
        async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
            self.read();
            self.inner.get(key).await
        }

        async fn get_consistent(&self, key: &Key) -> Result<Option<Item>, StoreError> {
            self.read();
            self.inner.get_consistent(key).await
        }

        async fn put(&self, item: Item, condition: Option<Condition>) -> Result<(), StoreError> {
            self.write();
            self.inner.put(item, condition).await
        }

        async fn delete(
            &self,
            key: &Key,
            condition: Option<Condition>,
        ) -> Result<Option<Item>, StoreError> {
            self.write();
            self.inner.delete(key, condition).await
        }

        async fn increment(&self, increment: Increment) -> Result<i64, StoreError> {
            self.write();
            self.inner.increment(increment).await
        }

        async fn increment_billed(&self, increment: Increment) -> Result<(i64, f64), StoreError> {
            self.write();
            self.inner.increment_billed(increment).await
        }

        async fn transact(&self, ops: Vec<WriteOp>) -> Result<(), StoreError> {
            self.write();
            self.inner.transact(ops).await
        }

        async fn query(&self, query: Query) -> Result<Page, StoreError> {
            self.read();
            self.inner.query(query).await
        }

        fn backend(&self) -> &'static str {
            self.inner.backend()
        }
    }
}
