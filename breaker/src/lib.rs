//! An embeddable circuit breaker that reports to fusebox and takes its thresholds at run time.
//!
//! Brief overview:
//! - [`CircuitBreaker`]: the breaker services call through: [`CircuitBreaker::call`],
//!   [`CircuitBreaker::call_async`], or the low-level [`CircuitBreaker::try_acquire`] giving a
//!   [`Permit`] whose outcome is recorded with [`Permit::record`].
//! - [`Config`]: a validated configuration (thresholds, window, waits, probes, version), made
//!   with [`Config::builder`]; invalid values give a [`ConfigError`] naming field and rule.
//! - [`State`] (`Closed`, `Open`, `HalfOpen`) and [`Mode`] (automatic, forced open, disabled,
//!   metrics only).
//! - [`Machine`]: the sans-IO state machine inside every breaker, deterministic given the
//!   times it is handed; the engine replays history through it.
//! - [`Clock`]: injected time; [`SystemClock`] by default, [`ManualClock`] for tests and replay.
//! - [`Registry`]: named breakers, one per dependency, with shared [`Listener`]s.
//! - `reporter` (feature `reporter`, on by default): sends per-interval aggregates and every
//!   transition to a fusebox server without ever blocking a call.
//!
//! ```
//! use std::time::Duration;
//! use breaker::{CallError, CircuitBreaker, Config, State};
//!
//! let config = Config::builder()
//!     .failure_rate_threshold(0.5)
//!     .window(breaker::Window::Count(20))
//!     .minimum_calls(4)
//!     .wait_duration(Duration::from_secs(10))
//!     .build()?;
//! let payments = CircuitBreaker::new("payments", config);
//!
//! for _ in 0..4 {
//!     let res: Result<(), CallError<&str>> = payments.call(|| Err("connection refused"));
//!     assert!(matches!(res, Err(CallError::Inner(_))));
//! }
//! assert_eq!(payments.state(), State::Open);
//! assert!(matches!(payments.call(|| Ok::<_, &str>(1)), Err(CallError::Rejected(_))));
//! # Ok::<(), breaker::ConfigError>(())
//! ```

mod breaker;
pub mod clock;
pub mod config;
pub mod events;
pub mod machine;
mod registry;
mod shard;
mod window;

#[cfg(feature = "tower")]
pub mod layer;
#[cfg(feature = "reporter")]
pub mod reporter;
#[cfg(feature = "subscriber")]
pub mod subscriber;

pub use crate::breaker::{
    CallError, CircuitBreaker, OwnedPermit, Permit, Rejected, Snapshot, classify_result,
};
pub use crate::clock::{Clock, ManualClock, SystemClock};
pub use crate::config::{Config, ConfigBuilder, ConfigError, Rule, Wait, Window};
pub use crate::events::{Event, EventKind, Interests, Listener};
pub use crate::machine::{
    Admission, Granted, Machine, Mode, Outcome, PermitKind, State, Transition, Trigger, TriggerKind,
};
pub use crate::registry::Registry;
pub use crate::shard::Counters;
pub use crate::window::Totals;
