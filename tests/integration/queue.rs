//! The queue's behavioural suite, identical for SQS (moto) and the embedded queue. Uses the
//! events queue pair, whose dead-letter policy is `EVENTS_MAX_RECEIVES` on both backends.

use std::collections::HashSet;
use std::time::Duration;

use orrery::app::EVENTS_MAX_RECEIVES;
use orrery::queue::{OutgoingMessage, QueueError};
use orrery_tests::Backend;

on_both_backends!(
    sends_receives_and_deletes,
    handled_messages_are_deleted_in_batches,
    batches_send_and_receive_up_to_ten,
    visibility_timeout_hides_then_redelivers,
    change_visibility_reschedules,
    message_received_too_often_lands_in_the_dead_letter_queue,
    dead_letters_can_be_moved_back,
    delayed_messages_wait,
    invalid_requests_are_refused,
);

const NO_WAIT: Duration = Duration::ZERO;
const LONG: Duration = Duration::from_secs(30);

async fn sends_receives_and_deletes(kind: Backend) {
    let backend = orrery_tests::backend(kind).await;
    let queue = &backend.app.queues.events.main;
    let id = queue.send(OutgoingMessage::new("hello")).await.unwrap();
    let received = queue
        .receive(10, LONG, Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].id, id);
    assert_eq!(received[0].body, "hello");
    assert_eq!(received[0].receive_count, 1);
    queue.delete(&received[0].receipt).await.unwrap();
    assert!(queue.receive(10, LONG, NO_WAIT).await.unwrap().is_empty());
}

async fn handled_messages_are_deleted_in_batches(kind: Backend) {
    let backend = orrery_tests::backend(kind).await;
    let queue = &backend.app.queues.events.main;
    for chunk in 0..2 {
        let bodies: Vec<String> = (0..6).map(|i| format!("m{chunk}-{i}")).collect();
        queue
            .send_batch(bodies.iter().map(OutgoingMessage::new).collect())
            .await
            .unwrap();
    }
    let mut receipts = Vec::new();
    for _ in 0..10 {
        receipts.extend(
            queue
                .receive(10, LONG, Duration::from_secs(1))
                .await
                .unwrap()
                .into_iter()
                .map(|m| m.receipt),
        );
        if receipts.len() == 12 {
            break;
        }
    }
    assert_eq!(receipts.len(), 12);
    // More than one SQS batch (10) at once.
    assert_eq!(queue.delete_batch(receipts).await, Vec::<String>::new());
    assert!(queue.receive(10, LONG, NO_WAIT).await.unwrap().is_empty());
}

async fn batches_send_and_receive_up_to_ten(kind: Backend) {
    let backend = orrery_tests::backend(kind).await;
    let queue = &backend.app.queues.events.main;
    let bodies: Vec<String> = (0..10).map(|i| format!("m{i}")).collect();
    let ids = queue
        .send_batch(bodies.iter().map(OutgoingMessage::new).collect())
        .await
        .unwrap();
    assert_eq!(ids.len(), 10);
    let mut seen = HashSet::new();
    for _ in 0..10 {
        for message in queue
            .receive(10, LONG, Duration::from_secs(1))
            .await
            .unwrap()
        {
            seen.insert(message.body.clone());
            queue.delete(&message.receipt).await.unwrap();
        }
        if seen.len() == 10 {
            break;
        }
    }
    assert_eq!(seen, bodies.into_iter().collect());
}

