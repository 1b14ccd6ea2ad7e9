//! The store's behavioural suite, identical for DynamoDB (on moto and on DynamoDB Local) and the
//! embedded store.

use std::sync::Arc;

use orrery::clock;
use orrery::store::{
    Condition, Increment, IndexKey, Item, Key, Query, Store, StoreError, Table, WriteOp,
};
use orrery_tests::Backend;
use serde_json::{Value, json};

on_every_store!(
    round_trips_items_and_attribute_types,
    conditional_put_conflict_is_a_typed_error,
    conditional_delete_and_equals_conditions,
    fifty_concurrent_increments_against_a_ceiling_of_twenty_admit_exactly_twenty,
    increments_create_count_and_refuse_past_the_ceiling,
    one_increment_also_adds_and_sets_other_attributes,
    expired_items_are_not_returned,
    expired_counters_restart,
    transactions_are_all_or_nothing,
    queries_paginate_a_partition_with_prefix_and_order,
    queries_by_secondary_index_paginate,
    invalid_cursors_are_refused,
    oversized_items_are_refused,
    bulk_writes_land_whole_and_never_join_a_transaction,
);

fn attrs(value: Value) -> serde_json::Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => panic!("attributes must be an object"),
    }
}

fn entity(pk: &str, sk: &str, value: Value) -> Item {
    Item::new(Key::new(Table::Entities, pk, sk), attrs(value))
}

async fn round_trips_items_and_attribute_types(kind: Backend) {
    let backend = orrery_tests::backend(kind).await;
    let store = &backend.app.store;
    let value = json!({
        "name": "Ada", "count": 42, "ratio": 0.25, "negative": -7, "active": true, "nothing": null,
        "tags": ["a", "b"], "nested": {"deep": {"x": 1}}, "empty": ""
    });
    let item = entity("acct#1", "profile", value.clone())
        .with_index(IndexKey::new("email#ada", "acct#1"))
        .expiring_at(clock::now_unix() + 3600);
    store.put(item.clone(), None).await.unwrap();
    let read = store.get(&item.key).await.unwrap().expect("item exists");
    assert_eq!(read, item);
    assert_eq!(Value::Object(read.attrs), value);

    let deleted = store.delete(&item.key, None).await.unwrap();
    assert_eq!(deleted.map(|i| i.key), Some(item.key.clone()));
    assert_eq!(store.get(&item.key).await.unwrap(), None);
    assert_eq!(
        store.delete(&item.key, None).await.unwrap(),
        None,
        "deleting twice is not an error"
    );
}

async fn conditional_put_conflict_is_a_typed_error(kind: Backend) {
    let backend = orrery_tests::backend(kind).await;
    let store = &backend.app.store;
    let item = entity("acct#2", "key#1", json!({"status": "active"}));
    store
        .put(item.clone(), Some(Condition::NotExists))
        .await
        .unwrap();
    let conflict = store.put(item.clone(), Some(Condition::NotExists)).await;
    assert_eq!(conflict, Err(StoreError::ConditionFailed));

    let missing = entity("acct#2", "key#missing", json!({}));
    assert_eq!(
        store.put(missing, Some(Condition::Exists)).await,
        Err(StoreError::ConditionFailed)
    );
}

async fn conditional_delete_and_equals_conditions(kind: Backend) {
    let backend = orrery_tests::backend(kind).await;
    let store = &backend.app.store;
    let item = entity("acct#3", "key#1", json!({"status": "active", "version": 1}));
    store.put(item.clone(), None).await.unwrap();

    let stale = entity(
        "acct#3",
        "key#1",
        json!({"status": "revoked", "version": 2}),
    );
    assert_eq!(
        store
            .put(stale.clone(), Some(Condition::equals("version", 0)))
            .await,
        Err(StoreError::ConditionFailed)
    );
    store
        .put(stale, Some(Condition::equals("version", 1)))
        .await
        .unwrap();

    let refused = store
        .delete(&item.key, Some(Condition::equals("status", "active")))
        .await;
    assert_eq!(refused, Err(StoreError::ConditionFailed));
    assert!(
        store.get(&item.key).await.unwrap().is_some(),
        "a refused delete deletes nothing"
    );
    let deleted = store
        .delete(&item.key, Some(Condition::equals("status", "revoked")))
        .await
        .unwrap();
    assert_eq!(deleted.unwrap().attrs["version"], json!(2));
}

