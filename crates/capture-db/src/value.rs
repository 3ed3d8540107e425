//! Values read from and bound to a source database: the few kinds every driver agrees
//! on. Timestamps without a zone (a `TIMESTAMP` or `DATETIME` column, text like
//! `2026-01-02 03:04:05`) are read and written in the capture point's time zone.

use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use jiff::Timestamp;
use std::fmt;
use std::str::FromStr;
use worklane_domain::DomainError;

/// One cell of a row, or one parameter value.
#[derive(Clone, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    Float(f64),
    Text(String),
    Timestamp(Timestamp),
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Null => f.write_str("NULL"),
            Self::Int(v) => write!(f, "{v}"),
            Self::Float(v) => write!(f, "{v}"),
            Self::Text(v) => write!(f, "{v:?}"),
            Self::Timestamp(v) => write!(f, "{v}"),
        }
    }
}

impl From<Option<String>> for Value {
    fn from(v: Option<String>) -> Self {
        v.map_or(Value::Null, Value::Text)
    }
}

impl From<Option<&str>> for Value {
    fn from(v: Option<&str>) -> Self {
        v.map_or(Value::Null, |s| Value::Text(s.to_owned()))
    }
}

impl From<Option<Timestamp>> for Value {
    fn from(v: Option<Timestamp>) -> Self {
        v.map_or(Value::Null, Value::Timestamp)
    }
}

impl From<Option<i64>> for Value {
    fn from(v: Option<i64>) -> Self {
        v.map_or(Value::Null, Value::Int)
    }
}

impl Value {
    /// True for SQL NULL.
    pub fn is_null(&self) -> bool {
        matches!(self, Self::Null)
    }

    /// The value as a task's text attribute (custom data, ids): timestamps in RFC 3339.
    pub fn to_attribute_text(&self) -> Option<String> {
        match self {
            Self::Null => None,
            Self::Int(v) => Some(v.to_string()),
            Self::Float(v) => Some(v.to_string()),
            Self::Text(v) => Some(v.clone()),
            Self::Timestamp(v) => Some(v.to_string()),
        }
    }

    /// The value as a task's Integer attribute, naming `attribute` when it is not one.
    pub fn to_int(&self, attribute: &str) -> Result<Option<i64>, DomainError> {
        match self {
            Self::Null => Ok(None),
            Self::Int(v) => Ok(Some(*v)),
            Self::Float(v) if v.fract() == 0.0 && v.abs() < 9.0e15 => Ok(Some(*v as i64)),
            Self::Text(s) => parse_int(s.trim())
                .map(Some)
                .ok_or_else(|| DomainError::invalid(attribute, format!("{s:?} is not an integer"))),
            other => Err(DomainError::invalid(
                attribute,
                format!("{other:?} is not an integer"),
            )),
        }
    }

    /// The value as a task's timestamp attribute; zone-less text is read in `tz`.
    pub fn to_timestamp(
        &self,
        attribute: &str,
        tz: &TimeZone,
    ) -> Result<Option<Timestamp>, DomainError> {
        match self {
            Self::Null => Ok(None),
            Self::Timestamp(t) => Ok(Some(*t)),
            Self::Text(s) => parse_timestamp(s, tz).map(Some).ok_or_else(|| {
                DomainError::invalid(attribute, format!("{s:?} is not a date and time"))
            }),
            other => Err(DomainError::invalid(
                attribute,
                format!("{other:?} is not a date and time"),
            )),
        }
    }
}

/// An integer from text, accepting an integral decimal such as `5.00` (NUMERIC columns).
fn parse_int(s: &str) -> Option<i64> {
    if let Ok(v) = s.parse::<i64>() {
        return Some(v);
    }
    let (whole, frac) = s.split_once('.')?;
    if frac.chars().all(|c| c == '0') {
        whole.parse().ok()
    } else {
        None
    }
}

