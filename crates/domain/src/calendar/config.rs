//! The `[[calendar]]` configuration as written, and its checks: every problem is reported
//! with the calendar's id and the key it was found under.

use jiff::civil::Date;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Minutes in a day; `24:00` is this many minutes after midnight.
pub(super) const DAY: u16 = 1440;

/// One `[[calendar]]` entry, with the SPEC's key names (section 8):
///
/// ```toml
/// [[calendar]]
/// id = "uk"
/// timezone = "Europe/London"
/// hours = { mon = "09:00-17:30", fri = "09:00-12:00,13:00-17:00" }
/// holidays = ["2026-12-25"]
/// exceptions = { "2026-12-24" = "09:00-12:00", "2026-12-31" = "closed" }
/// ```
///
/// Build a [`BusinessCalendar`](super::BusinessCalendar) from it to check it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalendarConfig {
    /// The name departments and processes use to refer to the calendar.
    pub id: String,
    /// An IANA time zone name such as `Europe/London`; all hours and dates are in it.
    pub timezone: String,
    /// Open hours per weekday; a day not listed is closed.
    #[serde(default)]
    pub hours: WeekHours,
    /// Dates (`YYYY-MM-DD`) on which the calendar is closed all day.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub holidays: Vec<String>,
    /// Dates (`YYYY-MM-DD`) with other hours than their weekday's: the same syntax as a
    /// weekday, and `""` or `"closed"` for a date closed all day.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub exceptions: BTreeMap<String, String>,
}

/// The `hours` table: each weekday's open ranges, `"HH:MM-HH:MM[,HH:MM-HH:MM...]"`.
/// `24:00` may end a range; a range that ends before it starts (`"22:00-06:00"`) runs
/// past midnight into the next day. `""` or `"closed"` (or leaving the day out) closes it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeekHours {
    /// Monday's hours.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mon: Option<String>,
    /// Tuesday's hours.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tue: Option<String>,
    /// Wednesday's hours.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wed: Option<String>,
    /// Thursday's hours.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thu: Option<String>,
    /// Friday's hours.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fri: Option<String>,
    /// Saturday's hours.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sat: Option<String>,
    /// Sunday's hours.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sun: Option<String>,
}

impl WeekHours {
    /// The days Monday first, with their key names.
    pub(super) fn days(&self) -> [(&'static str, Option<&str>); 7] {
        [
            ("mon", self.mon.as_deref()),
            ("tue", self.tue.as_deref()),
            ("wed", self.wed.as_deref()),
            ("thu", self.thu.as_deref()),
            ("fri", self.fri.as_deref()),
            ("sat", self.sat.as_deref()),
            ("sun", self.sun.as_deref()),
        ]
    }
}

/// A problem in a calendar's configuration: which calendar, which key, what is wrong.
/// Displays as `calendar "uk": hours.fri: "13:00" is not a range like "09:00-17:30"`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("calendar {calendar:?}: {key}: {problem}")]
pub struct CalendarConfigError {
    /// The calendar's `id`.
    pub calendar: String,
    /// Where the problem is: `timezone`, `hours.fri`, `holidays[2]`, `exceptions.2026-12-24`.
    pub key: String,
    /// What is wrong with it.
    pub problem: String,
}

/// One open range in local minutes after the midnight of the date it opens on:
/// `start < end`, and `end > DAY` for a range that runs past midnight (then
/// `end - DAY < start`, so it is shorter than a day).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Range {
    pub start: u16,
    pub end: u16,
}

impl Range {
    /// Whether the range closes on the next date.
    pub fn overnight(self) -> bool {
        self.end > DAY
    }
}

/// Parses one day's hours: ranges separated by commas, in any order, not overlapping.
/// `""` and `"closed"` are a closed day. A range that ends before it starts closes on the
/// next date; it must be the day's last.
pub(super) fn parse_day(text: &str) -> Result<Vec<Range>, String> {
    let trimmed = text.trim();
    if trimmed.is_empty() || trimmed.eq_ignore_ascii_case("closed") {
        return Ok(Vec::new());
    }
    let mut ranges = Vec::new();
    for part in trimmed.split(',') {
        ranges.push((part.trim(), parse_range(part.trim())?));
    }
    ranges.sort_by_key(|(_, r)| r.start);
    for pair in ranges.windows(2) {
        let ((a_text, a), (b_text, b)) = (pair[0], pair[1]);
        if a.end > b.start {
            return Err(format!("{a_text:?} and {b_text:?} overlap"));
        }
    }
    Ok(ranges.into_iter().map(|(_, r)| r).collect())
}

fn parse_range(text: &str) -> Result<Range, String> {
    let Some((from, to)) = text.split_once('-') else {
        return Err(format!("{text:?} is not a range like \"09:00-17:30\""));
    };
    let start = parse_time(from.trim())?;
    let end = parse_time(to.trim())?;
    if start == DAY {
        return Err(format!(
            "{text:?} starts at 24:00; a range may only end there"
        ));
    }
    if start == end {
        return Err(format!("{text:?} is empty (it ends when it starts)"));
    }
    // An end before the start is a range over midnight: "22:00-06:00" closes at 06:00 the
    // next day. "22:00-00:00" is the same as "22:00-24:00".
    let end = if end < start { end + DAY } else { end };
    Ok(Range { start, end })
}

