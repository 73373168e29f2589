//! Snapshot-style and property tests of the series charts: what they say, where lines break,
//! escaping of untrusted names, and that every value lands inside the plot.

use proptest::prelude::*;
use protocol::{OutcomeCounts, Series, SeriesPoint};

use crate::series_chart::{Unit, plot, runs};
use crate::{Kind, Options, render};

const FROM_MS: i64 = 1_795_352_700_000; // 2026-11-22T13:05:00Z
const STEP_MS: i64 = 60_000;

fn series(service: &str, breaker: &str, rates: &[Option<f64>]) -> Series {
    Series {
        service: service.into(),
        breaker: breaker.into(),
        from_ms: FROM_MS,
        to_ms: FROM_MS + 15 * STEP_MS,
        step_ms: STEP_MS,
        failure_rate_threshold: Some(0.5),
        points: rates
            .iter()
            .enumerate()
            .map(|(idx, &rate)| SeriesPoint {
                t_ms: FROM_MS + idx as i64 * STEP_MS,
                counts: OutcomeCounts {
                    success: 600,
                    failure: 60,
                    rejected: 6,
                    ..OutcomeCounts::default()
                },
                failure_rate: rate,
                slow_call_rate: rate.map(|rate| rate / 2.0),
                p50_ms: rate.map(|_| 20.0),
                p95_ms: rate.map(|_| 100.0),
                p99_ms: rate.map(|_| 500.0),
            })
            .collect(),
    }
}

#[track_caller]
fn check_contains(svg: &str, wanted: &[&str]) {
    assert!(svg.starts_with("<svg"), "{svg}");
    assert!(svg.trim_end().ends_with("</svg>"));
    for text in wanted {
        assert!(svg.contains(text), "no {text:?} in {svg}");
    }
}

#[test]
fn failure_rate_has_line_threshold_legend_and_time_axis() {
    let svg = render(
        Kind::FailureRate,
        &series("payments", "card-db", &[Some(0.1), Some(0.2), Some(0.7)]),
        &Options::default(),
    );
    check_contains(
        &svg,
        &[
            "payments / card-db — failure rate",
            "threshold 50 %",
            "time (UTC)",
            "\n13:06\n",
            "\n13:20\n",
            "50%",
            "#56B4E9",
        ],
    );
    assert!(!svg.contains("no calls judged"));
}

#[test]
fn slow_call_rate_draws_the_configured_threshold() {
    let options = Options {
        slow_call_rate_threshold: Some(0.8),
        ..Options::default()
    };
    let svg = render(
        Kind::SlowCallRate,
        &series("s", "b", &[Some(0.1), Some(0.3)]),
        &options,
    );
    check_contains(&svg, &["slow-call rate", "threshold 80 %"]);
    let without = render(
        Kind::SlowCallRate,
        &series("s", "b", &[Some(0.1)]),
        &Options::default(),
    );
    assert!(!without.contains("threshold"));
}

#[test]
fn volume_is_calls_per_second_by_outcome() {
    let svg = render(
        Kind::Volume,
        &series("s", "b", &[Some(0.1), Some(0.1)]),
        &Options::default(),
    );
    check_contains(
        &svg,
        &["success", "failure", "timeout", "rejected", "calls/s", "/s"],
    );
    let plot = plot(
        Kind::Volume,
        &series("s", "b", &[Some(0.1)]),
        &Options::default(),
    );
    // 600 successes in a 60 s step are 10 calls/s.
    assert_eq!(plot.lines[0].runs, vec![vec![(FROM_MS, 10.0)]]);
    assert_eq!(plot.y_unit, Unit::PerSecond);
}

#[test]
fn latency_has_three_percentiles_in_ms() {
    let svg = render(
        Kind::Latency,
        &series("s", "b", &[Some(0.1), Some(0.1)]),
        &Options::default(),
    );
    check_contains(&svg, &["p50", "p95", "p99", "latency (ms)", " ms"]);
}

#[test]
fn untrusted_names_are_escaped() {
    for kind in Kind::ALL {
        let svg = render(
            kind,
            &series("<script>alert(1)</script>", "a\"b&c'd", &[Some(0.1)]),
            &Options::default(),
        );
        assert!(!svg.contains("<script"), "{svg}");
        assert!(svg.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(svg.contains("a&quot;b&amp;c&apos;d"));
    }
}

#[test]
fn empty_series_says_so() {
    let svg = render(
        Kind::FailureRate,
        &series("s", "b", &[None, None]),
        &Options::default(),
    );
    assert!(svg.contains("no calls judged in this range"));
}

#[test]
fn gaps_split_the_line() {
    let points = series("s", "b", &[Some(0.1), None, Some(0.3), Some(1.5), None]).points;
    let split = runs(&points, &|point| point.failure_rate);
    let rates: Vec<Vec<f64>> = split
        .iter()
        .map(|run| run.iter().map(|point| point.1).collect())
        .collect();
    assert_eq!(rates, vec![vec![0.1], vec![0.3, 1.5]]);
}

#[test]
fn kinds_round_trip_their_wire_names() {
    for kind in Kind::ALL {
        assert_eq!(Kind::parse(kind.as_str()), Some(kind));
    }
    assert_eq!(Kind::parse("pie"), None);
}

proptest! {
    /// Whatever the data, every drawn value lies within the y range, lines are in time order,
    /// and rendering yields one complete SVG document.
    #[test]
    fn values_stay_inside_the_plot(
        rates in proptest::collection::vec(proptest::option::of(-1.0f64..3.0), 0..40),
        counts in proptest::collection::vec(0u64..1_000_000, 0..40),
        kind_idx in 0usize..4,
    ) {
        let mut series = series("s", "b", &rates);
        for (point, &count) in series.points.iter_mut().zip(&counts) {
            point.counts.success = count;
            point.p99_ms = Some(count as f64);
        }
        let kind = Kind::ALL[kind_idx];
        let plot = plot(kind, &series, &Options::default());
        for line in &plot.lines {
            for run in &line.runs {
                prop_assert!(!run.is_empty());
                prop_assert!(run.windows(2).all(|pair| pair[0].0 < pair[1].0));
                for &(_, value) in run {
                    prop_assert!((0.0..=plot.y_max).contains(&value), "{value} > {}", plot.y_max);
                }
            }
        }
        let svg = render(kind, &series, &Options::default());
        prop_assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    }
}
