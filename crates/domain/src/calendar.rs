//! Business calendars (SPEC section 8): when a department works, and arithmetic in its
//! working time: "N business minutes/hours/days after T", "business time between A and B".
//!
//! Pure: callers pass the instants. Everything is computed in the calendar's own time zone,
//! which has nothing to do with any zone a task's timestamps were written in.
//!
//! **The model.** Each date has the open ranges of its weekday, none when it is a holiday,
//! or its exception's. A range is local wall-clock time and becomes an absolute interval:
//! it opens at the first instant the clock reads its start and closes at the first instant
//! the clock reads its end. So on the day the clocks go forward, a time the clock skips
//! takes effect when the clock jumps past it, and on the day they go back, a time the clock
//! shows twice is taken at its first showing: `09:00-17:00` is 8 hours on both days,
//! `00:00-24:00` is 23 or 25. A range that ends before it starts (`22:00-06:00`) belongs to
//! the date it opens on and runs into the next date, unless that date is a holiday or an
//! exception: those replace the whole date's hours, so the range then closes at midnight
//! (holidays remove calendar time, not whole shifts).
//!
//! **A business day** is one *open day*: a date on which at least one range opens (and is
//! not swallowed by a DST gap). It ends at its *closing time*, the close of the last range
//! opening on it (for `22:00-06:00`, 06:00 the next morning). `N business days after T` is
//! the closing time of the N-th open day after T's own day, where T's own day is the date
//! whose range T falls in when the calendar is open at T (Tuesday 03:00 inside Monday's
//! `22:00-06:00` belongs to Monday) and T's local date otherwise.
//!
//! **Business time** is time inside those intervals. `add` walks that much open time from
//! T, starting at the next opening when T is closed, and stops as soon as it is used up:
//! exactly at a closing time when it runs out there, not at the next opening.
//!
//! The work is bounded: a calendar must open on some weekday (checked when it is built),
//! and the walks give up with [`CalendarError::BeyondHorizon`] after [`HORIZON_DAYS`].

mod config;
mod duration;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

pub use config::{CalendarConfig, CalendarConfigError, WeekHours};
pub use duration::{BusinessDuration, BusinessDurationError};

use crate::Timestamp;
use config::{check_tail, parse_date, parse_day, Range, DAY};
use jiff::civil::Date;
use jiff::tz::{AmbiguousOffset, TimeZone};
use jiff::SignedDuration;
use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::ops::ControlFlow;
use std::sync::OnceLock;

/// How far ahead the arithmetic looks, in days (100 years): a result further away is an
/// error rather than a long walk.
pub const HORIZON_DAYS: u32 = 36_525;

/// A checked business calendar, built from a [`CalendarConfig`].
#[derive(Debug, Clone)]
pub struct BusinessCalendar {
    id: String,
    zone: TimeZone,
    /// Open ranges per weekday, Monday first; each sorted, disjoint.
    week: [Box<[Range]>; 7],
    /// Holidays (no ranges) and exceptions, sorted by date.
    special: Box<[(Date, Box<[Range]>)]>,
    /// The open intervals of the dates around the first one asked for.
    days: Days,
}

/// How many dates [`Days`] keeps: a year before the first date asked for, three after.
const KEPT_DAYS: usize = 4 * 366;

/// The open intervals of each date, worked out once: they depend on the date alone, and
/// working them out (a time zone lookup for each end of each range) was most of what an
/// addition cost. Dates outside the window (a server that runs three years on one
/// configuration) are worked out each time.
#[derive(Clone)]
struct Days {
    /// The first date kept: a year before the first date asked for.
    first: OnceLock<Date>,
    slots: Box<[Slot]>,
}

/// One date's open intervals, once worked out.
type Slot = OnceLock<Result<Box<[Open]>, Overflow>>;

impl std::fmt::Debug for Days {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Days")
            .field("first", &self.first.get())
            .finish_non_exhaustive()
    }
}

impl Days {
    fn new() -> Self {
        Self {
            first: OnceLock::new(),
            slots: (0..KEPT_DAYS).map(|_| OnceLock::new()).collect(),
        }
    }

    /// The slot of `date`, if the window holds it.
    fn slot(&self, date: Date) -> Option<&Slot> {
        let first = self.first.get_or_init(|| {
            date.checked_sub(jiff::Span::new().days(366))
                .unwrap_or(date)
        });
        let offset = date.duration_since(*first).as_hours() / 24;
        self.slots.get(usize::try_from(offset).ok()?)
    }
}

