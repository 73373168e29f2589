//! The lengthened variants of a scenario.

use std::time::Duration;

use super::lengthened;
use crate::history::{History, Step};
use crate::scenario::{Scenario, Span, Truth};
use crate::search::Grid;

#[test]
fn a_lengthened_scenario_repeats_the_incidents_last_step_in_the_scored_half_only() {
    // 20 one-second steps; incidents at [2, 4) (first half) and [12, 15) (scored half).
    let healthy: Vec<bool> = (0..20)
        .map(|i| !((2..4).contains(&i) || (12..15).contains(&i)))
        .collect();
    let scenario = Scenario {
        name: "s".into(),
        description: String::new(),
        history: History {
            step: Duration::from_secs(1),
            latency_buckets_ms: vec![10],
            steps: (0..20)
                .map(|i| Step {
                    t_ms: i * 1_000,
                    n_calls: 10,
                    n_failures: if healthy[i as usize] { 0 } else { 10 },
                    n_rejected: 0,
                    latency_counts: vec![10],
                })
                .collect(),
        },
        truth: Truth {
            healthy,
            incidents: vec![
                Span {
                    start_ms: 2_000,
                    end_ms: 4_000,
                },
                Span {
                    start_ms: 12_000,
                    end_ms: 15_000,
                },
            ],
        },
    };
    let longer = lengthened(&scenario, 10, 2);
    assert_eq!(longer.history.len(), 22);
    assert_eq!(
        longer.truth.incidents,
        vec![
            Span {
                start_ms: 2_000,
                end_ms: 4_000
            },
            Span {
                start_ms: 12_000,
                end_ms: 17_000
            }
        ]
    );
    let unhealthy: Vec<usize> = (0..22).filter(|&i| !longer.truth.healthy[i]).collect();
    assert_eq!(unhealthy, vec![2, 3, 12, 13, 14, 15, 16]);
    assert_eq!(longer.history.steps[16].n_failures, 10);
    assert_eq!(longer.history.steps[17].n_failures, 0);
    let times: Vec<u64> = longer.history.steps.iter().map(|s| s.t_ms).collect();
    assert_eq!(times, (0..22).map(|i| i * 1_000).collect::<Vec<u64>>());
}

/// Two hours of one-second steps at 50 calls/s with full outages at the given step ranges.
fn outages(ranges: &[std::ops::Range<usize>]) -> Scenario {
    // 1 % failures while healthy.
    outages_among(ranges, |i| u32::from(i % 2 == 0))
}

/// [`outages`] with `usual(step)` of the 50 calls failing in each healthy step.
pub(super) fn outages_among(
    ranges: &[std::ops::Range<usize>],
    usual: fn(usize) -> u32,
) -> Scenario {
    let n = 7_200;
    let healthy: Vec<bool> = (0..n)
        .map(|i| !ranges.iter().any(|r| r.contains(&i)))
        .collect();
    Scenario {
        name: "outages".into(),
        description: String::new(),
        history: History {
            step: Duration::from_secs(1),
            latency_buckets_ms: vec![10, 100],
            steps: (0..n)
                .map(|i| Step {
                    t_ms: i as u64 * 1_000,
                    n_calls: 50,
                    n_failures: if healthy[i] { usual(i) } else { 50 },
                    n_rejected: 0,
                    latency_counts: vec![50, 0],
                })
                .collect(),
        },
        truth: Truth {
            healthy,
            incidents: ranges
                .iter()
                .map(|r| Span {
                    start_ms: r.start as u64 * 1_000,
                    end_ms: r.end as u64 * 1_000,
                })
                .collect(),
        },
    }
}

/// The library default named `name`.
pub(super) fn library_default(name: &str) -> breaker::Config {
    crate::defaults::library_defaults()
        .into_iter()
        .find(|(default, _)| *default == name)
        .map(|(_, config)| config)
        .unwrap()
}

