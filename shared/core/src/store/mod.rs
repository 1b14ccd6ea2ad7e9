//! The document store: the subset of DynamoDB's model that Orrery's access patterns need.
//!
//! Items live in one of a few logical [`Table`]s, addressed by a partition key and a sort key,
//! optionally projected into one secondary index (`gsi1`), optionally expiring. Attributes are a
//! JSON object whose top-level fields become top-level DynamoDB attributes, so items stay readable
//! in the console and counters can be updated atomically with `ADD`.
//!
//! Two implementations pass the same behavioural suite (`tests/`): [`dynamo::DynamoStore`] and
//! [`embedded::EmbeddedStore`].

pub mod capacity;
pub mod dynamo;
pub mod embedded;
pub mod keyspace;

use async_trait::async_trait;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The logical tables. Each maps to a physical DynamoDB table (named by configuration) or to a
/// table inside the embedded database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Table {
    /// Accounts, API keys, webhooks, batch jobs, saved charts, connections.
    Entities,
    /// Quota and usage counters: small, hot, short-lived.
    Counters,
    /// Append-mostly records with an expiry: webhook delivery attempts, cache entries.
    Logs,
    /// Large write-once records, never part of a transaction: batch inputs and result lines.
    /// Apart from the rest so their volume is provisioned, priced and expired on its own, and,
    /// embedded, committed by a writer of its own (their commits never delay a request's write).
    Bulk,
    /// Open WebSocket connections (on AWS: API Gateway's), each with an expiry at the
    /// gateway's lifetime cap; read by the events consumer's fan-out.
    Connections,
}

impl Table {
    pub const ALL: [Table; 5] = [
        Table::Entities,
        Table::Counters,
        Table::Logs,
        Table::Bulk,
        Table::Connections,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Table::Entities => "entities",
            Table::Counters => "counters",
            Table::Logs => "logs",
            Table::Bulk => "bulk",
            Table::Connections => "connections",
        }
    }
}

/// Attribute names the store owns; item attributes may not use them.
pub const RESERVED_ATTRIBUTES: [&str; 5] = ["pk", "sk", "gsi1pk", "gsi1sk", "expires_at"];
/// DynamoDB's item size limit, enforced by both backends so they behave the same.
pub const MAX_ITEM_BYTES: usize = 400 * 1024;
/// DynamoDB's transaction limit is 100; ours is kept small on purpose.
pub const MAX_TRANSACTION_ITEMS: usize = 25;
const MAX_PARTITION_KEY_BYTES: usize = 2048;
const MAX_SORT_KEY_BYTES: usize = 1024;

/// The primary key of an item.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Key {
    pub table: Table,
    pub pk: String,
    pub sk: String,
}

impl Key {
    pub fn new(table: Table, pk: impl Into<String>, sk: impl Into<String>) -> Self {
        Self {
            table,
            pk: pk.into(),
            sk: sk.into(),
        }
    }

    pub(crate) fn validate(&self) -> Result<(), StoreError> {
        validate_key_part("pk", &self.pk, MAX_PARTITION_KEY_BYTES)?;
        validate_key_part("sk", &self.sk, MAX_SORT_KEY_BYTES)
    }
}

/// The key of an item's projection into the secondary index `gsi1`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct IndexKey {
    pub pk: String,
    pub sk: String,
}

impl IndexKey {
    pub fn new(pk: impl Into<String>, sk: impl Into<String>) -> Self {
        Self {
            pk: pk.into(),
            sk: sk.into(),
        }
    }
}

fn validate_key_part(name: &str, value: &str, max: usize) -> Result<(), StoreError> {
    if value.is_empty() || value.len() > max || value.contains('\0') {
        return Err(StoreError::Invalid(format!(
            "{name} must be 1..={max} bytes without NUL characters"
        )));
    }
    Ok(())
}

#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub key: Key,
    pub index: Option<IndexKey>,
    /// Unix seconds after which the item no longer exists for readers.
    pub expires_at: Option<i64>,
    pub attrs: Map<String, Value>,
}

