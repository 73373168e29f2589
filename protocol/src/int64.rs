//! Deserializers for `u64` fields that refuse values above `i64::MAX`.
//!
//! The OpenAPI document states every integer as int64 (utoipa emits `format: int64,
//! minimum: 0` for a `u64`), and the store keeps counts in SQLite's signed 64-bit integers;
//! a value in the top half of `u64` would be accepted here and wrap there. Refusing it while
//! decoding makes the server answer 422 with the field's JSON path, like any other bad field.

use serde::{Deserialize, Deserializer, de};

/// The largest integer on the wire.
pub const MAX: u64 = i64::MAX as u64;

/// A `u64` that fits int64.
struct Int64(u64);

impl<'de> Deserialize<'de> for Int64 {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Int64, D::Error> {
        let value = u64::deserialize(deserializer)?;
        if value > MAX {
            return Err(de::Error::custom(format!(
                "{value} is over the int64 maximum {MAX}"
            )));
        }
        Ok(Int64(value))
    }
}

pub fn u64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    Int64::deserialize(deserializer).map(|Int64(value)| value)
}

pub fn option<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    Option::<Int64>::deserialize(deserializer).map(|value| value.map(|Int64(value)| value))
}

pub fn vec<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u64>, D::Error> {
    Vec::<Int64>::deserialize(deserializer)
        .map(|values| values.into_iter().map(|Int64(value)| value).collect())
}

pub fn pair<'de, D: Deserializer<'de>>(deserializer: D) -> Result<[u64; 2], D::Error> {
    <[Int64; 2]>::deserialize(deserializer).map(|[Int64(a), Int64(b)]| [a, b])
}
