//! Timeline layout and rendering: lanes, clipping, hover text, escaping.

use protocol::{State, StateInterval, Timeline, TimelineLane, Trigger};

use super::{layout, render};

const FROM_MS: i64 = 1_795_352_700_000; // 2026-11-22T13:05:00Z
const MINUTE: i64 = 60_000;

fn interval(state: State, start_min: i64, end_min: Option<i64>) -> StateInterval {
    StateInterval {
        state,
        start_ms: FROM_MS + start_min * MINUTE,
        end_ms: end_min.map(|end| FROM_MS + end * MINUTE),
        trigger: (state == State::Open).then(|| Trigger {
            kind: "failure_rate".into(),
            value: 0.62,
            threshold: 0.5,
        }),
        config_version: 3,
    }
}

fn timeline(instances: &[&str]) -> Timeline {
    Timeline {
        service: "checkout".into(),
        breaker: "payments-api".into(),
        from_ms: FROM_MS,
        to_ms: FROM_MS + 15 * MINUTE,
        lanes: instances
            .iter()
            .map(|instance| TimelineLane {
                instance: instance.to_string(),
                intervals: vec![
                    interval(State::Closed, -10, Some(5)),
                    interval(State::Open, 5, Some(6)),
                    interval(State::HalfOpen, 6, Some(7)),
                    interval(State::Closed, 7, None),
                ],
            })
            .collect(),
    }
}

#[test]
fn one_lane_per_instance_with_clipped_segments() {
    let lanes = layout(&timeline(&["checkout-1", "checkout-2"]));
    assert_eq!(lanes.len(), 2);
    let segments = &lanes[0].segments;
    assert_eq!(segments.len(), 4);
    assert_eq!(segments[0].start_ms, FROM_MS, "clipped to the range");
    assert_eq!(segments[0].from_fraction, 0.0);
    assert!((segments[1].from_fraction - 5.0 / 15.0).abs() < 1e-9);
    assert!(segments[3].ongoing);
    assert_eq!(segments[3].to_fraction, 1.0);
    assert!(!segments[1].ongoing);
}

#[test]
fn hover_text_has_times_and_the_value_that_tripped() {
    let lanes = layout(&timeline(&["checkout-1"]));
    assert_eq!(
        lanes[0].segments[1].tooltip,
        "Open: 2026-11-22 13:10:00 → 2026-11-22 13:11:00 UTC (1m 0s) · \
         tripped on failure rate: 62 % ≥ 50 % · config v3"
    );
    assert!(lanes[0].segments[3].tooltip.contains("→ now"));
}

#[test]
fn intervals_outside_the_range_are_dropped() {
    let mut timeline = timeline(&["a"]);
    timeline.lanes[0].intervals = vec![interval(State::Open, -30, Some(-20))];
    assert!(layout(&timeline)[0].segments.is_empty());
}

#[test]
fn renders_lanes_names_and_legend_escaped() {
    let rendered = render(
        &timeline(&["<img src=x onerror=alert(1)>", "checkout-2", "checkout-3"]),
        880,
    );
    let svg = &rendered.svg;
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    assert!(!svg.contains("<img"), "{svg}");
    assert!(svg.contains("&lt;img src=x onerror="));
    for text in [
        "checkout-2",
        "checkout-3",
        "Half-Open",
        "time (UTC)",
        "state per instance",
    ] {
        assert!(svg.contains(text), "no {text:?}");
    }
    // Four segments per lane, each a filled rectangle in its state's colour.
    assert!(svg.matches("fill=\"#D55E00\"").count() >= 3);
    assert!(rendered.plot_left < rendered.plot_right);
    assert!(rendered.plot_top < rendered.plot_bottom);
    assert!(rendered.plot_bottom as u32 <= rendered.height);
}

#[test]
fn plot_area_matches_the_shared_geometry() {
    let rendered = render(&timeline(&["a"]), 880);
    let (left, right) = crate::geometry::plot_x_span(880);
    assert_eq!(f64::from(rendered.plot_left), left);
    assert_eq!(f64::from(rendered.plot_right), right);
}
