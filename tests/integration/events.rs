//! Event publishing and the events consumer, end to end on both runtimes' queue.

use std::sync::Arc;
use std::time::Duration;

use orrery::consumer::{WorkerSettings, spawn_worker};
use orrery_fn_events::EventsConsumer;

use orrery::events::{Event, EventType};
use orrery::queue::OutgoingMessage;
use orrery_tests::Backend;
use serde_json::json;

on_both_backends!(
    published_events_carry_the_envelope,
    the_worker_consumes_events_and_dead_letters_poison
);

async fn published_events_carry_the_envelope(kind: Backend) {
    let backend = orrery_tests::backend(kind).await;
    let app = &backend.app;
    let account = orrery::ids::AccountId::generate();
    let event = Event::new(
        EventType::ChartCalculated,
        &account,
        json!({"chart_id": "chart_1"}),
    );
    app.events.publish(&event).await.unwrap();
    let received = app
        .queues
        .events
        .main
        .receive(10, Duration::from_secs(30), Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(received.len(), 1, "exactly one send per event");
    let body: serde_json::Value = serde_json::from_str(&received[0].body).unwrap();
    assert_eq!(body["id"], json!(event.id));
    assert_eq!(body["type"], "chart.calculated");
    assert_eq!(body["account_id"], account.as_str());
    assert_eq!(body["data"]["chart_id"], "chart_1");
    assert!(body["timestamp"].as_str().unwrap().ends_with('Z'));
}

async fn the_worker_consumes_events_and_dead_letters_poison(kind: Backend) {
    let backend = orrery_tests::backend(kind).await;
    let app = backend.app.clone();
    // The events consumer in a worker, as orrery-local runs it, with a 1 s visibility so the
    // poison message's retries reach the dead-letter queue within the test.
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let settings = WorkerSettings {
        batch_size: 10,
        visibility: Duration::from_secs(1),
        wait: Duration::from_secs(1),
        ..WorkerSettings::default()
    };
    let worker = spawn_worker(
        Arc::new(EventsConsumer::new(app.clone())),
        app.queues.events.main.clone(),
        settings,
        shutdown,
    );

    app.events
        .publish(&Event::new(
            EventType::KeyCreated,
            &orrery::ids::AccountId::generate(),
            json!({}),
        ))
        .await
        .unwrap();
    app.queues
        .events
        .main
        .send(OutgoingMessage::new("not an event"))
        .await
        .unwrap();

    let dead = orrery_tests::eventually(Duration::from_secs(30), || async {
        let dead = app
            .queues
            .events
            .dead_letters
            .receive(10, Duration::from_secs(30), Duration::ZERO)
            .await
            .unwrap();
        (!dead.is_empty()).then_some(dead)
    })
    .await
    .expect("the undecodable message reaches the dead-letter queue");
    assert_eq!(dead.len(), 1);
    assert_eq!(
        dead[0].body, "not an event",
        "only the poison message is dead-lettered"
    );
    stop.send_replace(true);
    worker.await.unwrap();
    let left = app
        .queues
        .events
        .main
        .receive(10, Duration::from_secs(30), Duration::from_secs(2))
        .await
        .unwrap();
    assert!(
        left.is_empty(),
        "the valid event was handled and deleted: {left:?}"
    );
}
