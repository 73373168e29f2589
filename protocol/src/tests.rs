use super::*;

fn batch() -> IngestBatch {
    IngestBatch {
        service: "checkout".into(),
        instance: "checkout-1".into(),
        seq: 1,
        sent_at_ms: 1_000_000,
        aggregates: vec![Aggregate {
            breaker: "payments".into(),
            start_ms: 999_000,
            interval_ms: 1_000,
            counts: OutcomeCounts {
                success: 9,
                failure: 1,
                ..Default::default()
            },
            latency: LatencyHistogram::default(),
            state: State::Closed,
            failure_rate: Some(0.1),
            failure_rate_threshold: Some(0.5),
            config_version: 1,
        }],
        transitions: vec![Transition {
            breaker: "payments".into(),
            at_ms: 999_500,
            from: State::Closed,
            to: State::Open,
            trigger: Some(Trigger {
                kind: "failure_rate".into(),
                value: 0.6,
                threshold: 0.5,
            }),
            config_version: 1,
        }],
        dropped: DropCounters::default(),
    }
}

#[test]
fn batch_round_trips_through_json() {
    let original = batch();
    let text = serde_json::to_string(&original).unwrap();
    assert!(text.contains(r#""from":"closed","to":"open""#), "{text}");
    let back: IngestBatch = serde_json::from_str(&text).unwrap();
    assert_eq!(back, original);
}

#[test]
fn states_parse_back_from_their_names() {
    for state in [State::Closed, State::Open, State::HalfOpen] {
        assert_eq!(State::parse(state.as_str()), Some(state));
    }
    assert_eq!(State::parse("ajar"), None);
}

#[test]
fn valid_batch_passes() {
    assert_eq!(validate_batch(&batch(), 1_000_000), Ok(()));
}

#[test]
fn invalid_batches_name_the_field() {
    type Spoil = Box<dyn Fn(&mut IngestBatch)>;
    let cases: Vec<(&str, Spoil)> = vec![
        ("$.service", Box::new(|b| b.service.clear())),
        ("$.instance", Box::new(|b| b.instance = "a\u{7}b".into())),
        (
            "$.aggregates[0].breaker",
            Box::new(|b| b.aggregates[0].breaker = "x".repeat(201)),
        ),
        (
            "$.aggregates[0].interval_ms",
            Box::new(|b| b.aggregates[0].interval_ms = 0),
        ),
        (
            "$.aggregates[0].failure_rate",
            Box::new(|b| b.aggregates[0].failure_rate = Some(1.5)),
        ),
        (
            "$.transitions[0].at_ms",
            Box::new(|b| b.transitions[0].at_ms = 1_000_000 + 86_400_001),
        ),
        (
            "$.transitions[0].to",
            Box::new(|b| b.transitions[0].to = State::Closed),
        ),
        (
            "$.sent_at_ms",
            Box::new(|b| b.sent_at_ms = 1_000_000 - 86_400_001),
        ),
    ];
    for (path, spoil) in cases {
        let mut b = batch();
        spoil(&mut b);
        let err = validate_batch(&b, 1_000_000).unwrap_err();
        assert_eq!(err.path, path, "{err}");
    }
}

#[test]
fn name_of_exactly_the_limit_is_accepted() {
    assert_eq!(validate_name(&"é".repeat(MAX_NAME_LEN)), Ok(()));
    assert!(validate_name(&"é".repeat(MAX_NAME_LEN + 1)).is_err());
}

#[test]
fn histogram_buckets_merge_and_give_quantiles() {
    let mut a = LatencyHistogram::default();
    assert_eq!(a.quantile_ms(0.5), None);
    for latency_us in [500, 1_500, 4_000, 40_000_000] {
        a.record_micros(latency_us);
    }
    assert_eq!(a.counts[0], 1);
    assert_eq!(a.counts[1], 1);
    assert_eq!(a.counts[2], 1);
    assert_eq!(a.counts[14], 1);
    let mut b = LatencyHistogram::default();
    b.add_to_bucket(6, 96);
    b.merge(&a);
    assert_eq!(b.total(), 100);
    assert_eq!(b.quantile_ms(0.5), Some(100.0));
    assert_eq!(b.quantile_ms(0.01), Some(1.0));
    assert_eq!(b.quantile_ms(1.0), Some(60_000.0));
}

#[test]
fn breaker_config_reads_its_documented_json() {
    let text = r#"{"version":4,"failure_rate_threshold":0.4,"window":{"kind":"time","seconds":30},
        "minimum_calls":20,"wait":{"kind":"exponential","initial_ms":1000,"multiplier":2.0,"max_ms":60000},
        "half_open_probes":3,"half_open_successes":2,"mode":"metrics_only"}"#;
    let config: BreakerConfig = serde_json::from_str(text).unwrap();
    assert_eq!(config.window, WindowConfig::Time { seconds: 30 });
    assert_eq!(
        config.wait,
        WaitConfig::Exponential {
            initial_ms: 1_000,
            multiplier: 2.0,
            max_ms: 60_000,
            jitter: 0.0
        }
    );
    assert_eq!(config.mode, Some(BreakerMode::MetricsOnly));
    assert_eq!(config.slow_call_rate_threshold, None);
    let back: BreakerConfig =
        serde_json::from_str(&serde_json::to_string(&config).unwrap()).unwrap();
    assert_eq!(back, config);
}

#[test]
fn calls_fold_into_per_second_aggregates() {
    let call =
        |breaker: &str, at_ms: i64, outcome: CallOutcome, latency_ms: Option<f64>, state: State| {
            CallEvent {
                breaker: breaker.into(),
                at_ms,
                outcome,
                latency_ms,
                slow: latency_ms.is_some_and(|ms| ms > 1_000.0),
                state,
            }
        };
    let batch = CallBatch {
        service: "s".into(),
        instance: "i".into(),
        seq: 3,
        sent_at_ms: 10_000,
        calls: vec![
            call("a", 5_100, CallOutcome::Success, Some(3.0), State::Closed),
            call("a", 5_900, CallOutcome::Failure, Some(1_500.0), State::Open),
            call("a", 5_500, CallOutcome::Failure, Some(40.0), State::Closed),
            call("a", 6_000, CallOutcome::Rejected, None, State::Open),
            call(
                "b",
                5_200,
                CallOutcome::Timeout,
                Some(30_000.5),
                State::Closed,
            ),
        ],
        transitions: vec![],
    };
    assert_eq!(batch.validate_calls(), Ok(()));
    let folded = batch.into_ingest_batch();
    assert_eq!(folded.seq, 3);
    let summary: Vec<(&str, i64, u64, u64, u64, u64, State)> = folded
        .aggregates
        .iter()
        .map(|a| {
            (
                a.breaker.as_str(),
                a.start_ms,
                a.counts.success,
                a.counts.failed(),
                a.counts.rejected,
                a.counts.slow,
                a.state,
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("a", 5_000, 1, 2, 0, 1, State::Open),
            ("a", 6_000, 0, 0, 1, 0, State::Open),
            ("b", 5_000, 0, 1, 0, 1, State::Closed),
        ]
    );
    assert_eq!(folded.aggregates[0].latency.total(), 3);
    assert_eq!(folded.aggregates[1].latency.total(), 0);
    assert_eq!(folded.aggregates[2].latency.counts[14], 1);
}

#[test]
fn a_negative_latency_is_named() {
    let batch = CallBatch {
        service: "s".into(),
        instance: "i".into(),
        seq: 1,
        sent_at_ms: 0,
        calls: vec![CallEvent {
            breaker: "a".into(),
            at_ms: 0,
            outcome: CallOutcome::Success,
            latency_ms: Some(-1.0),
            slow: false,
            state: State::Closed,
        }],
        transitions: vec![],
    };
    assert_eq!(
        batch.validate_calls().unwrap_err().path,
        "$.calls[0].latency_ms"
    );
}
