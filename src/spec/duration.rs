//! `maxAge` durations, parsed as the reference parses them (docs/reference.md#maxage-durations).
//!
//! The reference hands `maxAge` to parsedatetime with `datetime.min` (0001-01-01 00:00, year 1 is not
//! leap) as the base and takes the distance from that base. Terms apply one after the other, in the
//! order written, so this module does the same:
//!
//! * seconds, minutes, hours, days and weeks add a fixed span (fractions allowed: `0.5 days` = 12 h);
//! * months and years move along the calendar as parsedatetime's `inc` does: a year is twelve months,
//!   the day of month is clamped to the target month's length, and a fraction of a month is that
//!   fraction of the target month's days. From 0001-01-01, `1 month` = 31 days, `2 months` = 59 days,
//!   `1 year` = 365 days, and `4 years` = 1461 days because year 4 is leap. These results are
//!   calendar-dependent, so [`MaxAge::approximate`] flags them (the reference logs a warning too).
//!
//! Where the reference silently reads unparseable text (`"banana"`) as 0 and then drops the maxAge,
//! this module returns a [`DurationError`] saying what it did not understand; the parameter-file
//! validator reports that as a warning. A zero duration is an error for the same reason.

use std::time::Duration;

use chrono::{Datelike, NaiveDate, NaiveDateTime, TimeDelta};

/// A parsed `maxAge`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaxAge {
    /// The distance from 0001-01-01 00:00 to the date the text names, as the reference computes it.
    pub duration: Duration,
    /// Months or years were used, so the length depends on the calendar (the reference warns too).
    pub approximate: bool,
}

/// Why a `maxAge` text has no usable duration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("maxAge {text:?} is empty; write a number and a unit, e.g. \"1 day 2 hours\"")]
    Empty { text: String },
    #[error(
        "maxAge {text:?}: `{token}` is not understood; write numbers and units (seconds, minutes, hours, \
         days, weeks, months, years), e.g. \"1 day 2 hours\""
    )]
    NotUnderstood { text: String, token: String },
    #[error("maxAge {text:?}: the number `{number}` has no unit after it")]
    MissingUnit { text: String, number: String },
    #[error("maxAge {text:?}: the unit `{unit}` has no number before it")]
    MissingNumber { text: String, unit: String },
    #[error("maxAge {text:?} is zero; the reference would ignore it")]
    Zero { text: String },
    #[error("maxAge {text:?} reaches past the year 9999, which the reference cannot represent")]
    TooLarge { text: String },
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Unit {
    Seconds,
    Minutes,
    Hours,
    Days,
    Weeks,
    Months,
    Years,
}

impl Unit {
    fn from_word(word: &str) -> Option<Unit> {
        Some(match word {
            "second" | "seconds" | "sec" | "secs" => Unit::Seconds,
            "minute" | "minutes" | "min" | "mins" => Unit::Minutes,
            "hour" | "hours" | "hr" | "hrs" => Unit::Hours,
            "day" | "days" => Unit::Days,
            "week" | "weeks" | "wk" | "wks" => Unit::Weeks,
            "month" | "months" => Unit::Months,
            "year" | "years" | "yr" | "yrs" => Unit::Years,
            _ => return None,
        })
    }

    /// Microseconds in one unit, for the fixed-length units.
    fn micros(self) -> Option<f64> {
        const SECOND: f64 = 1e6;
        match self {
            Unit::Seconds => Some(SECOND),
            Unit::Minutes => Some(60.0 * SECOND),
            Unit::Hours => Some(3_600.0 * SECOND),
            Unit::Days => Some(86_400.0 * SECOND),
            Unit::Weeks => Some(604_800.0 * SECOND),
            Unit::Months | Unit::Years => None,
        }
    }
}

/// Number words: zero to twenty, thirty, forty, fifty, sixty, ninety, and `a`/`an` for one.
fn number_word(word: &str) -> Option<f64> {
    const WORDS: [&str; 21] = [
        "zero",
        "one",
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
        "ten",
        "eleven",
        "twelve",
        "thirteen",
        "fourteen",
        "fifteen",
        "sixteen",
        "seventeen",
        "eighteen",
        "nineteen",
        "twenty",
    ];
    if let Some(n) = WORDS.iter().position(|w| *w == word) {
        return Some(n as f64);
    }
    Some(match word {
        "a" | "an" => 1.0,
        "thirty" => 30.0,
        "forty" => 40.0,
        "fifty" => 50.0,
        "sixty" => 60.0,
        "ninety" => 90.0,
        _ => return None,
    })
}

