//! The overview's matrix: one row per service, one small cell per breaker, coloured by state, for
//! fleets too large for tiles.
//!
//! Pure and host-tested: [`rows`] lays the rows out from the board's groups (the same filter and
//! order as the tiles); each cell's state is read live from the board by its own component, so a
//! transition repaints one cell, not the matrix.

use protocol::State;

use crate::board::{Board, ServiceGroup, StateCounts};
use crate::format;

/// One service's row.
#[derive(Clone, Debug, PartialEq)]
pub struct MatrixRow {
    pub service: String,
    pub worst: State,
    /// How many of the row's breakers are in each state.
    pub counts: StateCounts,
    pub cells: Vec<MatrixCell>,
}

/// One breaker's cell: its name and the link to its page (the tile's link).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MatrixCell {
    pub breaker: String,
    pub href: String,
}

/// The matrix's rows, in the order of `groups` (as [`Board::groups`] filtered and sorted them),
/// each row's cells in its group's order.
pub fn rows(board: &Board, groups: &[ServiceGroup]) -> Vec<MatrixRow> {
    groups
        .iter()
        .map(|group| {
            let mut counts = StateCounts::default();
            let cells = group
                .breakers
                .iter()
                .map(|breaker| {
                    let key = (group.service.clone(), breaker.clone());
                    match board.entry(&key).map(|entry| entry.summary.state) {
                        Some(State::Open) => counts.open += 1,
                        Some(State::HalfOpen) => counts.half_open += 1,
                        Some(State::Closed) | None => counts.closed += 1,
                    }
                    MatrixCell {
                        breaker: breaker.clone(),
                        href: format::detail_href(&group.service, breaker),
                    }
                })
                .collect();
            MatrixRow {
                service: group.service.clone(),
                worst: group.worst,
                counts,
                cells,
            }
        })
        .collect()
}

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
    use crate::filter::{Filter, SortBy, StateFilter};

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
        let laid_out: Vec<String> = rows(board, &board.groups(filter))
            .iter()
            .map(|row| {
                let cells: Vec<&str> = row.cells.iter().map(|cell| cell.breaker.as_str()).collect();
                format!(
                    "{} [{}]: {}",
                    row.service,
                    row_summary(row.counts),
                    cells.join(" ")
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
        let laid_out = rows(&board, &board.groups(&Filter::default()));
        assert_eq!(laid_out.len(), 20);
        assert!(laid_out.iter().all(|row| row.cells.len() == 100));
        let unique: std::collections::HashSet<_> = laid_out
            .iter()
            .flat_map(|row| row.cells.iter().map(|cell| &cell.href))
            .collect();
        assert_eq!(unique.len(), 2000);
    }

    #[test]
    fn cells_link_to_the_breaker_page_and_name_their_state() {
        let board = fleet();
        let laid_out = rows(&board, &board.groups(&Filter::default()));
        assert_eq!(
            laid_out[0].cells[0].href,
            "/breaker?service=checkout&breaker=payments"
        );
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
