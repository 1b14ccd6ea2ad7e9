//! `App`: the one state struct, built once per cold start (Lambda) or once per process
//! (`orrery-local`), and cloned cheaply into every handler.

use std::path::Path;
use std::sync::Arc;

use crate::access::keys::KeyHasher;
use crate::cache::board::StoreBoard;
use crate::cache::{RedisCache, SharedCache, TwoLevelCache};
use crate::config::{AwsResources, Config, ConfigError};
use crate::embedded::EmbeddedDb;
use crate::events::EventPublisher;
use crate::queue::embedded::{DeadLetterPolicy, EmbeddedQueue};
use crate::queue::sqs::SqsQueue;
use crate::queue::{Queue, QueuePair};
use crate::secrets::{
    AwsSecrets, CachedSecrets, FileSecrets, MemorySecrets, SecretString, Secrets,
};
use crate::store::Store;
use crate::store::dynamo::DynamoStore;
use crate::store::embedded::EmbeddedStore;

/// How many receives before a message goes to its dead-letter queue (matches `template.yaml`).
pub const EVENTS_MAX_RECEIVES: u32 = 5;
/// A batch chunk is retried this often before its items are recorded as failed (the worker
/// does that on the last receive itself, so a batch always finishes).
pub const BATCH_ITEMS_MAX_RECEIVES: u32 = 5;
/// The delivery consumer moves a message to the dead-letter queue itself after its last
/// attempt; this bound only catches messages that cannot be handled at all.
pub const DELIVERIES_MAX_RECEIVES: u32 = crate::webhooks::schedule::MAX_ATTEMPTS + 2;

#[derive(Clone)]
pub struct Queues {
    /// Domain events, consumed by the `events` function.
    pub events: QueuePair,
    /// One message per webhook delivery, consumed by the `webhook-delivery` function.
    pub deliveries: QueuePair,
    /// One message per chunk of a batch job, consumed by the `batch-worker` function.
    pub batch_items: QueuePair,
}

#[derive(Clone)]
pub struct App {
    pub config: Arc<Config>,
    pub store: Arc<dyn Store>,
    pub queues: Queues,
    pub secrets: Arc<CachedSecrets>,
    pub events: EventPublisher,
    /// Wakes this process's event-log readers when an event is appended here.
    pub log_appended: crate::events::LogSignal,
    /// `dynamodb` or `embedded`, for `/health`.
    pub backend: &'static str,
    pub cache: Arc<TwoLevelCache>,
    /// This container's unflushed analytics (latency, cache use, 5xx/429 counts).
    pub analytics: Arc<crate::analytics::Aggregator>,
    /// This container's quota blocks of hot accounts.
    pub hot_quota: Arc<crate::access::hot::HotQuota>,
    /// Which quota counters this container compacted this hour (`access::compaction`).
    pub compaction_marks: Arc<crate::access::compaction::CompactionMarks>,
    /// Loaded on first use (one secret read per container), not at cold start.
    key_hasher: Arc<tokio::sync::OnceCell<KeyHasher>>,
    cursor_seal: Arc<tokio::sync::OnceCell<crate::store::CursorSeal>>,
    /// Built on first use: only the webhook functions deliver.
    webhook_client: Arc<std::sync::OnceLock<crate::webhooks::client::DeliveryClient>>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot open the data directory: {0}")]
    Storage(String),
    #[error("the shared cache URL (ORRERY_REDIS_URL) is malformed: {0}")]
    Cache(String),
}

impl App {
    pub fn from_parts(
        config: Config,
        store: Arc<dyn Store>,
        queues: Queues,
        secrets: Arc<dyn Secrets>,
    ) -> Self {
        let ttl = config.secret_cache_ttl;
        Self {
            backend: store.backend(),
            events: EventPublisher::new(queues.events.main.clone()),
            log_appended: crate::events::LogSignal::default(),
            cache: Arc::new(Self::cache_on(&config, &store, None)),
            analytics: Arc::new(crate::analytics::Aggregator::new(
                config.analytics_flush_interval,
            )),
            hot_quota: Arc::default(),
            compaction_marks: Arc::default(),
            config: Arc::new(config),
            store,
            queues,
            secrets: Arc::new(CachedSecrets::new(secrets, ttl)),
            key_hasher: Arc::default(),
            cursor_seal: Arc::default(),
            webhook_client: Arc::default(),
        }
    }

