//! What the recommendations page and the detail page's lint say, as strings: a config's fields,
//! the difference between the current and the suggested config, the two back-tests side by side,
//! anomalous periods and the decision.

use protocol::{AnomalyPeriod, BacktestSummary, BreakerConfig, BreakerMode, Recommendation};
use protocol::{AutoTuneChange, AutoTuneSettings, WaitConfig, WindowConfig};

use crate::format;

/// One config field in both configs.
#[derive(Clone, Debug, PartialEq)]
pub struct DiffRow {
    pub name: &'static str,
    pub current: String,
    pub suggested: String,
    /// The two differ: the page highlights the row.
    pub differs: bool,
}

/// Every field of a config (the version aside) as `(name, value)` text.
pub fn config_fields(config: &BreakerConfig) -> Vec<(&'static str, String)> {
    let rate = |rate: Option<f64>| rate.map(format::percent).unwrap_or_else(|| "–".into());
    let ms = |ms: Option<u64>| {
        ms.map(|ms| format::millis(ms as f64))
            .unwrap_or_else(|| "–".into())
    };
    vec![
        (
            "mode",
            match config.mode {
                None | Some(BreakerMode::Automatic) => "automatic".into(),
                Some(BreakerMode::ForcedOpen) => "forced open".into(),
                Some(BreakerMode::Disabled) => "disabled".into(),
                Some(BreakerMode::MetricsOnly) => "metrics only".into(),
            },
        ),
        (
            "failure-rate threshold",
            rate(config.failure_rate_threshold),
        ),
        (
            "slow-call-rate threshold",
            rate(config.slow_call_rate_threshold),
        ),
        (
            "slow call",
            config
                .slow_call_duration_ms
                .map(|ms| format::millis(ms as f64))
                .unwrap_or_else(|| "60.0 s".into()),
        ),
        (
            "consecutive failures",
            config
                .consecutive_failures
                .map(|n| n.to_string())
                .unwrap_or_else(|| "–".into()),
        ),
        (
            "window",
            match config.window {
                WindowConfig::Count { calls } => format!("last {calls} calls"),
                WindowConfig::Time { seconds } => format!("last {seconds} s"),
            },
        ),
        ("minimum calls", config.minimum_calls.to_string()),
        (
            "wait in Open",
            match config.wait {
                WaitConfig::Fixed { ms } => format::millis(ms as f64),
                WaitConfig::Exponential {
                    initial_ms,
                    multiplier,
                    max_ms,
                    ..
                } => format!(
                    "{} × {multiplier}ⁿ up to {}",
                    format::millis(initial_ms as f64),
                    format::millis(max_ms as f64)
                ),
            },
        ),
        (
            "half-open probes",
            match config.half_open_rule {
                protocol::HalfOpenRule::Successes => format!(
                    "{} ({} to close)",
                    config.half_open_probes, config.half_open_successes
                ),
                protocol::HalfOpenRule::Rates => format!(
                    "{} (closes when their rates are below the thresholds)",
                    config.half_open_probes
                ),
            },
        ),
        ("half-open max wait", ms(config.half_open_max_wait_ms)),
        ("call timeout", ms(config.call_timeout_ms)),
    ]
}

/// The two configs field by field, each row marked when the values differ.
pub fn config_diff(current: &BreakerConfig, suggested: &BreakerConfig) -> Vec<DiffRow> {
    config_fields(current)
        .into_iter()
        .zip(config_fields(suggested))
        .map(|((name, current), (_, suggested))| DiffRow {
            name,
            differs: current != suggested,
            current,
            suggested,
        })
        .collect()
}

/// One back-test measure as text.
type Measure = fn(&BacktestSummary) -> String;

