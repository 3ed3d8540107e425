//! Hand-checked examples. Instants are written with their UTC offset so the DST cases say
//! which of two 01:30s they mean.

use super::*;
use jiff::civil::DateTime;

fn calendar(config: serde_json::Value) -> BusinessCalendar {
    let config: CalendarConfig = serde_json::from_value(config).expect("config shape");
    BusinessCalendar::new(&config).expect("valid calendar")
}

fn config_error(config: serde_json::Value) -> String {
    let config: CalendarConfig = serde_json::from_value(config).expect("config shape");
    BusinessCalendar::new(&config).unwrap_err().to_string()
}

/// The SPEC's example calendar, plus a closed exception on New Year's Eve.
fn uk() -> BusinessCalendar {
    calendar(serde_json::json!({
        "id": "uk",
        "timezone": "Europe/London",
        "hours": {
            "mon": "09:00-17:30", "tue": "09:00-17:30", "wed": "09:00-17:30", "thu": "09:00-17:30",
            "fri": "09:00-12:00,13:00-17:00"
        },
        "holidays": ["2026-12-25", "2026-12-28"],
        "exceptions": { "2026-12-24": "09:00-12:00", "2026-12-31": "closed" }
    }))
}

fn ts(s: &str) -> Timestamp {
    s.parse().expect("timestamp with offset")
}

/// A London local time that is not ambiguous.
fn london(s: &str) -> Timestamp {
    let local: DateTime = s.parse().expect("civil datetime");
    local
        .to_zoned(TimeZone::get("Europe/London").unwrap())
        .unwrap()
        .timestamp()
}

fn mins(n: u32) -> BusinessDuration {
    BusinessDuration::Minutes(n)
}

fn days(n: u32) -> BusinessDuration {
    BusinessDuration::Days(NonZeroU32::new(n).unwrap())
}

const HOUR: SignedDuration = SignedDuration::from_hours(1);

#[test]
fn a_friday_with_a_lunch_break() {
    let uk = uk();
    // Friday 4 December 2026: 09:00-12:00, 13:00-17:00.
    let t = london("2026-12-04T11:30");
    assert_eq!(uk.add(t, mins(90)), Ok(london("2026-12-04T14:00")));
    assert_eq!(
        uk.between(t, london("2026-12-04T14:00")),
        SignedDuration::from_mins(90)
    );
    assert!(!uk.is_open(london("2026-12-04T12:30")));
    assert_eq!(
        uk.next_open(london("2026-12-04T12:30")),
        Ok(london("2026-12-04T13:00"))
    );
    // Time that runs out at a closing time ends there, not at the next opening.
    assert_eq!(uk.add(t, mins(30)), Ok(london("2026-12-04T12:00")));
    assert_eq!(
        uk.add(london("2026-12-04T16:00"), mins(60)),
        Ok(london("2026-12-04T17:00"))
    );
    assert_eq!(
        uk.add(london("2026-12-04T16:00"), mins(61)),
        Ok(london("2026-12-07T09:01"))
    );
    // Opening instants are open, closing instants are not.
    assert!(uk.is_open(london("2026-12-04T13:00")));
    assert!(!uk.is_open(london("2026-12-04T17:00")));
    // Zero time is the next opening (the SPEC: counting starts there when closed).
    assert_eq!(
        uk.add(london("2026-12-05T10:00"), mins(0)),
        Ok(london("2026-12-07T09:00"))
    );
    assert_eq!(uk.add(t, mins(0)), Ok(t));
    // Sub-minute instants are kept.
    let t = ts("2026-12-04T11:59:30Z");
    assert_eq!(uk.add(t, mins(1)), Ok(ts("2026-12-04T13:00:30Z")));
}

#[test]
fn a_business_day_ends_at_the_closing_time_of_the_next_open_day() {
    let uk = uk();
    // Monday before opening, during and after hours: the next open day is Tuesday.
    for t in ["2026-12-07T07:00", "2026-12-07T10:00", "2026-12-07T20:00"] {
        assert_eq!(
            uk.add(london(t), days(1)),
            Ok(london("2026-12-08T17:30")),
            "{t}"
        );
    }
    // Friday + 1 business day is Monday's closing; Saturday's too.
    assert_eq!(
        uk.add(london("2026-12-04T10:00"), days(1)),
        Ok(london("2026-12-07T17:30"))
    );
    assert_eq!(
        uk.add(london("2026-12-05T10:00"), days(1)),
        Ok(london("2026-12-07T17:30"))
    );
    // Thursday + 1 is Friday, which closes at 17:00.
    assert_eq!(
        uk.add(london("2026-12-03T10:00"), days(1)),
        Ok(london("2026-12-04T17:00"))
    );
    assert_eq!(
        uk.add(london("2026-12-03T10:00"), days(5)),
        Ok(london("2026-12-10T17:30"))
    );
}