impl Item {
    pub fn new(key: Key, attrs: Map<String, Value>) -> Self {
        Self {
            key,
            index: None,
            expires_at: None,
            attrs,
        }
    }

    /// Builds an item from any serialisable struct (which must serialise to a JSON object).
    pub fn from_serializable<T: Serialize>(key: Key, value: &T) -> Result<Self, StoreError> {
        match serde_json::to_value(value) {
            Ok(Value::Object(attrs)) => Ok(Self::new(key, attrs)),
            Ok(_) => Err(StoreError::Invalid(
                "item attributes must be a JSON object".into(),
            )),
            Err(err) => Err(StoreError::Invalid(format!("item attributes: {err}"))),
        }
    }

    pub fn with_index(mut self, index: IndexKey) -> Self {
        self.index = Some(index);
        self
    }

    pub fn expiring_at(mut self, unix_seconds: i64) -> Self {
        self.expires_at = Some(unix_seconds);
        self
    }

    /// Deserialises the attributes into a typed value.
    pub fn parse<T: serde::de::DeserializeOwned>(&self) -> Result<T, StoreError> {
        serde_json::from_value(Value::Object(self.attrs.clone())).map_err(|err| {
            StoreError::Backend(format!("stored item {:?} is malformed: {err}", self.key))
        })
    }

    pub fn is_expired(&self, now: i64) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }

    /// The item's size by DynamoDB's rules, on which writes are billed: attribute names plus
    /// values, strings by their UTF-8 length, numbers about a byte per two digits plus one,
    /// booleans and nulls one byte, maps and lists 3 bytes plus a byte per element.
    pub fn billed_bytes(&self) -> usize {
        fn value_bytes(value: &Value) -> usize {
            match value {
                Value::Null | Value::Bool(_) => 1,
                Value::Number(n) => n.to_string().trim_start_matches('-').len().div_ceil(2) + 1,
                Value::String(text) => text.len(),
                Value::Array(items) => 3 + items.iter().map(|v| 1 + value_bytes(v)).sum::<usize>(),
                Value::Object(map) => {
                    3 + map
                        .iter()
                        .map(|(name, v)| 1 + name.len() + value_bytes(v))
                        .sum::<usize>()
                }
            }
        }
        let keys = "pk".len() + self.key.pk.len() + "sk".len() + self.key.sk.len();
        let index = self.index.as_ref().map_or(0, |index| {
            "gsi1pk".len() + index.pk.len() + "gsi1sk".len() + index.sk.len()
        });
        let expiry = self
            .expires_at
            .map_or(0, |at| "expires_at".len() + value_bytes(&Value::from(at)));
        keys + index
            + expiry
            + self
                .attrs
                .iter()
                .map(|(name, value)| name.len() + value_bytes(value))
                .sum::<usize>()
    }

    pub(crate) fn validate(&self) -> Result<(), StoreError> {
        self.key.validate()?;
        if let Some(index) = &self.index {
            validate_key_part("gsi1pk", &index.pk, MAX_PARTITION_KEY_BYTES)?;
            validate_key_part("gsi1sk", &index.sk, MAX_SORT_KEY_BYTES)?;
        }
        if let Some(name) = self
            .attrs
            .keys()
            .find(|name| RESERVED_ATTRIBUTES.contains(&name.as_str()))
        {
            return Err(StoreError::Invalid(format!(
                "attribute name {name:?} is reserved"
            )));
        }
        let size = self.key.pk.len()
            + self.key.sk.len()
            + self.index.as_ref().map_or(0, |i| i.pk.len() + i.sk.len())
            + serde_json::to_vec(&self.attrs).map_or(usize::MAX, |v| v.len());
        if size > MAX_ITEM_BYTES {
            return Err(StoreError::ItemTooLarge {
                bytes: size,
                limit: MAX_ITEM_BYTES,
            });
        }
        Ok(())
    }
}