/// The two back-tests as `(measure, current, suggested)` rows.
pub fn backtest_rows(
    current: &BacktestSummary,
    suggested: &BacktestSummary,
) -> Vec<(&'static str, String, String)> {
    let rows: [(&'static str, Measure); 7] = [
        ("trips", |b| b.trips.to_string()),
        ("false trips", |b| b.false_trips.to_string()),
        ("caught / anomalies", |b| {
            format!("{} / {}", b.detected, b.anomalies)
        }),
        ("median detection delay", |b| {
            b.detection_delay_median_ms
                .map(|ms| format::millis(ms as f64))
                .unwrap_or_else(|| "–".into())
        }),
        ("lost good calls", |b| b.lost_good.to_string()),
        ("wasted calls", |b| b.wasted.to_string()),
        ("cost", |b| format!("{:.1}", b.cost)),
    ];
    rows.into_iter()
        .map(|(name, text)| (name, text(current), text(suggested)))
        .collect()
}

/// A confidence of 0–1 as a whole percentage: `72 %`.
pub fn confidence_text(confidence: f64) -> String {
    format!("{:.0} %", (confidence.clamp(0.0, 1.0) * 100.0))
}

/// `failures: 2026-11-22 13:05:00 → 13:17:00 (12 min)`.
pub fn anomaly_line(period: &AnomalyPeriod) -> String {
    let start = format::timestamp(period.start_ms);
    let end = format::timestamp(period.end_ms);
    // Only the time when both ends fall on the same day.
    let end = match (start.split_once(' '), end.split_once(' ')) {
        (Some((day_a, _)), Some((day_b, time))) if day_a == day_b => time.to_string(),
        _ => end,
    };
    let minutes = (period.end_ms - period.start_ms).max(0) as f64 / 60_000.0;
    let span = if minutes < 1.0 {
        format!("{:.0} s", minutes * 60.0)
    } else {
        format!("{minutes:.0} min")
    };
    format!("{}: {start} → {end} UTC ({span})", period.kind)
}

/// Who decided and when, and the config version accepting created; `None` while open.
pub fn decision_text(rec: &Recommendation) -> Option<String> {
    let mut text = match (&rec.decided_by, rec.decided_ms) {
        (Some(who), Some(at_ms)) => format!(
            "{} by {who} at {} UTC",
            rec.status,
            format::timestamp(at_ms)
        ),
        (Some(who), None) => format!("{} by {who}", rec.status),
        _ if rec.status == "open" => return None,
        _ => rec.status.to_string(),
    };
    if let Some(version) = rec.applied_version {
        text.push_str(&format!(": applied as config version {version}"));
    }
    Some(text)
}

/// The recommendations page with one recommendation open.
pub fn recommendation_href(id: i64) -> String {
    format!("/recommendations?id={id}")
}

/// Parses the page's `id` query value.
pub fn parse_id(text: Option<&str>) -> Option<i64> {
    text?.trim().parse().ok()
}

/// Auto mode's guardrails in a sentence.
pub fn auto_settings_line(settings: &AutoTuneSettings) -> String {
    let b = &settings.bounds;
    format!(
        "steps of at most ±{} per parameter; failure-rate threshold within {}–{}, wait within {}–{}; \
         canary {} on one instance, rolled back after more than {} false trip(s); at least {} \
         between changes; confidence at least {}; learns from {} day(s)",
        format::percent(settings.max_step),
        format::percent(b.failure_rate_threshold[0]),
        format::percent(b.failure_rate_threshold[1]),
        format::millis(b.wait_ms[0] as f64),
        format::millis(b.wait_ms[1] as f64),
        format::age(settings.canary_ms),
        settings.max_false_trips,
        format::age(settings.cooldown_ms),
        confidence_text(settings.min_confidence),
        settings.days,
    )
}

/// One automatic change in a line: what, where, and how it ended (or how long it has to go).
pub fn auto_change_line(change: &AutoTuneChange, now_ms: i64) -> String {
    let whom = change
        .canary_instance
        .as_deref()
        .map(|i| format!(" on canary {i}"))
        .unwrap_or_default();
    let head = format!(
        "v{} (from v{}, recommendation {}){whom}",
        change.version, change.base_version, change.recommendation_id
    );
    match (change.status.as_str(), &change.outcome) {
        ("canary", _) => format!(
            "{head}: canary, {} opening(s), {} false, {} to go",
            change.canary_openings,
            change.false_trips,
            format::age((change.canary_ends_ms - now_ms).max(0))
        ),
        (_, Some(outcome)) => format!("{head}: {outcome}"),
        (status, None) => format!("{head}: {}", status.replace('_', " ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> BreakerConfig {
        BreakerConfig {
            version: 3,
            failure_rate_threshold: Some(0.5),
            slow_call_rate_threshold: None,
            slow_call_duration_ms: None,
            consecutive_failures: None,
            window: WindowConfig::Time { seconds: 60 },
            minimum_calls: 20,
            wait: WaitConfig::Fixed { ms: 30_000 },
            half_open_probes: 5,
            half_open_successes: 3,
            half_open_rule: Default::default(),
            half_open_max_wait_ms: None,
            call_timeout_ms: None,
            mode: None,
        }
    }

    fn backtest(trips: u32, cost: f64) -> BacktestSummary {
        BacktestSummary {
            trips,
            false_trips: 1,
            detected: 1,
            anomalies: 2,
            detection_delay_median_ms: Some(12_000),
            lost_good: 340,
            wasted: 900,
            cost,
        }
    }

    #[test]
    fn the_diff_marks_only_the_fields_that_differ() {
        let current = config();
        let mut suggested = config();
        suggested.version = 0;
        suggested.failure_rate_threshold = Some(0.25);
        suggested.window = WindowConfig::Time { seconds: 30 };
        let diff = config_diff(&current, &suggested);
        let differing: Vec<_> = diff.iter().filter(|row| row.differs).collect();
        assert_eq!(differing.len(), 2, "{diff:?}");
        assert_eq!(differing[0].name, "failure-rate threshold");
        assert_eq!(
            (
                differing[0].current.as_str(),
                differing[0].suggested.as_str()
            ),
            ("50 %", "25 %")
        );
        assert_eq!(differing[1].name, "window");
        assert_eq!(differing[1].suggested, "last 30 s");
        // The version is not a field: equal configs of other versions do not differ.
        assert!(
            config_diff(&current, &{
                let mut c = config();
                c.version = 9;
                c
            })
            .iter()
            .all(|row| !row.differs)
        );
    }

    #[test]
    fn backtests_side_by_side() {
        let rows = backtest_rows(&backtest(4, 520.0), &backtest(1, 120.25));
        assert_eq!(rows.len(), 7);
        assert_eq!(rows[0], ("trips", "4".into(), "1".into()));
        assert_eq!(rows[2].1, "1 / 2");
        assert_eq!(rows[3].1, "12.0 s");
        assert_eq!(rows[6], ("cost", "520.0".into(), "120.2".into()));
        let mut none = backtest(0, 0.0);
        none.detection_delay_median_ms = None;
        assert_eq!(backtest_rows(&none, &none)[3].1, "–");
    }

    #[test]
    fn confidence_and_anomalies_read_as_text() {
        assert_eq!(confidence_text(0.724), "72 %");
        assert_eq!(confidence_text(1.7), "100 %");
        let start = 1_795_000_000_000 - 1_795_000_000_000 % 86_400_000 + 3_600_000;
        let line = anomaly_line(&AnomalyPeriod {
            start_ms: start,
            end_ms: start + 12 * 60_000,
            kind: "failures".into(),
        });
        assert!(line.starts_with("failures: "), "{line}");
        assert!(line.ends_with(" → 01:12:00 UTC (12 min)"), "{line}");
    }

    #[test]
    fn the_decision_names_who_and_the_applied_version() {
        let mut rec = Recommendation {
            id: 7,
            service: "shop".into(),
            breaker: "payments".into(),
            made_ms: 0,
            status: protocol::RecommendationStatus::Open,
            from_ms: 0,
            to_ms: 0,
            base_version: 0,
            current: config(),
            suggested: config(),
            current_backtest: backtest(1, 1.0),
            suggested_backtest: backtest(1, 1.0),
            anomalies: vec![],
            confidence: 0.5,
            summary: String::new(),
            explanation: vec![],
            doubts: vec![],
            warnings: vec![],
            decided_by: None,
            decided_ms: None,
            applied_version: None,
            replay: None,
        };
        assert_eq!(decision_text(&rec), None);
        rec.status = protocol::RecommendationStatus::Accepted;
        rec.decided_by = Some("ada".into());
        rec.applied_version = Some(4);
        assert_eq!(
            decision_text(&rec).unwrap(),
            "accepted by ada: applied as config version 4"
        );
        rec.status = protocol::RecommendationStatus::Superseded;
        rec.decided_by = None;
        rec.applied_version = None;
        assert_eq!(decision_text(&rec).unwrap(), "superseded");
    }

    #[test]
    fn auto_mode_lines_say_what_happened() {
        let mut change = AutoTuneChange {
            id: 1,
            recommendation_id: 9,
            status: protocol::ChangeStatus::Canary,
            canary_instance: Some("shop-2".into()),
            peers: vec!["shop-1".into()],
            version: 4,
            base_version: 3,
            config: config(),
            clamped: vec![],
            started_ms: 0,
            canary_ends_ms: 90_000,
            canary_openings: 1,
            false_trips: 0,
            ended_ms: None,
            outcome: None,
        };
        let line = auto_change_line(&change, 30_000);
        assert!(
            line.starts_with(
                "v4 (from v3, recommendation 9) on canary shop-2: canary, 1 opening(s), 0 false, "
            ),
            "{line}"
        );
        change.status = protocol::ChangeStatus::RolledBack;
        change.outcome = Some("rolled back: 2 false trips".into());
        assert_eq!(
            auto_change_line(&change, 0),
            "v4 (from v3, recommendation 9) on canary shop-2: rolled back: 2 false trips"
        );
        let line = auto_settings_line(&AutoTuneSettings::default());
        assert!(line.starts_with("steps of at most ±50"), "{line}");
        assert!(line.contains("after more than 0 false trip(s)"), "{line}");
    }

    #[test]
    fn links_and_ids() {
        assert_eq!(recommendation_href(12), "/recommendations?id=12");
        assert_eq!(parse_id(Some("12")), Some(12));
        assert_eq!(parse_id(Some("x")), None);
        assert_eq!(parse_id(None), None);
    }
}