#[test]
fn a_holiday_monday_and_a_short_christmas_eve() {
    let uk = uk();
    // Wed 23 Dec 16:30; Thu 24 is 09:00-12:00, Fri 25 and Mon 28 are holidays.
    let t = london("2026-12-23T16:30");
    // 1 h on Wednesday, 3 h on Christmas Eve, 4 h on Tuesday 29.
    assert_eq!(uk.add(t, mins(8 * 60)), Ok(london("2026-12-29T13:00")));
    assert_eq!(uk.between(t, london("2026-12-29T13:00")), 8 * HOUR);
    // Thu 24 (short), Tue 29, Wed 30.
    assert_eq!(uk.add(t, days(1)), Ok(london("2026-12-24T12:00")));
    assert_eq!(uk.add(t, days(3)), Ok(london("2026-12-30T17:30")));
    assert_eq!(
        uk.add(london("2026-12-24T11:00"), mins(120)),
        Ok(london("2026-12-29T10:00"))
    );
    assert_eq!(
        uk.add(london("2026-12-24T10:00"), days(1)),
        Ok(london("2026-12-29T17:30"))
    );
    assert!(!uk.is_open(london("2026-12-28T10:00")));
    assert_eq!(
        uk.next_open(london("2026-12-24T12:00")),
        Ok(london("2026-12-29T09:00"))
    );
    assert_eq!(
        uk.between(london("2026-12-24T00:00"), london("2026-12-29T00:00")),
        3 * HOUR
    );
}

#[test]
fn a_closed_exception_is_a_day_off() {
    let uk = uk();
    // Thu 31 Dec is closed; Fri 1 Jan 2027 is an ordinary Friday here.
    assert!(!uk.is_open(london("2026-12-31T10:00")));
    assert_eq!(
        uk.add(london("2026-12-30T17:00"), mins(60)),
        Ok(london("2027-01-01T09:30"))
    );
    assert_eq!(
        uk.add(london("2026-12-30T10:00"), days(1)),
        Ok(london("2027-01-01T17:00"))
    );
    assert_eq!(
        uk.between(london("2026-12-31T00:00"), london("2027-01-01T00:00")),
        SignedDuration::ZERO
    );
}

#[test]
fn office_hours_across_the_2026_london_clock_changes() {
    let uk = uk();
    // Fri 27 March 16:00 GMT + 4 h: 1 h on Friday, then Monday 30 March (BST) 09:00-12:00.
    assert_eq!(
        uk.add(ts("2026-03-27T16:00Z"), mins(240)),
        Ok(ts("2026-03-30T12:00+01:00"))
    );
    assert_eq!(
        uk.between(ts("2026-03-27T16:00Z"), ts("2026-03-30T12:00+01:00")),
        4 * HOUR
    );
    // Fri 23 October (BST) + 1 business day: Monday 26 October 17:30 GMT.
    assert_eq!(
        uk.add(ts("2026-10-23T10:00+01:00"), days(1)),
        Ok(ts("2026-10-26T17:30Z"))
    );
    // Friday 3 h + 4 h, Monday 8.5 h.
    assert_eq!(
        uk.between(ts("2026-10-23T09:00+01:00"), ts("2026-10-26T17:30Z")),
        SignedDuration::from_mins(15 * 60 + 30)
    );
}