#[test]
fn hindsight_is_the_best_static_config_on_the_training_half_and_scored_on_the_second() {
    // Short outages to learn from, one long one to be scored on.
    let scenario = outages(&[600..660, 1_800..1_830, 3_000..3_090, 5_000..5_900]);
    let half = scenario.history.len() / 2;
    let tuned = library_default("resilience4j");
    let hindsight = super::hindsight(&scenario, half, &tuned);
    // On the training half, with the truth, it is at least as good as every config it
    // started from (the library defaults and the one passed as tuned).
    let train_cost = |config: &breaker::Config| {
        let res = crate::replay::replay(&scenario.history, 0..half, config);
        crate::replay::score(
            &scenario.history,
            &res,
            &scenario.truth.healthy,
            &scenario.truth.incidents[..3],
        )
        .cost
    };
    let best = train_cost(&hindsight);
    for (name, config) in crate::defaults::library_defaults() {
        assert!(
            best <= train_cost(&config),
            "{name} beats hindsight on the training half"
        );
    }
    // The report scores it on the second half beside the oracle, with both ratios.
    let (report, _) = super::evaluate_scenario(
        &scenario,
        &tuned,
        &[],
        &super::EvalOptions {
            hindsight: true,
            ..super::EvalOptions::default()
        },
    );
    let cost = |name: &str| report.result(name).unwrap().score.cost;
    let summary = report.summary().unwrap();
    assert!(
        (summary.hindsight_over_oracle.unwrap() - cost("hindsight") / cost("oracle")).abs() < 1e-9
    );
    assert!(
        (summary.tuned_over_hindsight.unwrap() - cost("tuned") / cost("hindsight")).abs() < 1e-9
    );
    // The oracle sees the scored half's long outage; hindsight only the short ones.
    assert!(cost("oracle") <= cost("hindsight"));
}

#[test]
fn labelled_is_the_tuner_run_on_the_truth_of_the_training_half() {
    // Two outages to learn from (one ending at the boundary of the half), one to be scored on.
    let scenario = outages(&[600..660, 3_000..3_600, 5_000..5_300]);
    let half = scenario.history.len() / 2;
    let train = scenario.history.slice(0..half);
    let opts = crate::suggest::TuneOptions::default();
    let features = crate::features::features(&train, &opts.features);
    let detected = crate::anomaly::detect(&train, &features, &opts.anomaly);
    let labels = super::truth_labels(&scenario, half, detected.clone());
    let truth: Vec<bool> = scenario.truth.healthy[..half].iter().map(|h| !h).collect();
    assert_eq!(labels.anomalous, truth);
    let spans: Vec<(usize, usize, u64, u64)> = labels
        .periods
        .iter()
        .map(|p| (p.start_step, p.end_step, p.span.start_ms, p.span.end_ms))
        .collect();
    assert_eq!(
        spans,
        [
            (600, 660, 600_000, 660_000),
            (3_000, 3_600, 3_000_000, 3_600_000)
        ]
    );
    assert!(
        labels
            .transients
            .iter()
            .all(|t| !truth[t.start_step..t.end_step].contains(&true))
    );
    assert_eq!(
        labels.transients.len(),
        detected
            .transients
            .iter()
            .filter(|t| !truth[t.start_step..t.end_step].contains(&true))
            .count()
    );

    // The report scores it on the second half, and the summary says what the labels cost.
    let tuned = crate::suggest::tune(&train, None, &opts).0.config;
    let (report, _) = super::evaluate_scenario(
        &scenario,
        &tuned,
        &[],
        &super::EvalOptions {
            oracle: false,
            labelled: true,
            ..super::EvalOptions::default()
        },
    );
    let labelled = report.result(super::LABELLED).unwrap();
    let expected = crate::suggest::tune_labelled(&train, features, labels, None, &opts)
        .0
        .config;
    assert_eq!(labelled.config.as_ref(), Some(&expected));
    let cost = |name: &str| report.result(name).unwrap().score.cost;
    let summary = report.summary().unwrap();
    assert!((summary.tuned_over_labelled.unwrap() - cost("tuned") / cost("labelled")).abs() < 1e-9);
    assert!(summary.tuned_over_hindsight.is_none());
}

