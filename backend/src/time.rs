//! The server's clock, in milliseconds since the Unix epoch.
//!
//! Everything in the backend that needs the time asks the [`Clock`] in its state, never the
//! system directly, so tests can run auto mode's canaries, "open longer than" alerts, flapping
//! windows, rollups and retention in virtual time: a [`Clock::manual`] moves only when the test
//! moves it.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

/// The wall clock (the default) or a manual one.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    manual: Option<Arc<AtomicI64>>,
}

impl Clock {
    /// The system's wall clock.
    pub fn system() -> Clock {
        Clock { manual: None }
    }

    /// A clock that reads `start_ms` until [`Clock::advance`] or [`Clock::set_ms`] moves it.
    pub fn manual(start_ms: i64) -> Clock {
        Clock {
            manual: Some(Arc::new(AtomicI64::new(start_ms))),
        }
    }

    pub fn now_ms(&self) -> i64 {
        match &self.manual {
            Some(ms) => ms.load(Ordering::Acquire),
            None => now_ms(),
        }
    }

    /// Moves a manual clock forward.
    ///
    /// # Panics
    /// On the system clock, which nobody moves.
    pub fn advance(&self, by: Duration) {
        let ms = self.manual.as_ref().expect("only a manual clock is moved");
        ms.fetch_add(by.as_millis() as i64, Ordering::AcqRel);
    }

    /// Sets a manual clock.
    ///
    /// # Panics
    /// On the system clock.
    pub fn set_ms(&self, at_ms: i64) {
        let ms = self.manual.as_ref().expect("only a manual clock is set");
        ms.store(at_ms, Ordering::Release);
    }
}

/// The system's wall clock. The backend reads it only through [`Clock`]; tests and tools
/// that build requests use it directly.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The latest instant the API takes or stores: 9999-12-31T23:59:59.999Z. Timestamps in queries
/// lie in `0..=MAX_MS` (the OpenAPI document says so), which keeps every difference of two in
/// range of i64.
pub const MAX_MS: i64 = 253_402_300_799_999;

/// A query timestamp, checked against `0..=MAX_MS`.
pub fn checked_ms(name: &str, value: i64) -> Result<i64, crate::error::AppError> {
    if (0..=MAX_MS).contains(&value) {
        Ok(value)
    } else {
        Err(crate::error::AppError::BadQuery {
            detail: format!(
                "{name} must be between 0 and {MAX_MS} (ms since the epoch), not {value}"
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_moved() {
        let clock = Clock::manual(1_000);
        let copy = clock.clone();
        assert_eq!(clock.now_ms(), 1_000);
        copy.advance(Duration::from_secs(90));
        assert_eq!(clock.now_ms(), 91_000, "clones share the time");
        clock.set_ms(5);
        assert_eq!(copy.now_ms(), 5);
        let system = Clock::system();
        let (a, b) = (system.now_ms(), now_ms());
        assert!((b - a).abs() < 60_000);
    }
}