/// A precondition on the current state of one item. Expired items count as absent.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// The item must not exist.
    NotExists,
    /// The item must exist.
    Exists,
    /// The item must exist and its attribute `field` must equal `value`.
    Equals { field: String, value: Value },
}

impl Condition {
    pub fn equals(field: impl Into<String>, value: impl Into<Value>) -> Self {
        Condition::Equals {
            field: field.into(),
            value: value.into(),
        }
    }

    /// Evaluates the condition against the current (unexpired) item, if any.
    pub fn holds(&self, current: Option<&Item>) -> bool {
        match (self, current) {
            (Condition::NotExists, current) => current.is_none(),
            (Condition::Exists, current) => current.is_some(),
            (Condition::Equals { .. }, None) => false,
            (Condition::Equals { field, value }, Some(item)) => {
                item.attrs.get(field) == Some(value)
            }
        }
    }
}

/// An atomic increment of an integer attribute, refused when it would pass `ceiling`. The same
/// write may add to other counters and set other attributes of the item (unconditionally), so a
/// request's bookkeeping stays one write.
#[derive(Debug, Clone, PartialEq)]
pub struct Increment {
    pub key: Key,
    pub field: String,
    pub by: i64,
    /// The largest value the counter may reach; `None` means unbounded.
    pub ceiling: Option<i64>,
    /// Expiry set on the counter item (creation or update).
    pub expires_at: Option<i64>,
    pub also_add: Vec<(String, i64)>,
    pub also_set: Vec<(String, Value)>,
}

impl Increment {
    pub fn new(key: Key, field: impl Into<String>, by: i64) -> Self {
        Self {
            key,
            field: field.into(),
            by,
            ceiling: None,
            expires_at: None,
            also_add: Vec::new(),
            also_set: Vec::new(),
        }
    }

    pub fn with_ceiling(mut self, ceiling: i64) -> Self {
        self.ceiling = Some(ceiling);
        self
    }

    pub fn expiring_at(mut self, unix_seconds: i64) -> Self {
        self.expires_at = Some(unix_seconds);
        self
    }

    pub fn also_add(mut self, field: impl Into<String>, by: i64) -> Self {
        self.also_add.push((field.into(), by));
        self
    }

    pub fn also_set(mut self, field: impl Into<String>, value: Value) -> Self {
        self.also_set.push((field.into(), value));
        self
    }

    /// Every attribute this write touches, the counter first.
    pub(crate) fn fields(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.field.as_str())
            .chain(self.also_add.iter().map(|(f, _)| f.as_str()))
            .chain(self.also_set.iter().map(|(f, _)| f.as_str()))
    }
}

/// One write inside a transaction.
#[derive(Debug, Clone, PartialEq)]
pub enum WriteOp {
    Put {
        item: Item,
        condition: Option<Condition>,
    },
    Delete {
        key: Key,
        condition: Option<Condition>,
    },
    Check {
        key: Key,
        condition: Condition,
    },
    Increment(Increment),
    /// Removes attributes of a live item, only if each still holds the value given: the source
    /// half of moving counts to another item in one transaction, refused (changing nothing)
    /// when a concurrent write changed any of them.
    RemoveUnchanged {
        key: Key,
        attributes: Vec<(String, Value)>,
    },
}

impl WriteOp {
    pub fn key(&self) -> &Key {
        match self {
            WriteOp::Put { item, .. } => &item.key,
            WriteOp::Delete { key, .. }
            | WriteOp::Check { key, .. }
            | WriteOp::RemoveUnchanged { key, .. } => key,
            WriteOp::Increment(increment) => &increment.key,
        }
    }
}

/// The write units DynamoDB bills a single-item write that turned an item of `before` bytes into
/// one of `after` (0 for absent): one per started KB of the larger, at least one.
pub fn write_units(before: usize, after: usize) -> f64 {
    before.max(after).div_ceil(1024).max(1) as f64
}

