//! Webhooks: the pure parts — Standard Webhooks signatures, the retry schedule and the SSRF
//! policy for customer URLs. (The API, fan-out and delivery consumers build on these.)

pub mod client;
pub mod delivery;
pub mod endpoints;
pub mod schedule;
pub mod signature;
pub mod ssrf;
