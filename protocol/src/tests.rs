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
                config_version: None,
                failure_rate: None,
                failure_rate_threshold: None,
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
    let folded = batch.into_ingest_batch(|_| None);
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
fn folded_calls_keep_the_instance_version_unless_they_carry_one() {
    let call = |breaker: &str, at_ms: i64, config_version: Option<u64>| CallEvent {
        breaker: breaker.into(),
        at_ms,
        outcome: CallOutcome::Failure,
        latency_ms: Some(2.0),
        slow: false,
        state: State::Closed,
        config_version,
        failure_rate: config_version.map(|_| 0.25),
        failure_rate_threshold: config_version.map(|_| 0.5),
    };
    let transition = |breaker: &str, config_version: Option<u64>| CallTransition {
        breaker: breaker.into(),
        at_ms: 5_100,
        from: State::Closed,
        to: State::Open,
        trigger: None,
        config_version,
    };
    let batch = CallBatch {
        service: "s".into(),
        instance: "i".into(),
        seq: 1,
        sent_at_ms: 10_000,
        calls: vec![
            call("a", 5_100, Some(3)),
            call("a", 5_050, Some(2)),
            call("a", 5_200, None),
            call("b", 5_100, None),
        ],
        transitions: vec![transition("a", Some(4)), transition("b", None)],
    };
    // The server last heard version 7 for "b" and 6 for "a" from this instance.
    let folded = batch.into_ingest_batch(|breaker| Some(if breaker == "b" { 7 } else { 6 }));
    let versions: Vec<(&str, u64, Option<f64>, Option<f64>)> = folded
        .aggregates
        .iter()
        .map(|a| {
            (
                a.breaker.as_str(),
                a.config_version,
                a.failure_rate,
                a.failure_rate_threshold,
            )
        })
        .collect();
    assert_eq!(
        versions,
        vec![("a", 3, Some(0.25), Some(0.5)), ("b", 7, None, None)]
    );
    let transitions: Vec<(&str, u64)> = folded
        .transitions
        .iter()
        .map(|t| (t.breaker.as_str(), t.config_version))
        .collect();
    assert_eq!(transitions, vec![("a", 4), ("b", 7)]);
}

#[test]
fn folded_events_without_a_version_carry_the_batch_newest_earlier_version_forward() {
    let call = |at_ms: i64, config_version: Option<u64>| CallEvent {
        breaker: "a".into(),
        at_ms,
        outcome: CallOutcome::Success,
        latency_ms: Some(1.0),
        slow: false,
        state: State::Closed,
        config_version,
        failure_rate: None,
        failure_rate_threshold: None,
    };
    let transition = |at_ms: i64, config_version: Option<u64>| CallTransition {
        breaker: "a".into(),
        at_ms,
        from: State::Closed,
        to: State::Open,
        trigger: None,
        config_version,
    };
    let batch = |known: Option<u64>| {
        CallBatch {
            service: "s".into(),
            instance: "i".into(),
            seq: 1,
            sent_at_ms: 10_000,
            // Version 5 arrives in second 5; the calls of seconds 3 and 6 carry none, and a
            // transition late in second 6 carries version 6 (the second ends on it).
            calls: vec![call(3_100, None), call(5_100, Some(5)), call(6_100, None)],
            transitions: vec![
                transition(4_000, None),
                transition(5_500, None),
                transition(6_500, Some(6)),
                transition(7_000, None),
            ],
        }
        .into_ingest_batch(|_| known)
    };
    let versions = |folded: IngestBatch| {
        let aggregates: Vec<(i64, u64)> = folded
            .aggregates
            .iter()
            .map(|a| (a.start_ms, a.config_version))
            .collect();
        let transitions: Vec<(i64, u64)> = folded
            .transitions
            .iter()
            .map(|t| (t.at_ms, t.config_version))
            .collect();
        (aggregates, transitions)
    };
    // The server knows version 4: events before any version of the batch take it, later ones
    // take the newest version carried before them, never the server's older one.
    assert_eq!(
        versions(batch(Some(4))),
        (
            vec![(3_000, 4), (5_000, 5), (6_000, 6)],
            vec![(4_000, 4), (5_500, 5), (6_500, 6), (7_000, 6)]
        )
    );
    // The server knows nothing (a first batch): the first version of the batch, never 0.
    assert_eq!(
        versions(batch(None)),
        (
            vec![(3_000, 5), (5_000, 5), (6_000, 6)],
            vec![(4_000, 5), (5_500, 5), (6_500, 6), (7_000, 6)]
        )
    );
}

