//! The injected sets' names, lengths, labels and contents, and where they are copied from.

use super::{clean_stretch, injected_sets};
use crate::anomaly::Labels;
use crate::history::Step;
use crate::scenario::Span;
use crate::search::tests::{steady_history, unlabelled};

#[test]
fn the_injected_sets_have_these_labels_and_lengths() {
    // Three hours of 100 calls a second, one failing; 90 fast calls and 10 slower.
    let bounds = [10, 20, 50, 100, 200, 500, 1_000, 2_000];
    let history = steady_history(10_800, 100, 1, &bounds, &[90, 10, 0, 0, 0, 0, 0, 0]);
    let sets = injected_sets(&history, &unlabelled(&history), 2);
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
    let names: Vec<&str> = injected_sets(&history, &unlabelled(&history), 1)
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
    let sets = injected_sets(&history, &labels, 2);
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
    assert_eq!(injected_sets(&short, &unlabelled(&short), 2).len(), 0);
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
