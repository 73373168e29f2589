//! The fusebox server: ingest of breaker reports, the store (SQLite or PostgreSQL), the live stream, the
//! dashboard's hosting, and the demo.
//!
//! Brief overview (one folder per feature, each with its `store` and `http`):
//! - [`server::start`] binds and serves with [`server::ServerOptions`]; tests and the CLI share it.
//! - [`routes`]: every API route with who may call it; the router and the OpenAPI document.
//! - [`state`]: what handlers share, part by part; [`time::Clock`]: the server's time.
//! - [`ingest`]: the ingest routes and the single writer that commits batches and feeds
//!   [`ingest::fleet`] and [`ingest::hub`].
//! - [`query`]: the read routes, the live stream ([`query::stream`]), rollups and retention.
//! - [`configs`], [`tuning`] (recommendations, auto mode), [`alerts`], [`auth`].
//! - [`store::Store`]: the database handle; SQL runs only in the features' stores.
//! - [`migrate_data`]: a SQLite database's history copied into PostgreSQL.
//! - [`demo`]: simulated services that embed the `breaker` crate and report over HTTP.

pub mod alerts;
pub mod auth;
pub mod cluster;
pub mod configs;
pub mod demo;
pub mod error;
pub mod extract;
pub mod fuzz;
pub mod ingest;
pub mod listen;
pub mod metrics;
pub mod migrate_data;
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
