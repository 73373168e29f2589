//! A breaker's validated configuration, its builder, and the error naming what is invalid.
//!
//! A [`Config`] can only be made through [`ConfigBuilder::build`], which checks every rule,
//! so a breaker never runs an invalid configuration: a pushed config that breaks a rule is
//! refused with a [`ConfigError`] naming the field and the rule, and the last good one stays.

use std::time::Duration;

/// The largest count-based window, in calls.
pub const MAX_WINDOW_CALLS: u32 = 1_000_000;
/// The largest time-based window, in seconds (one day).
pub const MAX_WINDOW_SECONDS: u32 = 86_400;

/// A validated breaker configuration. Build one with [`Config::builder`].
///
/// Defaults: failure-rate threshold 50 % over the last 100 calls, judged from 10 calls on;
/// no slow-call policy; no consecutive-failures policy; 30 s fixed wait in Open;
/// 5 probes in Half-Open, all 5 needed to close; no maximum wait in Half-Open; version 0.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    version: u64,
    failure_rate_threshold: Option<f64>,
    slow_call_rate_threshold: Option<f64>,
    slow_call_duration: Duration,
    consecutive_failures: Option<u32>,
    window: Window,
    minimum_calls: u32,
    wait: Wait,
    half_open_probes: u32,
    half_open_successes: u32,
    half_open_rule: HalfOpenRule,
    half_open_max_wait: Option<Duration>,
    call_timeout: Option<Duration>,
}

/// How Half-Open decides from its probes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum HalfOpenRule {
    /// Close once `half_open_successes` probes succeeded; a failed or slow probe opens the
    /// breaker again at once.
    #[default]
    Successes,
    /// resilience4j's rule: wait for all `half_open_probes` probes, then close when their
    /// failure rate and slow-call rate are below the thresholds, else open again. Needs a
    /// failure-rate or slow-call-rate threshold.
    Rates,
}

/// Which calls the failure and slow-call rates are judged over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Window {
    /// The last N calls.
    Count(u32),
    /// The calls of the last N seconds, counted in one-second buckets.
    Time(u32),
}

/// How long the breaker stays Open before letting probes through.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Wait {
    /// The same wait every time.
    Fixed(Duration),
    /// `initial × multiplier^(n-1)` for the n-th Open in a row (reset once the breaker closes),
    /// spread by ± `jitter` (a fraction, 0–1) and capped at `max`.
    Exponential {
        initial: Duration,
        multiplier: f64,
        max: Duration,
        jitter: f64,
    },
}

/// Builds a [`Config`]; `build` checks every rule.
#[derive(Clone, Debug)]
pub struct ConfigBuilder {
    config: Config,
}

/// A config rule that a value breaks, naming the field.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("invalid `{field}`: {rule}")]
pub struct ConfigError {
    /// The field, as named by the builder method that sets it (e.g. `failure_rate_threshold`).
    pub field: &'static str,
    pub rule: Rule,
}

/// The rule a config value breaks.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum Rule {
    #[error("{value} is outside the allowed range {min}–{max}")]
    OutOfRange { value: f64, min: f64, max: f64 },
    #[error("must be greater than zero")]
    Zero,
    #[error("{value} is more than the limit of {limit}")]
    TooLarge { value: u64, limit: u64 },
    #[error("{value} is more than `{other}` ({limit})")]
    ExceedsField {
        value: u64,
        other: &'static str,
        limit: u64,
    },
    #[error("must be a finite number")]
    NotFinite,
    #[error("{value} is not a rate above 0 and at most 1 (0–100 %)")]
    NotARate { value: f64 },
    #[error("judging probes by rate needs a failure-rate or slow-call-rate threshold")]
    NeedsRateThreshold,
}

// === impl Config ===

impl Config {
    pub fn builder() -> ConfigBuilder {
        ConfigBuilder {
            config: Config::default(),
        }
    }

    /// A builder starting from this config, to change a few fields.
    pub fn to_builder(&self) -> ConfigBuilder {
        ConfigBuilder {
            config: self.clone(),
        }
    }

    pub fn version(&self) -> u64 {
        self.version
    }

    /// Trip when the share of failed calls (0–1) over the window reaches this.
    pub fn failure_rate_threshold(&self) -> Option<f64> {
        self.failure_rate_threshold
    }

    /// Trip when the share of slow calls (0–1) over the window reaches this.
    pub fn slow_call_rate_threshold(&self) -> Option<f64> {
        self.slow_call_rate_threshold
    }

