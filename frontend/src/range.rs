//! The detail page's time range: a preset ending now (15 m, 1 h, 6 h, 24 h, 7 d) or a custom
//! span (typed in, or brushed on a chart), read from and written to the URL query
//! (`?range=1h` or `?from=…&to=…`, ms since the epoch).
//!
//! Pure and host-tested.

const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 60 * MINUTE_MS;

/// The presets: query value, label, length.
pub const PRESETS: [(&str, &str, i64); 5] = [
    ("15m", "15 m", 15 * MINUTE_MS),
    ("1h", "1 h", HOUR_MS),
    ("6h", "6 h", 6 * HOUR_MS),
    ("24h", "24 h", 24 * HOUR_MS),
    ("7d", "7 d", 7 * 24 * HOUR_MS),
];

/// The shortest span a brush zooms to; anything shorter is a click.
pub const MIN_ZOOM_MS: i64 = 10_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeRange {
    /// `PRESETS[idx]`, ending now and following the clock.
    Last(usize),
    Custom {
        from_ms: i64,
        to_ms: i64,
    },
}

impl Default for TimeRange {
    fn default() -> TimeRange {
        TimeRange::Last(0)
    }
}

impl TimeRange {
    /// Reads `range`, or `from` and `to`; anything unreadable means the last 15 minutes.
    pub fn from_query(get: impl Fn(&str) -> Option<String>) -> TimeRange {
        let number = |key: &str| get(key).and_then(|text| text.parse::<i64>().ok());
        if let (Some(from_ms), Some(to_ms)) = (number("from"), number("to"))
            && from_ms < to_ms
        {
            return TimeRange::Custom { from_ms, to_ms };
        }
        get("range")
            .and_then(|text| PRESETS.iter().position(|(key, _, _)| *key == text))
            .map(TimeRange::Last)
            .unwrap_or_default()
    }

    pub fn query_pairs(self) -> Vec<(&'static str, String)> {
        match self {
            TimeRange::Last(idx) => vec![("range", PRESETS[idx].0.to_string())],
            TimeRange::Custom { from_ms, to_ms } => {
                vec![("from", from_ms.to_string()), ("to", to_ms.to_string())]
            }
        }
    }

    /// `[from_ms, to_ms]` at `now_ms`.
    pub fn bounds(self, now_ms: i64) -> (i64, i64) {
        match self {
            TimeRange::Last(idx) => (now_ms - PRESETS[idx].2, now_ms),
            TimeRange::Custom { from_ms, to_ms } => (from_ms, to_ms),
        }
    }

    /// Whether the range follows the clock, so the page refreshes it.
    pub fn is_live(self) -> bool {
        matches!(self, TimeRange::Last(_))
    }

    /// The query value of a preset, or `custom`: the `data-range` hook and the active button.
    pub fn key(self) -> &'static str {
        match self {
            TimeRange::Last(idx) => PRESETS[idx].0,
            TimeRange::Custom { .. } => "custom",
        }
    }

    /// The span between two brushed times (in any order), when it is long enough to zoom to.
    pub fn brushed(a_ms: i64, b_ms: i64) -> Option<TimeRange> {
        let (from_ms, to_ms) = (a_ms.min(b_ms), a_ms.max(b_ms));
        (to_ms - from_ms >= MIN_ZOOM_MS).then_some(TimeRange::Custom { from_ms, to_ms })
    }
}

/// Parses `YYYY-MM-DD HH:MM` (or with a `T`, optional `:SS`) as UTC, for the custom range form.
pub fn parse_utc(text: &str) -> Option<i64> {
    let text = text.trim();
    let (date, time) = text.split_once(['T', ' '])?;
    let mut date_parts = date.split('-').map(|part| part.parse::<i64>().ok());
    let (year, month, day) = (
        date_parts.next()??,
        date_parts.next()??,
        date_parts.next()??,
    );
    let mut time_parts = time.split(':').map(|part| part.parse::<i64>().ok());
    let (hour, minute) = (time_parts.next()??, time_parts.next()??);
    let second = time_parts.next().flatten().unwrap_or(0);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || !(0..24).contains(&hour)
        || !(0..60).contains(&minute)
        || !(0..60).contains(&second)
    {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some(((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000)
}

/// (year, month, day) to days since 1970-01-01, after Howard Hinnant's `days_from_civil`.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = if month > 2 { month - 3 } else { month + 9 };
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(pairs: &[(&str, &str)]) -> TimeRange {
        TimeRange::from_query(|key| {
            pairs
                .iter()
                .find(|(name, _)| *name == key)
                .map(|(_, value)| value.to_string())
        })
    }

    #[test]
    fn presets_and_custom_ranges_round_trip_through_the_query() {
        assert_eq!(read(&[]), TimeRange::Last(0));
        assert_eq!(read(&[("range", "6h")]), TimeRange::Last(2));
        assert_eq!(read(&[("range", "1y")]), TimeRange::Last(0));
        let custom = read(&[("from", "1000"), ("to", "5000"), ("range", "1h")]);
        assert_eq!(
            custom,
            TimeRange::Custom {
                from_ms: 1000,
                to_ms: 5000
            }
        );
        assert_eq!(
            read(&[("from", "5000"), ("to", "1000")]),
            TimeRange::Last(0)
        );
        for range in [TimeRange::Last(4), custom] {
            let pairs = range.query_pairs();
            let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
            assert_eq!(read(&pairs), range);
        }
    }

    #[test]
    fn bounds_follow_the_clock_only_for_presets() {
        assert_eq!(
            TimeRange::Last(1).bounds(10 * HOUR_MS),
            (9 * HOUR_MS, 10 * HOUR_MS)
        );
        assert!(TimeRange::Last(1).is_live());
        let custom = TimeRange::Custom {
            from_ms: 1,
            to_ms: 2,
        };
        assert_eq!(custom.bounds(99), (1, 2));
        assert_eq!(custom.key(), "custom");
    }

    #[test]
    fn a_brush_zooms_only_when_wide_enough() {
        assert_eq!(
            TimeRange::brushed(50_000, 20_000),
            Some(TimeRange::Custom {
                from_ms: 20_000,
                to_ms: 50_000
            })
        );
        assert_eq!(TimeRange::brushed(20_000, 25_000), None);
    }

    #[test]
    fn utc_times_parse() {
        // 2026-11-22T13:05:09Z
        assert_eq!(parse_utc("2026-11-22 13:05:09"), Some(1_795_352_709_000));
        assert_eq!(parse_utc("2026-11-22T13:05"), Some(1_795_352_700_000));
        assert_eq!(parse_utc("1970-01-01 00:00"), Some(0));
        assert_eq!(parse_utc("2026-13-01 00:00"), None);
        assert_eq!(parse_utc("yesterday"), None);
    }
}
