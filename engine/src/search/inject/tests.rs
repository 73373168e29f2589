//! The injected sets' names, lengths, labels and contents, and where they are copied from.

use super::{clean_stretch, injected_sets, rescaled, transplanted_sets};
use crate::anomaly::{AnomalyKind, Labels, Period};
use crate::history::Step;
use crate::scenario::Span;
use crate::search::tests::{steady_history, unlabelled};

#[test]
fn the_injected_sets_have_these_labels_and_lengths() {
    // Three hours of 100 calls a second, one failing; 90 fast calls and 10 slower.
    let bounds = [10, 20, 50, 100, 200, 500, 1_000, 2_000];
    let history = steady_history(10_800, 100, 1, &bounds, &[90, 10, 0, 0, 0, 0, 0, 0]);
    let sets = injected_sets(&history, &unlabelled(&history), 2, true);
    // (name, seconds of incident): 5 min before each incident and 3 min after it; the
    // stressed stretches are 15 min, all healthy.
    let expected = [
        ("outage-2m", 127),
        ("outage-10m", 613),
        ("partial-50", 319),
        ("partial-30", 329),
        ("slowdown", 337),
        ("stress", 0),
        ("outage-2m", 163),
        ("outage-10m", 643),
        ("partial-50", 353),
        ("partial-30", 311),
        ("slowdown", 347),
        ("stress", 0),
    ];
    let got: Vec<(&str, usize)> = sets
        .iter()
        .map(|set| (set.name, set.healthy.iter().filter(|h| !**h).count()))
        .collect();
    assert_eq!(got, expected);
    for set in &sets {
        let n_unhealthy = set.healthy.iter().filter(|h| !**h).count();
        if set.name == "stress" {
            assert_eq!(set.history.len(), 900);
            assert_eq!(set.incidents, []);
            // Failures ×1.3, the remainders carried from step to step.
            let n_failures: u32 = set.history.steps.iter().map(|s| s.n_failures).sum();
            assert_eq!(n_failures, 1_170);
            continue;
        }
        assert_eq!(set.history.len(), 300 + n_unhealthy + 180, "{}", set.name);
        assert!(set.healthy[..300].iter().all(|h| *h));
        assert!(set.healthy[300 + n_unhealthy..].iter().all(|h| *h));
        let first = &set.history.steps[300];
        assert_eq!(
            set.incidents,
            [Span {
                start_ms: first.t_ms,
                end_ms: first.t_ms + n_unhealthy as u64 * 1_000,
            }],
            "{}",
            set.name
        );
        let incident = &set.history.steps[300..300 + n_unhealthy];
        let n_failures: u32 = incident.iter().map(|s| s.n_failures).sum();
        let n_calls = 100 * n_unhealthy as u32;
        match set.name {
            "outage-2m" | "outage-10m" => assert_eq!(n_failures, n_calls),
            // Half and 30 % of the way from the usual 1 % to every call.
            "partial-50" => assert_eq!(n_failures, (0.505 * f64::from(n_calls)) as u32),
            "partial-30" => assert_eq!(n_failures, (0.307 * f64::from(n_calls)) as u32),
            "slowdown" => {
                assert_eq!(n_failures, n_unhealthy as u32);
                assert!(
                    incident
                        .iter()
                        .all(|s| s.latency_counts == [0, 0, 0, 0, 0, 90, 10, 0])
                );
            }
            name => panic!("unexpected set {name}"),
        }
        // Only the incident is changed.
        let original = |step: &Step| &history.steps[(step.t_ms / 1_000) as usize];
        for (i, step) in set.history.steps.iter().enumerate() {
            assert_eq!(
                step == original(step),
                set.healthy[i],
                "{} step {i}",
                set.name
            );
        }
    }
    // One copy of each kind when asked for one.
    let names: Vec<&str> = injected_sets(&history, &unlabelled(&history), 1, true)
        .iter()
        .map(|set| set.name)
        .collect();
    assert_eq!(
        names,
        [
            "outage-2m",
            "outage-10m",
            "partial-50",
            "partial-30",
            "slowdown",
            "stress"
        ]
    );
}

#[test]
fn the_injected_sets_are_copied_from_normal_stretches_only() {
    let history = steady_history(10_800, 100, 1, &[10, 100], &[100, 0]);
    // Anomalous: the whole second hour.
    let labels = Labels {
        anomalous: (0..history.len())
            .map(|i| (3_600..7_200).contains(&i))
            .collect(),
        ..Labels::default()
    };
    let sets = injected_sets(&history, &labels, 2, true);
    assert_eq!(sets.len(), 12);
    for set in &sets {
        let first = set.history.steps[0].t_ms / 1_000;
        let last = set.history.steps.last().unwrap().t_ms / 1_000;
        assert!(
            last < 3_600 || first >= 7_200,
            "{} at {first}..={last}",
            set.name
        );
    }
    // Too short a history for any of them: none.
    let short = steady_history(600, 100, 1, &[10, 100], &[100, 0]);
    assert_eq!(injected_sets(&short, &unlabelled(&short), 2, true).len(), 0);
}

#[test]
fn a_clean_stretch_is_the_nearest_run_without_anomaly() {
    let clean = [false; 10];
    assert_eq!(clean_stretch(&clean, 5, 3), Some(5));
    // A wish past the end starts the last run that fits.
    assert_eq!(clean_stretch(&clean, 9, 3), Some(7));
    let mut one_bad = [false; 10];
    one_bad[5] = true;
    // 2..5 and 6..9 are both two steps from 4: the earlier is taken.
    assert_eq!(clean_stretch(&one_bad, 4, 3), Some(2));
    assert_eq!(clean_stretch(&one_bad, 6, 3), Some(6));
    assert_eq!(
        clean_stretch(&[false, true, false, true, false], 0, 2),
        None
    );
    assert_eq!(clean_stretch(&[false; 2], 0, 3), None);
}

