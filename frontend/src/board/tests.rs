use protocol::{
    BreakerSummary, InstanceState, State, StreamEvent, Transition, TransitionRecord, Trigger, Trip,
};

use super::{Board, SPARK_SECONDS, Spark, StateCounts};
use crate::filter::{Filter, SortBy, StateFilter};

pub(in crate::board) fn summary(
    service: &str,
    breaker: &str,
    state: State,
    updated_ms: i64,
) -> BreakerSummary {
    BreakerSummary {
        service: service.into(),
        breaker: breaker.into(),
        state,
        since_ms: 0,
        instances: vec![InstanceState {
            instance: "i-1".into(),
            state,
            since_ms: 0,
            config_version: 1,
        }],
        open_instances: u32::from(state == State::Open),
        failure_rate: Some(0.1),
        failure_rate_threshold: Some(0.5),
        calls_per_s: 10.0,
        slow_call_rate: None,
        p99_ms: None,
        updated_ms,
        last_trip: None,
    }
}

pub(in crate::board) fn transition(
    service: &str,
    breaker: &str,
    instance: &str,
    at_ms: i64,
    from: State,
    to: State,
) -> StreamEvent {
    StreamEvent::Transition(TransitionRecord {
        id: at_ms,
        service: service.into(),
        instance: instance.into(),
        transition: Transition {
            breaker: breaker.into(),
            at_ms,
            from,
            to,
            trigger: Some(Trigger {
                kind: "failure_rate".into(),
                value: 0.8,
                threshold: 0.5,
            }),
            config_version: 1,
        },
    })
}

fn key(service: &str, breaker: &str) -> (String, String) {
    (service.into(), breaker.into())
}

#[test]
fn transition_changes_state_at_once_and_keeps_rates() {
    let mut board = Board::default();
    board.apply_snapshot(vec![summary("pay", "db", State::Closed, 1_000)]);
    board.apply(transition(
        "pay",
        "db",
        "i-1",
        2_000,
        State::Closed,
        State::Open,
    ));

    let entry = board.entry(&key("pay", "db")).unwrap();
    assert_eq!(entry.summary.state, State::Open);
    assert_eq!(entry.summary.since_ms, 2_000);
    assert_eq!(entry.summary.open_instances, 1);
    assert_eq!(entry.summary.failure_rate, Some(0.1));
    let trip = entry.last_trip.as_ref().unwrap();
    assert_eq!((trip.at_ms, trip.trigger.value), (2_000, 0.8));
}

#[test]
fn worst_instance_wins_and_recovery_of_one_is_not_enough() {
    let mut board = Board::default();
    board.apply(transition(
        "pay",
        "db",
        "a",
        1_000,
        State::Closed,
        State::Open,
    ));
    board.apply(transition(
        "pay",
        "db",
        "b",
        1_500,
        State::Closed,
        State::Open,
    ));
    board.apply(transition(
        "pay",
        "db",
        "a",
        3_000,
        State::Open,
        State::HalfOpen,
    ));
    let entry = board.entry(&key("pay", "db")).unwrap();
    assert_eq!(entry.summary.state, State::Open);
    assert_eq!(entry.summary.since_ms, 1_500);
    assert_eq!(entry.summary.open_instances, 1);

    board.apply(transition(
        "pay",
        "db",
        "b",
        3_100,
        State::Open,
        State::HalfOpen,
    ));
    assert_eq!(
        board.entry(&key("pay", "db")).unwrap().summary.state,
        State::HalfOpen
    );
}

#[test]
fn stale_transition_is_ignored() {
    let mut board = Board::default();
    board.apply(transition(
        "pay",
        "db",
        "a",
        5_000,
        State::Open,
        State::Closed,
    ));
    board.apply(transition(
        "pay",
        "db",
        "a",
        4_000,
        State::Closed,
        State::Open,
    ));
    assert_eq!(
        board.entry(&key("pay", "db")).unwrap().summary.state,
        State::Closed
    );
}