/// Which partition to query: a table's partition key or the secondary index's.
#[derive(Debug, Clone, PartialEq)]
pub enum Partition {
    Table(String),
    Index(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub table: Table,
    pub partition: Partition,
    /// Only sort keys starting with this prefix.
    pub sk_prefix: Option<String>,
    pub limit: usize,
    pub cursor: Option<Cursor>,
    /// Newest (largest sort key) first.
    pub descending: bool,
    /// Reflects every write acknowledged before the call (DynamoDB `ConsistentRead`, on the
    /// table only: an index is always eventually consistent). The embedded store always is.
    pub consistent: bool,
}

impl Query {
    pub fn partition(table: Table, pk: impl Into<String>) -> Self {
        Self {
            table,
            partition: Partition::Table(pk.into()),
            sk_prefix: None,
            limit: 100,
            cursor: None,
            descending: false,
            consistent: false,
        }
    }

    pub fn index(table: Table, gsi1pk: impl Into<String>) -> Self {
        Self {
            partition: Partition::Index(gsi1pk.into()),
            ..Self::partition(table, String::new())
        }
    }

    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.sk_prefix = Some(prefix.into());
        self
    }

    pub fn with_limit(mut self, limit: usize) -> Self {
        self.limit = limit;
        self
    }

    pub fn after(mut self, cursor: Option<Cursor>) -> Self {
        self.cursor = cursor;
        self
    }

    pub fn descending(mut self) -> Self {
        self.descending = true;
        self
    }

    /// A strongly consistent query (twice the read units); not on the index.
    pub fn consistent(mut self) -> Self {
        self.consistent = true;
        self
    }

    /// What both backends check first: a positive limit, and a cursor from this very partition
    /// (a cursor of another list, even one of the caller's own, is refused, never followed).
    pub(crate) fn validate(&self) -> Result<(), StoreError> {
        if self.limit == 0 {
            return Err(StoreError::Invalid("a query limit is at least 1".into()));
        }
        if self.consistent && matches!(self.partition, Partition::Index(_)) {
            return Err(StoreError::Invalid(
                "a query on the index cannot be strongly consistent".into(),
            ));
        }
        let Some(cursor) = &self.cursor else {
            return Ok(());
        };
        let same_partition = match &self.partition {
            Partition::Table(pk) => cursor.pk == *pk && cursor.index.is_none(),
            Partition::Index(pk) => cursor.index.as_ref().is_some_and(|index| index.pk == *pk),
        };
        if same_partition {
            Ok(())
        } else {
            Err(StoreError::InvalidCursor)
        }
    }
}

/// A pagination position: the last item returned. It reaches the API only sealed
/// ([`CursorSeal`]), the same way on both backends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    pub pk: String,
    pub sk: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<IndexKey>,
}

/// Seals cursors for the API: opaque and tamper-evident. A sealed cursor is
/// `base64url(tag ‖ ciphertext)`, where `tag` is the first 16 bytes of HMAC-SHA256 of the
/// cursor's JSON under one derived key and the ciphertext is the JSON XORed with an
/// HMAC-SHA256 keystream (under another) seeded by the tag — a deterministic, SIV-style
/// authenticated encryption. Changing any byte fails the tag: a forged cursor is refused before
/// it reaches a store, and nobody can read or build store keys from one.
#[derive(Clone)]
pub struct CursorSeal {
    tag_key: [u8; 32],
    stream_key: [u8; 32],
}

const CURSOR_TAG_BYTES: usize = 16;

impl CursorSeal {
    /// Keys derived from `secret` (the key pepper: the same in every container and function).
    pub fn new(secret: &[u8]) -> Self {
        Self {
            tag_key: prf(secret, &[b"orrery cursor tag v1"]),
            stream_key: prf(secret, &[b"orrery cursor stream v1"]),
        }
    }

