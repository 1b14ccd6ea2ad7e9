//! Hit, miss, eviction and error counters per level, as the admin API shows them and as
//! CloudWatch Embedded Metric Format lines.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

#[derive(Debug, Default)]
pub(super) struct LevelCounters {
    pub(super) hits: AtomicU64,
    pub(super) misses: AtomicU64,
    pub(super) evictions: AtomicU64,
    pub(super) errors: AtomicU64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct LevelStats {
    pub hits: u64,
    pub misses: u64,
    pub evictions: u64,
    pub errors: u64,
}

impl LevelCounters {
    pub(super) fn snapshot(&self) -> LevelStats {
        LevelStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            evictions: self.evictions.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct CacheStats {
    pub l1: LevelStats,
    /// `None` when no shared cache is configured.
    pub l2: Option<LevelStats>,
    pub l1_entries: u64,
    pub l1_bytes: u64,
    pub staleness_seconds: u64,
}

impl CacheStats {
    /// The statistics as one CloudWatch Embedded Metric Format line (namespace `Orrery`,
    /// dimension `Level`).
    pub fn emf_lines(&self, timestamp_ms: i64) -> Vec<String> {
        let mut levels = vec![("L1", self.l1)];
        if let Some(l2) = self.l2 {
            levels.push(("L2", l2));
        }
        levels
            .into_iter()
            .map(|(level, stats)| {
                serde_json::json!({
                    "_aws": {
                        "Timestamp": timestamp_ms,
                        "CloudWatchMetrics": [{
                            "Namespace": "Orrery",
                            "Dimensions": [["Level"]],
                            "Metrics": [
                                {"Name": "CacheHits", "Unit": "Count"},
                                {"Name": "CacheMisses", "Unit": "Count"},
                                {"Name": "CacheEvictions", "Unit": "Count"},
                                {"Name": "CacheErrors", "Unit": "Count"}
                            ]
                        }]
                    },
                    "Level": level,
                    "CacheHits": stats.hits,
                    "CacheMisses": stats.misses,
                    "CacheEvictions": stats.evictions,
                    "CacheErrors": stats.errors,
                })
                .to_string()
            })
            .collect()
    }
}