/// Why a calendar computation has no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    /// The answer lies more than [`HORIZON_DAYS`] after the start (or the calendar has no
    /// open time in that span, e.g. a holiday listed for every date).
    #[error("calendar {calendar:?}: no answer within 100 years after {from}")]
    BeyondHorizon {
        /// The calendar's id.
        calendar: String,
        /// The instant the computation started from.
        from: Timestamp,
    },
    /// The answer lies beyond the dates jiff supports (the years -9999 to 9999).
    #[error("calendar {calendar:?}: the answer lies outside the supported dates")]
    OutOfRange {
        /// The calendar's id.
        calendar: String,
    },
    /// Business time to add must not be negative.
    #[error("calendar {calendar:?}: cannot add a negative business time ({time:#})")]
    Negative {
        /// The calendar's id.
        calendar: String,
        /// What was asked.
        time: SignedDuration,
    },
}

/// One open interval, `[start, end)`, with the date its range opens on.
#[derive(Debug, Clone, Copy)]
struct Open {
    date: Date,
    start: Timestamp,
    end: Timestamp,
}

/// The walk left jiff's range of dates or instants.
#[derive(Clone, Copy)]
struct Overflow;

impl BusinessCalendar {
    /// Checks a configuration and builds the calendar. Errors name the calendar and the key.
    pub fn new(config: &CalendarConfig) -> Result<Self, CalendarConfigError> {
        let fail = |key: &str, problem: String| CalendarConfigError {
            calendar: config.id.clone(),
            key: key.to_string(),
            problem,
        };
        if config.id.trim().is_empty() {
            return Err(fail("id", "is empty".into()));
        }
        let zone = TimeZone::get(&config.timezone).map_err(|_| {
            let problem = format!(
                "unknown time zone {:?} (an IANA name such as \"Europe/London\")",
                config.timezone
            );
            fail("timezone", problem)
        })?;

        let days = config.hours.days();
        let mut week: [Box<[Range]>; 7] = Default::default();
        for (i, (name, text)) in days.iter().enumerate() {
            let ranges =
                parse_day(text.unwrap_or("")).map_err(|p| fail(&format!("hours.{name}"), p))?;
            week[i] = ranges.into();
        }
        if week.iter().all(|d| d.is_empty()) {
            return Err(fail(
                "hours",
                "no day has open hours, so the calendar would never open".into(),
            ));
        }
        for i in 0..7 {
            let next = (i + 1) % 7;
            check_tail(&week[i], &week[next], &format!("hours.{}", days[next].0))
                .map_err(|p| fail(&format!("hours.{}", days[i].0), p))?;
        }

        let mut special: BTreeMap<Date, Box<[Range]>> = BTreeMap::new();
        for (i, text) in config.holidays.iter().enumerate() {
            let key = format!("holidays[{i}]");
            let date = parse_date(text).map_err(|p| fail(&key, p))?;
            if special.insert(date, Box::default()).is_some() {
                return Err(fail(&key, format!("{date} is listed twice")));
            }
        }
        for (date_text, hours) in &config.exceptions {
            let key = format!("exceptions.{date_text}");
            let date = parse_date(date_text).map_err(|p| fail(&key, p))?;
            if special.contains_key(&date) {
                return Err(fail(&key, format!("{date} is also a holiday")));
            }
            let ranges = parse_day(hours).map_err(|p| fail(&key, p))?;
            special.insert(date, ranges.into());
        }

        let calendar = BusinessCalendar {
            id: config.id.clone(),
            zone,
            week,
            special: special.into_iter().collect(),
            days: Days::new(),
        };
        // An exception's overnight range runs into the next date unless that date is special
        // too; it must not run into that weekday's first range.
        for (date, ranges) in calendar.special.iter() {
            let Ok(next) = date.tomorrow() else { continue };
            if calendar.is_special(next) {
                continue;
            }
            let weekday = next.weekday().to_monday_zero_offset() as usize;
            check_tail(
                ranges,
                &calendar.week[weekday],
                &format!("hours.{}", days[weekday].0),
            )
            .map_err(|p| fail(&format!("exceptions.{date}"), p))?;
        }
        Ok(calendar)
    }

    /// The calendar's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The calendar's time zone.
    pub fn time_zone(&self) -> &TimeZone {
        &self.zone
    }

    /// Whether the calendar is open at `t` (open intervals include their opening instant and
    /// exclude their closing one).
    pub fn is_open(&self, t: Timestamp) -> bool {
        self.interval_at(t).is_some()
    }

    /// The first instant at or after `t` at which the calendar is open: `t` itself when it is.
    pub fn next_open(&self, t: Timestamp) -> Result<Timestamp, CalendarError> {
        let found = self.walk(self.day_before(t), HORIZON_DAYS + 2, |open| {
            if open.end > t {
                ControlFlow::Break(open.start.max(t))
            } else {
                ControlFlow::Continue(())
            }
        });
        self.found(found, t)
    }

