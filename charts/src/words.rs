//! What the dashboard and the server's messages say alike: state names, durations, and a
//! trigger's value against its threshold (`failure rate: 62 % ≥ 50 %`), so an alert in Slack
//! reads as the tile and the timeline do.

use protocol::{State, Trigger};

use crate::units;

/// A state's name as the page, the legend and messages write it.
pub fn state_label(state: State) -> &'static str {
    match state {
        State::Closed => "Closed",
        State::Open => "Open",
        State::HalfOpen => "Half-Open",
    }
}

/// A duration in ms as its two largest units, a zero second left out: `45s`, `3m 12s`, `5m`,
/// `2h 5m`, `3d 4h`.
pub fn duration(duration_ms: i64) -> String {
    let seconds = duration_ms.max(0) / 1000;
    let (days, hours, minutes) = (seconds / 86_400, seconds / 3600 % 24, seconds / 60 % 60);
    let two = |big: i64, big_unit: &str, small: i64, small_unit: &str| {
        if small == 0 {
            format!("{big}{big_unit}")
        } else {
            format!("{big}{big_unit} {small}{small_unit}")
        }
    };
    if days > 0 {
        two(days, "d", hours, "h")
    } else if hours > 0 {
        two(hours, "h", minutes, "m")
    } else if minutes > 0 {
        two(minutes, "m", seconds % 60, "s")
    } else {
        format!("{seconds}s")
    }
}

/// A value against its threshold, by the kind of either a breaker's trigger or an alert rule's:
/// `failure rate: 62 % ≥ 50 %`, `consecutive failures: 5 ≥ 5`, `not Closed for: 6m 40s ≥ 5m`,
/// `openings: 3 ≥ 3`. Kinds that carry no threshold say what happened: `probe succeeded`,
/// `manual`, `config version 7`.
pub fn trigger(kind: &str, value: f64, threshold: f64) -> String {
    let rate = |label: &str| {
        format!(
            "{label}: {} ≥ {}",
            units::percent(value),
            units::percent(threshold)
        )
    };
    let count = |label: &str| format!("{label}: {} ≥ {}", number(value), number(threshold));
    match kind {
        "failure_rate" => rate("failure rate"),
        "slow_call_rate" => rate("slow-call rate"),
        "consecutive_failures" => count("consecutive failures"),
        "open_for_ms" => format!(
            "not Closed for: {} ≥ {}",
            duration(value as i64),
            duration(threshold as i64)
        ),
        "openings" => count("openings"),
        "open_instances" => count("Open instances"),
        "false_trips" => format!(
            "false trips: {} (allowed {})",
            number(value),
            number(threshold)
        ),
        "auto_canary" | "auto_promoted" | "auto_applied" => {
            format!("config version {}", number(value))
        }
        "wait_elapsed" | "probe_succeeded" | "probe_failed" | "half_open_timeout" | "manual"
        | "canary_silent" | "unknown" => kind.replace('_', " "),
        _ => format!(
            "{}: {} (threshold {})",
            kind.replace('_', " "),
            number(value),
            number(threshold)
        ),
    }
}

/// What started a state: `tripped on failure rate: 62 % ≥ 50 %`, `probe succeeded`, `manual`.
pub fn trigger_text(trigger: &Trigger) -> String {
    match trigger.kind.as_str() {
        "failure_rate" | "slow_call_rate" | "consecutive_failures" => format!(
            "tripped on {}",
            self::trigger(&trigger.kind, trigger.value, trigger.threshold)
        ),
        kind => self::trigger(kind, trigger.value, trigger.threshold),
    }
}

/// Counts print without decimals; anything else with at most three.
fn number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{value:.0}")
    } else {
        let text = format!("{value:.3}");
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_the_page_writes_them() {
        assert_eq!(duration(45_900), "45s");
        assert_eq!(duration(192_000), "3m 12s");
        assert_eq!(duration(300_000), "5m");
        assert_eq!(duration(7_500_000), "2h 5m");
        assert_eq!(duration(7_200_000), "2h");
        assert_eq!(duration(3 * 86_400_000 + 4 * 3_600_000), "3d 4h");
        assert_eq!(duration(-5), "0s");
    }

    #[test]
    fn triggers_say_value_against_threshold_in_the_page_s_units() {
        for (kind, value, threshold, text) in [
            ("failure_rate", 0.55, 0.5, "failure rate: 55 % ≥ 50 %"),
            (
                "slow_call_rate",
                0.125,
                0.1,
                "slow-call rate: 12.5 % ≥ 10 %",
            ),
            (
                "consecutive_failures",
                5.0,
                5.0,
                "consecutive failures: 5 ≥ 5",
            ),
            (
                "open_for_ms",
                400_000.0,
                300_000.0,
                "not Closed for: 6m 40s ≥ 5m",
            ),
            ("openings", 3.0, 3.0, "openings: 3 ≥ 3"),
            ("open_instances", 2.0, 2.0, "Open instances: 2 ≥ 2"),
            ("false_trips", 2.0, 1.0, "false trips: 2 (allowed 1)"),
            ("auto_promoted", 7.0, 0.0, "config version 7"),
            ("probe_succeeded", 0.0, 0.0, "probe succeeded"),
            (
                "something_new",
                0.25,
                2.0,
                "something new: 0.25 (threshold 2)",
            ),
        ] {
            assert_eq!(trigger(kind, value, threshold), text, "{kind}");
        }
    }

    #[test]
    fn a_trip_says_it_tripped() {
        let trip = Trigger {
            kind: "failure_rate".into(),
            value: 0.62,
            threshold: 0.5,
        };
        assert_eq!(trigger_text(&trip), "tripped on failure rate: 62 % ≥ 50 %");
        let manual = Trigger {
            kind: "manual".into(),
            value: 0.0,
            threshold: 0.0,
        };
        assert_eq!(trigger_text(&manual), "manual");
    }
}
