//! Anomaly labels of small hand-made histories.

use crate::anomaly::{AnomalyKind, AnomalyOptions, detect};
use crate::features::tests::history;
use crate::features::{FeatureOptions, features};

/// Labels a history given as (calls, failures, slow calls) steps; returns the periods as
/// `start..end kind` and the number of transients.
#[track_caller]
fn check(steps: &[(u32, u32, u32)], expect_periods: &str, expect_transients: usize) {
    let history = history(steps);
    let f = features(&history, &FeatureOptions::default());
    let labels = detect(&history, &f, &AnomalyOptions::default());
    let periods: Vec<String> = labels
        .periods
        .iter()
        .map(|p| format!("{}..{} {:?}", p.start_step, p.end_step, p.kind))
        .collect();
    assert_eq!(periods.join(", "), expect_periods);
    assert_eq!(labels.transients.len(), expect_transients);
    assert_eq!(labels.score.len(), steps.len());
    for (i, &anomalous) in labels.anomalous.iter().enumerate() {
        let in_period = labels
            .periods
            .iter()
            .any(|p| (p.start_step..p.end_step).contains(&i));
        assert_eq!(anomalous, in_period, "step {i}");
    }
}

fn healthy(n: usize) -> Vec<(u32, u32, u32)> {
    // 100 calls a step with 2–4 failures: a little noise, as real traffic has.
    (0..n).map(|i| (100, 2 + (i % 3) as u32, 0)).collect()
}

#[test]
fn an_outage_is_one_period() {
    let mut steps = healthy(600);
    for step in &mut steps[300..360] {
        *step = (100, 100, 0);
    }
    check(&steps, "300..360 Failures", 0);
}

#[test]
fn a_few_seconds_of_errors_are_a_transient() {
    let mut steps = healthy(600);
    for step in &mut steps[100..104] {
        *step = (100, 45, 0);
    }
    check(&steps, "", 1);
}

#[test]
fn a_slowdown_is_a_latency_period() {
    let mut steps = healthy(600);
    for step in &mut steps[200..260] {
        *step = (100, 3, 90);
    }
    check(&steps, "200..260 Latency", 0);
}

#[test]
fn incidents_in_a_quarter_of_the_history_are_still_found() {
    // Contaminated history: the incidents are part of what a model would call normal.
    let mut steps = healthy(800);
    for range in [100..150, 300..400, 600..650] {
        for step in &mut steps[range] {
            *step = (100, 70, 0);
        }
    }
    check(
        &steps,
        "100..150 Failures, 300..400 Failures, 600..650 Failures",
        0,
    );
}

#[test]
fn low_volume_noise_is_not_an_incident() {
    // Two calls a second with 5 % failures: runs of failures happen, incidents do not.
    let steps: Vec<(u32, u32, u32)> = (0..3000)
        .map(|i| (2, u32::from(i % 20 == 0 || i % 47 == 0), 0))
        .collect();
    check(&steps, "", 0);
    // A 5-minute outage is found, blurred by at most the judging window (±15 steps).
    let mut steps = steps;
    for step in &mut steps[1500..1800] {
        *step = (2, 2, 0);
    }
    let history = history(&steps);
    let f = features(&history, &FeatureOptions::default());
    let labels = detect(&history, &f, &AnomalyOptions::default());
    assert_eq!(labels.periods.len(), 1);
    let period = &labels.periods[0];
    assert!(period.start_step.abs_diff(1500) <= 15, "{period:?}");
    assert!(period.end_step.abs_diff(1800) <= 15, "{period:?}");
}

#[test]
fn labels_are_deterministic() {
    let mut steps = healthy(400);
    for step in &mut steps[100..130] {
        *step = (100, 80, 0);
    }
    let history = history(&steps);
    let f = features(&history, &FeatureOptions::default());
    let a = detect(&history, &f, &AnomalyOptions::default());
    let b = detect(&history, &f, &AnomalyOptions::default());
    assert_eq!(a.score, b.score);
    assert_eq!(a.cluster, b.cluster);
    assert_eq!(a.periods, b.periods);
    assert_eq!(a.periods[0].kind, AnomalyKind::Failures);
}