    pub fn seal(&self, cursor: &Cursor) -> String {
        let json = serde_json::to_vec(cursor).unwrap_or_default();
        let tag = &prf(&self.tag_key, &[&json])[..CURSOR_TAG_BYTES];
        let mut sealed = tag.to_vec();
        sealed.extend(self.xor_stream(tag, &json));
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sealed)
    }

    pub fn open(&self, text: &str) -> Result<Cursor, StoreError> {
        let sealed = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(text)
            .map_err(|_| StoreError::InvalidCursor)?;
        if sealed.len() <= CURSOR_TAG_BYTES || sealed.len() > 4096 {
            return Err(StoreError::InvalidCursor);
        }
        let (tag, ciphertext) = sealed.split_at(CURSOR_TAG_BYTES);
        let json = self.xor_stream(tag, ciphertext);
        let mut mac = <hmac::Hmac<sha2::Sha256> as hmac::Mac>::new_from_slice(&self.tag_key)
            .map_err(|_| StoreError::InvalidCursor)?;
        hmac::Mac::update(&mut mac, &json);
        hmac::Mac::verify_truncated_left(mac, tag).map_err(|_| StoreError::InvalidCursor)?;
        serde_json::from_slice(&json).map_err(|_| StoreError::InvalidCursor)
    }

    fn xor_stream(&self, tag: &[u8], data: &[u8]) -> Vec<u8> {
        data.chunks(32)
            .enumerate()
            .flat_map(|(block, chunk)| {
                let pad = prf(&self.stream_key, &[tag, &(block as u64).to_be_bytes()]);
                chunk
                    .iter()
                    .zip(pad)
                    .map(|(byte, pad)| byte ^ pad)
                    .collect::<Vec<_>>()
            })
            .collect()
    }
}