#[test]
fn summary_event_replaces_the_tile() {
    let mut board = Board::default();
    board.apply(transition(
        "pay",
        "db",
        "a",
        1_000,
        State::Closed,
        State::Open,
    ));
    board.apply(StreamEvent::Summary(summary(
        "pay",
        "db",
        State::Closed,
        9_000,
    )));
    let entry = board.entry(&key("pay", "db")).unwrap();
    assert_eq!(entry.summary.state, State::Closed);
    assert_eq!(entry.summary.calls_per_s, 10.0);
}

#[test]
fn older_snapshot_does_not_undo_newer_stream_events() {
    let mut board = Board::default();
    board.apply(transition(
        "pay",
        "db",
        "i-1",
        2_000,
        State::Closed,
        State::Open,
    ));
    board.apply_snapshot(vec![
        summary("pay", "db", State::Closed, 1_000),
        summary("pay", "cache", State::Closed, 1_000),
    ]);
    assert_eq!(
        board.entry(&key("pay", "db")).unwrap().summary.state,
        State::Open
    );
    assert!(board.entry(&key("pay", "cache")).is_some());

    board.apply_snapshot(vec![summary("pay", "db", State::Closed, 3_000)]);
    assert_eq!(
        board.entry(&key("pay", "db")).unwrap().summary.state,
        State::Closed
    );
}

#[test]
fn groups_put_trouble_first() {
    let mut board = Board::default();
    board.apply_snapshot(vec![
        summary("alpha", "a", State::Closed, 1),
        summary("alpha", "b", State::Closed, 1),
        summary("zulu", "a", State::Closed, 1),
        summary("zulu", "b", State::Open, 1),
        summary("mike", "x", State::HalfOpen, 1),
    ]);
    let order: Vec<(String, State, Vec<String>)> = board
        .groups(&Filter::default())
        .into_iter()
        .map(|group| (group.service, group.worst, group.breakers.to_vec()))
        .collect();
    assert_eq!(
        order,
        vec![
            ("zulu".into(), State::Open, vec!["b".into(), "a".into()]),
            ("mike".into(), State::HalfOpen, vec!["x".into()]),
            ("alpha".into(), State::Closed, vec!["a".into(), "b".into()]),
        ]
    );
    assert_eq!(
        board.counts(),
        StateCounts {
            closed: 3,
            half_open: 1,
            open: 1
        }
    );
}

#[test]
fn filters_hide_breakers_and_empty_services() {
    let mut board = Board::default();
    board.apply_snapshot(vec![
        summary("alpha", "a", State::Closed, 1),
        summary("zulu", "b", State::Open, 1),
    ]);
    let filter = Filter {
        sort: SortBy::Name,
        state: StateFilter::NotClosed,
        search: String::new(),
        view: None,
    };
    let groups = board.groups(&filter);
    assert_eq!(groups.len(), 1);
    assert_eq!(*groups[0].breakers, ["b".to_string()]);
}

#[test]
fn sparkline_keeps_one_value_per_second() {
    let mut spark = Spark::default();
    spark.seed(10_000, &[1.0, 2.0, 3.0]);
    assert_eq!(spark.values, [1.0, 2.0, 3.0]);
    spark.record(12, 4.0); // the seeded second 12 again: replaced
    spark.record(14, 5.0); // second 13 had no summary: no calls
    spark.record(11, 9.0); // older: ignored
    assert_eq!(spark.values, [1.0, 2.0, 4.0, 0.0, 5.0]);
    for second in 15..400 {
        spark.record(second, 1.0);
    }
    assert_eq!(spark.values.len(), SPARK_SECONDS);
}

