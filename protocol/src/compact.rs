//! The compact body encoding of an [`IngestBatch`]: postcard (a stable, documented binary
//! form of the serde data model), declared with [`MEDIA_TYPE`].
//!
//! JSON stays the default and what adapters and curl send; the Rust reporter sends this form,
//! about a quarter of the bytes and cheaper for the server to decode, and falls back
//! to JSON for good when a server answers 415 (one older than this form).
//!
//! Postcard writes the fields in order with no names, so unlike JSON this form cannot take a
//! new field with a default: a change to any type inside [`IngestBatch`] changes the form, and
//! a new [`VERSION`] is needed, with the old one still decoded (from frozen copies of the old
//! types) for reporters not upgraded yet. The test `the_form_of_version_1_is_pinned` fails on
//! such a change.

use crate::IngestBatch;

/// The compact form's version, the `version` parameter of [`MEDIA_TYPE`].
pub const VERSION: u32 = 1;

/// The media type of an ingest body in the compact form, as the reporter sends it.
pub const MEDIA_TYPE: &str = "application/vnd.fusebox.ingest+postcard; version=1";

/// The media type without its parameters.
const ESSENCE: &str = "application/vnd.fusebox.ingest+postcard";

/// A batch in the compact form.
pub fn encode(batch: &IngestBatch) -> Vec<u8> {
    postcard::to_allocvec(batch).expect("every ingest batch has a postcard form")
}

/// A batch from its compact form; the whole body must be the one batch.
pub fn decode(bytes: &[u8]) -> Result<IngestBatch, String> {
    match postcard::take_from_bytes::<IngestBatch>(bytes) {
        Ok((batch, [])) => Ok(batch),
        Ok((_, rest)) => Err(format!("{} bytes after the batch's end", rest.len())),
        Err(err) => Err(err.to_string()),
    }
}

/// Whether a `Content-Type` value declares the compact form: `None` when it names another
/// type, `Some(Err)` with what is wrong when it names this one in a version this build does
/// not know (or none).
pub fn declared(content_type: &str) -> Option<Result<(), String>> {
    let mut parts = content_type.split(';');
    let essence = parts.next().unwrap_or("").trim();
    if !essence.eq_ignore_ascii_case(ESSENCE) {
        return None;
    }
    let version = parts.find_map(|param| {
        let (name, value) = param.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("version")
            .then(|| value.trim().trim_matches('"'))
    });
    Some(match version {
        Some(v) if v.parse() == Ok(VERSION) => Ok(()),
        Some(v) => Err(format!(
            "version {v:?} of {ESSENCE} is not known here; send `{MEDIA_TYPE}` or JSON"
        )),
        None => Err(format!(
            "{ESSENCE} needs its version; send `{MEDIA_TYPE}` or JSON"
        )),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        Aggregate, DropCounters, LatencyHistogram, OutcomeCounts, State, Transition, Trigger,
    };

    fn batch() -> IngestBatch {
        let mut latency = LatencyHistogram::default();
        latency.add_to_bucket(3, 84);
        latency.add_to_bucket(14, 1);
        IngestBatch {
            service: "checkout".into(),
            instance: "checkout-1".into(),
            seq: 1_764_900_000_123,
            sent_at_ms: 1_764_900_001_000,
            aggregates: vec![Aggregate {
                breaker: "payments".into(),
                start_ms: 1_764_900_000_000,
                interval_ms: 1_000,
                counts: OutcomeCounts {
                    success: 80,
                    failure: 5,
                    timeout: 1,
                    rejected: 2,
                    slow: 3,
                    ignored: 4,
                },
                latency,
                state: State::HalfOpen,
                failure_rate: Some(0.0625),
                failure_rate_threshold: None,
                config_version: 7,
            }],
            transitions: vec![Transition {
                breaker: "payments".into(),
                at_ms: 1_764_900_000_400,
                from: State::Closed,
                to: State::Open,
                trigger: Some(Trigger {
                    kind: "failure_rate".into(),
                    value: 0.62,
                    threshold: 0.5,
                }),
                config_version: 7,
            }],
            dropped: DropCounters {
                aggregates_coalesced: 1,
                aggregates_dropped: 0,
                transitions_dropped: 9,
            },
        }
    }

    #[test]
    fn a_batch_comes_back_as_it_went() {
        let batch = batch();
        let bytes = encode(&batch);
        assert_eq!(decode(&bytes), Ok(batch.clone()));
        let json = serde_json::to_vec(&batch).unwrap();
        assert!(
            bytes.len() * 3 < json.len(),
            "{} against {}",
            bytes.len(),
            json.len()
        );
    }

    #[test]
    fn the_form_of_version_1_is_pinned() {
        // Version 1's bytes for `batch()`. If this fails, a type inside `IngestBatch` changed
        // its postcard form: keep decoding version 1 and define version 2 (see the module's
        // documentation), then pin the new form here.
        let hex: String = encode(&batch())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            hex,
            concat!(
                "08636865636b6f75740a636865636b6f75742d31fba2f3e1ae33d0d3e6c3dd6601087061796d656e",
                "747380c4e6c3dd66e8075005010203040f0000005400000000000000000000010201000000000000",
                "b03f000701087061796d656e7473a0cae6c3dd660001010c6661696c7572655f72617465d7a3703d",
                "0ad7e33f000000000000e03f07010009",
            )
        );
    }

    #[test]
    fn bad_bodies_are_refused_with_what_is_wrong() {
        let bytes = encode(&batch());
        assert!(decode(&bytes[..bytes.len() - 1]).is_err());
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(decode(&longer), Err("1 bytes after the batch's end".into()));
        assert!(decode(b"").is_err());
    }

    #[test]
    fn the_media_type_is_known_by_its_version() {
        assert_eq!(declared(MEDIA_TYPE), Some(Ok(())));
        assert_eq!(
            declared("Application/VND.fusebox.ingest+postcard;version=\"1\""),
            Some(Ok(()))
        );
        assert!(matches!(
            declared("application/vnd.fusebox.ingest+postcard; version=2"),
            Some(Err(detail)) if detail.contains("\"2\"")
        ));
        assert!(matches!(
            declared("application/vnd.fusebox.ingest+postcard"),
            Some(Err(detail)) if detail.contains("needs its version")
        ));
        assert_eq!(declared("application/json"), None);
    }
}
