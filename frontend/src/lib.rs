//! The fusebox dashboard: one live tile per circuit breaker and a failure-rate chart of the one
//! selected, compiled to wasm32 and served by the fusebox server.
//!
//! Brief overview:
//! - [`board`]: the page's model of every breaker, fed by the list endpoint and the live stream.
//! - [`format`]: what a tile says, as strings.
//! - [`chart`]: `render(&Series) -> String`, the plotters SVG chart.
//! - `api`, `stream`, `app` (wasm32 only): HTTP calls, the Server-Sent Events stream, components.
//!
//! The first three are pure and tested on the host (`cargo test -p frontend`); the rest needs a
//! browser and builds only for wasm32 (`cargo xtask build-ui`).

pub mod board;
pub mod chart;
pub mod format;

#[cfg(target_arch = "wasm32")]
pub mod api;
#[cfg(target_arch = "wasm32")]
pub mod app;
#[cfg(target_arch = "wasm32")]
pub mod stream;
