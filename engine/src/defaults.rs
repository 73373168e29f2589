//! The well-known libraries' default settings, as configurations of the `breaker` crate.
//!
//! These are the baselines of `shared/tuning/SCENARIOS.md`. Where a library's half-open rule
//! differs from the breaker's (resilience4j judges its ten trial calls by failure rate), the
//! nearest breaker setting is used: ten probes, all needed to close.

use std::time::Duration;

use breaker::{Config, Window};

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
        // 50 % over the last 100 calls, at least 100 calls, 60 s open, 10 half-open calls.
        "resilience4j" => builder
            .failure_rate_threshold(0.5)
            .window(Window::Count(100))
            .minimum_calls(100)
            .wait_duration(secs(60))
            .half_open_probes(10)
            .half_open_successes(10),
        // 50 % over 10 s, at least 20 calls, 5 s open, one trial call.
        "hystrix" => builder
            .failure_rate_threshold(0.5)
            .window(Window::Time(10))
            .minimum_calls(20)
            .wait_duration(secs(5))
            .half_open_probes(1)
            .half_open_successes(1),
        // Failure ratio 10 % over 30 s, at least 100 calls, 5 s open, one trial call.
        "polly" => builder
            .failure_rate_threshold(0.1)
            .window(Window::Time(30))
            .minimum_calls(100)
            .wait_duration(secs(5))
            .half_open_probes(1)
            .half_open_successes(1),
        // 50 % over 10 s, no minimum, 30 s open, 10 s call timeout, one trial call.
        "opossum" => builder
            .failure_rate_threshold(0.5)
            .window(Window::Time(10))
            .minimum_calls(1)
            .wait_duration(secs(30))
            .call_timeout(secs(10))
            .half_open_probes(1)
            .half_open_successes(1),
        // 5 consecutive failures, 60 s open, one trial call.
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
