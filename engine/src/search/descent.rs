//! The coordinate descent, the rule by which one candidate beats another, and what a
//! configuration costs on one evaluation set.

use breaker::Config;

use super::grid::{Grid, Param};
use super::{Candidate, EvalSet, Search, tail};
use crate::replay;

// === impl Search ===

impl Search {
    /// Coordinate descent from one starting point, with the joint moves where it settles
    /// when `joint`.
    pub(super) fn descend(
        &mut self,
        grid: &Grid,
        mut best_cost: f64,
        mut best: Candidate,
        joint: bool,
    ) -> (f64, Candidate) {
        // Rounds over every parameter until one changes nothing (or the rounds run out);
        // then the joint moves, and when one of them helps, more rounds (at most two more).
        // The joint moves only ever lower the cost of where the plain descent settled.
        let mut rounds = 0;
        loop {
            let mut changed = false;
            for param in Param::ALL {
                changed |= self.try_variants(grid, param, &mut best_cost, &mut best);
                if self.should_stop() {
                    return (best_cost, best);
                }
            }
            rounds += 1;
            if changed && rounds < self.opts.max_rounds {
                continue;
            }
            if !joint || rounds >= self.opts.max_rounds + 2 || !self.time_to_go_on() {
                break;
            }
            let mut joint = false;
            for param in [Param::WaitAndProbes, Param::WindowAndMinimum] {
                joint |= self.try_variants(grid, param, &mut best_cost, &mut best);
            }
            if !joint {
                break;
            }
        }
        (best_cost, best)
    }

    /// Whether more work of the size already done fits: the joint moves (and the rounds they
    /// may bring), or a descent from a further start. Always without a deadline (so an
    /// evaluation stays deterministic); with one, while twice the time the search has taken so
    /// far is left (the work may cost as much again, and the finalists' replays follow). A run
    /// under a tight budget then ends with what it has instead of running out of time with
    /// no result.
    pub(super) fn time_to_go_on(&self) -> bool {
        self.opts
            .stop
            .time_left()
            .is_none_or(|left| left >= 2 * self.started.elapsed())
    }

    /// Every variant of `best` along `param`, keeping each that beats it; whether one did.
    fn try_variants(
        &mut self,
        grid: &Grid,
        param: Param,
        best_cost: &mut f64,
        best: &mut Candidate,
    ) -> bool {
        let mut changed = false;
        for mut variant in grid.variants(best, param) {
            if self.should_stop() {
                return changed;
            }
            // A lower threshold brings a higher minimum of calls with it.
            if self.opts.min_failures_to_trip > 0.0 {
                variant.require_failures(self.opts.min_failures_to_trip);
                if let Some(risk) = &self.probe_risk {
                    risk.require_noise_margin(&mut variant);
                }
            }
            if variant == *best {
                continue;
            }
            let cost = self.screen_cost(&variant, *best_cost + 1e-9);
            if better(cost, &variant, *best_cost, best) {
                *best_cost = cost;
                *best = variant;
                changed = true;
            }
        }
        changed
    }
}

/// Whether `cost` of `cand` beats `best_cost` of `best`: by a margin, or equal and simpler.
pub(super) fn better(cost: f64, cand: &Candidate, best_cost: f64, best: &Candidate) -> bool {
    if !cost.is_finite() {
        return false;
    }
    let margin = 0.01 * best_cost + 0.5;
    cost < best_cost - margin || (cost <= best_cost + 1e-9 && cand.complexity() < best.complexity())
}

/// How [`cost_on`] prices what a replay did beyond `lost_good + 0.2 · wasted`.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Pricing {
    /// See [`super::SearchOptions::false_trip_penalty_s`].
    pub false_trip_penalty_s: f64,
    /// See [`super::SearchOptions::expected_tails`].
    pub expected_tails: bool,
    /// See [`super::SearchOptions::price_chance_closes`].
    pub chance_closes: bool,
}

/// The cost of `config` on `set`, counted from step `score_from` on, priced by `pricing`
/// (the false-trip penalty, the expected tails), times `weight` (the thinning
/// factor when `set` is a thinned copy); adds the calls it drove through the machine to
/// `replayed_calls`. The replay stops as soon as the calls lost and wasted so far cost more
/// than `give_up_above`: the result is then that partial cost, a lower bound above it (the
/// cost only grows step by step, and the penalty only adds; the expected tails can take a
/// complete replay's cost a little below its partial sums, which the search's give-up factor
/// leaves room for).
pub(super) fn cost_on(
    (set, steps): (&EvalSet, &replay::Steps),
    config: &Config,
    weight: u32,
    score_from: usize,
    pricing: Pricing,
    replayed_calls: &mut u64,
    give_up_above: f64,
) -> f64 {
    let (mut lost_good, mut wasted) = (0u64, 0u64);
    // Summed as `replay::score` sums, so a complete replay's cost is the same number.
    let partial = |lost_good: u64, wasted: u64| {
        (lost_good as f64 + replay::WASTED_WEIGHT * wasted as f64) * f64::from(weight)
    };
    let mut res = replay::replay_laid_out_while(
        &set.history,
        steps,
        0..set.history.len(),
        config,
        |step, admitted, rejected| {
            if give_up_above.is_nan() || give_up_above < 0.0 {
                // Not even a cost of nothing is within the bound.
                return false;
            }
            if step < score_from {
                return true;
            }
            if set.healthy.get(step).copied().unwrap_or(true) {
                if rejected == 0 {
                    return true;
                }
                lost_good += u64::from(rejected);
            } else {
                if admitted == 0 {
                    return true;
                }
                wasted += u64::from(admitted);
            }
            // Judged again only when the cost grew (it was within the bound before).
            partial(lost_good, wasted) <= give_up_above
        },
    );
    *replayed_calls += res.replayed_calls;
    if res.range.len() < set.history.len() {
        return partial(lost_good, wasted);
    }
    res.drop_steps_before(score_from);
    let score = replay::score(&set.history, &res, &set.healthy, &set.incidents);
    let penalty = if pricing.false_trip_penalty_s > 0.0 && score.false_trips > 0 {
        let seconds = set.history.len() as f64 * set.history.step.as_secs_f64();
        let rate = set.history.n_calls() as f64 / seconds.max(1.0);
        f64::from(score.false_trips) * pricing.false_trip_penalty_s * rate
    } else {
        0.0
    };
    let from_ms = set
        .history
        .steps
        .get(res.range.start)
        .map_or(u64::MAX, |s| s.t_ms);
    let tails = if pricing.expected_tails {
        tail::expected_minus_replayed(&set.history, &res.transitions, &set.incidents, from_ms)
    } else {
        0.0
    };
    let closes = if pricing.chance_closes {
        super::chance_close::chance_close_cost(
            &set.history,
            &res.transitions,
            &set.incidents,
            config,
            from_ms,
        )
    } else {
        0.0
    };
    ((score.cost + tails).max(0.0) + penalty + closes) * f64::from(weight)
}

#[cfg(test)]
mod tests;
