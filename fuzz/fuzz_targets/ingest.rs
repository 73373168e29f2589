//! Bytes → the ingest routes' decoding and validation (`backend::fuzz::ingest`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| backend::fuzz::ingest(data));
