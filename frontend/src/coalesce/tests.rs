use serde_json::json;

use super::{FrameCap, Pending};

fn summary(service: &str, breaker: &str, updated_ms: i64, calls_per_s: f64) -> String {
    json!({
        "type": "summary", "service": service, "breaker": breaker, "state": "closed",
        "since_ms": 0, "instances": [], "open_instances": 0, "failure_rate": 0.1,
        "failure_rate_threshold": 0.5, "calls_per_s": calls_per_s, "updated_ms": updated_ms
    })
    .to_string()
}

#[test]
fn newest_summary_per_breaker_wins_and_every_second_feeds_the_sparkline() {
    let mut pending = Pending::default();
    assert!(
        pending
            .push_summary(summary("pay", "db", 5_100, 1.0))
            .unwrap()
    );
    assert!(
        !pending
            .push_summary(summary("pay", "db", 5_900, 2.0))
            .unwrap()
    );
    assert!(
        !pending
            .push_summary(summary("pay", "db", 6_200, 3.0))
            .unwrap()
    );
    assert!(
        !pending
            .push_summary(summary("pay", "cache", 6_000, 9.0))
            .unwrap()
    );

    let mut drained = pending.drain(usize::MAX);
    assert!(pending.is_empty());
    assert_eq!(drained.n_events, 4);
    assert!(drained.errors.is_empty());
    drained
        .summaries
        .sort_by(|a, b| a.summary.breaker.cmp(&b.summary.breaker));
    assert_eq!(drained.summaries.len(), 2);
    assert_eq!(drained.summaries[0].summary.breaker, "cache");
    let db = &drained.summaries[1];
    assert_eq!(db.summary.updated_ms, 6_200);
    assert_eq!(db.spark, [(5, 2.0), (6, 3.0)]);

    // Drained means empty: the next summary starts a new frame.
    assert!(
        pending
            .push_summary(summary("pay", "db", 7_000, 1.0))
            .unwrap()
    );
}

#[test]
fn names_with_escapes_are_read_whole() {
    let mut pending = Pending::default();
    pending
        .push_summary(summary("a\"b", "<img src=x>\n", 1_000, 1.0))
        .unwrap();
    let drained = pending.drain(usize::MAX);
    assert_eq!(drained.summaries[0].summary.service, "a\"b");
    assert_eq!(drained.summaries[0].summary.breaker, "<img src=x>\n");
}

#[test]
fn a_bad_message_is_refused_on_arrival() {
    let mut pending = Pending::default();
    assert!(
        pending
            .push_summary("{\"type\": \"summary\"".into())
            .is_err()
    );
    assert!(
        pending
            .push_summary(json!({"service": "s"}).to_string())
            .is_err()
    );
    assert!(pending.is_empty());
    assert_eq!(pending.drain(usize::MAX).n_events, 0);
}

#[test]
fn a_message_of_summaries_is_kept_as_its_summaries_one_by_one() {
    let (db, cache, db_later) = (
        summary("pay", "db", 5_100, 1.0),
        summary("pay", "cache", 5_200, 9.0),
        summary("pay", "db", 6_200, 3.0),
    );
    let mut one_by_one = Pending::default();
    for raw in [&db, &cache, &db_later] {
        one_by_one.push_summary(raw.clone()).unwrap();
    }
    let mut batched = Pending::default();
    let (first, errors) =
        batched.push_summaries_of(&format!("{db}\n{cache}\n{db_later}"), |_| false);
    assert!(first && errors.is_empty());
    // The same frame either way: the newest per breaker, every second in the sparkline.
    let (a, b) = (one_by_one.drain(usize::MAX), batched.drain(usize::MAX));
    assert_eq!(a.summaries, b.summaries);
    assert_eq!((a.n_events, b.n_events), (3, 3));
    assert_eq!(b.summaries[0].spark, [(5, 1.0), (6, 3.0)]);

    // A line that does not parse is skipped and named; the others are kept.
    let (first, errors) =
        batched.push_summaries_of(&format!("{{\"type\": 1}}\n{cache}"), |_| false);
    assert!(first);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(batched.drain(usize::MAX).summaries.len(), 1);
    let (first, errors) = batched.push_summaries_of("", |_| false);
    assert!(!first && errors.len() == 1);
    assert!(batched.is_empty());
}

#[test]
fn a_frame_takes_the_longest_waiting_breakers_and_the_rest_keep_coalescing() {
    let mut pending = Pending::default();
    for breaker in ["a", "b", "c"] {
        pending
            .push_summary(summary("s", breaker, 1_000, 1.0))
            .unwrap();
    }
    // `a` again keeps its place in line, with its newest data.
    pending.push_summary(summary("s", "a", 1_500, 2.0)).unwrap();

    let drained = pending.drain(2);
    let names: Vec<&str> = drained
        .summaries
        .iter()
        .map(|coalesced| coalesced.summary.breaker.as_str())
        .collect();
    assert_eq!(names, ["a", "b"]);
    assert_eq!(drained.summaries[0].summary.updated_ms, 1_500);
    assert_eq!(drained.n_events, 4);
    assert!(!pending.is_empty());

    pending.push_summary(summary("s", "c", 2_000, 3.0)).unwrap();
    let drained = pending.drain(2);
    assert_eq!(drained.summaries.len(), 1);
    assert_eq!(drained.summaries[0].spark, [(1, 1.0), (2, 3.0)]);
    assert!(pending.is_empty());
}

