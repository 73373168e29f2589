//! The guardrails: what auto mode may change in one step, and within which bounds. Pure.

use protocol::{AutoTuneSettings, BreakerConfig, WaitConfig, WindowConfig};

/// Clamps `suggested` into the guardrails around `current`; returns the config and a line
/// per parameter the guardrails changed. The manual mode is always the current one.
pub fn clamp(
    current: &BreakerConfig,
    suggested: &BreakerConfig,
    settings: &AutoTuneSettings,
) -> (BreakerConfig, Vec<String>) {
    let step = settings.max_step;
    let b = &settings.bounds;
    let mut out = suggested.clone();
    // What the engine does not tune stays as it is.
    out.mode = current.mode;
    out.call_timeout_ms = current.call_timeout_ms;
    out.half_open_max_wait_ms = current.half_open_max_wait_ms;
    let mut notes = Vec::new();
    let mut note = |name: &str, wanted: String, got: String, why: &str| {
        if wanted != got {
            notes.push(format!("{name}: {wanted} → {got} ({why})"));
        }
    };
    // A relative step from the current value, then the bounds.
    let clamp_f = |cur: Option<f64>, want: f64, [lo, hi]: [f64; 2]| -> (f64, &'static str) {
        let mut v = want;
        let mut why = "";
        if let Some(cur) = cur {
            let (a, z) = (cur * (1.0 - step).max(0.0), cur * (1.0 + step));
            if v < a || v > z {
                v = v.clamp(a, z);
                why = "maximum step";
            }
        }
        if v < lo || v > hi {
            v = v.clamp(lo, hi);
            why = "bounds";
        }
        ((v * 1e4).round() / 1e4, why)
    };
    let clamp_u = |cur: Option<u64>, want: u64, [lo, hi]: [u64; 2]| -> (u64, &'static str) {
        let (v, why) = clamp_f(cur.map(|c| c as f64), want as f64, [lo as f64, hi as f64]);
        (v.round().max(1.0) as u64, why)
    };

    if let Some(want) = suggested.failure_rate_threshold {
        let (v, why) = clamp_f(
            current.failure_rate_threshold,
            want,
            b.failure_rate_threshold,
        );
        note(
            "failure_rate_threshold",
            want.to_string(),
            v.to_string(),
            why,
        );
        out.failure_rate_threshold = Some(v);
    }
    if let Some(want) = suggested.slow_call_rate_threshold {
        let (v, why) = clamp_f(
            current.slow_call_rate_threshold,
            want,
            b.slow_call_rate_threshold,
        );
        note(
            "slow_call_rate_threshold",
            want.to_string(),
            v.to_string(),
            why,
        );
        out.slow_call_rate_threshold = Some(v);
    }
    if let (Some(want), Some(cur)) = (
        suggested.slow_call_duration_ms,
        current.slow_call_duration_ms,
    ) {
        let (v, why) = clamp_u(Some(cur), want, [1, u64::MAX]);
        note(
            "slow_call_duration_ms",
            want.to_string(),
            v.to_string(),
            why,
        );
        out.slow_call_duration_ms = Some(v);
    }
    if let Some(want) = suggested.consecutive_failures {
        let [lo, hi] = b.consecutive_failures;
        let (v, why) = clamp_u(
            current.consecutive_failures.map(u64::from),
            u64::from(want),
            [u64::from(lo), u64::from(hi)],
        );
        note("consecutive_failures", want.to_string(), v.to_string(), why);
        out.consecutive_failures = Some(v as u32);
    }
    // Auto mode never leaves a breaker without a failure policy it had.
    let mut kept_policy = false;
    if out.failure_rate_threshold.is_none() && out.consecutive_failures.is_none() {
        out.failure_rate_threshold = current.failure_rate_threshold;
        out.consecutive_failures = current.consecutive_failures;
        kept_policy = out.failure_rate_threshold.is_some() || out.consecutive_failures.is_some();
    }
    {
        let [lo, hi] = b.minimum_calls;
        let want = suggested.minimum_calls;
        let (v, why) = clamp_u(
            Some(u64::from(current.minimum_calls)),
            u64::from(want),
            [u64::from(lo), u64::from(hi)],
        );
        note("minimum_calls", want.to_string(), v.to_string(), why);
        out.minimum_calls = v as u32;
    }
    out.window = match (current.window, suggested.window) {
        (WindowConfig::Count { calls: cur }, WindowConfig::Count { calls: want }) => {
            let (v, why) = clamp_u(Some(u64::from(cur)), u64::from(want), [1, 1_000_000]);
            note("window.calls", want.to_string(), v.to_string(), why);
            WindowConfig::Count { calls: v as u32 }
        }
        (WindowConfig::Time { seconds: cur }, WindowConfig::Time { seconds: want }) => {
            let (v, why) = clamp_u(Some(u64::from(cur)), u64::from(want), [1, 86_400]);
            note("window.seconds", want.to_string(), v.to_string(), why);
            WindowConfig::Time { seconds: v as u32 }
        }
        // Another kind of window: sizes are not comparable, only the bounds apply.
        (_, WindowConfig::Count { calls }) => WindowConfig::Count {
            calls: calls.clamp(10, 100_000),
        },
        (_, WindowConfig::Time { seconds }) => WindowConfig::Time {
            seconds: seconds.clamp(5, 3_600),
        },
    };
    // Clamped one by one, the minimum calls may exceed a count window: judge on a full window.
    if let WindowConfig::Count { calls } = out.window
        && out.minimum_calls > calls
    {
        note(
            "minimum_calls",
            out.minimum_calls.to_string(),
            calls.to_string(),
            "no more than the window",
        );
        out.minimum_calls = calls;
    }
    let current_wait = match current.wait {
        WaitConfig::Fixed { ms } => ms,
        WaitConfig::Exponential { initial_ms, .. } => initial_ms,
    };
    out.wait = match suggested.wait {
        WaitConfig::Fixed { ms } => {
            let (v, why) = clamp_u(Some(current_wait), ms, b.wait_ms);
            note("wait.ms", ms.to_string(), v.to_string(), why);
            WaitConfig::Fixed { ms: v }
        }
        WaitConfig::Exponential {
            initial_ms,
            multiplier,
            max_ms,
            jitter,
        } => {
            let multiplier = match current.wait {
                WaitConfig::Exponential { multiplier, .. } => multiplier,
                WaitConfig::Fixed { .. } => multiplier.clamp(1.0, 4.0),
            };
            let (initial, why) = clamp_u(Some(current_wait), initial_ms, b.wait_ms);
            note(
                "wait.initial_ms",
                initial_ms.to_string(),
                initial.to_string(),
                why,
            );
            let [_, hi] = b.wait_ms;
            let max = max_ms.clamp(initial, hi);
            note("wait.max_ms", max_ms.to_string(), max.to_string(), "bounds");
            WaitConfig::Exponential {
                initial_ms: initial,
                multiplier,
                max_ms: max,
                jitter,
            }
        }
    };
    if kept_policy {
        notes.push("failure policy kept: auto mode does not turn the last one off".into());
    }
    (out, notes)
}

