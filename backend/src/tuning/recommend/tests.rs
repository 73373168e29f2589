use super::*;

fn config(window: protocol::WindowConfig, min: u32, threshold: f64, wait_ms: u64) -> BreakerConfig {
    let mut c =
        breaker::subscriber::config_to_wire(&breaker::Config::default(), breaker::Mode::Automatic);
    c.window = window;
    c.minimum_calls = min;
    c.failure_rate_threshold = Some(threshold);
    c.wait = protocol::WaitConfig::Fixed { ms: wait_ms };
    c
}

fn rules(findings: &[LintFinding]) -> Vec<&str> {
    findings.iter().map(|f| f.rule.as_str()).collect()
}

#[test]
fn a_sound_config_has_no_findings() {
    let minutes = vec![(600, 6, 600); 100];
    let c = config(protocol::WindowConfig::Time { seconds: 10 }, 20, 0.5, 5_000);
    assert!(lint(&c, &minutes).is_empty());
}

#[test]
fn each_rule_fires_on_its_case() {
    // 60 calls a minute: 10 in a 10 s window, fewer than 20 minimum calls.
    let quiet = vec![(60, 1, 60); 100];
    let c = config(protocol::WindowConfig::Time { seconds: 10 }, 20, 0.5, 5_000);
    assert_eq!(
        rules(&lint(&c, &quiet)),
        vec!["minimum_calls_never_reached"]
    );
    // 8 % failures every minute against a 5 % threshold.
    let noisy = vec![(1_000, 80, 1_000); 100];
    let c = config(
        protocol::WindowConfig::Count { calls: 100 },
        20,
        0.05,
        5_000,
    );
    assert_eq!(
        rules(&lint(&c, &noisy)),
        vec!["threshold_below_normal_failure_rate"]
    );
    let c = config(protocol::WindowConfig::Count { calls: 100 }, 20, 0.5, 500);
    assert_eq!(
        rules(&lint(&c, &noisy)),
        vec!["wait_shorter_than_report_interval"]
    );
    let mut c = config(protocol::WindowConfig::Time { seconds: 5 }, 5, 0.5, 5_000);
    c.call_timeout_ms = Some(10_000);
    assert_eq!(
        rules(&lint(&c, &noisy)),
        vec!["window_shorter_than_call_timeout"]
    );
}

#[test]
fn spreading_keeps_every_count() {
    let bucket = Bucket {
        counts: protocol::OutcomeCounts {
            success: 61,
            failure: 7,
            ..Default::default()
        },
        latency: protocol::LatencyHistogram {
            counts: vec![0, 68],
        },
        failure_rate_threshold: Some(0.5),
    };
    let parts = spread(&bucket, 60);
    assert_eq!(parts.len(), 60);
    let mut total = Bucket::default();
    for part in &parts {
        total.merge(part);
    }
    assert_eq!(total.counts, bucket.counts);
    assert_eq!(total.latency.total(), 68);
    assert_eq!(total.latency.counts[1], 68);
    assert_eq!(parts[0].counts.success, 2);
    assert_eq!(parts[59].counts.success, 1);
}

#[test]
fn the_summary_names_the_evidence() {
    let before = BacktestSummary {
        trips: 8,
        false_trips: 6,
        detected: 2,
        anomalies: 2,
        detection_delay_median_ms: Some(15_000),
        lost_good: 900,
        wasted: 400,
        cost: 980.0,
    };
    let after = BacktestSummary {
        trips: 2,
        false_trips: 0,
        detection_delay_median_ms: Some(3_000),
        lost_good: 20,
        wasted: 50,
        cost: 30.0,
        ..before.clone()
    };
    let text = summary_sentence(7.0, &before, &after);
    assert!(
        text.starts_with(
            "Over the last 7 days these thresholds would have tripped 0 times on noise instead of 6"
        ),
        "{text}"
    );
    assert!(text.contains("12.0 s sooner"), "{text}");
}
