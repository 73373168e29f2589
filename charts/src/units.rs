//! Labels with units: UTC clock times, percentages, and time-axis ticks on round clock times.

/// A rate 0–1 as a percentage with at most one decimal: `50 %`, `12.5 %`.
pub fn percent(rate: f64) -> String {
    let value = rate * 100.0;
    if (value - value.round()).abs() < 0.05 {
        format!("{value:.0} %")
    } else {
        format!("{value:.1} %")
    }
}

/// A UTC clock time for an axis: `HH:MM`, with the date (`MM-DD HH:MM`) when `with_date`.
pub fn clock_utc(t_ms: i64, with_date: bool) -> String {
    let seconds = t_ms.div_euclid(1000);
    let (days, second_of_day) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    let hh_mm = format!("{:02}:{:02}", second_of_day / 3600, second_of_day / 60 % 60);
    if with_date {
        let (_, month, day) = civil_from_days(days);
        format!("{month:02}-{day:02} {hh_mm}")
    } else {
        hh_mm
    }
}

/// A full UTC timestamp with seconds: `2026-11-22 13:05:09`.
pub fn timestamp_utc(t_ms: i64) -> String {
    let seconds = t_ms.div_euclid(1000);
    let (days, second_of_day) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        second_of_day / 3600,
        second_of_day / 60 % 60,
        second_of_day % 60
    )
}

/// Axis ticks on round clock times (every 1, 2, 5, 10, 15, 30 minutes, 1, 2, 3, 6, 12 hours or
/// whole days), at most `max_ticks` of them, so an `HH:MM` label never hides seconds.
pub fn time_ticks(from_ms: i64, to_ms: i64, max_ticks: i64) -> Vec<i64> {
    const MINUTE_MS: i64 = 60_000;
    const STEPS_MIN: [i64; 11] = [1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720];
    let span = to_ms - from_ms;
    let step_ms = STEPS_MIN
        .iter()
        .map(|minutes| minutes * MINUTE_MS)
        .find(|step_ms| span / step_ms <= max_ticks)
        .unwrap_or_else(|| {
            (span / max_ticks).div_euclid(1440 * MINUTE_MS).max(1) * 1440 * MINUTE_MS
        });
    let first = from_ms.div_euclid(step_ms) * step_ms
        + if from_ms.rem_euclid(step_ms) == 0 {
            0
        } else {
            step_ms
        };
    (0..)
        .map(|idx| first + idx * step_ms)
        .take_while(|&t_ms| t_ms <= to_ms)
        .collect()
}

/// Whether axis labels over `[from_ms, to_ms]` need the date.
pub fn needs_date(from_ms: i64, to_ms: i64) -> bool {
    to_ms - from_ms > 86_400_000
}

/// Days since 1970-01-01 to (year, month, day), after Howard Hinnant's `civil_from_days`.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_times_are_utc() {
        // 2026-11-22T13:05:09Z
        let t_ms = 1_795_352_709_000;
        assert_eq!(clock_utc(t_ms, false), "13:05");
        assert_eq!(clock_utc(t_ms, true), "11-22 13:05");
        assert_eq!(timestamp_utc(t_ms), "2026-11-22 13:05:09");
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
    }

    #[test]
    fn percentages_read_well() {
        assert_eq!(percent(0.5), "50 %");
        assert_eq!(percent(0.125), "12.5 %");
    }

    #[test]
    fn ticks_fall_on_round_minutes() {
        let from_ms = 1_795_352_709_000; // 13:05:09
        let minute = 60_000;
        let ticks = time_ticks(from_ms, from_ms + 15 * minute, 8);
        assert_eq!(ticks.len(), 8);
        assert!(ticks.iter().all(|t_ms| t_ms % (2 * minute) == 0));
        assert_eq!(ticks[0], 1_795_352_760_000); // 13:06
        let day = 1440 * minute;
        assert!(
            time_ticks(0, 30 * day, 8)
                .iter()
                .all(|t_ms| t_ms % day == 0)
        );
    }
}
