//! Storage: rollups merge exactly (counts and histograms), count late data, survive pruning of
//! raw rows; series read the right resolution; timelines have one lane per instance.

use std::time::Duration;

use backend::query::rollup::{self, Retention};
use backend::time::now_ms;
use protocol::{IngestBatch, Series, State, Timeline};
use serde_json::json;
use tests::{TestServer, post_batch};

const MINUTE: i64 = 60_000;

/// Three aggregates per instance per minute over three minutes, for two instances.
fn batches(base: i64) -> Vec<IngestBatch> {
    let mut out = Vec::new();
    for (idx, instance) in ["a", "b"].iter().enumerate() {
        let mut aggregates = Vec::new();
        for minute in 0..3 {
            for second in [0, 20, 40] {
                aggregates.push(json!({
                    "breaker": "db", "start_ms": base + minute * MINUTE + second * 1000, "interval_ms": 1000,
                    "counts": {"success": 8, "failure": 2, "slow": 1, "rejected": 1},
                    // 9 calls at ≤ 10 ms, 1 at ≤ 500 ms.
                    "latency": {"counts": [0, 0, 0, 9, 0, 0, 0, 0, 1]},
                    "state": "closed", "failure_rate_threshold": 0.5
                }));
            }
        }
        out.push(serde_json::from_value(json!({
            "service": "svc", "instance": instance, "seq": 1, "sent_at_ms": now_ms(),
            "aggregates": aggregates,
            "transitions": [
                {"breaker": "db", "at_ms": base + MINUTE + idx as i64 * 1000, "from": "closed", "to": "open",
                 "trigger": {"kind": "failure_rate", "value": 0.6, "threshold": 0.5}, "config_version": 2},
                {"breaker": "db", "at_ms": base + 2 * MINUTE, "from": "open", "to": "half_open", "config_version": 2}
            ]
        })).unwrap());
    }
    out
}

fn totals(series: &Series) -> (u64, u64, u64) {
    series.points.iter().fold((0, 0, 0), |(s, f, r), p| {
        (
            s + p.counts.success,
            f + p.counts.failure,
            r + p.counts.rejected,
        )
    })
}

