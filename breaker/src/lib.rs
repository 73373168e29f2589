#![doc = include_str!("../README.md")]
//!
//! Every module opens with its own overview: [`machine`] (the policies and transitions),
//! [`config`], [`clock`], [`events`], and the `reporter`, `subscriber` and `layer` modules
//! behind their features.

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
pub use crate::config::{Config, ConfigBuilder, ConfigError, HalfOpenRule, Rule, Wait, Window};
pub use crate::events::{Event, EventKind, Interests, Listener};
pub use crate::machine::{
    Admission, Batch, Granted, Machine, Mode, Outcome, PermitKind, State, Transition, Trigger,
    TriggerKind,
};
pub use crate::registry::Registry;
pub use crate::shard::Counters;
pub use crate::window::Totals;
