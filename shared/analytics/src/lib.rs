//! Analytics reports over what `orrery::analytics` collects: usage time series (from the quota
//! counters' cells, so they equal the quota headers), latency percentiles (from the flushed
//! histograms), the dashboard summary, and their CSV / JSON Lines export.

pub mod accounts;
pub mod background;
pub mod export;
pub mod latency;
pub mod range;
pub mod rollup;
pub mod summary;
pub mod usage;
