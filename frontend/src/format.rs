//! What a tile says, as plain strings: state labels, rates, call volume, ages, clock times.
//!
//! Pure and host-tested, so the components only bind text to elements.

use std::fmt::Write as _;

use charts::units;
use protocol::State;

use crate::board::Entry;

pub use charts::units::percent;

/// The sparkline's SVG viewBox size.
pub const SPARK_WIDTH: f64 = 120.0;
pub const SPARK_HEIGHT: f64 = 24.0;

/// Everything a tile shows, computed from a board entry. The one text that moves with the clock,
/// [`since`], is computed apart, so the clock's tick does not recompute whole tiles.
#[derive(Clone, Debug, PartialEq)]
pub struct TileView {
    /// `closed`, `open` or `half_open`: the `data-state` hook and the CSS class.
    pub state_key: &'static str,
    /// The visible state text.
    pub state_text: &'static str,
    /// A shape per state (✓ Closed, ◐ Half-Open, ✕ Open), so state never rests on colour alone.
    pub state_icon: &'static str,
    /// E.g. `12.5 %`. Without calls (no call is judged while Open) the rate that tripped the
    /// breaker, when that was its failure rate; else `–`.
    pub failure_rate: String,
    /// `failure rate`, or `failure rate at trip` when [`TileView::failure_rate`] is the
    /// tripping value.
    pub failure_rate_label: &'static str,
    /// Whether [`TileView::failure_rate`] is the value that tripped the breaker.
    pub failure_rate_at_trip: bool,
    /// E.g. `50 %` (the threshold the tripping value crossed, when that is shown), or `–` when
    /// the breaker reports no threshold.
    pub threshold: String,
    /// Whether the failure rate is at or above the threshold.
    pub over_threshold: bool,
    /// E.g. `1.2k/s`.
    pub calls_per_s: String,
    /// E.g. `3 %`; without calls, the slow-call rate that tripped the breaker, when it was
    /// that; else `–`.
    pub slow_call_rate: String,
    /// `slow`, or `slow at trip`.
    pub slow_label: &'static str,
    /// Whether [`TileView::slow_call_rate`] is the value that tripped the breaker.
    pub slow_call_rate_at_trip: bool,
    /// E.g. `200 ms`, or `–` without calls.
    pub p99: String,
    /// The sparkline's `points` attribute.
    pub spark_points: String,
    pub state: State,
    /// When the breaker entered its state, for [`since`].
    pub since_ms: i64,
    /// E.g. `2 of 3 instances open` or `3 instances`.
    pub instances: String,
    /// What tripped it and when, while it is not Closed: `tripped on failure rate: 62 % ≥ 50 %
    /// at 13:05:09 UTC`, with the instance when there are several.
    pub trigger: Option<String>,
}

