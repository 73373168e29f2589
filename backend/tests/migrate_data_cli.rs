//! `fusebox migrate-data` refuses what it cannot copy, saying why, before it touches either
//! database: a target that is not PostgreSQL, a source that is not SQLite, a missing file, a
//! file behind this version's migrations (left unchanged: it is opened read-only), a file whose
//! ingest journal holds batches its server did not commit before it stopped. The copy
//! itself is tested end to end in `tests/tests/integration/migrate_data.rs`.
//!
//! This test lives in the backend package because it runs the `fusebox` binary itself.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_fusebox");
/// Nothing listens here: every case below must fail before connecting to it.
const NOWHERE: &str = "postgres://fusebox@127.0.0.1:9/fusebox";

/// Runs `fusebox migrate-data ARGS`, which must fail; its stderr.
fn refused(args: &[&str]) -> String {
    let out = Command::new(BIN)
        .arg("migrate-data")
        .args(args)
        .output()
        .expect("fusebox runs");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
    assert!(out.stdout.is_empty(), "{args:?} printed {:?}", out.stdout);
    stderr
}

#[test]
fn what_cannot_be_copied_is_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("fusebox.db");
    let path = file.to_str().unwrap();

    let err = refused(&["--from", path, "--to", "sqlite://other.db"]);
    assert!(err.contains("--to must be a PostgreSQL URL"), "{err}");
    let err = refused(&["--from", NOWHERE, "--to", NOWHERE]);
    assert!(err.contains("--from must be a SQLite database"), "{err}");
    let err = refused(&["--from", path, "--to", NOWHERE]);
    assert!(err.contains("there is no SQLite file at"), "{err}");

    // A file one migration behind: refused with the command that brings it up to date, and
    // left as it was.
    let out = Command::new(BIN)
        .args(["migrate", "--database", path])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let pool = sqlx::SqlitePool::connect(&format!("sqlite://{path}"))
            .await
            .unwrap();
        sqlx::query(
            "DELETE FROM _sqlx_migrations WHERE version = (SELECT MAX(version) FROM _sqlx_migrations)",
        )
        .execute(&pool)
        .await
        .unwrap();
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
    });
    let before = std::fs::read(&file).unwrap();
    let err = refused(&["--from", path, "--to", NOWHERE]);
    assert!(
        err.contains("migrations; bring it up to date first")
            && err.contains(&format!("fusebox migrate --database sqlite://{path}")),
        "{err}"
    );
    assert_eq!(
        std::fs::read(&file).unwrap(),
        before,
        "the source is unchanged"
    );
}

#[test]
fn a_file_whose_journal_holds_batches_is_refused_until_a_server_commits_them() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("fusebox.db");
    let path = file.to_str().unwrap();
    let out = Command::new(BIN)
        .args(["migrate", "--database", path])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let journal = backend::ingest::journal::dir_for(&format!("sqlite://{path}")).unwrap();
    let (appender, held) = backend::ingest::journal::Journal::open(&journal).unwrap();
    assert!(held.is_empty());
    let batch: protocol::IngestBatch = serde_json::from_value(serde_json::json!({
        "service": "svc", "instance": "i-1", "seq": 1, "sent_at_ms": 1_000,
    }))
    .unwrap();
    let _ticket = appender.append(&batch).unwrap();
    drop(appender);
    let err = refused(&["--from", path, "--to", NOWHERE]);
    assert!(
        err.contains("holds 1 ingested batches")
            && err.contains("start `fusebox serve` on it once"),
        "{err}"
    );
}