/// HMAC-SHA256 of the concatenated `parts` under `key`.
fn prf(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    use hmac::Mac as _;
    #[allow(clippy::expect_used)]
    let mut mac =
        hmac::Hmac::<sha2::Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

impl Cursor {
    pub fn of(item: &Item, partition: &Partition) -> Self {
        Self {
            pk: item.key.pk.clone(),
            sk: item.key.sk.clone(),
            index: match partition {
                Partition::Index(_) => item.index.clone(),
                Partition::Table(_) => None,
            },
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub items: Vec<Item>,
    pub next: Option<Cursor>,
}

impl Page {
    /// The page's items as typed records, with the cursor of the next page.
    pub fn parse<T: serde::de::DeserializeOwned>(
        self,
    ) -> Result<(Vec<T>, Option<Cursor>), StoreError> {
        let items = self
            .items
            .iter()
            .map(Item::parse)
            .collect::<Result<Vec<T>, _>>()?;
        Ok((items, self.next))
    }

    /// Backends fetch `limit + 1` live items; the extra one only says that a next page exists.
    pub(crate) fn from_lookahead(mut items: Vec<Item>, query: &Query) -> Self {
        let next = if items.len() > query.limit {
            items.truncate(query.limit);
            items.last().map(|last| Cursor::of(last, &query.partition))
        } else {
            None
        };
        Self { items, next }
    }
}

#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum StoreError {
    #[error("the condition on the item was not met")]
    ConditionFailed,
    #[error("the counter is at {current}; adding would pass its ceiling of {ceiling}")]
    LimitExceeded { current: i64, ceiling: i64 },
    /// Operation indexes whose condition failed; nothing was written.
    #[error("transaction cancelled: conditions failed for operations {failed:?}")]
    TransactionCanceled { failed: Vec<usize> },
    #[error("invalid pagination cursor")]
    InvalidCursor,
    #[error("item is {bytes} bytes; the limit is {limit}")]
    ItemTooLarge { bytes: usize, limit: usize },
    #[error("invalid store request: {0}")]
    Invalid(String),
    /// DynamoDB refused the request for throughput (an item, partition or table over its
    /// rate, after the client's retries).
    #[error("store throttled: {0}")]
    Throttled(String),
    #[error("store backend error: {0}")]
    Backend(String),
}

/// The document store. All reads are eventually consistent unless stated; the conditional
/// operations are atomic per item (transactions across items).
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// The item, unless absent or expired (eventually consistent).
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError>;
    /// The item, reflecting every write acknowledged before the call (strongly consistent).
    async fn get_consistent(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        self.get(key).await
    }
    async fn put(&self, item: Item, condition: Option<Condition>) -> Result<(), StoreError>;
    /// Deletes and returns the previous (unexpired) item, if any.
    async fn delete(
        &self,
        key: &Key,
        condition: Option<Condition>,
    ) -> Result<Option<Item>, StoreError>;
    /// Adds `by` to an integer attribute, creating the item at 0 first; fails with
    /// [`StoreError::LimitExceeded`] (changing nothing) when the result would pass the ceiling.
    /// Returns the new value.
    async fn increment(&self, increment: Increment) -> Result<i64, StoreError>;
    /// [`Store::increment`], also saying how many write units it was billed (DynamoDB's consumed
    /// capacity; the embedded store applies [`write_units`] to its items), so a caller notices an
    /// item that grew past 1 KB. Stores that cannot tell say 1.
    async fn increment_billed(&self, increment: Increment) -> Result<(i64, f64), StoreError> {
        Ok((self.increment(increment).await?, 1.0))
    }
    /// Writes many items unconditionally, each durable on return but not atomically together
    /// (DynamoDB `BatchWriteItem`, 25 a request; one group commit embedded). For bulk output
    /// whose keys are deterministic, so a repeated write is an overwrite, never a duplicate.
    async fn put_many(&self, items: Vec<Item>) -> Result<(), StoreError> {
        for item in items {
            self.put(item, None).await?;
        }
        Ok(())
    }
    /// All or nothing; at most [`MAX_TRANSACTION_ITEMS`] operations on distinct items.
    async fn transact(&self, ops: Vec<WriteOp>) -> Result<(), StoreError>;
    /// One page of a partition, in sort-key order (index order for index queries); expired
    /// items are skipped.
    async fn query(&self, query: Query) -> Result<Page, StoreError>;
    /// The name of the backend, for `/health`.
    fn backend(&self) -> &'static str;
}

pub(crate) fn validate_transaction(ops: &[WriteOp]) -> Result<(), StoreError> {
    if ops.is_empty() || ops.len() > MAX_TRANSACTION_ITEMS {
        return Err(StoreError::Invalid(format!(
            "a transaction holds 1..={MAX_TRANSACTION_ITEMS} operations"
        )));
    }
    let mut keys = std::collections::HashSet::new();
    for op in ops {
        if op.key().table == Table::Bulk {
            return Err(StoreError::Invalid(
                "bulk items are written on their own, never in a transaction".into(),
            ));
        }
        if !keys.insert(op.key()) {
            return Err(StoreError::Invalid(
                "a transaction may touch each item once".into(),
            ));
        }
        match op {
            WriteOp::Put { item, .. } => item.validate()?,
            WriteOp::Increment(increment) => validate_increment(increment)?,
            WriteOp::RemoveUnchanged { key, attributes } => {
                key.validate()?;
                if attributes.is_empty()
                    || attributes
                        .iter()
                        .any(|(name, _)| RESERVED_ATTRIBUTES.contains(&name.as_str()))
                {
                    return Err(StoreError::Invalid(
                        "a removal names one or more attributes, none of them a key or the expiry"
                            .into(),
                    ));
                }
            }
            other => other.key().validate()?,
        }
    }
    Ok(())
}

pub(crate) fn validate_increment(increment: &Increment) -> Result<(), StoreError> {
    increment.key.validate()?;
    let mut seen = std::collections::HashSet::new();
    for field in increment.fields() {
        if RESERVED_ATTRIBUTES.contains(&field) || field.is_empty() {
            return Err(StoreError::Invalid(format!(
                "attribute name {field:?} is reserved or empty"
            )));
        }
        if !seen.insert(field) {
            return Err(StoreError::Invalid(format!(
                "attribute {field:?} appears twice in one increment"
            )));
        }
    }
    Ok(())
}

/// Applies an increment to the current counter value, honouring the ceiling.
pub fn next_counter_value(current: i64, increment: &Increment) -> Result<i64, StoreError> {
    let next = current.saturating_add(increment.by);
    match increment.ceiling {
        Some(ceiling) if next > ceiling => Err(StoreError::LimitExceeded { current, ceiling }),
        _ => Ok(next),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn billed_sizes_follow_dynamodbs_rules() {
        let mut attrs = Map::new();
        attrs.insert("count".into(), json!(12345));
        attrs.insert("name".into(), json!("Ada"));
        attrs.insert("ok".into(), json!(true));
        let item = Item::new(Key::new(Table::Counters, "ACCT#a", "QUOTA#d#c"), attrs);
        // pk + "ACCT#a", sk + "QUOTA#d#c", count + 3 (5 digits), name + 3, ok + 1.
        assert_eq!(item.billed_bytes(), 2 + 6 + 2 + 9 + 5 + 4 + 4 + 3 + 2 + 1);
        assert_eq!(write_units(0, 10), 1.0);
        assert_eq!(write_units(1024, 900), 1.0);
        assert_eq!(write_units(1025, 900), 2.0);
        assert_eq!(write_units(100, 2100), 3.0);
    }
    use serde_json::json;

    fn item(attrs: Value) -> Item {
        let Value::Object(attrs) = attrs else {
            unreachable!()
        };
        Item::new(Key::new(Table::Entities, "p", "s"), attrs)
    }

    #[test]
    fn conditions_evaluate_against_current_item() {
        let current = item(json!({"status": "active"}));
        assert!(Condition::NotExists.holds(None));
        assert!(!Condition::NotExists.holds(Some(&current)));
        assert!(Condition::Exists.holds(Some(&current)));
        assert!(Condition::equals("status", "active").holds(Some(&current)));
        assert!(!Condition::equals("status", "revoked").holds(Some(&current)));
        assert!(!Condition::equals("status", "active").holds(None));
    }

    #[test]
    fn counter_respects_ceiling() {
        let inc = Increment::new(Key::new(Table::Counters, "a", "b"), "count", 1).with_ceiling(2);
        assert_eq!(next_counter_value(1, &inc), Ok(2));
        assert_eq!(
            next_counter_value(2, &inc),
            Err(StoreError::LimitExceeded {
                current: 2,
                ceiling: 2
            })
        );
    }

    #[test]
    fn items_reject_reserved_names_and_oversize() {
        assert!(matches!(
            item(json!({"pk": 1})).validate(),
            Err(StoreError::Invalid(_))
        ));
        let big = "x".repeat(MAX_ITEM_BYTES);
        assert!(matches!(
            item(json!({ "blob": big })).validate(),
            Err(StoreError::ItemTooLarge { .. })
        ));
        assert!(item(json!({"ok": true})).validate().is_ok());
    }

    #[test]
    fn cursor_round_trips_and_rejects_garbage() {
        let cursor = Cursor {
            pk: "p".into(),
            sk: "s".into(),
            index: Some(IndexKey::new("g", "h")),
        };
        let seal = CursorSeal::new(b"pepper");
        let sealed = seal.seal(&cursor);
        assert_eq!(seal.open(&sealed), Ok(cursor.clone()));
        assert_eq!(seal.open("not a cursor"), Err(StoreError::InvalidCursor));
        // Opaque: neither the JSON nor the store keys can be read from it.
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(&sealed)
            .expect("base64url");
        assert!(
            !String::from_utf8_lossy(&bytes).contains("\"pk\""),
            "{sealed}"
        );
        // Tamper-evident: every flipped bit is refused, and so is another secret's cursor.
        for position in 0..bytes.len() {
            let mut forged = bytes.clone();
            forged[position] ^= 1;
            let forged = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(forged);
            assert_eq!(
                seal.open(&forged),
                Err(StoreError::InvalidCursor),
                "byte {position}"
            );
        }
        assert_eq!(
            CursorSeal::new(b"other").open(&sealed),
            Err(StoreError::InvalidCursor)
        );
        // The readable cursors of before are refused too.
        let old = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(serde_json::to_vec(&cursor).expect("json"));
        assert_eq!(seal.open(&old), Err(StoreError::InvalidCursor));
    }
}
