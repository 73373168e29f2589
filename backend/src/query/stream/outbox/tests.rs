//! The outbox's order: transitions before summaries, one pending summary per breaker, no
//! summary older than its breaker's transition, and the feed held back by a client far behind.

use bytes::Bytes;
use futures_util::FutureExt;
use protocol::{BreakerSummary, State, StreamEvent};

use super::{CHUNK_BYTES, Gone, URGENT_CAPACITY, message, outbox};
use crate::ingest::hub::{News, Published, SummaryForm, breaker_hash};

/// Every order below holds in both forms.
const FORMS: [SummaryForm; 2] = [SummaryForm::Each, SummaryForm::Batched];

fn summary(breaker: &str, updated_ms: i64) -> News {
    summary_of(breaker, updated_ms)
}

fn summary_of(breaker: &str, updated_ms: i64) -> News {
    [published_summary(breaker, updated_ms)]
        .into_iter()
        .collect()
}

fn published_summary(breaker: &str, updated_ms: i64) -> Published {
    let summary = BreakerSummary {
        service: "pay".into(),
        breaker: breaker.into(),
        state: State::Closed,
        since_ms: 0,
        instances: vec![],
        open_instances: 0,
        failure_rate: Some(0.1),
        failure_rate_threshold: Some(0.5),
        calls_per_s: 10.0,
        slow_call_rate: None,
        p99_ms: None,
        updated_ms,
        last_trip: None,
    };
    Published::new(StreamEvent::Summary(summary))
}

/// A flush: one message of the summaries of `breakers`, all at `updated_ms`.
fn flush(breakers: &[&str], updated_ms: i64) -> News {
    (breakers.iter())
        .map(|breaker| published_summary(breaker, updated_ms))
        .collect()
}

fn transition(breaker: &str) -> Bytes {
    message(
        "transition",
        Some("1"),
        &format!("{{\"breaker\":\"{breaker}\"}}"),
    )
}

/// What the reader has now, each message as `kind breaker updated_ms` (transitions without a
/// time; each summary of a `summaries` message as a `summary`), until it would wait. Checks
/// that summaries come in the reader's form: in `Batched`, one `summaries` message at most per
/// chunk, after its other messages.
fn drain(reader: &super::Reader) -> Vec<String> {
    let form = reader.0.form;
    let mut out = Vec::new();
    while let Some(Some(chunk)) = reader.next_chunk().now_or_never() {
        let text = String::from_utf8(chunk.to_vec()).unwrap();
        assert!(text.ends_with("\n\n"), "whole messages: {text:?}");
        let messages: Vec<&str> = text.trim_end().split("\n\n").collect();
        for (i, message) in messages.iter().enumerate() {
            let line = |prefix: &str| {
                message
                    .lines()
                    .find_map(|line| line.strip_prefix(prefix))
                    .unwrap_or_else(|| panic!("no {prefix:?} in {message:?}"))
            };
            let kind = line("event: ");
            let data: Vec<serde_json::Value> = (message.lines())
                .filter_map(|line| line.strip_prefix("data: "))
                .map(|data| serde_json::from_str(data).unwrap())
                .collect();
            match (kind, form) {
                ("summaries", SummaryForm::Batched) => {
                    assert_eq!(i, messages.len() - 1, "the chunk's last message");
                    assert!(!data.is_empty());
                }
                ("summary", SummaryForm::Each) | ("transition", _) => assert_eq!(data.len(), 1),
                _ => panic!("a {kind:?} message in a {form:?} stream"),
            }
            let items = data;
            for data in items {
                let kind = if kind == "summaries" { "summary" } else { kind };
                let breaker = data["breaker"].as_str().unwrap();
                out.push(match data.get("updated_ms") {
                    Some(updated) => format!("{kind} {breaker} {updated}"),
                    None => format!("{kind} {breaker}"),
                });
            }
        }
    }
    out
}

#[test]
fn transitions_go_out_before_pending_summaries() {
    for form in FORMS {
        let (feeder, reader) = outbox(form);
        let (db, cache) = (summary("db", 1), summary("cache", 1));
        feeder.summaries(&db, &[0]);
        feeder.summaries(&cache, &[0]);
        assert!(
            feeder
                .send_transition(transition("queue"), breaker_hash("pay", "queue"))
                .now_or_never()
                .unwrap()
                .is_ok()
        );
        assert_eq!(
            drain(&reader),
            ["transition queue", "summary db 1", "summary cache 1"]
        );
    }
}