    /// The cache of a container on `store`: its generations on the store's board, so every
    /// container of every function sees an invalidation within the sync interval.
    fn cache_on(
        config: &Config,
        store: &Arc<dyn Store>,
        l2: Option<Arc<dyn SharedCache>>,
    ) -> TwoLevelCache {
        TwoLevelCache::new(config.cache.clone(), l2)
            .with_board(Arc::new(StoreBoard::new(store.clone())))
    }

    /// Replaces the cache (to add a shared level); call before the app is cloned.
    pub fn with_shared_cache(mut self, l2: Option<Arc<dyn SharedCache>>) -> Self {
        self.cache = Arc::new(Self::cache_on(&self.config, &self.store, l2));
        self
    }

    /// Attaches the shared cache named by `ORRERY_REDIS_URL`, if any. Only a malformed URL stops
    /// startup: an unreachable server is a cache that misses until it answers.
    pub async fn connect_shared_cache(self) -> Result<Self, StartupError> {
        match self.config.redis_url.clone() {
            Some(url) => {
                let l2 = RedisCache::connect(&url, "orrery/")
                    .map_err(|err| StartupError::Cache(err.to_string()))?;
                Ok(self.with_shared_cache(Some(Arc::new(l2))))
            }
            None => Ok(self),
        }
    }

    /// The API key hasher, with the pepper read once per container.
    /// The client that delivers webhooks under this app's URL policy.
    pub fn webhook_client(
        &self,
    ) -> Result<&crate::webhooks::client::DeliveryClient, crate::ApiError> {
        if let Some(client) = self.webhook_client.get() {
            return Ok(client);
        }
        let client = crate::webhooks::client::DeliveryClient::new(
            self.config.webhook_urls.clone(),
            self.config.webhook_timeout,
        )
        .map_err(crate::ApiError::internal)?;
        Ok(self.webhook_client.get_or_init(|| client))
    }

    /// The seal of the API's pagination cursors, keyed from the pepper (one per container).
    pub async fn cursor_seal(&self) -> Result<crate::store::CursorSeal, crate::ApiError> {
        let seal = self
            .cursor_seal
            .get_or_try_init(|| async {
                let pepper = self.secrets.get(&self.config.key_pepper_secret).await?;
                Ok::<_, crate::ApiError>(crate::store::CursorSeal::new(pepper.expose().as_bytes()))
            })
            .await?;
        Ok(seal.clone())
    }

    pub async fn key_hasher(&self) -> Result<KeyHasher, crate::ApiError> {
        let hasher = self
            .key_hasher
            .get_or_try_init(|| async {
                let pepper = self.secrets.get(&self.config.key_pepper_secret).await?;
                Ok::<_, crate::ApiError>(KeyHasher::new(pepper))
            })
            .await?;
        Ok(hasher.clone())
    }

    /// The Lambda runtime: every resource from the environment, the SDK clients from one
    /// `aws_config` load (which honours `AWS_ENDPOINT_URL`, how tests reach the emulator).
    pub async fn from_env_aws() -> Result<Self, StartupError> {
        let config = Config::from_env()?;
        let resources = AwsResources::from_env()?;
        let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        let app = Self::aws(config, &resources, &sdk)
            .connect_shared_cache()
            .await?;
        // Hot entries from the shared cache, so a new container starts warm (no-op without L2).
        app.cache.warm(app.config.cache.hot_set_size).await;
        Ok(app)
    }

    pub fn aws(config: Config, resources: &AwsResources, sdk: &aws_config::SdkConfig) -> Self {
        let mut store = DynamoStore::connect(
            &config.dynamodb,
            sdk,
            resources.tables.clone(),
            resources.write_region.as_deref(),
        );
        if config.log_dynamodb_capacity {
            store = store.measuring(Arc::new(crate::store::capacity::CapacityMeter::logging()));
        }
        Self::aws_on(config, resources, sdk, Arc::new(store))
    }

    /// The AWS runtime with its queues and secrets from `sdk` and the given store (the tests
    /// put a measured DynamoDB store on a second emulator here).
    pub fn aws_on(
        config: Config,
        resources: &AwsResources,
        sdk: &aws_config::SdkConfig,
        store: Arc<dyn Store>,
    ) -> Self {
        let sqs = aws_sdk_sqs::Client::new(sdk);
        let secrets = aws_sdk_secretsmanager::Client::new(sdk);
        let queue = |url: &str| -> Arc<dyn Queue> { Arc::new(SqsQueue::new(sqs.clone(), url)) };
        let queues = Queues {
            events: QueuePair {
                main: queue(&resources.events_queue_url),
                dead_letters: queue(&resources.events_dlq_url),
            },
            deliveries: QueuePair {
                main: queue(&resources.deliveries_queue_url),
                dead_letters: queue(&resources.deliveries_dlq_url),
            },
            batch_items: QueuePair {
                main: queue(&resources.batch_items_queue_url),
                dead_letters: queue(&resources.batch_items_dlq_url),
            },
        };
        Self::from_parts(config, store, queues, Arc::new(AwsSecrets::new(secrets)))
    }

