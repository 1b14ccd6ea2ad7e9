//! The hardening issue (#11), item by item: each test names the item it holds to. Everything a
//! backend can change runs on both (moto and the embedded store).

use std::time::{Duration, Instant};

use async_trait::async_trait;
use orrery::access::manage::{self, AccountPatch};
use orrery::access::{Tier, auth};
use orrery::consumer::{Consumer, IncomingMessage, Outcome, process_batch};
use orrery::events::{self, EventType};
use orrery::queue::OutgoingMessage;
use orrery_tests::{Backend, TestApp, published_events};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use orrery_tests::{ADMIN_KEY, create_account, london};

on_both_backends!(
    narrow_keys_manage_only_keys_within_their_scopes_and_mode,
    concurrent_registrations_never_pass_the_endpoint_limit,
    fan_out_reaches_every_endpoint_however_many,
    idempotency_comes_first_and_replays_cost_nothing,
    a_consumer_panic_fails_only_its_message,
    changes_reach_every_container_within_the_sync_interval,
    trailing_data_after_the_json_is_a_400_that_costs_nothing,
    the_wheel_stays_well_formed_xml_whatever_the_name,
    the_smaller_edges,
    forged_and_tampered_cursors_are_400,
    operators_redrive_dead_letters_over_the_admin_api,
);

/// The app without queue workers: what requests publish stays in the events queue to read.
use orrery_tests::serve_without_workers as serve;

async fn call(server: &TestApp, method: Method, path: &str, key: &str) -> (StatusCode, Value) {
    let response = server.send_as(method, path, key, None).await;
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Item 1 (and 11: a key created without `mode` takes its creator's mode).
async fn narrow_keys_manage_only_keys_within_their_scopes_and_mode(kind: Backend) {
    let backend = orrery_tests::backend(kind).await;
    let server = serve(backend).await;
    let (_, live_key) = create_account(&server, "basic").await;
    let owner = server.as_key(&live_key);
    let keys = owner.get("/v1/api-keys").expect(StatusCode::OK).await;
    let live_id = keys["data"][0]["id"].as_str().unwrap().to_owned();
    let narrow = owner
        .post(
            "/v1/api-keys",
            json!({"name": "ops", "scopes": ["keys"], "mode": "test"}),
        )
        .expect(StatusCode::CREATED)
        .await;
    let narrow_key = narrow["key"].as_str().unwrap().to_owned();
    // A live key holding only `keys`: broader than none, narrower than all.
    let keys_only_live = owner
        .post(
            "/v1/api-keys",
            json!({"name": "keys-only", "scopes": ["keys"]}),
        )
        .expect(StatusCode::CREATED)
        .await;
    let keys_only_live_key = keys_only_live["key"].as_str().unwrap().to_owned();

    for (method, path) in [
        (Method::POST, format!("/v1/api-keys/{live_id}/rotate")),
        (Method::PATCH, format!("/v1/api-keys/{live_id}/revoke")),
        (Method::DELETE, format!("/v1/api-keys/{live_id}")),
    ] {
        // A test key never touches a live key; a live `keys`-only key never touches one that
        // holds scopes it lacks.
        for caller in [&narrow_key, &keys_only_live_key] {
            let (status, body) = call(&server, method.clone(), &path, caller).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}: {body}");
        }
    }
    let (status, body) = call(
        &server,
        Method::GET,
        &format!("/v1/api-keys/{live_id}"),
        &live_key,
    )
    .await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("active"))
    );

    // Without `mode`, the test key creates a test key (not a 403), which it may then rotate.
    let narrow = server.as_key(&narrow_key);
    let child = narrow
        .post("/v1/api-keys", json!({"name": "child"}))
        .expect(StatusCode::CREATED)
        .await;
    assert_eq!(child["mode"], "test");
    assert!(child["key"].as_str().unwrap().starts_with("orr_test_"));
    assert_eq!(child["scopes"], json!(["keys"]));
    let child_id = child["id"].as_str().unwrap();
    let rotated = narrow
        .post(&format!("/v1/api-keys/{child_id}/rotate"), json!({}))
        .expect(StatusCode::CREATED)
        .await;
    assert!(rotated["key"].as_str().unwrap().starts_with("orr_test_"));
    narrow
        .delete(&format!("/v1/api-keys/{child_id}"))
        .expect(StatusCode::NO_CONTENT)
        .await;
}