#[test]
fn a_newer_summary_replaces_the_pending_one_in_its_place() {
    for form in FORMS {
        let (feeder, reader) = outbox(form);
        feeder.summaries(&summary("db", 1), &[0]);
        feeder.summaries(&summary("cache", 1), &[0]);
        feeder.summaries(&summary("db", 2), &[0]);
        assert_eq!(reader.n_summaries(), 2);
        assert_eq!(drain(&reader), ["summary db 2", "summary cache 1"]);
        // Read: the next one of the same breaker is queued again.
        feeder.summaries(&summary("db", 3), &[0]);
        assert_eq!(drain(&reader), ["summary db 3"]);
    }
}

#[test]
fn a_transition_drops_its_breakers_older_summary() {
    for form in FORMS {
        let (feeder, reader) = outbox(form);
        feeder.summaries(&summary("db", 1), &[0]);
        feeder.summaries(&summary("cache", 1), &[0]);
        let sent = feeder.send_transition(transition("db"), breaker_hash("pay", "db"));
        assert!(sent.now_or_never().unwrap().is_ok());
        assert_eq!(drain(&reader), ["transition db", "summary cache 1"]);

        // The summary published after the transition still goes out, once.
        feeder.summaries(&summary("db", 1), &[0]);
        feeder.summaries(&summary("cache", 2), &[0]);
        let sent = feeder.send_transition(transition("db"), breaker_hash("pay", "db"));
        assert!(sent.now_or_never().unwrap().is_ok());
        feeder.summaries(&summary("db", 2), &[0]);
        assert_eq!(
            drain(&reader),
            ["transition db", "summary db 2", "summary cache 2"]
        );
        assert_eq!(reader.n_summaries(), 0);
    }
}

#[test]
fn ordered_messages_keep_their_order_and_the_stream_ends_after_them() {
    for form in FORMS {
        let (feeder, reader) = outbox(form);
        for name in ["db", "cache", "queue"] {
            assert!(
                feeder
                    .send(transition(name))
                    .now_or_never()
                    .unwrap()
                    .is_ok()
            );
        }
        feeder.summaries(&summary("db", 1), &[0]);
        drop(feeder);
        assert_eq!(
            drain(&reader),
            [
                "transition db",
                "transition cache",
                "transition queue",
                "summary db 1"
            ]
        );
        assert!(
            reader.next_chunk().now_or_never().unwrap().is_none(),
            "the stream ends"
        );
    }
}

#[test]
fn the_feed_waits_for_a_client_far_behind_and_stops_when_it_leaves() {
    for form in FORMS {
        let (feeder, reader) = outbox(form);
        for _ in 0..URGENT_CAPACITY {
            assert!(
                feeder
                    .send(transition("db"))
                    .now_or_never()
                    .unwrap()
                    .is_ok()
            );
        }
        // Summaries never wait: they replace each other.
        for updated in 0..1_000 {
            feeder.summaries(&summary("cache", updated), &[0]);
        }
        let mut blocked = Box::pin(feeder.send(transition("queue")));
        assert!(
            (&mut blocked).now_or_never().is_none(),
            "full: the feed waits"
        );
        assert!(reader.next_chunk().now_or_never().flatten().is_some());
        assert!(matches!((&mut blocked).now_or_never(), Some(Ok(()))));
        assert!(feeder.reader_gone().now_or_never().is_none());
        drop(reader);
        assert!(feeder.reader_gone().now_or_never().is_some());
        assert!(matches!(
            feeder.send(transition("db")).now_or_never(),
            Some(Err(Gone))
        ));
    }
}

#[test]
fn a_chunk_holds_many_messages_and_stops_near_its_size() {
    for form in FORMS {
        let (feeder, reader) = outbox(form);
        let many: Vec<News> = (0..2_000)
            .map(|i| summary_of(&format!("b{i}"), i))
            .collect();
        for news in &many {
            feeder.summaries(news, &[0]);
        }
        let summaries = |chunk: &Bytes| {
            let messages = chunk.windows(2).filter(|w| w == b"\n\n").count();
            let summaries = chunk.windows(10).filter(|w| w == b"\"breaker\":").count();
            (messages, summaries)
        };
        let first = reader.next_chunk().now_or_never().flatten().unwrap();
        let (messages, n) = summaries(&first);
        assert!(n > 100, "{n} summaries in one chunk");
        let expected = if form == SummaryForm::Each { n } else { 1 };
        assert_eq!(messages, expected, "messages in a {form:?} chunk");
        assert!(first.len() >= CHUNK_BYTES && first.len() < CHUNK_BYTES + 1_000);
        let mut total = n;
        while let Some(Some(chunk)) = reader.next_chunk().now_or_never() {
            total += summaries(&chunk).1;
        }
        assert_eq!(total, 2_000);
    }
}

