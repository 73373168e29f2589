//! Timeline layout and rendering: lanes, clipping, no-data stretches, hover text, escaping,
//! text sizes.

use protocol::{State, StateInterval, Timeline, TimelineLane, Trigger};

use super::{hatch_lines, layout, render, shorten_middle};

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
                first_report_ms: Some(FROM_MS - 10 * MINUTE),
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
        "Open: 2026-11-22 13:10:00 → 2026-11-22 13:11:00 UTC (1m) · \
         tripped on failure rate: 62 % ≥ 50 % · config v3"
    );
    assert!(lanes[0].segments[3].tooltip.contains("→ now"));
}

#[test]
fn intervals_outside_the_range_leave_no_data() {
    let mut timeline = timeline(&["a"]);
    timeline.lanes[0].intervals = vec![interval(State::Open, -30, Some(-20))];
    let segments = &layout(&timeline)[0].segments;
    assert_eq!(segments.len(), 1);
    assert_eq!(segments[0].state, None);
    assert_eq!(
        (segments[0].from_fraction, segments[0].to_fraction),
        (0.0, 1.0)
    );
}

#[test]
fn before_the_first_report_there_is_no_data() {
    let mut timeline = timeline(&["late", "early"]);
    // `late` first reported 6 minutes into the range: its lane starts there, Closed.
    timeline.lanes[0].first_report_ms = Some(FROM_MS + 6 * MINUTE);
    timeline.lanes[0].intervals = vec![
        interval(State::Closed, 6, Some(9)),
        interval(State::Open, 9, None),
    ];
    let lanes = layout(&timeline);
    let late = &lanes[0].segments;
    let states: Vec<Option<State>> = late.iter().map(|segment| segment.state).collect();
    assert_eq!(states, [None, Some(State::Closed), Some(State::Open)]);
    assert_eq!(
        (late[0].start_ms, late[0].end_ms),
        (FROM_MS, FROM_MS + 6 * MINUTE)
    );
    assert!((late[0].to_fraction - 6.0 / 15.0).abs() < 1e-9);
    assert_eq!(late[0].key(), "no_data");
    assert_eq!(
        late[0].tooltip,
        "No data: 2026-11-22 13:05:00 → 2026-11-22 13:11:00 UTC (6m) · \
         before the instance's first report"
    );
    // The segments cover the range once, in order.
    for lane in &lanes {
        assert_eq!(lane.segments[0].from_fraction, 0.0);
        assert_eq!(lane.segments.last().unwrap().to_fraction, 1.0);
        assert!(
            lane.segments
                .windows(2)
                .all(|pair| pair[0].end_ms == pair[1].start_ms)
        );
    }
    // `early` reported before the range: no gap.
    assert!(
        lanes[1]
            .segments
            .iter()
            .all(|segment| segment.state.is_some())
    );

    // Drawn: a grey box, hatched, and a legend entry for it.
    let svg = render(&timeline, 880, None).svg;
    let no_data_fill = "fill=\"#333C48\"";
    assert_eq!(
        svg.matches(no_data_fill).count(),
        2,
        "legend swatch and one stretch"
    );
    assert!(svg.contains("stroke=\"#7D8896\""), "hatching");
    assert!(svg.contains(">\nno data\n<"), "the legend names it");
}

#[test]
fn long_instance_names_keep_their_ends() {
    assert_eq!(
        shorten_middle("checkout-7f9c8d6b5-x2k4p", 18),
        "checkout-…b5-x2k4p"
    );
    assert_eq!(shorten_middle("checkout-1", 18), "checkout-1");
    assert_eq!(shorten_middle("ééééé", 3), "é…é");
}

#[test]
fn hatching_stays_inside_its_box() {
    let lines = hatch_lines((10, 20), (60, 40), 7);
    assert!(!lines.is_empty());
    for ((xa, ya), (xb, yb)) in lines {
        for (x, y) in [(xa, ya), (xb, yb)] {
            assert!((10..=60).contains(&x) && (20..=40).contains(&y), "{x},{y}");
        }
        assert_eq!(xa + ya, xb + yb, "a 45° line");
    }
    assert!(hatch_lines((10, 20), (10, 40), 7).is_empty());
}

#[test]
fn renders_lanes_names_and_legend_escaped() {
    let rendered = render(
        &timeline(&["<img src=x onerror=alert(1)>", "checkout-2", "checkout-3"]),
        880,
        None,
    );
    let svg = &rendered.svg;
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    assert!(!svg.contains("<img"), "{svg}");
    // Cut in the middle to fit left of the lanes, escaped.
    assert!(svg.contains(">\n&lt;img src=…lert(1)&gt;\n<"), "{svg}");
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
    let rendered = render(&timeline(&["a"]), 880, None);
    let (left, right) = crate::geometry::plot_x_span(880);
    assert_eq!(f64::from(rendered.plot_left), left);
    assert_eq!(f64::from(rendered.plot_right), right);
}
