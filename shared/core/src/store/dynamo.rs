//! [`Store`] on DynamoDB. Every logical table has the same key schema: `pk` (S) + `sk` (S), a GSI
//! `gsi1` on `gsi1pk` (S) + `gsi1sk` (S) projecting all attributes, and TTL on `expires_at` (N).
//! DynamoDB deletes expired items late (up to days), so every read filters them and every
//! condition treats them as absent.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, ConsumedCapacity, Delete, Put, PutRequest,
    ReturnConsumedCapacity, ReturnValue, TransactWriteItem, Update, WriteRequest,
};
use serde_json::{Map, Number, Value};

use super::capacity::{self, CapacityMeter};
use super::{
    Condition, Increment, IndexKey, Item, Key, Page, Partition, Query, Store, StoreError, Table,
    WriteOp,
};
use crate::clock;

const INDEX_NAME: &str = "gsi1";
/// `BatchWriteItem` takes at most 25 writes a request.
const BATCH_WRITE_ITEMS: usize = 25;

/// Physical table names, from configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableNames {
    pub entities: String,
    pub counters: String,
    pub logs: String,
    pub bulk: String,
    pub connections: String,
}

impl TableNames {
    pub fn of(&self, table: Table) -> &str {
        match table {
            Table::Entities => &self.entities,
            Table::Counters => &self.counters,
            Table::Logs => &self.logs,
            Table::Bulk => &self.bulk,
            Table::Connections => &self.connections,
        }
    }
}

/// How the DynamoDB client behaves on the wire, chosen for Lambda (docs/data-model.md, "The
/// SDK client"): a request that serves an HTTP caller must fail or succeed well inside the
/// function's timeout, and a throttled or stalled attempt is retried at once rather than after
/// the SDK's default backoff of up to seconds. One client per container; its connections are
/// pooled and reused across invocations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientSettings {
    /// TCP + TLS connect (`ORRERY_DYNAMODB_CONNECT_TIMEOUT_MS`).
    pub connect_timeout: Duration,
    /// One attempt, first byte to last (`ORRERY_DYNAMODB_ATTEMPT_TIMEOUT_MS`).
    pub attempt_timeout: Duration,
    /// Every attempt and backoff of one call (`ORRERY_DYNAMODB_OPERATION_TIMEOUT_MS`).
    pub operation_timeout: Duration,
    /// Attempts per call, the first included (`ORRERY_DYNAMODB_MAX_ATTEMPTS`).
    pub max_attempts: u32,
    /// The first retry's backoff ceiling; full jitter, doubling up to `max_backoff`
    /// (`ORRERY_DYNAMODB_INITIAL_BACKOFF_MS`).
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for ClientSettings {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_millis(1_000),
            attempt_timeout: Duration::from_millis(1_500),
            operation_timeout: Duration::from_millis(4_000),
            max_attempts: 3,
            initial_backoff: Duration::from_millis(25),
            max_backoff: Duration::from_millis(1_000),
        }
    }
}

impl ClientSettings {
    /// A DynamoDB client on `sdk`'s credentials and endpoint with these settings, in `region`
    /// (or `sdk`'s own).
    pub fn client(&self, sdk: &aws_config::SdkConfig, region: Option<&str>) -> Client {
        let timeouts = aws_sdk_dynamodb::config::timeout::TimeoutConfig::builder()
            .connect_timeout(self.connect_timeout)
            .operation_attempt_timeout(self.attempt_timeout)
            .operation_timeout(self.operation_timeout)
            .build();
        let retries = aws_sdk_dynamodb::config::retry::RetryConfig::standard()
            .with_max_attempts(self.max_attempts)
            .with_initial_backoff(self.initial_backoff)
            .with_max_backoff(self.max_backoff);
        let mut config = aws_sdk_dynamodb::config::Builder::from(sdk)
            .timeout_config(timeouts)
            .retry_config(retries);
        if let Some(region) = region {
            config = config.region(aws_sdk_dynamodb::config::Region::new(region.to_owned()));
        }
        Client::from_conf(config.build())
    }
}

#[derive(Clone)]
pub struct DynamoStore {
    /// Every write and every strongly consistent read: the write region's replica.
    client: Client,
    /// Eventually consistent reads, where they differ from `client`: this region's replica of
    /// a global table whose writes all go to one (home) region (see [`DynamoStore::replica`]).
    local_reads: Option<Client>,
    tables: TableNames,
    /// When set, every request asks for its consumed capacity and records it here.
    meter: Option<Arc<CapacityMeter>>,
}