async fn visibility_timeout_hides_then_redelivers(kind: Backend) {
    let backend = orrery_tests::backend(kind).await;
    let queue = &backend.app.queues.events.main;
    queue.send(OutgoingMessage::new("retry me")).await.unwrap();
    let first = queue
        .receive(1, Duration::from_secs(1), Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(first.len(), 1);
    assert!(
        queue.receive(1, LONG, NO_WAIT).await.unwrap().is_empty(),
        "hidden while in flight"
    );
    let again = orrery_tests::eventually(Duration::from_secs(5), || async {
        let batch = queue.receive(1, LONG, NO_WAIT).await.unwrap();
        (!batch.is_empty()).then_some(batch)
    })
    .await
    .expect("redelivered after the visibility timeout");
    assert_eq!(again[0].id, first[0].id);
    assert_eq!(again[0].receive_count, 2);
}

async fn change_visibility_reschedules(kind: Backend) {
    let backend = orrery_tests::backend(kind).await;
    let queue = &backend.app.queues.events.main;
    queue
        .send(OutgoingMessage::new("reschedule"))
        .await
        .unwrap();
    let received = queue
        .receive(1, LONG, Duration::from_secs(2))
        .await
        .unwrap();
    assert!(queue.receive(1, LONG, NO_WAIT).await.unwrap().is_empty());
    queue
        .change_visibility(&received[0].receipt, Duration::ZERO)
        .await
        .unwrap();
    let again = queue
        .receive(1, LONG, Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(again.len(), 1, "visible again at once");
    queue.delete(&again[0].receipt).await.unwrap();
}

async fn message_received_too_often_lands_in_the_dead_letter_queue(kind: Backend) {
    let backend = orrery_tests::backend(kind).await;
    let pair = &backend.app.queues.events;
    let id = pair
        .main
        .send(OutgoingMessage::new("poison"))
        .await
        .unwrap();
    for attempt in 1..=EVENTS_MAX_RECEIVES {
        let batch = pair
            .main
            .receive(1, Duration::ZERO, Duration::from_secs(2))
            .await
            .unwrap();
        assert_eq!(batch.len(), 1, "attempt {attempt} receives it");
        assert_eq!(batch[0].receive_count, attempt);
    }
    assert!(
        pair.main
            .receive(1, LONG, Duration::from_secs(1))
            .await
            .unwrap()
            .is_empty(),
        "gone from the main queue"
    );
    let dead = orrery_tests::eventually(Duration::from_secs(5), || async {
        let batch = pair.dead_letters.receive(1, LONG, NO_WAIT).await.unwrap();
        (!batch.is_empty()).then_some(batch)
    })
    .await
    .expect("in the dead-letter queue");
    assert_eq!(dead[0].body, "poison");
    assert_eq!(dead[0].id, id, "the message keeps its id");
}

async fn dead_letters_can_be_moved_back(kind: Backend) {
    let backend = orrery_tests::backend(kind).await;
    let pair = &backend.app.queues.events;
    pair.dead_letters
        .send_batch(vec![OutgoingMessage::new("d1"), OutgoingMessage::new("d2")])
        .await
        .unwrap();
    assert_eq!(pair.redrive(100).await.unwrap(), 2);
    assert!(
        pair.dead_letters
            .receive(10, LONG, NO_WAIT)
            .await
            .unwrap()
            .is_empty()
    );
    let mut bodies = Vec::new();
    for _ in 0..5 {
        bodies.extend(
            pair.main
                .receive(10, LONG, Duration::from_secs(1))
                .await
                .unwrap()
                .into_iter()
                .map(|m| m.body),
        );
        if bodies.len() == 2 {
            break;
        }
    }
    bodies.sort();
    assert_eq!(bodies, ["d1", "d2"]);
}

async fn delayed_messages_wait(kind: Backend) {
    let backend = orrery_tests::backend(kind).await;
    let queue = &backend.app.queues.events.main;
    queue
        .send(OutgoingMessage::new("later").delayed(Duration::from_secs(2)))
        .await
        .unwrap();
    assert!(
        queue.receive(1, LONG, NO_WAIT).await.unwrap().is_empty(),
        "not visible before its delay"
    );
    let later = queue
        .receive(1, LONG, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(later.len(), 1, "visible after its delay");
}

async fn invalid_requests_are_refused(kind: Backend) {
    let backend = orrery_tests::backend(kind).await;
    let queue = &backend.app.queues.events.main;
    assert!(matches!(
        queue.send(OutgoingMessage::new("")).await,
        Err(QueueError::Invalid(_))
    ));
    let eleven = (0..11)
        .map(|i| OutgoingMessage::new(format!("{i}")))
        .collect();
    assert!(matches!(
        queue.send_batch(eleven).await,
        Err(QueueError::Invalid(_))
    ));
    assert!(matches!(
        queue.receive(11, LONG, NO_WAIT).await,
        Err(QueueError::Invalid(_))
    ));
    let too_late = OutgoingMessage::new("x").delayed(Duration::from_secs(901));
    assert!(matches!(
        queue.send(too_late).await,
        Err(QueueError::Invalid(_))
    ));
}
