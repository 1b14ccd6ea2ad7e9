//! Webhook endpoint management over HTTP on both backends: the lifecycle, secrets and their
//! rotation, idempotent registration, URL refusals at registration, validation and tenant
//! isolation. (Deliveries are tested with a real receiver in the delivery suite.)

use orrery_tests::Backend;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use orrery_tests::{create_account, serve};

on_both_backends!(
    endpoints_are_registered_listed_updated_and_deleted,
    secrets_rotate_with_a_grace_period,
    registration_is_idempotent_and_bounded,
    hostile_urls_are_refused_at_registration,
    invalid_fields_are_named_and_other_accounts_see_nothing,
);

async fn endpoints_are_registered_listed_updated_and_deleted(kind: Backend) {
    let backend = orrery_tests::backend(kind).await;
    let server = serve(backend).await;
    let (_, key) = create_account(&server, "basic").await;
    let response = server
        .send_as(
            Method::POST,
            "/v1/webhooks",
            &key,
            Some(json!({"url": "https://example.com/hooks/orrery", "event_types": ["chart.saved"], "description": " production "})),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(
        response.headers()["ratelimit-policy"],
        "\"management-daily\";q=5000;w=86400"
    );
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let created: Value = response.json().await.unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(location, format!("/v1/webhooks/{id}"));
    assert!(id.starts_with("wh_"));
    assert!(created["secret"].as_str().unwrap().starts_with("whsec_"));
    assert_eq!(created["description"], "production");
    assert_eq!(created["enabled"], true);
    assert_eq!(created["event_types"], json!(["chart.saved"]));

    let shown: Value = server
        .get_as(&format!("/v1/webhooks/{id}"), &key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(shown["url"], "https://example.com/hooks/orrery");
    assert!(
        shown.get("secret").is_none(),
        "the secret is not in the view"
    );

    for n in 0..2 {
        let (status, _) = server
            .post_json(
                "/v1/webhooks",
                &key,
                json!({"url": format!("https://hooks{n}.example.com/")}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let page: Value = server
        .get_as("/v1/webhooks?limit=2", &key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["data"].as_array().unwrap().len(), 2);
    let cursor = page["next_cursor"].as_str().unwrap();
    let rest: Value = server
        .get_as(&format!("/v1/webhooks?limit=2&cursor={cursor}"), &key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(rest["data"][0]["id"], id.as_str(), "newest first");

    let patched = server
        .send_as(
            Method::PATCH,
            &format!("/v1/webhooks/{id}"),
            &key,
            Some(json!({"enabled": false, "event_types": ["chart.calculated", "chart.calculated", "reading.generated"]})),
        )
        .await;
    assert_eq!(patched.status(), StatusCode::OK);
    let patched: Value = patched.json().await.unwrap();
    assert_eq!(patched["enabled"], false);
    assert_eq!(
        patched["event_types"],
        json!(["chart.calculated", "reading.generated"])
    );

    let catalogue: Value = server
        .get_as("/v1/webhooks/event-types", &key)
        .await
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = catalogue
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    for name in [
        "chart.calculated",
        "chart.saved",
        "reading.generated",
        "key.created",
        "key.revoked",
        "webhook.test",
    ] {
        assert!(names.contains(&name), "{name}");
    }

    let deleted = server
        .send_as(Method::DELETE, &format!("/v1/webhooks/{id}"), &key, None)
        .await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    let gone = server.get_as(&format!("/v1/webhooks/{id}"), &key).await;
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);
}

async fn secrets_rotate_with_a_grace_period(kind: Backend) {
    let backend = orrery_tests::backend(kind).await;
    let server = serve(backend).await;
    let (account, key) = create_account(&server, "basic").await;
    let (_, created) = server
        .post_json(
            "/v1/webhooks",
            &key,
            json!({"url": "https://example.com/hook"}),
        )
        .await;
    let id = created["id"].as_str().unwrap();
    let first = created["secret"].as_str().unwrap();
    let secret: Value = server
        .get_as(&format!("/v1/webhooks/{id}/secret"), &key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(secret["secret"], first);
    assert_eq!(secret["previous_secret"], Value::Null);

    let (status, rotated) = server
        .post_json(&format!("/v1/webhooks/{id}/rotate-secret"), &key, json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let second = rotated["secret"].as_str().unwrap();
    assert_ne!(second, first);
    assert_eq!(rotated["previous_secret"], first);
    let until = chrono::DateTime::parse_from_rfc3339(
        rotated["previous_secret_expires_at"].as_str().unwrap(),
    )
    .unwrap();
    let grace = until.with_timezone(&chrono::Utc) - chrono::Utc::now();
    assert!(grace > chrono::Duration::hours(23) && grace <= chrono::Duration::hours(24));
    // Both secrets sign while the grace period lasts.
    let now = chrono::Utc::now();
    let account = orrery::ids::AccountId::parse(&account).unwrap();
    let record = orrery::webhooks::record::all_of(server.app(), &account)
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.id.as_str() == id)
        .unwrap();
    let secrets = record.signing_secrets(now);
    assert_eq!(secrets.len(), 2);
    assert_eq!(
        record
            .signing_secrets(now + chrono::Duration::hours(25))
            .len(),
        1,
        "only the new secret after the grace period"
    );
}

async fn registration_is_idempotent_and_bounded(kind: Backend) {
    let backend = orrery_tests::backend(kind).await;
    let server = serve(backend).await;
    let (_, key) = create_account(&server, "basic").await;
    let register = |body: Value| {
        server
            .client
            .post(server.url("/v1/webhooks"))
            .bearer_auth(&key)
            .header("idempotency-key", "hook-1")
            .json(&body)
            .send()
    };
    let first = register(json!({"url": "https://example.com/a"}))
        .await
        .unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.unwrap();
    let again = register(json!({"url": "https://example.com/a"}))
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::OK);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["id"], first["id"]);
    assert_eq!(again["secret"], first["secret"]);
    let other = register(json!({"url": "https://example.com/b"}))
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::UNPROCESSABLE_ENTITY);

    for n in 1..orrery::webhooks::record::MAX_ENDPOINTS {
        let (status, _) = server
            .post_json(
                "/v1/webhooks",
                &key,
                json!({"url": format!("https://example.com/{n}")}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "endpoint {n}");
    }
    let (status, problem) = server
        .post_json(
            "/v1/webhooks",
            &key,
            json!({"url": "https://example.com/too-many"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
}

async fn hostile_urls_are_refused_at_registration(kind: Backend) {
    let backend = orrery_tests::backend(kind).await;
    let server = serve(backend).await;
    let (_, key) = create_account(&server, "basic").await;
    let corpus: Value = serde_json::from_str(include_str!(
        "../../shared/core/data/webhooks/hostile-urls.json"
    ))
    .unwrap();
    let hostile: Vec<&str> = corpus["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|group| group["urls"].as_array().unwrap().iter())
        .map(|url| url.as_str().unwrap())
        .collect();
    assert!(hostile.len() >= 30);
    for url in hostile {
        let (status, problem) = server
            .post_json("/v1/webhooks", &key, json!({"url": url}))
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{url}");
        assert_eq!(problem["errors"][0]["field"], "url", "{url}");
    }
    let (_, problem) = server
        .post_json(
            "/v1/webhooks",
            &key,
            json!({"url": "https://169.254.169.254/"}),
        )
        .await;
    assert!(
        problem["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("link-local"),
        "{problem}"
    );
    // Nothing was registered.
    let list: Value = server
        .get_as("/v1/webhooks", &key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["data"], json!([]));
}

async fn invalid_fields_are_named_and_other_accounts_see_nothing(kind: Backend) {
    let backend = orrery_tests::backend(kind).await;
    let server = serve(backend).await;
    let (_, key) = create_account(&server, "basic").await;
    let (status, problem) = server.post_json("/v1/webhooks", &key, json!({"url": "https://127.0.0.1/", "event_types": ["chart.deleted"], "description": "x".repeat(501)}))
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["url", "event_types", "description"]);
    assert!(
        problem["errors"][1]["message"]
            .as_str()
            .unwrap()
            .contains("chart.calculated")
    );
    let (status, _) = server
        .post_json(
            "/v1/webhooks",
            &key,
            json!({"url": "https://example.com/", "colour": "red"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    let (_, created) = server
        .post_json(
            "/v1/webhooks",
            &key,
            json!({"url": "https://example.com/mine"}),
        )
        .await;
    let id = created["id"].as_str().unwrap();
    let (_, stranger) = create_account(&server, "basic").await;
    for (method, path) in [
        (Method::GET, format!("/v1/webhooks/{id}")),
        (Method::PATCH, format!("/v1/webhooks/{id}")),
        (Method::DELETE, format!("/v1/webhooks/{id}")),
        (Method::GET, format!("/v1/webhooks/{id}/secret")),
        (Method::POST, format!("/v1/webhooks/{id}/rotate-secret")),
    ] {
        let body = (method == Method::PATCH).then(|| json!({"enabled": false}));
        let response = server.send_as(method.clone(), &path, &stranger, body).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{method} {path}");
    }
    let theirs: Value = server
        .get_as("/v1/webhooks", &stranger)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(theirs["data"], json!([]));
    // Still there, untouched, for its owner.
    let mine = server.get_as(&format!("/v1/webhooks/{id}"), &key).await;
    assert_eq!(mine.status(), StatusCode::OK);
}
