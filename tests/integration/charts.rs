//! Charts and readings over HTTP on both backends: computation, the canonical-input cache,
//! quota headers and classes, events, SVG negotiation, saved charts with pagination,
//! idempotency and tenant isolation, transits, synastry, readings and field-level 422s.

use orrery_tests::{Backend, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use orrery_tests::{create_account, london};

on_both_backends!(
    charts_are_computed_metered_cached_and_published,
    the_wheel_is_served_as_svg_by_format_accept_or_include,
    saved_charts_page_replay_and_stay_in_their_account,
    transits_and_synastry_take_inline_or_saved_charts,
    readings_are_metered_as_readings_and_published,
    invalid_requests_name_every_field_and_cost_nothing,
);

/// The app without queue workers: the events that requests publish stay in the queue to read.
use orrery_tests::serve_without_workers as serve;

/// Every event published so far for `account_id` (the queue is drained).
async fn published(server: &TestApp, account_id: &str) -> Vec<Value> {
    orrery_tests::published_events(server.app(), account_id).await
}

/// An account with a webhook endpoint for every event type.
async fn listening_account(server: &TestApp, tier: &str) -> (String, String) {
    let (account, key) = create_account(server, tier).await;
    let (status, _) = server
        .post_json(
            "/v1/webhooks",
            &key,
            json!({"url": "https://example.com/hooks/orrery"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    (account, key)
}

fn of_type<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["type"] == kind).collect()
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> &'a str {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

async fn charts_are_computed_metered_cached_and_published(kind: Backend) {
    let backend = orrery_tests::backend(kind).await;
    let server = serve(backend).await;
    let (account, key) = listening_account(&server, "basic").await;
    let response = server
        .send_as(Method::POST, "/v1/charts", &key, Some(london()))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, "content-type"), "application/json");
    assert_eq!(
        header(&response, "ratelimit-policy"),
        "\"charts-daily\";q=200;w=86400"
    );
    assert_eq!(header(&response, "x-ratelimit-remaining"), "199");
    let chart: Value = response.json().await.unwrap();
    assert_eq!(chart["name"], "Ada");
    assert_eq!(chart["utc"], "1990-05-17T13:30:00Z", "BST resolved to UTC");
    assert!(chart["jd_ut"].as_f64().unwrap() > 2_448_029.0);
    assert!(
        chart["engine_version"]
            .as_str()
            .unwrap()
            .starts_with("orrery-astro")
    );
    assert!(chart["data_version"].as_str().unwrap().contains("DE422"));
    assert_eq!(chart["bodies"].as_array().unwrap().len(), 10);
    assert_eq!(chart["houses"].as_array().unwrap().len(), 12);
    assert_eq!(chart["bodies"][0]["name"], "sun");
    assert_eq!(chart["bodies"][0]["sign"], "taurus");
    assert!(!chart["aspects"].as_array().unwrap().is_empty());
    assert_eq!(chart["distribution"]["elements"]["earth"], 5);

    // The same chart written another way: the same cache entry, the same result.
    let respelled = json!({"longitude": -0.10, "latitude": 51.50, "datetime": "1990-05-17T13:30:00Z",
                           "house_system": "placidus", "zodiac": "tropical"});
    let hits_before = server.app().cache.stats().await.l1.hits;
    let (status, again) = server.post_json("/v1/charts", &key, respelled).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again["input_hash"], chart["input_hash"]);
    assert_eq!(again["bodies"], chart["bodies"]);
    assert_eq!(again["name"], Value::Null);
    assert!(server.app().cache.stats().await.l1.hits > hits_before);

    let events = published(&server, &account).await;
    let calculated = of_type(&events, "chart.calculated");
    assert_eq!(calculated.len(), 2, "{events:?}");
    assert!(
        calculated
            .iter()
            .all(|e| e["data"]["input_hash"] == chart["input_hash"])
    );
    // (A standard queue does not promise order: find each by its flag.)
    assert!(calculated.iter().any(|e| e["data"]["cached"] == false));
    assert!(calculated.iter().any(|e| e["data"]["cached"] == true));

    // Nobody listens for this account's charts (its one endpoint wants chart.saved only): the
    // event is queued all the same, for the account's event log; the fan-out skips the endpoint.
    let (quiet, quiet_key) = create_account(&server, "basic").await;
    let (status, _) = server
        .post_json(
            "/v1/webhooks",
            &quiet_key,
            json!({"url": "https://example.com/hooks/saved", "event_types": ["chart.saved"]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = server.post_json("/v1/charts", &quiet_key, london()).await;
    assert_eq!(status, StatusCode::OK);
    let quiet_events = published(&server, &quiet).await;
    let charts = quiet_events
        .iter()
        .filter(|event| event["type"] == "chart.calculated")
        .count();
    assert_eq!(charts, 1, "{quiet_events:?}");
}

fn assert_wheel(svg: &str) {
    let doc = roxmltree::Document::parse(svg).expect("the wheel is well-formed XML");
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    assert!(svg.len() <= 60 * 1024, "{} bytes", svg.len());
    for body in [
        "sun", "moon", "mercury", "venus", "mars", "jupiter", "saturn", "uranus", "neptune",
        "pluto",
    ] {
        assert!(svg.contains(&format!("href=\"#g-{body}\"")), "{body}");
    }
}

async fn the_wheel_is_served_as_svg_by_format_accept_or_include(kind: Backend) {
    let backend = orrery_tests::backend(kind).await;
    let server = serve(backend).await;
    let (_, key) = create_account(&server, "basic").await;
    let by_format = server
        .send_as(
            Method::POST,
            "/v1/charts?format=svg&theme=dark",
            &key,
            Some(london()),
        )
        .await;
    assert_eq!(by_format.status(), StatusCode::OK);
    assert_eq!(header(&by_format, "content-type"), "image/svg+xml");
    assert!(!header(&by_format, "ratelimit").is_empty());
    let dark = by_format.text().await.unwrap();
    assert_wheel(&dark);
    assert!(dark.contains("#111827"), "the dark theme's background");

    let by_accept = server
        .client
        .post(server.url("/v1/charts"))
        .bearer_auth(&key)
        .header("accept", "image/svg+xml")
        .json(&london())
        .send()
        .await
        .unwrap();
    assert_eq!(header(&by_accept, "content-type"), "image/svg+xml");
    let light = by_accept.text().await.unwrap();
    assert_wheel(&light);
    assert_ne!(light, dark);

    let (status, embedded) = server
        .post_json("/v1/charts?include=svg", &key, london())
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_wheel(embedded["svg"].as_str().unwrap());
    assert_eq!(embedded["bodies"].as_array().unwrap().len(), 10);

    let (status, problem) = server
        .post_json("/v1/charts?format=png&theme=sepia", &key, london())
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["format", "theme"]);
}

async fn saved_charts_page_replay_and_stay_in_their_account(kind: Backend) {
    let backend = orrery_tests::backend(kind).await;
    let server = serve(backend).await;
    let (account, key) = listening_account(&server, "basic").await;
    let mut ids = Vec::new();
    for (i, path) in [
        "/v1/charts?save=true",
        "/v1/charts/saved",
        "/v1/charts/saved",
    ]
    .iter()
    .enumerate()
    {
        let mut body = london();
        body["name"] = json!(format!("Chart {i}"));
        let response = server.send_as(Method::POST, path, &key, Some(body)).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let location = header(&response, "location").to_owned();
        let saved: Value = response.json().await.unwrap();
        let id = saved["id"].as_str().unwrap().to_owned();
        assert_eq!(location, format!("/v1/charts/saved/{id}"));
        assert_eq!(saved["name"], format!("Chart {i}"));
        assert_eq!(saved["input"]["timezone"], "Europe/London");
        assert_eq!(saved["bodies"].as_array().unwrap().len(), 10);
        ids.push(id);
    }

    // Newest first, two per page.
    let first: Value = server
        .get_as("/v1/charts/saved?limit=2", &key)
        .await
        .json()
        .await
        .unwrap();
    let listed: Vec<&str> = first["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, [ids[2].as_str(), ids[1].as_str()]);
    assert_eq!(first["data"][0]["sun_sign"], "taurus");
    let cursor = first["next_cursor"].as_str().unwrap();
    let second: Value = server
        .get_as(&format!("/v1/charts/saved?limit=2&cursor={cursor}"), &key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(second["data"][0]["id"], ids[0].as_str());
    assert_eq!(second["next_cursor"], Value::Null);

    let shown = server
        .get_as(&format!("/v1/charts/saved/{}", ids[1]), &key)
        .await;
    assert_eq!(shown.status(), StatusCode::OK);
    assert_eq!(
        header(&shown, "ratelimit-policy"),
        "\"management-daily\";q=5000;w=86400",
        "reading a saved chart computes nothing"
    );
    let shown: Value = shown.json().await.unwrap();
    assert_eq!(shown["name"], "Chart 1");
    let svg = server
        .get_as(&format!("/v1/charts/saved/{}?format=svg", ids[1]), &key)
        .await
        .text()
        .await
        .unwrap();
    assert_wheel(&svg);

    // Idempotency-Key: a retry gets the first chart back, a different body is refused.
    let save_with_key = |body: Value| {
        server
            .client
            .post(server.url("/v1/charts/saved"))
            .bearer_auth(&key)
            .header("idempotency-key", "save-once")
            .json(&body)
            .send()
    };
    let created = save_with_key(london()).await.unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let created: Value = created.json().await.unwrap();
    let replayed = save_with_key(london()).await.unwrap();
    assert_eq!(replayed.status(), StatusCode::OK);
    assert_eq!(header(&replayed, "idempotent-replayed"), "true");
    let replayed: Value = replayed.json().await.unwrap();
    assert_eq!(replayed["id"], created["id"]);
    let mut other = london();
    other["latitude"] = json!(48.8);
    let reused = save_with_key(other).await.unwrap();
    assert_eq!(reused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let all: Value = server
        .get_as("/v1/charts/saved?limit=100", &key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(all["data"].as_array().unwrap().len(), 4, "no duplicate");

    // Another account sees none of it.
    let (_, stranger) = create_account(&server, "basic").await;
    let foreign = server
        .get_as(&format!("/v1/charts/saved/{}", ids[0]), &stranger)
        .await;
    assert_eq!(foreign.status(), StatusCode::NOT_FOUND);
    let foreign_delete = server
        .send_as(
            Method::DELETE,
            &format!("/v1/charts/saved/{}", ids[0]),
            &stranger,
            None,
        )
        .await;
    assert_eq!(foreign_delete.status(), StatusCode::NOT_FOUND);
    let theirs: Value = server
        .get_as("/v1/charts/saved", &stranger)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(theirs["data"], json!([]));

    let deleted = server
        .send_as(
            Method::DELETE,
            &format!("/v1/charts/saved/{}", ids[0]),
            &key,
            None,
        )
        .await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    let gone = server
        .get_as(&format!("/v1/charts/saved/{}", ids[0]), &key)
        .await;
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);
    let malformed = server.get_as("/v1/charts/saved/not-an-id", &key).await;
    assert_eq!(malformed.status(), StatusCode::NOT_FOUND);

    let events = published(&server, &account).await;
    let saved_events = of_type(&events, "chart.saved");
    assert_eq!(saved_events.len(), 4, "one per chart actually saved");
    for id in &ids {
        assert!(
            saved_events
                .iter()
                .any(|e| e["data"]["chart_id"] == id.as_str())
        );
    }
}

async fn transits_and_synastry_take_inline_or_saved_charts(kind: Backend) {
    let backend = orrery_tests::backend(kind).await;
    let server = serve(backend).await;
    let (_, key) = create_account(&server, "basic").await;
    let (status, saved) = server.post_json("/v1/charts/saved", &key, london()).await;
    assert_eq!(status, StatusCode::CREATED);
    let saved_id = saved["id"].as_str().unwrap();

    let (status, transits) = server
        .post_json(
            "/v1/charts/transits",
            &key,
            json!({"natal": london(), "moment": "2026-11-29T00:00:00Z"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{transits}");
    assert_eq!(transits["moment"]["utc"], "2026-11-29T00:00:00Z");
    assert_eq!(transits["natal"]["name"], "Ada");
    assert_eq!(transits["bodies"].as_array().unwrap().len(), 10);
    for body in transits["bodies"].as_array().unwrap() {
        let house = body["natal_house"].as_u64().unwrap();
        assert!((1..=12).contains(&house));
    }
    let aspects = transits["aspects"].as_array().unwrap();
    assert!(!aspects.is_empty());
    assert!(aspects.iter().all(|a| a["orb"].as_f64().unwrap() <= 2.0));

    // Metered under `charts`, like every computing route.
    let metered = server
        .send_as(
            Method::POST,
            "/v1/charts/synastry",
            &key,
            Some(json!({"first": london(), "second": london()})),
        )
        .await;
    assert_eq!(metered.status(), StatusCode::OK);
    assert_eq!(
        header(&metered, "ratelimit-policy"),
        "\"charts-daily\";q=200;w=86400"
    );
    assert!(!header(&metered, "x-ratelimit-remaining").is_empty());

    // By saved id, at the default moment (now).
    let (status, now) = server
        .post_json(
            "/v1/charts/transits",
            &key,
            json!({"natal": {"chart_id": saved_id}, "orbs": {"conjunction": 5}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{now}");
    assert_eq!(now["natal"]["chart_id"], saved_id);
    assert!(now["moment"]["utc"].as_str().unwrap().starts_with("20"));

    let (status, synastry) = server.post_json("/v1/charts/synastry",
        &key,
        json!({"first": {"chart_id": saved_id},
               "second": {"datetime": "1992-03-01T08:00:00Z", "latitude": 40.7, "longitude": -74.0}}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{synastry}");
    assert_eq!(synastry["first"]["chart_id"], saved_id);
    assert_eq!(
        synastry["house_overlays"]["first_in_second"]
            .as_array()
            .unwrap()
            .len(),
        10
    );
    assert_eq!(
        synastry["house_overlays"]["second_in_first"]
            .as_array()
            .unwrap()
            .len(),
        10
    );
    assert!(!synastry["aspects"].as_array().unwrap().is_empty());

    let (status, problem) = server
        .post_json(
            "/v1/charts/synastry",
            &key,
            json!({"first": {"chart_id": "chart_01m8jhtx29fwxgk2eqq7gms51n"},
               "second": {"datetime": "1992-03-01T08:00:00Z", "latitude": 140, "longitude": 0}}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["errors"][0]["field"], "second.latitude");
    let (status, problem) = server
        .post_json(
            "/v1/charts/synastry",
            &key,
            json!({"first": {"chart_id": "chart_01m8jhtx29fwxgk2eqq7gms51n"}, "second": london()}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["errors"][0]["field"], "first.chart_id");
}

async fn readings_are_metered_as_readings_and_published(kind: Backend) {
    let backend = orrery_tests::backend(kind).await;
    let server = serve(backend).await;
    let (account, key) = listening_account(&server, "free").await;
    let response = server
        .send_as(Method::POST, "/v1/readings", &key, Some(london()))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        header(&response, "ratelimit-policy"),
        "\"readings-daily\";q=10;w=86400"
    );
    let reading: Value = response.json().await.unwrap();
    assert_eq!(reading["title"], "Natal reading for Ada");
    let sections: Vec<&str> = reading["sections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["key"].as_str().unwrap())
        .collect();
    assert_eq!(
        sections,
        ["overview", "planets", "houses", "aspects", "balance"]
    );
    assert!(
        reading["sections"][0]["paragraphs"][0]
            .as_str()
            .unwrap()
            .contains("Sun in Taurus")
    );
    assert_eq!(
        reading["sections"][0]["items"][2]["title"],
        "Ascendant in Virgo"
    );

    // The same reading for the saved chart: deterministic.
    let (_, saved) = server.post_json("/v1/charts/saved", &key, london()).await;
    let (status, again) = server
        .post_json("/v1/readings", &key, json!({"chart_id": saved["id"]}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again["sections"], reading["sections"]);
    assert_eq!(again["chart"]["chart_id"], saved["id"]);

    let (status, problem) = server
        .post_json(
            "/v1/readings",
            &key,
            json!({"chart_id": saved["id"], "latitude": 3}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["errors"][0]["field"], "chart_id");

    let events = published(&server, &account).await;
    assert_eq!(of_type(&events, "reading.generated").len(), 2);
}

async fn invalid_requests_name_every_field_and_cost_nothing(kind: Backend) {
    let backend = orrery_tests::backend(kind).await;
    let server = serve(backend).await;
    let (_, key) = create_account(&server, "basic").await;
    let (status, problem) = server
        .post_json(
            "/v1/charts",
            &key,
            json!({"datetime": "1990-05-17T14:30Z", "latitude": 95, "longitude": 200,
               "house_system": "topocentric", "zodiac": "draconic", "colour": "red"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let errors = problem["errors"].as_array().unwrap();
    let fields: Vec<&str> = errors
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    for field in ["colour", "latitude", "longitude", "house_system", "zodiac"] {
        assert!(fields.contains(&field), "{field} in {fields:?}");
    }
    let message = |field: &str| {
        errors.iter().find(|e| e["field"] == field).unwrap()["message"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert!(message("latitude").contains("-90 to 90"));
    assert!(message("house_system").contains("placidus, koch"));

    let (status, problem) = server
        .post_json(
            "/v1/charts",
            &key,
            json!({"datetime": "1700-01-01T00:00Z", "latitude": 0, "longitude": 0}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let detail = problem["errors"][0]["message"].as_str().unwrap();
    assert!(
        detail.contains("1800-01-01") && detail.contains("2200-01-01"),
        "{detail}"
    );

    let (status, problem) = server.post_json("/v1/charts",
        &key,
        json!({"datetime": "2021-11-07T01:30", "timezone": "America/New_York", "latitude": 40, "longitude": -74}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let detail = problem["errors"][0]["message"].as_str().unwrap();
    assert!(
        detail.contains("2021-11-07T05:30:00Z")
            && detail.contains("2021-11-07T06:30:00Z")
            && detail.contains("\"dst\""),
        "{detail}"
    );

    let malformed = server
        .client
        .post(server.url("/v1/charts"))
        .bearer_auth(&key)
        .header("content-type", "application/json")
        .body("{\"datetime\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        header(&malformed, "content-type"),
        "application/problem+json"
    );

    // None of these consumed a unit of the quota.
    let ok = server
        .send_as(Method::POST, "/v1/charts", &key, Some(london()))
        .await;
    assert_eq!(header(&ok, "x-ratelimit-remaining"), "199");
}

/// `orrery-local` serves the OpenAPI document (its content is checked in the openapi crate,
/// its validity by openapi-spec-validator in the test command).
#[tokio::test]
async fn the_openapi_document_is_served() {
    let server = orrery_tests::spawn_app(orrery_tests::Backend::Embedded).await;
    let response = server
        .client
        .get(server.url("/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, "content-type"), "application/json");
    let doc: Value = response.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    assert!(doc["paths"]["/v1/charts"]["post"].is_object());
}

/// The wheel renders with a real SVG renderer (librsvg's `rsvg-convert`, which the test
/// command installs) to a PNG, in both themes.
#[tokio::test]
async fn the_wheel_renders_to_png() {
    let chart = orrery_astro::compute_chart(
        &orrery_astro::ChartInput::from_json(
            r#"{"datetime":"1969-07-20T20:17:00Z","latitude":69.6,"longitude":18.9,"house_system":"porphyry"}"#,
        )
        .unwrap(),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    for theme in ["light", "dark"] {
        let svg = orrery_charts::wheel::render(
            &chart,
            &orrery_charts::wheel::WheelOptions {
                theme: theme.parse().unwrap(),
                title: Some("Tromsø & the Moon landing".into()),
            },
        );
        let svg_path = dir.path().join(format!("{theme}.svg"));
        let png_path = dir.path().join(format!("{theme}.png"));
        std::fs::write(&svg_path, &svg).unwrap();
        let output = tokio::process::Command::new("rsvg-convert")
            .arg(&svg_path)
            .arg("-o")
            .arg(&png_path)
            .output()
            .await
            .expect("rsvg-convert is installed by scripts/test.sh");
        assert!(
            output.status.success() && output.stderr.is_empty(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let png = std::fs::read(&png_path).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        assert!(png.len() > 10_000, "a drawn wheel, not an empty canvas");
    }
}