fn counter(sk: &str, ceiling: Option<i64>) -> Increment {
    let increment = Increment::new(Key::new(Table::Counters, "acct#4", sk), "count", 1)
        .expiring_at(clock::now_unix() + 86_400);
    match ceiling {
        Some(ceiling) => increment.with_ceiling(ceiling),
        None => increment,
    }
}

async fn fifty_concurrent_increments_against_a_ceiling_of_twenty_admit_exactly_twenty(
    kind: Backend,
) {
    let backend = orrery_tests::backend(kind).await;
    let store: Arc<dyn Store> = backend.app.store.clone();
    let increment = counter("charts#2026-11-29", Some(20));
    let attempts: Vec<_> = (0..50)
        .map(|_| {
            let (store, increment) = (store.clone(), increment.clone());
            tokio::spawn(async move { store.increment(increment).await })
        })
        .collect();
    let mut admitted = Vec::new();
    let mut refused = 0;
    for attempt in attempts {
        match attempt.await.unwrap() {
            Ok(value) => admitted.push(value),
            Err(StoreError::LimitExceeded {
                current: 20,
                ceiling: 20,
            }) => refused += 1,
            Err(other) => panic!("unexpected error: {other}"),
        }
    }
    admitted.sort_unstable();
    assert_eq!(
        admitted,
        (1..=20).collect::<Vec<_>>(),
        "each admitted request saw a distinct count"
    );
    assert_eq!(refused, 30);
    let stored = store.get(&increment.key).await.unwrap().unwrap();
    assert_eq!(stored.attrs["count"], json!(20));
}

async fn increments_create_count_and_refuse_past_the_ceiling(kind: Backend) {
    let backend = orrery_tests::backend(kind).await;
    let store = &backend.app.store;
    let mut increment = counter("readings#2026-11-29", Some(10));
    increment.by = 4;
    assert_eq!(store.increment(increment.clone()).await, Ok(4));
    assert_eq!(store.increment(increment.clone()).await, Ok(8));
    assert_eq!(
        store.increment(increment.clone()).await,
        Err(StoreError::LimitExceeded {
            current: 8,
            ceiling: 10
        })
    );
    increment.by = 2;
    assert_eq!(store.increment(increment.clone()).await, Ok(10));
    let unbounded = Increment {
        ceiling: None,
        by: 1000,
        ..counter("usage#2026-11-29", None)
    };
    assert_eq!(store.increment(unbounded).await, Ok(1000));
    let too_big = Increment {
        by: 11,
        ..counter("fresh", Some(10))
    };
    assert_eq!(
        store.increment(too_big).await,
        Err(StoreError::LimitExceeded {
            current: 0,
            ceiling: 10
        })
    );
}

async fn one_increment_also_adds_and_sets_other_attributes(kind: Backend) {
    let backend = orrery_tests::backend(kind).await;
    let store = &backend.app.store;
    let increment = counter("usage-with-keys", Some(3))
        .also_add("key#a", 1)
        .also_set("last#a", json!("2026-11-29T00:00:00Z"));
    assert_eq!(store.increment(increment.clone()).await, Ok(1));
    assert_eq!(
        store
            .increment(increment.clone().also_add("key#b", 5))
            .await,
        Ok(2)
    );
    let item = store.get(&increment.key).await.unwrap().unwrap();
    assert_eq!(item.attrs["key#a"], json!(2));
    assert_eq!(item.attrs["key#b"], json!(5));
    assert_eq!(item.attrs["last#a"], json!("2026-11-29T00:00:00Z"));
    // Refused at the ceiling: nothing of the write applies.
    let full = counter("usage-with-keys", Some(2)).also_add("key#a", 1);
    assert!(matches!(
        store.increment(full).await,
        Err(StoreError::LimitExceeded {
            current: 2,
            ceiling: 2
        })
    ));
    assert_eq!(
        store.get(&increment.key).await.unwrap().unwrap().attrs["key#a"],
        json!(2)
    );
    let twice = counter("x", None).also_add("count", 1);
    assert!(matches!(
        store.increment(twice).await,
        Err(StoreError::Invalid(_))
    ));
}

