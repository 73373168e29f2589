//! The overview's matrix: one row per service, one small cell per breaker, coloured by state, for
//! fleets too large for tiles.
//!
//! Pure and host-tested: a row is a [`crate::board::ServiceGroup`] (the same filter and order as
//! the tiles, with the row's counts); each cell's state is read live from the board by its own
//! component, so a transition repaints one cell and the row headings, not the matrix. Here are the
//! words a row and a cell are shown with.

use protocol::State;

use crate::board::StateCounts;

/// A cell's text alternative, so its state is not told by colour alone: `checkout/db: Open`.
pub fn cell_label(service: &str, breaker: &str, state: State) -> String {
    format!("{service}/{breaker}: {}", charts::words::state_label(state))
}

/// What a row's heading says beside the service's name: `100 breakers · 2 open · 1 half-open`.
pub fn row_summary(counts: StateCounts) -> String {
    let total = counts.closed + counts.half_open + counts.open;
    let mut text = format!("{total} breaker{}", if total == 1 { "" } else { "s" });
    if counts.open > 0 {
        text.push_str(&format!(" · {} open", counts.open));
    }
    if counts.half_open > 0 {
        text.push_str(&format!(" · {} half-open", counts.half_open));
    }
    text
}

#[cfg(test)]
mod tests {
    use protocol::{BreakerSummary, State};

    use super::*;
    use crate::board::Board;
    use crate::filter::{Filter, SortBy, StateFilter};
    use crate::format;

    fn summary(service: &str, breaker: &str, state: State) -> BreakerSummary {
        BreakerSummary {
            service: service.into(),
            breaker: breaker.into(),
            state,
            since_ms: 0,
            instances: Vec::new(),
            open_instances: u32::from(state == State::Open),
            failure_rate: None,
            failure_rate_threshold: None,
            calls_per_s: 0.0,
            slow_call_rate: None,
            p99_ms: None,
            updated_ms: 1,
            last_trip: None,
        }
    }

    /// Lays out `board` under `filter` as one line per row: `service [counts]: cell cell …`.
    #[track_caller]
    fn check(board: &Board, filter: &Filter, expected: &[&str]) {
        let laid_out: Vec<String> = board
            .groups(filter)
            .iter()
            .map(|group| {
                format!(
                    "{} [{}]: {}",
                    group.service,
                    row_summary(group.counts),
                    group.breakers.join(" ")
                )
            })
            .collect();
        assert_eq!(laid_out, expected);
    }

    fn fleet() -> Board {
        let mut board = Board::default();
        board.apply_snapshot(vec![
            summary("checkout", "db", State::Closed),
            summary("checkout", "payments", State::Open),
            summary("checkout", "cache", State::HalfOpen),
            summary("search", "index", State::Closed),
            summary("search", "db", State::Closed),
        ]);
        board
    }

    #[test]
    fn one_row_per_service_in_the_filters_order() {
        let board = fleet();
        check(
            &board,
            &Filter::default(),
            &[
                "checkout [3 breakers · 1 open · 1 half-open]: payments cache db",
                "search [2 breakers]: db index",
            ],
        );
        check(
            &board,
            &Filter {
                sort: SortBy::Name,
                state: StateFilter::All,
                search: "db".into(),
                view: None,
            },
            &["checkout [1 breaker]: db", "search [1 breaker]: db"],
        );
        check(
            &board,
            &Filter {
                state: StateFilter::NotClosed,
                ..Filter::default()
            },
            &["checkout [2 breakers · 1 open · 1 half-open]: payments cache"],
        );
        check(&Board::default(), &Filter::default(), &[]);
    }

    #[test]
    fn a_row_counts_its_breakers_anew_after_a_transition() {
        let mut board = fleet();
        board.apply_snapshot(vec![summary("search", "index", State::Open)]);
        check(
            &board,
            &Filter::default(),
            &[
                "search [2 breakers · 1 open]: index db",
                "checkout [3 breakers · 1 open · 1 half-open]: payments cache db",
            ],
        );
    }

    #[test]
    fn a_large_fleet_gets_every_cell_once() {
        let mut board = Board::default();
        board.apply_snapshot(
            (0..20)
                .flat_map(|service_idx| {
                    (0..100).map(move |breaker_idx| {
                        summary(
                            &format!("svc-{service_idx:02}"),
                            &format!("dep-{breaker_idx:03}"),
                            State::Closed,
                        )
                    })
                })
                .collect(),
        );
        let groups = board.groups(&Filter::default());
        assert_eq!(groups.len(), 20);
        assert!(
            groups
                .iter()
                .all(|group| group.breakers.len() == 100 && group.counts.closed == 100)
        );
        let unique: std::collections::HashSet<_> = groups
            .iter()
            .flat_map(|group| {
                group
                    .breakers
                    .iter()
                    .map(|breaker| format::detail_href(&group.service, breaker))
            })
            .collect();
        assert_eq!(unique.len(), 2000);
    }

    #[test]
    fn cells_name_their_state() {
        assert_eq!(
            cell_label("checkout", "payments", State::Open),
            "checkout/payments: Open"
        );
        assert_eq!(
            cell_label("checkout", "cache", State::HalfOpen),
            "checkout/cache: Half-Open"
        );
    }
}
