//! The [`Store`] on the embedded engine (`crate::embedded`): items as JSON under `pk \0 sk` in
//! one redb table per store table, a second redb table per secondary index, conditions checked
//! inside the writer's group transaction.

use std::ops::Bound;

use async_trait::async_trait;
use redb::{ReadableTable, WriteTransaction};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::clock;
use crate::embedded::*;
use crate::store::{
    self, Condition, Cursor, Increment, IndexKey, Item, Key, Page, Partition, Query, Store,
    StoreError, Table, WriteOp,
};

fn index_entry_key(index: &IndexKey, key: &Key) -> Vec<u8> {
    let mut entry = item_key(&index.pk, &index.sk);
    entry.push(0);
    entry.extend_from_slice(&item_key(&key.pk, &key.sk));
    entry
}

/// Splits an index entry back into the item's (pk, sk); keys never contain NUL.
fn split_index_entry(entry: &[u8]) -> Option<(String, String, String, String)> {
    let mut parts = entry
        .split(|b| *b == 0)
        .map(|p| String::from_utf8(p.to_vec()).ok());
    Some((
        parts.next()??,
        parts.next()??,
        parts.next()??,
        parts.next()??,
    ))
}

#[derive(Serialize, Deserialize)]
struct StoredItem {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    index: Option<IndexKey>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expires_at: Option<i64>,
    attrs: Map<String, Value>,
}

fn decode_item(key: Key, bytes: &[u8]) -> Result<Item, StoreError> {
    let stored: StoredItem = serde_json::from_slice(bytes).map_err(backend)?;
    Ok(Item {
        key,
        index: stored.index,
        expires_at: stored.expires_at,
        attrs: stored.attrs,
    })
}

fn encode_item(item: &Item) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(&StoredItem {
        index: item.index.clone(),
        expires_at: item.expires_at,
        attrs: item.attrs.clone(),
    })
    .map_err(backend)
}

/// Reads an unexpired item inside a write transaction.
fn current_item(txn: &WriteTransaction, key: &Key, now: i64) -> Result<Option<Item>, StoreError> {
    let table = txn.open_table(tables(key.table).0).map_err(backend)?;
    let found = table
        .get(item_key(&key.pk, &key.sk).as_slice())
        .map_err(backend)?;
    match found {
        Some(bytes) => {
            let item = decode_item(key.clone(), bytes.value())?;
            Ok((!item.is_expired(now)).then_some(item))
        }
        None => Ok(None),
    }
}

fn write_item(txn: &WriteTransaction, item: &Item) -> Result<(), StoreError> {
    remove_item(txn, &item.key)?;
    let (items, index) = tables(item.key.table);
    let bytes = encode_item(item)?;
    txn.open_table(items)
        .map_err(backend)?
        .insert(
            item_key(&item.key.pk, &item.key.sk).as_slice(),
            bytes.as_slice(),
        )
        .map_err(backend)?;
    if let Some(index_key) = &item.index {
        txn.open_table(index)
            .map_err(backend)?
            .insert(index_entry_key(index_key, &item.key).as_slice(), ())
            .map_err(backend)?;
    }
    Ok(())
}

/// Removes an item (expired or not) and its index entry; returns it.
fn remove_item(txn: &WriteTransaction, key: &Key) -> Result<Option<Item>, StoreError> {
    let (items, index) = tables(key.table);
    let previous = {
        let mut table = txn.open_table(items).map_err(backend)?;
        let removed = table
            .remove(item_key(&key.pk, &key.sk).as_slice())
            .map_err(backend)?;
        match removed {
            Some(bytes) => Some(decode_item(key.clone(), bytes.value())?),
            None => None,
        }
    };
    if let Some(index_key) = previous.as_ref().and_then(|item| item.index.as_ref()) {
        txn.open_table(index)
            .map_err(backend)?
            .remove(index_entry_key(index_key, key).as_slice())
            .map_err(backend)?;
    }
    Ok(previous)
}

fn counter_value(item: Option<&Item>, field: &str) -> Result<i64, StoreError> {
    match item.and_then(|item| item.attrs.get(field)) {
        None => Ok(0),
        Some(value) => value.as_i64().ok_or_else(|| {
            StoreError::Invalid(format!("attribute {field:?} is not an integer counter"))
        }),
    }
}