#[derive(Debug, PartialEq)]
enum Token<'a> {
    Number(f64, &'a str),
    Unit(Unit, &'a str),
}

/// Splits the (lower-cased) text into numbers and units; whitespace, commas and `and` separate terms.
fn tokenize<'a>(lower: &'a str, text: &str) -> Result<Vec<Token<'a>>, DurationError> {
    let mut tokens = Vec::new();
    let bytes = lower.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let rest = &lower[i..];
        let c = rest.chars().next().unwrap_or(' ');
        let starts_number =
            c.is_ascii_digit() || (c == '.' && bytes.get(i + 1).is_some_and(u8::is_ascii_digit));
        let len = if c.is_whitespace() || c == ',' {
            c.len_utf8()
        } else if starts_number {
            let integer = rest.bytes().take_while(u8::is_ascii_digit).count();
            let fraction = match rest.as_bytes().get(integer) {
                Some(b'.') => 1 + rest[integer + 1..].bytes().take_while(u8::is_ascii_digit).count(),
                _ => 0,
            };
            let number = &rest[..integer + fraction];
            // `1.` is read as 1 (Python's float accepts it); digits and one dot always parse.
            let value = number.parse::<f64>().unwrap_or(0.0);
            tokens.push(Token::Number(value, number));
            number.len()
        } else if c.is_ascii_alphabetic() {
            let word = &rest[..rest.bytes().take_while(u8::is_ascii_alphabetic).count()];
            if let Some(unit) = Unit::from_word(word) {
                tokens.push(Token::Unit(unit, word));
            } else if let Some(value) = number_word(word) {
                tokens.push(Token::Number(value, word));
            } else if word != "and" {
                return Err(not_understood(text, word));
            }
            word.len()
        } else {
            return Err(not_understood(text, &rest[..c.len_utf8()]));
        };
        i += len;
    }
    Ok(tokens)
}

fn not_understood(text: &str, token: &str) -> DurationError {
    DurationError::NotUnderstood {
        text: text.to_string(),
        token: token.to_string(),
    }
}

