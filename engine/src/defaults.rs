//! The well-known libraries' default settings, as configurations of the `breaker` crate.
//!
//! These are the baselines of `shared/tuning/SCENARIOS.md`. Each setting names the library's
//! own configuration key and its documented default; a setting the library lacks is the
//! breaker's nearest equivalent, said so where it is used. Every library here lets one call
//! through in half-open unless noted, and reopens on its failure.

use std::time::Duration;

use breaker::{Config, HalfOpenRule, Window};

/// The names of the library defaults, in report order.
pub const LIBRARY_DEFAULTS: [&str; 5] =
    ["resilience4j", "hystrix", "polly", "opossum", "pybreaker"];

/// The library defaults, in report order.
pub fn library_defaults() -> Vec<(&'static str, Config)> {
    LIBRARY_DEFAULTS
        .iter()
        .map(|&name| (name, library_default(name).expect("known name")))
        .collect()
}

/// One library's defaults by name.
pub fn library_default(name: &str) -> Option<Config> {
    let secs = Duration::from_secs;
    let builder = Config::builder().slow_call_rate_threshold(None);
    let builder = match name {
        // resilience4j `CircuitBreakerConfig`: failureRateThreshold 50, slidingWindowType
        // COUNT_BASED, slidingWindowSize 100, minimumNumberOfCalls 100, waitDurationInOpenState
        // 60 s, permittedNumberOfCallsInHalfOpenState 10, judged as a failure rate once all ten
        // returned (`HalfOpenRule::Rates`); slowCallRateThreshold 100 with
        // slowCallDurationThreshold 60 s, which no call of these scenarios reaches, so no
        // slow-call rule.
        "resilience4j" => builder
            .failure_rate_threshold(0.5)
            .window(Window::Count(100))
            .minimum_calls(100)
            .wait_duration(secs(60))
            .half_open_probes(10)
            .half_open_successes(10)
            .half_open_rule(HalfOpenRule::Rates),
        // Hystrix `HystrixCommandProperties`: circuitBreaker.errorThresholdPercentage 50,
        // metrics.rollingStats.timeInMilliseconds 10 000, circuitBreaker.requestVolumeThreshold
        // 20, circuitBreaker.sleepWindowInMilliseconds 5 000, one trial request;
        // execution.isolation.thread.timeoutInMilliseconds 1 000 (a slower call is a failure).
        "hystrix" => builder
            .failure_rate_threshold(0.5)
            .window(Window::Time(10))
            .minimum_calls(20)
            .wait_duration(secs(5))
            .call_timeout(secs(1))
            .half_open_probes(1)
            .half_open_successes(1),
        // Polly v8 `CircuitBreakerStrategyOptions`: FailureRatio 0.1, SamplingDuration 30 s,
        // MinimumThroughput 100, BreakDuration 5 s; no timeout of its own (a separate strategy).
        "polly" => builder
            .failure_rate_threshold(0.1)
            .window(Window::Time(30))
            .minimum_calls(100)
            .wait_duration(secs(5))
            .half_open_probes(1)
            .half_open_successes(1),
        // opossum options: errorThresholdPercentage 50, rollingCountTimeout 10 000 ms,
        // volumeThreshold 0 (no minimum; the breaker's least is 1), resetTimeout 30 000 ms,
        // timeout 10 000 ms.
        "opossum" => builder
            .failure_rate_threshold(0.5)
            .window(Window::Time(10))
            .minimum_calls(1)
            .wait_duration(secs(30))
            .call_timeout(secs(10))
            .half_open_probes(1)
            .half_open_successes(1),
        // pybreaker `CircuitBreaker`: fail_max 5 (failures in a row), reset_timeout 60 s,
        // success_threshold 1.
        "pybreaker" => builder
            .failure_rate_threshold(None)
            .consecutive_failures(5)
            .wait_duration(secs(60))
            .half_open_probes(1)
            .half_open_successes(1),
        _ => return None,
    };
    Some(builder.build().expect("library defaults are valid"))
}
