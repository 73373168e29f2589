//! The fusebox dashboard, compiled to wasm32 and served by the fusebox server: an overview of
//! live tiles grouped by service, a detail page per breaker (state timeline, charts, transitions,
//! config, admin controls), and places for alerts and recommendations.
//!
//! Brief overview:
//! - [`board`]: the page's model of every breaker, fed by the list endpoint and the live stream.
//! - [`filter`]: the overview's sort, state filter, search and view (kept in the URL).
//! - [`matrix`]: the overview's matrix for large fleets (a row of state cells per service).
//! - [`order`]: the overview's elements stay in the order of their names; CSS `order` places
//!   them where the sort puts them, so a re-sort moves nothing in the DOM.
//! - [`range`]: the detail page's time range (kept in the URL).
//! - [`format`]: what tiles and tables say, as strings.
//! - [`coalesce`]: live summaries waiting for the next animation frame, newest per breaker.
//! - [`alerts`]: what toasts, notifications and the alerts page say.
//! - [`tuning`]: what the recommendations page and config lint say (config diff, back-tests).
//! - Charts come from the shared `charts` crate, which the server uses too.
//! - `auto_mode` (wasm32 only): the breaker page's auto-mode panel; `confirm`: the confirmation
//!   dialog admin actions share.
//! - `api`, `stream`, `live`, `notify`, `app`, `overview`, `detail`, `alerts_page`, `toasts`,
//!   `pages` (recommendations) (wasm32 only): HTTP calls, the Server-Sent Events stream, per-frame live updates,
//!   browser notifications, and components.
//! - `shown` (wasm32 only): how wide the page shows an element, so charts are drawn at that
//!   width and their text reads at the size it was set.
//! - `loading` (wasm32 only): how every panel shows what it loads (`LocalResource`s read inside
//!   one `Transition` plus `ErrorBoundary`), so loading and errors look the same everywhere.
//!
//! The pure modules are tested on the host (`cargo test -p frontend`); the rest needs a
//! browser and builds only for wasm32 (`cargo xtask build-ui`).

pub mod alerts;
pub mod board;
pub mod coalesce;
pub mod filter;
pub mod format;
pub mod matrix;
pub mod order;
pub mod range;
pub mod tuning;

#[cfg(target_arch = "wasm32")]
pub mod alerts_page;
#[cfg(target_arch = "wasm32")]
pub mod api;
#[cfg(target_arch = "wasm32")]
pub mod app;
#[cfg(target_arch = "wasm32")]
pub mod auto_mode;
#[cfg(target_arch = "wasm32")]
pub mod confirm;
#[cfg(target_arch = "wasm32")]
pub mod detail;
#[cfg(target_arch = "wasm32")]
pub mod live;
#[cfg(target_arch = "wasm32")]
pub mod loading;
#[cfg(target_arch = "wasm32")]
pub mod notify;
#[cfg(target_arch = "wasm32")]
pub mod overview;
#[cfg(target_arch = "wasm32")]
pub mod pages;
#[cfg(target_arch = "wasm32")]
pub mod shown;
#[cfg(target_arch = "wasm32")]
pub mod stream;
#[cfg(target_arch = "wasm32")]
pub mod toasts;