/// Three hours of 100 calls a second (1 failing, all in the first bucket) but for the
/// second hour, 40 calls a second (all fast), and incidents of 60 % failures and slow calls
/// (the third bucket) at the given steps, labelled as periods.
fn history_with_incidents(incidents: &[(usize, usize)]) -> (crate::history::History, Labels) {
    let mut history = steady_history(10_800, 100, 1, &[10, 100, 1_000], &[100, 0, 0]);
    for step in &mut history.steps[3_600..7_200] {
        *step = Step {
            n_calls: 40,
            n_failures: 0,
            latency_counts: vec![40, 0, 0],
            ..step.clone()
        };
    }
    let mut anomalous = vec![false; history.len()];
    let mut periods = Vec::new();
    for &(start, len) in incidents {
        for step in &mut history.steps[start..start + len] {
            step.n_failures = 60;
            step.latency_counts = vec![10, 20, 70];
        }
        anomalous[start..start + len].fill(true);
        periods.push(Period {
            start_step: start,
            end_step: start + len,
            span: Span {
                start_ms: start as u64 * 1_000,
                end_ms: (start + len) as u64 * 1_000,
            },
            peak_score: 10.0,
            kind: AnomalyKind::Failures,
        });
    }
    let labels = Labels {
        anomalous,
        periods,
        ..Labels::default()
    };
    (history, labels)
}

#[test]
fn the_historys_own_incidents_are_moved_onto_other_traffic() {
    let incidents = [(1_000, 120), (8_000, 300)];
    let (history, labels) = history_with_incidents(&incidents);
    let sets = transplanted_sets(&history, &labels, 6);
    assert_eq!(sets.len(), 2);
    for (set, &(source, len)) in sets.iter().zip(&incidents) {
        assert_eq!(set.name, "transplant");
        assert_eq!(set.history.len(), 300 + len + 180);
        let unhealthy: Vec<usize> = (0..set.healthy.len())
            .filter(|&i| !set.healthy[i])
            .collect();
        assert_eq!(unhealthy, (300..300 + len).collect::<Vec<_>>());
        let first = &set.history.steps[0];
        let incident_start = set.history.steps[300].t_ms;
        assert_eq!(
            set.incidents,
            [Span {
                start_ms: incident_start,
                end_ms: incident_start + len as u64 * 1_000
            }]
        );
        // Copied from a stretch without anomaly, not the incident's own place.
        let from = (first.t_ms / 1_000) as usize;
        let to = from + set.history.len();
        assert!(
            incidents.iter().all(|&(s, l)| to <= s || from >= s + l),
            "{from}..{to} holds an incident"
        );
        assert!(from.abs_diff(source) > 1_000, "{from} is near {source}");
        for (i, step) in set.history.steps.iter().enumerate() {
            let original = &history.steps[from + i];
            if set.healthy[i] {
                assert_eq!(step, original, "step {i}");
                continue;
            }
            // The incident's 60 % failures and its latencies, on the stretch's own volume.
            assert_eq!(step.n_calls, original.n_calls);
            assert_eq!(step.n_failures, original.n_calls * 6 / 10, "step {i}");
            let n = original.n_calls;
            assert_eq!(step.latency_counts, [n / 10, n / 5, n - n / 10 - n / 5]);
        }
    }
    // At most as many as asked, evenly chosen; none without a place to go.
    let many: Vec<(usize, usize)> = (0..10).map(|k| (200 + 1_000 * k, 60)).collect();
    let (history, labels) = history_with_incidents(&many);
    assert_eq!(transplanted_sets(&history, &labels, 4).len(), 4);
    let (short, labels) = {
        let (history, labels) = history_with_incidents(&[(100, 60)]);
        let labels = Labels {
            anomalous: labels.anomalous[..400].to_vec(),
            ..labels
        };
        (history.slice(0..400), labels)
    };
    assert_eq!(transplanted_sets(&short, &labels, 6).len(), 0);
}

#[test]
fn a_latency_histogram_is_rescaled_to_the_calls_of_its_new_step() {
    assert_eq!(rescaled(&[10, 20, 70], 40), Some(vec![4, 8, 28]));
    // Rounded down per bucket; what is left goes to the largest (the last of equals).
    assert_eq!(rescaled(&[1, 1, 1], 10), Some(vec![3, 3, 4]));
    assert_eq!(rescaled(&[5, 0, 5], 3), Some(vec![1, 0, 2]));
    assert_eq!(rescaled(&[0, 0, 0], 10), None);
}

#[test]
fn a_history_with_incidents_of_its_own_is_searched_on_them_and_the_stressed_stretches() {
    let names = |incidents: &[(usize, usize)]| -> Vec<&'static str> {
        let (history, labels) = history_with_incidents(incidents);
        let search = crate::search::Search::new(&history, &labels, Default::default());
        search.sets().iter().map(|set| set.name).collect()
    };
    assert_eq!(
        names(&[(1_000, 120), (8_000, 300)]),
        ["history", "stress", "stress", "transplant", "transplant"]
    );
    // One incident is too few to stand for the others: the generic ones are injected.
    let generic = names(&[(1_000, 120)]);
    assert_eq!(generic.len(), 13);
    assert!(!generic.contains(&"transplant"));
    assert!(generic.contains(&"outage-10m"));
}
