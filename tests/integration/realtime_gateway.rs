//! The AWS WebSocket path (issue #14): the `realtime` function's `$connect` / `subscribe` /
//! `$disconnect` handlers, driven by the API Gateway WebSocket events in `events/`, and the
//! events consumer's push to connections, on both backends (the connections table in DynamoDB
//! on moto, or embedded).
//!
//! API Gateway's management API is a test double here ([`Gateway`]): no emulator can make
//! `PostToConnection` answer `GoneException` or throttle, and none holds real connections to
//! read the posted messages back from. `GatewayManagement`, the real client, is exercised
//! against moto's management API at the end.

use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use async_trait::async_trait;
use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use orrery::consumer::{Consumer, IncomingMessage, Outcome};
use orrery::events::{Event, EventType};
use orrery::ids::AccountId;
use orrery_realtime::connections;
use orrery_realtime::fanout::{ConnectionManagement, PostError};
use orrery_tests::{Backend, create_account};
use reqwest::StatusCode;
use serde_json::{Value, json};

on_both_backends!(
    connect_subscribe_push_and_disconnect,
    connect_refusals_leave_nothing_behind,
    gone_connections_are_forgotten_and_throttling_is_retried,
    the_scheduled_sweep_sends_heartbeats_and_reconnect_hints,
);

/// Records every post; answers Gone for connections in `gone`, and throttles the next
/// `throttles` posts.
#[derive(Default)]
struct Gateway {
    posts: Mutex<Vec<(String, Value)>>,
    gone: Mutex<HashSet<String>>,
    closed: Mutex<Vec<String>>,
    throttles: AtomicU32,
}

impl Gateway {
    fn posted_to(&self, connection: &str) -> Vec<Value> {
        self.posts
            .lock()
            .unwrap()
            .iter()
            .filter(|(to, _)| to == connection)
            .map(|(_, message)| message.clone())
            .collect()
    }

    fn events_to(&self, connection: &str) -> Vec<String> {
        self.posted_to(connection)
            .iter()
            .filter(|m| m["type"] == "event")
            .map(|m| m["event"]["cursor"].as_str().unwrap().to_owned())
            .collect()
    }
}

#[async_trait]
impl ConnectionManagement for Gateway {
    async fn post(&self, connection_id: &str, message: &str) -> Result<(), PostError> {
        if self.gone.lock().unwrap().contains(connection_id) {
            return Err(PostError::Gone);
        }
        if self
            .throttles
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(PostError::Throttled);
        }
        self.posts.lock().unwrap().push((
            connection_id.to_owned(),
            serde_json::from_str(message).unwrap(),
        ));
        Ok(())
    }

    async fn close(&self, connection_id: &str) -> Result<(), PostError> {
        self.closed.lock().unwrap().push(connection_id.to_owned());
        Ok(())
    }
}