async fn expired_items_are_not_returned(kind: Backend) {
    let backend = orrery_tests::backend(kind).await;
    let store = &backend.app.store;
    let past = clock::now_unix() - 10;
    let expired = entity("acct#5", "session#old", json!({"v": 1})).expiring_at(past);
    let live =
        entity("acct#5", "session#new", json!({"v": 2})).expiring_at(clock::now_unix() + 3600);
    store.put(expired.clone(), None).await.unwrap();
    store.put(live.clone(), None).await.unwrap();

    assert_eq!(
        store.get(&expired.key).await.unwrap(),
        None,
        "TTL is honoured on read"
    );
    let page = store
        .query(Query::partition(Table::Entities, "acct#5"))
        .await
        .unwrap();
    assert_eq!(
        page.items
            .iter()
            .map(|i| i.key.sk.as_str())
            .collect::<Vec<_>>(),
        ["session#new"]
    );
    // An expired item counts as absent for conditions too.
    store
        .put(
            expired.clone().expiring_at(clock::now_unix() + 60),
            Some(Condition::NotExists),
        )
        .await
        .unwrap();
    assert!(store.get(&expired.key).await.unwrap().is_some());
}

async fn expired_counters_restart(kind: Backend) {
    let backend = orrery_tests::backend(kind).await;
    let store = &backend.app.store;
    let mut increment = counter("expired-counter", Some(5));
    increment.expires_at = Some(clock::now_unix() - 1);
    increment.by = 5;
    // Created already expired: invisible to readers.
    assert_eq!(store.increment(increment.clone()).await, Ok(5));
    assert_eq!(store.get(&increment.key).await.unwrap(), None);
    // The next increment starts from zero instead of hitting the stale ceiling.
    increment.expires_at = Some(clock::now_unix() + 3600);
    increment.by = 1;
    assert_eq!(store.increment(increment.clone()).await, Ok(1));
}

