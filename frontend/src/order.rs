//! The overview's lists in the DOM: each keyed `<For>` renders its elements in the order of
//! their names, which a re-sort never changes, and each element is placed where the sort puts
//! it by its CSS `order` ([`Positions`]); the containers are flex or grid boxes whose
//! `reading-flow` makes focus and reading follow that visual order (style.css).
//!
//! A `<For>` given the sorted list itself moves elements in the DOM when the order changes, and
//! its diff moves every element between an element's old place and its new one: a breaker that
//! opens, moving to the front of its service, took every tile before it out of the document and
//! back in, their styles and layout made anew (the browser bench's 500 tiles: a transition's
//! apply and render p99 69 ms that way, 21–27 ms placed by `order`). Placed by `order`, nothing
//! leaves the document, and only the elements that moved among the others get a new value.

use std::collections::HashMap;

/// `shown` (names in the order the sort shows them) in the order of the names: the list a
/// keyed `<For>` renders, the same until a name comes or goes.
pub fn by_name(shown: &[String]) -> Vec<String> {
    let mut names = shown.to_vec();
    names.sort_unstable();
    names
}

/// Each name's CSS `order`: values that increase along the order shown, not positions, so that
/// a re-sort gives new values only to the names that moved ([`Positions::next`]).
///
/// Every element whose `order` changes gets its style worked out and its box painted again,
/// even where it lands in the same place on screen; with positions (0, 1, 2, …) a breaker that
/// opened and went to the front of its service changed the value of every tile before it
/// (the browser bench's 500 tiles: 41 tiles painted again per transition, 4–5 ms of the
/// frame), where it is the one value that changes now.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Positions {
    of: HashMap<String, i32>,
}

/// The gap between neighbours' values when they are spread afresh.
const SPACING: i64 = 1 << 12;
/// Values stay within ±`BOUND`; [`Positions::of`] gives a name not shown `BOUND + 1`.
const BOUND: i64 = 1 << 30;

impl Positions {
    /// Values for `shown` (names in the order shown) spread evenly around 0.
    pub fn new(shown: &[String]) -> Positions {
        let values = spread(None, None, shown.len()).expect("values fit for any list a page shows");
        Positions::of_values(shown, values)
    }

    /// Values for `shown` that keep this one's for the longest run of names that were shown
    /// before and are still in the same order among themselves; the others get values in the
    /// gaps around them. All names get new values, spread evenly, only when a gap is too
    /// narrow for the names it must take.
    pub fn next(&self, shown: &[String]) -> Positions {
        let before: Vec<Option<i64>> = shown
            .iter()
            .map(|name| self.of.get(name).map(|&value| i64::from(value)))
            .collect();
        let kept = longest_increasing(&before);
        let mut values: Vec<i64> = Vec::with_capacity(shown.len());
        let mut start: usize = 0;
        // Each run of names to place ends before a kept name, or at the end.
        for end in kept.iter().copied().chain([shown.len()]) {
            let low = start.checked_sub(1).map(|i| values[i]);
            let high = before
                .get(end)
                .copied()
                .flatten()
                .filter(|_| end < shown.len());
            let Some(run) = spread(low, high, end - start) else {
                return Positions::new(shown);
            };
            values.extend(run);
            if end < shown.len() {
                values.push(high.expect("a kept name has a value"));
            }
            start = end + 1;
        }
        Positions::of_values(shown, values)
    }

    fn of_values(shown: &[String], values: Vec<i64>) -> Positions {
        let of = shown.iter().cloned();
        Positions {
            of: of
                .zip(values.into_iter().map(|value| value as i32))
                .collect(),
        }
    }

    /// `name`'s value; past every other when it is not shown (an element about to go).
    pub fn of(&self, name: &str) -> i32 {
        self.of.get(name).copied().unwrap_or((BOUND + 1) as i32)
    }
}

