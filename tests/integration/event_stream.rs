//! `GET /v1/events/stream` (issue #14): the event log as Server-Sent Events, read by a real SSE
//! client (the wire format parsed from the HTTP body as a browser's EventSource does).

use std::time::{Duration, Instant};

use orrery::events::{Event, EventType};
use orrery::ids::AccountId;
use orrery_realtime::log;
use orrery_tests::{Backend, TestApp, create_account, london};
use reqwest::StatusCode;
use serde_json::{Value, json};

on_both_backends!(
    events_arrive_live_and_a_reconnect_resumes_after_the_last_event_id,
    stale_cursors_and_other_accounts,
    an_idle_stream_sends_heartbeats,
);

/// One SSE message (comment-only blocks, the heartbeats, are skipped).
#[derive(Debug)]
struct Message {
    id: Option<String>,
    event: Option<String>,
    data: Value,
    retry: Option<u64>,
}

struct SseClient {
    response: reqwest::Response,
    buffer: String,
    /// Comment lines seen (the heartbeats).
    comments: Vec<String>,
}

impl SseClient {
    async fn open(server: &TestApp, key: &str, query: &str, last_event_id: Option<&str>) -> Self {
        let mut request = server
            .client
            .get(server.url(&format!("/v1/events/stream{query}")))
            .bearer_auth(key)
            .header("accept", "text/event-stream");
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        Self {
            response,
            buffer: String::new(),
            comments: Vec::new(),
        }
    }

    /// The next message within `wait`, or `None`.
    async fn next(&mut self, wait: Duration) -> Option<Message> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut message = Message {
                    id: None,
                    event: None,
                    data: Value::Null,
                    retry: None,
                };
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(comment) = line.strip_prefix(':') {
                        self.comments.push(comment.trim().to_owned());
                        continue;
                    }
                    let (field, value) = line.split_once(':').unwrap_or((line, ""));
                    let value = value.strip_prefix(' ').unwrap_or(value);
                    match field {
                        "id" => message.id = Some(value.to_owned()),
                        "event" => message.event = Some(value.to_owned()),
                        "data" => data.push_str(value),
                        "retry" => message.retry = value.parse().ok(),
                        _ => {}
                    }
                }
                if !data.is_empty() {
                    message.data = serde_json::from_str(&data).unwrap();
                    return Some(message);
                }
            }
            match tokio::time::timeout_at(deadline, self.response.chunk()).await {
                Ok(Ok(Some(bytes))) => self.buffer.push_str(&String::from_utf8_lossy(&bytes)),
                _ => return None,
            }
        }
    }

    /// Every message that arrives within `wait`.
    async fn drain(&mut self, wait: Duration) -> Vec<Message> {
        let deadline = Instant::now() + wait;
        let mut messages = Vec::new();
        while let Some(message) = self
            .next(deadline.saturating_duration_since(Instant::now()))
            .await
        {
            messages.push(message);
        }
        messages
    }
}

async fn chart(server: &TestApp, key: &str, n: i64) {
    let mut body = london();
    body["latitude"] = json!(30 + n);
    server
        .as_key(key)
        .post("/v1/charts", body)
        .expect(StatusCode::OK)
        .await;
}

const LIVE: Duration = Duration::from_secs(10);