#[test]
fn around_the_clock_days_are_23_and_25_hours_long_on_the_change_days() {
    let always = calendar(serde_json::json!({
        "id": "always", "timezone": "Europe/London",
        "hours": { "mon": "00:00-24:00", "tue": "00:00-24:00", "wed": "00:00-24:00",
                   "thu": "00:00-24:00", "fri": "00:00-24:00", "sat": "00:00-24:00", "sun": "00:00-24:00" }
    }));
    // Sunday 29 March 2026: 01:00 GMT becomes 02:00 BST.
    assert_eq!(
        always.between(ts("2026-03-29T00:00Z"), ts("2026-03-30T00:00+01:00")),
        23 * HOUR
    );
    // Sunday 25 October 2026: 02:00 BST becomes 01:00 GMT.
    assert_eq!(
        always.between(ts("2026-10-25T00:00+01:00"), ts("2026-10-26T00:00Z")),
        25 * HOUR
    );
    assert_eq!(
        always.add(ts("2026-03-29T00:30Z"), mins(60)),
        Ok(ts("2026-03-29T02:30+01:00"))
    );
    // Midnight to midnight are touching intervals: one business day is the next midnight.
    assert_eq!(
        always.add(ts("2026-10-24T12:00+01:00"), days(1)),
        Ok(ts("2026-10-26T00:00Z"))
    );
}

#[test]
fn hours_the_clock_skips_or_repeats() {
    let night = calendar(serde_json::json!({
        "id": "night", "timezone": "Europe/London",
        "hours": { "sat": "22:00-06:00", "sun": "06:00-06:30", "mon": "01:30-03:00" },
        "exceptions": { "2026-03-29": "01:30-03:00", "2026-10-25": "01:30-03:00" }
    }));
    // Saturday's night shift keeps running into Sunday (an exception day) only until
    // midnight; on ordinary Sundays it runs to 06:00.
    assert_eq!(
        night.between(ts("2026-03-21T22:00Z"), ts("2026-03-22T06:00Z")),
        8 * HOUR
    );
    assert_eq!(
        night.between(ts("2026-03-28T22:00Z"), ts("2026-03-29T12:00+01:00")),
        2 * HOUR + HOUR
    );
    // Spring: 01:30 is skipped, so the range opens at the jump (02:00 BST) and is 1 h long.
    assert!(!night.is_open(ts("2026-03-29T00:59Z")));
    assert_eq!(
        night.next_open(ts("2026-03-29T00:00Z")),
        Ok(ts("2026-03-29T02:00+01:00"))
    );
    assert_eq!(
        night.add(ts("2026-03-29T00:00Z"), mins(60)),
        Ok(ts("2026-03-29T03:00+01:00"))
    );
    // Autumn: the first 01:30 (BST) opens it; 03:00 GMT closes it: 2.5 h, both 01:30s open.
    assert_eq!(
        night.next_open(ts("2026-10-25T00:00+01:00")),
        Ok(ts("2026-10-25T01:30+01:00"))
    );
    assert!(night.is_open(ts("2026-10-25T01:30Z")));
    assert_eq!(
        night.between(ts("2026-10-25T00:00+01:00"), ts("2026-10-25T12:00Z")),
        SignedDuration::from_mins(150)
    );
    // An ordinary Saturday shift over the change: 7 h in March, 9 h in October.
    let shift = calendar(serde_json::json!({
        "id": "shift", "timezone": "Europe/London", "hours": { "sat": "22:00-06:00" }
    }));
    assert_eq!(
        shift.between(ts("2026-03-28T12:00Z"), ts("2026-03-29T12:00+01:00")),
        7 * HOUR
    );
    assert_eq!(
        shift.add(ts("2026-03-28T22:00Z"), mins(7 * 60)),
        Ok(ts("2026-03-29T06:00+01:00"))
    );
    assert_eq!(
        shift.between(ts("2026-10-24T12:00+01:00"), ts("2026-10-25T12:00Z")),
        9 * HOUR
    );
}

