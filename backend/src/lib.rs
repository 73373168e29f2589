//! The fusebox server: ingest of breaker reports, the SQLite store, the live stream, the
//! dashboard's hosting, and the demo.
//!
//! Brief overview:
//! - [`server::start`] binds and serves with [`server::ServerOptions`]; tests and the CLI share it.
//! - [`ingest`]: the single writer task that commits batches and feeds [`fleet`] and [`hub`].
//! - [`store::Store`]: the only code that touches SQLite; `migrations/` is the schema's truth.
//! - [`stream`]: Server-Sent Events with lossless reconnection.
//! - [`alerts`]: rules, one alert per incident, a persistent outbox, webhook/Slack/Alertmanager.
//! - [`demo`]: simulated services that embed the `breaker` crate and report over HTTP.

pub mod alerts;
pub mod auth;
pub mod configs;
pub mod demo;

pub mod error;
pub mod extract;
pub mod fuzz;
pub mod ingest;
pub mod listen;
pub mod metrics;
pub mod openapi;
pub mod query;
pub mod routes;
pub mod server;
pub mod settings;
pub mod state;
pub mod store;
pub mod time;
pub mod tuning;
pub mod ui;
