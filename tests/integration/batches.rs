//! Batch jobs over HTTP on both backends: mixed operations computed once per input and equal
//! to the single-item endpoints, every invalid item listed, the quota reserved at once and
//! given back by failures and cancellation, results streamed while the batch runs and resumed
//! by cursor, idempotent submission, retries, expiry, events and tenant isolation.
//!
//! The server runs without queue workers; each test runs the batch worker itself (the same
//! `BatchWorker` the `batch-worker` function and orrery-local run), chunk by chunk where it
//! needs a batch caught mid-run, and reads the events the worker publishes from the queue.

use std::time::Duration;

use orrery::consumer::IncomingMessage;
use orrery_batches::worker::BatchWorker;
use orrery_tests::{Backend, TestApp, create_account, london};
use reqwest::StatusCode;
use serde_json::{Value, json};

on_both_backends!(
    mixed_operations_run_once_per_input_and_answer_as_the_single_endpoints,
    invalid_items_are_all_listed_and_nothing_is_accepted,
    quota_is_reserved_at_once_and_failures_and_retries_account_for_it,
    cancel_mid_run_gives_up_the_unstarted_items_and_their_units,
    results_stream_while_running_and_resume_after_a_cursor,
    submissions_are_idempotent,
    another_accounts_batches_are_invisible,
    an_expired_batch_gives_every_unstarted_item_back,
    a_chunk_delivered_twice_at_once_is_counted_once,
);

async fn serve(kind: Backend, config: orrery::config::Config) -> TestApp {
    let backend = orrery_tests::backend_with(kind, orrery_tests::TestOptions { config }).await;
    orrery_tests::serve_without_workers(backend).await
}

/// An account on `tier` with a webhook endpoint (so events are queued to read).
async fn listening_account(server: &TestApp, tier: &str) -> (String, String) {
    let (account, key) = create_account(server, tier).await;
    server
        .as_key(&key)
        .post("/v1/webhooks", json!({"url": "https://example.com/hooks"}))
        .expect(StatusCode::CREATED)
        .await;
    (account, key)
}

fn chart(custom_id: &str, body: Value) -> Value {
    json!({"custom_id": custom_id, "operation": "chart", "body": body})
}

fn birth(n: usize) -> Value {
    json!({"datetime": format!("{}-03-0{}T0{}:15Z", 1950 + n % 60, 1 + n % 9, n % 10),
           "latitude": 40.0 + (n % 20) as f64, "longitude": -3.0})
}

/// Runs up to `max` chunk messages of the queue through `worker`; returns how many it ran.
async fn run_chunks(server: &TestApp, worker: &BatchWorker, max: usize) -> usize {
    let queue = server.app().queues.batch_items.main.clone();
    let mut handled = 0;
    while handled < max {
        let messages = queue
            .receive(
                (max - handled).min(10),
                Duration::from_secs(60),
                Duration::from_millis(500),
            )
            .await
            .unwrap();
        if messages.is_empty() {
            break;
        }
        for message in messages {
            let outcome = worker
                .handle(&IncomingMessage {
                    id: message.id,
                    body: message.body,
                    receipt: message.receipt.clone(),
                    receive_count: message.receive_count,
                })
                .await;
            assert_eq!(outcome, orrery::consumer::Outcome::Done);
            queue.delete(&message.receipt).await.unwrap();
            handled += 1;
        }
    }
    handled
}

async fn submit(
    server: &TestApp,
    key: &str,
    requests: Vec<Value>,
) -> (Value, reqwest::header::HeaderMap) {
    let response = server
        .client
        .post(server.url("/v1/batches"))
        .bearer_auth(key)
        .json(&json!({"requests": requests, "metadata": {"import": "test"}}))
        .send()
        .await
        .unwrap();
    let headers = response.headers().clone();
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    (body, headers)
}

