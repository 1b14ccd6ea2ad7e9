//! How a batch is cut into chunks: one queue message and one worker run each. Identical inputs
//! go into the same chunk, where they are computed once; a chunk is bounded in items and in
//! stored bytes (a DynamoDB item holds 400 KB).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::items::BatchItem;

/// Items per chunk: small enough that a chunk runs in milliseconds (cancel and progress stay
/// prompt), large enough that per-chunk bookkeeping is a small share of the work.
pub const CHUNK_ITEMS: usize = 100;
/// Stored bytes of one chunk's items at most, well inside the 400 KB item limit.
pub const CHUNK_BYTES: usize = 256 * 1024;

/// The items of one chunk, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Chunk {
    pub number: u32,
    pub items: Vec<BatchItem>,
}

/// Cuts `items` into chunks, keeping every group of identical inputs together in the order of
/// its first item (a group larger than a chunk is split; the chart cache then serves its later
/// parts).
pub fn chunks(items: Vec<BatchItem>) -> Vec<Chunk> {
    let mut order: Vec<String> = Vec::new();
    let mut groups: HashMap<String, Vec<BatchItem>> = HashMap::new();
    for item in items {
        let group = groups.entry(item.input_key.clone()).or_insert_with(|| {
            order.push(item.input_key.clone());
            Vec::new()
        });
        group.push(item);
    }
    let mut chunks: Vec<Chunk> = Vec::new();
    let mut current: Vec<BatchItem> = Vec::new();
    let mut bytes = 0;
    for key in order {
        for item in groups.remove(&key).unwrap_or_default() {
            let size = serde_json::to_vec(&item).map_or(CHUNK_BYTES, |v| v.len());
            if !current.is_empty() && (current.len() >= CHUNK_ITEMS || bytes + size > CHUNK_BYTES) {
                chunks.push(Chunk {
                    number: chunks.len() as u32,
                    items: std::mem::take(&mut current),
                });
                bytes = 0;
            }
            bytes += size;
            current.push(item);
        }
    }
    if !current.is_empty() {
        chunks.push(Chunk {
            number: chunks.len() as u32,
            items: current,
        });
    }
    chunks
}

/// How many distinct inputs the items hold.
pub fn unique_inputs(items: &[BatchItem]) -> usize {
    items
        .iter()
        .map(|item| item.input_key.as_str())
        .collect::<std::collections::HashSet<_>>()
        .len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::items::Operation;

    fn item(index: u32, key: &str) -> BatchItem {
        BatchItem {
            index,
            custom_id: format!("c{index}"),
            operation: Operation::Chart,
            body: serde_json::json!({}),
            input_key: key.into(),
        }
    }

    #[test]
    fn identical_inputs_share_a_chunk_and_every_item_is_placed_once() {
        let mut items: Vec<BatchItem> = (0..250).map(|i| item(i, &format!("k{i}"))).collect();
        items[0].input_key = "same".into();
        items[249].input_key = "same".into();
        let chunks = chunks(items);
        assert_eq!(
            chunks.iter().map(|c| c.items.len()).collect::<Vec<_>>(),
            [100, 100, 50]
        );
        assert_eq!(chunks[0].items[1].index, 249, "the twin joins its first");
        let mut placed: Vec<u32> = chunks
            .iter()
            .flat_map(|c| c.items.iter().map(|i| i.index))
            .collect();
        placed.sort_unstable();
        assert_eq!(placed, (0..250).collect::<Vec<_>>());
        assert!(chunks.iter().enumerate().all(|(n, c)| c.number == n as u32));
    }

    #[test]
    fn chunks_stay_within_their_byte_bound() {
        let mut big = item(0, "a");
        big.body = serde_json::json!({"name": "x".repeat(100_000)});
        let items = vec![
            big.clone(),
            {
                let mut b = big.clone();
                b.index = 1;
                b.input_key = "b".into();
                b
            },
            {
                let mut c = big;
                c.index = 2;
                c.input_key = "c".into();
                c
            },
        ];
        assert_eq!(chunks(items).len(), 2);
    }
}
