//! kill -9 of orrery-local while a WebSocket client follows the event log, then a restart on
//! the same data directory and a reconnect with the last cursor received: every event whose
//! request was acknowledged arrives, none twice, and the cursors run without a gap.
//!
//! The child is this test binary re-executed with `ORRERY_WS_CRASH_DIR` set
//! (`orrery_tests::child`).

use std::collections::BTreeSet;
use std::time::Duration;

use orrery_tests::london;
use orrery_tests::ws::WsClient;
use serde_json::{Value, json};

const CHILD_DIR: &str = "ORRERY_WS_CRASH_DIR";
const TEST_NAME: &str =
    "websocket_crash::kill_9_then_a_reconnect_with_the_last_cursor_loses_nothing";

#[test]
fn kill_9_then_a_reconnect_with_the_last_cursor_loses_nothing() {
    if let Ok(dir) = std::env::var(CHILD_DIR) {
        orrery_tests::child::run_orrery_local(std::path::Path::new(&dir));
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (mut child, address) = orrery_tests::child::start(TEST_NAME, CHILD_DIR, dir.path());
    let client = reqwest::Client::new();
    let mut cursors = Vec::new();
    let mut charts_seen = 0;
    let record = |event: &Value, cursors: &mut Vec<u64>, charts: &mut usize| {
        cursors.push(event["cursor"].as_str().unwrap().parse().unwrap());
        if event["type"] == "chart.calculated" {
            *charts += 1;
        }
    };
    let (key, acknowledged) = runtime.block_on(async {
        let (key, _) = orrery_tests::admin_account(&client, &address, "unlimited").await;
        let mut socket = WsClient::open(&address, "/v1/realtime", Some(&key)).await;
        // Charts computed while the client follows; the server dies with some in flight.
        let sender = {
            let (client, address, key) = (client.clone(), address.clone(), key.clone());
            tokio::spawn(async move {
                let mut acknowledged = 0usize;
                for n in 0..10_000 {
                    let mut body = london();
                    body["latitude"] = json!(-60.0 + f64::from(n % 120));
                    body["longitude"] = json!(f64::from(n % 360) - 180.0);
                    match client
                        .post(format!("{address}/v1/charts"))
                        .bearer_auth(&key)
                        .json(&body)
                        .send()
                        .await
                    {
                        Ok(response) if response.status() == 200 => acknowledged += 1,
                        _ => break, // killed
                    }
                }
                acknowledged
            })
        };
        // Follow until a good part of the stream has arrived, then kill mid-stream.
        while charts_seen < 200 {
            let message = socket
                .next_of("event", Duration::from_secs(20))
                .await
                .expect("live events");
            record(&message["event"], &mut cursors, &mut charts_seen);
        }
        (key, sender)
    });
    child.kill().unwrap(); // SIGKILL: no destructors, no flush
    child.wait().unwrap();
    let acknowledged = runtime.block_on(acknowledged).unwrap();
    let last = *cursors.last().unwrap();

    let (mut child, address) = orrery_tests::child::start(TEST_NAME, CHILD_DIR, dir.path());
    runtime.block_on(async {
        let mut socket =
            WsClient::open(&address, &format!("/v1/realtime?after={last}"), Some(&key)).await;
        // Everything acknowledged before the kill is there (the consumer finishes the queue
        // after the restart): wait until the stream goes quiet with all of it.
        while charts_seen < acknowledged {
            let message = socket
                .next_of("event", Duration::from_secs(30))
                .await
                .unwrap_or_else(|| {
                    panic!("{charts_seen} of {acknowledged} acknowledged charts arrived")
                });
            record(&message["event"], &mut cursors, &mut charts_seen);
        }
        for event in socket.events(Duration::from_millis(1500)).await {
            record(&event, &mut cursors, &mut charts_seen);
        }
    });
    let distinct: BTreeSet<u64> = cursors.iter().copied().collect();
    assert_eq!(distinct.len(), cursors.len(), "an event arrived twice");
    let head = *cursors.last().unwrap();
    assert_eq!(
        distinct,
        (1..=head).collect::<BTreeSet<_>>(),
        "the cursors have a gap"
    );
    assert!(
        charts_seen >= acknowledged,
        "{charts_seen} < {acknowledged}"
    );
    println!(
        "kill -9 after cursor {last}; {acknowledged} charts acknowledged; {} events received across the restart, cursors 1..={head}, none twice",
        cursors.len()
    );
    child.kill().ok();
    child.wait().ok();
}