    /// A call at least this long is slow, whatever its outcome.
    pub fn slow_call_duration(&self) -> Duration {
        self.slow_call_duration
    }

    /// Trip after this many failures in a row.
    pub fn consecutive_failures(&self) -> Option<u32> {
        self.consecutive_failures
    }

    pub fn window(&self) -> Window {
        self.window
    }

    /// No rate is judged before the window holds this many calls.
    pub fn minimum_calls(&self) -> u32 {
        self.minimum_calls
    }

    pub fn wait(&self) -> Wait {
        self.wait
    }

    /// How many probe calls Half-Open lets through at once.
    pub fn half_open_probes(&self) -> u32 {
        self.half_open_probes
    }

    /// How many probe successes close the breaker; any failed probe opens it again.
    pub fn half_open_successes(&self) -> u32 {
        self.half_open_successes
    }

    /// How Half-Open judges its probes.
    pub fn half_open_rule(&self) -> HalfOpenRule {
        self.half_open_rule
    }

    /// Half-Open returns to Open when its probes have not decided within this.
    pub fn half_open_max_wait(&self) -> Option<Duration> {
        self.half_open_max_wait
    }

    /// An async call taking longer is abandoned and counted as a timeout (a failure).
    pub fn call_timeout(&self) -> Option<Duration> {
        self.call_timeout
    }

    /// Whether a call of this latency counts as slow under this config.
    pub fn is_slow(&self, latency: Duration) -> bool {
        self.slow_call_rate_threshold.is_some() && latency >= self.slow_call_duration
    }
}

impl Default for Config {
    fn default() -> Config {
        Config {
            version: 0,
            failure_rate_threshold: Some(0.5),
            slow_call_rate_threshold: None,
            slow_call_duration: Duration::from_secs(60),
            consecutive_failures: None,
            window: Window::Count(100),
            minimum_calls: 10,
            wait: Wait::Fixed(Duration::from_secs(30)),
            half_open_probes: 5,
            half_open_successes: 5,
            half_open_rule: HalfOpenRule::Successes,
            half_open_max_wait: None,
            call_timeout: None,
        }
    }
}

// === impl ConfigBuilder ===

impl ConfigBuilder {
    pub fn version(mut self, version: u64) -> Self {
        self.config.version = version;
        self
    }

    /// A rate in (0, 1]; `None` turns the failure-rate policy off.
    pub fn failure_rate_threshold(mut self, threshold: impl Into<Option<f64>>) -> Self {
        self.config.failure_rate_threshold = threshold.into();
        self
    }

    /// A rate in (0, 1]; `None` turns the slow-call policy off.
    pub fn slow_call_rate_threshold(mut self, threshold: impl Into<Option<f64>>) -> Self {
        self.config.slow_call_rate_threshold = threshold.into();
        self
    }

    pub fn slow_call_duration(mut self, duration: Duration) -> Self {
        self.config.slow_call_duration = duration;
        self
    }

    /// `None` turns the consecutive-failures policy off.
    pub fn consecutive_failures(mut self, n_failures: impl Into<Option<u32>>) -> Self {
        self.config.consecutive_failures = n_failures.into();
        self
    }

    pub fn window(mut self, window: Window) -> Self {
        self.config.window = window;
        self
    }

    pub fn minimum_calls(mut self, n_calls: u32) -> Self {
        self.config.minimum_calls = n_calls;
        self
    }

    pub fn wait(mut self, wait: Wait) -> Self {
        self.config.wait = wait;
        self
    }

    /// A fixed wait in Open.
    pub fn wait_duration(self, wait: Duration) -> Self {
        self.wait(Wait::Fixed(wait))
    }

    pub fn half_open_probes(mut self, n_probes: u32) -> Self {
        self.config.half_open_probes = n_probes;
        self
    }

    pub fn half_open_successes(mut self, n_successes: u32) -> Self {
        self.config.half_open_successes = n_successes;
        self
    }

    pub fn half_open_rule(mut self, rule: HalfOpenRule) -> Self {
        self.config.half_open_rule = rule;
        self
    }

    pub fn half_open_max_wait(mut self, max_wait: impl Into<Option<Duration>>) -> Self {
        self.config.half_open_max_wait = max_wait.into();
        self
    }

    pub fn call_timeout(mut self, timeout: impl Into<Option<Duration>>) -> Self {
        self.config.call_timeout = timeout.into();
        self
    }

