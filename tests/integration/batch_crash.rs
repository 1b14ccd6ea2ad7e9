//! kill -9 of orrery-local in the middle of a 10,000-item batch, then a restart on the same data
//! directory: the batch completes with 0 items lost and 0 counted twice, and its counts equal
//! its result lines and its reserved quota.
//!
//! The child is this test binary re-executed with `ORRERY_BATCH_CRASH_DIR` set
//! (`orrery_tests::child`).

use std::collections::HashSet;
use std::process::Child;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

const CHILD_DIR: &str = "ORRERY_BATCH_CRASH_DIR";
const TEST_NAME: &str = "batch_crash::kill_9_mid_batch_loses_nothing_and_counts_nothing_twice";
const ITEMS: usize = 10_000;

#[test]
fn kill_9_mid_batch_loses_nothing_and_counts_nothing_twice() {
    if let Ok(dir) = std::env::var(CHILD_DIR) {
        orrery_tests::child::run_orrery_local(std::path::Path::new(&dir));
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (mut child, address) = start(dir.path());
    let client = reqwest::Client::new();
    let (batch_id, key, key_id) = runtime.block_on(async {
        let (key, key_id) = orrery_tests::admin_account(&client, &address, "unlimited").await;
        let requests: Vec<Value> = (0..ITEMS)
            .map(|n| {
                json!({"custom_id": format!("user-{n}"), "operation": "chart", "body": {
                    "datetime": format!("{}-{:02}-{:02}T{:02}:{:02}Z", 1930 + n % 90, 1 + n % 12, 1 + n % 28, n % 24, n % 60),
                    "latitude": -50.0 + (n % 100) as f64, "longitude": (n % 360) as f64 - 180.0}})
            })
            .collect();
        let response = client
            .post(format!("{address}/v1/batches"))
            .bearer_auth(&key)
            .json(&json!({"requests": requests}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        let batch: Value = response.json().await.unwrap();
        (batch["id"].as_str().unwrap().to_owned(), key, key_id)
    });

    // Mid-run: some chunks settled, most not.
    let completed_at_kill = runtime.block_on(async {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let batch = status(&client, &address, &key, &batch_id).await;
            let completed = batch["counts"]["completed"].as_u64().unwrap();
            if completed >= 500 {
                return completed;
            }
            assert!(Instant::now() < deadline, "no progress: {batch}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    child.kill().unwrap(); // SIGKILL: no destructors, no flush
    child.wait().unwrap();
    assert!(
        (completed_at_kill as usize) < ITEMS,
        "killed mid-run, at {completed_at_kill}"
    );

    let (mut child, address) = start(dir.path());
    runtime.block_on(async {
        let deadline = Instant::now() + Duration::from_secs(180);
        let batch = loop {
            let batch = status(&client, &address, &key, &batch_id).await;
            if batch["status"] == "completed" {
                break batch;
            }
            assert!(
                !["failed", "partially_succeeded", "cancelled", "expired"]
                    .contains(&batch["status"].as_str().unwrap()),
                "{batch}"
            );
            assert!(Instant::now() < deadline, "the batch did not finish: {batch}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert_eq!(
            batch["counts"],
            json!({"total": ITEMS, "completed": ITEMS, "failed": 0, "cancelled": 0})
        );
        // Every item has exactly one result line.
        let text = client
            .get(format!("{address}/v1/batches/{batch_id}/results"))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let ids: Vec<String> = text
            .lines()
            .map(|line| {
                let line: Value = serde_json::from_str(line).unwrap();
                assert_eq!(line["status"], "succeeded");
                line["custom_id"].as_str().unwrap().to_owned()
            })
            .collect();
        let unique: HashSet<&String> = ids.iter().collect();
        assert_eq!(ids.len(), ITEMS, "one line per item, none twice");
        assert_eq!(unique.len(), ITEMS, "no item lost");
        // The reservation stands at exactly one unit per item.
        let view: Value = client
            .get(format!("{address}/v1/api-keys/{key_id}"))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(view["usage_today"]["batch_items"], ITEMS as u64, "{view}");
        println!(
            "kill -9 at {completed_at_kill}/{ITEMS} completed; after the restart: {} lines, {} distinct, counts {}",
            ids.len(),
            unique.len(),
            batch["counts"]
        );
    });
    child.kill().ok();
    child.wait().ok();
}

async fn status(client: &reqwest::Client, address: &str, key: &str, id: &str) -> Value {
    client
        .get(format!("{address}/v1/batches/{id}"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn start(dir: &std::path::Path) -> (Child, String) {
    orrery_tests::child::start(TEST_NAME, CHILD_DIR, dir)
}
