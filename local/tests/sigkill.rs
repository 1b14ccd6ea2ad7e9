//! SIGKILL the real `orrery-local` binary while clients are writing through the API, restart it
//! on the same data directory, and find everything it acknowledged: every key it answered 201 for
//! exists, and the quota counter holds at least every admitted request.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::Mutex;

const ADMIN_KEY: &str = "orr_admin_sigkill_test";
const WRITERS: usize = 16;
const ACKNOWLEDGED_BEFORE_KILL: usize = 300;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start(data_dir: &std::path::Path, port: u16) -> Child {
    Command::new(env!("CARGO_BIN_EXE_orrery-local"))
        .args(["--addr", &format!("127.0.0.1:{port}"), "--data-dir"])
        .arg(data_dir)
        .env("ORRERY_ADMIN_KEY", ADMIN_KEY)
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

async fn wait_healthy(client: &reqwest::Client, base: &str) {
    for _ in 0..200 {
        if client
            .get(format!("{base}/health"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("orrery-local did not become healthy");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_mid_write_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let mut server = start(dir.path(), port);
    wait_healthy(&client, &base).await;

    let account: Value = client
        .post(format!("{base}/v1/admin/accounts"))
        .bearer_auth(ADMIN_KEY)
        .json(&json!({"name": "durability", "tier": "premium"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = account["api_key"]["key"].as_str().unwrap().to_owned();

    // Writers create keys as fast as they can; each 201 is an acknowledged write (the key's two
    // items plus the quota increment of the request).
    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..WRITERS)
        .map(|writer| {
            let (client, base, key, acknowledged, stop) = (
                client.clone(),
                base.clone(),
                key.clone(),
                acknowledged.clone(),
                stop.clone(),
            );
            tokio::spawn(async move {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let sent = client
                        .post(format!("{base}/v1/api-keys"))
                        .bearer_auth(&key)
                        .json(&json!({"name": format!("w{writer}-{n}")}))
                        .send()
                        .await;
                    let Ok(response) = sent else { break };
                    if response.status() != 201 {
                        break;
                    }
                    let Ok(body) = response.json::<Value>().await else {
                        break;
                    };
                    acknowledged
                        .lock()
                        .await
                        .push(body["id"].as_str().unwrap().to_owned());
                }
            })
        })
        .collect();
    while acknowledged.lock().await.len() < ACKNOWLEDGED_BEFORE_KILL {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.kill().unwrap(); // SIGKILL on Unix: no shutdown, no flush
    server.wait().unwrap();
    stop.store(true, Ordering::Relaxed);
    for writer in writers {
        writer.await.unwrap();
    }
    let acknowledged = acknowledged.lock().await.clone();

    let mut restarted = start(dir.path(), port);
    wait_healthy(&client, &base).await;
    let mut found = std::collections::HashSet::new();
    let mut cursor: Option<String> = None;
    let mut used;
    loop {
        let url = match &cursor {
            Some(cursor) => format!("{base}/v1/api-keys?limit=100&cursor={cursor}"),
            None => format!("{base}/v1/api-keys?limit=100"),
        };
        let response = client.get(url).bearer_auth(&key).send().await.unwrap();
        assert_eq!(response.status(), 200);
        used = response.headers()["x-ratelimit-used"]
            .to_str()
            .unwrap()
            .parse::<usize>()
            .unwrap();
        let page: Value = response.json().await.unwrap();
        found.extend(
            page["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|k| k["id"].as_str().unwrap().to_owned()),
        );
        cursor = page["next_cursor"].as_str().map(str::to_owned);
        if cursor.is_none() {
            break;
        }
    }
    restarted.kill().ok();
    restarted.wait().ok();
    let lost: Vec<_> = acknowledged
        .iter()
        .filter(|id| !found.contains(*id))
        .collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged keys lost after SIGKILL: {lost:?}",
        lost.len()
    );
    assert!(
        used > acknowledged.len(),
        "quota counter {used} holds every acknowledged request ({})",
        acknowledged.len()
    );
    println!(
        "SIGKILL after {} acknowledged key creations: all found after restart; quota counter at {used}",
        acknowledged.len()
    );
}
