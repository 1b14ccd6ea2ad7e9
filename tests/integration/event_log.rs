//! The per-account event log (issue #14): every event appended by the events consumer, in
//! order, once, read by `GET /v1/events` after a cursor; expired cursors are told so.

use std::time::{Duration, Instant};

use orrery::events::{Event, EventType};
use orrery::ids::AccountId;
use orrery_realtime::log::{self, Cursor};
use orrery_tests::{Backend, TestApp, create_account, london};
use reqwest::StatusCode;
use serde_json::{Value, json};

on_both_backends!(
    every_event_is_logged_in_order_and_polls_resume_after_a_cursor,
    appends_are_ordered_under_contention_and_once_per_event,
    expired_cursors_are_a_410_naming_where_the_log_starts,
    a_lagging_replica_is_not_mistaken_for_expiry,
    another_accounts_log_is_invisible_and_bad_queries_are_problems,
    activity_events_are_off_unless_the_account_turns_them_on,
);

/// Polls `/v1/events{query}` until it holds `count` events (the consumer runs in the background).
async fn events_when(server: &TestApp, key: &str, query: &str, count: usize) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let page = server
            .as_key(key)
            .get(&format!("/v1/events{query}"))
            .expect(StatusCode::OK)
            .await;
        let have = page["events"].as_array().unwrap().len();
        if have >= count || Instant::now() > deadline {
            assert_eq!(have, count, "{page}");
            return page;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn cursors(page: &Value) -> Vec<u64> {
    page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| event["cursor"].as_str().unwrap().parse().unwrap())
        .collect()
}

async fn every_event_is_logged_in_order_and_polls_resume_after_a_cursor(kind: Backend) {
    let server = orrery_tests::serve(orrery_tests::backend(kind).await).await;
    let (account, key) = create_account(&server, "basic").await;
    // No webhook endpoint: the log takes every event anyway.
    for n in 0..3 {
        let mut body = london();
        body["latitude"] = json!(40 + n);
        server
            .as_key(&key)
            .post("/v1/charts", body)
            .expect(StatusCode::OK)
            .await;
    }
    server
        .as_key(&key)
        .post("/v1/api-keys", json!({"name": "ci"}))
        .expect(StatusCode::CREATED)
        .await;
    // The account's first key, three charts and a key: in the order the consumer took them.
    let page = events_when(&server, &key, "", 5).await;
    assert_eq!(
        cursors(&page),
        [1, 2, 3, 4, 5],
        "strictly increasing from 1"
    );
    let first = &page["events"][0];
    assert_eq!(first["account_id"], account.as_str());
    assert!(first["id"].as_str().unwrap().starts_with("evt_"));
    assert!(first["timestamp"].as_str().unwrap().ends_with('Z'));
    assert_eq!(page["cursor"], "5");
    assert_eq!(page["has_more"], false);
    let types: Vec<&str> = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| event["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types.iter().filter(|t| **t == "chart.calculated").count(),
        3
    );
    assert_eq!(types.iter().filter(|t| **t == "key.created").count(), 2);

    // Resume after a cursor: exactly the rest.
    let rest = events_when(&server, &key, "?after=2", 3).await;
    assert_eq!(cursors(&rest), [3, 4, 5]);
    assert_eq!(
        rest["events"][0], page["events"][2],
        "the same entry, whoever reads it"
    );
    // Pages: one event, and more to come.
    let one = events_when(&server, &key, "?limit=1", 1).await;
    assert_eq!(
        (one["cursor"].as_str(), one["has_more"].as_bool()),
        (Some("1"), Some(true))
    );
    // A type filter moves the cursor past what it skipped.
    let keys = events_when(&server, &key, "?types=key.created", 2).await;
    assert!(
        keys["events"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["type"] == "key.created")
    );
    assert_eq!(keys["cursor"], "5");
    let none = events_when(&server, &key, "?after=5", 0).await;
    assert_eq!(
        (none["cursor"].as_str(), none["has_more"].as_bool()),
        (Some("5"), Some(false))
    );
}

