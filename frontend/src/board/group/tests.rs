//! `Board::regroup` against `Board::groups` made anew.

use protocol::{State, StreamEvent};

use super::super::tests::{summary, transition};
use super::Grouping;
use crate::board::Board;
use crate::filter::{Filter, SortBy, StateFilter};

/// Every sort and state filter, with and without a search.
fn every_filter() -> Vec<Filter> {
    let mut filters = Vec::new();
    for sort in SortBy::ALL {
        for state in StateFilter::ALL {
            for search in ["", "b1"] {
                filters.push(Filter {
                    sort,
                    state,
                    search: search.into(),
                    view: None,
                });
            }
        }
    }
    filters
}

#[test]
fn regrouping_what_changed_gives_the_groups_made_anew() {
    // A fixed pseudo-random walk: new breakers, transitions and summaries with new rates.
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let states = [State::Closed, State::HalfOpen, State::Open];
    let filters = every_filter();
    let mut board = Board::default();
    let mut kept: Vec<Option<Grouping>> = vec![None; filters.len()];
    for at_ms in 1..400i64 {
        let service = format!("s{}", next(8));
        let breaker = format!("b{}", next(6));
        match next(3) {
            0 => {
                let from = states[next(3) as usize];
                let to = states[next(3) as usize];
                let instance = format!("i-{}", next(2));
                board.apply(transition(&service, &breaker, &instance, at_ms, from, to));
            }
            _ => {
                let mut update = summary(&service, &breaker, states[next(3) as usize], at_ms);
                update.failure_rate = Some(next(10) as f64 / 10.0);
                update.calls_per_s = next(5) as f64;
                board.apply(StreamEvent::Summary(update));
            }
        }
        for (filter, kept) in filters.iter().zip(kept.iter_mut()) {
            let before = kept.as_ref().map(|grouping| grouping.groups.clone());
            let (grouping, changed) = board.regroup(filter, kept.take());
            assert_eq!(
                grouping.groups,
                board.groups(filter),
                "{filter:?} at {at_ms}"
            );
            assert_eq!(changed, before.as_ref() != Some(&grouping.groups));
            *kept = Some(grouping);
        }
    }
}

#[test]
fn a_transition_regroups_only_its_service() {
    let mut board = Board::default();
    let summaries = (0..30)
        .flat_map(|s| {
            (0..10).map(move |b| summary(&format!("s{s}"), &format!("b{b}"), State::Closed, 1))
        })
        .collect();
    board.apply_snapshot(summaries);
    let filter = Filter::default();
    let (before, _) = board.regroup(&filter, None);
    let shared = before.groups.clone();
    // A summary that changes no key the state sort uses regroups nothing.
    let mut quiet = summary("s3", "b4", State::Closed, 2);
    quiet.failure_rate = Some(0.3);
    board.apply(StreamEvent::Summary(quiet));
    let (before, changed) = board.regroup(&filter, Some(before));
    assert!(!changed);
    board.apply(transition("s7", "b2", "i-1", 3, State::Closed, State::Open));
    let (after, changed) = board.regroup(&filter, Some(before));
    assert!(changed);
    assert_eq!(after.groups, board.groups(&filter));
    assert_eq!(after.groups[0].service, "s7");
    assert_eq!(*after.groups[0].breakers.first().unwrap(), "b2");
    for group in &after.groups[1..] {
        let old = shared
            .iter()
            .find(|old| old.service == group.service)
            .unwrap();
        assert!(
            std::sync::Arc::ptr_eq(&old.breakers, &group.breakers),
            "{} was rebuilt",
            group.service
        );
    }
}