#[tokio::test]
async fn rollups_are_exact_and_count_late_data() {
    let server = TestServer::start_with(|o| {
        o.anonymous_viewer = true;
        // The test drives the jobs itself.
        o.rollup_period = Duration::from_secs(3_600);
    })
    .await
    .unwrap();
    let key = server.ingest_key("svc").await.unwrap();
    let base = (now_ms() - 30 * MINUTE).div_euclid(MINUTE) * MINUTE;
    for batch in batches(base) {
        post_batch(&server.url(), &key, &batch).await;
    }
    let store = &server.server.state.store;
    // Before any rollup, a 6-hour series (2-minute steps, minute rollups) still sees everything.
    let wide = format!(
        "/api/v1/breakers/svc/db/series?from_ms={}&to_ms={}",
        base - 300 * MINUTE,
        base + 60 * MINUTE
    );
    let narrow = format!(
        "/api/v1/breakers/svc/db/series?from_ms={}&to_ms={}",
        base,
        base + 5 * MINUTE
    );
    let expected = (2 * 9 * 8, 2 * 9 * 2, 2 * 9);
    let series: Series = server.get_json(&wide, None).await;
    assert_eq!(series.step_ms, 2 * MINUTE);
    assert_eq!(totals(&series), expected);

    assert_eq!(rollup::roll_up_once(store).await.unwrap(), 18);
    assert_eq!(
        rollup::roll_up_once(store).await.unwrap(),
        0,
        "nothing is rolled up twice"
    );
    let series: Series = server.get_json(&wide, None).await;
    assert_eq!(totals(&series), expected);
    let raw: Series = server.get_json(&narrow, None).await;
    assert_eq!(raw.step_ms, 1_000);
    assert_eq!(totals(&raw), expected);

    // An inverted range is empty; one over 31 days is cut to the 31 days before its end. The
    // answer states the range it covers.
    let inverted: Series = server
        .get_json(
            &format!(
                "/api/v1/breakers/svc/db/series?from_ms={}&to_ms={base}",
                base + MINUTE
            ),
            None,
        )
        .await;
    assert_eq!(
        (inverted.from_ms, inverted.to_ms, inverted.points.len()),
        (base, base, 0)
    );
    let day = 24 * 60 * MINUTE;
    let long: Series = server
        .get_json(
            &format!(
                "/api/v1/breakers/svc/db/series?from_ms=0&to_ms={}",
                base + day
            ),
            None,
        )
        .await;
    assert_eq!(long.step_ms, day);
    assert_eq!(long.from_ms, (base + day - 31 * day).div_euclid(day) * day);
    assert_eq!(totals(&long), expected);

    // Percentiles come from merged histograms: 90 % of calls ≤ 10 ms, 10 % ≤ 500 ms.
    let busy = series.points.iter().find(|p| p.counts.success > 0).unwrap();
    assert_eq!(
        (busy.p50_ms, busy.p95_ms, busy.p99_ms),
        (Some(10.0), Some(500.0), Some(500.0))
    );
    assert_eq!(busy.failure_rate, Some(0.2));
    assert_eq!(busy.slow_call_rate, Some(0.1));

    // A late aggregate for an already rolled-up minute is counted.
    let late = json!({"service": "svc", "instance": "a", "seq": 2, "sent_at_ms": now_ms(),
        "aggregates": [{"breaker": "db", "start_ms": base + 5_000, "interval_ms": 1000,
                        "counts": {"success": 100}, "state": "closed"}]});
    post_batch(&server.url(), &key, &late).await;
    // Two runs at once (the job and a tuning run's catch-up) roll it up once between them:
    // both read before either writes, and the one that finds the mark moved reads again.
    let (first, second) = tokio::join!(rollup::roll_up_once(store), rollup::roll_up_once(store));
    assert_eq!(first.unwrap() + second.unwrap(), 1);
    let with_late = (expected.0 + 100, expected.1, expected.2);
    assert_eq!(
        totals(&server.get_json::<Series>(&wide, None).await),
        with_late
    );

    // Pruning raw rows older than 10 minutes keeps the rollups, so wide series are unchanged.
    let retention = Retention {
        raw: Duration::from_secs(600),
        ..Retention::default()
    };
    let pruned = rollup::prune_once(store, &retention, now_ms())
        .await
        .unwrap();
    if tests::on_postgres() {
        // There raw rows go a day partition at a time, once the whole day is past retention
        // (`partitions.rs`): today's, and yesterday's when the test started just after midnight.
        assert_eq!(pruned, 0, "day partitions are not pruned row by row");
        let tomorrow = (now_ms().div_euclid(24 * 60 * MINUTE) + 1) * 24 * 60 * MINUTE;
        let changes = rollup::partitions::maintain(store, tomorrow, now_ms())
            .await
            .unwrap();
        assert!(!changes.dropped.is_empty(), "{changes:?}");
    } else {
        assert_eq!(pruned, 19);
    }
    assert_eq!(server.scalar("SELECT COUNT(*) FROM aggregates").await, 0);
    assert_eq!(
        totals(&server.get_json::<Series>(&wide, None).await),
        with_late
    );
    assert_eq!(
        totals(&server.get_json::<Series>(&narrow, None).await),
        (0, 0, 0),
        "raw rows are gone"
    );

    // The timeline has a lane per instance: Closed, then Open, then Half-Open.
    let timeline: Timeline = server
        .get_json(
            &format!(
                "/api/v1/breakers/svc/db/timeline?from_ms={}&to_ms={}",
                base,
                base + 5 * MINUTE
            ),
            None,
        )
        .await;
    assert_eq!(timeline.lanes.len(), 2);
    for lane in &timeline.lanes {
        let states: Vec<State> = lane.intervals.iter().map(|i| i.state).collect();
        assert_eq!(
            states,
            vec![State::Closed, State::Open, State::HalfOpen],
            "{lane:?}"
        );
        assert_eq!(
            lane.intervals[1].trigger.as_ref().unwrap().kind,
            "failure_rate"
        );
        assert_eq!(lane.intervals[2].end_ms, None);
    }
    // The transition log filters by instance and target state.
    let opened_on_b: Vec<protocol::TransitionRecord> = server
        .get_json(
            "/api/v1/breakers/svc/db/transitions?instance=b&to=open",
            None,
        )
        .await;
    assert_eq!(opened_on_b.len(), 1);
    assert_eq!(
        (
            opened_on_b[0].instance.as_str(),
            opened_on_b[0].transition.to
        ),
        ("b", State::Open)
    );
    let all: Vec<protocol::TransitionRecord> = server
        .get_json("/api/v1/breakers/svc/db/transitions", None)
        .await;
    assert_eq!(all.len(), 4);
    // A batch's transitions are stored in its order (on PostgreSQL by one statement).
    for instance in ["a", "b"] {
        let id_of = |to: State| {
            let of =
                |r: &&protocol::TransitionRecord| r.instance == instance && r.transition.to == to;
            all.iter().find(of).map(|r| r.id).unwrap()
        };
        assert!(
            id_of(State::Open) < id_of(State::HalfOpen),
            "{instance}: {all:?}"
        );
    }
    let page: Vec<protocol::TransitionRecord> = server
        .get_json(
            &format!(
                "/api/v1/breakers/svc/db/transitions?limit=2&before_id={}",
                all[1].id
            ),
            None,
        )
        .await;
    assert_eq!(page, all[2..].to_vec(), "paging continues below before_id");

    // A range that starts after the trip opens in the state the instance was in.
    let later: Timeline = server
        .get_json(
            &format!(
                "/api/v1/breakers/svc/db/timeline?from_ms={}&to_ms={}",
                base + 3 * MINUTE,
                base + 5 * MINUTE
            ),
            None,
        )
        .await;
    for lane in &later.lanes {
        assert_eq!(lane.intervals.len(), 1);
        assert_eq!(lane.intervals[0].state, State::HalfOpen);
    }
}

