//! The writer takes batches with transitions first, each lane in order, and drains both lanes
//! when the queue closes.

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use futures_util::FutureExt;
use protocol::IngestBatch;
use tokio::sync::oneshot;

use super::{IngestQueue, Job, Lanes, Reply, Room, lanes};
use crate::ingest::LearnedNames;

fn batch(seq: u64, with_transition: bool) -> IngestBatch {
    let transitions = if with_transition {
        serde_json::json!([{
            "breaker": "db", "at_ms": 1_000, "from": "closed", "to": "open",
            "trigger": {"kind": "failure_rate", "value": 0.9, "threshold": 0.5},
            "config_version": 1
        }])
    } else {
        serde_json::json!([])
    };
    serde_json::from_value(serde_json::json!({
        "service": "pay", "instance": "i-1", "seq": seq, "sent_at_ms": 1_000,
        "transitions": transitions,
    }))
    .unwrap()
}

/// Queues `batches` through the handlers' end, as the HTTP handler does; returns the queue
/// (which holds the senders) and the writer's end.
fn queued(batches: &[(u64, bool)]) -> (IngestQueue, Lanes) {
    let (lanes, senders) = lanes(16);
    let queue = IngestQueue::new(
        senders,
        LearnedNames::default(),
        Arc::new(AtomicUsize::new(0)),
        None,
    );
    for &(seq, with_transition) in batches {
        let (reply, _answer) = oneshot::channel();
        let lane = if with_transition {
            &queue.senders.transitions
        } else {
            &queue.senders.rest
        };
        lane.try_send(Job {
            batch: batch(seq, with_transition),
            reply: Reply::Waiting(reply),
        })
        .ok()
        .unwrap();
    }
    (queue, lanes)
}

/// Room for `n` batches of any size.
fn batches(n: usize) -> Room {
    Room {
        batches: n,
        rows: usize::MAX,
    }
}

fn seqs(jobs: &[Job]) -> Vec<u64> {
    jobs.iter().map(|job| job.batch.seq).collect()
}

#[test]
fn batches_with_transitions_go_first_each_lane_in_order() {
    let (queue, mut lanes) = queued(&[(1, false), (2, false), (3, true), (4, false), (5, true)]);
    assert_eq!(queue.depth(), 5);
    let mut jobs = Vec::new();
    assert_eq!(
        lanes.recv_many(&mut jobs, batches(3)).now_or_never(),
        Some(3)
    );
    assert_eq!(seqs(&jobs), [3, 5, 1]);
    assert_eq!(queue.depth(), 2);
    jobs.clear();
    assert_eq!(
        lanes.recv_many(&mut jobs, batches(64)).now_or_never(),
        Some(2)
    );
    assert_eq!(seqs(&jobs), [2, 4]);
    // Nothing queued: the writer waits.
    assert!(
        lanes
            .recv_many(&mut jobs, batches(64))
            .now_or_never()
            .is_none()
    );
}

#[test]
fn a_group_takes_batches_until_its_rows_are_used() {
    // Each batch here writes one row, its transition.
    let (_queue, mut lanes) = queued(&[(1, true), (2, true), (3, true), (4, true)]);
    let mut jobs = Vec::new();
    let room = Room {
        batches: 64,
        rows: 2,
    };
    assert_eq!(lanes.recv_many(&mut jobs, room).now_or_never(), Some(2));
    assert_eq!(seqs(&jobs), [1, 2]);
    // The first batch is taken whatever its size.
    let room = Room {
        batches: 64,
        rows: 0,
    };
    assert_eq!(lanes.recv_many(&mut jobs, room).now_or_never(), Some(1));
    assert_eq!(seqs(&jobs), [1, 2, 3]);
}

#[test]
fn a_closed_queue_is_drained_before_the_writer_stops() {
    let (queue, mut lanes) = queued(&[(1, false), (2, true), (3, false)]);
    drop(queue);
    let mut jobs = Vec::new();
    while lanes
        .recv_many(&mut jobs, batches(1))
        .now_or_never()
        .unwrap()
        > 0
    {}
    assert_eq!(seqs(&jobs), [2, 1, 3]);
}