fn used(headers: &reqwest::header::HeaderMap) -> u64 {
    headers["x-ratelimit-used"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

async fn status_of(server: &TestApp, key: &str, id: &str) -> Value {
    server
        .as_key(key)
        .get(&format!("/v1/batches/{id}"))
        .expect(StatusCode::OK)
        .await
}

/// The result lines after `query` (`?after=…&status=…`), and the status header.
async fn results(server: &TestApp, key: &str, id: &str, query: &str) -> (Vec<Value>, String) {
    let response = server
        .get_as(&format!("/v1/batches/{id}/results{query}"), key)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/x-ndjson");
    let status = response.headers()["orrery-batch-status"]
        .to_str()
        .unwrap()
        .to_owned();
    let text = response.text().await.unwrap();
    let lines = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    (lines, status)
}

async fn events_of(server: &TestApp, account: &str, kind: &str) -> Vec<Value> {
    orrery_tests::published_events(server.app(), account)
        .await
        .into_iter()
        .filter(|event| event["type"] == kind)
        .collect()
}

async fn mixed_operations_run_once_per_input_and_answer_as_the_single_endpoints(kind: Backend) {
    let server = serve(kind, Default::default()).await;
    let (account, key) = listening_account(&server, "basic").await;
    let natal = london();
    let moment = "2026-06-01T12:00:00Z";
    let polar = json!({"datetime": "1990-05-17T14:30Z", "latitude": 80.0, "longitude": 0.0, "house_system": "placidus"});
    let (batch, headers) = submit(
        &server,
        &key,
        vec![
            chart("chart", natal.clone()),
            // The same instant spelt in UTC: an identical input, computed once.
            chart(
                "chart-again",
                json!({"datetime": "1990-05-17T13:30:00Z", "latitude": 51.5, "longitude": -0.1, "name": "Ada"}),
            ),
            json!({"custom_id": "wheel", "operation": "chart_svg", "body": {"datetime": "1990-05-17T14:30", "timezone": "Europe/London", "latitude": 51.5, "longitude": -0.1, "theme": "dark"}}),
            json!({"custom_id": "transits", "operation": "transits", "body": {"natal": natal, "moment": moment}}),
            json!({"custom_id": "synastry", "operation": "synastry", "body": {"first": natal, "second": birth(3)}}),
            json!({"custom_id": "reading", "operation": "reading", "body": natal}),
            chart("polar", polar.clone()),
        ],
    )
    .await;
    assert_eq!(batch["status"], "queued");
    assert_eq!(
        batch["counts"],
        json!({"total": 7, "completed": 0, "failed": 0, "cancelled": 0})
    );
    assert_eq!(batch["unique_inputs"], 6);
    assert_eq!(batch["metadata"]["import"], "test");
    assert!(batch["id"].as_str().unwrap().starts_with("batch_"));
    assert_eq!(used(&headers), 7, "seven batch_items units reserved");
    assert_eq!(
        headers["ratelimit-policy"],
        "\"batch-items-daily\";q=500;w=86400"
    );
    let id = batch["id"].as_str().unwrap();

    let worker = BatchWorker::new(server.app().clone());
    assert_eq!(run_chunks(&server, &worker, 10).await, 1, "one chunk");
    let done = status_of(&server, &key, id).await;
    assert_eq!(done["status"], "partially_succeeded");
    assert_eq!(
        done["counts"],
        json!({"total": 7, "completed": 6, "failed": 1, "cancelled": 0})
    );
    assert_eq!(done["eta_seconds"], 0);

    let (lines, status) = results(&server, &key, id, "").await;
    assert_eq!(status, "partially_succeeded");
    let ids: Vec<_> = lines
        .iter()
        .map(|l| l["custom_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "chart",
            "chart-again",
            "wheel",
            "transits",
            "synastry",
            "reading",
            "polar"
        ],
        "submission order"
    );
    // Each result is what the single-item endpoint answers.
    let single = server.as_key(&key);
    let chart_response = single
        .post("/v1/charts", natal.clone())
        .expect(StatusCode::OK)
        .await;
    assert_eq!(lines[0]["status"], "succeeded");
    assert_eq!(lines[0]["response"], chart_response);
    assert_eq!(
        lines[1]["response"], chart_response,
        "identical input, same answer"
    );
    let svg = lines[2]["response"]["svg"].as_str().unwrap();
    assert!(svg.starts_with("<svg") && roxmltree::Document::parse(svg).is_ok());
    let transits = single
        .post(
            "/v1/charts/transits",
            json!({"natal": natal, "moment": moment}),
        )
        .expect(StatusCode::OK)
        .await;
    assert_eq!(lines[3]["response"], transits);
    let synastry = single
        .post(
            "/v1/charts/synastry",
            json!({"first": natal, "second": birth(3)}),
        )
        .expect(StatusCode::OK)
        .await;
    assert_eq!(lines[4]["response"], synastry);
    let reading = single
        .post("/v1/readings", natal.clone())
        .expect(StatusCode::OK)
        .await;
    assert_eq!(lines[5]["response"], reading);
    let refused = single
        .post("/v1/charts", polar)
        .expect(StatusCode::UNPROCESSABLE_ENTITY)
        .await;
    assert_eq!(lines[6]["status"], "failed");
    assert_eq!(lines[6]["error"], refused, "the single endpoint's problem");
    assert!(lines.iter().all(|l| l["cursor"].is_string()));

    let (failed, _) = results(&server, &key, id, "?status=failed").await;
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["custom_id"], "polar");
    let (succeeded, _) = results(&server, &key, id, "?status=succeeded").await;
    assert_eq!(succeeded.len(), 6);

    // One final event to webhooks, and no per-item events.
    let events = orrery_tests::published_events(server.app(), &account).await;
    let completed: Vec<_> = events
        .iter()
        .filter(|e| e["type"] == "batch.completed")
        .collect();
    assert_eq!(completed.len(), 1, "{events:?}");
    assert_eq!(completed[0]["data"]["status"], "partially_succeeded");
    assert_eq!(completed[0]["data"]["counts"]["failed"], 1);
    let count = |kind: &str| events.iter().filter(|e| e["type"] == kind).count();
    assert_eq!(
        (count("chart.calculated"), count("reading.generated")),
        (1, 1),
        "only the single-item requests above published per-item events"
    );

    // Listing: newest first.
    let (second, _) = submit(&server, &key, vec![chart("x", birth(1))]).await;
    let list = single
        .get("/v1/batches?limit=1")
        .expect(StatusCode::OK)
        .await;
    assert_eq!(list["data"][0]["id"], second["id"]);
    let next = list["next_cursor"].as_str().unwrap();
    let rest = single
        .get(&format!("/v1/batches?limit=5&cursor={next}"))
        .expect(StatusCode::OK)
        .await;
    assert_eq!(rest["data"][0]["id"], id);
    assert!(rest["next_cursor"].is_null());
}

async fn invalid_items_are_all_listed_and_nothing_is_accepted(kind: Backend) {
    let server = serve(kind, Default::default()).await;
    let (account, key) = listening_account(&server, "basic").await;
    let _ = orrery_tests::published_events(server.app(), &account).await;
    let problem = server
        .as_key(&key)
        .post(
            "/v1/batches",
            json!({"requests": [
                chart("ok", london()),
                chart("bad-latitude", json!({"datetime": "1990-05-17T14:30Z", "latitude": 95, "longitude": 0})),
                {"custom_id": "bad-op", "operation": "horoscope", "body": {}},
                chart("ok", birth(2)),
                {"custom_id": "bad-zone", "operation": "reading", "body": {"datetime": "1990-05-17T14:30", "timezone": "Mars/Olympus", "latitude": 1, "longitude": 2}},
            ]}),
        )
        .expect(StatusCode::UNPROCESSABLE_ENTITY)
        .await;
    let items: Vec<(u64, &str)> = problem["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| {
            (
                item["index"].as_u64().unwrap(),
                item["custom_id"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        items,
        [
            (1, "bad-latitude"),
            (2, "bad-op"),
            (3, "ok"),
            (4, "bad-zone")
        ]
    );
    // The field errors are the single-item endpoint's, under `body.`.
    let single = server
        .as_key(&key)
        .post(
            "/v1/charts",
            json!({"datetime": "1990-05-17T14:30Z", "latitude": 95, "longitude": 0}),
        )
        .expect(StatusCode::UNPROCESSABLE_ENTITY)
        .await;
    assert_eq!(problem["items"][0]["errors"][0]["field"], "body.latitude");
    assert_eq!(
        problem["items"][0]["errors"][0]["message"],
        single["errors"][0]["message"]
    );
    assert!(
        problem["items"][2]["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("already used")
    );
    assert_eq!(problem["items"][3]["errors"][0]["field"], "body.timezone");

    // Other refusals, each a problem, none a side effect.
    let raw = |content_type: &'static str, body: Vec<u8>| {
        server
            .client
            .post(server.url("/v1/batches"))
            .bearer_auth(&key)
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let response = raw("text/csv", b"a,b".to_vec()).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let response = raw(
        "application/x-ndjson",
        b"{\"custom_id\":\"a\"}\n{nope".to_vec(),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.text().await.unwrap().contains("Line 2"));
    let response = raw("application/json", vec![b' '; 6 * 1024 * 1024])
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let empty = server
        .as_key(&key)
        .post("/v1/batches", json!({"requests": []}))
        .expect(StatusCode::UNPROCESSABLE_ENTITY)
        .await;
    assert_eq!(empty["errors"][0]["field"], "requests");

    // Nothing was stored, queued, reserved or published.
    let list = server
        .as_key(&key)
        .get("/v1/batches")
        .expect(StatusCode::OK)
        .await;
    assert_eq!(list["data"], json!([]));
    assert!(
        server
            .app()
            .queues
            .batch_items
            .main
            .receive(10, Duration::from_secs(1), Duration::from_millis(300))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        orrery_tests::published_events(server.app(), &account)
            .await
            .is_empty()
    );
    // JSON Lines carry the same items; the reservation shows every earlier refusal was free.
    let lines = format!("{}\n{}\n", chart("a", london()), chart("b", birth(1)));
    let response = raw("application/x-ndjson", lines.into_bytes())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    assert_eq!(used(response.headers()), 2);
}

async fn quota_is_reserved_at_once_and_failures_and_retries_account_for_it(kind: Backend) {
    let config = orrery::config::Config {
        tiers: orrery_tests::tiers_with(&[("free", "batch_items", 10)]),
        ..Default::default()
    };
    let server = serve(kind, config).await;
    let (account, key) = listening_account(&server, "free").await;
    let polar = json!({"datetime": "1990-05-17T14:30Z", "latitude": 80.0, "longitude": 0.0, "house_system": "placidus"});

    // Eleven items against ten units: refused whole, saying what is missing.
    let eleven: Vec<Value> = (0..11).map(|n| chart(&format!("c{n}"), birth(n))).collect();
    let response = server
        .client
        .post(server.url("/v1/batches"))
        .bearer_auth(&key)
        .json(&json!({"requests": eleven}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(response.headers().contains_key("retry-after"));
    let problem: Value = response.json().await.unwrap();
    assert_eq!(problem["needed"], 11);
    assert_eq!(problem["available"], 10);
    assert!(
        problem["resets_at"]
            .as_str()
            .unwrap()
            .ends_with("T00:00:00Z")
    );

    // Four items, one failing when it runs: four reserved, one given back.
    let (batch, headers) = submit(
        &server,
        &key,
        vec![
            chart("a", birth(1)),
            chart("b", birth(2)),
            chart("c", birth(3)),
            chart("polar", polar),
        ],
    )
    .await;
    assert_eq!(used(&headers), 4);
    let worker = BatchWorker::new(server.app().clone());
    run_chunks(&server, &worker, 10).await;
    let id = batch["id"].as_str().unwrap();
    let finished = status_of(&server, &key, id).await;
    assert_eq!(finished["counts"]["failed"], 1);
    // The next submission sees 3 in use, not 4: the failed item's unit came back.
    let (_, headers) = submit(&server, &key, vec![chart("d", birth(4))]).await;
    assert_eq!(used(&headers), 4, "3 kept + 1 new");

    // Retry: a new batch of the failed item only, linked to its parent, reserving its unit.
    let retried = server
        .as_key(&key)
        .post(&format!("/v1/batches/{id}/retry"), json!({}))
        .expect(StatusCode::ACCEPTED)
        .await;
    assert_eq!(retried["parent_id"], id);
    assert_eq!(retried["counts"]["total"], 1);
    run_chunks(&server, &worker, 10).await;
    let retried_id = retried["id"].as_str().unwrap();
    let (lines, _) = results(&server, &key, retried_id, "").await;
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["custom_id"], "polar");
    assert_eq!(
        status_of(&server, &key, retried_id).await["status"],
        "failed"
    );
    let failed_events = events_of(&server, &account, "batch.failed").await;
    assert_eq!(failed_events.len(), 1);
    // A batch without failures has nothing to retry; a running one cannot be retried yet.
    let (clean, _) = submit(&server, &key, vec![chart("e", birth(5))]).await;
    let clean_id = clean["id"].as_str().unwrap();
    server
        .as_key(&key)
        .post(&format!("/v1/batches/{clean_id}/retry"), json!({}))
        .expect(StatusCode::CONFLICT)
        .await;
    run_chunks(&server, &worker, 10).await;
    server
        .as_key(&key)
        .post(&format!("/v1/batches/{clean_id}/retry"), json!({}))
        .expect(StatusCode::CONFLICT)
        .await;
    // 3 + 1 (d) + 0 (retry failed, refunded) + 1 (e) = 5 of 10: six more do not fit.
    let six: Vec<Value> = (0..6).map(|n| chart(&format!("s{n}"), birth(n))).collect();
    let problem = server
        .as_key(&key)
        .post("/v1/batches", json!({"requests": six}))
        .expect(StatusCode::TOO_MANY_REQUESTS)
        .await;
    assert_eq!(problem["available"], 5);
}

async fn cancel_mid_run_gives_up_the_unstarted_items_and_their_units(kind: Backend) {
    let server = serve(kind, Default::default()).await;
    let (account, key) = listening_account(&server, "basic").await;
    let items: Vec<Value> = (0..300)
        .map(|n| chart(&format!("c{n}"), birth(n)))
        .collect();
    let (batch, headers) = submit(&server, &key, items).await;
    assert_eq!(used(&headers), 300);
    let id = batch["id"].as_str().unwrap();
    let worker = BatchWorker::new(server.app().clone());
    assert_eq!(run_chunks(&server, &worker, 1).await, 1);
    assert_eq!(status_of(&server, &key, id).await["status"], "in_progress");

    let cancelled = server
        .as_key(&key)
        .post(&format!("/v1/batches/{id}/cancel"), json!({}))
        .expect(StatusCode::OK)
        .await;
    // Nothing was running: the batch is settled the moment the cancel returns.
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(
        cancelled["counts"],
        json!({"total": 300, "completed": 100, "failed": 0, "cancelled": 200})
    );
    assert!(cancelled["cancel_requested_at"].is_string());
    // The queued messages of the given-up chunks change nothing.
    assert_eq!(run_chunks(&server, &worker, 10).await, 2);
    let after = status_of(&server, &key, id).await;
    assert_eq!(after["counts"], cancelled["counts"]);
    let (lines, _) = results(&server, &key, id, "").await;
    assert_eq!(lines.len(), 100, "finished items keep their results");
    let events = orrery_tests::published_events(server.app(), &account).await;
    let of = |kind: &str| -> Vec<&Value> { events.iter().filter(|e| e["type"] == kind).collect() };
    assert_eq!(of("batch.cancelled").len(), 1);
    // The first chunk's progress, for live views.
    let progress = of("batch.progress");
    assert_eq!(progress.len(), 1, "{events:?}");
    assert_eq!(progress[0]["data"]["counts"]["completed"], 100);
    // 200 units came back: 300 − 200 + 1 = 101.
    let (_, headers) = submit(&server, &key, vec![chart("x", birth(1))]).await;
    assert_eq!(used(&headers), 101);
    server
        .as_key(&key)
        .post(&format!("/v1/batches/{id}/cancel"), json!({}))
        .expect(StatusCode::CONFLICT)
        .await;
}

async fn results_stream_while_running_and_resume_after_a_cursor(kind: Backend) {
    let config = orrery::config::Config {
        // A small page budget, as on Lambda, so a response ends before the lines do.
        batch_results_max_bytes: Some(64 * 1024),
        ..Default::default()
    };
    let server = serve(kind, config).await;
    let (_, key) = create_account(&server, "basic").await;
    let items: Vec<Value> = (0..250)
        .map(|n| chart(&format!("c{n}"), birth(n)))
        .collect();
    let (batch, _) = submit(&server, &key, items).await;
    let id = batch["id"].as_str().unwrap();
    let (lines, status) = results(&server, &key, id, "").await;
    assert_eq!((lines.len(), status.as_str()), (0, "queued"));

    let worker = BatchWorker::new(server.app().clone());
    run_chunks(&server, &worker, 1).await;
    // Read while running, page by page, resuming after the last line's cursor.
    let mut seen: Vec<String> = Vec::new();
    let mut after = String::new();
    loop {
        let (page, status) = results(&server, &key, id, &after).await;
        assert_eq!(status, "in_progress");
        if page.is_empty() {
            break;
        }
        assert!(page.len() < 100, "the byte budget ends a response early");
        seen.extend(
            page.iter()
                .map(|l| l["custom_id"].as_str().unwrap().to_owned()),
        );
        after = format!(
            "?after={}",
            page.last().unwrap()["cursor"].as_str().unwrap()
        );
    }
    // Queues promise no order, so the chunk that ran may be any of them: every line it
    // settled, and only those, was read.
    let settled = status_of(&server, &key, id).await["counts"]["completed"]
        .as_u64()
        .unwrap();
    assert!(settled > 0);
    assert_eq!(seen.len() as u64, settled);
    run_chunks(&server, &worker, 10).await;
    loop {
        let (page, _) = results(&server, &key, id, &after).await;
        if page.is_empty() {
            break;
        }
        seen.extend(
            page.iter()
                .map(|l| l["custom_id"].as_str().unwrap().to_owned()),
        );
        after = format!(
            "?after={}",
            page.last().unwrap()["cursor"].as_str().unwrap()
        );
    }
    // Every line exactly once, although the chunks (which keep identical inputs together)
    // settled out of submission order around the reads.
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 250, "no line twice");
    let mut expected: Vec<String> = (0..250).map(|n| format!("c{n}")).collect();
    expected.sort();
    assert_eq!(sorted, expected, "no line missed");
    assert_eq!(status_of(&server, &key, id).await["status"], "completed");

    // Cursors are tamper-evident and belong to their batch and filter.
    let forged = server
        .get_as(&format!("/v1/batches/{id}/results?after=AAAA"), &key)
        .await;
    assert_eq!(forged.status(), StatusCode::BAD_REQUEST);
    let cursor = after.trim_start_matches("?after=");
    let (other, _) = submit(&server, &key, vec![chart("z", birth(1))]).await;
    let other_id = other["id"].as_str().unwrap();
    let foreign = server
        .get_as(
            &format!("/v1/batches/{other_id}/results?after={cursor}"),
            &key,
        )
        .await;
    assert_eq!(foreign.status(), StatusCode::BAD_REQUEST);
    let filtered = server
        .get_as(
            &format!("/v1/batches/{id}/results?status=failed&after={cursor}"),
            &key,
        )
        .await;
    assert_eq!(filtered.status(), StatusCode::BAD_REQUEST);
    let bad_status = server
        .get_as(&format!("/v1/batches/{id}/results?status=maybe"), &key)
        .await;
    assert_eq!(bad_status.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

async fn submissions_are_idempotent(kind: Backend) {
    let server = serve(kind, Default::default()).await;
    let (_, key) = create_account(&server, "basic").await;
    let body = json!({"requests": [chart("a", london()), chart("b", birth(1))]});
    let send = |body: Value| {
        server
            .client
            .post(server.url("/v1/batches"))
            .bearer_auth(&key)
            .header("idempotency-key", "import-42")
            .json(&body)
            .send()
    };
    let first = send(body.clone()).await.unwrap();
    assert_eq!(first.status(), StatusCode::ACCEPTED);
    assert_eq!(used(first.headers()), 2);
    let location = first.headers()["location"].to_str().unwrap().to_owned();
    let first: Value = first.json().await.unwrap();
    let again = send(body.clone()).await.unwrap();
    assert_eq!(again.status(), StatusCode::OK);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.headers()["location"].to_str().unwrap(), location);
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["id"], first["id"]);
    let other = send(json!({"requests": [chart("c", london())]}))
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // One batch, one reservation, one set of chunk messages.
    let list = server
        .as_key(&key)
        .get("/v1/batches")
        .expect(StatusCode::OK)
        .await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    let (_, headers) = submit(&server, &key, vec![chart("d", birth(2))]).await;
    assert_eq!(used(&headers), 3);
}

async fn another_accounts_batches_are_invisible(kind: Backend) {
    let server = serve(kind, Default::default()).await;
    let (_, owner) = create_account(&server, "basic").await;
    let (_, stranger) = create_account(&server, "basic").await;
    let (batch, _) = submit(&server, &owner, vec![chart("a", london())]).await;
    let id = batch["id"].as_str().unwrap();
    let other = server.as_key(&stranger);
    for path in [
        format!("/v1/batches/{id}"),
        format!("/v1/batches/{id}/results"),
        "/v1/batches/batch_00000000000000000000000000".to_owned(),
        "/v1/batches/not-an-id".to_owned(),
    ] {
        other.get(&path).expect(StatusCode::NOT_FOUND).await;
    }
    other
        .post(&format!("/v1/batches/{id}/cancel"), json!({}))
        .expect(StatusCode::NOT_FOUND)
        .await;
    other
        .post(&format!("/v1/batches/{id}/retry"), json!({}))
        .expect(StatusCode::NOT_FOUND)
        .await;
    let list = other.get("/v1/batches").expect(StatusCode::OK).await;
    assert_eq!(list["data"], json!([]));
    // A key without the batches scope, or without the scope an item needs, is refused.
    let narrow = server
        .as_key(&owner)
        .post(
            "/v1/api-keys",
            json!({"name": "charts only", "scopes": ["charts"]}),
        )
        .expect(StatusCode::CREATED)
        .await;
    server
        .as_key(narrow["key"].as_str().unwrap())
        .post("/v1/batches", json!({"requests": [chart("a", london())]}))
        .expect(StatusCode::FORBIDDEN)
        .await;
    let batches_only = server
        .as_key(&owner)
        .post(
            "/v1/api-keys",
            json!({"name": "batches", "scopes": ["batches", "charts"]}),
        )
        .expect(StatusCode::CREATED)
        .await;
    let refused = server
        .as_key(batches_only["key"].as_str().unwrap())
        .post(
            "/v1/batches",
            json!({"requests": [{"custom_id": "r", "operation": "reading", "body": london()}]}),
        )
        .expect(StatusCode::FORBIDDEN)
        .await;
    assert!(refused["detail"].as_str().unwrap().contains("readings"));
}

async fn an_expired_batch_gives_every_unstarted_item_back(kind: Backend) {
    let config = orrery::config::Config {
        batch_window: Duration::ZERO,
        ..Default::default()
    };
    let server = serve(kind, config).await;
    let (account, key) = listening_account(&server, "basic").await;
    let items: Vec<Value> = (0..150)
        .map(|n| chart(&format!("c{n}"), birth(n)))
        .collect();
    let (batch, headers) = submit(&server, &key, items).await;
    assert_eq!(used(&headers), 150);
    let worker = BatchWorker::new(server.app().clone());
    assert_eq!(run_chunks(&server, &worker, 10).await, 2);
    let id = batch["id"].as_str().unwrap();
    let expired = status_of(&server, &key, id).await;
    assert_eq!(expired["status"], "expired");
    assert_eq!(
        expired["counts"],
        json!({"total": 150, "completed": 0, "failed": 0, "cancelled": 150})
    );
    assert_eq!(events_of(&server, &account, "batch.expired").await.len(), 1);
    let (_, headers) = submit(&server, &key, vec![chart("x", birth(1))]).await;
    assert_eq!(used(&headers), 1, "every unit came back");
}

/// Two deliveries of one chunk running at the same time (a visibility timeout that let a
/// second worker in): both compute and write the same lines, one settle counts.
async fn a_chunk_delivered_twice_at_once_is_counted_once(kind: Backend) {
    let server = serve(kind, Default::default()).await;
    let (account, key) = listening_account(&server, "basic").await;
    let items: Vec<Value> = (0..150)
        .map(|n| chart(&format!("c{n}"), birth(n)))
        .collect();
    let (batch, _) = submit(&server, &key, items).await;
    let id = batch["id"].as_str().unwrap();
    let queue = server.app().queues.batch_items.main.clone();
    let messages = queue
        .receive(10, Duration::from_secs(60), Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(messages.len(), 2);
    let first = BatchWorker::new(server.app().clone());
    let second = BatchWorker::new(server.app().clone());
    for message in &messages {
        let incoming = IncomingMessage {
            id: message.id.clone(),
            body: message.body.clone(),
            receipt: message.receipt.clone(),
            receive_count: 1,
        };
        let (a, b) = tokio::join!(first.handle(&incoming), second.handle(&incoming));
        assert_eq!(
            (a, b),
            (
                orrery::consumer::Outcome::Done,
                orrery::consumer::Outcome::Done
            )
        );
        // And once more, late: a redelivery after the message was settled.
        assert_eq!(
            first.handle(&incoming).await,
            orrery::consumer::Outcome::Done
        );
    }
    let done = status_of(&server, &key, id).await;
    assert_eq!(
        done["counts"],
        json!({"total": 150, "completed": 150, "failed": 0, "cancelled": 0})
    );
    let (lines, _) = results(&server, &key, id, "").await;
    assert_eq!(lines.len(), 150);
    let completed = events_of(&server, &account, "batch.completed").await;
    assert_eq!(completed.len(), 1, "one final event");
}