/// A rollup run writes its buckets a chunk of breakers per transaction. One stopped after its
/// first chunk (as a server stopping there would leave it): every series still reads each
/// call once, the written breaker from its rollups and the other from its raw rows; the next
/// run finishes it without counting the written breaker twice.
#[tokio::test]
async fn a_rollup_run_stopped_half_way_is_finished_once() {
    let server = TestServer::start_with(|o| {
        o.anonymous_viewer = true;
        o.rollup_period = Duration::from_secs(3_600);
    })
    .await
    .unwrap();
    let key = server.ingest_key("svc").await.unwrap();
    let base = (now_ms() - 30 * MINUTE).div_euclid(MINUTE) * MINUTE;
    // "db" first (the lower breaker id), then "cache": 18 aggregates each.
    for name in ["db", "cache"] {
        for mut batch in batches(base) {
            batch.seq += u64::from(name == "cache");
            for aggregate in &mut batch.aggregates {
                aggregate.breaker = name.to_string();
            }
            batch.transitions.clear();
            post_batch(&server.url(), &key, &batch).await;
        }
    }
    let wide = |name: &str| {
        format!(
            "/api/v1/breakers/svc/{name}/series?from_ms={}&to_ms={}",
            base - 300 * MINUTE,
            base + 60 * MINUTE
        )
    };
    let expected = (2 * 9 * 8, 2 * 9 * 2, 2 * 9);
    let store = &server.server.state.store;
    // One breaker per transaction, stopped after the first.
    assert_eq!(
        rollup::roll_up_in_chunks(store, 1, Some(1)).await.unwrap(),
        36
    );
    let rolled_up = "SELECT COUNT(DISTINCT breaker_id) FROM rollups";
    assert_eq!(server.scalar(rolled_up).await, 1);
    assert_eq!(
        server
            .scalar("SELECT last_aggregate_id FROM rollup_progress")
            .await,
        0,
        "the mark moves with the last chunk"
    );
    for name in ["db", "cache"] {
        let series: Series = server.get_json(&wide(name), None).await;
        assert_eq!(totals(&series), expected, "{name} half way");
    }
    // The next run reads the same aggregates and writes only "cache".
    assert_eq!(rollup::roll_up_once(store).await.unwrap(), 36);
    assert_eq!(rollup::roll_up_once(store).await.unwrap(), 0);
    assert_eq!(server.scalar(rolled_up).await, 2);
    for extreme in [
        "SELECT CAST(MIN(s) AS BIGINT) FROM (SELECT SUM(success) AS s FROM rollups
         WHERE resolution_ms = 60000 GROUP BY breaker_id) AS t",
        "SELECT CAST(MAX(s) AS BIGINT) FROM (SELECT SUM(success) AS s FROM rollups
         WHERE resolution_ms = 60000 GROUP BY breaker_id) AS t",
    ] {
        assert_eq!(server.scalar(extreme).await, expected.0 as i64);
    }
    for name in ["db", "cache"] {
        let series: Series = server.get_json(&wide(name), None).await;
        assert_eq!(totals(&series), expected, "{name} after");
    }
}

