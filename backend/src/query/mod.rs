//! Reading what was stored: the read routes and `/metrics`, the live stream, the charts that
//! alerts link to, and the rollups (with retention) that make long ranges fast to read.

pub mod chart;
pub mod http;
pub mod rollup;
pub mod store;
pub mod stream;