pub fn tile_view(entry: &Entry) -> TileView {
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
    // While not Closed, the last Closed → Open transition says what tripped it.
    let trip = entry
        .last_trip
        .as_ref()
        .filter(|_| summary.state != State::Closed);
    let trigger = trip.map(|trip| {
        let mut text = format!(
            "{} at {} UTC",
            charts::words::trigger_text(&trip.trigger),
            units::clock_seconds_utc(trip.at_ms)
        );
        if n_instances > 1 {
            text.push_str(&format!(" ({})", trip.instance));
        }
        text
    });
    // No call is judged while Open: without a current rate, the one that tripped it.
    let tripped_on = |kind: &str| trip.filter(|trip| trip.trigger.kind == kind);
    let failure_at_trip = tripped_on("failure_rate").filter(|_| summary.failure_rate.is_none());
    let slow_at_trip = tripped_on("slow_call_rate").filter(|_| summary.slow_call_rate.is_none());
    let (failure_rate, threshold, failure_rate_label) = match failure_at_trip {
        Some(trip) => (
            percent(trip.trigger.value),
            percent(trip.trigger.threshold),
            "failure rate at trip",
        ),
        None => (
            summary
                .failure_rate
                .map(percent)
                .unwrap_or_else(|| "–".into()),
            summary
                .failure_rate_threshold
                .map(percent)
                .unwrap_or_else(|| "–".into()),
            "failure rate",
        ),
    };
    let (slow_call_rate, slow_label) = match slow_at_trip {
        Some(trip) => (percent(trip.trigger.value), "slow at trip"),
        None => (
            summary
                .slow_call_rate
                .map(percent)
                .unwrap_or_else(|| "–".into()),
            "slow",
        ),
    };
    TileView {
        state_key: summary.state.as_str(),
        state_text: state_text(summary.state),
        state_icon: state_icon(summary.state),
        failure_rate,
        failure_rate_label,
        failure_rate_at_trip: failure_at_trip.is_some(),
        threshold,
        over_threshold: over_threshold || failure_at_trip.is_some(),
        calls_per_s: calls_per_s(summary.calls_per_s),
        slow_call_rate,
        slow_label,
        slow_call_rate_at_trip: slow_at_trip.is_some(),
        p99: summary.p99_ms.map(millis).unwrap_or_else(|| "–".into()),
        spark_points: spark_points(entry.spark.values.iter().copied()),
        state: summary.state,
        since_ms: summary.since_ms,
        instances,
        trigger,
    }
}

/// E.g. `open for 3m 12s`.
pub fn since(state: State, since_ms: i64, now_ms: i64) -> String {
    format!(
        "{} for {}",
        state_text(state).to_lowercase(),
        age(now_ms - since_ms)
    )
}

pub fn state_text(state: State) -> &'static str {
    match state {
        State::Closed => "CLOSED",
        State::Open => "OPEN",
        State::HalfOpen => "HALF-OPEN",
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

/// A duration in ms as its two largest units, as alert messages write it too: `45s`, `3m 12s`,
/// `5m`, `2h 5m`, `3d 4h`.
pub fn age(duration_ms: i64) -> String {
    charts::words::duration(duration_ms)
}

/// A state's icon: a shape for each, so state never rests on colour alone.
pub fn state_icon(state: State) -> &'static str {
    match state {
        State::Closed => "✓",
        State::HalfOpen => "◐",
        State::Open => "✕",
    }
}

/// A latency: `8 ms`, `1.5 s`.
pub fn millis(ms: f64) -> String {
    if ms >= 1000.0 {
        format!("{:.1} s", ms / 1000.0)
    } else {
        format!("{ms:.0} ms")
    }
}

/// A UTC timestamp for tables: `2026-11-22 13:05:09`.
pub fn timestamp(t_ms: i64) -> String {
    units::timestamp_utc(t_ms)
}

/// Writes a non-negative `value` with one decimal, as `{:.1}` would: a tile's 120 points are
/// re-drawn on every update, and integer formatting is several times cheaper than float
/// formatting in wasm.
fn push_tenths(out: &mut String, value: f64) {
    let tenths = (value.max(0.0) * 10.0).round() as u64;
    let _ = write!(out, "{}.{}", tenths / 10, tenths % 10);
}

/// The sparkline's points in a `SPARK_WIDTH` × `SPARK_HEIGHT` box, newest at the right edge,
/// scaled to the largest value (a flat line at the bottom when all are zero).
pub fn spark_points(values: impl ExactSizeIterator<Item = f64>) -> String {
    let n_values = values.len();
    if n_values == 0 {
        return String::new();
    }
    let values: Vec<f64> = values
        .map(|value| {
            if value.is_finite() {
                value.max(0.0)
            } else {
                0.0
            }
        })
        .collect();
    let max = values.iter().copied().fold(0.0, f64::max);
    let step = SPARK_WIDTH / (crate::board::SPARK_SECONDS.max(2) - 1) as f64;
    let offset = SPARK_WIDTH - step * (n_values - 1) as f64;
    let mut points = String::with_capacity(n_values * 10);
    for (idx, value) in values.iter().enumerate() {
        let x = offset + step * idx as f64;
        let y = if max > 0.0 {
            SPARK_HEIGHT - 1.0 - (value / max) * (SPARK_HEIGHT - 2.0)
        } else {
            SPARK_HEIGHT - 1.0
        };
        if idx > 0 {
            points.push(' ');
        }
        push_tenths(&mut points, x);
        points.push(',');
        push_tenths(&mut points, y);
    }
    points
}