type Attributes = HashMap<String, AttributeValue>;

/// A throughput refusal (the item, its partition or the table over its rate, once the client's
/// retries are spent), or a write that met a transaction in progress on its item
/// (`TransactionConflictException`, which the SDK does not retry), as [`StoreError::Throttled`]:
/// both are worth retrying shortly. Any other failure as a backend error.
fn throttled_or_backend<E, R>(err: SdkError<E, R>) -> StoreError
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    use aws_sdk_dynamodb::error::ProvideErrorMetadata;
    match err.code() {
        // Not RequestLimitExceeded: that is the AWS account's request rate, not an item's.
        Some(
            code @ ("ThrottlingException"
            | "ProvisionedThroughputExceededException"
            | "TransactionConflictException"),
        ) => StoreError::Throttled(code.to_owned()),
        _ => backend(err),
    }
}

/// How often an increment that met a transaction on its item is tried again, and the most it
/// waits before each (jittered): a compaction's transaction holds the counter for milliseconds.
const CONFLICT_TRIES: u32 = 6;
const CONFLICT_BACKOFF_MS: u64 = 25;

/// A jittered wait of up to `attempt` × the backoff step.
async fn conflict_backoff(attempt: u32) {
    let mut bytes = [0u8; 2];
    let _ = getrandom::fill(&mut bytes);
    let jitter =
        u64::from(u16::from_le_bytes(bytes)) % (CONFLICT_BACKOFF_MS * u64::from(attempt) + 1);
    tokio::time::sleep(std::time::Duration::from_millis(jitter.max(1))).await;
}

fn backend<E: std::error::Error + 'static>(err: E) -> StoreError {
    StoreError::Backend(DisplayErrorContext(err).to_string())
}

pub fn to_attribute(value: &Value) -> AttributeValue {
    match value {
        Value::Null => AttributeValue::Null(true),
        Value::Bool(b) => AttributeValue::Bool(*b),
        Value::Number(n) => AttributeValue::N(n.to_string()),
        Value::String(s) => AttributeValue::S(s.clone()),
        Value::Array(items) => AttributeValue::L(items.iter().map(to_attribute).collect()),
        Value::Object(map) => AttributeValue::M(
            map.iter()
                .map(|(k, v)| (k.clone(), to_attribute(v)))
                .collect(),
        ),
    }
}

pub fn from_attribute(value: &AttributeValue) -> Result<Value, StoreError> {
    Ok(match value {
        AttributeValue::Null(_) => Value::Null,
        AttributeValue::Bool(b) => Value::Bool(*b),
        AttributeValue::N(n) => parse_number(n)?,
        AttributeValue::S(s) => Value::String(s.clone()),
        AttributeValue::L(items) => {
            Value::Array(items.iter().map(from_attribute).collect::<Result<_, _>>()?)
        }
        AttributeValue::M(map) => Value::Object(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), from_attribute(v)?)))
                .collect::<Result<_, StoreError>>()?,
        ),
        other => {
            return Err(StoreError::Backend(format!(
                "unsupported attribute type {other:?}"
            )));
        }
    })
}

fn parse_number(text: &str) -> Result<Value, StoreError> {
    if let Ok(int) = text.parse::<i64>() {
        return Ok(Value::from(int));
    }
    text.parse::<f64>()
        .ok()
        .and_then(Number::from_f64)
        .map(Value::Number)
        .ok_or_else(|| StoreError::Backend(format!("unreadable number {text:?}")))
}

fn string_attr(attrs: &Attributes, name: &str) -> Option<String> {
    match attrs.get(name) {
        Some(AttributeValue::S(s)) => Some(s.clone()),
        _ => None,
    }
}

fn key_attributes(key: &Key) -> Attributes {
    HashMap::from([
        ("pk".to_owned(), AttributeValue::S(key.pk.clone())),
        ("sk".to_owned(), AttributeValue::S(key.sk.clone())),
    ])
}

fn item_attributes(item: &Item) -> Attributes {
    let mut attrs: Attributes = item
        .attrs
        .iter()
        .map(|(k, v)| (k.clone(), to_attribute(v)))
        .collect();
    attrs.extend(key_attributes(&item.key));
    if let Some(index) = &item.index {
        attrs.insert("gsi1pk".into(), AttributeValue::S(index.pk.clone()));
        attrs.insert("gsi1sk".into(), AttributeValue::S(index.sk.clone()));
    }
    if let Some(at) = item.expires_at {
        attrs.insert("expires_at".into(), AttributeValue::N(at.to_string()));
    }
    attrs
}