/// Parses a `maxAge` such as `"1 day 2 hours"`, `"two days"`, `"0.5 days"` or `"1 month"`.
///
/// # Errors
/// [`DurationError`] when the text is empty, contains something that is not a number, a unit or a
/// separator (`,` or `and`), pairs a number without a unit (or the reverse), adds up to zero, or goes
/// past the year 9999 from year 1.
pub fn parse_max_age(text: &str) -> Result<MaxAge, DurationError> {
    let lower = text.to_lowercase();
    let tokens = tokenize(&lower, text)?;
    if tokens.is_empty() {
        return Err(DurationError::Empty {
            text: text.to_string(),
        });
    }
    let too_large = || DurationError::TooLarge {
        text: text.to_string(),
    };
    let base = NaiveDate::from_ymd_opt(1, 1, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .ok_or_else(too_large)?;
    let mut at = base;
    let mut approximate = false;
    let mut tokens = tokens.into_iter();
    while let Some(token) = tokens.next() {
        let (quantity, number) = match token {
            Token::Number(quantity, number) => (quantity, number),
            Token::Unit(_, unit) => {
                return Err(DurationError::MissingNumber {
                    text: text.to_string(),
                    unit: unit.to_string(),
                });
            }
        };
        let unit = match tokens.next() {
            Some(Token::Unit(unit, _)) => unit,
            _ => {
                return Err(DurationError::MissingUnit {
                    text: text.to_string(),
                    number: number.to_string(),
                });
            }
        };
        at = match unit.micros() {
            Some(micros) => add_micros(at, quantity * micros),
            None => {
                approximate = true;
                let months = if unit == Unit::Years {
                    quantity * 12.0
                } else {
                    quantity
                };
                add_months(at, months)
            }
        }
        .ok_or_else(too_large)?;
    }
    let micros = (at - base).num_microseconds().ok_or_else(too_large)?;
    if micros <= 0 {
        return Err(DurationError::Zero {
            text: text.to_string(),
        });
    }
    Ok(MaxAge {
        duration: Duration::from_micros(micros.unsigned_abs()),
        approximate,
    })
}

/// `at + micros`, rounded to the microsecond as Python's `timedelta` does; `None` past year 9999.
fn add_micros(at: NaiveDateTime, micros: f64) -> Option<NaiveDateTime> {
    let micros = micros.round();
    // Beyond ±2^62 µs (146 000 years) the result is out of range anyway; this keeps the cast exact.
    if !micros.is_finite() || micros.abs() > 2f64.powi(62) {
        return None;
    }
    at.checked_add_signed(TimeDelta::microseconds(micros as i64))
        .filter(|t| t.year() <= 9999)
}

/// parsedatetime's `Calendar.inc(source, month=months)`: whole months move along the calendar with
/// the day clamped to the target month; the fraction adds that share of the target month's days.
fn add_months(at: NaiveDateTime, months: f64) -> Option<NaiveDateTime> {
    if months == 0.0 {
        return Some(at);
    }
    // Python's int() truncates toward zero, as `as` does; quantities are never negative here.
    if !months.is_finite() || months > 12.0 * 10_000.0 {
        return None;
    }
    let whole = months.trunc() as i32;
    let fraction = months - months.trunc();
    let (mut year, mut month) = (at.year() + whole / 12, at.month() as i32 + whole % 12);
    if month > 12 {
        year += 1;
        month -= 12;
    }
    if year > 9999 {
        return None;
    }
    let month = month as u32;
    let max_day = u32::from(NaiveDate::from_ymd_opt(year, month, 1)?.num_days_in_month());
    let moved = NaiveDate::from_ymd_opt(year, month, at.day().min(max_day))?.and_time(at.time());
    add_micros(moved, fraction * f64::from(max_day) * 86_400e6)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn seconds(text: &str) -> f64 {
        parse_max_age(text)
            .unwrap_or_else(|e| panic!("{text:?} should parse: {e}"))
            .duration
            .as_secs_f64()
    }

    #[test]
    fn reference_table() {
        for (text, expected) in [
            ("1 second", 1.0),
            ("1 day", 86_400.0),
            ("two days", 172_800.0),
            ("0.5 days", 43_200.0),
            ("1 week", 604_800.0),
            ("1 month", 2_678_400.0),
            ("1 year", 31_536_000.0),
            ("365 days", 31_536_000.0),
            ("12 hours", 43_200.0),
            ("90 minutes", 5_400.0),
            ("1 day 2 hours", 93_600.0),
        ] {
            assert_eq!(seconds(text), expected, "{text}");
        }
    }

    #[test]
    fn months_and_years_follow_the_calendar_from_year_one() {
        let day = 86_400.0;
        assert_eq!(seconds("2 months"), 59.0 * day);
        assert_eq!(seconds("12 months"), 365.0 * day);
        assert_eq!(seconds("3 years"), 3.0 * 365.0 * day);
        assert_eq!(seconds("4 years"), 1_461.0 * day, "year 4 is leap");
        assert_eq!(seconds("0.5 months"), 15.5 * day, "half of January");
        assert_eq!(
            seconds("1.5 months"),
            31.0 * day + 14.0 * day,
            "January, then half of February"
        );
        // Terms apply in order; the day clamps to the target month: Jan 31 + 1 month = Feb 28.
        assert_eq!(seconds("30 days 1 month"), 58.0 * day);
        assert_eq!(seconds("1 month 30 days"), 61.0 * day);
        assert!(parse_max_age("1 month").expect("valid").approximate);
        assert!(parse_max_age("2 days 1 year").expect("valid").approximate);
        assert!(!parse_max_age("365 days").expect("valid").approximate);
    }

    #[test]
    fn words_abbreviations_and_separators() {
        for (text, expected) in [
            ("a day", 86_400.0),
            ("an hour", 3_600.0),
            ("twenty minutes", 1_200.0),
            ("ninety secs", 90.0),
            ("sixty mins", 3_600.0),
            ("thirty sec", 30.0),
            ("forty hrs", 144_000.0),
            ("fifty hr", 180_000.0),
            ("one min", 60.0),
            ("2 wks", 1_209_600.0),
            ("1 yr", 31_536_000.0),
            ("1 DAY", 86_400.0),
            ("90minutes", 5_400.0),
            (".5 hours", 1_800.0),
            ("1 day and 2 hours", 93_600.0),
            ("1 day, 2 hours", 93_600.0),
            ("1 day, 2 hours and 30 minutes", 95_400.0),
            ("  1   day  ", 86_400.0),
            ("0.25 seconds", 0.25),
        ] {
            assert_eq!(seconds(text), expected, "{text}");
        }
    }

    #[test]
    fn text_the_reference_cannot_parse_is_an_error_saying_what() {
        assert_eq!(
            parse_max_age("banana"),
            Err(DurationError::NotUnderstood {
                text: "banana".into(),
                token: "banana".into()
            })
        );
        assert_eq!(
            parse_max_age("1 fortnight"),
            Err(DurationError::NotUnderstood {
                text: "1 fortnight".into(),
                token: "fortnight".into()
            })
        );
        assert_eq!(
            parse_max_age("-1 day"),
            Err(DurationError::NotUnderstood {
                text: "-1 day".into(),
                token: "-".into()
            })
        );
        assert!(matches!(parse_max_age(""), Err(DurationError::Empty { .. })));
        assert!(matches!(
            parse_max_age(" , and "),
            Err(DurationError::Empty { .. })
        ));
        assert_eq!(
            parse_max_age("5"),
            Err(DurationError::MissingUnit {
                text: "5".into(),
                number: "5".into()
            })
        );
        assert!(matches!(
            parse_max_age("1 2 days"),
            Err(DurationError::MissingUnit { .. })
        ));
        assert_eq!(
            parse_max_age("days"),
            Err(DurationError::MissingNumber {
                text: "days".into(),
                unit: "days".into()
            })
        );
        assert!(matches!(parse_max_age("0 days"), Err(DurationError::Zero { .. })));
        assert!(matches!(
            parse_max_age("zero seconds"),
            Err(DurationError::Zero { .. })
        ));
        assert!(matches!(
            parse_max_age("10000 years"),
            Err(DurationError::TooLarge { .. })
        ));
        assert!(matches!(
            parse_max_age("99999999999999999999999999 days"),
            Err(DurationError::TooLarge { .. })
        ));
        let message = parse_max_age("banana").expect_err("invalid").to_string();
        assert!(message.contains("`banana` is not understood"), "{message}");
    }

    proptest! {
        #[test]
        fn parse_never_panics(text in "\\PC{0,40}") {
            let _ = parse_max_age(&text);
        }

        #[test]
        fn parse_never_panics_on_duration_token_soup(
            tokens in prop::collection::vec(
                prop::sample::select(vec![
                    "1", "0", "0.5", ".5", "1.", "99999999999999", "two", "a", "and", ",", " ", "day",
                    "days", "month", "months", "year", "years", "sec", "hrs", "week", "x", "-",
                ]),
                0..10,
            )
        ) {
            let _ = parse_max_age(&tokens.join(" "));
            let _ = parse_max_age(&tokens.concat());
        }

        #[test]
        fn fixed_units_add_up(
            a in 1u32..10_000, b in 1u32..10_000,
            ua in 0usize..5, ub in 0usize..5,
        ) {
            const UNITS: [(&str, u64); 5] =
                [("seconds", 1), ("minutes", 60), ("hours", 3_600), ("days", 86_400), ("weeks", 604_800)];
            let (ua, ub) = (UNITS[ua], UNITS[ub]);
            let parsed = parse_max_age(&format!("{a} {} and {b} {}", ua.0, ub.0)).expect("valid");
            prop_assert_eq!(
                parsed.duration,
                Duration::from_secs(u64::from(a) * ua.1 + u64::from(b) * ub.1)
            );
            prop_assert!(!parsed.approximate);
        }
    }
}
