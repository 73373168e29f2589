//! What the fuzz targets in `fuzz/` check, as plain functions, so that the committed corpus is
//! also replayed by an ordinary test on stable Rust (`cargo test -p backend --lib fuzz`).
//!
//! Each function takes arbitrary bytes and panics only when the code under test misbehaves:
//! a panic while decoding or validating, or a batch that passes validation while breaking
//! what validation promises.

use protocol::{BatchLimits, CallBatch, IngestBatch};

use crate::error::AppError;
use crate::extract;

/// The server clock the ingest target validates against: a fixed instant (2026-11-23), so a
/// corpus input means the same thing on every run. Seeds carry timestamps near it.
pub const NOW_MS: i64 = 1_795_400_000_000;

/// Bytes → the ingest routes' decoding (as an `IngestBatch` in JSON and in the compact form,
/// and as a `CallBatch`, folded as the server folds it) → validation.
pub fn ingest(data: &[u8]) {
    let limits = BatchLimits::default();
    match extract::parse::<IngestBatch>(data) {
        Ok(batch) => check_validated(&batch, &limits),
        Err(err) => expect_body_error(&err),
    }
    match crate::ingest::http::decode_compact(data) {
        Ok(batch) => check_validated(&batch, &limits),
        Err(err) => assert!(
            matches!(
                err,
                AppError::MalformedBody { .. } | AppError::Invalid { .. }
            ),
            "decoding a compact body failed with {err:?}"
        ),
    }
    match extract::parse::<CallBatch>(data) {
        Ok(calls) => {
            if calls.validate_calls().is_ok() {
                check_validated(&calls.into_ingest_batch(|_| None), &limits);
            }
        }
        Err(err) => expect_body_error(&err),
    }
}

fn expect_body_error(err: &AppError) {
    assert!(
        matches!(
            err,
            AppError::MalformedJson { .. } | AppError::Invalid { .. }
        ),
        "decoding a body failed with {err:?}"
    );
}

/// Validates `batch`; when it passes, checks the promises the store and series rely on.
fn check_validated(batch: &IngestBatch, limits: &BatchLimits) {
    if protocol::validate_batch_with(batch, NOW_MS, limits).is_err() {
        return;
    }
    assert!(batch.seq <= protocol::MAX_INT64);
    for aggregate in &batch.aggregates {
        let counts = &aggregate.counts;
        let most = u128::from(limits.max_calls_per_s) * u128::from(aggregate.interval_ms) / 1_000;
        assert!(u128::from(counts.calls()) <= most, "{aggregate:?}");
        assert!(counts.slow <= counts.ran(), "{aggregate:?}");
        assert!(aggregate.latency.total() <= counts.ran(), "{aggregate:?}");
        assert!(aggregate.config_version <= protocol::MAX_INT64);
    }
}

/// Bytes → the settings file's parse. Text that is not UTF-8 is refused before parsing, as
/// `std::fs::read_to_string` refuses it.
pub fn config_toml(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = crate::settings::parse(text);
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    /// Runs every file of `fuzz/corpus/<target>/` through `check`.
    fn replay(target: &str, check: fn(&[u8])) {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../fuzz/corpus")
            .join(target);
        let mut n_files = 0;
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|err| panic!("{dir:?}: {err}")) {
            let path = entry.unwrap().path();
            let data = std::fs::read(&path).unwrap();
            if let Err(panic) = std::panic::catch_unwind(|| check(&data)) {
                std::panic::resume_unwind(Box::new(format!("{path:?}: {panic:?}")));
            }
            n_files += 1;
        }
        assert!(n_files >= 12, "{dir:?} holds only {n_files} inputs");
    }

    #[test]
    fn the_ingest_corpus_passes() {
        replay("ingest", super::ingest);
    }

    #[test]
    fn the_config_toml_corpus_passes() {
        replay("config_toml", super::config_toml);
    }

    /// The seeds mean what their names say: the valid ones pass validation.
    #[test]
    fn valid_seeds_are_valid() {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/ingest");
        for name in ["valid-batch.json", "valid-calls.json"] {
            let data = std::fs::read(dir.join(name)).unwrap();
            let batch = match crate::extract::parse::<protocol::IngestBatch>(&data) {
                Ok(batch) => batch,
                Err(_) => crate::extract::parse::<protocol::CallBatch>(&data)
                    .unwrap()
                    .into_ingest_batch(|_| None),
            };
            assert_eq!(
                protocol::validate_batch(&batch, super::NOW_MS),
                Ok(()),
                "{name}"
            );
        }
        let text = std::fs::read_to_string(
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/config_toml/full.toml"),
        )
        .unwrap();
        crate::settings::parse(&text).unwrap();
    }
}