#[test]
fn overnight_shifts_belong_to_the_day_they_start_and_holidays_cut_them() {
    // Monday 5 January 2026; Thursday 8 is a holiday, Monday 12 has a longer shift.
    let night = calendar(serde_json::json!({
        "id": "night", "timezone": "Europe/London",
        "hours": { "mon": "22:00-06:00", "tue": "22:00-06:00", "wed": "22:00-06:00",
                   "thu": "22:00-06:00", "fri": "22:00-06:00" },
        "holidays": ["2026-01-08"],
        "exceptions": { "2026-01-12": "20:00-02:00" }
    }));
    // Tuesday 03:00 is in Monday's shift: the next business day is Tuesday's shift.
    assert!(night.is_open(london("2026-01-06T03:00")));
    assert_eq!(
        night.add(london("2026-01-06T03:00"), days(1)),
        Ok(london("2026-01-07T06:00"))
    );
    // Tuesday 07:00 is Tuesday: the next is Wednesday's shift, cut at the holiday's midnight.
    assert_eq!(
        night.add(london("2026-01-06T07:00"), days(1)),
        Ok(london("2026-01-08T00:00"))
    );
    assert_eq!(
        night.add(london("2026-01-06T07:00"), days(2)),
        Ok(london("2026-01-10T06:00"))
    );
    assert!(!night.is_open(london("2026-01-08T01:00")));
    assert_eq!(
        night.between(london("2026-01-07T22:00"), london("2026-01-09T22:00")),
        2 * HOUR
    );
    assert_eq!(
        night.add(london("2026-01-07T23:00"), mins(120)),
        Ok(london("2026-01-09T23:00"))
    );
    // The exception's shift runs into an ordinary Tuesday.
    assert_eq!(
        night.between(london("2026-01-12T00:00"), london("2026-01-13T12:00")),
        6 * HOUR
    );
}

#[test]
fn between_is_signed_and_additive() {
    let uk = uk();
    let (a, b, c) = (
        london("2026-12-04T11:00"),
        london("2026-12-07T10:00"),
        london("2026-12-24T11:00"),
    );
    // Friday 11:00-12:00 and 13:00-17:00, Monday 09:00-10:00.
    assert_eq!(uk.between(a, b), 6 * HOUR);
    assert_eq!(uk.between(b, a), -6 * HOUR);
    assert_eq!(uk.between(a, a), SignedDuration::ZERO);
    assert_eq!(uk.between(a, b) + uk.between(b, c), uk.between(a, c));
}

#[test]
fn far_and_impossible_answers_are_errors_not_long_walks() {
    let uk = uk();
    let t = london("2026-12-04T11:00");
    let beyond = Err(CalendarError::BeyondHorizon {
        calendar: "uk".into(),
        from: t,
    });
    assert_eq!(uk.add(t, days(u32::MAX)), beyond);
    assert_eq!(uk.add(t, mins(u32::MAX)), beyond);
    // 99 years of office hours fit; about 100 years of them do not.
    assert!(uk.add(t, days(99 * 250)).is_ok());
    assert_eq!(uk.add(t, days(100 * 262)), beyond);
    let end = ts("9999-12-30T12:00Z");
    assert_eq!(
        uk.add(end, days(3)),
        Err(CalendarError::OutOfRange {
            calendar: "uk".into()
        })
    );
    assert_eq!(
        uk.add_time(t, -HOUR).unwrap_err().to_string(),
        r#"calendar "uk": cannot add a negative business time (1h ago)"#
    );
    // A calendar that only ever opens on holidays' dates cannot be built.
    assert_eq!(
        config_error(
            serde_json::json!({ "id": "x", "timezone": "UTC", "exceptions": { "2026-12-24": "09:00-12:00" } })
        ),
        r#"calendar "x": hours: no day has open hours, so the calendar would never open"#
    );
}

