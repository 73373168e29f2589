#[test]
fn pages_follow_the_order_from_a_cursor() {
    let mut fleet = Fleet::default();
    for (service, breaker) in [("a", "x"), ("a", "y"), ("b", "x"), ("c", "a/b"), ("c", "z")] {
        let live = InstanceLive::apply(
            None,
            &InstanceEvent::Interval(&aggregate(0, State::Closed, 1, 0)),
        );
        fleet.insert((service.into(), breaker.into()), "i".into(), live);
    }
    let names = |page: Vec<BreakerSummary>| {
        page.into_iter()
            .map(|s| format!("{}/{}", s.service, s.breaker))
            .collect::<Vec<_>>()
    };
    assert_eq!(names(fleet.summaries_page(None, None, 2)), ["a/x", "a/y"]);
    assert_eq!(
        names(fleet.summaries_page(None, Some(("a", "y")), 2)),
        ["b/x", "c/a/b"]
    );
    assert_eq!(
        names(fleet.summaries_page(None, Some(("c", "a/b")), 2)),
        ["c/z"]
    );
    // A cursor between names, and one within a service filter.
    assert_eq!(
        names(fleet.summaries_page(None, Some(("a", "xx")), 1)),
        ["a/y"]
    );
    assert_eq!(
        names(fleet.summaries_page(Some("a"), Some(("a", "x")), 5)),
        ["a/y"]
    );
    assert!(
        fleet
            .summaries_page(Some("a"), Some(("b", "")), 5)
            .is_empty()
    );
    let services: Vec<_> = fleet
        .services_page(Some("a"), 5)
        .into_iter()
        .map(|s| (s.service, s.breakers))
        .collect();
    assert_eq!(services, [("b".to_string(), 1), ("c".to_string(), 2)]);
}

use super::*;

fn transition(at_ms: i64, from: State, to: State) -> Transition {
    Transition {
        breaker: "b".into(),
        at_ms,
        from,
        to,
        trigger: None,
        config_version: 3,
    }
}

fn aggregate(start_ms: i64, state: State, success: u64, failure: u64) -> Aggregate {
    Aggregate {
        breaker: "b".into(),
        start_ms,
        interval_ms: 1_000,
        counts: OutcomeCounts {
            success,
            failure,
            ..Default::default()
        },
        latency: Default::default(),
        state,
        failure_rate: None,
        failure_rate_threshold: Some(0.5),
        config_version: 3,
    }
}

#[test]
fn a_transition_moves_state_and_dates_it() {
    let live = InstanceLive::apply(
        None,
        &InstanceEvent::Interval(&aggregate(0, State::Closed, 10, 0)),
    );
    let t = transition(1_500, State::Closed, State::Open);
    let live = InstanceLive::apply(Some(&live), &InstanceEvent::Transition(&t));
    assert_eq!(
        (live.state, live.since_ms, live.updated_ms),
        (State::Open, 1_500, 1_500)
    );
}

#[test]
fn an_older_event_does_not_move_state_back() {
    let t = transition(5_000, State::Closed, State::Open);
    let live = InstanceLive::apply(None, &InstanceEvent::Transition(&t));
    let late = aggregate(1_000, State::Closed, 10, 0);
    let live = InstanceLive::apply(Some(&live), &InstanceEvent::Interval(&late));
    assert_eq!(live.state, State::Open);
    assert_eq!(live.since_ms, 5_000);
    // The late interval still counts as the latest interval seen, since none was before it.
    assert_eq!(live.last_interval.as_ref().map(|l| l.end_ms), Some(2_000));
}