async fn appends_are_ordered_under_contention_and_once_per_event(kind: Backend) {
    let backend = orrery_tests::backend(kind).await;
    let app = backend.app.clone();
    let account = AccountId::generate();
    let events: Vec<Event> = (0..20)
        .map(|n| Event::new(EventType::BatchProgress, &account, json!({"n": n})))
        .collect();
    // Twenty appenders at once, then each event delivered again.
    let appended =
        futures_util::future::join_all(events.iter().map(|event| log::append(&app, event))).await;
    let mut seen: Vec<u64> = appended.into_iter().map(|c| c.unwrap().0).collect();
    for (event, first) in events.iter().zip(seen.clone()) {
        assert_eq!(
            log::append(&app, event).await.unwrap().0,
            first,
            "a redelivery keeps its cursor"
        );
    }
    seen.sort_unstable();
    assert_eq!(seen, (1..=20).collect::<Vec<u64>>(), "no gap, no duplicate");
    assert_eq!(log::head(&app, &account).await.unwrap(), Cursor(20));
    let page = log::read(&app, &account, Cursor(0), &[], 100)
        .await
        .unwrap();
    assert_eq!(page.events.len(), 20, "each event once");
    let read: Vec<u64> = page.events.iter().map(|e| e.cursor.0).collect();
    assert_eq!(read, (1..=20).collect::<Vec<u64>>());
    let mut ids: Vec<&str> = page.events.iter().map(|e| e.id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 20);
}