    /// The embedded runtime on `data_dir`: the database (`orrery.redb`, and `orrery-bulk.redb`
    /// for batch inputs and results) and a secrets folder. A new (absent or empty) directory
    /// gets a database and a key pepper; an existing one must hold both, intact: a missing or
    /// zero-length database or a missing or emptied pepper is damage (starting anyway would lose
    /// every account, or make every key a 401), so startup stops with an error naming the file.
    /// A zero-length bulk file is damage too; a missing one is created (directories from
    /// before batch jobs have none).
    pub fn embedded(config: Config, data_dir: &Path) -> Result<Self, StartupError> {
        let database = data_dir.join("orrery.redb");
        let secrets = FileSecrets::new(data_dir.join("secrets"));
        let storage = |err: String| StartupError::Storage(err);
        let pepper = secrets
            .file_of(&config.key_pepper_secret)
            .map_err(|err| storage(err.to_string()))?;
        let is_new = match std::fs::read_dir(data_dir) {
            Ok(mut entries) => entries.next().is_none(),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => true,
            Err(err) => return Err(storage(format!("{}: {err}", data_dir.display()))),
        };
        if is_new {
            secrets
                .put_now(
                    &config.key_pepper_secret,
                    &SecretString::new(crate::access::keys::random_token("")),
                )
                .map_err(|err| storage(format!("{}: {err}", pepper.display())))?;
        } else {
            require_intact(&database, "the embedded database")?;
            require_intact(
                &pepper,
                "the API key pepper (every stored key hash depends on it)",
            )?;
            let bulk = EmbeddedDb::bulk_path(&database);
            if bulk.exists() {
                require_intact(&bulk, "the embedded database's batch inputs and results")?;
            }
        }
        let db = EmbeddedDb::open(&database).map_err(|err| storage(err.to_string()))?;
        Ok(Self::embedded_with(config, db, Arc::new(secrets)))
    }

    /// Everything in memory: for unit and handler tests.
    pub fn in_memory() -> Result<Self, StartupError> {
        let db = EmbeddedDb::in_memory().map_err(|err| StartupError::Storage(err.to_string()))?;
        Ok(Self::embedded_with(
            Config::default(),
            db,
            Arc::new(MemorySecrets::default()),
        ))
    }

    pub fn embedded_with(config: Config, db: EmbeddedDb, secrets: Arc<dyn Secrets>) -> Self {
        let queues = Queues {
            events: embedded_pair(&db, "events", EVENTS_MAX_RECEIVES),
            deliveries: embedded_pair(&db, "deliveries", DELIVERIES_MAX_RECEIVES),
            batch_items: embedded_pair(&db, "batch-items", BATCH_ITEMS_MAX_RECEIVES + 1),
        };
        Self::from_parts(
            config,
            Arc::new(EmbeddedStore::new(db.clone())),
            queues,
            secrets,
        )
    }
}

/// A file an existing data directory must hold with content.
fn require_intact(path: &Path, what: &str) -> Result<(), StartupError> {
    let damage = |state: &str| {
        StartupError::Storage(format!(
            "{} ({what}) {state}, but the data directory is not new; refusing to start with lost \
             state. Restore the file from a backup, or point --data-dir at an empty directory.",
            path.display()
        ))
    };
    match std::fs::metadata(path) {
        Ok(meta) if meta.len() == 0 => Err(damage("is empty")),
        Ok(_) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Err(damage("is missing")),
        Err(err) => Err(StartupError::Storage(format!("{}: {err}", path.display()))),
    }
}

fn embedded_pair(db: &EmbeddedDb, name: &str, max_receives: u32) -> QueuePair {
    let dead_name = format!("{name}-dlq");
    QueuePair {
        main: Arc::new(EmbeddedQueue::new(
            db.clone(),
            name,
            Some(DeadLetterPolicy {
                queue: dead_name.clone(),
                max_receives,
            }),
        )),
        dead_letters: Arc::new(EmbeddedQueue::new(db.clone(), dead_name, None)),
    }
}
