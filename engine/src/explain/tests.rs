//! Explanations and doubts of suggestions on hand-made histories, and durations in words.

use std::time::Duration;

use breaker::{Config, HalfOpenRule};

use super::{Doubt, Rule, doubts, human};
use crate::anomaly::Labels;
use crate::history::{History, Step};
use crate::suggest::{Backtest, TuneOptions, suggest};

/// Three hours of one-second steps at 20 calls a second, 1 % failing and 2 % slower than
/// 200 ms, with brownouts at 0:40, 1:30 and 2:20 lasting 5, 8 and 3 minutes in which 70 %
/// of calls take over a second and only 3 % fail.
fn brownouts() -> History {
    let spans = [(2_400..2_700), (5_400..5_880), (8_400..8_580)];
    History {
        step: Duration::from_secs(1),
        latency_buckets_ms: vec![50, 200, 1_000, 5_000],
        steps: (0..10_800u64)
            .map(|i| {
                let slow = spans.iter().any(|span| span.contains(&i));
                Step {
                    t_ms: i * 1_000,
                    n_calls: 20,
                    n_failures: u32::from(i % 5 == 0) + u32::from(slow && i % 2 == 0),
                    n_rejected: 0,
                    latency_counts: if slow {
                        vec![5, 1, 0, 14]
                    } else {
                        vec![19, 0, 1, 0]
                    },
                }
            })
            .collect(),
    }
}

#[test]
fn a_brownout_history_is_explained_by_its_slow_call_rule_and_the_periods_lengths() {
    let history = brownouts();
    let (suggestion, _) = suggest(&history, &Config::default(), 0, &TuneOptions::default());
    let suggestion = suggestion.expect("nothing stops the run");
    let text = suggestion.explanation.join("\n");
    assert!(
        suggestion.suggested.slow_call_rate_threshold().is_some(),
        "{text}"
    );
    assert!(
        suggestion.explanation[0].starts_with("Trips when at least"),
        "{text}"
    );
    assert!(text.contains("or longer"), "{text}");
    assert!(
        text.contains("the current config trips when at least 50 % of calls fail"),
        "{text}"
    );
    // The wait is judged against the labelled periods (three here).
    assert!(
        text.contains("the 3 anomalous periods here lasted"),
        "{text}"
    );
    assert!(text.contains("Outside the anomalous periods"), "{text}");
    assert_eq!(suggestion.doubts, vec![], "{text}");
    assert!(suggestion.confidence > super::LOW_CONFIDENCE);
}

#[test]
fn a_short_quiet_history_is_doubted_and_its_confidence_capped() {
    // Ten minutes at one call a second, never failing: nothing to learn from.
    let history = History {
        step: Duration::from_secs(1),
        latency_buckets_ms: vec![100],
        steps: (0..600u64)
            .map(|i| Step {
                t_ms: i * 1_000,
                n_calls: 1,
                n_failures: 0,
                n_rejected: 0,
                latency_counts: vec![1],
            })
            .collect(),
    };
    let (suggestion, _) = suggest(&history, &Config::default(), 0, &TuneOptions::default());
    let suggestion = suggestion.expect("nothing stops the run");
    assert_eq!(
        suggestion.doubts,
        vec![
            Doubt::NoAnomalySeen,
            Doubt::FewCalls { n_calls: 600 },
            Doubt::ShortHistory { seconds: 600 },
        ]
    );
    assert!(suggestion.confidence <= super::LOW_CONFIDENCE);
    assert!(
        suggestion
            .explanation
            .iter()
            .any(|line| line.contains("no anomalous period was seen")),
        "{:?}",
        suggestion.explanation
    );
}

#[test]
fn a_back_test_worse_than_the_current_configs_is_a_doubt() {
    let history = brownouts();
    let labels = Labels::default();
    let current = Backtest {
        trips: 2,
        false_trips: 0,
        detected: 2,
        anomalies: 3,
        detection_delay_median: None,
        lost_good: 0,
        wasted: 0,
        cost: 0.0,
    };
    let suggested = Backtest {
        false_trips: 1,
        detected: 1,
        ..current.clone()
    };
    let found = doubts(&history, &labels, &current, &suggested);
    assert_eq!(
        found,
        vec![
            Doubt::NoAnomalySeen,
            Doubt::MoreFalseTrips {
                current: 0,
                suggested: 1
            },
            Doubt::DetectsFewer {
                current: 2,
                suggested: 1
            },
        ]
    );
    assert_eq!(
        found[1].to_string(),
        "it would have tripped on noise 1 time where the current config tripped 0 times"
    );
}

#[test]
fn a_rule_is_left_out_only_when_another_remains() {
    let both = Config::builder()
        .failure_rate_threshold(0.5)
        .consecutive_failures(5)
        .build()
        .unwrap();
    let without = Rule::Consecutive
        .without(&both)
        .expect("the rate rule remains");
    assert_eq!(without.consecutive_failures(), None);
    assert_eq!(without.failure_rate_threshold(), Some(0.5));
    let only_rate = Rule::FailureRate.without(&without);
    assert!(only_rate.is_none());
    assert!(Rule::SlowCalls.without(&both).is_none());
    // Half-Open by rates keeps its rule while a rate threshold is left, and closes by
    // successes once none is.
    let rates = Config::builder()
        .failure_rate_threshold(0.5)
        .slow_call_rate_threshold(0.3)
        .consecutive_failures(5)
        .half_open_probes(10)
        .half_open_rule(HalfOpenRule::Rates)
        .build()
        .unwrap();
    let without_failures = Rule::FailureRate.without(&rates).unwrap();
    assert_eq!(without_failures.half_open_rule(), HalfOpenRule::Rates);
    let only_consecutive = Rule::SlowCalls.without(&without_failures).unwrap();
    assert_eq!(only_consecutive.half_open_rule(), HalfOpenRule::Successes);
    assert_eq!(only_consecutive.consecutive_failures(), Some(5));
}

#[test]
fn durations_read_as_people_write_them() {
    let cases = [
        (250, "250 ms"),
        (1_500, "1.5 s"),
        (2_000, "2 s"),
        (45_000, "45 s"),
        (102_000, "102 s"),
        (240_000, "4 min"),
        (150_000, "2 min 30 s"),
        (3_600_000, "1 h"),
        (3_900_000, "1 h 5 min"),
    ];
    for (ms, text) in cases {
        assert_eq!(human(Duration::from_millis(ms)), text);
    }
}