#[test]
fn a_rate_out_of_range_is_named() {
    let batch: CallBatch = serde_json::from_str(
        r#"{"service":"s","instance":"i","seq":1,"sent_at_ms":0,
            "calls":[{"breaker":"a","at_ms":0,"outcome":"success","failure_rate":1.5}]}"#,
    )
    .unwrap();
    assert_eq!(
        batch.validate_calls().unwrap_err().path,
        "$.calls[0].failure_rate"
    );
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
            config_version: None,
            failure_rate: None,
            failure_rate_threshold: None,
        }],
        transitions: vec![],
    };
    assert_eq!(
        batch.validate_calls().unwrap_err().path,
        "$.calls[0].latency_ms"
    );
}

/// The error of `batch()` spoiled by `spoil`, validated with the default limits.
fn refused(spoil: impl FnOnce(&mut IngestBatch)) -> ValidationError {
    let mut b = batch();
    spoil(&mut b);
    validate_batch(&b, 1_000_000).unwrap_err()
}

#[test]
fn calls_are_bounded_by_what_the_interval_holds() {
    let mut b = batch();
    b.aggregates[0].counts = OutcomeCounts {
        success: 999_000,
        rejected: 1_000,
        ..Default::default()
    };
    assert_eq!(validate_batch(&b, 1_000_000), Ok(()), "exactly the limit");
    b.aggregates[0].counts.ignored = 1;
    let err = validate_batch(&b, 1_000_000).unwrap_err();
    assert_eq!(err.path, "$.aggregates[0].counts");
    assert!(
        err.detail
            .contains("exceeds max_calls_per_s = 1000000 × interval"),
        "{err}"
    );
    // A configured limit replaces the default.
    let strict = BatchLimits { max_calls_per_s: 5 };
    assert_eq!(
        validate_batch_with(&batch(), 1_000_000, &strict)
            .unwrap_err()
            .path,
        "$.aggregates[0].counts"
    );
    // An hour at the default limit stays far under 2^53.
    let mut b = batch();
    b.aggregates[0].interval_ms = 3_600_000;
    b.aggregates[0].counts = OutcomeCounts {
        success: 3_600_000_000,
        ..Default::default()
    };
    assert_eq!(validate_batch(&b, 1_000_000), Ok(()));
    // Counts whose sum would wrap a u64.
    let err = refused(|b| {
        b.aggregates[0].counts = OutcomeCounts {
            success: MAX_INT64,
            failure: MAX_INT64,
            timeout: MAX_INT64,
            ..Default::default()
        }
    });
    assert_eq!(err.path, "$.aggregates[0].counts", "{err}");
}

#[test]
fn slow_and_timed_calls_are_bounded_by_the_calls_that_ran() {
    // 9 successes and 1 failure ran; rejected calls never run, ignored ones do.
    let err = refused(|b| {
        b.aggregates[0].counts.rejected = 5;
        b.aggregates[0].counts.slow = 11;
    });
    assert_eq!(err.path, "$.aggregates[0].counts.slow", "{err}");
    let mut b = batch();
    b.aggregates[0].counts.ignored = 1;
    b.aggregates[0].counts.slow = 11;
    b.aggregates[0].latency.add_to_bucket(3, 11);
    assert_eq!(validate_batch(&b, 1_000_000), Ok(()));
    let err = refused(|b| b.aggregates[0].latency.add_to_bucket(3, 11));
    assert_eq!(err.path, "$.aggregates[0].latency.counts", "{err}");
}

#[test]
fn integers_over_int64_are_refused() {
    type Spoil = Box<dyn Fn(&mut IngestBatch)>;
    let cases: Vec<(&str, Spoil)> = vec![
        ("$.seq", Box::new(|b| b.seq = MAX_INT64 + 1)),
        (
            "$.dropped.transitions_dropped",
            Box::new(|b| b.dropped.transitions_dropped = u64::MAX),
        ),
        (
            "$.aggregates[0].config_version",
            Box::new(|b| b.aggregates[0].config_version = u64::MAX),
        ),
        (
            "$.transitions[0].config_version",
            Box::new(|b| b.transitions[0].config_version = u64::MAX),
        ),
        (
            "$.aggregates[0].counts.success",
            Box::new(|b| b.aggregates[0].counts.success = u64::MAX),
        ),
        (
            "$.aggregates[0].latency.counts[2]",
            Box::new(|b| b.aggregates[0].latency.add_to_bucket(2, u64::MAX)),
        ),
    ];
    for (path, spoil) in cases {
        let err = refused(spoil);
        assert_eq!(err.path, path, "{err}");
        assert!(err.detail.contains("int64"), "{err}");
    }
    let mut b = batch();
    b.seq = MAX_INT64;
    assert_eq!(validate_batch(&b, 1_000_000), Ok(()));
}

