//! The server's wall clock, in milliseconds since the Unix epoch.

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The latest instant the API takes or stores: 9999-12-31T23:59:59.999Z. Timestamps in queries
/// lie in `0..=MAX_MS` (the OpenAPI document says so), which keeps every difference of two in
/// range of i64.
pub const MAX_MS: i64 = 253_402_300_799_999;

/// A query timestamp, checked against `0..=MAX_MS`.
pub fn checked_ms(name: &str, value: i64) -> Result<i64, crate::error::AppError> {
    if (0..=MAX_MS).contains(&value) {
        Ok(value)
    } else {
        Err(crate::error::AppError::BadQuery {
            detail: format!(
                "{name} must be between 0 and {MAX_MS} (ms since the epoch), not {value}"
            ),
        })
    }
}