/// `H:MM` or `HH:MM`, 00:00 to 24:00, in minutes after midnight.
fn parse_time(text: &str) -> Result<u16, String> {
    let bad = || format!("{text:?} is not a time of day (HH:MM)");
    let (h, m) = text.split_once(':').ok_or_else(bad)?;
    let digits = |s: &str, max_len| {
        !s.is_empty() && s.len() <= max_len && s.bytes().all(|b| b.is_ascii_digit())
    };
    if !digits(h, 2) || m.len() != 2 || !digits(m, 2) {
        return Err(bad());
    }
    let (h, m): (u16, u16) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if m > 59 || h > 24 || (h == 24 && m != 0) {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

/// `YYYY-MM-DD`, a real date.
pub(super) fn parse_date(text: &str) -> Result<Date, String> {
    let bad = || format!("{text:?} is not a date (YYYY-MM-DD)");
    let b = text.as_bytes();
    let shape = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if !shape {
        return Err(bad());
    }
    let num = |r: std::ops::Range<usize>| text[r].parse::<i16>().map_err(|_| bad());
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (Ok(m), Ok(d)) = (i8::try_from(m), i8::try_from(d)) else {
        return Err(bad());
    };
    Date::new(y, m, d).map_err(|_| bad())
}

/// Checks that an overnight range of one day does not run into the first range of the
/// next: `"22:00-06:00"` on Monday and `"05:00-12:00"` on Tuesday would count 05:00-06:00
/// twice.
pub(super) fn check_tail(ranges: &[Range], next: &[Range], next_key: &str) -> Result<(), String> {
    let (Some(last), Some(first)) = (ranges.last(), next.first()) else {
        return Ok(());
    };
    if last.overnight() && last.end - DAY > first.start {
        return Err(format!(
            "{:?} runs past midnight into {next_key} {:?}",
            show(*last),
            show(*first)
        ));
    }
    Ok(())
}

/// A range written back as in the configuration, for messages.
pub(super) fn show(r: Range) -> String {
    let hm = |m: u16| format!("{:02}:{:02}", m / 60, m % 60);
    let end = if r.end > DAY { r.end - DAY } else { r.end };
    format!("{}-{}", hm(r.start), hm(end))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(start: u16, end: u16) -> Range {
        Range { start, end }
    }

    #[test]
    fn days_parse_in_any_order_with_24_00_and_overnight_ranges() {
        assert_eq!(
            parse_day(" 13:00-17:00 , 9:00-12:00"),
            Ok(vec![r(540, 720), r(780, 1020)])
        );
        assert_eq!(parse_day("00:00-24:00"), Ok(vec![r(0, 1440)]));
        assert_eq!(parse_day("22:00-06:00"), Ok(vec![r(1320, 1800)]));
        assert_eq!(parse_day("22:00-00:00"), Ok(vec![r(1320, 1440)]));
        assert_eq!(
            parse_day("09:00-12:00,12:00-13:00"),
            Ok(vec![r(540, 720), r(720, 780)])
        );
        assert_eq!(parse_day(""), Ok(vec![]));
        assert_eq!(parse_day("Closed"), Ok(vec![]));
    }

    #[test]
    fn bad_days_say_what_is_wrong() {
        let err = |s| parse_day(s).unwrap_err();
        assert_eq!(err("09:00"), r#""09:00" is not a range like "09:00-17:30""#);
        assert_eq!(err("09:00-1700"), r#""1700" is not a time of day (HH:MM)"#);
        assert_eq!(err("9-17"), r#""9" is not a time of day (HH:MM)"#);
        assert_eq!(
            err("09:60-10:00"),
            r#""09:60" is not a time of day (HH:MM)"#
        );
        assert_eq!(
            err("09:00-24:30"),
            r#""24:30" is not a time of day (HH:MM)"#
        );
        assert_eq!(
            err("24:00-06:00"),
            r#""24:00-06:00" starts at 24:00; a range may only end there"#
        );
        assert_eq!(
            err("09:00-09:00"),
            r#""09:00-09:00" is empty (it ends when it starts)"#
        );
        assert_eq!(
            err("09:00-12:00,11:00-17:00"),
            r#""09:00-12:00" and "11:00-17:00" overlap"#
        );
        assert_eq!(
            err("22:00-06:00,09:00-23:00"),
            r#""09:00-23:00" and "22:00-06:00" overlap"#
        );
        assert_eq!(
            err("09:00-12:00,"),
            r#""" is not a range like "09:00-17:30""#
        );
    }

    #[test]
    fn dates_are_strict() {
        assert_eq!(parse_date("2026-12-25"), Ok(Date::constant(2026, 12, 25)));
        for bad in [
            "2026-02-30",
            "2026-13-01",
            "26-12-25",
            "2026/12/25",
            "20261225",
            "2026-12-25T00:00",
        ] {
            assert_eq!(
                parse_date(bad),
                Err(format!("{bad:?} is not a date (YYYY-MM-DD)"))
            );
        }
    }

    #[test]
    fn an_overnight_tail_must_end_by_the_next_days_first_opening() {
        let mon = parse_day("22:00-06:00").unwrap();
        assert!(check_tail(&mon, &parse_day("06:00-12:00").unwrap(), "hours.tue").is_ok());
        assert_eq!(
            check_tail(&mon, &parse_day("05:00-12:00").unwrap(), "hours.tue"),
            Err(r#""22:00-06:00" runs past midnight into hours.tue "05:00-12:00""#.into())
        );
    }
}