/// Whether two configs set the same thresholds (versions aside).
pub fn same_thresholds(a: &BreakerConfig, b: &BreakerConfig) -> bool {
    let mut b = b.clone();
    b.version = a.version;
    *a == b
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(rate: f64, min_calls: u32, wait_ms: u64) -> BreakerConfig {
        BreakerConfig {
            version: 3,
            failure_rate_threshold: Some(rate),
            slow_call_rate_threshold: None,
            slow_call_duration_ms: None,
            consecutive_failures: None,
            window: WindowConfig::Count { calls: 100 },
            minimum_calls: min_calls,
            wait: WaitConfig::Fixed { ms: wait_ms },
            half_open_probes: 1,
            half_open_successes: 1,
            half_open_rule: Default::default(),
            half_open_max_wait_ms: None,
            call_timeout_ms: None,
            mode: None,
        }
    }

    #[test]
    fn a_suggestion_within_the_guardrails_is_kept() {
        let settings = AutoTuneSettings::default();
        let (out, notes) = clamp(
            &config(0.5, 20, 10_000),
            &config(0.4, 25, 12_000),
            &settings,
        );
        assert_eq!(out.failure_rate_threshold, Some(0.4));
        assert_eq!(out.minimum_calls, 25);
        assert_eq!(out.wait, WaitConfig::Fixed { ms: 12_000 });
        assert!(notes.is_empty(), "{notes:?}");
    }

    #[test]
    fn a_large_step_is_cut_to_the_maximum_step_and_the_bounds() {
        let mut settings = AutoTuneSettings {
            max_step: 0.5,
            ..AutoTuneSettings::default()
        };
        settings.bounds.wait_ms = [1_000, 15_000];
        let (out, notes) = clamp(
            &config(0.5, 20, 10_000),
            &config(0.05, 200, 60_000),
            &settings,
        );
        assert_eq!(out.failure_rate_threshold, Some(0.25));
        assert_eq!(out.minimum_calls, 30);
        // +50 % would be 15 s, which the bounds allow; 60 s is cut to that.
        assert_eq!(out.wait, WaitConfig::Fixed { ms: 15_000 });
        assert_eq!(notes.len(), 3, "{notes:?}");
        assert!(notes[0].starts_with("failure_rate_threshold: 0.05 → 0.25 (maximum step)"));
    }

    #[test]
    fn minimum_calls_never_exceed_a_count_window_after_clamping() {
        let settings = AutoTuneSettings::default();
        let mut current = config(0.5, 250, 10_000);
        current.window = WindowConfig::Count { calls: 400 };
        let mut suggested = config(0.5, 250, 10_000);
        suggested.window = WindowConfig::Count { calls: 100 };
        let (out, notes) = clamp(&current, &suggested, &settings);
        assert_eq!(out.window, WindowConfig::Count { calls: 200 });
        assert_eq!(out.minimum_calls, 200);
        assert!(crate::configs::check(&out).is_ok());
        assert_eq!(notes.len(), 2, "{notes:?}");
    }

    #[test]
    fn the_bounds_hold_even_within_a_step() {
        let mut settings = AutoTuneSettings::default();
        settings.bounds.failure_rate_threshold = [0.3, 0.6];
        let (out, notes) = clamp(
            &config(0.4, 20, 10_000),
            &config(0.25, 20, 10_000),
            &settings,
        );
        assert_eq!(out.failure_rate_threshold, Some(0.3));
        assert_eq!(notes, vec!["failure_rate_threshold: 0.25 → 0.3 (bounds)"]);
    }

    #[test]
    fn the_last_failure_policy_and_the_manual_mode_are_kept() {
        let settings = AutoTuneSettings::default();
        let mut current = config(0.5, 20, 10_000);
        current.mode = Some(protocol::BreakerMode::MetricsOnly);
        let mut suggested = config(0.5, 20, 10_000);
        suggested.failure_rate_threshold = None;
        let (out, notes) = clamp(&current, &suggested, &settings);
        assert_eq!(out.failure_rate_threshold, Some(0.5));
        assert_eq!(out.mode, Some(protocol::BreakerMode::MetricsOnly));
        assert_eq!(notes.len(), 1);
        assert!(same_thresholds(&current, &out));
    }

    #[test]
    fn settings_out_of_range_name_their_path() {
        let mut settings = AutoTuneSettings::default();
        settings.bounds.failure_rate_threshold = [0.6, 0.3];
        assert_eq!(
            settings.check().unwrap_err().0,
            "$.bounds.failure_rate_threshold"
        );
        let settings = AutoTuneSettings {
            canary_ms: 10,
            ..AutoTuneSettings::default()
        };
        assert_eq!(settings.check().unwrap_err().0, "$.canary_ms");
    }
}