/// Reads RFC 3339 (with offset or `Z`), or a civil date-time / date in `tz`
/// (`2026-01-02 03:04:05`, `2026-01-02T03:04:05.123`, `2026-01-02`).
pub fn parse_timestamp(s: &str, tz: &TimeZone) -> Option<Timestamp> {
    let s = s.trim();
    if let Ok(t) = Timestamp::from_str(s) {
        return Some(t);
    }
    if let Ok(dt) = DateTime::from_str(s) {
        return tz.to_timestamp(dt).ok();
    }
    if let Ok(d) = jiff::civil::Date::from_str(s) {
        return tz
            .to_timestamp(d.to_datetime(jiff::civil::Time::midnight()))
            .ok();
    }
    None
}

/// A timestamp as zone-less text in `tz`, the way SQLite's date functions write it:
/// `2026-01-02 03:04:05` (with `.ffffff` when there are fractions).
pub fn civil_text(t: Timestamp, tz: &TimeZone) -> String {
    let dt = t.to_zoned(tz.clone()).datetime();
    if dt.subsec_nanosecond() == 0 {
        dt.strftime("%Y-%m-%d %H:%M:%S").to_string()
    } else {
        dt.strftime("%Y-%m-%d %H:%M:%S%.6f").to_string()
    }
}

/// A timestamp as a driver's zone-less date-time in `tz`.
pub fn to_naive(t: Timestamp, tz: &TimeZone) -> chrono::NaiveDateTime {
    let dt = t.to_zoned(tz.clone()).datetime();
    // The civil time, taken as if it were UTC, gives the naive value's micro count.
    let as_utc = dt
        .to_zoned(TimeZone::UTC)
        .map(|z| z.timestamp().as_microsecond())
        .unwrap_or(0);
    chrono::DateTime::from_timestamp_micros(as_utc)
        .unwrap_or_default()
        .naive_utc()
}

/// A driver's zone-less date-time, read in `tz`.
pub fn from_naive(n: chrono::NaiveDateTime, tz: &TimeZone) -> Option<Timestamp> {
    let civil = Timestamp::from_microsecond(n.and_utc().timestamp_micros())
        .ok()?
        .to_zoned(TimeZone::UTC)
        .datetime();
    tz.to_timestamp(civil).ok()
}

/// A driver's zone-aware instant.
pub fn from_utc(d: chrono::DateTime<chrono::Utc>) -> Option<Timestamp> {
    Timestamp::from_microsecond(d.timestamp_micros()).ok()
}

/// A timestamp as a driver's zone-aware instant.
pub fn to_utc(t: Timestamp) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_micros(t.as_microsecond()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip_through_a_zone() {
        let tz = TimeZone::get("Europe/Berlin").expect("tzdb");
        let t = parse_timestamp("2026-07-01 12:00:00", &tz).expect("parses");
        assert_eq!(t.to_string(), "2026-07-01T10:00:00Z");
        assert_eq!(civil_text(t, &tz), "2026-07-01 12:00:00");
        assert_eq!(from_naive(to_naive(t, &tz), &tz), Some(t));
        assert_eq!(
            parse_timestamp("2026-07-01T12:00:00Z", &tz)
                .map(|t| t.to_string())
                .as_deref(),
            Some("2026-07-01T12:00:00Z")
        );
        assert!(parse_timestamp("2026-07-01", &tz).is_some());
        assert!(parse_timestamp("yesterday", &tz).is_none());
        assert_eq!(from_utc(to_utc(t)), Some(t));
    }

    #[test]
    fn integers_come_from_numbers_and_text() {
        assert_eq!(
            Value::Text(" 5 ".into()).to_int("priority").expect("int"),
            Some(5)
        );
        assert_eq!(
            Value::Text("5.00".into()).to_int("priority").expect("int"),
            Some(5)
        );
        assert_eq!(Value::Float(3.0).to_int("priority").expect("int"), Some(3));
        let e = Value::Text("high".into())
            .to_int("priority")
            .expect_err("not an int");
        assert_eq!(e.parameters, ["priority"]);
        assert_eq!(Value::Null.to_int("priority").expect("null"), None);
    }
}
