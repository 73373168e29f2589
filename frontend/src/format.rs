//! What a tile says, as plain strings: state labels, rates, call volume, ages, clock times.
//!
//! Pure and host-tested, so the components only bind text to elements.

use protocol::State;

use crate::board::Entry;

/// Everything a tile shows, computed from a board entry and the current time.
#[derive(Clone, Debug, PartialEq)]
pub struct TileView {
    /// `closed`, `open` or `half_open`: the `data-state` hook and the CSS class.
    pub state_key: &'static str,
    /// The visible state text.
    pub state_text: &'static str,
    /// E.g. `12.5 %` or `–` without calls.
    pub failure_rate: String,
    /// E.g. `50 %`, or `–` when the breaker reports no threshold.
    pub threshold: String,
    /// Whether the failure rate is at or above the threshold.
    pub over_threshold: bool,
    /// E.g. `1.2k/s`.
    pub calls_per_s: String,
    /// E.g. `open for 3m 12s`.
    pub since: String,
    /// E.g. `2 of 3 instances open` or `3 instances`.
    pub instances: String,
    /// Why it tripped, when known and the breaker is not closed.
    pub trigger: Option<String>,
}

pub fn tile_view(entry: &Entry, now_ms: i64) -> TileView {
    let summary = &entry.summary;
    let over_threshold = match (summary.failure_rate, summary.failure_rate_threshold) {
        (Some(rate), Some(threshold)) => rate >= threshold,
        _ => false,
    };
    let n_instances = summary.instances.len();
    let instances = if summary.open_instances > 0 {
        format!(
            "{} of {} instances open",
            summary.open_instances,
            n_instances.max(1)
        )
    } else if n_instances == 1 {
        "1 instance".to_string()
    } else {
        format!("{n_instances} instances")
    };
    let trigger = match (&entry.last_trigger, summary.state) {
        (Some(trigger), State::Open | State::HalfOpen) => Some(trigger_text(
            &trigger.kind,
            trigger.value,
            trigger.threshold,
        )),
        _ => None,
    };
    TileView {
        state_key: summary.state.as_str(),
        state_text: state_text(summary.state),
        failure_rate: summary
            .failure_rate
            .map(percent)
            .unwrap_or_else(|| "–".into()),
        threshold: summary
            .failure_rate_threshold
            .map(percent)
            .unwrap_or_else(|| "–".into()),
        over_threshold,
        calls_per_s: calls_per_s(summary.calls_per_s),
        since: format!(
            "{} for {}",
            state_text(summary.state).to_lowercase(),
            age(now_ms - summary.since_ms)
        ),
        instances,
        trigger,
    }
}

pub fn state_text(state: State) -> &'static str {
    match state {
        State::Closed => "CLOSED",
        State::Open => "OPEN",
        State::HalfOpen => "HALF-OPEN",
    }
}

/// A rate 0–1 as a percentage with at most one decimal.
pub fn percent(rate: f64) -> String {
    let value = rate * 100.0;
    if (value - value.round()).abs() < 0.05 {
        format!("{value:.0} %")
    } else {
        format!("{value:.1} %")
    }
}

pub fn calls_per_s(rate: f64) -> String {
    if rate >= 10_000.0 {
        format!("{:.0}k/s", rate / 1000.0)
    } else if rate >= 1000.0 {
        format!("{:.1}k/s", rate / 1000.0)
    } else if rate >= 10.0 || rate == 0.0 {
        format!("{rate:.0}/s")
    } else {
        format!("{rate:.1}/s")
    }
}

/// A duration in ms as its two largest units: `45s`, `3m 12s`, `2h 5m`, `3d 4h`.
pub fn age(duration_ms: i64) -> String {
    let seconds = duration_ms.max(0) / 1000;
    let (days, hours, minutes) = (seconds / 86_400, seconds / 3600 % 24, seconds / 60 % 60);
    if days > 0 {
        format!("{days}d {hours}h")
    } else if hours > 0 {
        format!("{hours}h {minutes}m")
    } else if minutes > 0 {
        format!("{minutes}m {}s", seconds % 60)
    } else {
        format!("{seconds}s")
    }
}

fn trigger_text(kind: &str, value: f64, threshold: f64) -> String {
    let is_rate = kind.ends_with("_rate");
    let show = |number: f64| {
        if is_rate {
            percent(number)
        } else {
            format!("{number}")
        }
    };
    format!(
        "tripped on {}: {} ≥ {}",
        kind.replace('_', " "),
        show(value),
        show(threshold)
    )
}

/// A UTC clock time for a chart axis: `HH:MM`, with the date (`MM-DD HH:MM`) when `with_date`.
pub fn clock_utc(t_ms: i64, with_date: bool) -> String {
    let seconds = t_ms.div_euclid(1000);
    let (days, second_of_day) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    let hh_mm = format!("{:02}:{:02}", second_of_day / 3600, second_of_day / 60 % 60);
    if with_date {
        let (_, month, day) = civil_from_days(days);
        format!("{month:02}-{day:02} {hh_mm}")
    } else {
        hh_mm
    }
}

/// Days since 1970-01-01 to (year, month, day), after Howard Hinnant's `civil_from_days`.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_well() {
        assert_eq!(percent(0.5), "50 %");
        assert_eq!(percent(0.125), "12.5 %");
        assert_eq!(calls_per_s(0.0), "0/s");
        assert_eq!(calls_per_s(2.5), "2.5/s");
        assert_eq!(calls_per_s(1234.0), "1.2k/s");
        assert_eq!(calls_per_s(52_000.0), "52k/s");
        assert_eq!(age(45_900), "45s");
        assert_eq!(age(192_000), "3m 12s");
        assert_eq!(age(7_500_000), "2h 5m");
        assert_eq!(age(-5), "0s");
        assert_eq!(
            trigger_text("failure_rate", 0.62, 0.5),
            "tripped on failure rate: 62 % ≥ 50 %"
        );
        assert_eq!(
            trigger_text("consecutive_failures", 5.0, 5.0),
            "tripped on consecutive failures: 5 ≥ 5"
        );
    }

    #[test]
    fn clock_times_are_utc() {
        // 2026-11-22T13:05:09Z
        let t_ms = 1_795_352_709_000;
        assert_eq!(clock_utc(t_ms, false), "13:05");
        assert_eq!(clock_utc(t_ms, true), "11-22 13:05");
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
    }
}
