//! Analytics over HTTP on both backends: usage that equals the quota headers after a known mix
//! of 2xx, 4xx and 429 responses; grouping and granularity; CSV (read back with Python's `csv`
//! module) and JSON Lines equal to the JSON; latency percentiles and cache hits; the summary's
//! headroom and batch counts; `usage.threshold` events once per level; tenant isolation; the
//! admin's top accounts and one account's reports.
//!
//! The in-process aggregator (latency, 5xx/429 moves) is flushed by calling it, as its interval
//! would: the suites share the test's `App` with the server.

use std::time::Duration;

use orrery_tests::{ADMIN_KEY, Backend, TestApp, TestOptions, create_account, london, tiers_with};
use reqwest::StatusCode;
use serde_json::{Value, json};

on_both_backends!(
    usage_equals_the_quota_headers_after_a_mix_of_outcomes,
    usage_groups_by_endpoint_key_and_outcome_by_hour_and_day,
    csv_and_json_lines_equal_the_json,
    latency_reports_percentiles_and_cache_hits,
    the_summary_reports_headroom_endpoints_and_batches,
    threshold_events_fire_once_per_level,
    another_accounts_analytics_are_invisible,
    admins_see_the_heaviest_accounts_and_one_accounts_reports,
    bad_report_parameters_are_422_and_cost_nothing,
    old_days_are_read_from_their_rollups,
    server_errors_are_counted_as_5xx_and_keep_their_unit,
);

async fn serve(kind: Backend, tiers: &[(&str, &str, u64)]) -> TestApp {
    let mut options = TestOptions::default();
    if !tiers.is_empty() {
        options.config.tiers = tiers_with(tiers);
    }
    // The suites flush explicitly; no background flush races them.
    options.config.analytics_flush_interval = Duration::from_secs(3600);
    orrery_tests::serve_without_workers(orrery_tests::backend_with(kind, options).await).await
}

/// Writes the container's pending analytics, as the interval would.
async fn flush(server: &TestApp) {
    let app = server.app();
    app.analytics.flush(app.store.as_ref()).await.unwrap();
}

/// `POST path` with `body` as `key`: the status and `x-ratelimit-used`.
async fn post(server: &TestApp, key: &str, path: &str, body: &Value) -> (StatusCode, Option<u32>) {
    let response = server
        .client
        .post(server.url(path))
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .unwrap();
    let used = response
        .headers()
        .get("x-ratelimit-used")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    (response.status(), used)
}