#[test]
fn a_flush_to_a_client_that_keeps_up_goes_out_as_one_shared_buffer() {
    for form in FORMS {
        a_flush_goes_out_as_one_shared_buffer(form);
    }
}

fn a_flush_goes_out_as_one_shared_buffer(form: SummaryForm) {
    let news = flush(&["db", "cache", "queue"], 1);
    let (feeder, reader) = outbox(form);
    let (other_feeder, other_reader) = outbox(form);
    feeder.summary_block(&news);
    other_feeder.summary_block(&news);
    let chunk = reader.next_chunk().now_or_never().flatten().unwrap();
    let other = other_reader.next_chunk().now_or_never().flatten().unwrap();
    // The same bytes, made once: neither stream copied them.
    assert_eq!(chunk.as_ptr(), other.as_ptr());
    assert_eq!(chunk, other);
    assert_eq!(reader.n_summaries(), 0);
    // And the messages a per-breaker queue would have sent, in order.
    other_feeder.summary_block(&news);
    assert_eq!(
        drain(&other_reader),
        ["summary db 1", "summary cache 1", "summary queue 1"]
    );
}

#[test]
fn a_transition_goes_before_a_pending_flush_and_takes_its_breaker_out_of_it() {
    for form in FORMS {
        let (feeder, reader) = outbox(form);
        feeder.summary_block(&flush(&["db", "cache", "queue"], 1));
        // A transition of a breaker the flush does not hold leaves it whole.
        let sent = feeder.send_transition(transition("mail"), breaker_hash("pay", "mail"));
        assert!(sent.now_or_never().unwrap().is_ok());
        assert_eq!(reader.n_summaries(), 0);
        // One of its breakers' transitions takes that breaker's older summary out.
        let sent = feeder.send_transition(transition("cache"), breaker_hash("pay", "cache"));
        assert!(sent.now_or_never().unwrap().is_ok());
        assert_eq!(
            drain(&reader),
            [
                "transition mail",
                "transition cache",
                "summary db 1",
                "summary queue 1"
            ]
        );
    }
}

#[test]
fn flushes_a_slow_client_has_not_read_are_merged_newest_first_in_place() {
    for form in FORMS {
        let (feeder, reader) = outbox(form);
        feeder.summary_block(&flush(&["db", "cache"], 1));
        feeder.summary_block(&flush(&["queue", "db"], 2));
        feeder.summaries(&summary("cache", 3), &[0]);
        // While summaries are pending, a flush joins them rather than waiting whole behind them.
        feeder.summary_block(&flush(&["mail"], 4));
        assert_eq!(reader.n_summaries(), 4);
        assert_eq!(
            drain(&reader),
            [
                "summary db 2",
                "summary cache 3",
                "summary queue 2",
                "summary mail 4"
            ]
        );
        // Read: the next flush goes whole again.
        feeder.summary_block(&flush(&["db"], 5));
        assert_eq!(reader.n_summaries(), 0);
        assert_eq!(drain(&reader), ["summary db 5"]);
    }
}

#[test]
fn one_flush_goes_out_in_each_streams_own_form() {
    let news = flush(&["db", "cache"], 1);
    let (each_feeder, each) = outbox(SummaryForm::Each);
    let (batched_feeder, batched) = outbox(SummaryForm::Batched);
    each_feeder.summary_block(&news);
    batched_feeder.summary_block(&news);
    // `drain` checks each message's form against its reader's.
    let expected = ["summary db 1", "summary cache 1"];
    assert_eq!(drain(&batched), expected);
    assert_eq!(drain(&each), expected);
    // Both made once and kept apart: a second stream of each form gets the same buffer.
    let (again_feeder, again) = outbox(SummaryForm::Batched);
    again_feeder.summary_block(&news);
    let chunk = again.next_chunk().now_or_never().flatten().unwrap();
    assert!(chunk.starts_with(b"event: summaries\n"));
}
