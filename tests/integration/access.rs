//! Metered access on both backends: the admin API, API keys, scopes, quotas and their headers,
//! tenant isolation, and the exact-admission concurrency test over HTTP.

use std::sync::Arc;
use std::time::Duration;

use orrery::access::keys::KeyMode;
use orrery_tests::{ADMIN_KEY, Backend, TestApp, TestOptions, create_account, serve};
use reqwest::StatusCode;
use serde_json::{Value, json};

on_both_backends!(
    admin_api_needs_the_admin_key,
    admin_creates_lists_reads_and_retiers_accounts,
    api_key_lifecycle_create_list_show_revoke_delete,
    every_401_reason_is_stated,
    scopes_are_enforced_with_403,
    another_accounts_key_is_a_404,
    metered_responses_carry_rate_limit_headers_and_4xx_consume_nothing,
    fifty_concurrent_requests_with_twenty_left_admit_exactly_twenty,
    rotation_keeps_the_old_key_for_its_grace_period,
    usage_is_tracked_per_key_per_day_per_class,
    tier_upgrade_lifts_an_exhausted_quota_at_once,
    validation_errors_name_fields,
    a_new_key_works_at_once_in_a_container_reading_a_lagging_replica,
    warm_metered_requests_make_one_write_and_no_reads,
    admin_cache_endpoints_report_warm_and_invalidate,
);

async fn serve_with(kind: Backend, options: TestOptions) -> TestApp {
    serve(orrery_tests::backend_with(kind, options).await).await
}

/// Creates a key with `as_key` and returns the response body (which holds the new key once).
async fn create_key(server: &TestApp, as_key: &str, request: Value) -> Value {
    let response = server
        .send_as(reqwest::Method::POST, "/v1/api-keys", as_key, Some(request))
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    response.json().await.unwrap()
}

async fn status_of(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let body = response.json::<Value>().await.unwrap_or(Value::Null);
    (status, body)
}

