//! SIGKILL durability of the embedded engine that `orrery-local` runs on: a child process writes
//! items, counters and queue messages concurrently and prints each acknowledgement; the parent
//! kills it with SIGKILL mid-stream, reopens the file, and finds everything acknowledged.
//!
//! The child is this test binary re-executed with `ORRERY_CRASH_CHILD_DIR` set.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use orrery::queue::OutgoingMessage;
use orrery::store::{Increment, Item, Key, Table};

const CHILD_DIR: &str = "ORRERY_CRASH_CHILD_DIR";
const WRITERS: usize = 16;

fn counter() -> Key {
    Key::new(Table::Counters, "crash", "counter")
}

#[test]
fn sigkill_loses_nothing_acknowledged() {
    if let Ok(dir) = std::env::var(CHILD_DIR) {
        write_until_killed(std::path::Path::new(&dir));
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "crash::sigkill_loses_nothing_acknowledged",
            "--exact",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(CHILD_DIR, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut acked_items = BTreeSet::new();
    let mut acked_messages = BTreeSet::new();
    let mut acked_increments = 0i64;
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for line in lines {
        let line = line.unwrap();
        let mut parts = line.split_whitespace();
        match (parts.next(), parts.next()) {
            (Some("put"), Some(id)) => {
                acked_items.insert(id.to_owned());
            }
            (Some("send"), Some(body)) => {
                acked_messages.insert(body.to_owned());
            }
            (Some("inc"), Some(_)) => acked_increments += 1,
            _ => continue,
        }
        if acked_items.len() + acked_messages.len() >= 600 {
            break;
        }
    }
    child.kill().unwrap(); // SIGKILL on Unix: no destructors, no flush
    child.wait().unwrap();
    assert!(
        acked_items.len() > 100 && acked_increments > 100,
        "the child made progress before the kill"
    );

    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let app = orrery_tests::embedded_at(dir.path());
        for id in &acked_items {
            let key = Key::new(Table::Entities, "crash", id.clone());
            assert!(app.store.get(&key).await.unwrap().is_some(), "acknowledged item {id} survived");
        }
        let stored = app.store.get(&counter()).await.unwrap().unwrap().attrs["count"].as_i64().unwrap();
        assert!(stored >= acked_increments, "counter {stored} holds every acknowledged increment ({acked_increments})");
        let mut found = BTreeSet::new();
        loop {
            let batch = app.queues.events.main.receive(10, Duration::from_secs(60), Duration::ZERO).await.unwrap();
            if batch.is_empty() {
                break;
            }
            found.extend(batch.into_iter().map(|m| m.body));
        }
        let lost: Vec<_> = acked_messages.difference(&found).collect();
        assert!(lost.is_empty(), "acknowledged messages lost: {lost:?}");
        println!(
            "after SIGKILL: {} items, {} increments (stored {stored}), {} messages acknowledged; none lost",
            acked_items.len(),
            acked_increments,
            acked_messages.len()
        );
    });
}

fn write_until_killed(dir: &std::path::Path) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let app = orrery_tests::embedded_at(dir);
        let writers: Vec<_> = (0..WRITERS)
            .map(|writer| {
                let app = app.clone();
                tokio::spawn(async move {
                    for n in 0.. {
                        let id = format!("w{writer}-{n}");
                        let item = Item::new(
                            Key::new(Table::Entities, "crash", id.clone()),
                            serde_json::Map::new(),
                        );
                        app.store.put(item, None).await.unwrap();
                        println!("put {id}");
                        let increment = Increment::new(counter(), "count", 1);
                        let value = app.store.increment(increment).await.unwrap();
                        println!("inc {value}");
                        app.queues
                            .events
                            .main
                            .send(OutgoingMessage::new(id.clone()))
                            .await
                            .unwrap();
                        println!("send {id}");
                    }
                })
            })
            .collect();
        for writer in writers {
            writer.await.ok();
        }
    });
}