/// `n` increasing values strictly between `low` and `high` (the ends of the range where
/// `None`): [`SPACING`] apart (or less, as the room to [`BOUND`] allows) next to one side when
/// the other is open, else evenly spread; `None` when they do not fit.
fn spread(low: Option<i64>, high: Option<i64>, n: usize) -> Option<Vec<i64>> {
    let n = n as i64;
    // With a side open, `SPACING` apart while the room to the bounds allows.
    let step_to = |room: i64| SPACING.min(room / (n + 1));
    let (first, step) = match (low, high) {
        (None, None) => {
            let step = step_to(2 * BOUND);
            (-(n - 1) / 2 * step, step)
        }
        (Some(low), None) => {
            let step = step_to(BOUND - low);
            (low + step, step)
        }
        (None, Some(high)) => {
            let step = step_to(high + BOUND);
            (high - n * step, step)
        }
        (Some(low), Some(high)) => {
            let step = (high - low) / (n + 1);
            (low + step, step)
        }
    };
    let last = first + (n - 1) * step;
    let fits = step >= 1
        && first > low.unwrap_or(-BOUND - 1)
        && last < high.unwrap_or(BOUND + 1)
        && first >= -BOUND
        && last <= BOUND;
    (fits || n == 0).then(|| (0..n).map(|i| first + i * step).collect())
}