fn decode_item(table: Table, mut attrs: Attributes) -> Result<Item, StoreError> {
    let pk =
        string_attr(&attrs, "pk").ok_or_else(|| StoreError::Backend("item without pk".into()))?;
    let sk =
        string_attr(&attrs, "sk").ok_or_else(|| StoreError::Backend("item without sk".into()))?;
    let index = match (string_attr(&attrs, "gsi1pk"), string_attr(&attrs, "gsi1sk")) {
        (Some(pk), Some(sk)) => Some(IndexKey { pk, sk }),
        _ => None,
    };
    let expires_at = match attrs.get("expires_at") {
        Some(AttributeValue::N(n)) => n.parse::<i64>().ok(),
        _ => None,
    };
    for reserved in super::RESERVED_ATTRIBUTES {
        attrs.remove(reserved);
    }
    let attrs = attrs
        .iter()
        .map(|(k, v)| Ok((k.clone(), from_attribute(v)?)))
        .collect::<Result<Map<_, _>, StoreError>>()?;
    Ok(Item {
        key: Key::new(table, pk, sk),
        index,
        expires_at,
        attrs,
    })
}

/// A condition expression with its placeholders. Expired items count as absent.
#[derive(Default)]
struct Expression {
    text: String,
    names: HashMap<String, String>,
    values: Attributes,
}

const LIVE: &str = "(attribute_not_exists(expires_at) OR expires_at > :now)";

fn condition_expression(condition: &Condition, now: i64) -> Expression {
    let mut expression = Expression::default();
    expression
        .values
        .insert(":now".into(), AttributeValue::N(now.to_string()));
    expression.text = match condition {
        Condition::NotExists => "(attribute_not_exists(pk) OR expires_at <= :now)".into(),
        Condition::Exists => format!("attribute_exists(pk) AND {LIVE}"),
        Condition::Equals { field, value } => {
            expression.names.insert("#field".into(), field.clone());
            expression
                .values
                .insert(":expected".into(), to_attribute(value));
            format!("#field = :expected AND {LIVE}")
        }
    };
    expression
}

/// `ADD` with a ceiling: the item must be live (or absent) and leave room for `by`.
fn increment_expression(increment: &Increment, now: i64) -> Expression {
    let mut expression = Expression::default();
    expression
        .names
        .insert("#counter".into(), increment.field.clone());
    expression
        .values
        .insert(":by".into(), AttributeValue::N(increment.by.to_string()));
    expression
        .values
        .insert(":now".into(), AttributeValue::N(now.to_string()));
    let mut text =
        "(attribute_not_exists(pk) OR attribute_not_exists(expires_at) OR expires_at > :now)"
            .to_owned();
    if let Some(ceiling) = increment.ceiling {
        expression.values.insert(
            ":room".into(),
            AttributeValue::N(ceiling.saturating_sub(increment.by).to_string()),
        );
        text.push_str(" AND (attribute_not_exists(#counter) OR #counter <= :room)");
    }
    expression.text = text;
    expression
}

/// `ADD #counter :by, #add0 :add0 … SET expires_at = :expires, #set0 = :set0 …`, with every
/// placeholder registered in `expression`.
fn update_text(increment: &Increment, expression: &mut Expression) -> String {
    let mut adds = vec!["#counter :by".to_owned()];
    for (position, (field, by)) in increment.also_add.iter().enumerate() {
        expression
            .names
            .insert(format!("#add{position}"), field.clone());
        expression
            .values
            .insert(format!(":add{position}"), AttributeValue::N(by.to_string()));
        adds.push(format!("#add{position} :add{position}"));
    }
    let mut sets = Vec::new();
    if let Some(at) = increment.expires_at {
        expression
            .values
            .insert(":expires".into(), AttributeValue::N(at.to_string()));
        sets.push("expires_at = :expires".to_owned());
    }
    for (position, (field, value)) in increment.also_set.iter().enumerate() {
        expression
            .names
            .insert(format!("#set{position}"), field.clone());
        expression
            .values
            .insert(format!(":set{position}"), to_attribute(value));
        sets.push(format!("#set{position} = :set{position}"));
    }
    let mut text = format!("ADD {}", adds.join(", "));
    if !sets.is_empty() {
        text.push_str(&format!(" SET {}", sets.join(", ")));
    }
    text
}