#[test]
fn bounded_is_the_best_static_config_within_the_tuners_safety_bounds() {
    let scenario = outages(&[
        600..660,
        1_800..1_830,
        3_000..3_090,
        5_000..5_040,
        6_000..6_300,
    ]);
    let half = scenario.history.len() / 2;
    let tuned = library_default("opossum");
    let (report, _) = super::evaluate_scenario(
        &scenario,
        &tuned,
        &[],
        &super::EvalOptions {
            bounded: true,
            ..super::EvalOptions::default()
        },
    );
    let config = |name: &str| report.result(name).unwrap().config.clone().unwrap();
    let cost = |name: &str| report.result(name).unwrap().score.cost;
    // Left free, the oracle judges fewer calls than the bounds allow (or keeps opossum's
    // call timeout): the bounds bind here.
    let oracle = crate::search::Candidate::from_config(&config("oracle"));
    let mut oracle_bounded = oracle.clone();
    oracle_bounded.call_timeout = None;
    crate::suggest::within_safety_bounds(&mut oracle_bounded);
    assert_ne!(oracle, oracle_bounded);
    // The bounded config is within them: nothing to raise, no call timeout, and the noise
    // margin of the scored half's usual traffic already taken.
    let (set, _) = super::yardstick::scored_set(&scenario, half);
    let usual = crate::anomaly::Labels {
        anomalous: set.healthy.iter().map(|healthy| !healthy).collect(),
        ..crate::anomaly::Labels::default()
    };
    let search = crate::search::Search::from_sets(
        vec![set.clone()],
        crate::search::SearchOptions {
            min_failures_to_trip: Grid::SAFE_MIN_FAILURES_TO_TRIP,
            ..crate::search::SearchOptions::default()
        },
    )
    .with_noise_margin(&set.history, &usual);
    let bounded = crate::search::Candidate::from_config(&config("bounded"));
    let mut again = [bounded.clone()];
    crate::suggest::within_safety_bounds(&mut again[0]);
    search.apply_safety_bounds(&mut again);
    assert_eq!(again[0], bounded);
    assert_eq!(bounded.call_timeout, None);
    assert!(bounded.minimum_calls >= 5);
    // It is at least as good on the scored half as every library default brought within
    // the bounds (the search starts from them).
    for (name, default) in crate::defaults::library_defaults() {
        let mut seed = [crate::search::Candidate::from_config(&default)];
        seed[0].call_timeout = None;
        crate::suggest::within_safety_bounds(&mut seed[0]);
        search.apply_safety_bounds(&mut seed);
        let seed_cost = super::scored_from(&scenario, half, &seed[0].to_config().unwrap()).cost;
        assert!(
            cost("bounded") <= seed_cost,
            "{name}: {seed_cost} beats bounded"
        );
    }
    let summary = report.summary().unwrap();
    assert!((summary.bounded_over_oracle.unwrap() - cost("bounded") / cost("oracle")).abs() < 1e-9);
    assert!((summary.tuned_over_bounded.unwrap() - cost("tuned") / cost("bounded")).abs() < 1e-9);
}

#[test]
fn the_safe_oracle_trips_in_no_random_order_where_the_oracle_does() {
    // 40 % of the calls fail while healthy: a rule over a few calls with its threshold above
    // that never trips as the scoring lays failures out evenly, and does when they bunch.
    let scenario = outages_among(
        &[3_000..3_060, 4_000..4_020, 5_000..5_300, 6_000..6_090],
        |_| 20,
    );
    let half = scenario.history.len() / 2;
    let tuned = library_default("hystrix");
    let (report, _) = super::evaluate_scenario(
        &scenario,
        &tuned,
        &[],
        &super::EvalOptions {
            safe_oracle: true,
            ..super::EvalOptions::default()
        },
    );
    let config = |name: &str| report.result(name).unwrap().config.clone().unwrap();
    let cost = |name: &str| report.result(name).unwrap().score.cost;
    // False trips on the scored half (as the searches see it) in the order the safe oracle's
    // search checks.
    let (set, score_from) = super::yardstick::scored_set(&scenario, half);
    let random_trips = |config: &breaker::Config| {
        let mut res = crate::replay::replay_in_random_order(
            &set.history,
            0..set.history.len(),
            config,
            super::yardstick::SAFE_ORACLE_SEED,
        );
        res.drop_steps_before(score_from);
        crate::replay::score(&set.history, &res, &set.healthy, &set.incidents).false_trips
    };
    // The check binds: the oracle trips on bunched noise, the safe oracle does not.
    assert!(
        random_trips(&config("oracle")) > 0,
        "{:?}",
        config("oracle")
    );
    assert_eq!(random_trips(&config("safe-oracle")), 0);
    assert_ne!(config("oracle"), config("safe-oracle"));
    // It is at least as good as every library default that is itself safe (the search
    // starts from them), and it catches the outages.
    for (name, default) in crate::defaults::library_defaults() {
        if random_trips(&default) == 0 {
            let default_cost = super::scored_from(&scenario, half, &default).cost;
            assert!(
                cost("safe-oracle") <= default_cost,
                "{name}: {default_cost} beats the safe oracle"
            );
        }
    }
    let safe = &report.result("safe-oracle").unwrap().score;
    assert_eq!(safe.detected, safe.incidents);
    let summary = report.summary().unwrap();
    assert!(
        (summary.safe_oracle_over_oracle.unwrap() - cost("safe-oracle") / cost("oracle")).abs()
            < 1e-9
    );
    assert!(
        (summary.tuned_over_safe_oracle.unwrap() - cost("tuned") / cost("safe-oracle")).abs()
            < 1e-9
    );
}