/// Applies an increment; the caller has checked nothing yet.
/// Applies an increment: the new value and the write units it would be billed on DynamoDB.
fn apply_increment(
    txn: &WriteTransaction,
    increment: &Increment,
    now: i64,
) -> Result<(i64, f64), StoreError> {
    let current = current_item(txn, &increment.key, now)?;
    let before = current.as_ref().map_or(0, Item::billed_bytes);
    let next = store::next_counter_value(
        counter_value(current.as_ref(), &increment.field)?,
        increment,
    )?;
    let mut item = current.unwrap_or_else(|| Item::new(increment.key.clone(), Map::new()));
    item.attrs
        .insert(increment.field.clone(), Value::from(next));
    for (field, by) in &increment.also_add {
        let value = counter_value(Some(&item), field)?.saturating_add(*by);
        item.attrs.insert(field.clone(), Value::from(value));
    }
    for (field, value) in &increment.also_set {
        item.attrs.insert(field.clone(), value.clone());
    }
    if increment.expires_at.is_some() {
        item.expires_at = increment.expires_at;
    }
    write_item(txn, &item)?;
    Ok((next, store::write_units(before, item.billed_bytes())))
}

fn check(condition: Option<&Condition>, current: Option<&Item>) -> Result<(), StoreError> {
    match condition {
        Some(condition) if !condition.holds(current) => Err(StoreError::ConditionFailed),
        _ => Ok(()),
    }
}

/// The embedded [`Store`].
#[derive(Clone)]
pub struct EmbeddedStore {
    db: EmbeddedDb,
}

impl EmbeddedStore {
    pub fn new(db: EmbeddedDb) -> Self {
        Self { db }
    }

    fn read_item(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        let now = clock::now_unix();
        self.db.read_in(key.table, |txn| {
            let table = txn.open_table(tables(key.table).0).map_err(backend)?;
            match table
                .get(item_key(&key.pk, &key.sk).as_slice())
                .map_err(backend)?
            {
                Some(bytes) => {
                    let item = decode_item(key.clone(), bytes.value())?;
                    Ok((!item.is_expired(now)).then_some(item))
                }
                None => Ok(None),
            }
        })
    }

    fn query_table(&self, query: &Query, pk: &str) -> Result<Page, StoreError> {
        let now = clock::now_unix();
        let prefix = item_key(pk, query.sk_prefix.as_deref().unwrap_or(""));
        let mut upper = prefix.clone();
        upper.push(0xFF); // never part of UTF-8, so above every key with this prefix
        let cursor_key = query.cursor.as_ref().map(|c| item_key(&c.pk, &c.sk));
        let (lower, upper) = bounds(&prefix, &upper, cursor_key.as_deref(), query.descending);
        self.db.read_in(query.table, |txn| {
            let table = txn.open_table(tables(query.table).0).map_err(backend)?;
            let range = table.range::<&[u8]>((lower, upper)).map_err(backend)?;
            let mut items = Vec::new();
            let iter: Box<dyn Iterator<Item = _>> = if query.descending {
                Box::new(range.rev())
            } else {
                Box::new(range)
            };
            for entry in iter {
                let (key, value) = entry.map_err(backend)?;
                let key_bytes = key.value();
                let split = key_bytes
                    .iter()
                    .position(|b| *b == 0)
                    .unwrap_or(key_bytes.len());
                let item_key = Key::new(
                    query.table,
                    String::from_utf8_lossy(&key_bytes[..split]).into_owned(),
                    String::from_utf8_lossy(key_bytes.get(split + 1..).unwrap_or_default())
                        .into_owned(),
                );
                let item = decode_item(item_key, value.value())?;
                if item.is_expired(now) {
                    continue;
                }
                items.push(item);
                if items.len() > query.limit {
                    break;
                }
            }
            Ok(Page::from_lookahead(items, query))
        })
    }