async fn get_text(
    server: &TestApp,
    key: &str,
    path: &str,
    accept: Option<&str>,
) -> (String, String) {
    let mut request = server.client.get(server.url(path)).bearer_auth(key);
    if let Some(accept) = accept {
        request = request.header("accept", accept);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let text = response.text().await.unwrap();
    assert_eq!(status, StatusCode::OK, "GET {path}: {text}");
    (content_type, text)
}

fn rows(report: &Value) -> Vec<Value> {
    report["data"].as_array().expect("data rows").clone()
}

/// The rows of `group` (all when `None`) added up: `(units, requests, 2xx, 4xx, 429, 5xx)`.
fn totals(rows: &[Value], group: Option<&str>) -> [i64; 6] {
    let mut sum = [0; 6];
    for row in rows
        .iter()
        .filter(|row| group.is_none_or(|group| row["group"] == group))
    {
        for (slot, field) in ["units", "requests", "2xx", "4xx", "429", "5xx"]
            .iter()
            .enumerate()
        {
            sum[slot] += row[field].as_i64().unwrap_or(0);
        }
    }
    sum
}

const CHARTS: &str = "POST /v1/charts";

async fn usage_equals_the_quota_headers_after_a_mix_of_outcomes(kind: Backend) {
    let server = serve(kind, &[("free", "charts", 5)]).await;
    let (_, key) = create_account(&server, "free").await;
    let mut last_used = None;
    for n in 0..3 {
        let body = json!({"datetime": format!("199{n}-05-17T14:30Z"), "latitude": 51.5, "longitude": -0.1});
        let (status, used) = post(&server, &key, "/v1/charts", &body).await;
        assert_eq!(status, StatusCode::OK);
        last_used = used;
    }
    for _ in 0..2 {
        let (status, used) = post(&server, &key, "/v1/charts", &json!({"latitude": 900})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        last_used = used;
    }
    assert_eq!(last_used, Some(3), "4xx cost nothing");
    for _ in 0..2 {
        let (status, used) = post(&server, &key, "/v1/charts", &london()).await;
        assert_eq!(status, StatusCode::OK);
        last_used = used;
    }
    for _ in 0..3 {
        let (status, _) = post(&server, &key, "/v1/charts", &london()).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    }
    assert_eq!(last_used, Some(5));
    flush(&server).await;

    let by_outcome = server
        .as_key(&key)
        .get("/v1/analytics/usage?granularity=hour&group_by=outcome")
        .expect(StatusCode::OK)
        .await;
    let by_outcome = rows(&by_outcome);
    let ungrouped = server
        .as_key(&key)
        .get("/v1/analytics/usage")
        .expect(StatusCode::OK)
        .await;
    let by_endpoint = server
        .as_key(&key)
        .get("/v1/analytics/usage?group_by=endpoint")
        .expect(StatusCode::OK)
        .await;
    let charts = totals(&rows(&by_endpoint), Some(CHARTS));
    assert_eq!(
        charts,
        [5, 10, 5, 2, 3, 0],
        "units = x-ratelimit-used (5); requests 5 × 2xx, 2 × 4xx, 3 × 429"
    );
    // Grouped by outcome the counts are the same; units are not an outcome.
    let outcome = |name: &str| totals(&by_outcome, Some(name))[1];
    assert!(outcome("2xx") >= 5 && outcome("4xx") == 2 && outcome("429") == 3);
    // The whole account: charts plus the analytics requests made so far (each took a unit).
    let all = totals(&rows(&ungrouped), None);
    assert_eq!(
        all[0],
        all[2] + all[5],
        "units are what 2xx and 5xx charged"
    );
    assert_eq!(
        all[0],
        5 + 2,
        "5 charts and the two analytics reads before it"
    );
}

async fn usage_groups_by_endpoint_key_and_outcome_by_hour_and_day(kind: Backend) {
    let server = serve(kind, &[]).await;
    let (_, key) = create_account(&server, "basic").await;
    let second = server
        .as_key(&key)
        .post("/v1/api-keys", json!({"name": "second"}))
        .expect(StatusCode::CREATED)
        .await;
    let second_key = second["key"].as_str().unwrap().to_owned();
    let second_id = second["id"].as_str().unwrap().to_owned();
    for _ in 0..2 {
        assert_eq!(
            post(&server, &key, "/v1/charts", &london()).await.0,
            StatusCode::OK
        );
    }
    assert_eq!(
        post(&server, &second_key, "/v1/charts", &london()).await.0,
        StatusCode::OK
    );
    assert_eq!(
        post(&server, &key, "/v1/readings", &london()).await.0,
        StatusCode::OK
    );

    let hourly = server
        .as_key(&key)
        .get("/v1/analytics/usage?granularity=hour&group_by=endpoint")
        .expect(StatusCode::OK)
        .await;
    let hourly = rows(&hourly);
    let hour = chrono::Utc::now().format("%Y-%m-%dT%H:00:00Z").to_string();
    let charts_row = hourly
        .iter()
        .find(|row| row["group"] == CHARTS)
        .expect("a charts row");
    assert_eq!(
        charts_row["period"], hour,
        "hourly periods are the hour's start"
    );
    assert_eq!(charts_row["units"], 3);
    assert_eq!(totals(&hourly, Some("POST /v1/readings"))[0], 1);
    assert!(hourly.iter().any(|row| row["group"] == "POST /v1/api-keys"));

    let daily = server
        .as_key(&key)
        .get("/v1/analytics/usage?granularity=day&group_by=key")
        .expect(StatusCode::OK)
        .await;
    let daily = rows(&daily);
    let today = chrono::Utc::now().date_naive().to_string();
    assert!(daily.iter().all(|row| row["period"] == today));
    let second_units = daily
        .iter()
        .find(|row| row["group"] == second_id.as_str())
        .expect("the second key's row")["units"]
        .as_i64();
    assert_eq!(second_units, Some(1), "the second key made one chart");
    assert_eq!(
        totals(&daily, None)[0],
        totals(&hourly, None)[0] + 1,
        "per key, the same units (and the hourly report's own)"
    );

    // A range that ends before today holds nothing of today.
    let yesterday = (chrono::Utc::now().date_naive() - chrono::Duration::days(1)).to_string();
    let past = server
        .as_key(&key)
        .get(&format!("/v1/analytics/usage?from={yesterday}&to={today}"))
        .expect(StatusCode::OK)
        .await;
    assert_eq!(rows(&past), Vec::<Value>::new());
}

/// Parses `text` with Python's `csv` module (strict): its rows as lists of fields.
fn python_csv(text: &str) -> Vec<Vec<String>> {
    let (status, stdout) = orrery_tests::run_python(
        &[
            "-c",
            "import csv, io, json, sys\n\
             rows = list(csv.reader(io.TextIOWrapper(sys.stdin.buffer, newline=''), strict=True))\n\
             print(json.dumps(rows))",
        ],
        text.as_bytes(),
    );
    assert!(status.success(), "python csv refused the export");
    serde_json::from_slice(&stdout).unwrap()
}

/// A JSON value as the CSV field it becomes.
fn field(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// Checks that `csv` (header + rows) holds exactly the JSON `rows` in `columns` order.
fn assert_csv_equals(csv: &str, rows: &[Value]) {
    let parsed = python_csv(csv);
    let (header, lines) = parsed.split_first().expect("a header line");
    assert_eq!(lines.len(), rows.len(), "one CSV line per JSON row");
    for (line, row) in lines.iter().zip(rows) {
        let expected: Vec<String> = header.iter().map(|column| field(&row[column])).collect();
        assert_eq!(line, &expected);
    }
}

async fn csv_and_json_lines_equal_the_json(kind: Backend) {
    let server = serve(kind, &[]).await;
    let (_, key) = create_account(&server, "basic").await;
    assert_eq!(
        post(&server, &key, "/v1/charts", &london()).await.0,
        StatusCode::OK
    );
    // An endpoint label with a comma and quotes would need quoting; ours have spaces and braces.
    server
        .as_key(&key)
        .get("/v1/api-keys/key_missing")
        .expect(StatusCode::NOT_FOUND)
        .await;
    let path =
        "/v1/analytics/usage?granularity=hour&group_by=endpoint&to=2100-01-01&from=2099-12-01";
    let (_, empty_csv) = get_text(&server, &key, &format!("{path}&format=csv"), None).await;
    assert_eq!(
        empty_csv, "period,group,units,requests,2xx,4xx,429,5xx\r\n",
        "a header even when empty"
    );

    let stable = format!(
        "/v1/analytics/usage?granularity=hour&group_by=endpoint&from={}&to={}",
        urlencode(&(chrono::Utc::now() - chrono::Duration::days(1)).to_rfc3339()),
        urlencode(&(chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339())
    );
    let (content_type, stable_csv) = get_text(&server, &key, &stable, Some("text/csv")).await;
    assert!(content_type.starts_with("text/csv"), "{content_type}");
    let stable_json = server
        .as_key(&key)
        .get(&stable)
        .expect(StatusCode::OK)
        .await;
    assert!(
        rows(&stable_json).len() >= 3,
        "charts, api-keys and the report itself"
    );
    // Each read counts itself: the JSON saw one more usage read than the CSV before it.
    let mut seen_by_csv = rows(&stable_json);
    let analytics = "GET /v1/analytics/usage";
    for row in &mut seen_by_csv {
        if row["group"] == analytics {
            for field in ["units", "requests", "2xx"] {
                row[field] = json!(row[field].as_i64().unwrap() - 1);
            }
        }
    }
    assert_csv_equals(&stable_csv, &seen_by_csv);
    let (content_type, stable_lines) =
        get_text(&server, &key, &format!("{stable}&format=jsonl"), None).await;
    assert_eq!(content_type, "application/x-ndjson");
    let lines: Vec<Value> = stable_lines
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let mut seen_by_json = rows(&stable_json);
    for row in &mut seen_by_json {
        if row["group"] == analytics {
            for field in ["units", "requests", "2xx"] {
                row[field] = json!(row[field].as_i64().unwrap() + 1);
            }
        }
    }
    assert_eq!(
        lines, seen_by_json,
        "JSON Lines: one row a line, the JSON's rows"
    );

    // The latency and summary reports export too.
    flush(&server).await;
    let (_, latency_csv) = get_text(&server, &key, "/v1/analytics/latency?format=csv", None).await;
    let latency = python_csv(&latency_csv);
    assert_eq!(latency[0][0], "endpoint");
    assert!(latency.iter().any(|line| line[0] == CHARTS));
    let (_, summary_csv) = get_text(&server, &key, "/v1/analytics/summary", Some("text/csv")).await;
    let summary = python_csv(&summary_csv);
    assert_eq!(summary[0], vec!["metric", "value"]);
    assert!(
        summary
            .iter()
            .any(|line| line[0] == "quotas.charts.used" && line[1] == "1")
    );
}

fn urlencode(text: &str) -> String {
    text.replace('+', "%2B").replace(':', "%3A")
}

async fn latency_reports_percentiles_and_cache_hits(kind: Backend) {
    let server = serve(kind, &[]).await;
    let (_, key) = create_account(&server, "basic").await;
    for _ in 0..3 {
        assert_eq!(
            post(&server, &key, "/v1/charts", &london()).await.0,
            StatusCode::OK
        );
    }
    flush(&server).await;
    let endpoint = urlencode(CHARTS).replace(' ', "%20").replace('/', "%2F");
    let report = server
        .as_key(&key)
        .get(&format!("/v1/analytics/latency?endpoint={endpoint}"))
        .expect(StatusCode::OK)
        .await;
    assert_eq!(report["count"], 3);
    assert_eq!(report["cache_misses"], 1, "the first chart was computed");
    assert_eq!(report["cache_hits"], 2, "the others came from the cache");
    assert_eq!(report["resolution"], "hour");
    let (p50, p99) = (
        report["p50_ms"].as_f64().unwrap(),
        report["p99_ms"].as_f64().unwrap(),
    );
    assert!(p50 > 0.0 && p50 <= p99, "{report}");
    let histogram_total: u64 = report["histogram"]
        .as_array()
        .unwrap()
        .iter()
        .map(|bucket| bucket["count"].as_u64().unwrap())
        .sum();
    assert_eq!(histogram_total, 3);
    // A week is answered from the daily histograms, with the same requests.
    let weekly = server
        .as_key(&key)
        .get(&format!(
            "/v1/analytics/latency?endpoint={endpoint}&from={}",
            (chrono::Utc::now() - chrono::Duration::days(7)).date_naive()
        ))
        .expect(StatusCode::OK)
        .await;
    assert_eq!(weekly["resolution"], "day");
    assert_eq!(weekly["count"], 3);
    assert_eq!(weekly["p99_ms"], report["p99_ms"]);
    // All endpoints: the charts and the account's other requests, per endpoint.
    let all = server
        .as_key(&key)
        .get("/v1/analytics/latency")
        .expect(StatusCode::OK)
        .await;
    let endpoints = all["endpoints"].as_array().unwrap();
    assert!(
        endpoints
            .iter()
            .any(|line| line["endpoint"] == CHARTS && line["count"] == 3)
    );
    assert!(all["count"].as_u64().unwrap() >= 3);
}

async fn the_summary_reports_headroom_endpoints_and_batches(kind: Backend) {
    let server = serve(kind, &[("free", "charts", 10)]).await;
    let (_, key) = create_account(&server, "free").await;
    let mut used = None;
    for _ in 0..4 {
        used = post(&server, &key, "/v1/charts", &london()).await.1;
    }
    assert_eq!(used, Some(4));
    let batch = json!({"requests": [
        {"custom_id": "a", "operation": "chart", "body": london()},
        {"custom_id": "b", "operation": "chart", "body": london()},
    ]});
    let (status, _) = post(&server, &key, "/v1/batches", &batch).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let summary = server
        .as_key(&key)
        .get("/v1/analytics/summary")
        .expect(StatusCode::OK)
        .await;
    let charts = summary["quotas"]
        .as_array()
        .unwrap()
        .iter()
        .find(|quota| quota["class"] == "charts")
        .unwrap()
        .clone();
    assert_eq!(charts["used"], 4, "the quota header's count");
    assert_eq!(charts["remaining"], 6);
    assert_eq!(charts["limit"], 10);
    // At today's rate so far (4 units since midnight) the other 6 take 6/4 of the time so far.
    let now = chrono::Utc::now();
    let midnight = now.date_naive().and_hms_opt(0, 0, 0).unwrap().and_utc();
    let expected = now + (now - midnight) * 6 / 4;
    match charts["projected_exhaustion_at"].as_str() {
        Some(at) => {
            let at = chrono::DateTime::parse_from_rfc3339(at).unwrap();
            assert!(
                (at.with_timezone(&chrono::Utc) - expected)
                    .num_seconds()
                    .abs()
                    <= 5
            );
        }
        None => assert!(expected >= midnight + chrono::Duration::days(1), "{charts}"),
    }
    assert_eq!(summary["top_endpoints"][0]["endpoint"], CHARTS);
    assert_eq!(summary["top_endpoints"][0]["requests"], 4);
    assert_eq!(summary["today"]["errors"], 0);
    assert_eq!(summary["yesterday"]["requests"], 0);
    assert_eq!(summary["batches"]["batches"], 1);
    assert_eq!(summary["batches"]["items"], 2);
    assert_eq!(summary["batches"]["by_status"]["queued"], 1);
    assert_eq!(
        summary["deliveries"]["success_rate"],
        Value::Null,
        "no delivery yet"
    );
    let batch_items = summary["quotas"]
        .as_array()
        .unwrap()
        .iter()
        .find(|quota| quota["class"] == "batch_items")
        .unwrap();
    assert_eq!(batch_items["used"], 2, "the batch reserved two units");
}

async fn threshold_events_fire_once_per_level(kind: Backend) {
    let server = serve(kind, &[("free", "charts", 10)]).await;
    let (account, key) = create_account(&server, "free").await;
    server
        .as_key(&key)
        .post("/v1/webhooks", json!({"url": "https://example.com/hooks"}))
        .expect(StatusCode::CREATED)
        .await;
    let thresholds = |events: &[Value]| -> Vec<(i64, i64)> {
        events
            .iter()
            .filter(|event| event["type"] == "usage.threshold")
            .map(|event| {
                (
                    event["data"]["percent"].as_i64().unwrap(),
                    event["data"]["used"].as_i64().unwrap(),
                )
            })
            .collect()
    };
    for _ in 0..7 {
        assert_eq!(
            post(&server, &key, "/v1/charts", &london()).await.0,
            StatusCode::OK
        );
    }
    let events = orrery_tests::published_events(server.app(), &account).await;
    assert_eq!(thresholds(&events), vec![], "7 of 10 is below 80 %");
    // 4xx cost nothing and cross nothing.
    post(&server, &key, "/v1/charts", &json!({"latitude": 900})).await;
    assert_eq!(
        post(&server, &key, "/v1/charts", &london()).await.0,
        StatusCode::OK
    );
    assert_eq!(
        post(&server, &key, "/v1/charts", &london()).await.0,
        StatusCode::OK
    );
    assert_eq!(
        post(&server, &key, "/v1/charts", &london()).await.0,
        StatusCode::OK
    );
    assert_eq!(
        post(&server, &key, "/v1/charts", &london()).await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
    let events = orrery_tests::published_events(server.app(), &account).await;
    assert_eq!(thresholds(&events), vec![(80, 8), (100, 10)], "once each");
    let event = events
        .iter()
        .find(|event| event["type"] == "usage.threshold")
        .unwrap();
    assert_eq!(event["data"]["class"], "charts");
    assert_eq!(event["data"]["limit"], 10);
}

async fn another_accounts_analytics_are_invisible(kind: Backend) {
    let server = serve(kind, &[]).await;
    let (_, mine) = create_account(&server, "basic").await;
    let (theirs_id, theirs) = create_account(&server, "basic").await;
    for _ in 0..3 {
        assert_eq!(
            post(&server, &theirs, "/v1/charts", &london()).await.0,
            StatusCode::OK
        );
    }
    flush(&server).await;
    let usage = server
        .as_key(&mine)
        .get("/v1/analytics/usage?group_by=endpoint")
        .expect(StatusCode::OK)
        .await;
    assert_eq!(totals(&rows(&usage), Some(CHARTS)), [0; 6]);
    let latency = server
        .as_key(&mine)
        .get("/v1/analytics/latency?endpoint=POST%20%2Fv1%2Fcharts")
        .expect(StatusCode::OK)
        .await;
    assert_eq!(latency["count"], 0);
    // The admin routes are not an API key's.
    let refused = server
        .as_key(&mine)
        .get(&format!("/v1/admin/analytics/accounts/{theirs_id}/usage"))
        .expect(StatusCode::UNAUTHORIZED)
        .await;
    assert_eq!(refused["status"], 401);
    let summary = server
        .as_key(&mine)
        .get("/v1/analytics/summary")
        .expect(StatusCode::OK)
        .await;
    let endpoints = summary["top_endpoints"].as_array().unwrap();
    assert!(
        endpoints.iter().all(|line| line["endpoint"] != CHARTS),
        "only its own reads: {endpoints:?}"
    );
}

async fn admins_see_the_heaviest_accounts_and_one_accounts_reports(kind: Backend) {
    let server = serve(kind, &[]).await;
    let (light_id, light) = create_account(&server, "basic").await;
    let (heavy_id, heavy) = create_account(&server, "basic").await;
    assert_eq!(
        post(&server, &light, "/v1/charts", &london()).await.0,
        StatusCode::OK
    );
    for _ in 0..4 {
        assert_eq!(
            post(&server, &heavy, "/v1/charts", &london()).await.0,
            StatusCode::OK
        );
    }
    let top = server
        .as_key(ADMIN_KEY)
        .get("/v1/admin/analytics/accounts?limit=2")
        .expect(StatusCode::OK)
        .await;
    let top = rows(&top);
    assert_eq!(top.len(), 2);
    assert_eq!(top[0]["account_id"], heavy_id.as_str());
    assert_eq!(top[0]["charts"], 4);
    assert_eq!(top[1]["account_id"], light_id.as_str());
    assert_eq!(top[1]["units"], 1);
    let (_, csv) = get_text(
        &server,
        ADMIN_KEY,
        "/v1/admin/analytics/accounts?limit=2&format=csv",
        None,
    )
    .await;
    assert_csv_equals(&csv, &top);

    let usage = server
        .as_key(ADMIN_KEY)
        .get(&format!(
            "/v1/admin/analytics/accounts/{heavy_id}/usage?group_by=endpoint"
        ))
        .expect(StatusCode::OK)
        .await;
    assert_eq!(totals(&rows(&usage), Some(CHARTS))[0], 4);
    let summary = server
        .as_key(ADMIN_KEY)
        .get(&format!("/v1/admin/analytics/accounts/{heavy_id}/summary"))
        .expect(StatusCode::OK)
        .await;
    assert_eq!(
        summary["today"]["units"], 4,
        "the admin's reads cost the account nothing"
    );
    server
        .as_key(ADMIN_KEY)
        .get("/v1/admin/analytics/accounts/acct_nobody/latency")
        .expect(StatusCode::NOT_FOUND)
        .await;
}

async fn bad_report_parameters_are_422_and_cost_nothing(kind: Backend) {
    let server = serve(kind, &[]).await;
    let (_, key) = create_account(&server, "basic").await;
    for (path, field) in [
        ("/v1/analytics/usage?granularity=minute", "granularity"),
        ("/v1/analytics/usage?group_by=planet", "group_by"),
        (
            "/v1/analytics/usage?group_by=key&granularity=hour",
            "group_by",
        ),
        ("/v1/analytics/usage?from=2026-12-02&to=2026-12-01", "from"),
        ("/v1/analytics/usage?from=yesterday", "from"),
        (
            "/v1/analytics/usage?granularity=hour&from=2020-01-01&to=2026-01-01",
            "from",
        ),
        ("/v1/analytics/usage?format=xml", "format"),
        (
            "/v1/analytics/latency?from=2020-01-01&to=2026-01-01",
            "from",
        ),
    ] {
        let problem = server
            .as_key(&key)
            .get(path)
            .expect(StatusCode::UNPROCESSABLE_ENTITY)
            .await;
        assert_eq!(problem["errors"][0]["field"], field, "{path}: {problem}");
    }
    server
        .as_key(&key)
        .get("/v1/analytics/usage?colour=red")
        .expect(StatusCode::UNPROCESSABLE_ENTITY)
        .await;
    let usage = server
        .as_key(&key)
        .get("/v1/analytics/usage")
        .expect(StatusCode::OK)
        .await;
    let all = totals(&rows(&usage), None);
    assert_eq!(all[0], 1, "only this read cost a unit");
    assert_eq!(all[3], 8 + 1, "the refused reads are counted as 4xx");
}

async fn old_days_are_read_from_their_rollups(kind: Backend) {
    use orrery::access::quota::{self, Window};
    use orrery::access::tiers::QuotaClass;
    let server = serve(kind, &[]).await;
    let (account, key) = create_account(&server, "basic").await;
    let keys = server
        .as_key(&key)
        .get("/v1/api-keys")
        .expect(StatusCode::OK)
        .await;
    let key_id = orrery::ids::KeyId::parse(keys["data"][0]["id"].as_str().unwrap()).unwrap();
    let account_id = orrery::ids::AccountId::parse(&account).unwrap();
    let store = server.app().store.clone();
    // A day 200 days ago, as its counter was: 3 chart units at 09:00, one refunded as a 4xx.
    // (Its counter would have expired long ago; it is kept alive here to be rolled up.)
    let day = chrono::Utc::now().date_naive() - chrono::Duration::days(200);
    let at = day.and_hms_opt(9, 30, 0).unwrap().and_utc();
    let alive = chrono::Utc::now().timestamp() + 3600;
    for _ in 0..3 {
        let admission = quota::admission(
            &account_id,
            &key_id,
            QuotaClass::Charts,
            100,
            &Window::of_day(day),
            at,
            Some(CHARTS),
        )
        .expiring_at(alive);
        store.increment(admission).await.unwrap();
    }
    let refund = quota::refund(
        quota::counter_key(&account_id, day, QuotaClass::Charts),
        &key_id,
        at,
        Some(CHARTS),
        quota::RefundReason::ClientError,
    )
    .expiring_at(alive);
    store.increment(refund).await.unwrap();
    assert!(
        orrery_analytics::rollup::roll_up(store.as_ref(), &account_id, day)
            .await
            .unwrap()
    );
    // Rolling up again replaces the day's totals: nothing is counted twice.
    assert!(
        orrery_analytics::rollup::roll_up(store.as_ref(), &account_id, day)
            .await
            .unwrap()
    );
    let next = day + chrono::Duration::days(1);
    let old = server
        .as_key(&key)
        .get(&format!(
            "/v1/analytics/usage?from={day}&to={next}&group_by=endpoint"
        ))
        .expect(StatusCode::OK)
        .await;
    assert_eq!(
        rows(&old),
        vec![
            json!({"period": day.to_string(), "group": CHARTS, "units": 2, "requests": 3,
                    "2xx": 2, "4xx": 1, "429": 0, "5xx": 0})
        ]
    );
    let by_key = server
        .as_key(&key)
        .get(&format!(
            "/v1/analytics/usage?from={day}&to={next}&group_by=key"
        ))
        .expect(StatusCode::OK)
        .await;
    assert_eq!(rows(&by_key)[0]["group"], key_id.to_string());
    assert_eq!(rows(&by_key)[0]["units"], 2);
    // A range from then to now: the old day from its roll-up, today from the counters.
    let tomorrow = chrono::Utc::now().date_naive() + chrono::Duration::days(1);
    let long = server
        .as_key(&key)
        .get(&format!("/v1/analytics/usage?from={day}&to={tomorrow}"))
        .expect(StatusCode::OK)
        .await;
    let periods: Vec<String> = rows(&long)
        .iter()
        .map(|row| row["period"].as_str().unwrap().to_owned())
        .collect();
    let today = chrono::Utc::now().date_naive();
    assert_eq!(periods, vec![day.to_string(), today.to_string()]);
    // The scheduled run rolls up the recent days of every account (yesterday had no usage here).
    let run =
        orrery_analytics::rollup::roll_up_recent(store.clone(), chrono::Utc::now().date_naive())
            .await
            .unwrap();
    assert!(run.accounts >= 1);
    assert_eq!(run.days_written, 0);
}

async fn server_errors_are_counted_as_5xx_and_keep_their_unit(kind: Backend) {
    let mut options = TestOptions::default();
    options.config.analytics_flush_interval = Duration::from_secs(3600);
    let backend = orrery_tests::backend_with(kind, options).await;
    orrery::access::ensure_local_secrets(&backend.app, Some(ADMIN_KEY))
        .await
        .unwrap();
    let app = backend.app.clone();
    let server = orrery_tests::spawn_app_without_workers_with(backend, move |routes| {
        let failing = axum::Router::new().route(
            "/v1/failing",
            axum::routing::post(|| async { axum::http::StatusCode::INTERNAL_SERVER_ERROR }),
        );
        routes.merge(orrery::access::metered(
            failing,
            &app,
            orrery::access::QuotaClass::Charts,
            "charts",
        ))
    })
    .await;
    let (_, key) = create_account(&server, "basic").await;
    let mut used = None;
    for _ in 0..2 {
        let (status, now_used) = post(&server, &key, "/v1/failing", &json!({})).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        used = now_used;
    }
    assert_eq!(
        post(&server, &key, "/v1/charts", &london()).await.0,
        StatusCode::OK
    );
    flush(&server).await;
    let usage = server
        .as_key(&key)
        .get("/v1/analytics/usage?group_by=endpoint")
        .expect(StatusCode::OK)
        .await;
    assert_eq!(used, Some(2), "a server error keeps its unit");
    assert_eq!(
        totals(&rows(&usage), Some("POST /v1/failing")),
        [2, 2, 0, 0, 0, 2],
        "moved from 2xx to 5xx by the flush; the units stay"
    );
    assert_eq!(totals(&rows(&usage), Some(CHARTS))[0], 1);
}
