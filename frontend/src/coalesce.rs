//! Live summaries waiting for the next animation frame, coalesced per breaker.
//!
//! With hundreds of breakers and several instances each, the stream sends a breaker's summary
//! several times a second, and only the newest one can be seen. Each arriving summary is read
//! only as far as its identity and its calls/s (for the sparkline, which keeps one value per
//! second); the rest of the message is kept as text and parsed once, when the frame applies it,
//! so a summary superseded within the frame is never parsed in full.
//!
//! Pure and host-tested.

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};

use protocol::BreakerSummary;
use serde::Deserialize;

use crate::board::Key;

/// Summaries received and not applied yet: the newest per breaker, oldest breaker first, and
/// breakers the page does not show yet apart, so the next frame adds every one of them.
#[derive(Debug, Default)]
pub struct Pending {
    summaries: HashMap<Key, PendingSummary>,
    /// The breakers of `summaries` the page already shows, in the order they first became
    /// pending, so a frame that takes only some of them takes those that waited longest.
    order: VecDeque<Key>,
    /// The breakers of `summaries` the page did not show when they became pending. A frame
    /// takes all of them: laying the view out again for new breakers costs about the same
    /// whatever their number, so adding them a capped few a frame made a fleet of 10,000
    /// take hundreds of such frames to appear.
    fresh: Vec<Key>,
    /// Stream messages received since the last frame, superseded ones included.
    n_events: usize,
}

/// A breaker's newest summary, parsed, with the sparkline values of every second seen meanwhile.
#[derive(Clone, Debug, PartialEq)]
pub struct Coalesced {
    pub summary: BreakerSummary,
    /// `(second, calls/s)`, oldest first, one per second: the last value seen in each second.
    pub spark: Vec<(i64, f64)>,
}

/// What the frame applies.
#[derive(Debug, Default)]
pub struct Drained {
    pub summaries: Vec<Coalesced>,
    /// Messages these came from, superseded ones included (for the batch figures).
    pub n_events: usize,
    /// Messages that did not parse, as sentences.
    pub errors: Vec<String>,
}

#[derive(Debug)]
struct PendingSummary {
    /// The newest message's JSON, parsed only when drained.
    raw: String,
    spark: Vec<(i64, f64)>,
}

/// The few fields read on arrival; serde skips the rest without building it.
#[derive(Deserialize)]
struct SummaryHead<'a> {
    #[serde(borrow)]
    service: Cow<'a, str>,
    #[serde(borrow)]
    breaker: Cow<'a, str>,
    updated_ms: i64,
    calls_per_s: f64,
}

// === impl Pending ===

impl Pending {
    pub fn is_empty(&self) -> bool {
        self.summaries.is_empty()
    }

    /// Keeps the data of an `event: summary` message of a breaker the page shows; see
    /// [`Pending::push_summary_of`].
    pub fn push_summary(&mut self, raw: String) -> Result<bool, String> {
        self.push_summary_of(raw, |_| false)
    }

    /// Keeps the data of an `event: summary` message; a newer one for the same breaker replaces
    /// it. `is_new` tells, when the breaker has no pending summary yet, whether the page does
    /// not show it. Returns whether it is the first pending summary (the caller schedules a
    /// frame then).
    pub fn push_summary_of(
        &mut self,
        raw: String,
        is_new: impl FnOnce(&Key) -> bool,
    ) -> Result<bool, String> {
        let head: SummaryHead<'_> = serde_json::from_str(&raw)
            .map_err(|err| format!("a summary that does not parse: {err}"))?;
        let second = head.updated_ms.div_euclid(1000);
        let calls_per_s = head.calls_per_s;
        let key = (head.service.into_owned(), head.breaker.into_owned());
        let first = self.summaries.is_empty();
        self.n_events += 1;
        if let Some(pending) = self.summaries.get_mut(&key) {
            match pending.spark.last_mut() {
                Some(last) if last.0 == second => last.1 = calls_per_s,
                _ => pending.spark.push((second, calls_per_s)),
            }
            pending.raw = raw;
        } else {
            if is_new(&key) {
                self.fresh.push(key.clone());
            } else {
                self.order.push_back(key.clone());
            }
            self.summaries.insert(
                key,
                PendingSummary {
                    raw,
                    spark: vec![(second, calls_per_s)],
                },
            );
        }
        Ok(first)
    }

    /// Keeps each summary of the data of an `event: summaries` message (a summary's JSON per
    /// line, in the order they came), as [`Pending::push_summary_of`] does one by one; a line
    /// that does not parse is skipped and named in the errors. Returns whether one became the
    /// first pending summary.
    pub fn push_summaries_of(
        &mut self,
        lines: &str,
        is_new: impl Fn(&Key) -> bool,
    ) -> (bool, Vec<String>) {
        let mut first = false;
        let mut errors = Vec::new();
        for line in lines.split('\n') {
            match self.push_summary_of(line.to_string(), &is_new) {
                Ok(was_first) => first |= was_first,
                Err(err) => errors.push(err),
            }
        }
        (first, errors)
    }

