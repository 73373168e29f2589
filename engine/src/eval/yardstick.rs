//! The yardsticks the tuned config is held against, each the best static config of the grid
//! by the widest search ([`best_static`]) on some set with the truth: the oracle (the scored
//! half), hindsight (the training half), and the oracle's search kept within the tuner's
//! safety bounds, ruling out configs that trip in a random order, or counting each tail at
//! its expected length.

use breaker::Config;

use crate::anomaly::Labels;
use crate::defaults;
use crate::scenario::Scenario;
use crate::search::{Candidate, EvalSet, Grid, Search, SearchOptions};
use crate::suggest;

/// How much of the training half the oracle's search replays before the scored half.
const ORACLE_WARM_UP: std::time::Duration = std::time::Duration::from_secs(1_800);

/// The best static config of the grid, chosen with the truth on the training half.
pub(super) fn hindsight(scenario: &Scenario, half: usize, tuned: &Config) -> Config {
    let history = &scenario.history;
    let end_ms = half as u64 * history.step.as_millis() as u64;
    let set = EvalSet {
        name: "training",
        history: history.slice(0..half),
        healthy: scenario.truth.healthy[..half].to_vec(),
        incidents: scenario
            .truth
            .incidents
            .iter()
            .filter(|span| span.start_ms < end_ms)
            .cloned()
            .collect(),
    };
    best_static(set, 0, tuned, Yardstick::default())
}

/// The best static config of the grid, chosen with the truth on the scored half.
pub(super) fn oracle(scenario: &Scenario, half: usize, tuned: &Config) -> Config {
    on_scored_half(scenario, half, tuned, Yardstick::default())
}

/// The oracle's search with every candidate that trips falsely on the scored half with each
/// second's calls in a random order ruled out: the best static config that is safe on
/// traffic whose failures bunch as chance would. The order is drawn with another seed than
/// the one the `random` column counts in, so that column checks it independently.
pub(super) fn safe_oracle(scenario: &Scenario, half: usize, tuned: &Config) -> Config {
    on_scored_half(
        scenario,
        half,
        tuned,
        Yardstick {
            random_order_check: Some(SAFE_ORACLE_SEED),
            ..Yardstick::default()
        },
    )
}

/// The seed of the random order [`safe_oracle`]'s search checks its candidates in.
pub(super) const SAFE_ORACLE_SEED: u64 = 0x5afe_0de5;

/// The best static config of the grid within the tuner's safety bounds (the bounded grid,
/// at least [`Grid::SAFE_MIN_FAILURES_TO_TRIP`] failures to trip and the noise margin on the
/// scored half's usual traffic), chosen with the truth on the scored half: what the bounds
/// leave of the oracle.
pub(super) fn bounded(scenario: &Scenario, half: usize, tuned: &Config) -> Config {
    on_scored_half(
        scenario,
        half,
        tuned,
        Yardstick {
            within_bounds: true,
            ..Yardstick::default()
        },
    )
}

/// The scored half with the truth, from half an hour before it (the first step scored is
/// the second number): as long as the grid's longest window, and enough for every wait in it
/// to reach the state a replay of the whole history would, at a fraction of the work. A
/// config chosen on it is then scored like every other, from the start.
pub(super) fn scored_set(scenario: &Scenario, half: usize) -> (EvalSet, usize) {
    let history = &scenario.history;
    let warm_up = (ORACLE_WARM_UP.as_millis() / history.step.as_millis().max(1)) as usize;
    let from = half.saturating_sub(warm_up);
    let set = EvalSet {
        name: "scored",
        history: history.slice(from..history.len()),
        healthy: scenario
            .truth
            .healthy
            .get(from..)
            .unwrap_or_default()
            .to_vec(),
        incidents: scenario.truth.incidents.clone(),
    };
    (set, half - from)
}

/// The best static config of the grid with the truth on the scored half, each incident's
/// tail (the good calls refused from its end to the next probe) counted at its expected
/// length, as the tuner counts it (see `SearchOptions::expected_tails`): the oracle without
/// the luck of where the scored incidents' ends fell among its probes.
pub(super) fn expected_oracle(scenario: &Scenario, half: usize, tuned: &Config) -> Config {
    on_scored_half(
        scenario,
        half,
        tuned,
        Yardstick {
            expected_tails: true,
            ..Yardstick::default()
        },
    )
}

/// [`best_static`] on the scored half ([`scored_set`]).
fn on_scored_half(
    scenario: &Scenario,
    half: usize,
    tuned: &Config,
    yardstick: Yardstick,
) -> Config {
    let (set, score_from) = scored_set(scenario, half);
    best_static(set, score_from, tuned, yardstick)
}

/// How [`best_static`]'s search differs from the oracle's.
#[derive(Clone, Copy, Debug, Default)]
struct Yardstick {
    /// The grid, the seeds and every candidate kept within the tuner's safety bounds.
    within_bounds: bool,
    /// See [`SearchOptions::random_order_check`].
    random_order_check: Option<u64>,
    /// See [`SearchOptions::expected_tails`].
    expected_tails: bool,
}

/// The best config of the grid for `set` (its steps from `score_from` on scored), by the
/// widest search: coordinate descent from every library default and `tuned`, changed as
/// `yardstick` says.
fn best_static(set: EvalSet, score_from: usize, tuned: &Config, yardstick: Yardstick) -> Config {
    let Yardstick {
        within_bounds,
        random_order_check,
        expected_tails,
    } = yardstick;
    let mut grid = Grid::for_history(&set.history.slice(score_from..set.history.len()));
    let mut seeds: Vec<Candidate> = defaults::library_defaults()
        .iter()
        .map(|(_, config)| Candidate::from_config(config))
        .collect();
    seeds.push(Candidate::from_config(tuned));
    let usual = within_bounds.then(|| {
        // The noise margin reads only which steps are usual.
        let labels = Labels {
            anomalous: set.healthy.iter().map(|healthy| !healthy).collect(),
            ..Labels::default()
        };
        (set.history.clone(), labels)
    });
    let mut search = Search::from_sets(
        vec![set],
        SearchOptions {
            inject: false,
            max_rounds: 6,
            // Descend from every seed: the oracle is the yardstick, so it gets the widest search;
            // the joint moves (as costly again) from the three best end points of those descents.
            n_starts: usize::MAX,
            joint_starts: 3,
            // The runner-up's cost means nothing here, so a replay gives up as early as is safe.
            give_up_factor: 1.0,
            min_failures_to_trip: if within_bounds {
                Grid::SAFE_MIN_FAILURES_TO_TRIP
            } else {
                0.0
            },
            random_order_check,
            expected_tails,
            ..SearchOptions::default()
        },
    );
    if let Some((history, labels)) = usual {
        grid = grid.within_safety_bounds();
        for seed in &mut seeds {
            // Like the tuner's: no call timeout (opossum's default has one).
            seed.call_timeout = None;
            suggest::within_safety_bounds(seed);
        }
        search = search.with_noise_margin(&history, &labels);
        search.apply_safety_bounds(&mut seeds);
    }
    search.score_from_step(score_from);
    search
        .run(&grid, &seeds)
        .map_or_else(|| tuned.clone(), |found| found.config)
}