async fn events_arrive_live_and_a_reconnect_resumes_after_the_last_event_id(kind: Backend) {
    let server = orrery_tests::serve(orrery_tests::backend(kind).await).await;
    let (account, key) = create_account(&server, "basic").await;
    let mut stream = SseClient::open(&server, &key, "", None).await;
    // The backlog first: the account's first key.
    let first = stream.next(LIVE).await.expect("the backlog");
    assert_eq!(
        (first.id.as_deref(), first.event.as_deref()),
        (Some("1"), Some("key.created"))
    );
    assert!(first.retry.is_some(), "a reconnect hint");
    assert_eq!(first.data["account_id"], account.as_str());
    assert_eq!(first.data["cursor"], "1");

    // Live: a chart computed now arrives on the open stream.
    chart(&server, &key, 1).await;
    let live = stream.next(LIVE).await.expect("a live event");
    assert_eq!(
        (live.id.as_deref(), live.event.as_deref()),
        (Some("2"), Some("chart.calculated"))
    );
    drop(stream);

    // Disconnected: two events are missed, then a reconnect with the last id gets exactly them.
    chart(&server, &key, 2).await;
    chart(&server, &key, 3).await;
    let polled = loop {
        let page = server
            .as_key(&key)
            .get("/v1/events?after=2")
            .expect(StatusCode::OK)
            .await;
        if page["events"].as_array().unwrap().len() == 2 {
            break page;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mut resumed = SseClient::open(&server, &key, "", Some("2")).await;
    let missed = resumed.drain(Duration::from_millis(1500)).await;
    let ids: Vec<&str> = missed.iter().filter_map(|m| m.id.as_deref()).collect();
    assert_eq!(ids, ["3", "4"], "every missed event once: {missed:?}");
    // The same cursor, the same entries, whichever transport reads them.
    for (message, entry) in missed.iter().zip(polled["events"].as_array().unwrap()) {
        assert_eq!(&message.data, entry);
    }
    // `?after=` resumes too, and a type filter applies to the stream.
    let mut filtered = SseClient::open(&server, &key, "?after=0&types=key.created", None).await;
    let keys = filtered.drain(Duration::from_millis(1000)).await;
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert_eq!(keys[0].event.as_deref(), Some("key.created"));
}

async fn stale_cursors_and_other_accounts(kind: Backend) {
    let server = orrery_tests::serve(orrery_tests::backend(kind).await).await;
    let (account, key) = create_account(&server, "basic").await;
    let (other, other_key) = create_account(&server, "basic").await;
    // The other account's stream, open while this account is busy, sees only its own events.
    let mut other_stream = SseClient::open(&server, &other_key, "", None).await;
    chart(&server, &key, 5).await;
    let seen = other_stream.drain(Duration::from_millis(1500)).await;
    assert!(!seen.is_empty(), "its own key.created");
    assert!(
        seen.iter().all(|m| m.data["account_id"] == other.as_str()),
        "{seen:?}"
    );

    // An old cursor whose entries expired is a 410 before anything streams.
    let account = AccountId::parse(&account).unwrap();
    let mut old = Event::new(EventType::ChartCalculated, &account, json!({}));
    old.timestamp -= chrono::Duration::hours(96);
    let head = log::append(server.app(), &old).await.unwrap();
    // Wait until the consumer has logged the account's own events too.
    let gone = loop {
        let response = server
            .client
            .get(server.url("/v1/events/stream"))
            .bearer_auth(&key)
            .header("last-event-id", format!("{}", head.0 - 1))
            .send()
            .await
            .unwrap();
        if response.status() == StatusCode::GONE {
            break response;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(gone.headers()["content-type"], "application/problem+json");
    let problem: Value = gone.json().await.unwrap();
    assert_eq!(problem["oldest_cursor"], head.0.to_string());
    // Malformed ids are 400s.
    let bad = server
        .client
        .get(server.url("/v1/events/stream"))
        .bearer_auth(&key)
        .header("last-event-id", "tomorrow")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
}

async fn an_idle_stream_sends_heartbeats(kind: Backend) {
    let server = orrery_tests::serve_with_quick_heartbeats(kind).await;
    let (_, key) = create_account(&server, "basic").await;
    // A type nothing produces here: only heartbeats arrive.
    let mut stream = SseClient::open(&server, &key, "?types=batch.completed", None).await;
    let messages = stream.drain(Duration::from_millis(1100)).await;
    assert!(messages.is_empty(), "{messages:?}");
    let beats = stream.comments.iter().filter(|c| *c == "heartbeat").count();
    assert!((3..=6).contains(&beats), "{beats} heartbeats in 1.1 s");
}
