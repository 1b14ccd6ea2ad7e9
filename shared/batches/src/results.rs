//! `GET /v1/batches/{id}/results`: the result lines as JSON Lines, streamed page by page from
//! the store (flat memory however many there are) and readable while the batch runs.
//!
//! Lines become readable a settled chunk at a time (never half a chunk), and chunks settle in
//! any order. So the stream walks the settled chunks in chunk order, each chunk's lines in
//! item order, and every line carries an opaque `cursor` that records which chunks it has
//! delivered whole and where it is in the current one: `?after=<cursor>` continues after that
//! line and still picks up chunks that settled earlier in chunk order but later in time. A
//! client that lost its connection mid-stream resumes exactly where it stopped, on any
//! container. Match lines by `custom_id`, not by position.

use std::collections::VecDeque;

use orrery::ids::hex;

use bytes::Bytes;
use futures_util::Stream;
use orrery::access::Caller;
use orrery::ids::BatchId;
use orrery::store::{Cursor, CursorSeal, keyspace};
use orrery::{ApiError, App};

use crate::record::BatchStatus;
use crate::worker::{ChunkPhase, ChunkState};

/// Lines read from the store at a time.
const PAGE: usize = 200;

/// Which lines a caller asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filter {
    All,
    Succeeded,
    Failed,
}

impl Filter {
    pub fn parse(text: Option<&str>) -> Result<Self, ApiError> {
        match text {
            None | Some("") => Ok(Filter::All),
            Some("succeeded") => Ok(Filter::Succeeded),
            Some("failed") => Ok(Filter::Failed),
            Some(other) => Err(ApiError::validation(
                "status",
                format!("unknown status {other:?}; accepted: succeeded, failed"),
            )),
        }
    }

    fn prefix(self) -> &'static str {
        match self {
            Filter::Failed => keyspace::BATCH_FAILURES_PREFIX,
            _ => keyspace::BATCH_RESULTS_PREFIX,
        }
    }
}

/// An open results stream: the batch's status when it began, and the body.
pub struct Results {
    pub status: BatchStatus,
    pub body: std::pin::Pin<Box<dyn Stream<Item = Result<Bytes, std::io::Error>> + Send>>,
}

/// Where a reader is: the chunks delivered whole, and the last line given of the current one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Position {
    delivered: Vec<u8>,
    current: Option<(u32, u32)>,
}

impl Position {
    fn is_delivered(&self, chunk: u32) -> bool {
        self.delivered
            .get(chunk as usize / 8)
            .is_some_and(|byte| byte & (1 << (chunk % 8)) != 0)
    }

    fn deliver(&mut self, chunk: u32) {
        let at = chunk as usize / 8;
        if self.delivered.len() <= at {
            self.delivered.resize(at + 1, 0);
        }
        self.delivered[at] |= 1 << (chunk % 8);
        if self.current.is_some_and(|(current, _)| current == chunk) {
            self.current = None;
        }
    }

    /// As a store cursor (then sealed): `<prefix><bitmap hex>:<chunk>:<index>`.
    fn cursor(&self, partition: &str, prefix: &str) -> Cursor {
        let current = match self.current {
            Some((chunk, index)) => format!("{chunk}:{index}"),
            None => "-:-".to_owned(),
        };
        Cursor {
            pk: partition.to_owned(),
            sk: format!("{prefix}{}:{current}", hex(&self.delivered)),
            index: None,
        }
    }

    fn parse(sort_key: &str, prefix: &str) -> Option<Self> {
        let mut parts = sort_key.strip_prefix(prefix)?.split(':');
        let (bitmap, chunk, index) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || bitmap.len() % 2 != 0 || bitmap.len() > 64 {
            return None;
        }
        let delivered = (0..bitmap.len())
            .step_by(2)
            .map(|at| u8::from_str_radix(bitmap.get(at..at + 2)?, 16).ok())
            .collect::<Option<Vec<u8>>>()?;
        let current = match (chunk, index) {
            ("-", "-") => None,
            (chunk, index) => Some((chunk.parse().ok()?, index.parse().ok()?)),
        };
        Some(Self { delivered, current })
    }
}

/// Opens the results of the caller's batch `id` after `after` (a line's cursor).
pub async fn open(
    app: &App,
    caller: &Caller,
    id: &str,
    after: Option<&str>,
    status: Option<&str>,
) -> Result<Results, ApiError> {
    let id = crate::control::parse_id(id)?;
    let filter = Filter::parse(status)?;
    let record = crate::control::load(app, &caller.account_id, &id).await?;
    let seal = app.cursor_seal().await?;
    let partition = keyspace::batch_lines_partition(&id);
    let position = match after.map(str::trim).filter(|text| !text.is_empty()) {
        None => Position::default(),
        Some(text) => {
            let cursor = seal.open(text)?;
            (cursor.pk == partition)
                .then(|| Position::parse(&cursor.sk, filter.prefix()))
                .flatten()
                .ok_or_else(|| {
                    ApiError::BadRequest(
                        "The cursor is not one of this batch's result lines (with this status \
                         filter): pass a line's `cursor` back unchanged."
                            .into(),
                    )
                })?
        }
    };
    let settled = settled_chunks(app, &id).await?;
    let reader = Reader {
        app: app.clone(),
        batch: id,
        partition,
        filter,
        seal,
        position,
        chunks: settled.into(),
        page: None,
        sent_bytes: 0,
        budget: app.config.batch_results_max_bytes,
        ready: VecDeque::new(),
    };
    let body = futures_util::stream::unfold(reader, |mut reader| async move {
        match reader.next_page().await {
            Ok(Some(bytes)) => Some((Ok(bytes), reader)),
            Ok(None) => None,
            Err(err) => {
                tracing::error!(error = %err, "a results stream failed; the client resumes with the last cursor");
                reader.chunks.clear();
                reader.page = None;
                Some((Err(std::io::Error::other(err.to_string())), reader))
            }
        }
    });
    Ok(Results {
        status: record.status(),
        body: Box::pin(body),
    })
}