#[tokio::test]
async fn a_handler_routes_a_batch_by_its_transitions() {
    let (queue, mut lanes) = queued(&[(6, false)]);
    let submitting = {
        let queue = queue.clone();
        tokio::spawn(async move { queue.submit(batch(7, true)).await })
    };
    while queue.depth() < 2 {
        tokio::task::yield_now().await;
    }
    let mut jobs = Vec::new();
    assert_eq!(lanes.recv_many(&mut jobs, batches(1)).await, 1);
    assert_eq!(
        seqs(&jobs),
        [7],
        "the later batch, with a transition, first"
    );
    assert!(lanes.transitions.is_empty() && !lanes.rest.is_empty());
    let job = jobs.pop().unwrap();
    assert!(!job.batch.transitions.is_empty());
    let Reply::Waiting(reply) = job.reply else {
        panic!("a handler waits for the batch");
    };
    reply
        .send(Ok(protocol::IngestAck {
            seq: 7,
            duplicate: false,
        }))
        .ok()
        .unwrap();
    assert_eq!(submitting.await.unwrap().unwrap().seq, 7);
}

/// A batch of `n` aggregates (one row each) and a transition `age_ms` before it was sent, or
/// none.
fn batch_of(seq: u64, n: usize, transition_age_ms: Option<i64>) -> IngestBatch {
    let sent_at_ms = 1_700_000_000_000i64;
    let aggregates: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            serde_json::json!({
                "breaker": format!("b{i}"), "start_ms": sent_at_ms - 1_000, "interval_ms": 1_000,
                "counts": {"success": 1}, "state": "closed", "config_version": 1
            })
        })
        .collect();
    let transitions: Vec<serde_json::Value> = transition_age_ms
        .map(|age| {
            serde_json::json!({
                "breaker": "db", "at_ms": sent_at_ms - age, "from": "closed", "to": "open",
                "config_version": 1
            })
        })
        .into_iter()
        .collect();
    serde_json::from_value(serde_json::json!({
        "service": "pay", "instance": format!("i-{seq}"), "seq": seq, "sent_at_ms": sent_at_ms,
        "aggregates": aggregates, "transitions": transitions,
    }))
    .unwrap()
}

/// Queues `batches` on the lane each belongs to.
fn queued_batches(batches: Vec<IngestBatch>) -> (IngestQueue, Lanes) {
    let (queue, lanes) = queued(&[]);
    for batch in batches {
        let (reply, _answer) = oneshot::channel();
        let lane = match batch.transitions.is_empty() {
            true => &queue.senders.rest,
            false => &queue.senders.transitions,
        };
        let reply = Reply::Waiting(reply);
        lane.try_send(Job { batch, reply }).ok().unwrap();
    }
    (queue, lanes)
}

#[test]
fn a_transition_just_sent_is_news_and_one_from_a_backlog_is_not() {
    assert!(super::carries_news(&batch_of(1, 0, Some(0))));
    assert!(super::carries_news(&batch_of(1, 0, Some(9_999))));
    // Sent before it happened, by the reporter's clock: still news.
    assert!(super::carries_news(&batch_of(1, 0, Some(-5_000))));
    assert!(!super::carries_news(&batch_of(1, 0, Some(10_000))));
    assert!(!super::carries_news(&batch_of(1, 0, Some(3_600_000))));
    assert!(!super::carries_news(&batch_of(1, 50, None)));
}

#[test]
fn a_group_carrying_news_takes_few_rows_of_the_other_lane() {
    // Ten batches of 100 aggregates queued before a trip: a group of up to 2,000 rows would
    // take them all (1,001 rows); with the trip just sent it takes 200 rows of them, and the
    // rest go in the next group.
    let group = |transition_age_ms: i64| {
        let mut queued: Vec<IngestBatch> = (1..=10).map(|seq| batch_of(seq, 100, None)).collect();
        queued.push(batch_of(11, 0, Some(transition_age_ms)));
        let (_queue, mut lanes) = queued_batches(queued);
        let mut jobs = Vec::new();
        let room = Room::left_after(&[]);
        assert!(lanes.recv_many(&mut jobs, room).now_or_never().unwrap() > 0);
        // Whether the writer would wait for more.
        (seqs(&jobs), Room::left_after(&jobs).is_left())
    };
    assert_eq!(group(50), (vec![11, 1, 2], false));
    assert_eq!(
        group(3_600_000),
        (vec![11, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10], true)
    );
}