/// Item 2: the limit holds under concurrency, and a deletion frees a place.
async fn concurrent_registrations_never_pass_the_endpoint_limit(kind: Backend) {
    let backend = orrery_tests::backend(kind).await;
    let server = serve(backend).await;
    let (_, key) = create_account(&server, "premium").await;
    let attempts = (0..30).map(|n| {
        server.post_json(
            "/v1/webhooks",
            &key,
            json!({"url": format!("https://hooks{n}.example.com/orrery")}),
        )
    });
    let results = futures_util::future::join_all(attempts).await;
    let created: Vec<&Value> = results
        .iter()
        .filter(|(status, _)| *status == StatusCode::CREATED)
        .map(|(_, body)| body)
        .collect();
    let refused = results
        .iter()
        .filter(|(status, _)| *status == StatusCode::CONFLICT)
        .count();
    assert_eq!((created.len(), refused), (20, 10), "{results:?}");
    let owner = server.as_key(&key);
    let listed = owner
        .get("/v1/webhooks?limit=100")
        .expect(StatusCode::OK)
        .await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 20);

    let id = created[0]["id"].as_str().unwrap();
    owner
        .delete(&format!("/v1/webhooks/{id}"))
        .expect(StatusCode::NO_CONTENT)
        .await;
    for (url, status) in [
        ("https://again.example.com/", StatusCode::CREATED),
        ("https://over.example.com/", StatusCode::CONFLICT),
    ] {
        owner
            .post("/v1/webhooks", json!({"url": url}))
            .expect(status)
            .await;
    }
}

/// Item 2, second half: fan-out does not stop at the creation limit (or one page).
async fn fan_out_reaches_every_endpoint_however_many(kind: Backend) {
    let backend = orrery_tests::backend(kind).await;
    let app = backend.app.clone();
    orrery::access::ensure_local_secrets(&app, Some(ADMIN_KEY))
        .await
        .unwrap();
    let account = orrery::ids::AccountId::generate();
    // Written around the API (as endpoints created before the limit existed would be).
    for n in 0..25 {
        let id = orrery::ids::EndpointId::generate();
        let record = json!({
            "id": id.as_str(), "account_id": account.as_str(),
            "url": format!("https://hooks{n}.example.com/"), "description": null,
            "event_types": [], "enabled": true, "disabled_reason": null,
            "secret": "whsec_c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmU=",
            "previous_secret": null, "previous_secret_expires_at": null,
            "created_at": "2026-11-30T00:00:00Z", "updated_at": "2026-11-30T00:00:00Z",
            "version": 1
        });
        let item = orrery::store::Item::from_serializable(
            orrery::store::Key::new(
                orrery::store::Table::Entities,
                format!("ACCT#{account}"),
                format!("WEBHOOK#{id}"),
            ),
            &record,
        )
        .unwrap();
        app.store.put(item, None).await.unwrap();
    }
    let event = orrery::events::Event::new(EventType::ChartSaved, &account, json!({}));
    let queued = orrery::webhooks::fanout::fan_out(&app, &event)
        .await
        .unwrap();
    assert_eq!(queued, 25);
}

