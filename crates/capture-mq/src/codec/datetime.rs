//! DateTime as the protocol writes it: `YYYY-MM-DDThh:mm:ss` in the capture point's time
//! zone (seed 001, "Data Types"); input with an explicit offset or `Z` is accepted too.

use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use worklane_domain::{DomainError, Timestamp};

/// Reads a DateTime value: an absolute instant when it carries an offset or `Z`, else a
/// wall-clock time in `tz`.
pub(crate) fn parse(attribute: &str, value: &str, tz: &TimeZone) -> Result<Timestamp, DomainError> {
    if let Ok(ts) = value.parse::<Timestamp>() {
        return Ok(ts);
    }
    let civil: DateTime = value.parse().map_err(|_| {
        DomainError::invalid(
            attribute,
            format!("{value:?} is not a DateTime (YYYY-MM-DDThh:mm:ss)"),
        )
    })?;
    civil
        .to_zoned(tz.clone())
        .map(|z| z.timestamp())
        .map_err(|e| DomainError::invalid(attribute, format!("{value:?} is out of range: {e}")))
}

/// Writes a DateTime in `tz`, to the second.
pub(crate) fn format(ts: Timestamp, tz: &TimeZone) -> String {
    ts.to_zoned(tz.clone())
        .strftime("%Y-%m-%dT%H:%M:%S")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_local_and_offset_forms_and_writes_local() {
        let paris = TimeZone::get("Europe/Paris").unwrap();
        let t = parse("dueDateTime", "2007-08-26T21:32:00", &paris).unwrap();
        assert_eq!(t.to_string(), "2007-08-26T19:32:00Z");
        assert_eq!(parse("x", "2007-08-26T19:32:00Z", &paris).unwrap(), t);
        assert_eq!(parse("x", "2007-08-26T20:32:00+01:00", &paris).unwrap(), t);
        assert_eq!(format(t, &paris), "2007-08-26T21:32:00");
        assert_eq!(format(t, &TimeZone::UTC), "2007-08-26T19:32:00");
        let e = parse("dueDateTime", "tomorrow", &paris).unwrap_err();
        assert_eq!(e.parameters, vec!["dueDateTime".to_owned()]);
    }
}
