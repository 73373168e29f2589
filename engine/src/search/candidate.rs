//! [`Candidate`]: one configuration as the search varies it, its conversion to and from
//! [`breaker::Config`], and [`CandidateKey`], what identifies it in the search's cache.

use std::time::Duration;

use breaker::{Config, HalfOpenRule, Wait, Window};

/// The configurable parameters of a breaker, as the search varies them.
#[derive(Clone, Debug, PartialEq)]
pub struct Candidate {
    pub failure_rate_threshold: Option<f64>,
    pub window: Window,
    pub minimum_calls: u32,
    pub consecutive_failures: Option<u32>,
    /// (duration in ms, rate threshold)
    pub slow: Option<(u32, f64)>,
    pub wait: Wait,
    pub half_open: Probes,
    pub call_timeout: Option<Duration>,
}

/// How the breaker decides in Half-Open, as the search varies it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Probes {
    /// `Successes(probes, successes)`: lets `probes` calls through and closes once
    /// `successes` of them succeeded; the first failed or slow one opens it again
    /// ([`HalfOpenRule::Successes`]).
    Successes(u32, u32),
    /// `Rates(probes)`: lets `probes` calls through and closes when their failure and
    /// slow-call rates are below the trip thresholds ([`HalfOpenRule::Rates`], resilience4j's
    /// rule). One of the dependency's usual failures among them does not decide, so many
    /// probes stay safe on noisy traffic, and a partial failure (one shard of several) keeps
    /// the breaker open far more often than a few successes in a row would.
    Rates(u32),
}

/// What identifies a candidate in the search's cache: every field, each `f64` by its bits.
/// Two candidates share a key exactly when all their values are the same; so `-0.0` and
/// `0.0` make different keys, while a NaN makes the same key as itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) struct CandidateKey {
    failure_rate_threshold: Option<u64>,
    window: WindowKey,
    minimum_calls: u32,
    consecutive_failures: Option<u32>,
    slow: Option<(u32, u64)>,
    wait: WaitKey,
    half_open: Probes,
    call_timeout: Option<Duration>,
}

/// A [`Window`] in a key (`Window` itself is not `Hash`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum WindowKey {
    Count(u32),
    Time(u32),
}

/// A [`Wait`] in a key, its `f64` fields by their bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum WaitKey {
    Fixed(Duration),
    Exponential {
        initial: Duration,
        multiplier: u64,
        max: Duration,
        jitter: u64,
    },
}

// === impl Probes ===

impl Probes {
    /// Within the safety bounds: at most [`Grid::SAFE_MAX_PROBE_SUCCESSES`] successes in a
    /// row (and as many probes at least); probes judged by their rates as they are.
    ///
    /// [`Grid::SAFE_MAX_PROBE_SUCCESSES`]: super::Grid::SAFE_MAX_PROBE_SUCCESSES
    pub fn within_safety_bounds(self) -> Probes {
        match self {
            Probes::Successes(probes, successes) => {
                let successes = successes.min(super::Grid::SAFE_MAX_PROBE_SUCCESSES);
                Probes::Successes(probes.max(successes), successes)
            }
            Probes::Rates(_) => self,
        }
    }
}

// === impl Candidate ===

impl Candidate {
    pub fn from_config(config: &Config) -> Candidate {
        Candidate {
            failure_rate_threshold: config.failure_rate_threshold(),
            window: config.window(),
            minimum_calls: config.minimum_calls(),
            consecutive_failures: config.consecutive_failures(),
            slow: config
                .slow_call_rate_threshold()
                .map(|rate| (config.slow_call_duration().as_millis() as u32, rate)),
            wait: config.wait(),
            half_open: match config.half_open_rule() {
                HalfOpenRule::Successes => {
                    Probes::Successes(config.half_open_probes(), config.half_open_successes())
                }
                HalfOpenRule::Rates => Probes::Rates(config.half_open_probes()),
            },
            call_timeout: config.call_timeout(),
        }
    }

