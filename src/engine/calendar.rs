//! Business time: a calendar has a time zone, weekly working hours and holidays. Adding
//! business time to a moment skips nights, weekends and holidays, in local wall-clock time,
//! so daylight-saving changes are handled by the zone rules. Pure: no clock, no I/O.

use std::collections::BTreeSet;

use jiff::civil::{Date, Time, Weekday};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

/// How far ahead a computation may look before it gives up (a calendar with no hours).
const MAX_DAYS: i32 = 3 * 366;

#[derive(Debug, Clone)]
pub struct Calendar {
    pub zone: TimeZone,
    /// Working intervals per weekday, Monday first; each `(open, close)` with open < close.
    pub week: [Vec<(Time, Time)>; 7],
    pub holidays: BTreeSet<Date>,
}

fn index(day: Weekday) -> usize {
    usize::try_from(day.to_monday_zero_offset()).unwrap_or(0)
}

impl Calendar {
    /// Open around the clock, every day: business time equals elapsed time.
    pub fn always(zone: TimeZone) -> Self {
        let all_day = vec![(Time::midnight(), Time::MAX)];
        Self {
            zone,
            week: std::array::from_fn(|_| all_day.clone()),
            holidays: BTreeSet::new(),
        }
    }

    /// Monday to Friday, `open` to `close`.
    pub fn weekdays(zone: TimeZone, open: Time, close: Time) -> Self {
        let mut week: [Vec<(Time, Time)>; 7] = Default::default();
        for day in week.iter_mut().take(5) {
            day.push((open, close));
        }
        Self {
            zone,
            week,
            holidays: BTreeSet::new(),
        }
    }

    /// A calendar from its text form: a zone name, one line of hours per weekday (Monday
    /// first) like `09:00-12:00, 13:00-17:00` (empty: closed; `24h`: all day) and holidays as
    /// `YYYY-MM-DD`. Errors name the part that is wrong, for a message next to its field.
    pub fn parse(
        zone: &str,
        week: &[String],
        holidays: &[String],
    ) -> Result<Self, (&'static str, String)> {
        let zone = TimeZone::get(zone.trim()).map_err(|_| {
            (
                "time_zone",
                format!("{:?} is not a time zone (e.g. Europe/Berlin).", zone.trim()),
            )
        })?;
        if week.len() != 7 {
            return Err(("week", "Give hours for all seven days.".into()));
        }
        let mut parsed: [Vec<(Time, Time)>; 7] = Default::default();
        for (day, line) in parsed.iter_mut().zip(week) {
            *day = parse_hours(line).map_err(|why| ("week", why))?;
        }
        let mut days = BTreeSet::new();
        for h in holidays.iter().map(|h| h.trim()).filter(|h| !h.is_empty()) {
            let date: Date = h
                .parse()
                .map_err(|_| ("holidays", format!("{h:?} is not a date like 2026-12-25.")))?;
            days.insert(date);
        }
        Ok(Self {
            zone,
            week: parsed,
            holidays: days,
        })
    }

    /// The working intervals of a local date, as instants.
    fn intervals(&self, date: Date) -> Vec<(Timestamp, Timestamp)> {
        if self.holidays.contains(&date) {
            return Vec::new();
        }
        self.week[index(date.weekday())]
            .iter()
            .filter_map(|(open, close)| {
                let start = date
                    .to_datetime(*open)
                    .to_zoned(self.zone.clone())
                    .ok()?
                    .timestamp();
                // Time::MAX stands for the end of the day: the start of the next one.
                let end = if *close == Time::MAX {
                    date.tomorrow()
                        .ok()?
                        .to_datetime(Time::midnight())
                        .to_zoned(self.zone.clone())
                        .ok()?
                        .timestamp()
                } else {
                    date.to_datetime(*close)
                        .to_zoned(self.zone.clone())
                        .ok()?
                        .timestamp()
                };
                (start < end).then_some((start, end))
            })
            .collect()
    }

