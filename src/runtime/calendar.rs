//! Local time in a contact's zone (LANGUAGE.md section 10): "HH:MM on day
//! D" is the instant after the gap when HH:MM does not exist on D (a
//! spring-forward day), and its first occurrence when it occurs twice (a
//! fall-back day); the second occurrence never counts.

use super::value::Millis;
use chrono::{Datelike, NaiveDate, NaiveDateTime, TimeZone};
use chrono_tz::Tz;

/// The instant of local time `h:m` on `day` in `tz`.
pub fn instant(tz: Tz, day: NaiveDate, h: u32, m: u32) -> Option<Millis> {
    let naive = day.and_hms_opt(h, m, 0)?;
    resolve(tz, naive)
}

/// A local date and time as an instant: the first of two, or the end of
/// the gap that swallowed it.
fn resolve(tz: Tz, naive: NaiveDateTime) -> Option<Millis> {
    use chrono::LocalResult;
    match tz.from_local_datetime(&naive) {
        LocalResult::Single(t) => Some(t.timestamp_millis()),
        LocalResult::Ambiguous(first, _) => Some(first.timestamp_millis()),
        LocalResult::None => {
            // In a gap: the first minute that exists after it is where the
            // gap ends (gaps last whole minutes, at most a day).
            (1..=24 * 60).find_map(|k| {
                let later = naive.checked_add_signed(chrono::Duration::minutes(k))?;
                match tz.from_local_datetime(&later) {
                    LocalResult::Single(t) => Some(t.timestamp_millis()),
                    LocalResult::Ambiguous(first, _) => Some(first.timestamp_millis()),
                    LocalResult::None => None,
                }
            })
        }
    }
}

/// The first instant at or after `now` that is `h:m` in `tz` on some day
/// (on a day of `weekday`, Monday 0, when given).
pub fn next(now: Millis, tz: Tz, h: u32, m: u32, weekday: Option<u32>) -> Option<Millis> {
    let today = tz.timestamp_millis_opt(now).single()?.date_naive();
    // A day back too: a gap's end may fall on the next local day.
    (-1..=8).find_map(|k| {
        let day = today.checked_add_signed(chrono::Duration::days(k))?;
        if weekday.is_some_and(|w| day.weekday().num_days_from_monday() != w) {
            return None;
        }
        instant(tz, day, h, m).filter(|t| *t >= now)
    })
}

/// When `now` is inside the quiet window [start, end) of local minutes of
/// the day (crossing midnight when start > end) in `tz`: the window's end.
pub fn quiet_until(now: Millis, tz: Tz, start: u32, end: u32) -> Option<Millis> {
    use chrono::Timelike;
    let local = tz.timestamp_millis_opt(now).single()?;
    let minute = local.hour() * 60 + local.minute();
    let inside = if start <= end {
        start <= minute && minute < end
    } else {
        minute >= start || minute < end
    };
    if !inside {
        return None;
    }
    next(now, tz, end / 60, end % 60, None).filter(|t| *t > now)
}

/// The zone named `name`, if it is a known IANA zone.
pub fn zone(name: &str) -> Option<Tz> {
    name.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::value::parse_datetime;

    fn at(s: &str) -> Millis {
        parse_datetime(s).expect("a datetime")
    }

    #[test]
    fn the_ends_of_time_give_no_instant_and_no_panic() {
        let last = chrono::NaiveDate::MAX
            .and_hms_opt(12, 0, 0)
            .map(|t| t.and_utc().timestamp_millis())
            .expect("a time");
        let madrid: Tz = "Europe/Madrid".parse().expect("zone");
        assert_eq!(next(last, madrid, 9, 0, Some(3)), None);
        assert_eq!(next(Millis::MAX, madrid, 9, 0, None), None);
        assert_eq!(quiet_until(Millis::MIN, madrid, 1260, 480), None);
    }

    #[test]
    fn local_times_across_daylight_saving() {
        let madrid: Tz = "Europe/Madrid".parse().expect("zone");
        // An ordinary day: 09:00 in Madrid in winter is 08:00 UTC.
        assert_eq!(
            next(at("2026-01-10T10:00:00Z"), madrid, 9, 0, None),
            Some(at("2026-01-11T08:00:00Z"))
        );
        // Spring forward, 2026-03-29: 02:30 does not exist; the gap ends at
        // 03:00 CEST = 01:00 UTC.
        assert_eq!(
            next(at("2026-03-29T00:00:00Z"), madrid, 2, 30, None),
            Some(at("2026-03-29T01:00:00Z"))
        );
        // Fall back, 2026-10-25: 02:30 happens twice (00:30 and 01:30 UTC);
        // the first counts, and from between the two the next day's.
        assert_eq!(
            next(at("2026-10-25T00:00:00Z"), madrid, 2, 30, None),
            Some(at("2026-10-25T00:30:00Z"))
        );
        assert_eq!(
            next(at("2026-10-25T01:00:00Z"), madrid, 2, 30, None),
            Some(at("2026-10-26T01:30:00Z"))
        );
        // At exactly the instant: now.
        assert_eq!(
            next(at("2026-01-11T08:00:00Z"), madrid, 9, 0, None),
            Some(at("2026-01-11T08:00:00Z"))
        );
        // A weekday: 2026-01-10 is a Saturday; the next Monday 09:00.
        assert_eq!(
            next(at("2026-01-10T10:00:00Z"), madrid, 9, 0, Some(0)),
            Some(at("2026-01-12T08:00:00Z"))
        );
        // New York, the same UTC instant: still Saturday morning there.
        let ny: Tz = "America/New_York".parse().expect("zone");
        assert_eq!(
            next(at("2026-01-10T10:00:00Z"), ny, 9, 0, None),
            Some(at("2026-01-10T14:00:00Z"))
        );
        // Tokyo has no daylight saving: 09:00 is 00:00 UTC.
        let tokyo: Tz = "Asia/Tokyo".parse().expect("zone");
        assert_eq!(
            next(at("2026-03-29T00:30:00Z"), tokyo, 9, 0, None),
            Some(at("2026-03-30T00:00:00Z"))
        );
    }
}