fn sample(name: &str) -> ApiGatewayWebsocketProxyRequest {
    let text = std::fs::read_to_string(format!("{}/../events/{name}", env!("CARGO_MANIFEST_DIR")))
        .unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The `$connect` sample for `connection`, with `query` as its query string.
fn connect_event(connection: &str, query: &[(&str, &str)]) -> ApiGatewayWebsocketProxyRequest {
    let mut event = sample("apigw-ws-connect.json");
    event.request_context.connection_id = Some(connection.to_owned());
    let query: std::collections::HashMap<String, Vec<String>> = query
        .iter()
        .map(|(name, value)| ((*name).to_owned(), vec![(*value).to_owned()]))
        .collect();
    event.query_string_parameters = query.clone().into();
    event.multi_value_query_string_parameters = query.into();
    event
}

fn message_event(connection: &str, body: Value) -> ApiGatewayWebsocketProxyRequest {
    let mut event = sample("apigw-ws-subscribe.json");
    event.request_context.connection_id = Some(connection.to_owned());
    event.body = Some(body.to_string());
    event
}

async fn token(server: &orrery_tests::TestApp, key: &str) -> String {
    let minted = server
        .as_key(key)
        .post("/v1/realtime/tokens", json!({}))
        .expect(StatusCode::CREATED)
        .await;
    minted["token"].as_str().unwrap().to_owned()
}

/// Runs `event` through the events consumer the way the events queue would, with `gateway`.
async fn consume(app: &orrery::App, gateway: std::sync::Arc<Gateway>, event: &Event) -> Outcome {
    let consumer = orrery_fn_events::EventsConsumer::with_websockets(app.clone(), gateway);
    consumer
        .handle(&IncomingMessage {
            id: event.id.clone(),
            body: serde_json::to_string(event).unwrap(),
            receipt: "r".into(),
            receive_count: 1,
        })
        .await
}

async fn connect_subscribe_push_and_disconnect(kind: Backend) {
    let server = orrery_tests::serve_without_workers(orrery_tests::backend(kind).await).await;
    let app = server.app();
    let (account, key) = create_account(&server, "basic").await;
    let account = AccountId::parse(&account).unwrap();
    let gateway = std::sync::Arc::new(Gateway::default());
    // The sample `$connect`: a token in the URL, after=0, two types.
    let token = token(&server, &key).await;
    let sample_id = sample("apigw-ws-connect.json")
        .request_context
        .connection_id
        .unwrap();
    let connect = connect_event(
        &sample_id,
        &[
            ("token", &token),
            ("after", "0"),
            ("types", "chart.calculated,key.created"),
        ],
    );
    let connection = connect.request_context.connection_id.clone().unwrap();
    let response = orrery_fn_realtime::gateway::handle(app, gateway.as_ref(), connect).await;
    assert_eq!(response.status_code, 200, "{:?}", response.body);
    let record = connections::find(app, &connection)
        .await
        .unwrap()
        .expect("stored");
    assert_eq!(record.account_id, account);
    assert_eq!(record.cursor, 0);

    // The account's first key is in its log (the consumer would have put it there).
    let created = Event::new(EventType::KeyCreated, &account, json!({}));
    assert_eq!(consume(app, gateway.clone(), &created).await, Outcome::Done);
    // Pushed already: the connection subscribed to key.created through its URL.
    assert_eq!(gateway.events_to(&connection), ["1"]);

    // The sample `subscribe` (chart.calculated, after 0): acknowledged, then a catch-up that
    // sends nothing twice.
    let response = orrery_fn_realtime::gateway::handle(
        app,
        gateway.as_ref(),
        sample("apigw-ws-subscribe.json"),
    )
    .await;
    assert_eq!(response.status_code, 200);
    let posted = gateway.posted_to(&connection);
    let ack = posted
        .iter()
        .find(|m| m["type"] == "subscribed")
        .expect("an ack");
    assert_eq!(
        ack["subscription"]["types"],
        json!(["chart.calculated", "key.created"])
    );

    // New events: pushed once each, in order, whether the push or a catch-up sends them.
    for n in 0..3 {
        let chart = Event::new(EventType::ChartCalculated, &account, json!({"n": n}));
        assert_eq!(consume(app, gateway.clone(), &chart).await, Outcome::Done);
    }
    let ping = message_event(&connection, json!({"action": "ping"}));
    orrery_fn_realtime::gateway::handle(app, gateway.as_ref(), ping).await;
    // `after: 0` asked for entry 1 again; everything else once.
    assert_eq!(gateway.events_to(&connection), ["1", "1", "2", "3", "4"]);
    assert!(
        gateway
            .posted_to(&connection)
            .iter()
            .any(|m| m["type"] == "pong")
    );

    // A redelivered event is pushed to nobody again.
    let again = Event::new(EventType::ChartCalculated, &account, json!({}));
    consume(app, gateway.clone(), &again).await;
    let before = gateway.events_to(&connection).len();
    consume(app, gateway.clone(), &again).await;
    assert_eq!(gateway.events_to(&connection).len(), before);

    // A bad message is answered with an `error`, the route still succeeds.
    let bad = message_event(
        &connection,
        json!({"action": "subscribe", "types": ["nope"]}),
    );
    let response = orrery_fn_realtime::gateway::handle(app, gateway.as_ref(), bad).await;
    assert_eq!(response.status_code, 200);
    let last = gateway.posted_to(&connection).pop().unwrap();
    assert_eq!(last["type"], "error");
    assert_eq!(last["problem"]["status"], 422);

    // The sample `$disconnect` forgets the connection.
    let response = orrery_fn_realtime::gateway::handle(
        app,
        gateway.as_ref(),
        sample("apigw-ws-disconnect.json"),
    )
    .await;
    assert_eq!(response.status_code, 200);
    assert!(connections::find(app, &connection).await.unwrap().is_none());
    assert!(
        connections::of_account(app, &account)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn connect_refusals_leave_nothing_behind(kind: Backend) {
    let options = orrery_tests::TestOptions {
        config: orrery::config::Config {
            tiers: orrery_tests::tiers_with(&[("free", "realtime_connections", 1)]),
            ..Default::default()
        },
    };
    let server =
        orrery_tests::serve_without_workers(orrery_tests::backend_with(kind, options).await).await;
    let app = server.app();
    let (account, key) = create_account(&server, "free").await;
    let account = AccountId::parse(&account).unwrap();
    let gateway = Gateway::default();
    let token = token(&server, &key).await;
    let handle = |event| orrery_fn_realtime::gateway::handle(app, &gateway, event);

    for (query, status) in [
        (vec![], 401),
        (vec![("token", key.as_str())], 401),
        (vec![("token", "ort_forged.x")], 401),
        (vec![("token", token.as_str()), ("after", "99")], 400),
        (vec![("token", token.as_str()), ("types", "nope")], 422),
    ] {
        let response = handle(connect_event("refused", &query)).await;
        assert_eq!(response.status_code, status, "{query:?}");
        assert!(connections::find(app, "refused").await.unwrap().is_none());
    }
    // One place on this tier: the second connection is a 429 and is not stored.
    let ok = handle(connect_event("first", &[("token", &token)])).await;
    assert_eq!(ok.status_code, 200);
    let refused = handle(connect_event("second", &[("token", &token)])).await;
    assert_eq!(refused.status_code, 429);
    let stored = connections::of_account(app, &account).await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].connection_id, "first");
}

async fn gone_connections_are_forgotten_and_throttling_is_retried(kind: Backend) {
    let server = orrery_tests::serve_without_workers(orrery_tests::backend(kind).await).await;
    let app = server.app();
    let (account, key) = create_account(&server, "basic").await;
    let account = AccountId::parse(&account).unwrap();
    let gateway = std::sync::Arc::new(Gateway::default());
    let token = token(&server, &key).await;
    for connection in ["alive", "gone"] {
        let response = orrery_fn_realtime::gateway::handle(
            app,
            gateway.as_ref(),
            connect_event(connection, &[("token", &token)]),
        )
        .await;
        assert_eq!(response.status_code, 200);
    }
    gateway.gone.lock().unwrap().insert("gone".into());
    // Two throttled posts are retried with backoff: the event still arrives, once.
    gateway.throttles.store(2, Ordering::SeqCst);
    let chart = Event::new(EventType::ChartCalculated, &account, json!({}));
    assert_eq!(consume(app, gateway.clone(), &chart).await, Outcome::Done);
    assert_eq!(gateway.events_to("alive"), ["1"]);
    // Gone: forgotten, the account's other connection kept.
    let open: Vec<String> = connections::of_account(app, &account)
        .await
        .unwrap()
        .into_iter()
        .map(|record| record.connection_id)
        .collect();
    assert_eq!(open, ["alive"]);
    // Throttled past the retries: the message is retried later, and then nobody gets it twice.
    gateway.throttles.store(100, Ordering::SeqCst);
    let next = Event::new(EventType::ChartCalculated, &account, json!({}));
    assert!(matches!(
        consume(app, gateway.clone(), &next).await,
        Outcome::RetryAfter(_)
    ));
    gateway.throttles.store(0, Ordering::SeqCst);
    assert_eq!(consume(app, gateway.clone(), &next).await, Outcome::Done);
    assert_eq!(gateway.events_to("alive"), ["1", "2"]);
}

async fn the_scheduled_sweep_sends_heartbeats_and_reconnect_hints(kind: Backend) {
    let server = orrery_tests::serve_without_workers(orrery_tests::backend(kind).await).await;
    let app = server.app();
    let (account, key) = create_account(&server, "basic").await;
    let account = AccountId::parse(&account).unwrap();
    let gateway = Gateway::default();
    let token = token(&server, &key).await;
    for connection in ["fresh", "old", "gone"] {
        let event = connect_event(connection, &[("token", &token)]);
        let response = orrery_fn_realtime::gateway::handle(app, &gateway, event).await;
        assert_eq!(response.status_code, 200);
    }
    // One connection nears API Gateway's 2-hour cap; another's client has gone.
    let old = connections::find(app, "old").await.unwrap().unwrap();
    connections::update(app, &old, |record| {
        record.connected_at -= 2 * 3600 - 120;
        true
    })
    .await
    .unwrap();
    gateway.gone.lock().unwrap().insert("gone".into());

    let scheduled: Value = serde_json::from_str(
        &std::fs::read_to_string(format!(
            "{}/../events/scheduled-sweep.json",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap(),
    )
    .unwrap();
    let swept =
        orrery_fn_realtime::gateway::handle_invocation(app, &gateway, scheduled.clone()).await;
    assert_eq!(swept, json!({"heartbeats": 2, "gone": 1, "failed": 0}));
    for connection in ["fresh", "old"] {
        let posted = gateway.posted_to(connection);
        assert_eq!(
            posted[0],
            json!({"type": "heartbeat", "cursor": "0"}),
            "{connection}"
        );
    }
    assert_eq!(gateway.posted_to("fresh").len(), 1, "no hint an hour early");
    let hint = &gateway.posted_to("old")[1];
    assert_eq!(hint["type"], "reconnect");
    assert_eq!(hint["cursor"], "0");
    let open: Vec<String> = connections::of_account(app, &account)
        .await
        .unwrap()
        .into_iter()
        .map(|record| record.connection_id)
        .collect();
    assert_eq!(open.len(), 2);
    assert!(!open.contains(&"gone".to_owned()));
    // The hint goes out once.
    orrery_fn_realtime::gateway::handle_invocation(app, &gateway, scheduled).await;
    let hints = gateway
        .posted_to("old")
        .iter()
        .filter(|m| m["type"] == "reconnect")
        .count();
    assert_eq!(hints, 1);
}

/// The real management client against moto's management API: the request is signed, routed
/// and accepted (moto keeps what is posted but offers no way to read it back, and has no Gone).
#[tokio::test]
async fn the_gateway_client_posts_and_closes_through_the_management_api() {
    let sdk = orrery_tests::moto_sdk_config().await;
    let endpoint = std::env::var(orrery_tests::MOTO_ENDPOINT_VARIABLE).unwrap();
    let management = orrery_realtime::fanout::GatewayManagement::new(&sdk, &endpoint);
    let message = r#"{"type":"pong"}"#;
    assert_eq!(management.post("CmE8xcY5oAMCJQg=", message).await, Ok(()));
    assert_eq!(management.close("CmE8xcY5oAMCJQg=").await, Ok(()));
}
