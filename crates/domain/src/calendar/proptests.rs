//! Property tests against a brute-force oracle that walks minute by minute.
//!
//! The oracle shares nothing with the implementation but jiff's "what does the clock read at
//! this instant". It keeps the calendar as plain data, decides for a local date and minute
//! whether it is open and which date's range it belongs to, and calls an instant open when
//! the latest clock reading seen so far (the running maximum, which is what "the first
//! instant the clock reads X" amounts to over DST gaps and folds) is open. Calendars,
//! zones and instants are random, in weeks with DST changes in several zones, including
//! zones that change at midnight (America/Santiago) and by 30 minutes (Australia/Lord_Howe).

use super::*;
use jiff::civil::DateTime;
use jiff::ToSpan;
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

const ZONES: &[&str] = &[
    "Europe/London",
    "America/New_York",
    "America/Santiago",
    "Australia/Lord_Howe",
    "Asia/Kolkata",
    "UTC",
];

/// Weeks around the 2026 DST changes of the zones above, and one quiet week.
const BASE_DATES: &[(i16, i8, i8)] = &[
    (2026, 3, 5),
    (2026, 3, 26),
    (2026, 4, 2),
    (2026, 6, 15),
    (2026, 9, 3),
    (2026, 10, 1),
    (2026, 10, 22),
    (2026, 10, 29),
];

/// A range as plain minutes after the opening date's midnight; `end > 1440` runs overnight.
type Span = (u16, u16);

#[derive(Debug, Clone)]
struct Model {
    zone: &'static str,
    week: [Vec<Span>; 7],
    holidays: BTreeSet<Date>,
    exceptions: BTreeMap<Date, Vec<Span>>,
    /// Where holidays, exceptions and the test instants are.
    base: Date,
}

impl Model {
    fn own(&self, date: Date) -> &[Span] {
        if self.holidays.contains(&date) {
            &[]
        } else if let Some(spans) = self.exceptions.get(&date) {
            spans
        } else {
            &self.week[date.weekday().to_monday_zero_offset() as usize]
        }
    }

    fn ordinary(&self, date: Date) -> bool {
        !self.holidays.contains(&date) && !self.exceptions.contains_key(&date)
    }

    /// The date whose range covers this local time, if any.
    fn owner(&self, local: DateTime) -> Option<Date> {
        let date = local.date();
        let minute = local.hour() as u16 * 60 + local.minute() as u16;
        if self
            .own(date)
            .iter()
            .any(|&(s, e)| s <= minute && minute < e)
        {
            return Some(date);
        }
        let yesterday = date.yesterday().unwrap();
        let tail = self
            .own(yesterday)
            .iter()
            .any(|&(_, e)| e > 1440 && minute < e - 1440);
        (self.ordinary(date) && tail).then_some(yesterday)
    }

    fn config(&self) -> CalendarConfig {
        let hm = |m: u16| format!("{:02}:{:02}", m / 60, m % 60);
        let day = |spans: &[Span]| {
            let texts: Vec<String> = spans
                .iter()
                .map(|&(s, e)| format!("{}-{}", hm(s), if e > 1440 { hm(e - 1440) } else { hm(e) }))
                .collect();
            texts.join(",")
        };
        let w = |i: usize| Some(day(&self.week[i]));
        CalendarConfig {
            id: "prop".into(),
            timezone: self.zone.into(),
            hours: WeekHours {
                mon: w(0),
                tue: w(1),
                wed: w(2),
                thu: w(3),
                fri: w(4),
                sat: w(5),
                sun: w(6),
            },
            holidays: self.holidays.iter().map(|d| d.to_string()).collect(),
            exceptions: self
                .exceptions
                .iter()
                .map(|(d, s)| (d.to_string(), day(s)))
                .collect(),
        }
    }
}

/// Walks instants minute by minute, keeping the latest clock reading seen.
struct Walker<'a> {
    model: &'a Model,
    zone: TimeZone,
    at: Timestamp,
    latest: DateTime,
}

impl<'a> Walker<'a> {
    fn new(model: &'a Model, from: Timestamp) -> Self {
        let zone = TimeZone::get(model.zone).unwrap();
        // A day of history is more than any fold takes back.
        let mut walker = Walker {
            model,
            zone,
            at: from - 24.hours(),
            latest: DateTime::MIN,
        };
        while walker.at < from {
            walker.step();
        }
        walker.latest = walker.latest.max(walker.zone.to_datetime(from));
        walker
    }

    /// The owner of the current minute `[at, at + 1 min)`, or `None` when it is closed.
    fn owner(&self) -> Option<Date> {
        self.model.owner(self.latest)
    }

    fn step(&mut self) {
        self.at += 1.minute();
        self.latest = self.latest.max(self.zone.to_datetime(self.at));
    }
}

