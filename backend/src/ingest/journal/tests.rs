//! The journal gives back what was not committed, in order, drops what was, and reads past
//! nothing damaged.

use std::io::Write;

use protocol::IngestBatch;

use super::{Journal, dir_for, segment_path};

fn batch(seq: u64) -> IngestBatch {
    serde_json::from_value(serde_json::json!({
        "service": "pay", "instance": "i-1", "seq": seq, "sent_at_ms": 1_000,
        "aggregates": [{
            "breaker": "db", "start_ms": 1_000, "interval_ms": 1_000, "state": "closed",
            "counts": {"success": 9, "failure": 1},
            "config_version": 1
        }],
    }))
    .unwrap()
}

fn seqs(held: &[(IngestBatch, super::Ticket)]) -> Vec<u64> {
    held.iter().map(|(b, _)| b.seq).collect()
}

fn segments(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

#[test]
fn what_was_journaled_comes_back_at_the_next_start_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, held) = Journal::open(dir.path()).unwrap();
    assert!(held.is_empty());
    let tickets: Vec<_> = (1..=3)
        .map(|seq| journal.append(&batch(seq)).unwrap())
        .collect();
    assert_eq!(journal.outstanding(), 3);
    // The second is committed; its segment is still appended to, so it is read again (and
    // its commit claimed as a duplicate).
    let mut tickets = tickets.into_iter();
    let (first, second) = (tickets.next().unwrap(), tickets.next().unwrap());
    second.done();
    assert_eq!(journal.outstanding(), 2);
    drop((journal, first, tickets));
    let (journal, held) = Journal::open(dir.path()).unwrap();
    assert_eq!(seqs(&held), [1, 2, 3]);
    assert_eq!(held[0].0, batch(1), "the batch as it was appended");
    assert_eq!(journal.outstanding(), 3);
    // Once all are committed, the old segment goes; the new one, empty, stays.
    for (_, ticket) in held {
        ticket.done();
    }
    assert_eq!(journal.outstanding(), 0);
    assert_eq!(segments(dir.path()), ["00000000000000000002.log"]);
    // Gone with nothing left to commit: so is its last segment.
    drop(journal);
    assert!(segments(dir.path()).is_empty());
    let (journal, held) = Journal::open(dir.path()).unwrap();
    assert!(held.is_empty());
    assert_eq!(segments(dir.path()), ["00000000000000000001.log"]);
    // Gone with a batch not committed (its ticket dropped): kept for the next start.
    let ticket = journal.append(&batch(4)).unwrap();
    drop((journal, ticket));
    let (_, held) = Journal::open(dir.path()).unwrap();
    assert_eq!(seqs(&held), [4]);
}

#[test]
fn a_segment_goes_once_it_is_full_and_all_its_batches_are_committed() {
    let dir = tempfile::tempdir().unwrap();
    // Every append fills its segment: the next one starts a new one.
    let (journal, _) = Journal::open_with(dir.path(), super::SEGMENT_HEADER as u64 + 1).unwrap();
    let a = journal.append(&batch(1)).unwrap();
    let b = journal.append(&batch(2)).unwrap();
    assert_eq!(segments(dir.path()).len(), 2);
    b.done();
    assert_eq!(
        segments(dir.path()).len(),
        2,
        "b's segment is the one appended to"
    );
    a.done();
    assert_eq!(segments(dir.path()), ["00000000000000000002.log"]);
    let c = journal.append(&batch(3)).unwrap();
    assert_eq!(
        segments(dir.path()),
        ["00000000000000000003.log"],
        "a full segment with nothing left to commit goes when the next begins"
    );
    drop((journal, c));
    let (_, held) = Journal::open(dir.path()).unwrap();
    assert_eq!(seqs(&held), [3]);
}

#[test]
fn a_record_cut_short_or_damaged_ends_its_segment_and_keeps_the_records_before() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = Journal::open(dir.path()).unwrap();
    let _kept = [
        journal.append(&batch(1)).unwrap(),
        journal.append(&batch(2)).unwrap(),
    ];
    drop(journal);
    let path = segment_path(dir.path(), 1);
    let intact = std::fs::read(&path).unwrap();
    // A record whose write was cut short: its header promises more than follows.
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    file.write_all(&[200, 0, 0, 0, 1, 2, 3, 4, 9, 9, 9])
        .unwrap();
    drop(file);
    let (journal, held) = Journal::open(dir.path()).unwrap();
    assert_eq!(seqs(&held), [1, 2]);
    drop((journal, held));
    // A damaged record (one byte of its batch changed) ends the reading there too.
    let mut damaged = intact.clone();
    let last = damaged.len() - 1;
    damaged[last] ^= 0xff;
    std::fs::write(&path, &damaged).unwrap();
    let (_, held) = Journal::open(dir.path()).unwrap();
    assert_eq!(seqs(&held), [1]);
}

#[test]
fn a_sqlite_file_has_a_journal_beside_it_and_nothing_else_has_one() {
    assert_eq!(
        dir_for("sqlite:///var/lib/fusebox/fusebox.db"),
        Some("/var/lib/fusebox/fusebox.db.ingest-journal".into())
    );
    assert_eq!(
        dir_for("sqlite://fusebox.db?mode=rwc"),
        Some("fusebox.db.ingest-journal".into())
    );
    assert_eq!(dir_for("sqlite::memory:"), None);
    assert_eq!(dir_for("postgres://fusebox@localhost/fusebox"), None);
}

#[test]
fn a_segment_this_server_cannot_read_stops_the_start_and_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = segment_path(dir.path(), 1);
    // A later version of the compact form.
    let mut header = super::MAGIC.to_vec();
    header.extend_from_slice(&(protocol::compact::VERSION + 1).to_le_bytes());
    std::fs::write(&path, &header).unwrap();
    let err = Journal::open(dir.path()).err().expect("refused");
    assert!(err.to_string().contains("version"), "{err}");
    assert!(path.exists(), "kept for a server that reads it");
    // A record intact (its CRC right) that is not a batch.
    let mut bytes = super::MAGIC.to_vec();
    bytes.extend_from_slice(&protocol::compact::VERSION.to_le_bytes());
    let payload = [0xffu8; 5];
    bytes.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    bytes.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    bytes.extend_from_slice(&payload);
    std::fs::write(&path, &bytes).unwrap();
    let err = Journal::open(dir.path()).err().expect("refused");
    assert!(err.to_string().contains("not a batch"), "{err}");
    assert!(path.exists());
}

#[test]
fn a_segment_whose_header_a_crash_cut_short_holds_nothing() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(segment_path(dir.path(), 4), b"FB").unwrap();
    let (journal, held) = Journal::open(dir.path()).unwrap();
    assert!(held.is_empty());
    assert_eq!(segments(dir.path()), ["00000000000000000005.log"]);
    let _ticket = journal.append(&batch(1)).unwrap();
}