#[test]
fn sparklines_add_instances_and_keep_two_minutes() {
    let mut fleet = Fleet::default();
    for second in 0..200 {
        // Two instances report the same second; one arrives late.
        fleet.count("svc", &aggregate(second * 1_000, State::Closed, 3, 1));
        fleet.count("svc", &aggregate(second * 1_000, State::Closed, 1, 1));
    }
    fleet.count("svc", &aggregate(150_000, State::Closed, 10, 0));
    let lines = fleet.sparklines_page(None, None, 10);
    assert_eq!(lines.len(), 1);
    let line = &lines[0];
    assert_eq!(line.calls_per_s.len(), SPARKLINE_SECONDS);
    assert_eq!(line.start_ms, (200 - SPARKLINE_SECONDS as i64) * 1_000);
    assert_eq!(line.calls_per_s[SPARKLINE_SECONDS - 1], 6.0);
    assert_eq!(line.calls_per_s[150 - 80], 16.0);
    assert!(fleet.sparklines_page(Some("other"), None, 10).is_empty());
    let totals: Vec<_> = fleet.totals_after(None, None).collect();
    assert_eq!(totals[0].2.counts.judged(), 200 * 6 + 10);
}

#[test]
fn summary_takes_the_worst_state_and_sums_rates() {
    let mut fleet = Fleet::default();
    let key = ("svc".to_string(), "b".to_string());
    let a = InstanceLive::apply(
        None,
        &InstanceEvent::Interval(&aggregate(10_000, State::Closed, 9, 1)),
    );
    let b = InstanceLive::apply(
        None,
        &InstanceEvent::Interval(&aggregate(10_000, State::Open, 0, 10)),
    );
    // A stale instance: its last interval ended long before the others'.
    let c = InstanceLive::apply(
        None,
        &InstanceEvent::Interval(&aggregate(0, State::Closed, 100, 0)),
    );
    fleet.insert(key.clone(), "a".into(), a);
    fleet.insert(key.clone(), "b".into(), b);
    fleet.insert(key.clone(), "c".into(), c);
    let summary = fleet.summary(&key).unwrap();
    assert_eq!(summary.state, State::Open);
    assert_eq!(summary.open_instances, 1);
    assert_eq!(summary.instances.len(), 3);
    assert_eq!(summary.failure_rate, Some(11.0 / 20.0));
    assert_eq!(summary.calls_per_s, 20.0);
    assert_eq!(summary.failure_rate_threshold, Some(0.5));
}

#[test]
fn first_report_and_last_trip() {
    let mut live = None;
    let trip = |at_ms, from, kind: &str| Transition {
        trigger: Some(protocol::Trigger {
            kind: kind.into(),
            value: 0.7,
            threshold: 0.5,
        }),
        ..transition(at_ms, from, State::Open)
    };
    for event in [
        InstanceEvent::Interval(&aggregate(5_000, State::Closed, 10, 0)),
        InstanceEvent::Transition(&trip(6_000, State::Closed, "failure_rate")),
        // A failed probe opens it again: not what tripped it.
        InstanceEvent::Transition(&trip(20_000, State::HalfOpen, "probe_failed")),
        // Late, older data moves the first report earlier.
        InstanceEvent::Interval(&aggregate(2_000, State::Closed, 10, 0)),
    ] {
        InstanceLive::update(&mut live, &event);
    }
    let live = live.unwrap();
    assert_eq!(live.first_ms, 2_000);
    assert_eq!(
        live.last_trip
            .as_ref()
            .map(|(at_ms, t)| (*at_ms, t.kind.as_str())),
        Some((6_000, "failure_rate"))
    );

    // The summary names the newest trip among the instances that are not Closed.
    let mut fleet = Fleet::default();
    let key = ("svc".to_string(), "b".to_string());
    let closed_again = InstanceLive {
        state: State::Closed,
        last_trip: Some((9_000, live.last_trip.clone().unwrap().1)),
        ..live.clone()
    };
    fleet.insert(key.clone(), "a".into(), live);
    fleet.insert(key.clone(), "c".into(), closed_again);
    let summary = fleet.summary(&key).unwrap();
    let trip = summary.last_trip.unwrap();
    assert_eq!((trip.instance.as_str(), trip.at_ms), ("a", 6_000));
    fleet.insert(
        key.clone(),
        "a".into(),
        InstanceLive {
            state: State::Closed,
            ..fleet.instance(&key, "a").unwrap().clone()
        },
    );
    assert_eq!(fleet.summary(&key).unwrap().last_trip, None);
}