    fn local_date(&self, at: Timestamp) -> Date {
        at.to_zoned(self.zone.clone()).date()
    }

    /// The moment when `duration` of business time has passed after `start`; `None` when
    /// the calendar has no working time within three years.
    pub fn add(&self, start: Timestamp, duration: SignedDuration) -> Option<Timestamp> {
        let mut left = duration.max(SignedDuration::ZERO);
        let mut date = self.local_date(start);
        for _ in 0..MAX_DAYS {
            for (open, close) in self.intervals(date) {
                let from = open.max(start);
                if from >= close {
                    continue;
                }
                let available = close.duration_since(from);
                if left <= available {
                    return from.checked_add(left).ok();
                }
                left -= available;
            }
            date = date.tomorrow().ok()?;
        }
        None
    }

    /// Business time between two moments (zero when `end` is not after `start`).
    pub fn between(&self, start: Timestamp, end: Timestamp) -> SignedDuration {
        let mut total = SignedDuration::ZERO;
        if end <= start {
            return total;
        }
        let mut date = self.local_date(start);
        let last = self.local_date(end);
        while date <= last {
            for (open, close) in self.intervals(date) {
                let from = open.max(start);
                let to = close.min(end);
                if from < to {
                    total += to.duration_since(from);
                }
            }
            match date.tomorrow() {
                Ok(next) => date = next,
                Err(_) => break,
            }
        }
        total
    }

    /// The same local time `days` working days (days with hours, not holidays) after
    /// `start`; `None` when the calendar has no working day within three years.
    pub fn after_business_days(&self, start: Timestamp, days: u32) -> Option<Timestamp> {
        let zoned = start.to_zoned(self.zone.clone());
        let mut date = zoned.date();
        let mut left = days;
        for _ in 0..MAX_DAYS {
            if left == 0 {
                return date
                    .to_datetime(zoned.time())
                    .to_zoned(self.zone.clone())
                    .ok()
                    .map(|z| z.timestamp());
            }
            date = date.tomorrow().ok()?;
            if !self.intervals(date).is_empty() {
                left -= 1;
            }
        }
        None
    }

    /// Whether the moment is inside working hours.
    pub fn is_open(&self, at: Timestamp) -> bool {
        self.intervals(self.local_date(at))
            .iter()
            .any(|(open, close)| *open <= at && at < *close)
    }
}

/// One day's hours: `09:00-12:00, 13:00-17:00`, empty for closed, `24h` for all day.
pub fn parse_hours(line: &str) -> Result<Vec<(Time, Time)>, String> {
    let line = line.trim();
    if line.is_empty() {
        return Ok(Vec::new());
    }
    if line.eq_ignore_ascii_case("24h") {
        return Ok(vec![(Time::midnight(), Time::MAX)]);
    }
    let mut out: Vec<(Time, Time)> = Vec::new();
    for part in line.split(',').map(str::trim) {
        let bad = || format!("{part:?} is not a span like 09:00-17:00.");
        let (open, close) = part.split_once('-').ok_or_else(bad)?;
        let time = |t: &str| match t.trim() {
            "24:00" => Ok(Time::MAX),
            t => Time::strptime("%H:%M", t).map_err(|_| bad()),
        };
        let (open, close) = (time(open)?, time(close)?);
        let close = if close == Time::midnight() {
            Time::MAX
        } else {
            close
        };
        if open >= close {
            return Err(format!("{part:?} ends before it starts."));
        }
        if out.last().is_some_and(|(_, last)| *last > open) {
            return Err(format!(
                "{part:?} overlaps the span before it; list spans in order."
            ));
        }
        out.push((open, close));
    }
    Ok(out)
}

