use protocol::{OutcomeCounts, Series, SeriesPoint};

use super::{render, segments, time_ticks};

fn series(service: &str, breaker: &str, rates: &[Option<f64>]) -> Series {
    let from_ms = 1_795_352_700_000; // 2026-11-22T13:05:00Z
    let step_ms = 60_000;
    Series {
        service: service.into(),
        breaker: breaker.into(),
        from_ms,
        to_ms: from_ms + 15 * step_ms,
        step_ms,
        failure_rate_threshold: Some(0.5),
        points: rates
            .iter()
            .enumerate()
            .map(|(idx, &failure_rate)| SeriesPoint {
                t_ms: from_ms + idx as i64 * step_ms,
                counts: OutcomeCounts::default(),
                failure_rate,
                ..SeriesPoint::default()
            })
            .collect(),
    }
}

#[test]
fn chart_has_rate_line_threshold_and_time_axis() {
    let svg = render(&series(
        "payments",
        "card-db",
        &[Some(0.1), Some(0.2), Some(0.7), Some(0.9)],
    ));
    assert!(svg.starts_with("<svg"), "{svg}");
    assert!(svg.trim_end().ends_with("</svg>"));
    assert!(svg.contains("payments / card-db"));
    assert!(svg.contains("threshold 50 %"));
    assert!(svg.contains("time (UTC)"));
    for label in ["13:06", "13:08", "13:20"] {
        assert!(
            svg.contains(&format!("\n{label}\n")),
            "no clock label {label} in {svg}"
        );
    }
    assert!(
        svg.contains("#4CB3FF") || svg.to_lowercase().contains("#4cb3ff"),
        "no rate line"
    );
    assert!(!svg.contains("no calls judged"));
}

#[test]
fn untrusted_names_are_escaped() {
    let svg = render(&series(
        "<script>alert(1)</script>",
        "a\"b&c'd",
        &[Some(0.1)],
    ));
    assert!(!svg.contains("<script"), "{svg}");
    assert!(svg.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(svg.contains("a&quot;b&amp;c&apos;d"));
}

#[test]
fn empty_series_says_so() {
    let svg = render(&series("s", "b", &[None, None]));
    assert!(svg.contains("no calls judged in this range"));
}

#[test]
fn gaps_split_the_line() {
    let split = segments(&series(
        "s",
        "b",
        &[Some(0.1), None, Some(0.3), Some(1.5), None],
    ));
    let rates: Vec<Vec<f64>> = split
        .iter()
        .map(|run| run.iter().map(|point| point.1).collect())
        .collect();
    assert_eq!(rates, vec![vec![0.1], vec![0.3, 1.0]]);
}

#[test]
fn ticks_fall_on_round_minutes() {
    let from_ms = 1_795_352_709_000; // 13:05:09
    let minute = 60_000;
    let ticks = time_ticks(from_ms, from_ms + 15 * minute, 8);
    assert_eq!(ticks.len(), 8);
    assert!(ticks.iter().all(|t_ms| t_ms % (2 * minute) == 0));
    assert_eq!(ticks[0], 1_795_352_760_000); // 13:06
    let day = 1440 * minute;
    assert!(
        time_ticks(0, 30 * day, 8)
            .iter()
            .all(|t_ms| t_ms % day == 0)
    );
}