#[test]
fn decoding_refuses_integers_over_int64() {
    let text = serde_json::to_string(&batch()).unwrap();
    let over = text.replace(r#""seq":1"#, &format!(r#""seq":{}"#, MAX_INT64 + 1));
    let err = serde_json::from_str::<IngestBatch>(&over).unwrap_err();
    assert!(err.to_string().contains("int64"), "{err}");
    let at_max = text.replace(r#""seq":1"#, &format!(r#""seq":{MAX_INT64}"#));
    assert_eq!(
        serde_json::from_str::<IngestBatch>(&at_max).unwrap().seq,
        MAX_INT64
    );
    for (what, text) in [
        (
            "histogram bucket",
            r#"{"counts": [1, 18446744073709551615]}"#,
        ),
        ("restore version", r#"{"version": 9223372036854775808}"#),
    ] {
        let err = match what {
            "histogram bucket" => serde_json::from_str::<LatencyHistogram>(text).map(drop),
            _ => serde_json::from_str::<RestoreRequest>(text).map(drop),
        }
        .unwrap_err();
        assert!(err.to_string().contains("int64"), "{what}: {err}");
    }
    let bounds = r#"{"wait_ms": [1000, 18446744073709551615]}"#;
    assert!(serde_json::from_str::<AutoTuneBounds>(bounds).is_err());
    let wait = r#"{"kind": "fixed", "ms": 18446744073709551615}"#;
    assert!(serde_json::from_str::<WaitConfig>(wait).is_err());
}

#[test]
fn only_known_trigger_kinds_are_accepted() {
    for kind in TRIGGER_KINDS {
        let mut b = batch();
        b.transitions[0].trigger.as_mut().unwrap().kind = kind.into();
        assert_eq!(validate_batch(&b, 1_000_000), Ok(()), "{kind}");
    }
    let err = refused(|b| b.transitions[0].trigger.as_mut().unwrap().kind = "Failure_Rate".into());
    assert_eq!(err.path, "$.transitions[0].trigger.kind");
    assert!(err.detail.contains("half_open_timeout"), "{err}");
}

#[test]
fn names_that_render_as_others_are_refused() {
    let spoofing = [
        '\u{00AD}', '\u{061C}', '\u{200B}', '\u{200C}', '\u{200D}', '\u{200E}', '\u{200F}',
        '\u{2028}', '\u{2029}', '\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}', '\u{202E}',
        '\u{2060}', '\u{2061}', '\u{2062}', '\u{2063}', '\u{2064}', '\u{2066}', '\u{2067}',
        '\u{2068}', '\u{2069}', '\u{FEFF}',
    ];
    for c in spoofing {
        let detail = validate_name(&format!("pay{c}ments")).unwrap_err();
        assert!(
            detail.contains(&format!("U+{:04X}", u32::from(c))),
            "{detail}"
        );
    }
    // Ordinary non-ASCII names stay fine.
    for name in [
        "zahlungsdienst-ä",
        "платежи",
        "支払い",
        "pagos→eu",
        "café ☕",
    ] {
        assert_eq!(validate_name(name), Ok(()), "{name}");
    }
    let err = refused(|b| b.aggregates[0].breaker = "db\u{202E}nimda".into());
    assert_eq!(err.path, "$.aggregates[0].breaker");
}

#[test]
fn request_types_refuse_unknown_fields() {
    fn refuses<T: serde::de::DeserializeOwned + std::fmt::Debug>(text: &str) {
        let err = serde_json::from_str::<T>(text).unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{text}: {err}");
    }
    let mut value = serde_json::to_value(batch()).unwrap();
    value["extra"] = 1.into();
    refuses::<IngestBatch>(&value.to_string());
    for pointer in [
        "/aggregates/0",
        "/aggregates/0/counts",
        "/aggregates/0/latency",
        "/transitions/0",
        "/transitions/0/trigger",
        "/dropped",
    ] {
        let mut value = serde_json::to_value(batch()).unwrap();
        value.pointer_mut(pointer).unwrap()["extra"] = 1.into();
        refuses::<IngestBatch>(&value.to_string());
    }
    refuses::<CallBatch>(r#"{"service":"s","instance":"i","seq":1,"sent_at_ms":0,"x":1}"#);
    refuses::<CallEvent>(r#"{"breaker":"b","at_ms":0,"outcome":"success","x":1}"#);
    let config = r#"{"version":1,"window":{"kind":"count","calls":10},"minimum_calls":5,
        "wait":{"kind":"fixed","ms":1000},"half_open_probes":1,"half_open_successes":1"#;
    serde_json::from_str::<BreakerConfig>(&format!("{config}}}")).unwrap();
    refuses::<BreakerConfig>(&format!(r#"{config},"x":1}}"#));
    refuses::<WindowConfig>(r#"{"kind":"count","calls":10,"seconds":5}"#);
    refuses::<WaitConfig>(r#"{"kind":"fixed","ms":1000,"jitter":0.1}"#);
    refuses::<ConfigChange>(&format!(r#"{{"config":{config}}},"x":1}}"#));
    refuses::<ControlRequest>(r#"{"mode":"forced_open","x":1}"#);
    refuses::<RestoreRequest>(r#"{"version":1,"x":1}"#);
    refuses::<ConfigStatusReport>(
        r#"{"service":"s","instance":"i","at_ms":0,"breakers":[],"x":1}"#,
    );
    refuses::<ConfigStatus>(r#"{"breaker":"b","running_version":1,"x":1}"#);
    refuses::<ConfigRefusal>(r#"{"version":1,"field":"f","rule":"r","x":1}"#);
    refuses::<SilenceRequest>(r#"{"for_ms":1,"x":1}"#);
    refuses::<AutoTuneSettings>(r#"{"enabled":true,"x":1}"#);
    refuses::<AutoTuneBounds>(r#"{"x":1}"#);
}

#[test]
fn transition_records_keep_their_flat_shape() {
    let record = TransitionRecord {
        id: 7,
        service: "checkout".into(),
        instance: "checkout-1".into(),
        transition: batch().transitions[0].clone(),
    };
    let value = serde_json::to_value(&record).unwrap();
    assert_eq!(value["id"], 7);
    assert_eq!(value["breaker"], "payments");
    assert_eq!(value["trigger"]["kind"], "failure_rate");
    let back: TransitionRecord = serde_json::from_value(value).unwrap();
    assert_eq!(back, record);
    let event = StreamEvent::Transition(record);
    let text = serde_json::to_string(&event).unwrap();
    assert!(
        text.starts_with(r#"{"type":"transition","id":7,"#),
        "{text}"
    );
    assert_eq!(serde_json::from_str::<StreamEvent>(&text).unwrap(), event);
}

#[test]
fn sums_saturate() {
    let mut counts = OutcomeCounts {
        success: u64::MAX,
        failure: 1,
        timeout: 1,
        ..Default::default()
    };
    assert_eq!(counts.judged(), u64::MAX);
    assert_eq!(counts.calls(), u64::MAX);
    counts.merge(&counts.clone());
    assert_eq!(counts.success, u64::MAX);
    assert_eq!(counts.failed(), 4);
    let mut histogram = LatencyHistogram::default();
    histogram.add_to_bucket(0, u64::MAX);
    histogram.merge(&histogram.clone());
    histogram.add_to_bucket(1, 5);
    assert_eq!(histogram.total(), u64::MAX);
    assert_eq!(histogram.quantile_ms(0.5), Some(1.0));
}

#[test]
fn folded_calls_never_count_rejected_calls_as_slow_or_timed() {
    let batch = CallBatch {
        service: "s".into(),
        instance: "i".into(),
        seq: 1,
        sent_at_ms: 1_000_000,
        calls: vec![CallEvent {
            breaker: "a".into(),
            at_ms: 999_000,
            outcome: CallOutcome::Rejected,
            latency_ms: Some(5_000.0),
            slow: true,
            state: State::Open,
            config_version: None,
            failure_rate: None,
            failure_rate_threshold: None,
        }],
        transitions: vec![],
    };
    let folded = batch.into_ingest_batch(|_| None);
    assert_eq!(folded.aggregates[0].counts.rejected, 1);
    assert_eq!(folded.aggregates[0].counts.slow, 0);
    assert_eq!(folded.aggregates[0].latency.total(), 0);
    assert_eq!(validate_batch(&folded, 1_000_000), Ok(()));
}

#[test]
fn extreme_timestamps_are_refused_without_overflow() {
    for at_ms in [i64::MIN, i64::MAX] {
        let err = refused(|b| b.transitions[0].at_ms = at_ms);
        assert_eq!(err.path, "$.transitions[0].at_ms");
    }
    for at_ms in [i64::MIN, i64::MIN + 999, i64::MAX] {
        let batch = CallBatch {
            service: "s".into(),
            instance: "i".into(),
            seq: 1,
            sent_at_ms: 0,
            calls: vec![CallEvent {
                breaker: "a".into(),
                at_ms,
                outcome: CallOutcome::Success,
                latency_ms: Some(1e300),
                slow: false,
                state: State::Closed,
                config_version: None,
                failure_rate: None,
                failure_rate_threshold: None,
            }],
            transitions: vec![],
        };
        let folded = batch.into_ingest_batch(|_| None);
        assert_eq!(
            validate_batch(&folded, 0).unwrap_err().path,
            "$.aggregates[0].start_ms"
        );
    }
}
