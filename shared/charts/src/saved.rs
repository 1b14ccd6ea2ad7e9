//! Saved charts, stored under their account. Two items per chart, written and deleted in one
//! transaction: a small summary (`CHART#<id>`) that the list query pages through, and the full
//! document (`CHARTDOC#<id>`: input and result) that only a single read fetches — so a page of
//! 100 summaries stays far below DynamoDB's 1 MB page limit whatever the charts hold.

use orrery::events::EventType;
use orrery::ids::ChartId;
use orrery::store::{Condition, Cursor, Item, Key, StoreError, WriteOp, keyspace};
use orrery::{ApiError, App, clock, idempotency, ids};
use orrery_astro::{Chart, ChartInput};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::compute::{ComputedChart, document};
use crate::plain;
use crate::request::ChartRequest;

/// What a list of saved charts shows of each.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SavedChartSummary {
    pub id: ChartId,
    pub name: Option<String>,
    pub created_at: String,
    pub input_hash: String,
    /// The chart's instant, RFC 3339 UTC.
    pub utc: String,
    pub latitude: f64,
    pub longitude: f64,
    pub house_system: String,
    pub sun_sign: String,
    pub moon_sign: String,
    pub ascendant_sign: String,
}

/// The stored document: the request as given and the result as served when it was saved.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SavedChartRecord {
    id: ChartId,
    name: Option<String>,
    created_at: String,
    input: ChartInput,
    input_hash: String,
    /// The chart JSON, kept as a string: stored verbatim, never re-encoded as nested attributes.
    chart_json: String,
}

/// A saved chart as the API returns it.
#[derive(Debug)]
pub struct SavedChart {
    pub id: ChartId,
    /// `{id, name, created_at, input, …chart}`.
    pub body: String,
    record_chart: String,
}

impl SavedChart {
    fn from_record(record: SavedChartRecord) -> Result<SavedChart, ApiError> {
        let mut leading = Map::new();
        leading.insert("id".into(), String::from(record.id.clone()).into());
        leading.insert(
            "name".into(),
            record.name.clone().map_or(Value::Null, Value::String),
        );
        leading.insert("created_at".into(), record.created_at.clone().into());
        leading.insert(
            "input".into(),
            serde_json::to_value(&record.input).map_err(ApiError::internal)?,
        );
        leading.insert("input_hash".into(), record.input_hash.clone().into());
        Ok(SavedChart {
            id: record.id,
            body: document(leading, &record.chart_json)?,
            record_chart: record.chart_json,
        })
    }

    /// The typed chart, e.g. for a reading or the wheel.
    pub fn chart(&self) -> Result<Chart, ApiError> {
        serde_json::from_str(&self.record_chart).map_err(ApiError::internal)
    }
}

fn summary_key(account_id: &orrery::ids::AccountId, id: &ChartId) -> Key {
    keyspace::saved_chart(account_id, id)
}

fn record_key(account_id: &orrery::ids::AccountId, id: &ChartId) -> Key {
    keyspace::saved_chart_document(account_id, id)
}

fn not_found() -> ApiError {
    ApiError::NotFound("No saved chart with this id.".into())
}

/// What makes two save requests "the same request" for `Idempotency-Key`.
fn request_hash(request: &ChartRequest) -> String {
    let mut hasher = Sha256::new();
    hasher.update(request.input_hash.as_bytes());
    hasher.update([0]);
    hasher.update(request.name.as_deref().unwrap_or("").as_bytes());
    ids::hex(&hasher.finalize())
}

/// The chart an earlier save with this `Idempotency-Key` stored, if any (a reuse with another
/// request is a 422). Checked before any work, so a replay computes and publishes nothing.
pub async fn replayed(
    app: &App,
    account_id: &orrery::ids::AccountId,
    request: &ChartRequest,
    idempotency_key: &str,
) -> Result<Option<SavedChart>, ApiError> {
    let hash = request_hash(request);
    match idempotency::replayed_resource(app.store.as_ref(), account_id, idempotency_key, &hash)
        .await?
    {
        Some(id) => Ok(Some(get(app, account_id, &id).await?)),
        None => Ok(None),
    }
}