#[test]
fn a_slow_creep_is_labelled_from_where_it_began() {
    // 2–4 slow calls a step as usual; from step 200 one more every four steps, up to 30
    // more, until 320.
    let mut steps = healthy(600);
    for (i, step) in steps.iter_mut().enumerate() {
        step.2 = 2 + (i % 3) as u32;
        if (200..320).contains(&i) {
            step.2 += ((i - 196) as u32 / 4).min(30);
        }
    }
    let history = history(&steps);
    let f = features(&history, &FeatureOptions::default());
    let start_of = |opts: &AnomalyOptions| {
        let labels = detect(&history, &f, opts);
        assert_eq!(labels.periods.len(), 1, "{:?}", labels.periods);
        (labels.periods[0].start_step, labels.periods[0].end_step)
    };
    let unwidened = AnomalyOptions {
        z_edge: f64::INFINITY,
        ..AnomalyOptions::default()
    };
    let (late, end) = start_of(&unwidened);
    let (start, widened_end) = start_of(&AnomalyOptions::default());
    // The bar is crossed some way into the creep (step 224 here); the label starts where the
    // rise became visible (slow calls about double the usual), never before the creep began.
    assert!(late >= 220, "flagged from step {late}");
    assert!(
        (200..=late - 5).contains(&start),
        "labelled from step {start}, flagged {late}"
    );
    // The end is abrupt: it does not move.
    assert_eq!((end, widened_end), (320, 320));
}

#[test]
fn bursts_of_ordinary_noise_do_not_stretch_an_outage() {
    // Each minute's few failures arrive together in its first twelve steps (as when a
    // minute's rollup is spread over its seconds); a hard outage (calls fail and are slow)
    // from 1800 to 2520 ends just as the next burst begins.
    let mut steps: Vec<(u32, u32, u32)> = (0..3_600)
        .map(|i| (20, u32::from(i % 60 < 12), 0))
        .collect();
    for step in &mut steps[1_800..2_520] {
        *step = (20, 14, 18);
    }
    let history = history(&steps);
    let f = features(&history, &FeatureOptions::default());
    let labels = detect(&history, &f, &AnomalyOptions::default());
    assert_eq!(labels.periods.len(), 1, "{:?}", labels.periods);
    let period = &labels.periods[0];
    // Feature smoothing may blur an edge by a step or two; the burst after it must not.
    assert!(
        period.end_step <= 2_522,
        "the outage ends at 2520; labelled to {}",
        period.end_step
    );
    assert!(period.start_step >= 1_797, "{}", period.start_step);
}

#[test]
fn a_flapping_dependency_is_one_incident_and_bursts_far_apart_stay_apart() {
    // Down 20 steps, up 20 steps, five times from step 400; elsewhere two 30-step outages
    // two minutes apart, and two 20-step ones 45 steps apart (closer than a minute, but
    // more than one and a half times as long as either): four more incidents.
    let mut steps = healthy(1_600);
    for k in 0..5 {
        for step in &mut steps[400 + 40 * k..420 + 40 * k] {
            *step = (100, 100, 0);
        }
    }
    for range in [1_000..1_030, 1_150..1_180, 1_300..1_320, 1_365..1_385] {
        for step in &mut steps[range] {
            *step = (100, 100, 0);
        }
    }
    check(
        &steps,
        "400..580 Failures, 1000..1030 Failures, 1150..1180 Failures, \
         1300..1320 Failures, 1365..1385 Failures",
        0,
    );
}

#[test]
fn a_flapping_incident_takes_in_its_last_down_phase_cut_short() {
    // Down 20 steps, up 20, four times from step 400, then down 8 steps more as the incident
    // ends: one incident, the stub in it. A lone 8-step burst 20 steps after a 30-step
    // outage is not a flap: it stays a transient.
    let mut steps = healthy(1_600);
    for k in 0..4 {
        for step in &mut steps[400 + 40 * k..420 + 40 * k] {
            *step = (100, 100, 0);
        }
    }
    for range in [560..568, 1_000..1_030, 1_050..1_058] {
        for step in &mut steps[range] {
            *step = (100, 100, 0);
        }
    }
    check(&steps, "400..568 Failures, 1000..1030 Failures", 1);
}

#[test]
fn at_low_volume_an_outage_ends_where_its_failures_do() {
    // Two calls a second, one failing every ten seconds (5 %): each step is judged over
    // about twenty neighbours, which blurs the scores for seconds after the outage.
    let mut steps: Vec<(u32, u32, u32)> =
        (0..1_200).map(|i| (2, u32::from(i % 10 == 0), 0)).collect();
    for step in &mut steps[600..800] {
        *step = (2, 2, 0);
    }
    let history = history(&steps);
    let f = features(&history, &FeatureOptions::default());
    let labels = detect(&history, &f, &AnomalyOptions::default());
    let ends: Vec<usize> = labels.periods.iter().map(|p| p.end_step).collect();
    assert_eq!(ends.len(), 1, "{ends:?}");
    assert!((800..=801).contains(&ends[0]), "ends at {}", ends[0]);
    assert_eq!(labels.periods[0].span.end_ms, ends[0] as u64 * 1_000);
    assert!(!labels.anomalous[ends[0]]);
}