async fn admin_api_needs_the_admin_key(kind: Backend) {
    let backend = orrery_tests::backend(kind).await;
    let server = serve(backend).await;
    let missing = server
        .client
        .get(server.url("/v1/admin/accounts"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
    let wrong = server.get_as("/v1/admin/accounts", "orr_admin_wrong").await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let (_, key) = create_account(&server, "free").await;
    let customer = server.get_as("/v1/admin/accounts", &key).await;
    assert_eq!(
        customer.status(),
        StatusCode::UNAUTHORIZED,
        "an API key is not the admin key"
    );
}

async fn admin_creates_lists_reads_and_retiers_accounts(kind: Backend) {
    let backend = orrery_tests::backend(kind).await;
    let server = serve(backend).await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(create_account(&server, "basic").await.0);
    }
    let first = server.get_as("/v1/admin/accounts?limit=2", ADMIN_KEY).await;
    let first: Value = first.json().await.unwrap();
    assert_eq!(first["data"].as_array().unwrap().len(), 2);
    let cursor = first["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_owned();
    let second: Value = server
        .get_as(
            &format!("/v1/admin/accounts?limit=2&cursor={cursor}"),
            ADMIN_KEY,
        )
        .await
        .json()
        .await
        .unwrap();
    let mut listed: Vec<String> = first["data"]
        .as_array()
        .unwrap()
        .iter()
        .chain(second["data"].as_array().unwrap())
        .map(|a| a["id"].as_str().unwrap().to_owned())
        .collect();
    listed.sort();
    ids.sort();
    assert_eq!(listed, ids);

    let id = &ids[0];
    let (status, account) = status_of(
        server
            .get_as(&format!("/v1/admin/accounts/{id}"), ADMIN_KEY)
            .await,
    )
    .await;
    assert_eq!(
        (status, account["tier"].as_str()),
        (StatusCode::OK, Some("basic"))
    );
    let (status, account) = status_of(
        server
            .send_as(
                reqwest::Method::PATCH,
                &format!("/v1/admin/accounts/{id}"),
                ADMIN_KEY,
                Some(json!({"tier": "premium"})),
            )
            .await,
    )
    .await;
    assert_eq!(
        (status, account["tier"].as_str()),
        (StatusCode::OK, Some("premium"))
    );
    let missing = server
        .get_as(
            "/v1/admin/accounts/acct_00000000000000000000000000",
            ADMIN_KEY,
        )
        .await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let bad_tier = server
        .send_as(
            reqwest::Method::PATCH,
            &format!("/v1/admin/accounts/{id}"),
            ADMIN_KEY,
            Some(json!({"tier": "gold"})),
        )
        .await;
    assert_eq!(bad_tier.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

async fn api_key_lifecycle_create_list_show_revoke_delete(kind: Backend) {
    let backend = orrery_tests::backend(kind).await;
    let server = serve(backend).await;
    let (_, key) = create_account(&server, "free").await;
    let (status, created) = status_of(
        server
            .send_as(
                reqwest::Method::POST,
                "/v1/api-keys",
                &key,
                Some(json!({"name": "ci", "mode": "test"})),
            )
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let second_key = created["key"].as_str().unwrap().to_owned();
    assert!(second_key.starts_with("orr_test_"));
    let id = created["id"].as_str().unwrap().to_owned();

    let list: Value = server
        .get_as("/v1/api-keys", &key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["data"].as_array().unwrap().len(), 2);
    assert!(
        list["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k.get("key").is_none() && k.get("hash").is_none()),
        "keys are shown once"
    );

    let shown = server.get_as(&format!("/v1/api-keys/{id}"), &key).await;
    assert_eq!(shown.status(), StatusCode::OK);
    let works = server
        .client
        .get(server.url("/v1/api-keys"))
        .header("x-api-key", &second_key)
        .send()
        .await
        .unwrap();
    assert_eq!(works.status(), StatusCode::OK, "X-API-Key is accepted too");

    let (status, revoked) = status_of(
        server
            .send_as(
                reqwest::Method::PATCH,
                &format!("/v1/api-keys/{id}/revoke"),
                &key,
                None,
            )
            .await,
    )
    .await;
    assert_eq!(
        (status, revoked["status"].as_str()),
        (StatusCode::OK, Some("revoked"))
    );
    let (status, body) = status_of(server.get_as("/v1/api-keys", &second_key).await).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "revoked at once in the container that revoked it"
    );
    assert!(body["detail"].as_str().unwrap().contains("revoked"));

    let (status, body) = status_of(
        server
            .send_as(
                reqwest::Method::POST,
                &format!("/v1/api-keys/{id}/rotate"),
                &key,
                None,
            )
            .await,
    )
    .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "a revoked key cannot be rotated: {body}"
    );
    assert_eq!(body["status"], json!(409));

    let deleted = server
        .send_as(
            reqwest::Method::DELETE,
            &format!("/v1/api-keys/{id}"),
            &key,
            None,
        )
        .await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    let gone = server.get_as(&format!("/v1/api-keys/{id}"), &key).await;
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);
    let (status, body) = status_of(server.get_as("/v1/api-keys", &second_key).await).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        body["detail"].as_str().unwrap().contains("not valid"),
        "a deleted key is just invalid: {body}"
    );
}

async fn every_401_reason_is_stated(kind: Backend) {
    let backend = orrery_tests::backend(kind).await;
    let server = serve(backend).await;
    let (_, key) = create_account(&server, "free").await;
    let cases = [
        (None, "No API key"),
        (Some("Bearer sk_live_123".to_owned()), "malformed"),
        (
            Some(format!("Bearer orr_live_{}", "A".repeat(33))),
            "not valid",
        ),
    ];
    for (header, reason) in cases {
        let mut request = server.client.get(server.url("/v1/api-keys"));
        if let Some(header) = header {
            request = request.header("authorization", header);
        }
        let response = request.send().await.unwrap();
        assert!(response.headers().contains_key("www-authenticate"));
        let (status, body) = status_of(response).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(
            body["detail"].as_str().unwrap().contains(reason),
            "{reason}: {body}"
        );
    }
    // Expired: a key whose expiry passes.
    let expires_at = (chrono::Utc::now() + chrono::Duration::seconds(2)).to_rfc3339();
    let created: Value = create_key(
        &server,
        &key,
        json!({"name": "short-lived", "expires_at": expires_at}),
    )
    .await;
    let short = created["key"].as_str().unwrap().to_owned();
    assert_eq!(
        server.get_as("/v1/api-keys", &short).await.status(),
        StatusCode::OK
    );
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (status, body) = status_of(server.get_as("/v1/api-keys", &short).await).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        body["detail"].as_str().unwrap().contains("expired"),
        "{body}"
    );
}

async fn scopes_are_enforced_with_403(kind: Backend) {
    let backend = orrery_tests::backend(kind).await;
    let server = serve(backend).await;
    let (_, key) = create_account(&server, "free").await;
    let created: Value = create_key(
        &server,
        &key,
        json!({"name": "charts only", "scopes": ["charts"]}),
    )
    .await;
    let limited = created["key"].as_str().unwrap();
    // A key cannot hand out more than it holds.
    let keys_only: Value = create_key(
        &server,
        &key,
        json!({"name": "keys only", "scopes": ["keys"]}),
    )
    .await;
    let keys_only = keys_only["key"].as_str().unwrap();
    let (status, inherited) = status_of(
        server
            .send_as(
                reqwest::Method::POST,
                "/v1/api-keys",
                keys_only,
                Some(json!({"name": "child"})),
            )
            .await,
    )
    .await;
    assert_eq!(
        (status, inherited["scopes"].clone()),
        (StatusCode::CREATED, json!(["keys"])),
        "a new key inherits the creator's scopes"
    );
    let (status, body) = status_of(
        server
            .send_as(
                reqwest::Method::POST,
                "/v1/api-keys",
                keys_only,
                Some(json!({"name": "escalate", "scopes": ["keys", "charts"]})),
            )
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "no scope escalation: {body}");
    let test_key: Value = create_key(&server, &key, json!({"name": "t", "mode": "test"})).await;
    let (status, _) = status_of(
        server
            .send_as(
                reqwest::Method::POST,
                "/v1/api-keys",
                test_key["key"].as_str().unwrap(),
                Some(json!({"name": "live", "mode": "live"})),
            )
            .await,
    )
    .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "a test key cannot create live keys"
    );
    let (status, body) = status_of(server.get_as("/v1/api-keys", limited).await).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(body["detail"].as_str().unwrap().contains("keys"));
}

