//! Calendar days as integers, counted in the workspace time zone.

use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;

/// A calendar day as the number of days since 1970-01-01 (negative before).
pub type Day = i32;

/// The day of a civil date (proleptic Gregorian).
pub fn day_of_date(date: Date) -> Day {
    cairn_rules::day_number(date)
}

/// The calendar day, in `tz`, on which `ts` falls.
pub fn day_of(ts: Timestamp, tz: &TimeZone) -> Day {
    day_of_date(tz.to_datetime(ts).date())
}

/// The first instant of `day` in `tz` (the start of the day, DST-aware).
pub fn start_of_day(day: Day, tz: &TimeZone) -> Timestamp {
    let date = date_of_day(day);
    date.to_zoned(tz.clone()).map(|z| z.timestamp()).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// The civil date of a day number.
pub fn date_of_day(day: Day) -> Date {
    let z = day + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    Date::new(y as i16, m as i8, d as i8).unwrap_or(Date::constant(1970, 1, 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_is_day_zero_and_the_formula_round_trips() {
        assert_eq!(day_of_date(Date::constant(1970, 1, 1)), 0);
        assert_eq!(day_of_date(Date::constant(1970, 1, 2)), 1);
        assert_eq!(day_of_date(Date::constant(1969, 12, 31)), -1);
        // 2000-03-01 is day 11017 (30 years of 365 days, 7 leap days, Jan+Feb 2000).
        assert_eq!(day_of_date(Date::constant(2000, 3, 1)), 11_017);
        let mut date = Date::constant(1900, 1, 1);
        let mut expected = day_of_date(date);
        while date < Date::constant(2100, 1, 1) {
            assert_eq!(day_of_date(date), expected, "{date}");
            assert_eq!(date_of_day(expected), date);
            date = date.tomorrow().unwrap();
            expected += 1;
        }
    }

    #[test]
    fn days_are_counted_in_the_workspace_time_zone() {
        let tz = TimeZone::get("America/New_York").unwrap();
        // 03:00 UTC on 2026-03-02 is still 2026-03-01 in New York.
        let ts: Timestamp = "2026-03-02T03:00:00Z".parse().unwrap();
        assert_eq!(date_of_day(day_of(ts, &tz)), Date::constant(2026, 3, 1));
        assert_eq!(date_of_day(day_of(ts, &TimeZone::UTC)), Date::constant(2026, 3, 2));
        // The day of the spring-forward change starts at local midnight.
        let d = day_of_date(Date::constant(2026, 3, 8));
        assert_eq!(start_of_day(d, &tz).to_string(), "2026-03-08T05:00:00Z");
        assert_eq!(start_of_day(d + 1, &tz).to_string(), "2026-03-09T04:00:00Z");
    }
}
