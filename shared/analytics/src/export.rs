//! Every report as JSON (the default), CSV (`Accept: text/csv` or `?format=csv`) or JSON Lines
//! (`Accept: application/x-ndjson` or `?format=jsonl`). Rows are flat records; CSV follows
//! RFC 4180 (a header line, CRLF line ends, fields with a comma, quote or line break quoted,
//! quotes doubled), so Python's `csv` module and spreadsheets read it as it is.

use bytes::Bytes;
use futures_util::Stream;
use orrery::store::StoreError;
use serde::Serialize;
use serde_json::Value;

/// A report's wire format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Csv,
    JsonLines,
}

impl Format {
    /// `?format=` wins over `Accept`; neither means JSON. An unknown `format` is the caller's
    /// mistake (a 422 naming the field), an `Accept` without any of ours is JSON.
    pub fn negotiate(format: Option<&str>, accept: Option<&str>) -> Result<Self, String> {
        match format.map(str::trim).filter(|text| !text.is_empty()) {
            Some("json") => return Ok(Format::Json),
            Some("csv") => return Ok(Format::Csv),
            Some("jsonl") | Some("ndjson") => return Ok(Format::JsonLines),
            Some(other) => {
                return Err(format!("format must be json, csv or jsonl, not {other:?}"));
            }
            None => {}
        }
        let accept = accept.unwrap_or("");
        Ok(if accept.contains("text/csv") {
            Format::Csv
        } else if accept.contains("application/x-ndjson") || accept.contains("application/jsonl") {
            Format::JsonLines
        } else {
            Format::Json
        })
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/json",
            Format::Csv => "text/csv; charset=utf-8; header=present",
            Format::JsonLines => "application/x-ndjson",
        }
    }
}

/// The CSV header line of `columns`.
pub fn csv_header(columns: &[&str]) -> String {
    let mut line = columns
        .iter()
        .map(|c| csv_field(c))
        .collect::<Vec<_>>()
        .join(",");
    line.push_str("\r\n");
    line
}

/// One row as a CSV line, its fields in `columns` order (absent or null fields are empty).
pub fn csv_line<T: Serialize>(row: &T, columns: &[&str]) -> String {
    let value = serde_json::to_value(row).unwrap_or(Value::Null);
    let mut line = columns
        .iter()
        .map(|column| match value.get(column) {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(text)) => csv_field(text),
            Some(other) => csv_field(&other.to_string()),
        })
        .collect::<Vec<_>>()
        .join(",");
    line.push_str("\r\n");
    line
}

/// One row as a JSON Lines line.
pub fn json_line<T: Serialize>(row: &T) -> String {
    let mut line = serde_json::to_string(row).unwrap_or_else(|_| "null".into());
    line.push('\n');
    line
}

/// The columns of a report flattened to metrics.
pub const METRIC_COLUMNS: [&str; 2] = ["metric", "value"];

/// One flattened value of a report: its path (`today.units`, `quotas.charts.remaining`) and value.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Metric {
    pub metric: String,
    pub value: Value,
}

/// A nested report as `metric,value` rows (for CSV and JSON Lines). Arrays of objects are keyed
/// by their first string field (`top_endpoints.POST /v1/charts.requests`), else by position.
pub fn metrics<T: Serialize>(report: &T) -> Vec<Metric> {
    let mut rows = Vec::new();
    flatten(
        String::new(),
        serde_json::to_value(report).unwrap_or(Value::Null),
        &mut rows,
    );
    rows
}

fn flatten(path: String, value: Value, rows: &mut Vec<Metric>) {
    let join = |name: &str| {
        if path.is_empty() {
            name.to_owned()
        } else {
            format!("{path}.{name}")
        }
    };
    match value {
        Value::Object(fields) => {
            for (name, value) in fields {
                flatten(join(&name), value, rows);
            }
        }
        Value::Array(items) => {
            for (position, mut item) in items.into_iter().enumerate() {
                let label = item
                    .as_object_mut()
                    .and_then(|fields| {
                        let (name, _) = fields.iter().find(|(_, v)| v.is_string())?;
                        let name = name.clone();
                        fields.remove(&name)
                    })
                    .and_then(|label| label.as_str().map(str::to_owned))
                    .unwrap_or_else(|| position.to_string());
                flatten(join(&label), item, rows);
            }
        }
        value => rows.push(Metric {
            metric: path,
            value,
        }),
    }
}

