//! Business durations as the SPEC writes them in `due`: "N business minutes|hours|days".

use std::fmt;
use std::num::NonZeroU32;
use std::str::FromStr;

/// An amount on a business calendar: open time, or open days.
///
/// Parses from and displays as `"90 business minutes"`, `"4 business hours"`,
/// `"3 business days"` (the singular `"1 business day"` too). Hours are kept as minutes, so
/// `"60 business minutes"` displays as `"1 business hour"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BusinessDuration {
    /// Open time, in minutes; 0 means "at the next opening".
    Minutes(u32),
    /// Open days: ends at the closing time of the N-th open day after today.
    Days(NonZeroU32),
}

impl BusinessDuration {
    /// `n` business hours, or `None` when that many minutes do not fit in a `u32`.
    pub fn hours(n: u32) -> Option<Self> {
        n.checked_mul(60).map(Self::Minutes)
    }
}

/// Text that is not a business duration, with what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?}: {problem}")]
pub struct BusinessDurationError {
    /// The text as given.
    pub text: String,
    /// What is wrong with it.
    pub problem: String,
}

impl FromStr for BusinessDuration {
    type Err = BusinessDurationError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let fail = |problem: String| BusinessDurationError {
            text: text.to_string(),
            problem,
        };
        let words: Vec<&str> = text.split_whitespace().collect();
        let [number, business, unit] = words[..] else {
            return Err(fail(
                "expected \"N business minutes\", \"N business hours\" or \"N business days\""
                    .into(),
            ));
        };
        if !business.eq_ignore_ascii_case("business") {
            return Err(fail(format!(
                "expected \"business\" after the number, not {business:?}"
            )));
        }
        if !number.bytes().all(|b| b.is_ascii_digit()) {
            return Err(fail(format!("{number:?} is not a whole number")));
        }
        let n: u32 = number
            .parse()
            .map_err(|_| fail(format!("{number} is too large")))?;
        match unit.to_ascii_lowercase().as_str() {
            "minute" | "minutes" => Ok(Self::Minutes(n)),
            "hour" | "hours" => Self::hours(n).ok_or_else(|| fail(format!("{n} hours is too large"))),
            "day" | "days" => NonZeroU32::new(n).map(Self::Days).ok_or_else(|| {
                fail("the number of days must be at least 1 (1 business day ends at the closing time of the next open day)".into())
            }),
            _ => Err(fail(format!("unknown unit {unit:?} (minutes, hours or days)"))),
        }
    }
}

impl fmt::Display for BusinessDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (n, unit) = match *self {
            Self::Minutes(m) if m > 0 && m % 60 == 0 => (m / 60, "hour"),
            Self::Minutes(m) => (m, "minute"),
            Self::Days(d) => (d.get(), "day"),
        };
        let plural = if n == 1 { "" } else { "s" };
        write!(f, "{n} business {unit}{plural}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<BusinessDuration, String> {
        s.parse::<BusinessDuration>().map_err(|e| e.to_string())
    }

    #[test]
    fn the_specs_forms_parse_and_display() {
        let days = |n| BusinessDuration::Days(NonZeroU32::new(n).unwrap());
        assert_eq!(parse("3 business days"), Ok(days(3)));
        assert_eq!(parse("1 business day"), Ok(days(1)));
        assert_eq!(
            parse("90 business minutes"),
            Ok(BusinessDuration::Minutes(90))
        );
        assert_eq!(
            parse(" 4  Business HOURS "),
            Ok(BusinessDuration::Minutes(240))
        );
        assert_eq!(
            parse("0 business minutes"),
            Ok(BusinessDuration::Minutes(0))
        );
        for (value, text) in [
            (days(3), "3 business days"),
            (days(1), "1 business day"),
            (BusinessDuration::Minutes(90), "90 business minutes"),
            (BusinessDuration::Minutes(240), "4 business hours"),
            (BusinessDuration::Minutes(60), "1 business hour"),
            (BusinessDuration::Minutes(1), "1 business minute"),
            (BusinessDuration::Minutes(0), "0 business minutes"),
        ] {
            assert_eq!(value.to_string(), text);
            assert_eq!(parse(text), Ok(value));
        }
    }

    #[test]
    fn mistakes_are_explained() {
        assert_eq!(
            parse("3 days"),
            Err(r#""3 days": expected "N business minutes", "N business hours" or "N business days""#.into())
        );
        assert_eq!(
            parse("3 working days"),
            Err(r#""3 working days": expected "business" after the number, not "working""#.into())
        );
        assert_eq!(
            parse("three business days"),
            Err(r#""three business days": "three" is not a whole number"#.into())
        );
        assert_eq!(
            parse("-1 business days"),
            Err(r#""-1 business days": "-1" is not a whole number"#.into())
        );
        assert_eq!(
            parse("1.5 business hours"),
            Err(r#""1.5 business hours": "1.5" is not a whole number"#.into())
        );
        assert_eq!(
            parse("3 business weeks"),
            Err(r#""3 business weeks": unknown unit "weeks" (minutes, hours or days)"#.into())
        );
        assert_eq!(
            parse("99999999999 business days"),
            Err(r#""99999999999 business days": 99999999999 is too large"#.into())
        );
        assert_eq!(
            parse("99999999 business hours"),
            Err(r#""99999999 business hours": 99999999 hours is too large"#.into())
        );
        assert!(parse("0 business days")
            .unwrap_err()
            .contains("must be at least 1"));
        assert!(parse("").is_err());
    }
}