    /// Takes the summaries of every breaker new to the page and of at most `max` others,
    /// those pending longest first, parsing each breaker's newest summary once. The rest stay
    /// pending and keep coalescing.
    pub fn drain(&mut self, max: usize) -> Drained {
        let n_events = std::mem::take(&mut self.n_events);
        let n_taken = max.min(self.order.len());
        let fresh = std::mem::take(&mut self.fresh);
        let mut drained = Drained {
            summaries: Vec::with_capacity(fresh.len() + n_taken),
            n_events,
            errors: Vec::new(),
        };
        for key in fresh.into_iter().chain(self.order.drain(..n_taken)) {
            if let Some(pending) = self.summaries.remove(&key) {
                match pending.parse() {
                    Ok(coalesced) => drained.summaries.push(coalesced),
                    Err(err) => drained.errors.push(err),
                }
            }
        }
        drained
    }

    /// Takes `key`'s pending summary, if any: a transition of that breaker applies after it, so
    /// the stream's order holds for each breaker while the others wait for their frame.
    pub fn take(&mut self, key: &Key) -> Option<Result<Coalesced, String>> {
        let pending = self.summaries.remove(key)?;
        self.order.retain(|queued| queued != key);
        self.fresh.retain(|queued| queued != key);
        Some(pending.parse())
    }
}

// === impl PendingSummary ===

impl PendingSummary {
    fn parse(self) -> Result<Coalesced, String> {
        // The message is `{"type": "summary", …BreakerSummary}`; reading the summary directly
        // skips the buffering an internally tagged enum needs.
        let summary = serde_json::from_str::<BreakerSummary>(&self.raw)
            .map_err(|err| format!("a summary that does not parse: {err}"))?;
        Ok(Coalesced {
            summary,
            spark: self.spark,
        })
    }
}

/// A frame's time for applying summaries: half of a 60 Hz frame, the rest left for the
/// browser's own work.
pub const FRAME_BUDGET_MS: f64 = 8.0;

/// How many breakers a frame applies: at most [`FrameCap::MAX`], fewer when the last frame
/// cost more than its budget. A tile with its sparkline costs about twenty times a matrix
/// cell, so 64 tiles overrun a frame where 64 cells take a few milliseconds. (Letting a
/// matrix of 10,000 breakers apply hundreds a frame made its frames and its transitions'
/// way to the screen slower, `cargo xtask bench --only browser_load`; the matrix keeps 64.)
///
/// The frame after a transition applies none of the shown breakers' summaries (but never two
/// frames in a row), so the paint that shows the transition does not wait for them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FrameCap {
    cap: usize,
    /// A transition was applied since the last frame started.
    transition: bool,
    /// The last frame applied no summaries because of a transition.
    held_back: bool,
}

impl Default for FrameCap {
    fn default() -> FrameCap {
        FrameCap {
            cap: FrameCap::MAX,
            transition: false,
            held_back: false,
        }
    }
}

impl FrameCap {
    pub const MIN: usize = 16;
    pub const MAX: usize = 64;

    /// Breakers the next frame applies at most.
    pub fn get(self) -> usize {
        self.cap
    }

    /// A transition was applied: the next frame holds the shown breakers' summaries back.
    pub fn note_transition(&mut self) {
        self.transition = true;
    }

    /// Breakers the frame that is starting applies at most: none when a transition came since
    /// the last frame and that frame was not held back already, else [`FrameCap::get`].
    pub fn for_frame(&mut self) -> usize {
        let hold = self.transition && !self.held_back;
        self.transition = false;
        self.held_back = hold;
        if hold { 0 } else { self.cap }
    }

    /// After a frame that applied `applied` breakers in `elapsed_ms` (rendering included):
    /// the number that would have filled [`FRAME_BUDGET_MS`] at that frame's cost per breaker,
    /// moving at most by half or double per frame; raised only when the cap held the frame
    /// back (a frame of a few breakers says little about a full one), and not lowered by a
    /// frame that `added` breakers (laying the view out again costs the same whatever their
    /// number, so fewer per frame would only make a large fleet slower to appear).
    pub fn record(&mut self, applied: usize, elapsed_ms: f64, added: bool) {
        if applied == 0 || !elapsed_ms.is_finite() {
            return;
        }
        let fits = FRAME_BUDGET_MS * applied as f64 / elapsed_ms.max(0.01);
        let mut cap = fits.clamp((self.cap / 2) as f64, (self.cap * 2) as f64) as usize;
        if applied < self.cap {
            cap = cap.min(self.cap);
        }
        if added {
            cap = cap.max(self.cap);
        }
        self.cap = cap.clamp(FrameCap::MIN, FrameCap::MAX);
    }
}

#[cfg(test)]
mod tests;