/// A report's rows, produced a batch at a time (so an export never holds the whole report).
#[async_trait::async_trait]
pub trait RowSource: Send + 'static {
    type Row: Serialize + Send;
    /// The next rows (possibly none yet), or `None` once the report is complete.
    async fn next_rows(&mut self) -> Result<Option<Vec<Self::Row>>, StoreError>;
}

/// A report in `format`, streamed as its source produces rows: JSON as `{"data": [...]}`, CSV
/// with a header line of `columns`, JSON Lines one row a line. The first batch is read before
/// the response starts, so a failure there is an ordinary error response; a failure later ends
/// the body early (the caller sees a truncated transfer, never a silently short report).
pub async fn stream<S: RowSource>(
    format: Format,
    columns: &'static [&'static str],
    mut source: S,
) -> Result<impl Stream<Item = Result<Bytes, std::io::Error>> + Send, StoreError> {
    let first = source.next_rows().await?;
    let opening = match format {
        Format::Json => "{\"data\":[".to_owned(),
        Format::Csv => csv_header(columns),
        Format::JsonLines => String::new(),
    };
    let state = Encoder {
        format,
        columns,
        source,
        pending: first,
        opening: Some(opening),
        rows_sent: 0,
        finished: false,
    };
    Ok(futures_util::stream::try_unfold(
        state,
        |mut state| async move {
            state
                .next_chunk()
                .await
                .map(|chunk| chunk.map(|chunk| (chunk, state)))
        },
    ))
}

struct Encoder<S: RowSource> {
    format: Format,
    columns: &'static [&'static str],
    source: S,
    /// Rows read but not yet encoded (the first batch, read before the response began).
    pending: Option<Vec<S::Row>>,
    opening: Option<String>,
    rows_sent: u64,
    finished: bool,
}

/// Encoded rows are sent in chunks of about this size.
const CHUNK_BYTES: usize = 64 * 1024;

impl<S: RowSource> Encoder<S> {
    async fn next_chunk(&mut self) -> Result<Option<Bytes>, std::io::Error> {
        if self.finished {
            return Ok(None);
        }
        let mut chunk = self.opening.take().unwrap_or_default();
        loop {
            let rows = match self.pending.take() {
                Some(rows) => Some(rows),
                None => self
                    .source
                    .next_rows()
                    .await
                    .map_err(std::io::Error::other)?,
            };
            let Some(rows) = rows else {
                if self.format == Format::Json {
                    chunk.push_str("]}");
                }
                self.finished = true;
                break;
            };
            for row in &rows {
                match self.format {
                    Format::Json => {
                        if self.rows_sent > 0 {
                            chunk.push(',');
                        }
                        chunk.push_str(
                            &serde_json::to_string(row).unwrap_or_else(|_| "null".into()),
                        );
                    }
                    Format::Csv => chunk.push_str(&csv_line(row, self.columns)),
                    Format::JsonLines => chunk.push_str(&json_line(row)),
                }
                self.rows_sent += 1;
            }
            if chunk.len() >= CHUNK_BYTES {
                break;
            }
        }
        Ok(Some(Bytes::from(chunk)))
    }
}

fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_what_needs_quoting() {
        #[derive(Serialize)]
        struct Row {
            a: &'static str,
            b: i64,
            c: Option<i64>,
        }
        let columns = ["a", "b", "c"];
        assert_eq!(csv_header(&columns), "a,b,c\r\n");
        assert_eq!(
            csv_line(
                &Row {
                    a: "GET /v1/x, \"y\"",
                    b: 3,
                    c: None
                },
                &columns
            ),
            "\"GET /v1/x, \"\"y\"\"\",3,\r\n"
        );
    }

    #[test]
    fn the_query_wins_over_accept() {
        assert_eq!(
            Format::negotiate(Some("csv"), Some("application/json")),
            Ok(Format::Csv)
        );
        assert_eq!(Format::negotiate(None, Some("text/csv")), Ok(Format::Csv));
        assert_eq!(Format::negotiate(None, Some("*/*")), Ok(Format::Json));
        assert!(Format::negotiate(Some("xml"), None).is_err());
    }
}