/// Cap of the oracle's walks, in minutes (a month); cases that need more are skipped.
const CAP: u32 = 31 * 1440;

fn oracle_add_minutes(model: &Model, t: Timestamp, n: u32) -> Option<Timestamp> {
    let mut walker = Walker::new(model, t);
    let mut used = 0;
    for _ in 0..CAP {
        if walker.owner().is_some() {
            if n == 0 {
                return Some(walker.at);
            }
            used += 1;
            if used == n {
                return Some(walker.at + 1.minute());
            }
        }
        walker.step();
    }
    None
}

/// The `k`-th instant after `t` at which the calendar closes (open just before, closed at).
fn oracle_closing(model: &Model, t: Timestamp, k: u32) -> Option<Timestamp> {
    let mut walker = Walker::new(model, t);
    let mut seen = 0;
    for _ in 0..CAP {
        let was_open = walker.owner().is_some();
        walker.step();
        if was_open && walker.owner().is_none() {
            seen += 1;
            if seen == k {
                return Some(walker.at);
            }
        }
    }
    None
}

fn oracle_add_days(model: &Model, t: Timestamp, n: u32) -> Option<Timestamp> {
    let mut walker = Walker::new(model, t);
    let own_day = walker.owner().unwrap_or(walker.zone.to_datetime(t).date());
    let mut current: Option<(Date, Timestamp)> = None;
    let mut count = 0;
    for _ in 0..CAP {
        if let Some(date) = walker.owner().filter(|d| *d > own_day) {
            match current {
                Some((d, _)) if d == date => current = Some((d, walker.at + 1.minute())),
                _ => {
                    if current.is_some() {
                        count += 1;
                        if count == n {
                            return current.map(|(_, end)| end);
                        }
                    }
                    current = Some((date, walker.at + 1.minute()));
                }
            }
        }
        walker.step();
        // Ranges of a date end by the next midnight but one: past that, the date is done.
        if let Some((date, end)) = current {
            if walker.latest.date() > date.tomorrow().unwrap() {
                count += 1;
                if count == n {
                    return Some(end);
                }
                current = None;
            }
        }
    }
    None
}

fn oracle_between(model: &Model, a: Timestamp, b: Timestamp) -> SignedDuration {
    let mut walker = Walker::new(model, a);
    let mut minutes = 0;
    while walker.at < b {
        minutes += i64::from(walker.owner().is_some());
        walker.step();
    }
    SignedDuration::from_mins(minutes)
}

/// Up to three ranges in a day, on quarter hours; an overnight end is fixed up later.
fn day() -> impl Strategy<Value = (Vec<Span>, bool)> {
    (prop::collection::btree_set(0u16..=96, 0..=6), any::<bool>()).prop_map(
        |(points, overnight)| {
            let points: Vec<u16> = points.into_iter().map(|p| p * 15).collect();
            (
                points.chunks_exact(2).map(|c| (c[0], c[1])).collect(),
                overnight,
            )
        },
    )
}

/// Makes the last range of a day overnight (when asked and when there is room): its tail
/// ends by the next day's first opening.
fn run_overnight(spans: &mut [Span], overnight: bool, next_first: Option<u16>, pick: u16) {
    let Some(last) = spans.last_mut() else { return };
    // The tail ends before the range's own start: a range is shorter than a day.
    let room = last.0.saturating_sub(15).min(next_first.unwrap_or(720));
    if overnight && room >= 15 {
        last.1 = 1440 + 15 * (1 + pick % (room / 15));
    }
}

fn model() -> impl Strategy<Value = Model> {
    (
        prop::sample::select(ZONES),
        prop::array::uniform7(day()),
        prop::array::uniform7(any::<u16>()),
        prop::collection::btree_set(-3i64..40, 0..4),
        prop::collection::btree_map(-3i64..40, (day(), any::<u16>()), 0..3),
        prop::sample::select(BASE_DATES),
    )
        .prop_map(|(zone, days, picks, holidays, exceptions, base)| {
            let base = Date::constant(base.0, base.1, base.2);
            let mut week: [Vec<Span>; 7] = Default::default();
            for (i, (spans, _)) in days.iter().enumerate() {
                week[i] = spans.clone();
            }
            if week.iter().all(Vec::is_empty) {
                week[0] = vec![(540, 1020)];
            }
            for i in 0..7 {
                let next_first = week[(i + 1) % 7].first().map(|s| s.0);
                run_overnight(&mut week[i], days[i].1, next_first, picks[i]);
            }
            let date = |offset: i64| base.checked_add(offset.days()).unwrap();
            let holidays: BTreeSet<Date> = holidays.into_iter().map(date).collect();
            let mut model = Model {
                zone,
                week,
                holidays,
                exceptions: BTreeMap::new(),
                base,
            };
            let mut overnights = Vec::new();
            for (offset, ((spans, overnight), pick)) in exceptions {
                let d = date(offset);
                if !model.holidays.contains(&d) {
                    model.exceptions.insert(d, spans);
                    overnights.push((d, overnight, pick));
                }
            }
            // Decided once all exceptions are in, since the next date may be one.
            for (d, overnight, pick) in overnights {
                let next = d.tomorrow().unwrap();
                let next_first = if model.ordinary(next) {
                    model.own(next).first().map(|s| s.0)
                } else {
                    None
                };
                run_overnight(
                    model.exceptions.get_mut(&d).unwrap(),
                    overnight,
                    next_first,
                    pick,
                );
            }
            model
        })
}

