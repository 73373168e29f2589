//! Ingest: the routes that take the services' reports, the single writer that commits them,
//! the in-memory fleet it keeps current, the hub it publishes to, and the cardinality limits it
//! enforces.

pub mod fleet;
pub mod http;
pub mod hub;
pub mod limits;
pub mod store;
pub mod writer;

pub use writer::{IngestQueue, spawn_writer};
