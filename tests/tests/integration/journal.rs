//! Early answers: a reporter with more to send asks for one (`Prefer: respond-async`); on
//! SQLite a batch that names nothing new is journaled, answered 202, and committed soon after,
//! also by the next server when this one stopped first.

use std::time::Duration;

use backend::ingest::journal::{Journal, dir_for};
use backend::time::now_ms;
use protocol::{IngestAck, IngestBatch};
use serde_json::json;
use tests::wait::wait_for;
use tests::{TestServer, post_batch};

const DEADLINE: Duration = Duration::from_secs(10);

/// Instance `i-1`'s batch `seq`: one aggregate of `breaker`, a second of its own.
fn batch(seq: u64, breaker: &str, base_ms: i64) -> IngestBatch {
    serde_json::from_value(json!({
        "service": "svc", "instance": "i-1", "seq": seq, "sent_at_ms": now_ms(),
        "aggregates": [{"breaker": breaker, "start_ms": base_ms + seq as i64 * 1000,
                        "interval_ms": 1000, "counts": {"success": 9, "failure": 1},
                        "state": "closed"}],
    }))
    .unwrap()
}

/// Posts `batch` asking for an early answer: the status, whether the preference was applied,
/// and the acknowledgement.
async fn post_asking(url: &str, key: &str, batch: &IngestBatch) -> (u16, bool, IngestAck) {
    let response = reqwest::Client::new()
        .post(format!("{url}/api/v1/ingest"))
        .bearer_auth(key)
        .header("prefer", "wait=5, respond-async")
        .json(batch)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let applied = response.headers().get("preference-applied").is_some();
    let text = response.text().await.unwrap();
    assert!(status < 300, "answered {status}: {text}");
    (status, applied, serde_json::from_str(&text).unwrap())
}

#[tokio::test]
async fn a_batch_naming_nothing_new_is_answered_before_its_commit_when_asked() {
    let server = TestServer::start().await.unwrap();
    let key = server.ingest_key("svc").await.unwrap();
    let base_ms = now_ms() - 60_000;
    // New names could be refused by a limit: answered once committed, asked or not.
    let (status, applied, ack) = post_asking(&server.url(), &key, &batch(1, "db", base_ms)).await;
    assert_eq!((status, applied, ack.seq), (200, false, 1));
    assert_eq!(server.scalar("SELECT COUNT(*) FROM aggregates").await, 1);
    let (status, applied, ack) = post_asking(&server.url(), &key, &batch(2, "db", base_ms)).await;
    let early = !tests::on_postgres();
    match early {
        // Journaled and queued: whether it is a duplicate is not known yet.
        true => assert_eq!((status, applied), (202, true)),
        // PostgreSQL keeps no journal: answered once committed.
        false => assert_eq!((status, applied), (200, false)),
    }
    assert_eq!(
        ack,
        IngestAck {
            seq: 2,
            duplicate: false
        }
    );
    wait_for(
        "the batch answered early to be committed",
        DEADLINE,
        async || (server.server.state.ingest.journaled() == 0).then_some(()),
    )
    .await;
    assert_eq!(server.scalar("SELECT COUNT(*) FROM aggregates").await, 2);
    // Sent again (its answer lost, say) and answered once committed: a duplicate.
    let again = post_batch(&server.url(), &key, &batch(2, "db", base_ms)).await;
    assert_eq!(
        again,
        IngestAck {
            seq: 2,
            duplicate: true
        }
    );
    // A batch with a breaker new on this instance is answered once committed.
    let (status, applied, _) = post_asking(&server.url(), &key, &batch(3, "cache", base_ms)).await;
    assert_eq!((status, applied), (200, false));
    assert_eq!(server.scalar("SELECT COUNT(*) FROM aggregates").await, 3);
}

#[tokio::test]
async fn what_the_journal_holds_is_committed_when_the_server_starts_again() {
    if tests::on_postgres() {
        // PostgreSQL keeps no journal: every batch is answered once committed.
        return;
    }
    let server = TestServer::start().await.unwrap();
    let key = server.ingest_key("svc").await.unwrap();
    let base_ms = now_ms() - 60_000;
    post_batch(&server.url(), &key, &batch(1, "db", base_ms)).await;
    let dir = dir_for(&format!("sqlite://{}", server.database_path().display())).unwrap();
    let server = server
        .restart_after(|_| {
            let (journal, held) = Journal::open(&dir).unwrap();
            assert!(
                held.is_empty(),
                "the server stopped with nothing left to commit"
            );
            // As a server killed after answering them early: batch 2, not committed, and
            // batch 1 again, committed before.
            for seq in [2, 1] {
                journal.append(&batch(seq, "db", base_ms)).unwrap();
            }
        })
        .await
        .unwrap();
    // Both committed (batch 1 claimed as a duplicate), and their segment removed.
    wait_for(
        "the journal's batches to be committed",
        DEADLINE,
        async || {
            let replayed = std::fs::read_dir(&dir).unwrap().count() == 1;
            (replayed && server.server.state.ingest.journaled() == 0).then_some(())
        },
    )
    .await;
    assert_eq!(server.scalar("SELECT COUNT(*) FROM batches").await, 2);
    assert_eq!(
        server.scalar("SELECT COUNT(*) FROM aggregates").await,
        2,
        "batch 1 is not stored twice"
    );
}