/// A lane says nothing before its instance's first report, and a breaker's summary
/// says what tripped it; both survive a restart.
#[tokio::test]
async fn lanes_start_at_the_first_report_and_summaries_keep_the_trip() {
    let server = TestServer::start_with(|o| o.anonymous_viewer = true)
        .await
        .unwrap();
    let key = server.ingest_key("svc").await.unwrap();
    let base = (now_ms() - 30 * MINUTE).div_euclid(MINUTE) * MINUTE;
    let batch = |instance: &str, seq: u64, start_ms: i64, transitions: serde_json::Value| {
        json!({
            "service": "svc", "instance": instance, "seq": seq, "sent_at_ms": now_ms(),
            "aggregates": [{"breaker": "db", "start_ms": start_ms, "interval_ms": 1000,
                            "counts": {"success": 5}, "state": "closed"}],
            "transitions": transitions
        })
    };
    // `a` reports from the start; `b` joins 2 minutes later, and trips 3 minutes in.
    post_batch(&server.url(), &key, &batch("a", 1, base, json!([]))).await;
    let trip = json!([{"breaker": "db", "at_ms": base + 3 * MINUTE, "from": "closed", "to": "open",
        "trigger": {"kind": "failure_rate", "value": 0.7, "threshold": 0.5}, "config_version": 1}]);
    post_batch(&server.url(), &key, &batch("b", 1, base + 2 * MINUTE, trip)).await;

    let range = format!(
        "/api/v1/breakers/svc/db/timeline?from_ms={}&to_ms={}",
        base - 5 * MINUTE,
        base + 10 * MINUTE
    );
    let check = |timeline: &Timeline, b_first_ms: i64| {
        let starts: Vec<(Option<i64>, i64, State)> = timeline
            .lanes
            .iter()
            .map(|lane| {
                (
                    lane.first_report_ms,
                    lane.intervals[0].start_ms,
                    lane.intervals[0].state,
                )
            })
            .collect();
        assert_eq!(
            starts,
            [
                (Some(base), base, State::Closed),
                (Some(b_first_ms), b_first_ms, State::Closed)
            ],
            "{timeline:?}"
        );
        assert_eq!(timeline.lanes[1].intervals[1].state, State::Open);
    };
    check(&server.get_json(&range, None).await, base + 2 * MINUTE);

    // The breaker is Open on `b`: its summary says what tripped it and when.
    let summaries: Vec<protocol::BreakerSummary> = server.get_json("/api/v1/breakers", None).await;
    let trip = summaries[0].last_trip.as_ref().expect("a trip");
    assert_eq!(
        (trip.instance.as_str(), trip.at_ms, trip.trigger.value),
        ("b", base + 3 * MINUTE, 0.7)
    );

    // A late batch of older data moves `b`'s first report earlier.
    post_batch(
        &server.url(),
        &key,
        &batch("b", 2, base + MINUTE, json!([])),
    )
    .await;
    check(&server.get_json(&range, None).await, base + MINUTE);

    let server = server.restart().await.unwrap();
    check(&server.get_json(&range, None).await, base + MINUTE);
    let summaries: Vec<protocol::BreakerSummary> = server.get_json("/api/v1/breakers", None).await;
    assert_eq!(
        summaries[0].last_trip.as_ref().map(|trip| trip.at_ms),
        Some(base + 3 * MINUTE),
        "the trip is read back from the transitions at start"
    );
}

