//! What each DynamoDB call cost, as DynamoDB reports it (`ReturnConsumedCapacity: TOTAL`), and
//! which access pattern it was: the operation, the table and the shape of its key (every id,
//! day, hash or number replaced by `<>`). The DynamoDB adapter records into a meter when one is
//! attached (`DynamoStore::measuring`): the test suite asserts per endpoint on the units, and
//! checks every shape against docs/data-model.md; `ORRERY_DYNAMODB_CAPACITY_LOG=true` logs them.

use std::sync::Mutex;

use super::Table;

/// One DynamoDB request: its operation, the access patterns it touched (one per item for the
/// transactional and batch writes) and the units it consumed.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// DynamoDB's operation name: `GetItem`, `Query`, `TransactWriteItems`, ...
    pub operation: &'static str,
    /// `<table> <pk shape>/<sk shape>` for an item, `<table> <pk shape> begins_with <prefix
    /// shape>` (or without a prefix) for a query, with `gsi1` before the key for the index.
    pub patterns: Vec<String>,
    pub read_units: f64,
    pub write_units: f64,
    /// A conditional write refused by its condition: DynamoDB bills it, but the error carries
    /// no consumed capacity, so its units are not known here.
    pub refused: bool,
}

/// Collects the calls of one store (shared by every clone of it).
#[derive(Debug, Default)]
pub struct CapacityMeter {
    calls: Mutex<Vec<Call>>,
    log: bool,
}

impl CapacityMeter {
    /// A meter that also logs every call (`tracing`, target `orrery::capacity`).
    pub fn logging() -> Self {
        Self {
            calls: Mutex::default(),
            log: true,
        }
    }

    pub fn record(&self, call: Call) {
        if self.log {
            tracing::info!(
                target: "orrery::capacity",
                operation = call.operation,
                patterns = ?call.patterns,
                read_units = call.read_units,
                write_units = call.write_units,
                refused = call.refused,
                "dynamodb call"
            );
            return;
        }
        self.calls
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(call);
    }

    /// The calls recorded since the last `take`, oldest first.
    pub fn take(&self) -> Vec<Call> {
        std::mem::take(
            &mut *self
                .calls
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }
}

/// The shape of a key or key prefix: `#`-separated segments that are upper-case words
/// (`ACCT`, `QUOTA`, `EVENTLOG`) stay, every other segment (ids, days, hashes, numbers, classes,
/// and `<placeholders>` in the documentation) becomes `<>`. A trailing `#` stays.
pub fn shape(key: &str) -> String {
    key.split('#')
        .enumerate()
        .map(|(position, segment)| {
            let literal = !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_uppercase());
            if literal || (segment.is_empty() && position > 0) {
                segment.to_owned()
            } else {
                "<>".to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("#")
}

/// The pattern of one item: `counters ACCT#<>/QUOTA#<>#<>`.
pub fn item_pattern(table: Table, pk: &str, sk: &str) -> String {
    format!("{} {}/{}", table.name(), shape(pk), shape(sk))
}

/// The pattern of a query: `entities ACCT#<> begins_with KEY#`, `entities gsi1 ACCOUNTS`.
pub fn query_pattern(table: Table, index: bool, pk: &str, prefix: Option<&str>) -> String {
    let index = if index { "gsi1 " } else { "" };
    match prefix {
        Some(prefix) => format!(
            "{} {index}{} begins_with {}",
            table.name(),
            shape(pk),
            shape(prefix)
        ),
        None => format!("{} {index}{}", table.name(), shape(pk)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_keep_upper_case_words_and_hide_the_rest() {
        assert_eq!(shape("ACCT#acct_01JX"), "ACCT#<>");
        assert_eq!(shape("QUOTA#2026-12-02#charts"), "QUOTA#<>#<>");
        assert_eq!(shape("ACCOUNT"), "ACCOUNT");
        assert_eq!(shape("RESULT#00001#"), "RESULT#<>#");
        assert_eq!(shape("KEY#"), "KEY#");
        assert_eq!(shape("QUOTA#<day>#<class>"), "QUOTA#<>#<>");
        assert_eq!(shape("WSCONNS#<00–15>"), "WSCONNS#<>");
        assert_eq!(
            item_pattern(Table::Counters, "ACCT#a1", "QUOTA#2026-12-02#charts"),
            "counters ACCT#<>/QUOTA#<>#<>"
        );
        assert_eq!(
            query_pattern(Table::Entities, true, "ACCOUNTS", None),
            "entities gsi1 ACCOUNTS"
        );
        assert_eq!(
            query_pattern(Table::Logs, false, "BATCH#b_1", Some("CHUNK#")),
            "logs BATCH#<> begins_with CHUNK#"
        );
    }
}
