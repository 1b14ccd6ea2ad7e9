//! `/v1/realtime` (issue #14): the event log over a WebSocket, read by a real WebSocket client
//! (`orrery_tests::ws`), against orrery-local's router on both backends.

use std::time::Duration;

use orrery::events::{Event, EventType};
use orrery::ids::AccountId;
use orrery_realtime::log;
use orrery_tests::ws::WsClient;
use orrery_tests::{Backend, TestApp, create_account, london};
use reqwest::StatusCode;
use serde_json::{Value, json};

on_both_backends!(
    events_arrive_live_and_a_reconnect_gets_every_missed_event_once,
    subscriptions_filter_by_type_and_batch_channel,
    stale_and_bad_cursors_are_told,
    tokens_carry_one_account_and_its_key_scopes,
    connections_are_limited_by_tier_and_metered,
    idle_connections_get_heartbeats_and_pings_get_pongs,
);

const LIVE: Duration = Duration::from_secs(10);
const QUIET: Duration = Duration::from_millis(1200);

async fn chart(server: &TestApp, key: &str, n: i64) {
    let mut body = london();
    body["latitude"] = json!(30 + n);
    server
        .as_key(key)
        .post("/v1/charts", body)
        .expect(StatusCode::OK)
        .await;
}

/// Polls `GET /v1/events?after=` until `count` entries are there (the consumer appends
/// asynchronously).
async fn logged_after(server: &TestApp, key: &str, after: u64, count: usize) -> Vec<Value> {
    for _ in 0..400 {
        let page = server
            .as_key(key)
            .get(&format!("/v1/events?after={after}"))
            .expect(StatusCode::OK)
            .await;
        let events = page["events"].as_array().unwrap().clone();
        if events.len() >= count {
            return events;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{count} events after {after} never arrived");
}

async fn events_arrive_live_and_a_reconnect_gets_every_missed_event_once(kind: Backend) {
    let server = orrery_tests::serve(orrery_tests::backend(kind).await).await;
    let (account, key) = create_account(&server, "basic").await;
    let mut socket = WsClient::open(&server.address, "/v1/realtime", Some(&key)).await;
    // The backlog first (the account's first key), then a chart computed now, live.
    let first = socket.next_of("event", LIVE).await.expect("the backlog");
    assert_eq!(first["event"]["cursor"], "1");
    assert_eq!(first["event"]["type"], "key.created");
    assert_eq!(first["event"]["account_id"], account.as_str());
    chart(&server, &key, 1).await;
    let live = socket.next_of("event", LIVE).await.expect("a live event");
    assert_eq!(live["event"]["cursor"], "2");
    assert_eq!(live["event"]["type"], "chart.calculated");
    socket.close().await;

    // Two events missed while disconnected; reconnecting after cursor 2 gets exactly them.
    chart(&server, &key, 2).await;
    chart(&server, &key, 3).await;
    let polled = logged_after(&server, &key, 2, 2).await;
    let mut resumed = WsClient::open(&server.address, "/v1/realtime?after=2", Some(&key)).await;
    let missed = resumed.events(QUIET).await;
    let cursors: Vec<&str> = missed
        .iter()
        .map(|e| e["cursor"].as_str().unwrap())
        .collect();
    assert_eq!(cursors, ["3", "4"], "every missed event, once");
    // The same cursor names the same entries on every transport.
    assert_eq!(missed, polled);
    // …and live again after the replay, still once.
    chart(&server, &key, 4).await;
    let next = resumed.events(QUIET).await;
    let cursors: Vec<&str> = next.iter().map(|e| e["cursor"].as_str().unwrap()).collect();
    assert_eq!(cursors, ["5"]);

    // The WebSocket's cursor resumes the SSE stream (and the other way round, see
    // event_stream.rs): after 3, the same entries 4 and 5.
    let mut sse = server
        .client
        .get(server.url("/v1/events/stream"))
        .bearer_auth(&key)
        .header("last-event-id", "3")
        .send()
        .await
        .unwrap();
    let mut text = String::new();
    while !text.contains("id: 5\n") {
        let chunk = tokio::time::timeout(LIVE, sse.chunk())
            .await
            .unwrap()
            .unwrap();
        text.push_str(&String::from_utf8_lossy(
            &chunk.expect("more of the stream"),
        ));
    }
    let streamed: Vec<Value> = text
        .lines()
        .filter_map(|line| line.strip_prefix("data: "))
        .map(|data| serde_json::from_str(data).unwrap())
        .collect();
    assert_eq!(streamed, [missed[1].clone(), next[0].clone()]);
    drop(sse);

    // A `subscribe` with `after` rewinds an open connection.
    resumed
        .send(json!({"action": "subscribe", "types": ["chart.calculated"], "after": "3"}))
        .await;
    let ack = resumed.next_of("subscribed", LIVE).await.expect("an ack");
    assert_eq!(ack["subscription"], json!({"types": ["chart.calculated"]}));
    let replayed = resumed.events(QUIET).await;
    let cursors: Vec<&str> = replayed
        .iter()
        .map(|e| e["cursor"].as_str().unwrap())
        .collect();
    assert_eq!(cursors, ["4", "5"]);
}

async fn subscriptions_filter_by_type_and_batch_channel(kind: Backend) {
    let server = orrery_tests::serve(orrery_tests::backend(kind).await).await;
    let (_, key) = create_account(&server, "basic").await;
    let mut socket = WsClient::open(
        &server.address,
        "/v1/realtime?types=batch.completed,batch.progress",
        Some(&key),
    )
    .await;
    let batch = |n: usize| json!({"requests": (0..n).map(|i| json!({"custom_id": format!("c{i}"), "operation": "chart", "body": london()})).collect::<Vec<_>>()});
    let first = server
        .as_key(&key)
        .post("/v1/batches", batch(2))
        .expect(StatusCode::ACCEPTED)
        .await;
    let first_id = first["id"].as_str().unwrap().to_owned();
    let done = socket.next_of("event", LIVE).await.expect("batch events");
    assert!(
        done["event"]["type"]
            .as_str()
            .unwrap()
            .starts_with("batch.")
    );
    // Narrow to the channel of a second batch: the first one's events no longer arrive.
    socket
        .send(json!({"action": "unsubscribe", "types": ["*"]}))
        .await;
    socket.next_of("unsubscribed", LIVE).await.expect("an ack");
    let second = server
        .as_key(&key)
        .post("/v1/batches", batch(1))
        .expect(StatusCode::ACCEPTED)
        .await;
    let second_id = second["id"].as_str().unwrap().to_owned();
    socket
        .send(json!({"action": "subscribe", "types": ["batch.completed"], "channels": [format!("batch:{second_id}")]}))
        .await;
    let ack = socket.next_of("subscribed", LIVE).await.expect("an ack");
    assert_eq!(
        ack["subscription"]["channels"],
        json!([format!("batch:{second_id}")])
    );
    let completed = socket
        .next_of("event", LIVE)
        .await
        .expect("the second batch completes");
    assert_eq!(completed["event"]["type"], "batch.completed");
    assert_eq!(completed["event"]["data"]["id"], second_id.as_str());
    let rest = socket.events(QUIET).await;
    assert!(
        rest.iter().all(|e| e["data"]["id"] != first_id.as_str()),
        "{rest:?}"
    );
    // A bad message is an `error`; the connection stays open.
    socket
        .send(json!({"action": "subscribe", "channels": ["account:1"]}))
        .await;
    let error = socket
        .next_of("error", LIVE)
        .await
        .expect("an error message");
    assert_eq!(error["problem"]["status"], 422);
    socket.send(json!({"action": "ping"})).await;
    assert!(socket.next_of("pong", LIVE).await.is_some());
}

async fn stale_and_bad_cursors_are_told(kind: Backend) {
    let server = orrery_tests::serve(orrery_tests::backend(kind).await).await;
    let (account, key) = create_account(&server, "basic").await;
    logged_after(&server, &key, 0, 1).await;
    // An entry older than the retention right after the cursor: the cursor is stale.
    let account = AccountId::parse(&account).unwrap();
    let mut old = Event::new(EventType::ChartCalculated, &account, json!({}));
    old.timestamp -= chrono::Duration::hours(96);
    let head = log::append(server.app(), &old).await.unwrap();
    let mut socket = WsClient::open(
        &server.address,
        &format!("/v1/realtime?after={}", head.0 - 1),
        Some(&key),
    )
    .await;
    let stale = socket.next(LIVE).await.expect("a stale message");
    assert_eq!(stale["type"], "stale");
    assert_eq!(stale["problem"]["status"], 410);
    assert_eq!(stale["problem"]["oldest_cursor"], head.0.to_string());
    assert!(socket.next(LIVE).await.is_none(), "then the server closes");
    assert_eq!(socket.closed_with, Some(4410));

    // A cursor ahead of the log or a malformed one (400), an unknown type or channel (422):
    // refused before the upgrade, as problems.
    for (query, status) in [
        ("?after=999999", 400),
        ("?after=soon", 400),
        ("?types=chart.nope", 422),
        ("?channels=nope", 422),
    ] {
        let refused =
            WsClient::connect(&server.address, &format!("/v1/realtime{query}"), Some(&key))
                .await
                .err()
                .unwrap_or_else(|| panic!("{query} was accepted"));
        assert_eq!(refused.status, status, "{query}: {refused:?}");
        assert_eq!(refused.problem["status"], status);
    }
    // A plain GET is not a WebSocket.
    let plain = server
        .client
        .get(server.url("/v1/realtime"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(plain.status(), StatusCode::BAD_REQUEST);
    assert_eq!(plain.headers()["content-type"], "application/problem+json");
}

async fn tokens_carry_one_account_and_its_key_scopes(kind: Backend) {
    let server = orrery_tests::serve(orrery_tests::backend(kind).await).await;
    let (account, key) = create_account(&server, "basic").await;
    let (_, other_key) = create_account(&server, "basic").await;
    let minted = server
        .as_key(&key)
        .post("/v1/realtime/tokens", json!({"ttl_seconds": 60.0}))
        .expect(StatusCode::CREATED)
        .await;
    let token = minted["token"].as_str().unwrap();
    assert!(token.starts_with("ort_"));
    assert_eq!(minted["expires_in"], 60);
    assert!(
        minted["scopes"]
            .as_array()
            .unwrap()
            .contains(&json!("events"))
    );
    // No header: the token alone opens the connection, for its own account only.
    let mut socket = WsClient::open(
        &server.address,
        &format!("/v1/realtime?token={token}"),
        None,
    )
    .await;
    chart(&server, &other_key, 1).await;
    chart(&server, &key, 2).await;
    let seen = socket.events(Duration::from_millis(1500)).await;
    assert!(
        seen.iter().any(|e| e["type"] == "chart.calculated"),
        "{seen:?}"
    );
    assert!(
        seen.iter().all(|e| e["account_id"] == account.as_str()),
        "{seen:?}"
    );

    // Refused: longer than 5 minutes; an API key in the URL; a forged token; no credentials.
    for ttl in [json!(301), json!(0), json!(-5), json!(1.5), json!("60")] {
        server
            .as_key(&key)
            .post("/v1/realtime/tokens", json!({"ttl_seconds": ttl}))
            .expect(StatusCode::UNPROCESSABLE_ENTITY)
            .await;
    }
    let forged = format!("{}x", &token[..token.len() - 1]);
    for (path, status) in [
        (format!("/v1/realtime?token={key}"), 401),
        (format!("/v1/realtime?token={forged}"), 401),
        ("/v1/realtime".to_owned(), 401),
    ] {
        let refused = WsClient::connect(&server.address, &path, None)
            .await
            .err()
            .unwrap();
        assert_eq!(refused.status, status, "{path}");
    }
    // A key without the `events` scope can mint nothing and connect nowhere.
    let narrow = server
        .as_key(&key)
        .post(
            "/v1/api-keys",
            json!({"name": "charts only", "scopes": ["charts"]}),
        )
        .expect(StatusCode::CREATED)
        .await;
    let narrow_key = narrow["key"].as_str().unwrap();
    server
        .as_key(narrow_key)
        .post("/v1/realtime/tokens", json!({}))
        .expect(StatusCode::FORBIDDEN)
        .await;
    let refused = WsClient::connect(&server.address, "/v1/realtime", Some(narrow_key))
        .await
        .err()
        .unwrap();
    assert_eq!(refused.status, 403);
    // Revoking the key ends its tokens.
    let events_key = server
        .as_key(&key)
        .post(
            "/v1/api-keys",
            json!({"name": "browser", "scopes": ["events"]}),
        )
        .expect(StatusCode::CREATED)
        .await;
    let events_token = server
        .as_key(events_key["key"].as_str().unwrap())
        .post("/v1/realtime/tokens", json!({}))
        .expect(StatusCode::CREATED)
        .await;
    let path = format!(
        "/v1/realtime?token={}",
        events_token["token"].as_str().unwrap()
    );
    WsClient::open(&server.address, &path, None)
        .await
        .close()
        .await;
    server
        .as_key(&key)
        .patch(
            &format!("/v1/api-keys/{}/revoke", events_key["id"].as_str().unwrap()),
            json!({}),
        )
        .expect(StatusCode::OK)
        .await;
    let refused = WsClient::connect(&server.address, &path, None)
        .await
        .err()
        .unwrap();
    assert_eq!(refused.status, 401);
}

async fn connections_are_limited_by_tier_and_metered(kind: Backend) {
    let options = orrery_tests::TestOptions {
        config: orrery::config::Config {
            tiers: orrery_tests::tiers_with(&[("free", "realtime_connections", 2)]),
            ..Default::default()
        },
    };
    let server = orrery_tests::serve(orrery_tests::backend_with(kind, options).await).await;
    let (_, key) = create_account(&server, "free").await;
    let first = WsClient::open(&server.address, "/v1/realtime", Some(&key)).await;
    // Opening is metered once, under `management`, with the usual headers.
    let used: u64 = first.headers["x-ratelimit-used"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let second = WsClient::open(&server.address, "/v1/realtime", Some(&key)).await;
    let used_after: u64 = second.headers["x-ratelimit-used"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(used_after, used + 1);
    let refused = WsClient::connect(&server.address, "/v1/realtime", Some(&key))
        .await
        .err()
        .expect("over the limit");
    assert_eq!(refused.status, 429);
    assert!(
        refused.problem["detail"]
            .as_str()
            .unwrap()
            .contains("2 real-time connections")
    );
    // Closing one frees its place (the server notices the close at once).
    first.close().await;
    let mut reopened = None;
    for _ in 0..100 {
        if let Ok(client) = WsClient::connect(&server.address, "/v1/realtime", Some(&key)).await {
            reopened = Some(client);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let reopened = reopened.expect("a place again");
    // The refused attempt cost no unit.
    let used_now: u64 = reopened.headers["x-ratelimit-used"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(used_now, used_after + 1);
}

async fn idle_connections_get_heartbeats_and_pings_get_pongs(kind: Backend) {
    let server = orrery_tests::serve_with_quick_heartbeats(kind).await;
    let (_, key) = create_account(&server, "basic").await;
    logged_after(&server, &key, 0, 1).await;
    let mut socket = WsClient::open(
        &server.address,
        "/v1/realtime?types=batch.completed",
        Some(&key),
    )
    .await;
    let mut beats = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_millis(1100);
    while let Some(message) = socket
        .next(deadline.saturating_duration_since(tokio::time::Instant::now()))
        .await
    {
        assert_eq!(message["type"], "heartbeat", "{message}");
        beats.push(message);
    }
    assert!(
        (3..=6).contains(&beats.len()),
        "{} heartbeats in 1.1 s",
        beats.len()
    );
    // The heartbeat names the resume point: past the entry the filter skipped.
    assert_eq!(beats.last().unwrap()["cursor"], "1");
    socket.send(json!({"action": "ping"})).await;
    assert!(socket.next_of("pong", LIVE).await.is_some());
    socket.send(json!("not an object")).await;
    let error = socket.next_of("error", LIVE).await.expect("an error");
    assert_eq!(error["problem"]["status"], 400);
}