async fn another_accounts_key_is_a_404(kind: Backend) {
    let backend = orrery_tests::backend(kind).await;
    let server = serve(backend).await;
    let (_, alice) = create_account(&server, "free").await;
    let (_, bob) = create_account(&server, "free").await;
    let bobs: Value = server
        .get_as("/v1/api-keys", &bob)
        .await
        .json()
        .await
        .unwrap();
    let bob_key_id = bobs["data"][0]["id"].as_str().unwrap();
    for (method, path) in [
        (reqwest::Method::GET, format!("/v1/api-keys/{bob_key_id}")),
        (
            reqwest::Method::PATCH,
            format!("/v1/api-keys/{bob_key_id}/revoke"),
        ),
        (
            reqwest::Method::POST,
            format!("/v1/api-keys/{bob_key_id}/rotate"),
        ),
        (
            reqwest::Method::GET,
            format!("/v1/api-keys/{bob_key_id}/usage"),
        ),
        (
            reqwest::Method::DELETE,
            format!("/v1/api-keys/{bob_key_id}"),
        ),
    ] {
        let response = server
            .client
            .request(method.clone(), server.url(&path))
            .bearer_auth(&alice)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{method} {path}");
    }
    let still: Value = server
        .get_as("/v1/api-keys", &bob)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(still["data"][0]["status"], "active", "Bob's key untouched");
}