/// The indices of a longest strictly increasing subsequence of the known values (patience
/// sorting, O(n log n)), in order.
fn longest_increasing(values: &[Option<i64>]) -> Vec<usize> {
    // `tails[k]`: the index ending the best run of length k + 1 found so far.
    let mut tails: Vec<usize> = Vec::new();
    let mut previous: Vec<Option<usize>> = vec![None; values.len()];
    for (i, value) in values.iter().enumerate() {
        let Some(value) = *value else { continue };
        let k = tails.partition_point(|&t| values[t].expect("a tail has a value") < value);
        previous[i] = k.checked_sub(1).map(|k| tails[k]);
        if k == tails.len() {
            tails.push(i);
        } else {
            tails[k] = i;
        }
    }
    let mut run = Vec::with_capacity(tails.len());
    let mut at = tails.last().copied();
    while let Some(i) = at {
        run.push(i);
        at = previous[i];
    }
    run.reverse();
    run
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(names: &[&str]) -> Vec<String> {
        names.iter().map(|name| name.to_string()).collect()
    }

    /// The names sorted by their values: the order the page shows.
    fn shown_by(positions: &Positions, names: &[String]) -> Vec<String> {
        let mut placed = names.to_vec();
        placed.sort_by_key(|name| positions.of(name));
        placed
    }

    /// Names whose value differs between `a` and `b` (of those in `b`).
    fn changed(a: &Positions, b: &Positions) -> Vec<String> {
        let mut changed: Vec<String> = (b.of.keys())
            .filter(|name| a.of.get(*name) != b.of.get(*name))
            .cloned()
            .collect();
        changed.sort();
        changed
    }

    #[test]
    fn elements_keep_their_place_and_take_the_sorts_order() {
        let before = names(&["cache", "db", "payments", "search"]);
        // `search` opened: it is shown first now.
        let after = names(&["search", "cache", "db", "payments"]);
        // What the `<For>` renders does not change: no element moves in the DOM.
        assert_eq!(by_name(&after), by_name(&before));
        // Their CSS order does, and only the one that moved gets a new value.
        let positions = Positions::new(&before);
        assert_eq!(shown_by(&positions, &before), before);
        let next = positions.next(&after);
        assert_eq!(shown_by(&next, &after), after);
        assert_eq!(changed(&positions, &next), names(&["search"]));
        // It closes again and goes back between `payments` and nothing.
        let back = next.next(&before);
        assert_eq!(shown_by(&back, &before), before);
        assert_eq!(changed(&next, &back), names(&["search"]));
    }

    #[test]
    fn new_names_take_the_gaps_and_names_gone_leave_theirs() {
        let positions = Positions::new(&names(&["a", "c", "e"]));
        let shown = names(&["a", "b", "c", "d", "e", "f"]);
        let next = positions.next(&shown);
        assert_eq!(shown_by(&next, &shown), shown);
        assert_eq!(changed(&positions, &next), names(&["b", "d", "f"]));
        let fewer = names(&["f", "a", "e"]);
        let last = next.next(&fewer);
        assert_eq!(shown_by(&last, &fewer), fewer);
        assert_eq!(changed(&next, &last), names(&["f"]));
        assert_eq!(last.of.len(), 3);
    }

    #[test]
    fn a_name_no_longer_shown_goes_last() {
        let positions = Positions::new(&names(&["b", "a"]));
        assert!(positions.of("gone") > positions.of("a"));
        assert!(positions.of("gone") > positions.of("b"));
        assert_eq!(Positions::new(&[]).of("any"), positions.of("gone"));
    }

    /// Any sequence of re-sorts: the values always give the order shown, and only the names
    /// off a longest run still in order change (checked against a quadratic count), however
    /// often the same gap is split (values are spread afresh when it runs out).
    #[test]
    fn values_follow_every_re_sort_and_change_as_few_as_can_be() {
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        let mut random = move |below: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % below as u64) as usize
        };
        let all: Vec<String> = (0..40).map(|i| format!("b{i:02}")).collect();
        let mut shown = all.clone();
        let mut positions = Positions::new(&shown);
        let mut renumbered = 0;
        for round in 0..20_000 {
            match round % 5 {
                // One of the last to the front, or between the first two: the same gap split
                // again and again.
                0..=2 => {
                    let moved = shown.remove(shown.len() - 1 - random(3));
                    shown.insert((round % 5).min(1), moved);
                }
                // A few swaps.
                3 => {
                    for _ in 0..random(4) {
                        let (i, j) = (random(shown.len()), random(shown.len()));
                        shown.swap(i, j);
                    }
                }
                // One goes, or one comes back.
                _ => {
                    if shown.len() > 30 && random(2) == 0 {
                        shown.remove(random(shown.len()));
                    } else if let Some(name) = all.iter().find(|name| !shown.contains(name)) {
                        shown.insert(random(shown.len() + 1), name.clone());
                    }
                }
            }
            let next = positions.next(&shown);
            assert_eq!(shown_by(&next, &shown), shown, "round {round}");
            let was: Vec<Option<i32>> =
                shown.iter().map(|n| positions.of.get(n).copied()).collect();
            let n_changed = changed(&positions, &next).len();
            if n_changed == shown.len() && shown.len() > 1 {
                renumbered += 1;
            } else {
                assert_eq!(n_changed, shown.len() - longest_run(&was), "round {round}");
            }
            positions = next;
        }
        // Spreading afresh is the exception.
        assert!(renumbered < 100, "values spread afresh {renumbered} times");
    }

    #[test]
    fn a_gap_that_runs_out_is_spread_afresh() {
        let mut shown = names(&["a", "z"]);
        let mut positions = Positions::new(&shown);
        let mut renumbered = Vec::new();
        // Each new name goes between `a` and the one before it: the same gap halves.
        for i in 0..40 {
            shown.insert(1, format!("n{i:02}"));
            let next = positions.next(&shown);
            assert_eq!(shown_by(&next, &shown), shown);
            let n_changed = changed(&positions, &next).len();
            if n_changed > 1 {
                assert_eq!(n_changed, shown.len(), "all or one");
                renumbered.push(i);
            }
            positions = next;
        }
        // A gap of `SPACING` takes 12 halvings; spread afresh, the same again.
        assert_eq!(renumbered, vec![12, 25, 38]);
    }

    /// The length of a longest strictly increasing run of the known values, O(n²).
    fn longest_run(values: &[Option<i32>]) -> usize {
        let mut best = vec![0usize; values.len()];
        for i in 0..values.len() {
            let Some(v) = values[i] else { continue };
            best[i] = 1
                + (0..i)
                    .filter(|&j| values[j].is_some_and(|w| w < v))
                    .map(|j| best[j])
                    .max()
                    .unwrap_or(0);
        }
        best.into_iter().max().unwrap_or(0)
    }
}
