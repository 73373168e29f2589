//! Bytes → the settings file's parse (`backend::fuzz::config_toml`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| backend::fuzz::config_toml(data));