/// A random calendar and a minute-aligned instant within a week of its base date.
fn case() -> impl Strategy<Value = (Model, BusinessCalendar, Timestamp)> {
    (model(), 0i64..7, 0i64..1440).prop_map(|(model, day, minute)| {
        let calendar = BusinessCalendar::new(&model.config())
            .unwrap_or_else(|e| panic!("a valid model must build: {e}\n{:?}", model.config()));
        let zone = TimeZone::get(model.zone).unwrap();
        let midnight = model.base.checked_add(day.days()).unwrap().at(0, 0, 0, 0);
        let t = zone.to_ambiguous_timestamp(midnight).compatible().unwrap() + minute.minutes();
        (model, calendar, t)
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    /// Business time: `add` agrees with the oracle, ends in open time or exactly at a
    /// closing time, and `between` gives the time back, also from instants between minutes.
    #[test]
    fn adding_business_time_agrees_with_the_minute_walk(
        (model, calendar, t) in case(),
        n in 0u32..2400,
        seconds in 0i64..60,
    ) {
        let Some(expected) = oracle_add_minutes(&model, t, n) else { return Ok(()) };
        let got = calendar.add(t, BusinessDuration::Minutes(n)).unwrap();
        prop_assert_eq!(got, expected);
        let time = SignedDuration::from_mins(n.into());
        prop_assert_eq!(calendar.between(t, got), time);
        if n == 0 {
            prop_assert!(calendar.is_open(got));
            prop_assert_eq!(calendar.next_open(t).unwrap(), got);
        } else {
            // The result closes a stretch of open time: the moment before it is open.
            prop_assert!(calendar.is_open(got - SignedDuration::from_nanos(1)));
        }
        let t2 = t + SignedDuration::from_secs(seconds);
        let got2 = calendar.add_time(t2, time).unwrap();
        prop_assert_eq!(calendar.between(t2, got2), time);
    }

    /// Time that runs out exactly at a closing time ends there, not at the next opening.
    #[test]
    fn time_used_up_at_a_closing_time_ends_there((model, calendar, t) in case(), k in 1u32..4) {
        let Some(closing) = oracle_closing(&model, t, k) else { return Ok(()) };
        let time = oracle_between(&model, t, closing);
        prop_assert_eq!(calendar.add_time(t, time).unwrap(), closing);
        prop_assert!(!calendar.is_open(closing));
    }

    /// Business days: `add` agrees with the oracle and ends at a closing time.
    #[test]
    fn adding_business_days_agrees_with_the_minute_walk(
        (model, calendar, t) in case(),
        n in 1u32..5,
    ) {
        let Some(expected) = oracle_add_days(&model, t, n) else { return Ok(()) };
        let got = calendar.add(t, BusinessDuration::Days(NonZeroU32::new(n).unwrap())).unwrap();
        prop_assert_eq!(got, expected);
        prop_assert!(calendar.is_open(got - SignedDuration::from_nanos(1)));
    }

    /// `between` counts the open minutes, is antisymmetric and adds up.
    #[test]
    fn between_agrees_with_the_minute_walk(
        (model, calendar, a) in case(),
        to_b in -(10 * 1440i64)..(10 * 1440),
        to_m in 0i64..(10 * 1440),
    ) {
        let b = a + to_b.minutes();
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        let forward = calendar.between(lo, hi);
        prop_assert_eq!(forward, oracle_between(&model, lo, hi));
        prop_assert_eq!(calendar.between(hi, lo), -forward);
        prop_assert_eq!(calendar.between(a, b), -calendar.between(b, a));
        let m = a + to_m.minutes();
        prop_assert_eq!(calendar.between(a, m) + calendar.between(m, b), calendar.between(a, b));
    }

    /// `is_open` and `next_open` agree with the oracle.
    #[test]
    fn open_and_next_open_agree_with_the_minute_walk((model, calendar, t) in case()) {
        let walker = Walker::new(&model, t);
        prop_assert_eq!(calendar.is_open(t), walker.owner().is_some());
        if let Some(next) = oracle_add_minutes(&model, t, 0) {
            prop_assert_eq!(calendar.next_open(t).unwrap(), next);
        }
    }
}
