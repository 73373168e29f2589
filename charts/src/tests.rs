//! Snapshot-style and property tests of the series charts: what they say, where lines break,
//! escaping of untrusted names, and that every value lands inside the plot.

use proptest::prelude::*;
use protocol::{OutcomeCounts, Series, SeriesPoint};

use crate::fonts::MIN_TEXT_PX;
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
            "50 %",
            "failure rate (%)",
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

/// Every `font-size` in `svg`, in SVG pixels.
fn font_sizes(svg: &str) -> Vec<f64> {
    svg.split("font-size=\"")
        .skip(1)
        .map(|rest| rest[..rest.find('"').unwrap()].parse().unwrap())
        .collect()
}

/// Every text of `svg`, drawn `svg_width` wide and shown `shown_width` CSS px wide, reads at
/// least 12 CSS px.
#[track_caller]
fn check_readable(svg: &str, svg_width: u32, shown_width: Option<f64>) {
    let sizes = font_sizes(svg);
    assert!(sizes.len() > 5, "{svg}");
    let css_per_svg_px = shown_width.map_or(1.0, |shown| shown / f64::from(svg_width));
    for size in sizes {
        assert!(
            size * css_per_svg_px >= MIN_TEXT_PX - 1e-6,
            "{size} SVG px shown at {css_per_svg_px} reads {} CSS px",
            size * css_per_svg_px
        );
    }
}

#[test]
fn every_text_reads_at_least_12_css_px_where_it_is_shown() {
    let rates = series("payments", "card-db", &[Some(0.1), Some(0.2), Some(0.7)]);
    let timeline = protocol::Timeline {
        service: "payments".into(),
        breaker: "card-db".into(),
        from_ms: FROM_MS,
        to_ms: FROM_MS + 15 * STEP_MS,
        lanes: vec![protocol::TimelineLane {
            instance: "payments-1".into(),
            intervals: vec![],
            first_report_ms: None,
        }],
    };
    let trace = protocol::ReplayTrace {
        t_ms: (0..5).map(|idx| FROM_MS + idx * STEP_MS).collect(),
        step_ms: STEP_MS,
        failure_rate: vec![Some(0.1); 5],
        current_refused: vec![0.0; 5],
        suggested_refused: vec![0.5; 5],
        anomalous: vec![false; 5],
    };
    // Drawn as wide as shown (the dashboard), at its own size (chart.svg), and scaled down
    // (880 SVG px in a 674 CSS px column, as a 1400 px wide page used to show them).
    for (width, shown_width) in [
        (674, Some(674.0)),
        (880, None),
        (880, Some(674.0)),
        (1200, Some(500.0)),
    ] {
        for kind in Kind::ALL {
            let options = Options {
                width,
                shown_width,
                ..Options::default()
            };
            check_readable(&render(kind, &rates, &options), width, shown_width);
        }
        let rendered = crate::timeline::render(&timeline, width, shown_width);
        check_readable(&rendered.svg, width, shown_width);
        check_readable(
            &crate::replay::render(&trace, width, shown_width),
            width,
            shown_width,
        );
    }
    // The empty chart's note too.
    let empty = render(
        Kind::Latency,
        &series("s", "b", &[None]),
        &Options::default(),
    );
    assert!(empty.contains("no latencies in this range"));
    check_readable(&empty, 880, None);
}

#[test]
fn time_ticks_say_the_date_when_the_range_spans_days() {
    let mut two_days = series("s", "b", &[Some(0.1)]);
    two_days.to_ms = FROM_MS + 2 * 86_400_000;
    let svg = render(Kind::FailureRate, &two_days, &Options::default());
    assert!(svg.contains("\nNov 23"), "{svg}");
    assert!(svg.contains("\nNov 24"), "{svg}");
    let one_hour = series("s", "b", &[Some(0.1)]);
    assert!(!render(Kind::FailureRate, &one_hour, &Options::default()).contains("Nov"));
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