/// `REMOVE #rm0, #rm1 …` on a live item, on the condition that each attribute still holds the
/// value given (`#rm0 = :rm0 AND …`): the update text and the condition with its placeholders.
fn remove_unchanged_expression(attributes: &[(String, Value)], now: i64) -> (String, Expression) {
    let mut expression = Expression::default();
    expression
        .values
        .insert(":now".into(), AttributeValue::N(now.to_string()));
    let mut removed = Vec::with_capacity(attributes.len());
    let mut unchanged = vec![format!("attribute_exists(pk) AND {LIVE}")];
    for (position, (name, value)) in attributes.iter().enumerate() {
        expression
            .names
            .insert(format!("#rm{position}"), name.clone());
        expression
            .values
            .insert(format!(":rm{position}"), to_attribute(value));
        removed.push(format!("#rm{position}"));
        unchanged.push(format!("#rm{position} = :rm{position}"));
    }
    expression.text = unchanged.join(" AND ");
    (format!("REMOVE {}", removed.join(", ")), expression)
}

/// The item patterns of a transaction, one per operation.
fn transaction_patterns(ops: &[WriteOp]) -> Vec<String> {
    ops.iter()
        .map(|op| {
            let key = op.key();
            capacity::item_pattern(key.table, &key.pk, &key.sk)
        })
        .collect()
}

fn optional_map<K, V>(map: HashMap<K, V>) -> Option<HashMap<K, V>> {
    (!map.is_empty()).then_some(map)
}

impl DynamoStore {
    pub fn new(client: Client, tables: TableNames) -> Self {
        Self {
            client,
            local_reads: None,
            tables,
            meter: None,
        }
    }

    /// A store in a replica region of global tables whose home region is `client`'s: writes
    /// and strongly consistent reads go home, so only one region ever writes an item (last
    /// writer wins never meets two concurrent increments of one counter, and every condition
    /// is checked against the one up-to-date copy), while eventually consistent reads are
    /// served by `local`, this region's replica (which lags the home region by about a second).
    pub fn replica(client: Client, local: Client, tables: TableNames) -> Self {
        Self {
            local_reads: Some(local),
            ..Self::new(client, tables)
        }
    }

    /// The store of one container: clients built once from `sdk` with `settings`; in a
    /// replica region (`write_region` set and not `sdk`'s region) a [`replica`](Self::replica).
    pub fn connect(
        settings: &ClientSettings,
        sdk: &aws_config::SdkConfig,
        tables: TableNames,
        write_region: Option<&str>,
    ) -> Self {
        let here = settings.client(sdk, None);
        match write_region.filter(|home| sdk.region().is_none_or(|here| here.as_ref() != *home)) {
            Some(home) => Self::replica(settings.client(sdk, Some(home)), here, tables),
            None => Self::new(here, tables),
        }
    }

    /// The client for a read: the local replica unless the read must be strongly consistent.
    fn reader(&self, consistent: bool) -> &Client {
        match &self.local_reads {
            Some(local) if !consistent => local,
            _ => &self.client,
        }
    }

    /// Asks DynamoDB for the consumed capacity of every request and records each call in
    /// `meter` (the capacity tests; `ORRERY_DYNAMODB_CAPACITY_LOG`). It costs nothing extra.
    pub fn measuring(mut self, meter: Arc<CapacityMeter>) -> Self {
        self.meter = Some(meter);
        self
    }

    fn return_capacity(&self) -> Option<ReturnConsumedCapacity> {
        self.meter.as_ref().map(|_| ReturnConsumedCapacity::Total)
    }