    /// `d` after `t` on this calendar: business time (minutes, hours) walks that much open
    /// time from `t`, business days end at the closing time of the N-th open day after
    /// `t`'s own day (see the module's documentation).
    pub fn add(&self, t: Timestamp, d: BusinessDuration) -> Result<Timestamp, CalendarError> {
        match d {
            BusinessDuration::Minutes(m) => self.add_time(t, SignedDuration::from_mins(m.into())),
            BusinessDuration::Days(n) => self.add_days(t, n),
        }
    }

    /// The instant at which `time` of open time, counted from `t`, is used up. Counting
    /// starts at the next opening when the calendar is closed at `t`; zero gives that
    /// opening. It ends exactly at a closing time when the time runs out there.
    pub fn add_time(&self, t: Timestamp, time: SignedDuration) -> Result<Timestamp, CalendarError> {
        if time.is_negative() {
            return Err(CalendarError::Negative {
                calendar: self.id.clone(),
                time,
            });
        }
        let mut left = time;
        let found = self.walk(self.day_before(t), HORIZON_DAYS + 2, |open| {
            if open.end <= t {
                return ControlFlow::Continue(());
            }
            let start = open.start.max(t);
            let len = open.end.duration_since(start);
            if left <= len {
                // Cannot overflow: start + left <= open.end.
                ControlFlow::Break(start.checked_add(left).unwrap_or(open.end))
            } else {
                left -= len;
                ControlFlow::Continue(())
            }
        });
        self.found(found, t)
    }

    /// The closing time of the `n`-th open day after `t`'s own day.
    fn add_days(&self, t: Timestamp, n: NonZeroU32) -> Result<Timestamp, CalendarError> {
        let out_of_range = || CalendarError::OutOfRange {
            calendar: self.id.clone(),
        };
        let own_day = match self.interval_at(t) {
            Some(open) => open.date,
            None => self.zone.to_datetime(t).date(),
        };
        let mut date = own_day.tomorrow().map_err(|_| out_of_range())?;
        let mut count = 0;
        for _ in 0..HORIZON_DAYS {
            let mut closing = None;
            let done = self.day(date, |open| {
                closing = Some(open.end);
                ControlFlow::<()>::Continue(())
            });
            if done.is_err() {
                return Err(out_of_range());
            }
            if let Some(closing) = closing {
                count += 1;
                if count == n.get() {
                    return Ok(closing);
                }
            }
            date = date.tomorrow().map_err(|_| out_of_range())?;
        }
        Err(CalendarError::BeyondHorizon {
            calendar: self.id.clone(),
            from: t,
        })
    }

    /// Business time between `a` and `b`: the open time in `[a, b)`, negative when `b` is
    /// before `a`. `between(a, b) + between(b, c) == between(a, c)`.
    pub fn between(&self, a: Timestamp, b: Timestamp) -> SignedDuration {
        if b < a {
            return -self.between(b, a);
        }
        let first = self.day_before(a);
        // Dates from the one before `a` to the one after `b` cover every interval that
        // overlaps [a, b); the walk stops at the first interval opening at or after `b`.
        let span = self
            .zone
            .to_datetime(b)
            .date()
            .duration_since(first)
            .as_hours()
            / 24;
        let days = u32::try_from(span + 3).unwrap_or(u32::MAX);
        let mut total = SignedDuration::ZERO;
        // An overflow can only happen at the ends of jiff's range of dates, where there is
        // nothing left to count.
        let _ = self.walk(first, days, |open| {
            if open.start >= b {
                return ControlFlow::Break(());
            }
            let (start, end) = (open.start.max(a), open.end.min(b));
            if end > start {
                total += end.duration_since(start);
            }
            ControlFlow::Continue(())
        });
        total
    }

    /// The open interval containing `t`, if any.
    fn interval_at(&self, t: Timestamp) -> Option<Open> {
        // Ranges opening on the date before can still run (overnight); ranges of the date
        // after can only contain `t` where the clocks went back across midnight.
        let found = self.walk(self.day_before(t), 3, |open| {
            if open.start > t {
                ControlFlow::Break(None)
            } else if t < open.end {
                ControlFlow::Break(Some(open))
            } else {
                ControlFlow::Continue(())
            }
        });
        match found {
            Ok(ControlFlow::Break(found)) => found,
            _ => None,
        }
    }

    /// The local date before `t`'s: the first date whose ranges can contain `t`.
    fn day_before(&self, t: Timestamp) -> Date {
        let date = self.zone.to_datetime(t).date();
        date.yesterday().unwrap_or(date)
    }

    /// Turns a walk's outcome into the answer or the error.
    fn found(
        &self,
        walked: Result<ControlFlow<Timestamp>, Overflow>,
        from: Timestamp,
    ) -> Result<Timestamp, CalendarError> {
        match walked {
            Ok(ControlFlow::Break(t)) => Ok(t),
            Ok(ControlFlow::Continue(())) => Err(CalendarError::BeyondHorizon {
                calendar: self.id.clone(),
                from,
            }),
            Err(Overflow) => Err(CalendarError::OutOfRange {
                calendar: self.id.clone(),
            }),
        }
    }