/// The text form of one day's hours (the inverse of `parse_hours`).
pub fn format_hours(day: &[(Time, Time)]) -> String {
    if day == [(Time::midnight(), Time::MAX)] {
        return "24h".into();
    }
    day.iter()
        .map(|(open, close)| {
            let close = if *close == Time::MAX {
                "24:00".to_owned()
            } else {
                close.strftime("%H:%M").to_string()
            };
            format!("{}-{close}", open.strftime("%H:%M"))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use jiff::civil::{date, time};
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn business_days_skip_weekends_and_holidays() {
        let mut cal = Calendar::weekdays(tz("Europe/Berlin"), time(9, 0, 0, 0), time(17, 0, 0, 0));
        cal.holidays.insert(date(2026, 12, 25));
        // Thursday 2026-12-24 10:00 Berlin + 2 working days: Friday is a holiday, so Tuesday.
        let start = date(2026, 12, 24)
            .at(10, 0, 0, 0)
            .to_zoned(tz("Europe/Berlin"))
            .unwrap();
        let end = cal.after_business_days(start.timestamp(), 2).unwrap();
        assert_eq!(
            end.to_zoned(tz("Europe/Berlin")).datetime(),
            date(2026, 12, 29).at(10, 0, 0, 0)
        );
    }

    #[test]
    fn hours_parse_and_format_round_trip() {
        for line in ["", "24h", "09:00-17:00", "08:00-12:00, 13:00-24:00"] {
            let day = parse_hours(line).unwrap();
            assert_eq!(format_hours(&day), line);
        }
        for bad in [
            "9-5",
            "17:00-09:00",
            "09:00-12:00, 11:00-13:00",
            "25:00-26:00",
        ] {
            assert!(parse_hours(bad).is_err(), "{bad}");
        }
        let week: Vec<String> = ["09:00-17:00"; 5]
            .into_iter()
            .chain(["", ""])
            .map(String::from)
            .collect();
        assert!(Calendar::parse("Europe/Berlin", &week, &["2026-12-25".into()]).is_ok());
        assert_eq!(
            Calendar::parse("Mars/Olympus", &week, &[]).unwrap_err().0,
            "time_zone"
        );
        assert_eq!(
            Calendar::parse("UTC", &week, &["25.12.2026".into()])
                .unwrap_err()
                .0,
            "holidays"
        );
    }

    fn tz(name: &str) -> TimeZone {
        TimeZone::get(name).unwrap()
    }

    fn local(zone: &str, s: &str) -> Timestamp {
        s.parse::<jiff::civil::DateTime>()
            .unwrap()
            .to_zoned(tz(zone))
            .unwrap()
            .timestamp()
    }

    fn office(zone: &str) -> Calendar {
        Calendar::weekdays(tz(zone), time(9, 0, 0, 0), time(17, 0, 0, 0))
    }

    #[test]
    fn business_time_skips_nights_weekends_and_holidays() {
        let berlin = "Europe/Berlin";
        let mut with_holiday = office(berlin);
        with_holiday.holidays.insert(date(2026, 12, 25));
        let h = SignedDuration::from_hours;
        let m = SignedDuration::from_mins;
        let cases: Vec<(&str, Calendar, &str, SignedDuration, &str)> = vec![
            (
                "within a day",
                office(berlin),
                "2026-11-25T10:00",
                h(2),
                "2026-11-25T12:00",
            ),
            (
                "overnight",
                office(berlin),
                "2026-11-25T16:00",
                h(2),
                "2026-11-26T10:00",
            ),
            (
                "filed at night",
                office(berlin),
                "2026-11-25T22:30",
                m(15),
                "2026-11-26T09:15",
            ),
            (
                "over the weekend",
                office(berlin),
                "2026-11-27T16:00",
                h(2),
                "2026-11-30T10:00",
            ),
            (
                "filed on Sunday",
                office(berlin),
                "2026-11-29T11:00",
                h(1),
                "2026-11-30T10:00",
            ),
            (
                "exactly at closing",
                office(berlin),
                "2026-11-25T09:00",
                h(8),
                "2026-11-25T17:00",
            ),
            (
                "a whole week",
                office(berlin),
                "2026-11-23T09:00",
                h(40),
                "2026-11-27T17:00",
            ),
            (
                "over a holiday",
                with_holiday.clone(),
                "2026-12-24T16:00",
                h(2),
                "2026-12-28T10:00",
            ),
            (
                "zero",
                office(berlin),
                "2026-11-25T22:00",
                SignedDuration::ZERO,
                "2026-11-26T09:00",
            ),
            // Daylight saving: clocks go forward on 29 March 2026 in Berlin, 8 March in New York.
            (
                "Berlin spring forward",
                office(berlin),
                "2026-03-27T16:00",
                h(2),
                "2026-03-30T10:00",
            ),
            (
                "Berlin fall back",
                office(berlin),
                "2026-10-23T16:30",
                h(1),
                "2026-10-26T09:30",
            ),
            (
                "New York spring forward",
                office("America/New_York"),
                "2026-03-06T16:00",
                h(3),
                "2026-03-09T11:00",
            ),
        ];
        for (name, calendar, start, duration, expected) in cases {
            let zone = calendar.zone.iana_name().unwrap_or("UTC").to_owned();
            let got = calendar.add(local(&zone, start), duration).unwrap();
            assert_eq!(
                got,
                local(&zone, expected),
                "{name}: {}",
                got.to_zoned(calendar.zone.clone())
            );
        }
    }

    #[test]
    fn around_the_clock_calendars_count_real_hours_across_daylight_saving() {
        let calendar = Calendar::always(tz("Europe/Berlin"));
        // The night of 28 to 29 March 2026 has 23 hours in Berlin: 24 business hours end at 13:00.
        let start = local("Europe/Berlin", "2026-03-28T12:00");
        let end = calendar.add(start, SignedDuration::from_hours(24)).unwrap();
        assert_eq!(end, local("Europe/Berlin", "2026-03-29T13:00"));
        assert_eq!(calendar.between(start, end), SignedDuration::from_hours(24));
    }

    #[test]
    fn open_hours_and_empty_calendars() {
        let calendar = office("Europe/Berlin");
        assert!(calendar.is_open(local("Europe/Berlin", "2026-11-25T09:00")));
        assert!(!calendar.is_open(local("Europe/Berlin", "2026-11-25T17:00")));
        assert!(!calendar.is_open(local("Europe/Berlin", "2026-11-28T12:00")));
        let closed = Calendar {
            week: Default::default(),
            ..office("UTC")
        };
        assert_eq!(
            closed.add(
                local("UTC", "2026-01-01T00:00"),
                SignedDuration::from_mins(1)
            ),
            None
        );
        assert_eq!(
            calendar.between(
                local("Europe/Berlin", "2026-11-25T12:00"),
                local("Europe/Berlin", "2026-11-25T11:00")
            ),
            SignedDuration::ZERO
        );
    }

    proptest! {
        #[test]
        fn business_time_is_monotonic_and_between_inverts_add(
            start_min in 0i64..(60 * 24 * 400),
            a in 0i64..(60 * 200),
            b in 0i64..(60 * 200),
            zone in prop::sample::select(vec!["Europe/Berlin", "America/New_York", "UTC", "Asia/Tokyo"]),
        ) {
            let calendar = office(zone);
            let start = local("UTC", "2026-01-01T00:00").checked_add(SignedDuration::from_mins(start_min)).unwrap();
            let (small, large) = (a.min(b), a.max(b));
            let t1 = calendar.add(start, SignedDuration::from_mins(small)).unwrap();
            let t2 = calendar.add(start, SignedDuration::from_mins(large)).unwrap();
            prop_assert!(t1 <= t2);
            prop_assert!(t1 >= start);
            prop_assert_eq!(calendar.between(start, t2), SignedDuration::from_mins(large));
        }
    }
}