#[test]
fn a_transition_takes_its_own_breakers_summary_only() {
    let mut pending = Pending::default();
    pending.push_summary(summary("s", "a", 1_000, 1.0)).unwrap();
    pending.push_summary(summary("s", "b", 1_000, 1.0)).unwrap();
    let taken = pending.take(&("s".into(), "a".into())).unwrap().unwrap();
    assert_eq!(taken.summary.breaker, "a");
    assert!(pending.take(&("s".into(), "a".into())).is_none());
    let rest = pending.drain(usize::MAX);
    assert_eq!(rest.summaries.len(), 1);
    assert_eq!(rest.summaries[0].summary.breaker, "b");
}

#[test]
fn the_frame_cap_settles_where_a_frame_fills_its_budget() {
    // Tiles: 0.3 ms a breaker; 8 ms fit about 26.
    let mut cap = FrameCap::default();
    for _ in 0..10 {
        let applied = cap.get();
        cap.record(applied, applied as f64 * 0.3, false);
    }
    assert!((24..=28).contains(&cap.get()), "{cap:?}");
    // Matrix cells: 0.015 ms a breaker; 8 ms would fit about 533, but a frame takes 64 at most.
    let mut cap = FrameCap::default();
    for _ in 0..10 {
        let applied = cap.get();
        cap.record(applied, applied as f64 * 0.015, false);
    }
    assert_eq!(cap.get(), FrameCap::MAX);
    // Tiles again after a cheaper view: back down.
    cap.record(64, 64.0 * 0.3, false);
    assert!(cap.get() < 64, "{cap:?}");
}

#[test]
fn the_frame_cap_rises_only_when_it_held_a_frame_back_and_stays_in_bounds() {
    let mut cap = FrameCap::default();
    // An expensive frame lowers it, by half at most per frame, never below the minimum.
    cap.record(3, 500.0, false);
    assert_eq!(cap.get(), 32);
    for _ in 0..10 {
        cap.record(cap.get(), 500.0, false);
    }
    assert_eq!(cap.get(), FrameCap::MIN);
    // A cheap frame of a few breakers: no reason to allow more.
    cap.record(3, 0.1, false);
    assert_eq!(cap.get(), FrameCap::MIN);
    // Cheap full frames raise it, up to the maximum.
    for _ in 0..20 {
        cap.record(cap.get(), 0.0, false);
    }
    assert_eq!(cap.get(), FrameCap::MAX);
    // Nothing applied, or no usable time: unchanged.
    cap.record(0, 1.0, false);
    cap.record(10, f64::NAN, false);
    assert_eq!(cap.get(), FrameCap::MAX);
}

#[test]
fn a_frame_that_added_breakers_does_not_lower_the_frame_cap() {
    let mut cap = FrameCap::default();
    cap.record(64, 200.0, false);
    assert_eq!(cap.get(), 32);
    // New breakers: the view is laid out again, an expensive frame.
    cap.record(32, 200.0, true);
    assert_eq!(cap.get(), 32);
    // But a cheap one still raises it.
    cap.record(32, 1.0, true);
    assert_eq!(cap.get(), 64);
}

#[test]
fn a_frame_takes_every_new_breaker_and_a_capped_few_known_ones() {
    let mut pending = Pending::default();
    // Two breakers the page shows, then three it does not, then one more it shows.
    for breaker in ["a", "b"] {
        pending
            .push_summary_of(summary("pay", breaker, 1_000, 1.0), |_| false)
            .unwrap();
    }
    for breaker in ["n1", "n2", "n3"] {
        pending
            .push_summary_of(summary("pay", breaker, 1_000, 1.0), |_| true)
            .unwrap();
    }
    pending
        .push_summary_of(summary("pay", "c", 1_000, 1.0), |_| false)
        .unwrap();
    // A newer summary of a new breaker keeps it new (`is_new` is asked only once).
    pending
        .push_summary_of(summary("pay", "n2", 2_000, 2.0), |_| {
            unreachable!("asked again")
        })
        .unwrap();

    let names = |drained: super::Drained| -> Vec<String> {
        drained
            .summaries
            .into_iter()
            .map(|coalesced| coalesced.summary.breaker)
            .collect()
    };
    // Every new breaker, then the known one waiting longest.
    assert_eq!(names(pending.drain(1)), ["n1", "n2", "n3", "a"]);
    assert_eq!(names(pending.drain(1)), ["b"]);
    // A transition takes a new breaker's summary out of the new ones too.
    pending
        .push_summary_of(summary("pay", "n4", 3_000, 1.0), |_| true)
        .unwrap();
    assert!(pending.take(&("pay".into(), "n4".into())).is_some());
    assert_eq!(names(pending.drain(0)), Vec::<String>::new());
    assert_eq!(names(pending.drain(5)), ["c"]);
    assert!(pending.is_empty());
}

#[test]
fn the_frame_after_a_transition_holds_summaries_back_but_never_two_in_a_row() {
    let mut cap = FrameCap::default();
    assert_eq!(cap.for_frame(), FrameCap::MAX);
    cap.note_transition();
    assert_eq!(cap.for_frame(), 0);
    // Transitions in every frame: summaries still go out every other frame.
    cap.note_transition();
    assert_eq!(cap.for_frame(), FrameCap::MAX);
    cap.note_transition();
    assert_eq!(cap.for_frame(), 0);
    assert_eq!(cap.for_frame(), FrameCap::MAX);
    assert_eq!(cap.for_frame(), FrameCap::MAX);
    // A held-back frame applies nothing, so it says nothing about the cap.
    cap.record(0, 0.5, false);
    assert_eq!(cap.get(), FrameCap::MAX);
}