    fn query_index(&self, query: &Query, gsi1pk: &str) -> Result<Page, StoreError> {
        let now = clock::now_unix();
        let prefix = item_key(gsi1pk, query.sk_prefix.as_deref().unwrap_or(""));
        let mut upper = prefix.clone();
        upper.push(0xFF);
        let cursor_key = match &query.cursor {
            Some(Cursor {
                pk,
                sk,
                index: Some(index),
            }) => Some(index_entry_key(
                index,
                &Key::new(query.table, pk.clone(), sk.clone()),
            )),
            Some(_) => return Err(StoreError::InvalidCursor),
            None => None,
        };
        let (lower, upper) = bounds(&prefix, &upper, cursor_key.as_deref(), query.descending);
        self.db.read_in(query.table, |txn| {
            let (items_def, index_def) = tables(query.table);
            let index = txn.open_table(index_def).map_err(backend)?;
            let items_table = txn.open_table(items_def).map_err(backend)?;
            let range = index.range::<&[u8]>((lower, upper)).map_err(backend)?;
            let iter: Box<dyn Iterator<Item = _>> = if query.descending {
                Box::new(range.rev())
            } else {
                Box::new(range)
            };
            let mut items = Vec::new();
            for entry in iter {
                let (entry, ()) = entry.map_err(backend).map(|(k, v)| (k, v.value()))?;
                let Some((_, _, pk, sk)) = split_index_entry(entry.value()) else {
                    return Err(StoreError::Backend("corrupt index entry".into()));
                };
                let Some(bytes) = items_table
                    .get(item_key(&pk, &sk).as_slice())
                    .map_err(backend)?
                else {
                    continue;
                };
                let item = decode_item(Key::new(query.table, pk, sk), bytes.value())?;
                if item.is_expired(now) {
                    continue;
                }
                items.push(item);
                if items.len() > query.limit {
                    break;
                }
            }
            Ok(Page::from_lookahead(items, query))
        })
    }
}

/// The scan bounds for a prefix, resuming after (or before, descending) the cursor.
fn bounds<'a>(
    prefix: &'a [u8],
    upper: &'a [u8],
    cursor: Option<&'a [u8]>,
    descending: bool,
) -> (Bound<&'a [u8]>, Bound<&'a [u8]>) {
    match (cursor, descending) {
        (None, _) => (Bound::Included(prefix), Bound::Excluded(upper)),
        (Some(cursor), false) => (Bound::Excluded(cursor.max(prefix)), Bound::Excluded(upper)),
        (Some(cursor), true) => (Bound::Included(prefix), Bound::Excluded(cursor.min(upper))),
    }
}

/// The size of one commit of a bulk write (see `put_many`).
const BULK_COMMIT_BYTES: usize = 64 * 1024;

/// About how many bytes a value stores as (strings dominate: result lines).
fn approximate_size(value: &serde_json::Value) -> usize {
    match value {
        serde_json::Value::String(text) => text.len(),
        serde_json::Value::Array(values) => values.iter().map(approximate_size).sum(),
        serde_json::Value::Object(map) => map
            .iter()
            .map(|(key, value)| key.len() + approximate_size(value))
            .sum(),
        _ => 8,
    }
}