async fn expired_cursors_are_a_410_naming_where_the_log_starts(kind: Backend) {
    let server = orrery_tests::serve_without_workers(orrery_tests::backend(kind).await).await;
    let (account, key) = create_account(&server, "basic").await;
    let account = AccountId::parse(&account).unwrap();
    let app = server.app().clone();
    // Three events from four days ago: past the 72 h retention, so their entries are expired.
    for n in 0..3 {
        let mut old = Event::new(EventType::ChartCalculated, &account, json!({"n": n}));
        old.timestamp -= chrono::Duration::hours(96);
        log::append(&app, &old).await.unwrap();
    }
    let gone = server.get_as("/v1/events?after=1", &key).await;
    assert_eq!(gone.status(), StatusCode::GONE);
    assert_eq!(gone.headers()["content-type"], "application/problem+json");
    let problem: Value = gone.json().await.unwrap();
    assert_eq!(problem["oldest_cursor"], "3", "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains("72 hours"));
    // Resuming where it says works, and sees what came since.
    log::append(
        &app,
        &Event::new(EventType::KeyCreated, &account, json!({})),
    )
    .await
    .unwrap();
    let from_start = server.get_as("/v1/events", &key).await;
    assert_eq!(
        from_start.status(),
        StatusCode::GONE,
        "the start itself expired"
    );
    let page = events_when(&server, &key, "?after=3", 1).await;
    assert_eq!(cursors(&page), [4]);
}

async fn another_accounts_log_is_invisible_and_bad_queries_are_problems(kind: Backend) {
    let server = orrery_tests::serve_without_workers(orrery_tests::backend(kind).await).await;
    let (account, key) = create_account(&server, "basic").await;
    let (_, other_key) = create_account(&server, "basic").await;
    let account = AccountId::parse(&account).unwrap();
    for n in 0..2 {
        log::append(
            server.app(),
            &Event::new(EventType::ChartCalculated, &account, json!({"n": n})),
        )
        .await
        .unwrap();
    }
    assert_eq!(cursors(&events_when(&server, &key, "", 2).await), [1, 2]);
    let other = events_when(&server, &other_key, "", 0).await;
    assert_eq!(other["cursor"], "0");
    // Another account's cursor is only a number in one's own log: ahead of it here.
    let ahead = server.get_as("/v1/events?after=2", &other_key).await;
    assert_eq!(ahead.status(), StatusCode::BAD_REQUEST);

    for (query, status) in [
        ("?after=abc", StatusCode::BAD_REQUEST),
        ("?after=-1", StatusCode::BAD_REQUEST),
        ("?types=chart.exploded", StatusCode::UNPROCESSABLE_ENTITY),
        ("?limit=0", StatusCode::UNPROCESSABLE_ENTITY),
        ("?limit=101", StatusCode::UNPROCESSABLE_ENTITY),
    ] {
        let response = server.get_as(&format!("/v1/events{query}"), &key).await;
        assert_eq!(response.status(), status, "{query}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
    }
    let unauthenticated = server
        .client
        .get(server.url("/v1/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthenticated.status(), StatusCode::UNAUTHORIZED);
}

async fn a_lagging_replica_is_not_mistaken_for_expiry(kind: Backend) {
    let backend = orrery_tests::backend(kind).await;
    let real = backend.app.clone();
    let account = AccountId::generate();
    for n in 0..5 {
        let event = Event::new(EventType::BatchProgress, &account, json!({"n": n}));
        log::append(&real, &event).await.unwrap();
    }
    let lagging = orrery_tests::lagging::behind(&real, 2);
    // A reader holding cursor 4 (pushed to it a moment ago): not "ahead" of a stale head.
    let page = log::read(&lagging, &account, Cursor(4), &[], 100)
        .await
        .expect("cursor 4 is within the log");
    assert_eq!(
        page.events.iter().map(|e| e.cursor.0).collect::<Vec<_>>(),
        [5]
    );
    // After cursor 2 the replica sees nothing yet while the head says 5: not a 410, the
    // entries themselves, read strongly.
    let page = log::read(&lagging, &account, Cursor(2), &[], 100)
        .await
        .expect("entries 3 to 5 exist; they only have not reached the replica");
    assert_eq!(
        page.events.iter().map(|e| e.cursor.0).collect::<Vec<_>>(),
        [3, 4, 5]
    );
    // A replica that has entries 2, 4 and 5 but not yet 3: entry 3 is read, not skipped.
    let holed = orrery_tests::lagging::with_holes(&real, &[3]);
    let page = log::read(&holed, &account, Cursor(1), &[], 100)
        .await
        .unwrap();
    assert_eq!(
        page.events.iter().map(|e| e.cursor.0).collect::<Vec<_>>(),
        [2, 3, 4, 5]
    );
}

/// `chart.calculated` and `reading.generated` cost more to log than the request that raised them
/// (docs/cost.md): an account publishes them only once the operator turns them on, and a webhook
/// cannot subscribe to them before (a 422 that stores nothing).
async fn activity_events_are_off_unless_the_account_turns_them_on(kind: Backend) {
    let server = orrery_tests::serve(orrery_tests::backend(kind).await).await;
    let created = server
        .as_key(orrery_tests::ADMIN_KEY)
        .post(
            "/v1/admin/accounts",
            json!({"name": "Quiet", "tier": "basic"}),
        )
        .expect(StatusCode::CREATED)
        .await;
    assert_eq!(created["account"]["activity_events"], false, "{created}");
    let account = created["account"]["id"].as_str().unwrap().to_owned();
    let key = created["api_key"]["key"].as_str().unwrap().to_owned();
    let as_owner = || server.as_key(&key);
    // A chart and a reading: each would publish its activity event.
    let chart_and_reading = async || {
        as_owner()
            .post("/v1/charts", london())
            .expect(StatusCode::OK)
            .await;
        as_owner()
            .post("/v1/readings", london())
            .expect(StatusCode::OK)
            .await;
    };

    chart_and_reading().await;
    let refused = as_owner()
        .post(
            "/v1/webhooks",
            json!({"url": "https://example.com/hook", "event_types": ["key.created", "chart.calculated"]}),
        )
        .expect(StatusCode::UNPROCESSABLE_ENTITY)
        .await;
    assert!(
        refused.to_string().contains("activity event"),
        "the problem says why: {refused}"
    );
    let hooks = as_owner().get("/v1/webhooks").expect(StatusCode::OK).await;
    assert_eq!(hooks["data"], json!([]), "the refusal stored nothing");
    // A key created after the chart and the reading: once its event is logged, theirs would be.
    as_owner()
        .post("/v1/api-keys", json!({"name": "after"}))
        .expect(StatusCode::CREATED)
        .await;
    let quiet = events_when(&server, &key, "", 2).await;
    let types = |page: &Value| -> Vec<String> {
        page["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|event| event["type"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(types(&quiet), ["key.created", "key.created"], "{quiet}");

    let patched = server
        .as_key(orrery_tests::ADMIN_KEY)
        .patch(
            &format!("/v1/admin/accounts/{account}"),
            json!({"activity_events": true}),
        )
        .expect(StatusCode::OK)
        .await;
    assert_eq!(patched["activity_events"], true, "{patched}");
    chart_and_reading().await;
    let hook = as_owner()
        .post(
            "/v1/webhooks",
            json!({"url": "https://example.com/hook", "event_types": ["chart.calculated"]}),
        )
        .expect(StatusCode::CREATED)
        .await;
    let loud = events_when(&server, &key, "?after=2", 2).await;
    assert_eq!(
        types(&loud),
        ["chart.calculated", "reading.generated"],
        "{loud}"
    );

    // Turned off again: the endpoint keeps the type it has (a PATCH sending it back is fine),
    // but cannot add another activity type.
    server
        .as_key(orrery_tests::ADMIN_KEY)
        .patch(
            &format!("/v1/admin/accounts/{account}"),
            json!({"activity_events": false}),
        )
        .expect(StatusCode::OK)
        .await;
    let hook = format!("/v1/webhooks/{}", hook["id"].as_str().unwrap());
    as_owner()
        .patch(
            &hook,
            json!({"event_types": ["chart.calculated"], "description": "kept"}),
        )
        .expect(StatusCode::OK)
        .await;
    as_owner()
        .patch(
            &hook,
            json!({"event_types": ["chart.calculated", "reading.generated"]}),
        )
        .expect(StatusCode::UNPROCESSABLE_ENTITY)
        .await;
}
