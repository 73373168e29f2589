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

/// A UTC clock time: `HH:MM`.
pub fn clock_utc(t_ms: i64) -> String {
    let second_of_day = t_ms.div_euclid(1000).rem_euclid(86_400);
    format!("{:02}:{:02}", second_of_day / 3600, second_of_day / 60 % 60)
}

/// A UTC clock time with seconds: `13:05:09`.
pub fn clock_seconds_utc(t_ms: i64) -> String {
    let second_of_day = t_ms.div_euclid(1000).rem_euclid(86_400);
    format!(
        "{:02}:{:02}:{:02}",
        second_of_day / 3600,
        second_of_day / 60 % 60,
        second_of_day % 60
    )
}

/// A UTC date: `Nov 22`.
pub fn date_utc(t_ms: i64) -> String {
    let (_, month, day) = civil_from_days(day_of(t_ms));
    format!("{} {day}", MONTHS[month as usize - 1])
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

/// The labels of a time axis's `ticks` (ascending, as [`time_ticks`] gives them) over
/// `[from_ms, to_ms]`: `HH:MM` while the range stays within one UTC day. A range that spans
/// days says the date too, on the first tick and on each tick that starts a new day
/// (`Nov 22 23:00`, `23:30`, `Nov 23 00:00`), and only the date when the ticks are whole days
/// apart at midnight (`Nov 22`, `Nov 23`).
pub fn tick_labels(ticks: &[i64], from_ms: i64, to_ms: i64) -> Vec<String> {
    const DAY_MS: i64 = 86_400_000;
    if day_of(from_ms) == day_of(to_ms) {
        return ticks.iter().map(|&t_ms| clock_utc(t_ms)).collect();
    }
    if !ticks.is_empty() && ticks.iter().all(|t_ms| t_ms.rem_euclid(DAY_MS) == 0) {
        return ticks.iter().map(|&t_ms| date_utc(t_ms)).collect();
    }
    ticks
        .iter()
        .enumerate()
        .map(|(idx, &t_ms)| {
            let new_day = idx == 0 || day_of(ticks[idx - 1]) != day_of(t_ms);
            if new_day {
                format!("{} {}", date_utc(t_ms), clock_utc(t_ms))
            } else {
                clock_utc(t_ms)
            }
        })
        .collect()
}

/// How many time ticks fit across a plot `plot_width` SVG pixels wide, with labels of about
/// `label_width` SVG pixels and a gap of half that between them: 2 to 8.
pub fn max_time_ticks(plot_width: f64, label_width: f64) -> i64 {
    if !(plot_width > 0.0 && label_width > 0.0) {
        return 2;
    }
    ((plot_width / (label_width * 1.5)).floor() as i64).clamp(2, 8)
}

/// The label of `t_ms` among `ticks` and their `labels`: the time axis's formatter.
pub fn label_of(t_ms: i64, ticks: &[i64], labels: &[String]) -> String {
    match ticks.binary_search(&t_ms) {
        Ok(idx) => labels.get(idx).cloned().unwrap_or_else(|| clock_utc(t_ms)),
        Err(_) => clock_utc(t_ms),
    }
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Days since 1970-01-01 of `t_ms` (UTC).
fn day_of(t_ms: i64) -> i64 {
    t_ms.div_euclid(86_400_000)
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
        assert_eq!(clock_utc(t_ms), "13:05");
        assert_eq!(clock_seconds_utc(t_ms), "13:05:09");
        assert_eq!(date_utc(t_ms), "Nov 22");
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

    #[test]
    fn tick_labels_say_the_date_when_the_range_spans_days() {
        let hour = 3_600_000;
        let day = 24 * hour;
        let nov_22 = 1_795_305_600_000; // 2026-11-22T00:00:00Z
        // Within one day: clock times only.
        let ticks = [nov_22 + 13 * hour, nov_22 + 14 * hour];
        assert_eq!(
            tick_labels(&ticks, nov_22 + 12 * hour, nov_22 + 15 * hour),
            ["13:00", "14:00"]
        );
        // Across midnight: the date on the first tick and where the day changes.
        let ticks = [
            nov_22 + 22 * hour,
            nov_22 + 23 * hour,
            nov_22 + day,
            nov_22 + 25 * hour,
        ];
        assert_eq!(
            tick_labels(&ticks, nov_22 + 21 * hour, nov_22 + 26 * hour),
            ["Nov 22 22:00", "23:00", "Nov 23 00:00", "01:00"]
        );
        // Whole days: the date alone.
        let ticks = [nov_22, nov_22 + day, nov_22 + 2 * day];
        assert_eq!(
            tick_labels(&ticks, nov_22 - hour, nov_22 + 3 * day),
            ["Nov 22", "Nov 23", "Nov 24"]
        );
        assert_eq!(date_utc(nov_22 - 1), "Nov 21");
        assert_eq!(label_of(ticks[1], &ticks, &["a".into(), "b".into()]), "b");
    }

    #[test]
    fn as_many_ticks_as_their_labels_leave_room_for() {
        assert_eq!(max_time_ticks(700.0, 40.0), 8);
        assert_eq!(max_time_ticks(400.0, 95.0), 2);
        assert_eq!(max_time_ticks(500.0, 40.0), 8);
        assert_eq!(max_time_ticks(300.0, 40.0), 5);
        assert_eq!(max_time_ticks(0.0, 40.0), 2);
    }
}