#[test]
fn configuration_errors_name_the_calendar_and_the_key() {
    let base = || serde_json::json!({ "id": "uk", "timezone": "Europe/London", "hours": { "mon": "09:00-17:00" } });
    let with = |key: &str, value: serde_json::Value| {
        let mut config = base();
        config[key] = value;
        config_error(config)
    };
    assert_eq!(
        with("timezone", "Europe/Londn".into()),
        r#"calendar "uk": timezone: unknown time zone "Europe/Londn" (an IANA name such as "Europe/London")"#
    );
    assert_eq!(
        with("hours", serde_json::json!({ "fri": "13:00" })),
        r#"calendar "uk": hours.fri: "13:00" is not a range like "09:00-17:30""#
    );
    assert_eq!(
        with(
            "hours",
            serde_json::json!({ "fri": "09:00-12:00,11:00-17:00" })
        ),
        r#"calendar "uk": hours.fri: "09:00-12:00" and "11:00-17:00" overlap"#
    );
    assert_eq!(
        with(
            "hours",
            serde_json::json!({ "sun": "22:00-06:00", "mon": "05:00-12:00" })
        ),
        r#"calendar "uk": hours.sun: "22:00-06:00" runs past midnight into hours.mon "05:00-12:00""#
    );
    assert_eq!(
        with("holidays", serde_json::json!(["2026-12-25", "2026-02-30"])),
        r#"calendar "uk": holidays[1]: "2026-02-30" is not a date (YYYY-MM-DD)"#
    );
    assert_eq!(
        with("holidays", serde_json::json!(["2026-12-25", "2026-12-25"])),
        r#"calendar "uk": holidays[1]: 2026-12-25 is listed twice"#
    );
    assert_eq!(
        with(
            "exceptions",
            serde_json::json!({ "2026-12-24": "09:00-25:00" })
        ),
        r#"calendar "uk": exceptions.2026-12-24: "25:00" is not a time of day (HH:MM)"#
    );
    assert_eq!(
        with(
            "exceptions",
            serde_json::json!({ "24/12/2026": "09:00-12:00" })
        ),
        r#"calendar "uk": exceptions.24/12/2026: "24/12/2026" is not a date (YYYY-MM-DD)"#
    );
    let mut both = base();
    both["holidays"] = serde_json::json!(["2026-12-24"]);
    both["exceptions"] = serde_json::json!({ "2026-12-24": "closed" });
    assert_eq!(
        config_error(both),
        r#"calendar "uk": exceptions.2026-12-24: 2026-12-24 is also a holiday"#
    );
    // Sunday 27 December 2026's shift would run into Monday's hours.
    assert_eq!(
        with(
            "exceptions",
            serde_json::json!({ "2026-12-27": "20:00-10:00" })
        ),
        r#"calendar "uk": exceptions.2026-12-27: "20:00-10:00" runs past midnight into hours.mon "09:00-17:00""#
    );
    assert_eq!(with("id", " ".into()), r#"calendar " ": id: is empty"#);
}

#[test]
fn the_configuration_has_the_specs_keys_and_no_others() {
    let config: CalendarConfig = serde_json::from_value(serde_json::json!({
        "id": "uk", "timezone": "Europe/London",
        "hours": { "mon": "09:00-17:30", "fri": "09:00-12:00,13:00-17:00" },
        "holidays": ["2026-12-25"], "exceptions": { "2026-12-24": "09:00-12:00" }
    }))
    .unwrap();
    assert_eq!(config.hours.fri.as_deref(), Some("09:00-12:00,13:00-17:00"));
    let again: CalendarConfig =
        serde_json::from_value(serde_json::to_value(&config).unwrap()).unwrap();
    assert_eq!(again, config);
    let unknown = |v| {
        serde_json::from_value::<CalendarConfig>(v)
            .unwrap_err()
            .to_string()
    };
    assert!(
        unknown(serde_json::json!({ "id": "a", "timezone": "UTC", "zone": "UTC" }))
            .contains("unknown field `zone`")
    );
    assert!(unknown(
        serde_json::json!({ "id": "a", "timezone": "UTC", "hours": { "monday": "09:00-17:00" } })
    )
    .contains("unknown field `monday`"));
    let uk = BusinessCalendar::try_from(&config).unwrap();
    assert_eq!(
        (uk.id(), uk.time_zone().iana_name()),
        ("uk", Some("Europe/London"))
    );
}

#[test]
fn dates_worked_out_once_give_the_answers_of_a_fresh_calendar() {
    // One calendar answers for five years, past the end of the dates it keeps (three years
    // after the first asked for); each answer is checked against a calendar that has kept
    // nothing yet.
    let warm = uk();
    let start = london("2026-03-01T08:00");
    let step = SignedDuration::from_hours(53) + SignedDuration::from_mins(17);
    let mut t = start;
    let mut checked = 0;
    while t < london("2031-03-01T08:00") {
        let fresh = uk();
        for d in [mins(45), mins(600), days(1), days(3)] {
            assert_eq!(warm.add(t, d), fresh.add(t, d), "{d:?} after {t}");
        }
        let later = t + SignedDuration::from_hours(100);
        assert_eq!(warm.between(t, later), uk().between(t, later), "from {t}");
        assert_eq!(warm.is_open(t), uk().is_open(t), "at {t}");
        t += step;
        checked += 1;
    }
    assert!(checked > 800, "{checked} instants");
    // The dates before the first asked for are kept too, and a year before that is not.
    let early = london("2025-06-02T10:00");
    assert_eq!(warm.add(early, days(2)), uk().add(early, days(2)));
    let earlier = london("2024-06-03T10:00");
    assert_eq!(warm.add(earlier, days(2)), uk().add(earlier, days(2)));
}