/// Item 3: the idempotency check precedes any work; a replay is free and silent; a 4xx
/// publishes nothing.
async fn idempotency_comes_first_and_replays_cost_nothing(kind: Backend) {
    let backend = orrery_tests::backend(kind).await;
    let server = serve(backend).await;
    let (account, key) = create_account(&server, "basic").await;
    let (status, _) = server
        .post_json(
            "/v1/webhooks",
            &key,
            json!({"url": "https://example.com/hooks"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let _ = published_events(server.app(), &account).await;

    let save = |body: Value, idempotency_key: &'static str| {
        server
            .client
            .post(server.url("/v1/charts/saved"))
            .bearer_auth(&key)
            .header("idempotency-key", idempotency_key)
            .json(&body)
            .send()
    };
    let used = |response: &reqwest::Response| -> u64 {
        response.headers()["x-ratelimit-used"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap()
    };
    let first = save(london(), "ada-1").await.unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    let used_after_first = used(&first);
    let events = published_events(server.app(), &account).await;
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types.len(), 2, "{types:?}");
    assert!(types.contains(&"chart.calculated") && types.contains(&"chart.saved"));

    for _ in 0..3 {
        let replay = save(london(), "ada-1").await.unwrap();
        assert_eq!(replay.status(), StatusCode::OK);
        assert_eq!(replay.headers()["idempotent-replayed"], "true");
        assert_eq!(used(&replay), used_after_first, "a replay costs no quota");
    }
    let mut other = london();
    other["latitude"] = json!(40.0);
    let mismatch = save(other, "ada-1").await.unwrap();
    assert_eq!(mismatch.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(used(&mismatch), used_after_first, "a 422 costs no quota");
    assert_eq!(
        published_events(server.app(), &account).await,
        Vec::<Value>::new(),
        "replays and the mismatching reuse published nothing"
    );

    // The same holds for any 4xx: an invalid chart, an unknown saved chart to read.
    let (status, _) = server
        .post_json(
            "/v1/readings",
            &key,
            json!({"chart_id": "chart_01kdoesnotexistdoesnotexis"}),
        )
        .await;
    assert!(status.is_client_error(), "{status}");
    let (status, _) = server
        .post_json(
            "/v1/charts",
            &key,
            json!({"datetime": "1990-05-17T14:30Z", "latitude": 95, "longitude": 0}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(published_events(server.app(), &account).await.is_empty());
}

struct PanicsOnBoom;

#[async_trait]
impl Consumer for PanicsOnBoom {
    fn name(&self) -> &'static str {
        "panics-on-boom"
    }

    async fn handle(&self, message: &IncomingMessage) -> Outcome {
        assert!(message.body != "boom", "a handler bug");
        Outcome::Done
    }
}

/// Item 4, consumers: a panic fails its own message, which stays on the queue; the rest of the
/// batch is settled normally and the caller keeps running.
async fn a_consumer_panic_fails_only_its_message(kind: Backend) {
    let backend = orrery_tests::backend(kind).await;
    let queue = backend.app.queues.deliveries.main.clone();
    for body in ["boom", "fine"] {
        queue.send(OutgoingMessage::new(body)).await.unwrap();
    }
    let mut messages = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while messages.len() < 2 && Instant::now() < deadline {
        for m in queue
            .receive(10, Duration::from_secs(1), Duration::from_millis(200))
            .await
            .unwrap()
        {
            messages.push(IncomingMessage {
                id: m.id,
                body: m.body,
                receipt: m.receipt,
                receive_count: m.receive_count,
            });
        }
    }
    assert_eq!(messages.len(), 2);
    let boom_id = messages
        .iter()
        .find(|m| m.body == "boom")
        .unwrap()
        .id
        .clone();
    let failed = process_batch(&PanicsOnBoom, queue.as_ref(), messages, true).await;
    assert_eq!(failed, vec![boom_id]);
    // After its visibility timeout only the failed message comes back.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let mut again = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        let batch = queue
            .receive(10, Duration::from_secs(30), Duration::from_millis(200))
            .await
            .unwrap();
        again.extend(batch.into_iter().map(|m| m.body));
        if !again.is_empty() {
            break;
        }
    }
    assert_eq!(again, vec!["boom".to_owned()]);
}

/// Item 6: two containers (two Lambda functions) on one backend, no shared cache level.
async fn changes_reach_every_container_within_the_sync_interval(kind: Backend) {
    let backend = orrery_tests::backend(kind).await;
    orrery::access::ensure_local_secrets(&backend.app, Some(ADMIN_KEY))
        .await
        .unwrap();
    let webhooks_fn = backend.app.clone();
    let charts_fn = backend.second_container();
    assert!(!charts_fn.cache.has_shared_level());
    let bound = charts_fn.config.cache.sync_interval + Duration::from_millis(500);
    let created = orrery_tests::new_free_account(&webhooks_fn).await;
    let account = created.account.id.clone();

    // Every event is queued, endpoint or not: the account's event log wants them all.
    events::publish(
        &charts_fn,
        EventType::ChartCalculated,
        &account,
        json!({"n": 0}),
    )
    .await;
    let queued: Vec<Value> = published_events(&charts_fn, &account)
        .await
        .into_iter()
        .filter(|event| event["type"] == "chart.calculated")
        .collect();
    assert_eq!(queued.len(), 1, "{queued:?}");
    assert_eq!(queued[0]["data"]["n"], 0);

    // A tier change made by the admin function.
    let tier = |app: &orrery::App| {
        let app = app.clone();
        let account = account.clone();
        async move {
            auth::cached_account(&app, &account)
                .await
                .unwrap()
                .unwrap()
                .tier
        }
    };
    assert_eq!(tier(&charts_fn).await, Tier::Free);
    manage::update_account(
        &webhooks_fn,
        &account,
        AccountPatch {
            tier: Some(Tier::Premium),
            ..AccountPatch::default()
        },
    )
    .await
    .unwrap();
    let started = Instant::now();
    while tier(&charts_fn).await != Tier::Premium {
        assert!(
            started.elapsed() <= bound,
            "the tier change took longer than {bound:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // An admin invalidation of a namespace (here, cached charts) made in another container.
    charts_fn
        .cache
        .put(&orrery::cache::CHARTS, "probe", &1)
        .await;
    webhooks_fn
        .cache
        .invalidate_namespace(&orrery::cache::CHARTS)
        .await;
    let started = Instant::now();
    while charts_fn
        .cache
        .get::<i32>(&orrery::cache::CHARTS, "probe")
        .await
        .is_some()
    {
        assert!(
            started.elapsed() <= bound,
            "the invalidation took longer than {bound:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // A revocation made by the api-keys function.
    let headers = orrery_tests::bearer_headers(&created.api_key.key);
    let caller = auth::authenticate(&webhooks_fn, &headers).await.unwrap();
    assert!(
        auth::authenticate(&charts_fn, &headers).await.is_ok(),
        "cached in the charts function"
    );
    manage::revoke_key(&webhooks_fn, &caller, &created.api_key.view.id)
        .await
        .unwrap();
    let started = Instant::now();
    while auth::authenticate(&charts_fn, &headers).await.is_ok() {
        assert!(
            started.elapsed() <= bound,
            "the revocation took longer than {bound:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Item 9.
async fn trailing_data_after_the_json_is_a_400_that_costs_nothing(kind: Backend) {
    let backend = orrery_tests::backend(kind).await;
    let server = serve(backend).await;
    let (_, key) = create_account(&server, "basic").await;
    let body = serde_json::to_string(&london()).unwrap();
    for raw in [
        format!("{body} garbage"),
        format!(r#"{body}{{"latitude": 95}}"#),
    ] {
        let response = server
            .client
            .post(server.url("/v1/charts"))
            .bearer_auth(&key)
            .header("content-type", "application/json")
            .body(raw.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(response.headers()["x-ratelimit-used"], "0");
        let problem: Value = response.json().await.unwrap();
        let detail = problem["detail"].as_str().unwrap();
        let column = body.len() + 1 + usize::from(raw.contains("garbage"));
        assert!(
            detail.contains(&format!("after the JSON value at line 1, column {column}")),
            "{detail}"
        );
    }
    let response = server
        .client
        .post(server.url("/v1/api-keys"))
        .bearer_auth(&key)
        .header("content-type", "application/json")
        .body(r#"{"name":"ok"} garbage"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let keys: Value = server
        .get_as("/v1/api-keys", &key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        keys["data"].as_array().unwrap().len(),
        1,
        "no key was created"
    );
}

/// Item 10.
async fn the_wheel_stays_well_formed_xml_whatever_the_name(kind: Backend) {
    let backend = orrery_tests::backend(kind).await;
    let server = serve(backend).await;
    let (_, key) = create_account(&server, "basic").await;
    let mut chart = london();
    chart["name"] = json!("Ada\u{FFFE}\u{FFFF}\u{1}<&>");
    let svg = server
        .as_key(&key)
        .post("/v1/charts?format=svg", chart.clone())
        .expect_text(StatusCode::OK)
        .await;
    roxmltree::Document::parse(&svg).expect("a well-formed SVG document");
    let (status, embedded) = server
        .post_json("/v1/charts?include=svg", &key, chart)
        .await;
    assert_eq!(status, StatusCode::OK);
    roxmltree::Document::parse(embedded["svg"].as_str().unwrap())
        .expect("the embedded SVG is well-formed too");
}

/// Item 11: the Bearer scheme's case, 414 and 431 as problems, capped echoes, an agreeing
/// time zone, and the polar message (unit-tested in the astronomy crate).
async fn the_smaller_edges(kind: Backend) {
    let backend = orrery_tests::backend(kind).await;
    let server = serve(backend).await;
    let (_, key) = create_account(&server, "basic").await;
    for scheme in ["BEARER", "bearer", "BeArEr"] {
        let response = server
            .client
            .get(server.url("/v1/api-keys"))
            .header("authorization", format!("{scheme} {key}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{scheme}");
    }

    let long_uri = server.url(&format!("/v1/api-keys?cursor={}", "a".repeat(20_000)));
    let response = server
        .client
        .get(long_uri)
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::URI_TOO_LONG);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    assert_eq!(response.json::<Value>().await.unwrap()["status"], 414);
    let response = server
        .client
        .get(server.url("/v1/api-keys"))
        .bearer_auth(&key)
        .header("x-padding", "p".repeat(100_000))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
    );
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let mut many = server
        .client
        .get(server.url("/v1/api-keys"))
        .bearer_auth(&key);
    for n in 0..150 {
        many = many.header(format!("x-h{n}"), "v");
    }
    let response = many.send().await.unwrap();
    assert_eq!(
        response.status(),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
    );
    assert_eq!(response.json::<Value>().await.unwrap()["status"], 431);

    let mut chart = london();
    chart["timezone"] = json!("Z".repeat(200_000));
    let answer = server
        .as_key(&key)
        .post("/v1/charts", chart)
        .expect_text(StatusCode::UNPROCESSABLE_ENTITY)
        .await;
    assert!(answer.len() < 2_000, "{} bytes", answer.len());

    let (status, body) = server
        .post_json(
            "/v1/charts",
            &key,
            json!({"datetime": "1990-05-17T13:30:00Z", "timezone": "UTC", "latitude": 51.5, "longitude": -0.1}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["utc"], "1990-05-17T13:30:00Z");
    let (status, body) = server
        .post_json(
            "/v1/charts",
            &key,
            json!({"datetime": "1990-05-17T13:30:00Z", "timezone": "Asia/Tokyo", "latitude": 51.5, "longitude": -0.1}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
}

/// Item 11: cursors are opaque and tamper-evident.
async fn forged_and_tampered_cursors_are_400(kind: Backend) {
    let backend = orrery_tests::backend(kind).await;
    let server = serve(backend).await;
    let (_, key) = create_account(&server, "basic").await;
    for n in 0..3 {
        let (status, _) = server
            .post_json("/v1/api-keys", &key, json!({"name": format!("k{n}")}))
            .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let page: Value = server
        .get_as("/v1/api-keys?limit=2", &key)
        .await
        .json()
        .await
        .unwrap();
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    assert!(
        !cursor.contains("ACCT") && !cursor.starts_with("eyJ"),
        "opaque: {cursor}"
    );
    let (status, rest) = call(
        &server,
        Method::GET,
        &format!("/v1/api-keys?limit=2&cursor={cursor}"),
        &key,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(rest["data"].as_array().unwrap().len(), 2);

    use base64::Engine as _;
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut tampered = engine.decode(&cursor).unwrap();
    let last = tampered.len() - 1;
    tampered[last] ^= 0x20;
    let forged_readable = engine.encode(r#"{"pk":"ACCT#acct_x","sk":"KEY#key_x"}"#);
    for forged in [engine.encode(tampered), forged_readable, "garbage".into()] {
        let (status, problem) = call(
            &server,
            Method::GET,
            &format!("/v1/api-keys?cursor={forged}"),
            &key,
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{forged}: {problem}");
        assert_eq!(problem["status"], 400);
    }
    // A valid cursor of another list (another account's) is refused, not followed.
    let (_, other_key) = create_account(&server, "basic").await;
    let (status, _) = call(
        &server,
        Method::GET,
        &format!("/v1/api-keys?cursor={cursor}"),
        &other_key,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

/// Item 13: the operator path for the dead-letter queues.
async fn operators_redrive_dead_letters_over_the_admin_api(kind: Backend) {
    let backend = orrery_tests::backend(kind).await;
    let server = serve(backend).await;
    let pair = server.app().queues.events.clone();
    for n in 0..3 {
        pair.dead_letters
            .send(OutgoingMessage::new(format!("dead-{n}")))
            .await
            .unwrap();
    }
    let admin = server.as_key(ADMIN_KEY);
    let redrive = "/v1/admin/queues/events/redrive";
    server
        .as_key("orr_admin_wrong")
        .post(redrive, json!({}))
        .expect(StatusCode::UNAUTHORIZED)
        .await;
    admin
        .post("/v1/admin/queues/nope/redrive", json!({}))
        .expect(StatusCode::NOT_FOUND)
        .await;
    admin
        .post(redrive, json!({"max": 0}))
        .expect(StatusCode::UNPROCESSABLE_ENTITY)
        .await;
    let moved = admin
        .post(redrive, json!({"max": 2}))
        .expect(StatusCode::OK)
        .await;
    assert_eq!(moved["moved"], 2);
    let rest = server
        .client
        .post(server.url(redrive))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(rest.status(), StatusCode::OK, "the body is optional");
    assert_eq!(rest.json::<Value>().await.unwrap()["moved"], 1);

    let mut bodies = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while bodies.len() < 3 && Instant::now() < deadline {
        for message in pair
            .main
            .receive(10, Duration::from_secs(60), Duration::from_millis(200))
            .await
            .unwrap()
        {
            bodies.push(message.body);
        }
    }
    bodies.sort();
    assert_eq!(bodies, ["dead-0", "dead-1", "dead-2"]);
    let left = pair
        .dead_letters
        .receive(10, Duration::from_secs(60), Duration::from_millis(200))
        .await
        .unwrap();
    assert!(left.is_empty(), "the dead-letter queue is empty");
}

/// Item 4, serving binaries: the release profile unwinds, so the catch-panic layer (tested in
/// the HTTP suite) is in force in the binaries that run.
#[test]
fn release_binaries_unwind_on_panic() {
    let manifest: toml_like::Manifest =
        toml_like::parse(include_str!("../../Cargo.toml")).expect("the workspace manifest");
    assert_ne!(
        manifest.release_panic.as_deref(),
        Some("abort"),
        "panic = \"abort\" in [profile.release] takes every connection down with one panic"
    );
}

/// The one line of `Cargo.toml` this suite reads, without a TOML dependency.
mod toml_like {
    pub struct Manifest {
        pub release_panic: Option<String>,
    }

    pub fn parse(text: &str) -> Option<Manifest> {
        let mut section = "";
        let mut release_panic = None;
        for line in text.lines().map(str::trim) {
            if line.starts_with('[') {
                section = line;
            } else if section == "[profile.release]"
                && let Some(value) = line.strip_prefix("panic")
            {
                release_panic = Some(
                    value
                        .trim_start_matches([' ', '='])
                        .trim()
                        .trim_matches('"')
                        .to_owned(),
                );
            }
        }
        Some(Manifest { release_panic })
    }
}

/// Item 5: only a new directory is initialised; damage stops startup, naming the file.
#[test]
fn a_damaged_data_directory_refuses_to_start_naming_the_file() {
    let config = orrery::config::Config::default;
    let fresh = tempfile::tempdir().unwrap();
    let app = orrery::App::embedded(config(), fresh.path()).expect("a new directory starts");
    drop(app);
    let pepper = fresh
        .path()
        .join("secrets")
        .join(config().key_pepper_secret);
    assert!(
        std::fs::metadata(&pepper).unwrap().len() > 0,
        "the pepper was created with it"
    );
    // Dropping the app waits for the engine's writers to let go of the files.
    drop(orrery::App::embedded(config(), fresh.path()).expect("an intact directory starts again"));

    let damage = |break_it: &dyn Fn(&std::path::Path), names: &str| {
        let dir = tempfile::tempdir().unwrap();
        drop(orrery::App::embedded(config(), dir.path()).unwrap());
        break_it(dir.path());
        let err = match orrery::App::embedded(config(), dir.path()) {
            Ok(_) => panic!("started on a damaged directory ({names})"),
            Err(err) => err.to_string(),
        };
        assert!(err.contains(names), "{err}");
    };
    let pepper_name = config().key_pepper_secret;
    damage(
        &|dir| std::fs::write(dir.join("orrery.redb"), b"").unwrap(),
        "orrery.redb",
    );
    damage(
        &|dir| std::fs::remove_file(dir.join("orrery.redb")).unwrap(),
        "orrery.redb",
    );
    damage(
        &|dir| std::fs::write(dir.join("orrery-bulk.redb"), b"").unwrap(),
        "orrery-bulk.redb",
    );
    damage(
        &|dir| std::fs::write(dir.join("secrets").join(&pepper_name), b"").unwrap(),
        &pepper_name,
    );
    damage(
        &|dir| std::fs::remove_file(dir.join("secrets").join(&pepper_name)).unwrap(),
        &pepper_name,
    );
}

/// Item 7: an unreachable shared cache at cold start is a cache that misses, and stays cheap.
#[tokio::test]
async fn an_unreachable_redis_is_a_cache_that_misses() {
    let mut config = orrery::config::Config::default();
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    config.redis_url = Some(format!("redis://127.0.0.1:{port}/"));
    let dir = tempfile::tempdir().unwrap();
    let app = orrery::App::embedded(config, dir.path())
        .unwrap()
        .connect_shared_cache()
        .await
        .expect("startup does not depend on the shared cache");
    assert!(app.cache.has_shared_level());
    app.cache.put(&orrery::cache::CHARTS, "k", &7).await;
    assert_eq!(
        app.cache.get::<i32>(&orrery::cache::CHARTS, "k").await,
        Some(7),
        "L1 serves"
    );
    // After the first failure L2 is skipped: a miss costs no connection attempt.
    let started = Instant::now();
    for n in 0..100 {
        assert_eq!(
            app.cache
                .get::<i32>(&orrery::cache::CHARTS, &format!("m{n}"))
                .await,
            None
        );
    }
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!(app.cache.stats().await.l2.is_some_and(|l2| l2.errors > 0));
    // And the whole API works: an account is created and its key authenticates.
    orrery::access::ensure_local_secrets(&app, Some(ADMIN_KEY))
        .await
        .unwrap();
    let created = orrery_tests::new_free_account(&app).await;
    let headers = orrery_tests::bearer_headers(&created.api_key.key);
    assert!(auth::authenticate(&app, &headers).await.is_ok());
}
