//! Calendar dates of Unix times (UTC), for the few places that show or count by date.
//!
//! Hand-written (Howard Hinnant's `civil_from_days`, ten lines) rather than a date crate: the
//! host needs this one conversion and nothing else of a calendar.

/// A UTC date and time of day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Civil {
    /// Year.
    pub year: i64,
    /// Month, 1–12.
    pub month: i64,
    /// Day of the month, 1–31.
    pub day: i64,
    /// Seconds since midnight.
    pub seconds: i64,
}

/// The UTC date and time of day of a Unix-ms time.
pub fn civil(ms: i64) -> Civil {
    let secs = ms.div_euclid(1000);
    let (days, seconds) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    Civil {
        year: yoe + era * 400 + i64::from(month <= 2),
        month,
        day,
        seconds,
    }
}

/// The day number (days since 1970-01-01) of the first of `ms`'s month.
pub fn month_start_day(ms: i64) -> i64 {
    ms.div_euclid(86_400_000) - (civil(ms).day - 1)
}

/// Days since 1970-01-01 of a date (the inverse of [`civil`]'s date).
pub fn day_number(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The day number of a `YYYY-MM-DD` date; `None` when it is not one.
pub fn parse_day(date: &str) -> Option<i64> {
    let mut parts = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (y, m, d) = (parts.next()??, parts.next()??, parts.next()??);
    ((1..=12).contains(&m) && (1..=31).contains(&d)).then(|| day_number(y, m, d))
}

/// `YYYY-MM-DDTHH:MM:SSZ`.
pub fn iso8601(ms: i64) -> String {
    let c = civil(ms);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        c.year,
        c.month,
        c.day,
        c.seconds / 3600,
        c.seconds % 3600 / 60,
        c.seconds % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso8601(1_796_611_500_000), "2026-12-07T02:45:00Z");
        assert_eq!(iso8601(951_782_400_000), "2000-02-29T00:00:00Z");
        assert_eq!(iso8601(-1), "1969-12-31T23:59:59Z");
    }

    #[test]
    fn month_starts() {
        let day = day_number;
        assert_eq!(parse_day("2026-05-21"), Some(day(2026, 5, 21)));
        assert_eq!(parse_day("2026-13-01"), None);
        assert_eq!(civil(day(2000, 2, 29) * 86_400_000).day, 29);
        let ms = |y, m, d| day(y, m, d) * 86_400_000 + 12 * 3_600_000;
        assert_eq!(month_start_day(ms(2026, 12, 6)), day(2026, 12, 1));
        assert_eq!(month_start_day(ms(2026, 12, 1)), day(2026, 12, 1));
        assert_eq!(month_start_day(ms(2024, 2, 29)), day(2024, 2, 1));
        assert_eq!(month_start_day(ms(2027, 1, 31)), day(2027, 1, 1));
        assert_eq!(month_start_day(ms(1970, 1, 1)), 0);
        assert_eq!(day(1970, 1, 1), 0);
    }
}
