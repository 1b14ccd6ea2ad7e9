//! What a warm request costs on DynamoDB, as DynamoDB Local reports it: the adapter asks for
//! `ReturnConsumedCapacity: TOTAL` on every call and the test backend's meter records the units
//! and the access pattern of each (moto reports no capacity, and the embedded store has none).
//! The cache-generation board (one strongly consistent read a second per container, whatever the
//! traffic) and the analytics flush (every ≤ 10 s per container; pushed out of the test here) are
//! amortised over every request, so they are left out of the per-request figures; the queue
//! workers (which append events to the log) are not started, so every call is the request's.

use std::time::Duration;

use orrery::config::Config;
use orrery::store::capacity::Call;
use orrery_tests::{Backend, TestOptions, create_account, london};
use reqwest::StatusCode;

/// The board every container polls, apart from any one request.
const GENERATIONS_BOARD: &str = "entities CACHE#GENERATIONS/BOARD";

fn per_request(calls: Vec<Call>) -> Vec<Call> {
    calls
        .into_iter()
        .filter(|call| !call.patterns.iter().all(|p| p == GENERATIONS_BOARD))
        .collect()
}

/// A DynamoDB Local backend with `config` and its capacity meter. The analytics flush is pushed
/// out of the tests (it is amortised over every request, see the module docs).
async fn measured(
    config: Config,
) -> (
    orrery_tests::TestBackend,
    std::sync::Arc<orrery::store::capacity::CapacityMeter>,
) {
    let config = Config {
        analytics_flush_interval: Duration::from_secs(3600),
        ..config
    };
    let backend = orrery_tests::backend_with(Backend::DynamoDbLocal, TestOptions { config }).await;
    let meter = backend
        .capacity
        .clone()
        .expect("DynamoDB Local is measured");
    (backend, meter)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_warm_metered_cached_chart_costs_one_write_unit_and_nothing_else() {
    let (backend, meter) = measured(Config::default()).await;
    let server = orrery_tests::serve_without_workers(backend).await;
    // An account as the admin API makes it by default: activity events off, so a chart publishes
    // no event and its one write is its whole cost (docs/cost.md).
    let created = server
        .as_key(orrery_tests::ADMIN_KEY)
        .post(
            "/v1/admin/accounts",
            serde_json::json!({"name": "Acme", "tier": "free"}),
        )
        .expect(StatusCode::CREATED)
        .await;
    let key = created["api_key"]["key"].as_str().unwrap().to_owned();

    // The first call warms the container (pepper, key, account) and the chart cache.
    let (status, _) = server.post_json("/v1/charts", &key, london()).await;
    assert_eq!(status, StatusCode::OK);
    let warming = meter.take();
    assert!(
        warming.iter().all(|call| call.operation != "Scan"),
        "no Scan on a request path: {warming:?}"
    );

    for _ in 0..5 {
        let (status, _) = server.post_json("/v1/charts", &key, london()).await;
        assert_eq!(status, StatusCode::OK);
        let calls = per_request(meter.take());
        assert_eq!(
            calls.len(),
            1,
            "one DynamoDB call per warm request: {calls:?}"
        );
        let call = &calls[0];
        assert_eq!(call.operation, "UpdateItem");
        assert_eq!(call.patterns, ["counters ACCT#<>/QUOTA#<>#<>"]);
        assert!(!call.refused);
        assert_eq!(
            (call.read_units, call.write_units),
            (0.0, 1.0),
            "a metered cached chart is one write unit and no read"
        );
    }
    // All-in: nothing queued for the events consumer but the account's first `key.created`.
    let mut queued = Vec::new();
    loop {
        let received = server
            .app()
            .queues
            .events
            .main
            .receive(10, Duration::from_secs(30), Duration::from_secs(1))
            .await
            .unwrap();
        if received.is_empty() {
            break;
        }
        queued.extend(received);
    }
    let types: Vec<String> = queued
        .iter()
        .map(|message| {
            let event: serde_json::Value = serde_json::from_str(&message.body).unwrap();
            event["type"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(types, ["key.created"], "six charts, no event");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_exhausted_quota_is_refused_without_a_dynamodb_call() {
    let (backend, meter) = measured(Config {
        tiers: orrery_tests::tiers_with(&[("free", "charts", 2)]),
        ..Config::default()
    })
    .await;
    let server = orrery_tests::serve_without_workers(backend).await;
    let (_, key) = create_account(&server, "free").await;
    for _ in 0..2 {
        assert_eq!(
            server.post_json("/v1/charts", &key, london()).await.0,
            StatusCode::OK
        );
    }
    // The refused increment: one conditional write (billed by DynamoDB, reported without
    // units), one strongly consistent read that tells "over the limit" from "expired", and one
    // strongly consistent query of the day's counter and its quota blocks (none here: the
    // account is not hot).
    assert_eq!(
        server.post_json("/v1/charts", &key, london()).await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
    let refusal = per_request(meter.take());
    let last_three: Vec<_> = refusal
        .iter()
        .rev()
        .take(3)
        .map(|call| (call.operation, call.refused, call.read_units))
        .collect();
    assert_eq!(
        last_three,
        [
            ("Query", false, 1.0),
            ("GetItem", false, 1.0),
            ("UpdateItem", true, 0.0)
        ]
    );
    for _ in 0..5 {
        assert_eq!(
            server.post_json("/v1/charts", &key, london()).await.0,
            StatusCode::TOO_MANY_REQUESTS
        );
    }
    let calls = per_request(meter.take());
    assert!(calls.is_empty(), "refused from the cache: {calls:?}");
}

/// The `calls` column of docs/data-model.md: every `(operation, pattern)` it documents, each
/// pattern in the meter's shape (`capacity::shape` on every key part).
fn documented_calls() -> std::collections::BTreeSet<(String, String)> {
    let doc = include_str!("../../docs/data-model.md");
    let mut calls = std::collections::BTreeSet::new();
    let mut in_pattern_table = false;
    for line in doc.lines() {
        if !line.starts_with('|') {
            in_pattern_table = false;
            continue;
        }
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        if cells.last() == Some(&"calls") {
            in_pattern_table = true;
            continue;
        }
        if !in_pattern_table || cells.iter().all(|c| c.starts_with("---")) {
            continue;
        }
        let last = cells.last().copied().unwrap_or_default();
        for span in last.split('`').skip(1).step_by(2) {
            let (operation, pattern) = span
                .split_once(' ')
                .unwrap_or_else(|| panic!("a calls span is `<operation> <pattern>`: {span}"));
            calls.insert((operation.to_owned(), documented_shape(pattern)));
        }
    }
    assert!(
        calls.len() > 50,
        "the doc's calls columns were found: {calls:?}"
    );
    calls
}

/// `entities ACCT#<id>/KEY#<key>` → `entities ACCT#<>/KEY#<>`, as the meter writes it.
fn documented_shape(pattern: &str) -> String {
    use orrery::store::capacity::shape;
    pattern
        .split(' ')
        .enumerate()
        .map(|(position, word)| match word {
            _ if position == 0 => word.to_owned(),
            "gsi1" | "begins_with" => word.to_owned(),
            _ => match word.split_once('/') {
                Some((pk, sk)) => format!("{}/{}", shape(pk), shape(sk)),
                None => shape(word),
            },
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Sends `method path` as `key` and asserts a 2xx: the JSON answer (`null` when none).
async fn ok(
    server: &orrery_tests::TestApp,
    method: reqwest::Method,
    path: &str,
    key: &str,
    body: Option<serde_json::Value>,
) -> serde_json::Value {
    let response = server.send_as(method.clone(), path, key, body).await;
    let status = response.status();
    let answer = response.json().await.unwrap_or(serde_json::Value::Null);
    assert!(status.is_success(), "{method} {path}: {status} {answer}");
    answer
}

/// The warm cost of the metered reads and computations, per request (read units, write units),
/// on DynamoDB Local without the queue workers (so every call is the request's own): the quota
/// write (1 WCU) plus what the route reads. Printed as a table for docs/data-model.md.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn warm_requests_cost_their_quota_write_and_their_reads() {
    use reqwest::Method;
    use serde_json::json;

    let (backend, meter) = measured(Config::default()).await;
    let server = orrery_tests::serve_without_workers(backend).await;
    let (_, key) = create_account(&server, "premium").await;
    let saved = ok(
        &server,
        Method::POST,
        "/v1/charts/saved",
        &key,
        Some(london()),
    )
    .await;
    let chart = format!("/v1/charts/saved/{}", saved["id"].as_str().unwrap());
    let batch = ok(
        &server,
        Method::POST,
        "/v1/batches",
        &key,
        Some(json!({"requests": [{"custom_id": "a", "operation": "chart", "body": london()}]})),
    )
    .await;
    let batch = format!("/v1/batches/{}", batch["id"].as_str().unwrap());

    // (route, body, expected (read units, write units) of a warm call)
    let routes = [
        (Method::POST, "/v1/charts", Some(london()), (0.0, 1.0)),
        (Method::POST, "/v1/readings", Some(london()), (0.0, 1.0)),
        (
            Method::POST,
            "/v1/charts/transits",
            Some(json!({"natal": london(), "moment": "2026-11-29T00:00:00Z"})),
            (0.0, 1.0),
        ),
        (
            Method::POST,
            "/v1/readings",
            Some(json!({"chart_id": saved["id"]})),
            (2.0, 1.0),
        ),
        (Method::GET, chart.as_str(), None, (2.0, 1.0)),
        (Method::GET, "/v1/charts/saved", None, (0.5, 1.0)),
        (Method::GET, "/v1/api-keys", None, (1.0, 1.0)),
        // DynamoDB Local reports 0 units for a Query that finds nothing (AWS bills a
        // read request at least 0.5 RRU).
        (Method::GET, "/v1/webhooks", None, (0.0, 1.0)),
        (Method::GET, "/v1/batches", None, (0.5, 1.0)),
        (Method::GET, batch.as_str(), None, (0.5, 1.0)),
        // The log head is read strongly (1 RRU), so a cursor handed out a moment ago is never
        // "ahead" of it.
        (Method::GET, "/v1/events", None, (1.0, 1.0)),
        (Method::GET, "/v1/analytics/usage", None, (0.5, 1.0)),
    ];
    let mut measured = Vec::new();
    println!("| request (warm) | DynamoDB calls | read units | write units |");
    println!("|---|---|---:|---:|");
    for (method, path, body, expected) in &routes {
        ok(&server, method.clone(), path, &key, body.clone()).await;
        meter.take();
        ok(&server, method.clone(), path, &key, body.clone()).await;
        let calls = per_request(meter.take());
        let units = calls.iter().fold((0.0, 0.0), |(r, w), call| {
            (r + call.read_units, w + call.write_units)
        });
        let operations: Vec<_> = calls.iter().map(|call| call.operation).collect();
        let shown = path
            .replace(&chart, "/v1/charts/saved/{id}")
            .replace(&batch, "/v1/batches/{id}");
        println!(
            "| `{method} {shown}` | {} | {} | {} |",
            operations.join(" + "),
            units.0,
            units.1
        );
        measured.push((format!("{method} {shown}"), units, *expected));
    }
    let off: Vec<_> = measured
        .iter()
        .filter(|(_, units, expected)| units != expected)
        .collect();
    assert!(
        off.is_empty(),
        "warm costs differ from the pinned ones (request, measured, expected): {off:#?}"
    );
}

/// A tour of the API on DynamoDB Local with the queue workers running (events appended to the
/// log, a webhook delivery attempted, batch chunks computed): every call it makes, cold or
/// warm, must be a documented row of docs/data-model.md, and none is a Scan. It ends with
/// what one chart costs all-in: its quota write and the append of its `chart.calculated`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_call_the_api_makes_is_a_documented_pattern() {
    use reqwest::Method;
    use serde_json::{Value, json};

    let (backend, meter) = measured(Config::default()).await;
    let server = orrery_tests::serve(backend).await;
    let (account, key) = create_account(&server, "premium").await;
    let call = async |method: Method, path: &str, body: Option<Value>| {
        ok(&server, method, path, &key, body).await
    };

    for _ in 0..2 {
        call(Method::POST, "/v1/charts", Some(london())).await;
        call(Method::POST, "/v1/readings", Some(london())).await;
        call(
            Method::POST,
            "/v1/charts/synastry",
            Some(json!({"first": london(), "second": london()})),
        )
        .await;
        for path in [
            "/v1/api-keys",
            "/v1/charts/saved",
            "/v1/webhooks",
            "/v1/batches",
            "/v1/events",
            "/v1/analytics/usage",
            "/v1/analytics/latency",
            "/v1/analytics/summary",
        ] {
            call(Method::GET, path, None).await;
        }
    }
    let saved = call(Method::POST, "/v1/charts/saved", Some(london())).await;
    let chart = format!("/v1/charts/saved/{}", saved["id"].as_str().unwrap());
    call(Method::GET, &chart, None).await;
    call(
        Method::POST,
        "/v1/readings",
        Some(json!({"chart_id": saved["id"]})),
    )
    .await;
    let webhook = call(
        Method::POST,
        "/v1/webhooks",
        Some(json!({"url": "https://example.com/hooks", "event_types": ["batch.completed"]})),
    )
    .await;
    let webhook = format!("/v1/webhooks/{}", webhook["id"].as_str().unwrap());
    call(Method::GET, &webhook, None).await;
    call(Method::POST, &format!("{webhook}/test"), Some(json!({}))).await;
    call(Method::GET, &format!("{webhook}/deliveries"), None).await;
    let created = call(Method::POST, "/v1/api-keys", Some(json!({"name": "tour"}))).await;
    let new_key = format!("/v1/api-keys/{}", created["id"].as_str().unwrap());
    call(Method::GET, &new_key, None).await;
    call(Method::POST, &format!("{new_key}/rotate"), None).await;
    call(Method::PATCH, &format!("{new_key}/revoke"), None).await;
    call(Method::POST, "/v1/realtime/tokens", Some(json!({}))).await;
    let batch = call(
        Method::POST,
        "/v1/batches",
        Some(json!({"requests": [
            {"custom_id": "a", "operation": "chart", "body": london()},
            {"custom_id": "b", "operation": "reading", "body": {"chart_id": saved["id"]}},
        ]})),
    )
    .await;
    let batch = format!("/v1/batches/{}", batch["id"].as_str().unwrap());
    let finished = orrery_tests::eventually(Duration::from_secs(30), || async {
        let shown = call(Method::GET, &batch, None).await;
        (shown["status"] == "completed").then_some(())
    })
    .await;
    assert!(finished.is_some(), "the batch finished");
    call(Method::GET, &format!("{batch}/results"), None).await;
    call(Method::DELETE, &chart, None).await;
    let logged = orrery_tests::eventually(Duration::from_secs(30), || async {
        let page = call(Method::GET, "/v1/events?limit=100", None).await;
        page["events"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|event| event["type"] == "batch.completed")
            .then_some(())
    })
    .await;
    assert!(logged.is_some(), "the events were appended to the log");
    let mut seen = meter.take();

    // All-in: one more chart, then the events consumer's append of its event.
    call(Method::POST, "/v1/charts", Some(london())).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let appended = loop {
        seen.extend(meter.take());
        let after_the_chart = seen
            .iter()
            .rev()
            .take_while(|call| call.operation != "UpdateItem");
        if after_the_chart
            .flat_map(|call| &call.patterns)
            .any(|p| p == "logs EVENTS#<>/SEQ#<>")
        {
            break Some(());
        }
        if std::time::Instant::now() > deadline {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(appended.is_some(), "the chart's event was appended");
    let last_chart = seen
        .iter()
        .rposition(|call| {
            call.operation == "UpdateItem" && call.patterns == ["counters ACCT#<>/QUOTA#<>#<>"]
        })
        .unwrap();
    // The chart's own calls and its event's: other workers (the webhook's retried delivery)
    // may write in between.
    let all_in: Vec<Call> = per_request(seen[last_chart..].to_vec())
        .into_iter()
        .filter(|call| {
            call.patterns.iter().all(|p| {
                p == "counters ACCT#<>/QUOTA#<>#<>"
                    || p == "entities ACCT#<>/EVENTLOG"
                    || p.starts_with("logs EVENTS#<>/")
            })
        })
        .collect();
    let (reads, writes) = all_in.iter().fold((0.0, 0.0), |(r, w), call| {
        (r + call.read_units, w + call.write_units)
    });
    let operations: Vec<_> = all_in.iter().map(|c| c.operation).collect();
    println!(
        "a warm chart and its logged event: {} = {reads} RRU, {writes} WRU",
        operations.join(" + ")
    );
    assert_eq!(
        (operations.as_slice(), reads, writes),
        (
            ["UpdateItem", "GetItem", "TransactWriteItems"].as_slice(),
            1.0,
            5.0
        ),
        "the quota write, then the log head read and the append transaction"
    );

    // The account marked hot: its requests count on quota blocks; a 404 gives its unit back
    // to its block.
    let marked = server
        .client
        .patch(server.url(&format!("/v1/admin/accounts/{account}")))
        .bearer_auth(orrery_tests::ADMIN_KEY)
        .json(&json!({"hot_quota": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(marked.status(), reqwest::StatusCode::OK);
    assert_eq!(marked.json::<Value>().await.unwrap()["hot_quota"], true);
    call(Method::POST, "/v1/charts", Some(london())).await;
    call(Method::GET, "/v1/charts/saved", None).await;
    let missing = server.get_as(&chart, &key).await;
    assert_eq!(missing.status(), reqwest::StatusCode::NOT_FOUND);
    seen.extend(meter.take());

    // The counter's hourly compaction, which the first admission of an hour runs: here as if at
    // the day's last second, when every earlier hour of the counter moves (none if the tour ran
    // in hour 23, and then only its read is seen).
    let account_id = orrery::ids::AccountId::parse(&account).unwrap();
    let last_second = chrono::Utc::now()
        .date_naive()
        .and_hms_opt(23, 59, 59)
        .unwrap()
        .and_utc();
    orrery::access::compaction::compact(
        server.app().store.as_ref(),
        &account_id,
        orrery::access::QuotaClass::Charts,
        last_second,
    )
    .await
    .unwrap();
    let compacted = meter.take();
    println!(
        "the counter's compaction: {:?}",
        compacted
            .iter()
            .map(|c| (c.operation, c.read_units, c.write_units))
            .collect::<Vec<_>>()
    );
    seen.extend(compacted);

    assert!(
        seen.iter().all(|call| call.operation != "Scan"),
        "no Scan anywhere"
    );
    let documented = documented_calls();
    let mut undocumented: Vec<(String, String)> = seen
        .iter()
        .flat_map(|call| {
            call.patterns
                .iter()
                .map(|pattern| (call.operation.to_owned(), pattern.clone()))
        })
        .filter(|pair| !documented.contains(pair))
        .collect();
    undocumented.sort();
    undocumented.dedup();
    assert!(
        undocumented.is_empty(),
        "calls missing from docs/data-model.md (operation, pattern): {undocumented:#?}"
    );
}