async fn transactions_are_all_or_nothing(kind: Backend) {
    let backend = orrery_tests::backend(kind).await;
    let store = &backend.app.store;
    let existing = entity("acct#6", "key#existing", json!({"status": "active"}));
    store.put(existing.clone(), None).await.unwrap();

    let first = entity("acct#6", "key#a", json!({"n": 1}));
    let second = entity("acct#6", "key#b", json!({"n": 2}));
    let refused = store
        .transact(vec![
            WriteOp::Put {
                item: first.clone(),
                condition: Some(Condition::NotExists),
            },
            WriteOp::Put {
                item: second.clone(),
                condition: None,
            },
            WriteOp::Check {
                key: existing.key.clone(),
                condition: Condition::equals("status", "revoked"),
            },
        ])
        .await;
    assert_eq!(
        refused,
        Err(StoreError::TransactionCanceled { failed: vec![2] })
    );
    assert_eq!(
        store.get(&first.key).await.unwrap(),
        None,
        "nothing written"
    );
    assert_eq!(
        store.get(&second.key).await.unwrap(),
        None,
        "nothing written"
    );

    store
        .transact(vec![
            WriteOp::Put {
                item: first.clone(),
                condition: Some(Condition::NotExists),
            },
            WriteOp::Delete {
                key: existing.key.clone(),
                condition: Some(Condition::Exists),
            },
            WriteOp::Increment(Increment {
                key: Key::new(Table::Counters, "acct#6", "keys"),
                ..counter("x", Some(3))
            }),
        ])
        .await
        .unwrap();
    assert!(store.get(&first.key).await.unwrap().is_some());
    assert_eq!(store.get(&existing.key).await.unwrap(), None);
    let count = store
        .get(&Key::new(Table::Counters, "acct#6", "keys"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(count.attrs["count"], json!(1));

    let over = store
        .transact(vec![WriteOp::Increment(Increment {
            key: Key::new(Table::Counters, "acct#6", "keys"),
            by: 5,
            ..counter("x", Some(3))
        })])
        .await;
    assert_eq!(
        over,
        Err(StoreError::TransactionCanceled { failed: vec![0] })
    );
}

async fn queries_paginate_a_partition_with_prefix_and_order(kind: Backend) {
    let backend = orrery_tests::backend(kind).await;
    let store = &backend.app.store;
    for i in 0..25 {
        store
            .put(
                entity("acct#7", &format!("chart#{i:03}"), json!({"i": i})),
                None,
            )
            .await
            .unwrap();
    }
    store
        .put(entity("acct#7", "key#1", json!({})), None)
        .await
        .unwrap();
    store
        .put(entity("acct#8", "chart#000", json!({})), None)
        .await
        .unwrap();

    let mut seen = Vec::new();
    let mut cursor = None;
    let mut pages = 0;
    let seal = orrery::store::CursorSeal::new(b"pepper");
    loop {
        let page = store
            .query(
                Query::partition(Table::Entities, "acct#7")
                    .with_prefix("chart#")
                    .with_limit(10)
                    .after(cursor),
            )
            .await
            .unwrap();
        pages += 1;
        seen.extend(page.items.iter().map(|i| i.attrs["i"].as_i64().unwrap()));
        // The cursor travels through the API as text.
        cursor = page.next.map(|c| seal.open(&seal.seal(&c)).unwrap());
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, (0..25).collect::<Vec<_>>());

    let newest = store
        .query(
            Query::partition(Table::Entities, "acct#7")
                .with_prefix("chart#")
                .with_limit(3)
                .descending(),
        )
        .await
        .unwrap();
    assert_eq!(
        newest
            .items
            .iter()
            .map(|i| i.attrs["i"].as_i64().unwrap())
            .collect::<Vec<_>>(),
        [24, 23, 22]
    );
    let older = store
        .query(
            Query::partition(Table::Entities, "acct#7")
                .with_prefix("chart#")
                .with_limit(3)
                .descending()
                .after(newest.next),
        )
        .await
        .unwrap();
    assert_eq!(
        older
            .items
            .iter()
            .map(|i| i.attrs["i"].as_i64().unwrap())
            .collect::<Vec<_>>(),
        [21, 20, 19]
    );

    let exact = store
        .query(Query::partition(Table::Entities, "acct#7").with_limit(26))
        .await
        .unwrap();
    assert_eq!(exact.items.len(), 26);
    assert_eq!(exact.next, None, "no cursor when nothing remains");
}

async fn queries_by_secondary_index_paginate(kind: Backend) {
    let backend = orrery_tests::backend(kind).await;
    let store = &backend.app.store;
    for i in 0..7 {
        let item = entity(&format!("acct#9-{i}"), "profile", json!({"i": i})).with_index(
            IndexKey::new("tier#premium", format!("2026-11-{:02}", 10 + i)),
        );
        store.put(item, None).await.unwrap();
    }
    store
        .put(
            entity("acct#other", "profile", json!({}))
                .with_index(IndexKey::new("tier#free", "2026-11-01")),
            None,
        )
        .await
        .unwrap();
    let first = store
        .query(Query::index(Table::Entities, "tier#premium").with_limit(4))
        .await
        .unwrap();
    assert_eq!(first.items.len(), 4);
    let rest = store
        .query(
            Query::index(Table::Entities, "tier#premium")
                .with_limit(4)
                .after(first.next),
        )
        .await
        .unwrap();
    assert_eq!(rest.next, None);
    let all: Vec<i64> = first
        .items
        .iter()
        .chain(&rest.items)
        .map(|i| i.attrs["i"].as_i64().unwrap())
        .collect();
    assert_eq!(
        all,
        (0..7).collect::<Vec<_>>(),
        "index order is gsi1sk order"
    );
    let prefixed = store
        .query(
            Query::index(Table::Entities, "tier#premium")
                .with_prefix("2026-11-1")
                .with_limit(100),
        )
        .await
        .unwrap();
    assert_eq!(prefixed.items.len(), 7);
}

async fn invalid_cursors_are_refused(kind: Backend) {
    let backend = orrery_tests::backend(kind).await;
    let store = &backend.app.store;
    assert_eq!(
        orrery::store::CursorSeal::new(b"pepper").open("%%%"),
        Err(StoreError::InvalidCursor)
    );
    let table_cursor = orrery::store::Cursor {
        pk: "a".into(),
        sk: "b".into(),
        index: None,
    };
    let refused = store
        .query(Query::index(Table::Entities, "tier#x").after(Some(table_cursor)))
        .await;
    assert_eq!(refused, Err(StoreError::InvalidCursor));
}

async fn oversized_items_are_refused(kind: Backend) {
    let backend = orrery_tests::backend(kind).await;
    let store = &backend.app.store;
    let big = entity("acct#10", "blob", json!({"data": "x".repeat(401 * 1024)}));
    assert!(matches!(
        store.put(big, None).await,
        Err(StoreError::ItemTooLarge { .. })
    ));
}

async fn bulk_writes_land_whole_and_never_join_a_transaction(kind: Backend) {
    let backend = orrery_tests::backend(kind).await;
    let store = &backend.app.store;
    // Enough bytes for several embedded commits, bulk and log items interleaved in one call.
    let line = "x".repeat(3000);
    let mut items = Vec::new();
    for n in 0..60 {
        items.push(Item::new(
            Key::new(Table::Bulk, "batch#1", format!("RESULT#{n:05}")),
            attrs(json!({"line": line, "n": n})),
        ));
        if n % 12 == 0 {
            items.push(Item::new(
                Key::new(Table::Logs, "batch#1", format!("CHUNK#{n:05}")),
                attrs(json!({"state": "pending"})),
            ));
        }
    }
    items.push(
        Item::new(
            Key::new(Table::Bulk, "batch#1", "RESULT#99999"),
            attrs(json!({"n": 99999})),
        )
        .expiring_at(clock::now_unix() - 10),
    );
    store.put_many(items).await.unwrap();

    let mut seen = Vec::new();
    let mut query = Query::partition(Table::Bulk, "batch#1")
        .with_prefix("RESULT#")
        .with_limit(25);
    loop {
        let page = store.query(query.clone()).await.unwrap();
        seen.extend(
            page.items
                .iter()
                .map(|item| item.attrs["n"].as_i64().unwrap()),
        );
        match page.next {
            Some(cursor) => query = query.after(Some(cursor)),
            None => break,
        }
    }
    assert_eq!(
        seen,
        (0..60).collect::<Vec<_>>(),
        "every line once, in order, none expired"
    );
    let logs = store
        .query(Query::partition(Table::Logs, "batch#1"))
        .await
        .unwrap();
    assert_eq!(logs.items.len(), 5);
    assert!(
        logs.items.iter().all(|item| item.key.table == Table::Logs),
        "the tables stay apart"
    );

    let refused = store
        .transact(vec![WriteOp::Put {
            item: Item::new(
                Key::new(Table::Bulk, "batch#1", "RESULT#00001"),
                attrs(json!({"n": -1})),
            ),
            condition: None,
        }])
        .await;
    assert!(
        matches!(refused, Err(StoreError::Invalid(_))),
        "{refused:?}"
    );
    let kept = store
        .get(&Key::new(Table::Bulk, "batch#1", "RESULT#00001"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kept.attrs["n"], 1, "the refused transaction wrote nothing");
}