#[tokio::test]
async fn retention_deletes_every_expired_row_rolled_up_however_many_and_keeps_the_rest() {
    if tests::on_postgres() {
        // There raw rows go a day partition at a time (`partitions.rs`).
        return;
    }
    let server = TestServer::start_with(|o| o.rollup_period = Duration::from_secs(3_600))
        .await
        .unwrap();
    let key = server.ingest_key("svc").await.unwrap();
    let store = &server.server.state.store;
    let now = now_ms();
    let batch = json!({"service": "svc", "instance": "a", "seq": 1, "sent_at_ms": now,
        "aggregates": [{"breaker": "db", "start_ms": now - 1000, "interval_ms": 1000,
                        "counts": {"success": 1}, "state": "closed"}]});
    post_batch(&server.url(), &key, &batch).await;
    // 25,000 aggregates two to nine hours old, and among them, as the 12,000th, a new one (a
    // reporter's clock ahead); then 10 old ones not rolled up yet.
    let insert = |from: i64, to: i64, age: &str| {
        format!(
            "WITH RECURSIVE n(i) AS (SELECT {from} UNION ALL SELECT i + 1 FROM n WHERE i < {to})
             INSERT INTO aggregates (breaker_id, instance, start_ms, interval_ms, success, failure,
                 timeout, rejected, slow, ignored, latency, state, config_version)
             SELECT (SELECT id FROM breakers WHERE name = 'db'), 'a', {age}, 1000, 1, 0, 0, 0, 0,
                 0, '', 'closed', 1 FROM n"
        )
    };
    let old = format!("{} + i * 1000", now - 9 * 3_600_000);
    for sql in [
        insert(0, 11_998, &old),
        insert(0, 0, &now.to_string()),
        insert(11_999, 24_999, &old),
        "UPDATE rollup_progress SET last_aggregate_id = (SELECT MAX(id) FROM aggregates)"
            .to_string(),
        insert(0, 9, &old),
    ] {
        server.execute(sql.leak()).await;
    }
    // Minute rollups of the last 5 hours, of which those older than 2 hours expire.
    server
        .execute(
            format!(
                "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 299)
                 INSERT INTO rollups (breaker_id, resolution_ms, start_ms, success, failure,
                     timeout, rejected, slow, ignored, latency)
                 SELECT (SELECT id FROM breakers WHERE name = 'db'), {MINUTE},
                     {} + i * {MINUTE}, 1, 0, 0, 0, 0, 0, '' FROM n",
                (now - 5 * 3_600_000).div_euclid(MINUTE) * MINUTE
            )
            .leak(),
        )
        .await;
    assert_eq!(
        server.scalar("SELECT COUNT(*) FROM aggregates").await,
        25_012
    );
    let retention = Retention {
        raw: Duration::from_secs(3_600),
        minute: Duration::from_secs(2 * 3_600),
        ..Retention::default()
    };

    let pruned = rollup::prune_once(store, &retention, now).await.unwrap();

    // Left: the posted one, the new one among the old, and the 10 not rolled up.
    assert_eq!(server.scalar("SELECT COUNT(*) FROM aggregates").await, 12);
    assert_eq!(
        server
            .scalar(
                format!(
                    "SELECT COUNT(*) FROM aggregates WHERE start_ms >= {}",
                    now - 1000
                )
                .leak()
            )
            .await,
        2
    );
    // Of the minute rollups, those starting within the last 2 hours are kept: 120, or 119
    // when the first one's start was rounded down within its minute.
    let kept = server.scalar("SELECT COUNT(*) FROM rollups").await;
    assert!((119..=120).contains(&kept), "{kept} minute rollups kept");
    assert_eq!(pruned, 25_000 + (300 - kept as u64));
    // A second run finds nothing more to delete.
    assert_eq!(rollup::prune_once(store, &retention, now).await.unwrap(), 0);
}