async fn metered_responses_carry_rate_limit_headers_and_4xx_consume_nothing(kind: Backend) {
    let backend = orrery_tests::backend(kind).await;
    let server = serve(backend).await;
    let (_, key) = create_account(&server, "free").await;
    let response = server.get_as("/v1/api-keys", &key).await;
    let headers = response.headers().clone();
    assert_eq!(
        headers["ratelimit-policy"],
        "\"management-daily\";q=1000;w=86400"
    );
    assert!(
        headers["ratelimit"]
            .to_str()
            .unwrap()
            .starts_with("\"management-daily\";r=999;t=")
    );
    assert_eq!(headers["x-ratelimit-limit"], "1000");
    assert_eq!(headers["x-ratelimit-remaining"], "999");
    assert_eq!(headers["x-ratelimit-used"], "1");
    assert!(
        headers["x-ratelimit-reset"]
            .to_str()
            .unwrap()
            .parse::<i64>()
            .unwrap()
            > chrono::Utc::now().timestamp()
    );
    // A 422 and a 404 are answered with headers but give their unit back.
    let invalid = server
        .send_as(
            reqwest::Method::POST,
            "/v1/api-keys",
            &key,
            Some(json!({"name": ""})),
        )
        .await;
    assert_eq!(invalid.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(invalid.headers()["x-ratelimit-used"], "1");
    let missing = server
        .get_as("/v1/api-keys/key_00000000000000000000000000", &key)
        .await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let after = server.get_as("/v1/api-keys", &key).await;
    assert_eq!(
        after.headers()["x-ratelimit-used"],
        "2",
        "only the two successful requests counted"
    );
}

/// A tier file where management allows 20 a day on the free tier.
fn tight_tiers() -> orrery::access::tiers::TierLimits {
    orrery_tests::tiers_with(&[("free", "management", 20)])
}

async fn fifty_concurrent_requests_with_twenty_left_admit_exactly_twenty(kind: Backend) {
    let mut options = TestOptions::default();
    options.config.tiers = tight_tiers();
    let server = Arc::new(serve_with(kind, options).await);
    let (_, key) = create_account(&server, "free").await;
    let requests: Vec<_> = (0..50)
        .map(|_| {
            let (server, key) = (server.clone(), key.clone());
            tokio::spawn(async move { server.get_as("/v1/api-keys?limit=1", &key).await })
        })
        .collect();
    let mut ok = 0;
    let mut limited = 0;
    for request in requests {
        let response = request.await.unwrap();
        match response.status() {
            StatusCode::OK => ok += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                assert!(response.headers().contains_key("retry-after"));
                assert_eq!(response.headers()["x-ratelimit-remaining"], "0");
                assert_eq!(
                    response.headers()["content-type"],
                    "application/problem+json"
                );
                limited += 1;
            }
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!((ok, limited), (20, 30), "exactly 20 admitted");
}

async fn rotation_keeps_the_old_key_for_its_grace_period(kind: Backend) {
    let backend = orrery_tests::backend(kind).await;
    let server = serve(backend).await;
    let (_, key) = create_account(&server, "free").await;
    let keys: Value = server
        .get_as("/v1/api-keys", &key)
        .await
        .json()
        .await
        .unwrap();
    let id = keys["data"][0]["id"].as_str().unwrap();
    let (status, rotated) = status_of(
        server
            .send_as(
                reqwest::Method::POST,
                &format!("/v1/api-keys/{id}/rotate"),
                &key,
                Some(json!({"grace_seconds": 2})),
            )
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let new_key = rotated["key"].as_str().unwrap().to_owned();
    assert_eq!(rotated["previous_key"]["replaced_by"], rotated["id"]);
    assert!(
        rotated["previous_key"]["expires_at"].is_string(),
        "the grace period is stated"
    );
    assert_eq!(
        server.get_as("/v1/api-keys", &key).await.status(),
        StatusCode::OK,
        "old key works during the grace period"
    );
    assert_eq!(
        server.get_as("/v1/api-keys", &new_key).await.status(),
        StatusCode::OK
    );
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (status, body) = status_of(server.get_as("/v1/api-keys", &key).await).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body["detail"].as_str().unwrap().contains("expired"));
    assert_eq!(
        server.get_as("/v1/api-keys", &new_key).await.status(),
        StatusCode::OK
    );
    // Two rotations of one key at once: exactly one wins, the other is a 409.
    let fresh: Value = create_key(&server, &new_key, json!({"name": "race"})).await;
    let race_id = fresh["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/api-keys/{race_id}/rotate");
    let (first, second) = tokio::join!(
        server.send_as(reqwest::Method::POST, &path, &new_key, None),
        server.send_as(reqwest::Method::POST, &path, &new_key, None)
    );
    let mut statuses = [first.status(), second.status()];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::CREATED, StatusCode::CONFLICT]);

    let too_long = server
        .send_as(
            reqwest::Method::POST,
            &format!("/v1/api-keys/{id}/rotate"),
            &new_key,
            Some(json!({"grace_seconds": 999999999})),
        )
        .await;
    assert_eq!(too_long.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

async fn usage_is_tracked_per_key_per_day_per_class(kind: Backend) {
    let backend = orrery_tests::backend(kind).await;
    let server = serve(backend).await;
    let (_, key) = create_account(&server, "free").await;
    for _ in 0..3 {
        server.get_as("/v1/api-keys", &key).await;
    }
    let keys: Value = server
        .get_as("/v1/api-keys", &key)
        .await
        .json()
        .await
        .unwrap();
    let entry = &keys["data"][0];
    assert_eq!(entry["usage_today"]["management"], json!(4));
    assert!(entry["last_used_at"].is_string());
    let id = entry["id"].as_str().unwrap();
    let usage: Value = server
        .get_as(&format!("/v1/api-keys/{id}/usage?days=7"), &key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        usage["days"][0]["date"],
        json!(chrono::Utc::now().date_naive().to_string())
    );
    assert_eq!(usage["days"][0]["counts"]["management"], json!(5));
    let bad = server
        .get_as(&format!("/v1/api-keys/{id}/usage?days=400"), &key)
        .await;
    let (status, body) = status_of(bad).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["errors"][0]["field"], "days");
}

async fn tier_upgrade_lifts_an_exhausted_quota_at_once(kind: Backend) {
    let mut options = TestOptions::default();
    options.config.tiers = tight_tiers();
    let server = serve_with(kind, options).await;
    let (account, key) = create_account(&server, "free").await;
    for _ in 0..20 {
        assert_eq!(
            server.get_as("/v1/api-keys?limit=1", &key).await.status(),
            StatusCode::OK
        );
    }
    let refused = server.get_as("/v1/api-keys?limit=1", &key).await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after > 0 && retry_after <= 86_400);
    server
        .send_as(
            reqwest::Method::PATCH,
            &format!("/v1/admin/accounts/{account}"),
            ADMIN_KEY,
            Some(json!({"tier": "basic"})),
        )
        .await;
    let after = server.get_as("/v1/api-keys?limit=1", &key).await;
    assert_eq!(
        after.status(),
        StatusCode::OK,
        "the billing hook takes effect at once"
    );
    assert_eq!(after.headers()["x-ratelimit-limit"], "5000");
}