    /// Checks every rule and returns the config, or the first broken rule.
    pub fn build(self) -> Result<Config, ConfigError> {
        let config = self.config;
        for (field, threshold) in [
            ("failure_rate_threshold", config.failure_rate_threshold),
            ("slow_call_rate_threshold", config.slow_call_rate_threshold),
        ] {
            if let Some(rate) = threshold {
                check_rate(field, rate)?;
            }
        }
        if config.consecutive_failures == Some(0) {
            return Err(invalid("consecutive_failures", Rule::Zero));
        }
        if config.slow_call_rate_threshold.is_some() && config.slow_call_duration.is_zero() {
            return Err(invalid("slow_call_duration", Rule::Zero));
        }
        let (window_len, limit) = match config.window {
            Window::Count(n_calls) => (n_calls, MAX_WINDOW_CALLS),
            Window::Time(n_seconds) => (n_seconds, MAX_WINDOW_SECONDS),
        };
        if window_len == 0 {
            return Err(invalid("window", Rule::Zero));
        }
        if window_len > limit {
            return Err(invalid(
                "window",
                Rule::TooLarge {
                    value: u64::from(window_len),
                    limit: u64::from(limit),
                },
            ));
        }
        if config.minimum_calls == 0 {
            return Err(invalid("minimum_calls", Rule::Zero));
        }
        if let Window::Count(n_calls) = config.window
            && config.minimum_calls > n_calls
        {
            return Err(invalid(
                "minimum_calls",
                Rule::ExceedsField {
                    value: u64::from(config.minimum_calls),
                    other: "window",
                    limit: u64::from(n_calls),
                },
            ));
        }
        match config.wait {
            Wait::Fixed(wait) => {
                if wait.is_zero() {
                    return Err(invalid("wait", Rule::Zero));
                }
            }
            Wait::Exponential {
                initial,
                multiplier,
                max,
                jitter,
            } => {
                if initial.is_zero() {
                    return Err(invalid("wait.initial", Rule::Zero));
                }
                if !multiplier.is_finite() {
                    return Err(invalid("wait.multiplier", Rule::NotFinite));
                }
                if !(1.0..=100.0).contains(&multiplier) {
                    return Err(invalid(
                        "wait.multiplier",
                        Rule::OutOfRange {
                            value: multiplier,
                            min: 1.0,
                            max: 100.0,
                        },
                    ));
                }
                if max < initial {
                    return Err(invalid(
                        "wait.max",
                        Rule::OutOfRange {
                            value: max.as_secs_f64(),
                            min: initial.as_secs_f64(),
                            max: f64::INFINITY,
                        },
                    ));
                }
                if !jitter.is_finite() {
                    return Err(invalid("wait.jitter", Rule::NotFinite));
                }
                if !(0.0..=1.0).contains(&jitter) {
                    return Err(invalid(
                        "wait.jitter",
                        Rule::OutOfRange {
                            value: jitter,
                            min: 0.0,
                            max: 1.0,
                        },
                    ));
                }
            }
        }
        if config.half_open_probes == 0 {
            return Err(invalid("half_open_probes", Rule::Zero));
        }
        if config.half_open_successes == 0 {
            return Err(invalid("half_open_successes", Rule::Zero));
        }
        if config.half_open_successes > config.half_open_probes {
            return Err(invalid(
                "half_open_successes",
                Rule::ExceedsField {
                    value: u64::from(config.half_open_successes),
                    other: "half_open_probes",
                    limit: u64::from(config.half_open_probes),
                },
            ));
        }
        if config.half_open_rule == HalfOpenRule::Rates
            && config.failure_rate_threshold.is_none()
            && config.slow_call_rate_threshold.is_none()
        {
            return Err(invalid("half_open_rule", Rule::NeedsRateThreshold));
        }
        if config.half_open_max_wait.is_some_and(|wait| wait.is_zero()) {
            return Err(invalid("half_open_max_wait", Rule::Zero));
        }
        if config.call_timeout.is_some_and(|timeout| timeout.is_zero()) {
            return Err(invalid("call_timeout", Rule::Zero));
        }
        Ok(config)
    }
}

fn invalid(field: &'static str, rule: Rule) -> ConfigError {
    ConfigError { field, rule }
}

fn check_rate(field: &'static str, rate: f64) -> Result<(), ConfigError> {
    if !rate.is_finite() {
        return Err(invalid(field, Rule::NotFinite));
    }
    if rate <= 0.0 || rate > 1.0 {
        return Err(invalid(field, Rule::NotARate { value: rate }));
    }
    Ok(())
}