#[async_trait]
impl Store for EmbeddedStore {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        key.validate()?;
        self.read_item(key)
    }

    async fn put(&self, item: Item, condition: Option<Condition>) -> Result<(), StoreError> {
        item.validate()?;
        self.db
            .write_in(item.key.table, move |txn| {
                let now = clock::now_unix();
                check(
                    condition.as_ref(),
                    current_item(txn, &item.key, now)?.as_ref(),
                )?;
                write_item(txn, &item)
            })
            .await
    }

    async fn put_many(&self, items: Vec<Item>) -> Result<(), StoreError> {
        for item in &items {
            item.validate()?;
        }
        // Written in commits of about `BULK_COMMIT_BYTES`, one after another, each in the file
        // of its table: a request's small write queued meanwhile waits for one piece at most.
        let mut pieces: Vec<(Table, Vec<Item>)> = Vec::new();
        let mut bytes = usize::MAX;
        for item in items {
            let size = item.attrs.values().map(approximate_size).sum::<usize>();
            let table = item.key.table;
            let same_file = |other: Table| (other == Table::Bulk) == (table == Table::Bulk);
            match pieces.last_mut() {
                Some((of, piece))
                    if same_file(*of) && bytes.saturating_add(size) <= BULK_COMMIT_BYTES =>
                {
                    piece.push(item);
                    bytes += size;
                }
                _ => {
                    pieces.push((table, vec![item]));
                    bytes = size;
                }
            }
        }
        for (table, piece) in pieces {
            self.db
                .write_in(table, move |txn| {
                    for item in &piece {
                        write_item(txn, item)?;
                    }
                    Ok(())
                })
                .await?;
        }
        Ok(())
    }

    async fn delete(
        &self,
        key: &Key,
        condition: Option<Condition>,
    ) -> Result<Option<Item>, StoreError> {
        key.validate()?;
        let key = key.clone();
        self.db
            .write_in(key.table, move |txn| {
                let now = clock::now_unix();
                let current = current_item(txn, &key, now)?;
                check(condition.as_ref(), current.as_ref())?;
                remove_item(txn, &key)?;
                Ok(current)
            })
            .await
    }

    async fn increment(&self, increment: Increment) -> Result<i64, StoreError> {
        Ok(self.increment_billed(increment).await?.0)
    }

    async fn increment_billed(&self, increment: Increment) -> Result<(i64, f64), StoreError> {
        store::validate_increment(&increment)?;
        self.db
            .write_in(increment.key.table, move |txn| {
                apply_increment(txn, &increment, clock::now_unix())
            })
            .await
    }

    async fn transact(&self, ops: Vec<WriteOp>) -> Result<(), StoreError> {
        store::validate_transaction(&ops)?;
        self.db
            .write(move |txn| {
                let now = clock::now_unix();
                // Check every condition first: a refused transaction writes nothing.
                let mut failed = Vec::new();
                for (position, op) in ops.iter().enumerate() {
                    let current = current_item(txn, op.key(), now)?;
                    let holds = match op {
                        WriteOp::Put { condition, .. } | WriteOp::Delete { condition, .. } => {
                            check(condition.as_ref(), current.as_ref()).is_ok()
                        }
                        WriteOp::Check { condition, .. } => condition.holds(current.as_ref()),
                        WriteOp::RemoveUnchanged { attributes, .. } => {
                            current.as_ref().is_some_and(|item| {
                                attributes
                                    .iter()
                                    .all(|(name, value)| item.attrs.get(name) == Some(value))
                            })
                        }
                        WriteOp::Increment(increment) => {
                            counter_value(current.as_ref(), &increment.field)
                                .and_then(|value| store::next_counter_value(value, increment))
                                .is_ok()
                                && increment.also_add.iter().all(|(field, _)| {
                                    counter_value(current.as_ref(), field).is_ok()
                                })
                        }
                    };
                    if !holds {
                        failed.push(position);
                    }
                }
                if !failed.is_empty() {
                    return Err(StoreError::TransactionCanceled { failed });
                }
                // Past the checks, any error is a storage failure: it aborts the whole group
                // commit, so no transaction is ever half applied.
                let apply = |op: &WriteOp| -> Result<(), StoreError> {
                    match op {
                        WriteOp::Put { item, .. } => write_item(txn, item),
                        WriteOp::Delete { key, .. } => remove_item(txn, key).map(drop),
                        WriteOp::Check { .. } => Ok(()),
                        WriteOp::Increment(increment) => {
                            apply_increment(txn, increment, now).map(drop)
                        }
                        WriteOp::RemoveUnchanged { key, attributes } => {
                            let Some(mut item) = current_item(txn, key, now)? else {
                                return Ok(());
                            };
                            for (name, _) in attributes {
                                item.attrs.remove(name);
                            }
                            write_item(txn, &item)
                        }
                    }
                };
                for op in &ops {
                    apply(op).map_err(|err| {
                        StoreError::Backend(format!("transaction apply failed: {err}"))
                    })?;
                }
                Ok(())
            })
            .await
    }

    async fn query(&self, query: Query) -> Result<Page, StoreError> {
        query.validate()?;
        match &query.partition {
            Partition::Table(pk) => self.query_table(&query, pk),
            Partition::Index(gsi1pk) => self.query_index(&query, gsi1pk),
        }
    }

    fn backend(&self) -> &'static str {
        "embedded"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Table;
    use serde_json::json;

    #[tokio::test]
    async fn a_transaction_failing_while_applying_leaves_no_trace() {
        let store = EmbeddedStore::new(EmbeddedDb::in_memory().unwrap());
        let counter = Key::new(Table::Counters, "a", "counter");
        let mut attrs = Map::new();
        attrs.insert("count".into(), json!(1));
        attrs.insert("key#x".into(), json!("not a number"));
        store
            .put(Item::new(counter.clone(), attrs), None)
            .await
            .unwrap();
        let other = Item::new(Key::new(Table::Entities, "a", "other"), Map::new());
        let result = store
            .transact(vec![
                WriteOp::Put {
                    item: other.clone(),
                    condition: None,
                },
                WriteOp::Increment(Increment::new(counter, "count", 1).also_add("key#x", 1)),
            ])
            .await;
        assert!(result.is_err());
        assert_eq!(
            store.get(&other.key).await.unwrap(),
            None,
            "the put of the failed transaction was not committed"
        );
    }
}
