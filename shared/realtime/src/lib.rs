//! Real-time: every domain event of an account lands, in order, in the account's durable
//! [`log`], appended by the events consumer. Every transport reads that one log with one cursor,
//! so a client can drop and resume on any of them without losing or repeating an event.

pub mod connections;
pub mod fanout;
pub mod log;
pub mod protocol;
pub mod tail;

pub use log::{Cursor, LogPage, LoggedEvent};
pub use tail::Tail;