    /// Records one call in the meter, if there is one (`patterns` is only built then).
    fn record<'a>(
        &self,
        operation: &'static str,
        patterns: impl FnOnce() -> Vec<String>,
        consumed: impl IntoIterator<Item = &'a ConsumedCapacity>,
        refused: bool,
    ) {
        let Some(meter) = &self.meter else { return };
        let units: f64 = consumed
            .into_iter()
            .filter_map(ConsumedCapacity::capacity_units)
            .sum();
        let reads = matches!(operation, "GetItem" | "Query");
        meter.record(capacity::Call {
            operation,
            patterns: patterns(),
            read_units: if reads { units } else { 0.0 },
            write_units: if reads { 0.0 } else { units },
            refused,
        });
    }

    fn item_pattern(key: &Key) -> Vec<String> {
        vec![capacity::item_pattern(key.table, &key.pk, &key.sk)]
    }

    fn table(&self, table: Table) -> &str {
        self.tables.of(table)
    }

    async fn read(&self, key: &Key, consistent: bool) -> Result<Option<Item>, StoreError> {
        let output = self
            .reader(consistent)
            .get_item()
            .table_name(self.table(key.table))
            .set_key(Some(key_attributes(key)))
            .consistent_read(consistent)
            .set_return_consumed_capacity(self.return_capacity())
            .send()
            .await
            .map_err(backend)?;
        self.record(
            "GetItem",
            || Self::item_pattern(key),
            output.consumed_capacity(),
            false,
        );
        match output.item {
            Some(attrs) => {
                let item = decode_item(key.table, attrs)?;
                Ok((!item.is_expired(clock::now_unix())).then_some(item))
            }
            None => Ok(None),
        }
    }

    /// An expired counter cannot be reset by `ADD`, so it is replaced by a fresh item, on the
    /// condition that it is still the expired one we saw.
    async fn restart_expired_counter(
        &self,
        increment: &Increment,
        expired_at: i64,
    ) -> Result<i64, StoreError> {
        if let Some(ceiling) = increment.ceiling.filter(|ceiling| increment.by > *ceiling) {
            return Err(StoreError::LimitExceeded {
                current: 0,
                ceiling,
            });
        }
        let mut attrs = Map::new();
        attrs.insert(increment.field.clone(), Value::from(increment.by));
        for (field, by) in &increment.also_add {
            attrs.insert(field.clone(), Value::from(*by));
        }
        for (field, value) in &increment.also_set {
            attrs.insert(field.clone(), value.clone());
        }
        let mut item = Item::new(increment.key.clone(), attrs);
        item.expires_at = increment.expires_at;
        let result = self
            .client
            .put_item()
            .table_name(self.table(increment.key.table))
            .set_item(Some(item_attributes(&item)))
            .condition_expression("expires_at = :seen")
            .expression_attribute_values(":seen", AttributeValue::N(expired_at.to_string()))
            .set_return_consumed_capacity(self.return_capacity())
            .send()
            .await;
        let patterns = || Self::item_pattern(&increment.key);
        match result {
            Ok(output) => {
                self.record("PutItem", patterns, output.consumed_capacity(), false);
                Ok(increment.by)
            }
            Err(err) if is_condition_failure(&err) => {
                self.record("PutItem", patterns, None, true);
                Err(StoreError::ConditionFailed)
            }
            Err(err) => Err(backend(err)),
        }
    }
}

fn is_condition_failure<E, R>(err: &SdkError<E, R>) -> bool
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    err.as_service_error().and_then(|e| e.code()) == Some("ConditionalCheckFailedException")
}