/// Saves a computed chart under the account, claiming `idempotency_key` (checked beforehand
/// with [`replayed`]) in the same transaction; if a concurrent request with the same key won,
/// its chart is returned (`replayed` true) instead of a second copy.
pub async fn save(
    app: &App,
    account_id: &orrery::ids::AccountId,
    request: &ChartRequest,
    computed: &ComputedChart,
    idempotency_key: Option<&str>,
) -> Result<(SavedChart, bool), ApiError> {
    let hash = request_hash(request);
    let chart = computed.chart()?;
    let id = ChartId::generate();
    let created_at = clock::rfc3339(clock::now());
    let summary = SavedChartSummary {
        id: id.clone(),
        name: request.name.clone(),
        created_at: created_at.clone(),
        input_hash: computed.input_hash.clone(),
        utc: chart.utc.clone(),
        latitude: chart.latitude,
        longitude: chart.longitude,
        house_system: chart.house_system.as_str().to_owned(),
        sun_sign: sign_name(&chart, "sun"),
        moon_sign: sign_name(&chart, "moon"),
        ascendant_sign: plain(&chart.angles.asc.sign),
    };
    let record = SavedChartRecord {
        id: id.clone(),
        name: request.name.clone(),
        created_at,
        input: request.input.clone(),
        input_hash: computed.input_hash.clone(),
        chart_json: computed.json().to_owned(),
    };
    let mut writes = vec![
        WriteOp::Put {
            item: Item::from_serializable(summary_key(account_id, &id), &summary)?,
            condition: Some(Condition::NotExists),
        },
        WriteOp::Put {
            item: Item::from_serializable(record_key(account_id, &id), &record)?,
            condition: Some(Condition::NotExists),
        },
    ];
    if let Some(key) = idempotency_key {
        writes.push(idempotency::claim(account_id, key, &hash, &id)?);
    }
    match app.store.transact(writes).await {
        Ok(()) => {}
        // A concurrent request with the same key won the claim: answer with its chart.
        Err(StoreError::TransactionCanceled { failed }) if failed.contains(&2) => {
            let key = idempotency_key.unwrap_or_default();
            return match idempotency::replayed_resource(app.store.as_ref(), account_id, key, &hash)
                .await?
            {
                Some(id) => Ok((get(app, account_id, &id).await?, true)),
                None => Err(ApiError::Conflict(
                    "A request with this Idempotency-Key is in progress; retry.".into(),
                )),
            };
        }
        Err(err) => return Err(err.into()),
    }
    orrery::events::publish(
        app,
        EventType::ChartSaved,
        account_id,
        serde_json::json!({
            "chart_id": id,
            "name": request.name,
            "input_hash": computed.input_hash,
            "utc": summary.utc,
        }),
    )
    .await;
    Ok((SavedChart::from_record(record)?, false))
}

fn sign_name(chart: &Chart, body: &str) -> String {
    chart
        .bodies
        .iter()
        .find(|b| b.name.as_str() == body)
        .map(|b| plain(&b.sign))
        .unwrap_or_default()
}

pub async fn get(
    app: &App,
    account_id: &orrery::ids::AccountId,
    id: &str,
) -> Result<SavedChart, ApiError> {
    let id = ChartId::parse(id).ok_or_else(not_found)?;
    let item = app
        .store
        .get(&record_key(account_id, &id))
        .await?
        .ok_or_else(not_found)?;
    SavedChart::from_record(item.parse()?)
}

pub async fn list(
    app: &App,
    account_id: &orrery::ids::AccountId,
    limit: usize,
    cursor: Option<Cursor>,
) -> Result<(Vec<SavedChartSummary>, Option<Cursor>), ApiError> {
    Ok(app
        .store
        .query(
            keyspace::saved_charts(account_id)
                .with_limit(limit)
                .after(cursor)
                .descending(),
        )
        .await?
        .parse()?)
}

pub async fn delete(
    app: &App,
    account_id: &orrery::ids::AccountId,
    id: &str,
) -> Result<(), ApiError> {
    let id = ChartId::parse(id).ok_or_else(not_found)?;
    let result = app
        .store
        .transact(vec![
            WriteOp::Delete {
                key: summary_key(account_id, &id),
                condition: Some(Condition::Exists),
            },
            WriteOp::Delete {
                key: record_key(account_id, &id),
                condition: None,
            },
        ])
        .await;
    match result {
        Ok(()) => Ok(()),
        Err(StoreError::TransactionCanceled { .. }) => Err(not_found()),
        Err(err) => Err(err.into()),
    }
}