async fn validation_errors_name_fields(kind: Backend) {
    let backend = orrery_tests::backend(kind).await;
    let server = serve(backend).await;
    let (_, key) = create_account(&server, "free").await;
    let (status, body) = status_of(
        server
            .send_as(
                reqwest::Method::POST,
                "/v1/api-keys",
                &key,
                Some(
                    json!({"name": "x", "scopes": ["root"], "expires_at": "2001-01-01T00:00:00Z"}),
                ),
            )
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["expires_at", "scopes"]);
    let (status, body) = status_of(server.get_as("/v1/api-keys?limit=0", &key).await).await;
    assert_eq!(
        (status, body["errors"][0]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("limit"))
    );
    // A cursor that this list did not hand out is a 400 (cursors are sealed: see the hardening
    // suite for forged and tampered ones).
    let (status, body) = status_of(server.get_as("/v1/api-keys?cursor=garbage", &key).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["detail"].as_str().unwrap().contains("cursor"),
        "{body}"
    );
    let _ = KeyMode::Live;
}

/// A metered probe route, so the count covers the access layer alone.
async fn serve_probe(
    kind: Backend,
    options_tiers: Option<orrery::access::tiers::TierLimits>,
) -> (TestApp, Arc<orrery_tests::CountingStore>) {
    let mut options = TestOptions::default();
    if let Some(tiers) = options_tiers {
        options.config.tiers = tiers;
    }
    // The cache re-reads its generation board once per sync interval and container, whatever
    // the traffic: at the longest interval, these few requests fall inside one.
    options.config.cache.sync_interval = Duration::from_secs(5);
    // Analytics flush out of the window: its writes are the container's, once per interval,
    // not the request's (tests/integration/analytics.rs covers them).
    options.config.analytics_flush_interval = Duration::from_secs(3600);
    let (backend, counting) = orrery_tests::backend_with(kind, options)
        .await
        .count_store_calls();
    orrery::access::ensure_local_secrets(&backend.app, Some(ADMIN_KEY))
        .await
        .unwrap();
    let app = backend.app.clone();
    let server = // No queue workers: the consumer of the account's own events would read the store while
    // the requests are counted.
    orrery_tests::spawn_app_without_workers_with(backend, move |routes| {
        let probe = axum::Router::new().route("/v1/probe", axum::routing::get(|| async { "ok" }));
        routes.merge(orrery::access::metered(
            probe,
            &app,
            orrery::access::QuotaClass::Management,
            "keys",
        ))
    })
    .await;
    (server, counting)
}