/// The detail page's link for a breaker: names are percent-encoded query values.
pub fn detail_href(service: &str, breaker: &str) -> String {
    format!(
        "/breaker?service={}&breaker={}",
        encode_component(service),
        encode_component(breaker)
    )
}

/// Percent-encodes everything but unreserved characters (RFC 3986), UTF-8 bytes included.
pub fn encode_component(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Builds `?a=1&b=2` from pairs (values encoded), or an empty string without pairs.
pub fn query_string(pairs: &[(&str, String)]) -> String {
    let joined: Vec<String> = pairs
        .iter()
        .map(|(key, value)| format!("{key}={}", encode_component(value)))
        .collect();
    if joined.is_empty() {
        String::new()
    } else {
        format!("?{}", joined.join("&"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_well() {
        assert_eq!(percent(0.5), "50 %");
        assert_eq!(calls_per_s(0.0), "0/s");
        assert_eq!(calls_per_s(2.5), "2.5/s");
        assert_eq!(calls_per_s(1234.0), "1.2k/s");
        assert_eq!(calls_per_s(52_000.0), "52k/s");
        assert_eq!(millis(8.0), "8 ms");
        assert_eq!(millis(1500.0), "1.5 s");
        assert_eq!(age(45_900), "45s");
        assert_eq!(age(192_000), "3m 12s");
        assert_eq!(age(7_500_000), "2h 5m");
        assert_eq!(age(-5), "0s");
    }

    #[test]
    fn every_state_has_text_and_a_distinct_icon() {
        let states = [State::Closed, State::HalfOpen, State::Open];
        let icons: std::collections::HashSet<_> = states.iter().map(|s| state_icon(*s)).collect();
        assert_eq!(icons.len(), 3);
        assert_eq!(state_text(State::HalfOpen), "HALF-OPEN");
    }

    #[test]
    fn tenths_read_as_float_formatting_does() {
        for idx in 0..2_000 {
            let value = idx as f64 * 0.0731;
            let mut out = String::new();
            super::push_tenths(&mut out, value);
            let parsed: f64 = out.parse().unwrap();
            assert!((parsed - value).abs() <= 0.05 + 1e-9, "{value} → {out}");
            assert_eq!(out.split('.').nth(1).map(str::len), Some(1), "{out}");
        }
    }

    #[test]
    fn sparkline_is_right_aligned_and_scaled() {
        assert_eq!(spark_points([].into_iter()), "");
        let points = spark_points([0.0, 5.0, 10.0].into_iter());
        let xy: Vec<(f64, f64)> = points
            .split(' ')
            .map(|pair| {
                let (x, y) = pair.split_once(',').unwrap();
                (x.parse().unwrap(), y.parse().unwrap())
            })
            .collect();
        assert_eq!(xy.len(), 3);
        assert_eq!(xy[2].0, SPARK_WIDTH);
        assert_eq!(xy[0].1, SPARK_HEIGHT - 1.0);
        assert_eq!(xy[2].1, 1.0);
        assert_eq!(
            spark_points([0.0, 0.0].into_iter())
                .matches(",23.0")
                .count(),
            2
        );
    }

    #[test]
    fn hostile_names_are_encoded_in_links() {
        assert_eq!(
            detail_href("a b", "<img src=x onerror=alert(1)>"),
            "/breaker?service=a%20b&breaker=%3Cimg%20src%3Dx%20onerror%3Dalert%281%29%3E"
        );
        assert_eq!(encode_component("é/&"), "%C3%A9%2F%26");
        assert_eq!(query_string(&[]), "");
        assert_eq!(query_string(&[("q", "a&b".into())]), "?q=a%26b");
    }
}