#[test]
fn summaries_feed_the_sparkline() {
    let mut board = Board::default();
    board.apply(StreamEvent::Summary(summary(
        "s",
        "b",
        State::Closed,
        5_000,
    )));
    board.apply(StreamEvent::Summary(summary(
        "s",
        "b",
        State::Closed,
        6_000,
    )));
    let entry = board.entry(&key("s", "b")).unwrap();
    assert_eq!(entry.spark.values, [10.0, 10.0]);
}

#[test]
fn applied_names_the_changed_tiles_and_what_may_reorder() {
    let mut board = Board::default();
    let applied = board.apply_snapshot(vec![
        summary("pay", "db", State::Closed, 1_000),
        summary("pay", "cache", State::Closed, 1_000),
    ]);
    assert!(applied.added);
    assert_eq!(applied.touched, vec![key("pay", "db"), key("pay", "cache")]);

    // The same summary again changes nothing.
    let applied = board.apply_snapshot(vec![summary("pay", "db", State::Closed, 1_000)]);
    assert_eq!(applied, super::Applied::default());

    // A new failure rate touches one tile and reorders only a failure-rate sort.
    let mut changed = summary("pay", "db", State::Closed, 2_000);
    changed.failure_rate = Some(0.3);
    let mut applied = super::Applied::default();
    board.apply_summary(changed, &[(2, 10.0)], &mut applied);
    assert_eq!(applied.touched, vec![key("pay", "db")]);
    assert!(!applied.added && !applied.states && !applied.volumes);
    assert!(applied.reorders(SortBy::FailureRate));
    assert!(!applied.reorders(SortBy::State));
    assert!(!applied.reorders(SortBy::Name));

    // A transition changes the state: every sort that filters or orders by state.
    let applied = board.apply(transition(
        "pay",
        "cache",
        "i-1",
        3_000,
        State::Closed,
        State::Open,
    ));
    assert_eq!(applied.touched, vec![key("pay", "cache")]);
    assert!(applied.states && applied.reorders(SortBy::Name));
}

#[test]
fn coalesced_sparkline_values_are_recorded_in_order() {
    let mut board = Board::default();
    let mut applied = super::Applied::default();
    board.apply_summary(
        summary("s", "b", State::Closed, 7_000),
        &[(5, 1.0), (6, 2.0), (7, 3.0)],
        &mut applied,
    );
    assert_eq!(
        board.entry(&key("s", "b")).unwrap().spark.values,
        [1.0, 2.0, 3.0]
    );
    let mut later = super::Applied::default();
    board.apply_summary(
        summary("s", "b", State::Closed, 7_000),
        &[(7, 3.0)],
        &mut later,
    );
    assert!(later.touched.is_empty(), "nothing new to show");
}

/// What an Open tile says, as the overview binds it.
#[track_caller]
fn check_tile(board: &Board, breaker: &str, expected: (&str, &str, &str, Option<&str>)) {
    let tile = crate::format::tile_view(board.entry(&key("pay", breaker)).unwrap());
    let (label, rate, threshold, trigger) = expected;
    assert_eq!(
        (
            tile.failure_rate_label,
            tile.failure_rate.as_str(),
            tile.threshold.as_str(),
            tile.trigger.as_deref()
        ),
        (label, rate, threshold, trigger)
    );
}

// 2026-11-22T13:05:09Z
const TRIPPED_MS: i64 = 1_795_352_709_000;

fn open_without_calls(breaker: &str, last_trip: Option<Trip>) -> BreakerSummary {
    BreakerSummary {
        failure_rate: None,
        slow_call_rate: None,
        since_ms: TRIPPED_MS,
        last_trip,
        ..summary("pay", breaker, State::Open, TRIPPED_MS + 5_000)
    }
}

fn trip(kind: &str, value: f64, threshold: f64) -> Trip {
    Trip {
        instance: "i-1".into(),
        at_ms: TRIPPED_MS,
        trigger: Trigger {
            kind: kind.into(),
            value,
            threshold,
        },
    }
}