#[async_trait]
impl Store for DynamoStore {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        key.validate()?;
        self.read(key, false).await
    }

    async fn get_consistent(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        key.validate()?;
        self.read(key, true).await
    }

    async fn put(&self, item: Item, condition: Option<Condition>) -> Result<(), StoreError> {
        item.validate()?;
        let mut request = self
            .client
            .put_item()
            .table_name(self.table(item.key.table))
            .set_item(Some(item_attributes(&item)))
            .set_return_consumed_capacity(self.return_capacity());
        if let Some(condition) = &condition {
            let expression = condition_expression(condition, clock::now_unix());
            request = request
                .condition_expression(expression.text)
                .set_expression_attribute_names(optional_map(expression.names))
                .set_expression_attribute_values(optional_map(expression.values));
        }
        let patterns = || Self::item_pattern(&item.key);
        match request.send().await {
            Ok(output) => {
                self.record("PutItem", patterns, output.consumed_capacity(), false);
                Ok(())
            }
            Err(err) if is_condition_failure(&err) => {
                self.record("PutItem", patterns, None, true);
                Err(StoreError::ConditionFailed)
            }
            Err(err) => Err(backend(err)),
        }
    }

    async fn put_many(&self, items: Vec<Item>) -> Result<(), StoreError> {
        for item in &items {
            item.validate()?;
        }
        for group in items.chunks(BATCH_WRITE_ITEMS) {
            let mut pending: HashMap<String, Vec<WriteRequest>> = HashMap::new();
            for item in group {
                let put = PutRequest::builder()
                    .set_item(Some(item_attributes(item)))
                    .build()
                    .map_err(backend)?;
                pending
                    .entry(self.table(item.key.table).to_owned())
                    .or_default()
                    .push(WriteRequest::builder().put_request(put).build());
            }
            // Unprocessed items (throttling) are sent again with backoff until none is left.
            let mut delay = std::time::Duration::from_millis(25);
            for attempt in 0.. {
                let output = self
                    .client
                    .batch_write_item()
                    .set_request_items(Some(pending))
                    .set_return_consumed_capacity(self.return_capacity())
                    .send()
                    .await
                    .map_err(backend)?;
                self.record(
                    "BatchWriteItem",
                    || {
                        group
                            .iter()
                            .flat_map(|item| Self::item_pattern(&item.key))
                            .collect()
                    },
                    output.consumed_capacity(),
                    false,
                );
                pending = output
                    .unprocessed_items
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|(_, requests)| !requests.is_empty())
                    .collect();
                if pending.is_empty() {
                    break;
                }
                if attempt >= 8 {
                    return Err(StoreError::Backend(
                        "BatchWriteItem left items unprocessed after 8 retries".into(),
                    ));
                }
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(std::time::Duration::from_secs(1));
            }
        }
        Ok(())
    }

    async fn delete(
        &self,
        key: &Key,
        condition: Option<Condition>,
    ) -> Result<Option<Item>, StoreError> {
        key.validate()?;
        let mut request = self
            .client
            .delete_item()
            .table_name(self.table(key.table))
            .set_key(Some(key_attributes(key)))
            .return_values(ReturnValue::AllOld)
            .set_return_consumed_capacity(self.return_capacity());
        if let Some(condition) = &condition {
            let expression = condition_expression(condition, clock::now_unix());
            request = request
                .condition_expression(expression.text)
                .set_expression_attribute_names(optional_map(expression.names))
                .set_expression_attribute_values(optional_map(expression.values));
        }
        let patterns = || Self::item_pattern(key);
        match request.send().await {
            Ok(output) => {
                self.record("DeleteItem", patterns, output.consumed_capacity(), false);
                match output.attributes.filter(|attrs| !attrs.is_empty()) {
                    Some(attrs) => {
                        let item = decode_item(key.table, attrs)?;
                        Ok((!item.is_expired(clock::now_unix())).then_some(item))
                    }
                    None => Ok(None),
                }
            }
            Err(err) if is_condition_failure(&err) => {
                self.record("DeleteItem", patterns, None, true);
                Err(StoreError::ConditionFailed)
            }
            Err(err) => Err(backend(err)),
        }
    }

    async fn increment(&self, increment: Increment) -> Result<i64, StoreError> {
        Ok(self.increment_billed(increment).await?.0)
    }

    async fn increment_billed(&self, increment: Increment) -> Result<(i64, f64), StoreError> {
        super::validate_increment(&increment)?;
        if let Some(ceiling) = increment.ceiling.filter(|ceiling| increment.by > *ceiling) {
            return Err(StoreError::LimitExceeded {
                current: 0,
                ceiling,
            });
        }
        // The expired-counter restart can race with another restart; a few tries settle it.
        let mut conflicts = 0;
        let mut restarts = 0;
        while restarts < 3 {
            let now = clock::now_unix();
            let mut expression = increment_expression(&increment, now);
            let update_text = update_text(&increment, &mut expression);
            let result = self
                .client
                .update_item()
                .table_name(self.table(increment.key.table))
                .set_key(Some(key_attributes(&increment.key)))
                .update_expression(update_text)
                .condition_expression(expression.text)
                .set_expression_attribute_names(Some(expression.names))
                .set_expression_attribute_values(Some(expression.values))
                .return_values(ReturnValue::UpdatedNew)
                // Always asked (it costs nothing): the caller learns when the item grew past 1 KB.
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await;
            let patterns = || Self::item_pattern(&increment.key);
            let err = match result {
                Ok(output) => {
                    self.record("UpdateItem", patterns, output.consumed_capacity(), false);
                    let units = output
                        .consumed_capacity()
                        .and_then(ConsumedCapacity::capacity_units)
                        .unwrap_or(1.0);
                    let value = output
                        .attributes
                        .as_ref()
                        .and_then(|attrs| attrs.get(&increment.field))
                        .and_then(|value| match value {
                            AttributeValue::N(n) => n.parse::<i64>().ok(),
                            _ => None,
                        })
                        .ok_or_else(|| {
                            StoreError::Backend("increment returned no counter value".into())
                        })?;
                    return Ok((value, units));
                }
                Err(err) => err,
            };
            match err.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(_)) => {}
                // A transaction (a compaction) holds the item for a moment: try again.
                Some(UpdateItemError::TransactionConflictException(_))
                    if conflicts + 1 < CONFLICT_TRIES =>
                {
                    conflicts += 1;
                    conflict_backoff(conflicts).await;
                    continue;
                }
                _ => return Err(throttled_or_backend(err)),
            }
            restarts += 1;
            self.record("UpdateItem", patterns, None, true);
            // Refused: either over the ceiling, or the counter item is expired. Look (strongly).
            let output = self
                .client
                .get_item()
                .table_name(self.table(increment.key.table))
                .set_key(Some(key_attributes(&increment.key)))
                .consistent_read(true)
                .set_return_consumed_capacity(self.return_capacity())
                .send()
                .await
                .map_err(backend)?;
            self.record("GetItem", patterns, output.consumed_capacity(), false);
            let stored = output
                .item
                .map(|attrs| decode_item(increment.key.table, attrs))
                .transpose()?;
            match stored {
                Some(item) if item.is_expired(now) => {
                    match self
                        .restart_expired_counter(&increment, item.expires_at.unwrap_or_default())
                        .await
                    {
                        Err(StoreError::ConditionFailed) => continue,
                        // A fresh item: one unit.
                        other => return other.map(|value| (value, 1.0)),
                    }
                }
                Some(item) => {
                    let current = item
                        .attrs
                        .get(&increment.field)
                        .and_then(Value::as_i64)
                        .unwrap_or(0);
                    let ceiling = increment.ceiling.unwrap_or(i64::MAX);
                    if current.saturating_add(increment.by) > ceiling {
                        return Err(StoreError::LimitExceeded { current, ceiling });
                    }
                    // Someone changed it between our write and our read: try again.
                }
                None => {}
            }
        }
        Err(StoreError::Backend(
            "counter increment did not settle after 3 attempts".into(),
        ))
    }

    async fn transact(&self, ops: Vec<WriteOp>) -> Result<(), StoreError> {
        super::validate_transaction(&ops)?;
        let now = clock::now_unix();
        let mut items = Vec::with_capacity(ops.len());
        for op in &ops {
            let table = self.table(op.key().table).to_owned();
            let item = match op {
                WriteOp::Put { item, condition } => {
                    let mut put = Put::builder()
                        .table_name(table)
                        .set_item(Some(item_attributes(item)));
                    if let Some(condition) = condition {
                        let expression = condition_expression(condition, now);
                        put = put
                            .condition_expression(expression.text)
                            .set_expression_attribute_names(optional_map(expression.names))
                            .set_expression_attribute_values(optional_map(expression.values));
                    }
                    TransactWriteItem::builder().put(put.build().map_err(backend)?)
                }
                WriteOp::Delete { key, condition } => {
                    let mut delete = Delete::builder()
                        .table_name(table)
                        .set_key(Some(key_attributes(key)));
                    if let Some(condition) = condition {
                        let expression = condition_expression(condition, now);
                        delete = delete
                            .condition_expression(expression.text)
                            .set_expression_attribute_names(optional_map(expression.names))
                            .set_expression_attribute_values(optional_map(expression.values));
                    }
                    TransactWriteItem::builder().delete(delete.build().map_err(backend)?)
                }
                WriteOp::Check { key, condition } => {
                    let expression = condition_expression(condition, now);
                    let check = ConditionCheck::builder()
                        .table_name(table)
                        .set_key(Some(key_attributes(key)))
                        .condition_expression(expression.text)
                        .set_expression_attribute_names(optional_map(expression.names))
                        .set_expression_attribute_values(optional_map(expression.values));
                    TransactWriteItem::builder().condition_check(check.build().map_err(backend)?)
                }
                WriteOp::RemoveUnchanged { key, attributes } => {
                    let (update_text, expression) = remove_unchanged_expression(attributes, now);
                    let update = Update::builder()
                        .table_name(table)
                        .set_key(Some(key_attributes(key)))
                        .update_expression(update_text)
                        .condition_expression(expression.text)
                        .set_expression_attribute_names(Some(expression.names))
                        .set_expression_attribute_values(Some(expression.values));
                    TransactWriteItem::builder().update(update.build().map_err(backend)?)
                }
                WriteOp::Increment(increment) => {
                    let mut expression = increment_expression(increment, now);
                    let update_text = update_text(increment, &mut expression);
                    let update = Update::builder()
                        .table_name(table)
                        .set_key(Some(key_attributes(&increment.key)))
                        .update_expression(update_text)
                        .condition_expression(expression.text)
                        .set_expression_attribute_names(Some(expression.names))
                        .set_expression_attribute_values(Some(expression.values));
                    TransactWriteItem::builder().update(update.build().map_err(backend)?)
                }
            };
            items.push(item.build());
        }
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .set_return_consumed_capacity(self.return_capacity())
            .send()
            .await
        {
            Ok(output) => {
                self.record(
                    "TransactWriteItems",
                    || transaction_patterns(&ops),
                    output.consumed_capacity(),
                    false,
                );
                Ok(())
            }
            Err(err) => {
                if let Some(aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(cancel)) =
                    err.as_service_error()
                {
                    let failed: Vec<usize> = cancel
                        .cancellation_reasons()
                        .iter()
                        .enumerate()
                        .filter(|(_, reason)| reason.code() == Some("ConditionalCheckFailed"))
                        .map(|(position, _)| position)
                        .collect();
                    if !failed.is_empty() {
                        self.record("TransactWriteItems", || transaction_patterns(&ops), None, true);
                        return Err(StoreError::TransactionCanceled { failed });
                    }
                    // No condition failed, but an item was busy in another transaction or
                    // write: nothing was applied, and a retry may well succeed.
                    if cancel
                        .cancellation_reasons()
                        .iter()
                        .any(|reason| reason.code() == Some("TransactionConflict"))
                    {
                        return Err(StoreError::Throttled("TransactionConflict".into()));
                    }
                }
                Err(backend(err))
            }
        }
    }

    async fn query(&self, query: Query) -> Result<Page, StoreError> {
        query.validate()?;
        let (key_names, partition_value, index_name) = match &query.partition {
            Partition::Table(pk) => (("pk", "sk"), pk.clone(), None),
            Partition::Index(gsi1pk) => (("gsi1pk", "gsi1sk"), gsi1pk.clone(), Some(INDEX_NAME)),
        };
        let mut condition = format!("{} = :partition", key_names.0);
        let mut values: Attributes =
            HashMap::from([(":partition".to_owned(), AttributeValue::S(partition_value))]);
        if let Some(prefix) = &query.sk_prefix {
            condition.push_str(&format!(" AND begins_with({}, :prefix)", key_names.1));
            values.insert(":prefix".into(), AttributeValue::S(prefix.clone()));
        }
        let mut start = query.cursor.as_ref().map(|cursor| {
            let mut key =
                key_attributes(&Key::new(query.table, cursor.pk.clone(), cursor.sk.clone()));
            if let Some(index) = &cursor.index {
                key.insert("gsi1pk".into(), AttributeValue::S(index.pk.clone()));
                key.insert("gsi1sk".into(), AttributeValue::S(index.sk.clone()));
            }
            key
        });
        if matches!(query.partition, Partition::Index(_))
            && query.cursor.as_ref().is_some_and(|c| c.index.is_none())
        {
            return Err(StoreError::InvalidCursor);
        }
        // Fetch one more than asked (skipping expired items) to know whether a next page exists.
        let now = clock::now_unix();
        let mut items = Vec::new();
        loop {
            let output = self
                .reader(query.consistent)
                .query()
                .table_name(self.table(query.table))
                .consistent_read(query.consistent)
                .set_index_name(index_name.map(str::to_owned))
                .key_condition_expression(&condition)
                .set_expression_attribute_values(Some(values.clone()))
                .scan_index_forward(!query.descending)
                .limit(i32::try_from(query.limit + 1 - items.len()).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start.take())
                .set_return_consumed_capacity(self.return_capacity())
                .send()
                .await
                .map_err(|err| {
                    match err
                        .as_service_error()
                        .and_then(|e| aws_sdk_dynamodb::error::ProvideErrorMetadata::code(e))
                    {
                        Some("ValidationException") if query.cursor.is_some() => {
                            StoreError::InvalidCursor
                        }
                        _ => backend(err),
                    }
                })?;
            self.record(
                "Query",
                || {
                    let (index, pk) = match &query.partition {
                        Partition::Table(pk) => (false, pk),
                        Partition::Index(pk) => (true, pk),
                    };
                    vec![capacity::query_pattern(
                        query.table,
                        index,
                        pk,
                        query.sk_prefix.as_deref(),
                    )]
                },
                output.consumed_capacity(),
                false,
            );
            for attrs in output.items.unwrap_or_default() {
                let item = decode_item(query.table, attrs)?;
                if !item.is_expired(now) {
                    items.push(item);
                }
            }
            start = output.last_evaluated_key.filter(|key| !key.is_empty());
            if items.len() > query.limit || start.is_none() {
                break;
            }
        }
        Ok(Page::from_lookahead(items, &query))
    }

    fn backend(&self) -> &'static str {
        "dynamodb"
    }
}
