//! Webhooks: Standard Webhooks signatures, the retry schedule and the SSRF policy (pure), the
//! endpoints API, who listens (subscriptions), the fan-out of events, one delivery attempt and
//! what follows it, and the attempt log with replay.

pub mod attempt;
pub mod client;
pub mod endpoints;
pub mod fanout;
pub mod log;
pub mod record;
pub mod schedule;
pub mod signature;
pub mod ssrf;
pub mod subscriptions;