    /// Visits the open intervals of `days` dates from `first` on, in time order (ranges are
    /// disjoint in local time and the local-to-absolute mapping never goes back, so the
    /// intervals are disjoint and ordered too).
    fn walk<B>(
        &self,
        first: Date,
        days: u32,
        mut visit: impl FnMut(Open) -> ControlFlow<B>,
    ) -> Result<ControlFlow<B>, Overflow> {
        let mut date = first;
        for i in 0..days {
            if let ControlFlow::Break(b) = self.day(date, &mut visit)? {
                return Ok(ControlFlow::Break(b));
            }
            if i + 1 < days {
                date = date.tomorrow().map_err(|_| Overflow)?;
            }
        }
        Ok(ControlFlow::Continue(()))
    }

    /// Visits the non-empty open intervals whose ranges open on `date`.
    fn day<B>(
        &self,
        date: Date,
        mut visit: impl FnMut(Open) -> ControlFlow<B>,
    ) -> Result<ControlFlow<B>, Overflow> {
        let worked_out;
        let opens: &[Open] = match self.days.slot(date) {
            Some(slot) => slot
                .get_or_init(|| self.opens_on(date))
                .as_ref()
                .map_err(|e| *e)?,
            None => {
                worked_out = self.opens_on(date)?;
                &worked_out
            }
        };
        for &open in opens {
            if let ControlFlow::Break(b) = visit(open) {
                return Ok(ControlFlow::Break(b));
            }
        }
        Ok(ControlFlow::Continue(()))
    }

    /// The non-empty open intervals whose ranges open on `date`, in time order.
    fn opens_on(&self, date: Date) -> Result<Box<[Open]>, Overflow> {
        let ranges = self.ranges_on(date);
        // The next date is only looked up when a range runs into it.
        let next_open_normally = match ranges.last() {
            Some(last) if last.overnight() => {
                !self.is_special(date.tomorrow().map_err(|_| Overflow)?)
            }
            _ => false,
        };
        let mut opens = Vec::with_capacity(ranges.len());
        for range in ranges {
            let start = self.wall(date, range.start)?;
            let end = if range.overnight() && !next_open_normally {
                // The next date is a holiday or an exception: it owns its whole day.
                self.wall(date, DAY)?
            } else {
                self.wall(date, range.end)?
            };
            if end > start {
                opens.push(Open { date, start, end });
            }
        }
        Ok(opens.into())
    }

    fn ranges_on(&self, date: Date) -> &[Range] {
        match self.special.binary_search_by_key(&date, |(d, _)| *d) {
            Ok(i) => &self.special[i].1,
            Err(_) => &self.week[date.weekday().to_monday_zero_offset() as usize],
        }
    }

    fn is_special(&self, date: Date) -> bool {
        self.special
            .binary_search_by_key(&date, |(d, _)| *d)
            .is_ok()
    }

    /// The first instant at which the local clock reads `minute` minutes after the midnight
    /// starting `date` (`minute` may pass 24:00 into the next date). A time the clock skips
    /// maps to the instant of the jump; a time it shows twice, to its first showing. This
    /// mapping never goes back in time as the local time goes forward.
    fn wall(&self, date: Date, minute: u16) -> Result<Timestamp, Overflow> {
        let (date, minute) = if minute >= DAY {
            (date.tomorrow().map_err(|_| Overflow)?, minute - DAY)
        } else {
            (date, minute)
        };
        // Both fit: minute < 1440.
        let local = date.at((minute / 60) as i8, (minute % 60) as i8, 0, 0);
        let instant = match self.zone.to_ambiguous_timestamp(local).offset() {
            AmbiguousOffset::Unambiguous { offset } => offset.to_timestamp(local),
            // `before` is the offset in force first, so this is the first showing.
            AmbiguousOffset::Fold { before, .. } => before.to_timestamp(local),
            AmbiguousOffset::Gap { after, .. } => {
                // Read with the later offset, the skipped time lies before the jump; the
                // jump is the next transition after it.
                let early = after.to_timestamp(local).map_err(|_| Overflow)?;
                return self
                    .zone
                    .following(early)
                    .next()
                    .map(|tr| tr.timestamp())
                    .ok_or(Overflow);
            }
        };
        instant.map_err(|_| Overflow)
    }
}

impl TryFrom<&CalendarConfig> for BusinessCalendar {
    type Error = CalendarConfigError;

    fn try_from(config: &CalendarConfig) -> Result<Self, Self::Error> {
        Self::new(config)
    }
}