async fn warm_metered_requests_make_one_write_and_no_reads(kind: Backend) {
    let (server, counting) = serve_probe(kind, Some(tight_tiers())).await;
    let (_, key) = create_account(&server, "free").await;
    // The first request warms the container: pepper, key lookup and account tier are read once.
    assert_eq!(
        server.get_as("/v1/probe", &key).await.status(),
        StatusCode::OK
    );
    let before = counting.counts();
    for _ in 0..10 {
        assert_eq!(
            server.get_as("/v1/probe", &key).await.status(),
            StatusCode::OK
        );
    }
    let (reads, writes) = counting.counts();
    assert_eq!(
        (reads - before.0, writes - before.1),
        (0, 10),
        "exactly one write and no read per warm request"
    );

    // Exhaust the quota (20 a day), then further requests are refused without touching the store.
    for _ in 0..9 {
        server.get_as("/v1/probe", &key).await;
    }
    let refused = server.get_as("/v1/probe", &key).await;
    assert_eq!(
        refused.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "the refused increment marks the quota exhausted"
    );
    let exhausted = counting.counts();
    for _ in 0..10 {
        let response = server.get_as("/v1/probe", &key).await;
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    }
    assert_eq!(
        counting.counts(),
        exhausted,
        "refused from the in-process cache: no store call at all"
    );
}

async fn admin_cache_endpoints_report_warm_and_invalidate(kind: Backend) {
    let (server, counting) = serve_probe(kind, None).await;
    let (account, key) = create_account(&server, "free").await;
    let stats = |server: &TestApp| {
        let request = server
            .client
            .get(server.url("/v1/admin/cache/stats"))
            .bearer_auth(ADMIN_KEY);
        async move { request.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let before = stats(&server).await;
    assert!(
        before["l1"]["hits"].is_u64()
            && before["l1"]["misses"].is_u64()
            && before["l1"]["evictions"].is_u64()
    );
    assert_eq!(before["staleness_seconds"], json!(30));

    // Invalidate the whole key namespace: the next request must read the key again.
    server.get_as("/v1/probe", &key).await;
    let invalidated = server
        .send_as(
            reqwest::Method::POST,
            "/v1/admin/cache/invalidate",
            ADMIN_KEY,
            Some(json!({"namespace": "keys"})),
        )
        .await;
    assert_eq!(invalidated.status(), StatusCode::NO_CONTENT);
    let reads_before = counting.counts().0;
    server.get_as("/v1/probe", &key).await;
    assert_eq!(
        counting.counts().0 - reads_before,
        1,
        "the key lookup was read again"
    );

    // Warming from the store preloads an account's keys: no read on the next request.
    server
        .send_as(
            reqwest::Method::POST,
            "/v1/admin/cache/invalidate",
            ADMIN_KEY,
            Some(json!({"namespace": "keys"})),
        )
        .await;
    let warmed: Value = server
        .send_as(
            reqwest::Method::POST,
            "/v1/admin/cache/warm",
            ADMIN_KEY,
            Some(json!({"account_ids": [account]})),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        warmed["from_store"],
        json!(2),
        "the account and its one key"
    );
    let reads_before = counting.counts().0;
    server.get_as("/v1/probe", &key).await;
    assert_eq!(
        counting.counts().0,
        reads_before,
        "served from the warmed cache"
    );

    let after = stats(&server).await;
    assert!(after["l1"]["hits"].as_u64().unwrap() > before["l1"]["hits"].as_u64().unwrap());
    let bad = server
        .send_as(
            reqwest::Method::POST,
            "/v1/admin/cache/invalidate",
            ADMIN_KEY,
            Some(json!({"namespace": "everything"})),
        )
        .await;
    let (status, body) = status_of(bad).await;
    assert_eq!(
        (status, body["errors"][0]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("namespace"))
    );
    let unauthorised = server.get_as("/v1/admin/cache/stats", &key).await;
    assert_eq!(unauthorised.status(), StatusCode::UNAUTHORIZED);
}

/// Another container verifies a key created a moment ago: its look-up must not read a replica
/// that has not seen the key yet (the answer, "unknown", would be cached for minutes).
async fn a_new_key_works_at_once_in_a_container_reading_a_lagging_replica(kind: Backend) {
    let server = serve(orrery_tests::backend(kind).await).await;
    let (_, key) = create_account(&server, "basic").await;
    let elsewhere = orrery_tests::lagging::behind(server.app(), 0);
    let caller =
        orrery::access::auth::authenticate(&elsewhere, &orrery_tests::bearer_headers(&key))
            .await
            .expect("the new key is known");
    assert_eq!(caller.tier, orrery::access::tiers::Tier::Basic);
}