#[test]
fn an_open_tile_shows_the_rate_that_tripped_it_and_when() {
    let mut board = Board::default();
    board.apply_snapshot(vec![
        open_without_calls("db", Some(trip("failure_rate", 0.62, 0.5))),
        open_without_calls("cache", Some(trip("slow_call_rate", 0.125, 0.1))),
        open_without_calls("queue", Some(trip("manual", 0.0, 0.0))),
        open_without_calls("unknown", None),
    ]);
    // From the list endpoint: no stream news needed.
    check_tile(
        &board,
        "db",
        (
            "failure rate at trip",
            "62 %",
            "50 %",
            Some("tripped on failure rate: 62 % ≥ 50 % at 13:05:09 UTC"),
        ),
    );
    let db = crate::format::tile_view(board.entry(&key("pay", "db")).unwrap());
    assert!(db.over_threshold && db.failure_rate_at_trip && !db.slow_call_rate_at_trip);
    // Tripped on slow calls: the slow metric shows the tripping value; no failure rate known.
    let cache = crate::format::tile_view(board.entry(&key("pay", "cache")).unwrap());
    assert_eq!(
        (cache.slow_label, cache.slow_call_rate.as_str()),
        ("slow at trip", "12.5 %")
    );
    check_tile(
        &board,
        "cache",
        (
            "failure rate",
            "–",
            "50 %",
            Some("tripped on slow-call rate: 12.5 % ≥ 10 % at 13:05:09 UTC"),
        ),
    );
    check_tile(
        &board,
        "queue",
        ("failure rate", "–", "50 %", Some("manual at 13:05:09 UTC")),
    );
    check_tile(&board, "unknown", ("failure rate", "–", "50 %", None));
}

#[test]
fn a_current_rate_wins_over_the_tripping_one_and_closed_tiles_say_nothing() {
    let mut board = Board::default();
    let mut partly_open = open_without_calls("db", Some(trip("failure_rate", 0.62, 0.5)));
    // Another instance still passes calls: its rate is what is happening now.
    partly_open.failure_rate = Some(0.2);
    partly_open.instances.push(InstanceState {
        instance: "i-2".into(),
        state: State::Closed,
        since_ms: 0,
        config_version: 1,
    });
    board.apply_snapshot(vec![partly_open, summary("pay", "cache", State::Closed, 1)]);
    check_tile(
        &board,
        "db",
        (
            "failure rate",
            "20 %",
            "50 %",
            Some("tripped on failure rate: 62 % ≥ 50 % at 13:05:09 UTC (i-1)"),
        ),
    );
    check_tile(&board, "cache", ("failure rate", "10 %", "50 %", None));
}

#[test]
fn the_trip_comes_from_the_last_closed_to_open_transition() {
    let mut board = Board::default();
    board.apply_snapshot(vec![open_without_calls("db", None)]);
    board.apply(transition(
        "pay",
        "db",
        "i-1",
        TRIPPED_MS + 10_000,
        State::Closed,
        State::Open,
    ));
    // A failed probe (Half-Open → Open) does not replace what tripped it.
    let mut probe = transition(
        "pay",
        "db",
        "i-1",
        TRIPPED_MS + 40_000,
        State::HalfOpen,
        State::Open,
    );
    if let StreamEvent::Transition(record) = &mut probe {
        record.transition.trigger = Some(Trigger {
            kind: "probe_failed".into(),
            value: 0.0,
            threshold: 0.0,
        });
    }
    board.apply(probe);
    let at_trip = (
        "failure rate at trip",
        "80 %",
        "50 %",
        Some("tripped on failure rate: 80 % ≥ 50 % at 13:05:19 UTC"),
    );
    check_tile(&board, "db", at_trip);
    // A summary computed before that transition does not take it back.
    board.apply_snapshot(vec![open_without_calls(
        "db",
        Some(trip("failure_rate", 0.62, 0.5)),
    )]);
    check_tile(&board, "db", at_trip);
}