/// The chunks whose lines are complete (settled by a run), in chunk order.
async fn settled_chunks(app: &App, batch: &BatchId) -> Result<Vec<u32>, ApiError> {
    let mut settled = Vec::new();
    let mut cursor = None;
    loop {
        let page = app
            .store
            .query(
                keyspace::batch_chunk_states(batch)
                    .with_limit(500)
                    .after(cursor),
            )
            .await?;
        for item in &page.items {
            let state: ChunkState = item.parse()?;
            if state.state == ChunkPhase::Done {
                settled.extend(keyspace::parse_batch_chunk_state(&item.key.sk));
            }
        }
        cursor = page.next;
        if cursor.is_none() {
            return Ok(settled);
        }
    }
}

struct Reader {
    app: App,
    batch: BatchId,
    partition: String,
    filter: Filter,
    seal: CursorSeal,
    position: Position,
    /// Settled chunks still to walk, in chunk order.
    chunks: VecDeque<u32>,
    /// The chunk being read and the store cursor of its next page.
    page: Option<(u32, Option<Cursor>)>,
    sent_bytes: usize,
    budget: Option<usize>,
    ready: VecDeque<Bytes>,
}

impl Reader {
    fn over_budget(&self) -> bool {
        self.budget.is_some_and(|budget| self.sent_bytes >= budget)
    }

    /// The next page of lines, or `None` at the end (or past the byte budget).
    async fn next_page(&mut self) -> Result<Option<Bytes>, ApiError> {
        loop {
            if let Some(bytes) = self.ready.pop_front() {
                return Ok(Some(bytes));
            }
            if self.over_budget() {
                return Ok(None);
            }
            let (chunk, store_cursor) = match self.page.take() {
                Some(page) => page,
                None => {
                    let Some(chunk) = self.chunks.pop_front() else {
                        return Ok(None);
                    };
                    if self.position.is_delivered(chunk) {
                        continue;
                    }
                    // Resuming inside this chunk: start after the last line given.
                    let start = match self.position.current {
                        Some((current, index)) if current == chunk => Some(Cursor {
                            pk: self.partition.clone(),
                            sk: format!("{}{chunk:05}#{index:05}", self.filter.prefix()),
                            index: None,
                        }),
                        _ => None,
                    };
                    (chunk, start)
                }
            };
            let page = self
                .app
                .store
                .query(
                    keyspace::batch_lines(&self.batch, self.filter.prefix(), Some(chunk))
                        .with_limit(PAGE)
                        .after(store_cursor),
                )
                .await?;
            let mut out = String::new();
            let mut stopped_early = false;
            for (at, item) in page.items.iter().enumerate() {
                let Some(index) = item
                    .key
                    .sk
                    .rsplit('#')
                    .next()
                    .and_then(|index| index.parse::<u32>().ok())
                else {
                    continue;
                };
                self.position.current = Some((chunk, index));
                let last_of_chunk = page.next.is_none() && at + 1 == page.items.len();
                if last_of_chunk {
                    self.position.deliver(chunk);
                }
                if self.filter == Filter::Succeeded
                    && item.attrs.get("status").and_then(|s| s.as_str()) != Some("succeeded")
                {
                    continue;
                }
                let Some(line) = item.attrs.get("line").and_then(crate::run::unpack_line) else {
                    tracing::warn!(key = ?item.key, "a stored result line does not decode; skipped");
                    continue;
                };
                let line = line.as_str();
                let cursor = self
                    .seal
                    .seal(&self.position.cursor(&self.partition, self.filter.prefix()));
                let before = out.len();
                out.push_str("{\"cursor\":\"");
                out.push_str(&cursor);
                out.push_str("\",");
                out.push_str(line.strip_prefix('{').unwrap_or(line));
                out.push('\n');
                self.sent_bytes += out.len() - before;
                if self.over_budget() && !last_of_chunk {
                    stopped_early = true;
                    break;
                }
            }
            if page.items.is_empty() || (page.next.is_none() && !stopped_early) {
                self.position.deliver(chunk);
            } else if !stopped_early {
                self.page = Some((chunk, page.next));
            }
            if !out.is_empty() {
                self.ready.push_back(Bytes::from(out));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_round_trip_through_their_sort_key() {
        let mut position = Position::default();
        position.deliver(0);
        position.deliver(9);
        position.current = Some((3, 42));
        let cursor = position.cursor("BATCH#b", "RESULT#");
        assert_eq!(cursor.sk, "RESULT#0102:3:42");
        assert_eq!(
            Position::parse(&cursor.sk, "RESULT#"),
            Some(position.clone())
        );
        assert!(position.is_delivered(9) && !position.is_delivered(3));
        assert_eq!(
            Position::parse(&cursor.sk, "FAILED#"),
            None,
            "another filter"
        );
        assert_eq!(Position::parse("RESULT#zz:-:-", "RESULT#"), None);
        assert_eq!(
            Position::parse("RESULT#:-:-", "RESULT#"),
            Some(Position::default())
        );
    }
}