    /// The breaker config, or `None` when the combination breaks one of its rules (or could
    /// never trip).
    pub fn to_config(&self) -> Option<Config> {
        if self.failure_rate_threshold.is_none()
            && self.slow.is_none()
            && self.consecutive_failures.is_none()
        {
            return None;
        }
        let builder = Config::builder()
            .failure_rate_threshold(self.failure_rate_threshold)
            .window(self.window)
            .minimum_calls(self.minimum_calls)
            .consecutive_failures(self.consecutive_failures)
            .wait(self.wait)
            .call_timeout(self.call_timeout);
        let builder = match self.half_open {
            Probes::Successes(probes, successes) => builder
                .half_open_probes(probes)
                .half_open_successes(successes)
                .half_open_rule(HalfOpenRule::Successes),
            // Every probe is judged, so each must return before the breaker decides.
            Probes::Rates(probes) => builder
                .half_open_probes(probes)
                .half_open_successes(probes)
                .half_open_rule(HalfOpenRule::Rates),
        };
        let builder = match self.slow {
            Some((ms, rate)) => builder
                .slow_call_rate_threshold(rate)
                .slow_call_duration(Duration::from_millis(u64::from(ms))),
            None => builder.slow_call_rate_threshold(None),
        };
        builder.build().ok()
    }

    /// Count-based parameters divided by `factor`, for a history thinned by `factor`.
    pub fn thinned(&self, factor: u32) -> Candidate {
        if factor <= 1 {
            return self.clone();
        }
        let div = |n: u32| n.div_ceil(factor).max(1);
        let mut out = self.clone();
        if let Window::Count(n) = out.window {
            out.window = Window::Count(div(n));
        }
        out.minimum_calls = div(out.minimum_calls);
        if let Window::Count(n) = out.window {
            out.minimum_calls = out.minimum_calls.min(n);
        }
        // Runs of failures survive thinning (rates per step are kept), so this stays.
        out
    }

    /// Whether every rate policy needs at least `n` failures (or slow calls) to trip.
    pub fn needs_failures(&self, n: f64) -> bool {
        let min_calls = f64::from(self.minimum_calls);
        let ok = |threshold: f64| threshold * min_calls >= n - 1e-9;
        self.failure_rate_threshold.is_none_or(ok) && self.slow.is_none_or(|(_, rate)| ok(rate))
    }

    /// Raises the minimum calls (and a count window with them) until every rate policy needs
    /// at least `n` failures to trip.
    pub fn require_failures(&mut self, n: f64) {
        for threshold in [self.failure_rate_threshold, self.slow.map(|(_, rate)| rate)]
            .into_iter()
            .flatten()
        {
            let needed = (n / threshold).ceil() as u32;
            self.minimum_calls = self.minimum_calls.max(needed);
        }
        if let Window::Count(size) = self.window {
            self.window = Window::Count(size.max(self.minimum_calls));
        }
    }

    /// A rough count of moving parts, to prefer the simpler of two equally good candidates.
    pub(super) fn complexity(&self) -> u32 {
        u32::from(self.failure_rate_threshold.is_some())
            + u32::from(self.consecutive_failures.is_some())
            + u32::from(self.slow.is_some())
            + u32::from(matches!(self.wait, Wait::Exponential { .. }))
            + match self.half_open {
                Probes::Successes(probes, successes) => {
                    u32::from(probes > 1) + u32::from(successes > 1)
                }
                // Many probes and a rule of their own.
                Probes::Rates(probes) => u32::from(probes > 1) + 1,
            }
    }

    /// The key the search caches this candidate's cost under.
    pub(super) fn key(&self) -> CandidateKey {
        // Taken apart field by field, so that a new field cannot be left out of the key.
        let Candidate {
            failure_rate_threshold,
            window,
            minimum_calls,
            consecutive_failures,
            slow,
            wait,
            half_open,
            call_timeout,
        } = *self;
        CandidateKey {
            failure_rate_threshold: failure_rate_threshold.map(f64::to_bits),
            window: match window {
                Window::Count(n) => WindowKey::Count(n),
                Window::Time(secs) => WindowKey::Time(secs),
            },
            minimum_calls,
            consecutive_failures,
            slow: slow.map(|(ms, rate)| (ms, rate.to_bits())),
            wait: match wait {
                Wait::Fixed(wait) => WaitKey::Fixed(wait),
                Wait::Exponential {
                    initial,
                    multiplier,
                    max,
                    jitter,
                } => WaitKey::Exponential {
                    initial,
                    multiplier: multiplier.to_bits(),
                    max,
                    jitter: jitter.to_bits(),
                },
            },
            half_open,
            call_timeout,
        }
    }

    /// What orders equally costly, equally simple candidates when the screened ones are
    /// ranked for the full replay: their `Debug` text. Any fixed order would make the ranking
    /// independent of the cache's order, but a different one could change which of several
    /// equally good candidates the search returns, so this is the order it keeps.
    pub(super) fn tie_break_text(&self) -> String {
        format!("{self:?}")
    }
}

#[cfg(test)]
mod tests;
