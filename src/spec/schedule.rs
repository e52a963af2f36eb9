//! Schedule expressions: EventBridge `cron(...)`, `rate(...)` and the literal `delete`; next fire times.
//!
//! The semantics are AWS EventBridge's, which the reference's Quartz Lambda follows
//! (docs/reference.md#schedule-expressions):
//!
//! * `cron(minutes hours day-of-month month day-of-week year)`: exactly six fields, UTC, minute precision
//!   (a cron fires at second 0). Day-of-week counts 1-7 = SUN-SAT. Exactly one of day-of-month and
//!   day-of-week is `?`. `L`, `LW`, `15W` in day-of-month; `L`, `6L`, `6#3` in day-of-week. Those special
//!   forms stand alone in their field, as Quartz requires (it rejects them in lists and ranges).
//! * `rate(N unit)`: `minute(s)`, `hour(s)` or `day(s)`, singular exactly when N = 1. The reference
//!   rejects `rate()`; accepting it is one of our documented improvements.
//! * `delete`: the reference's way to remove a schedule that exists.
//!
//! Where the reference's Python validator and Quartz disagree, Quartz decides, because Quartz is what
//! ran the schedule: day-of-week `0` passed the Python check and then never fired (reference bug,
//! docs/reference.md#schedule-expressions), so it is an error here.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, Timelike, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The first and last years a cron may name (EventBridge's range).
const FIRST_YEAR: i32 = 1970;
const LAST_YEAR: i32 = 2199;

/// A parsed schedule expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Schedule {
    Cron(Cron),
    Rate(Rate),
    /// The literal `delete`: remove the schedule that exists under this key.
    Delete,
}

/// Why a schedule expression was rejected: every problem found, each naming its field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid schedule expression {expression:?}: {}", .problems.join("; "))]
pub struct ScheduleError {
    /// The expression as given.
    pub expression: String,
    /// One sentence per problem, prefixed with the field it concerns (`day-of-week: ...`).
    pub problems: Vec<String>,
}

impl Schedule {
    /// Parses an EventBridge schedule expression or `delete`.
    ///
    /// Whitespace around the whole expression is ignored; inside `cron(...)`, fields are separated by
    /// any run of spaces.
    ///
    /// # Errors
    /// [`ScheduleError`] listing every problem of the expression (a cron with three bad fields reports
    /// all three).
    pub fn parse(s: &str) -> Result<Schedule, ScheduleError> {
        let text = s.trim();
        let reject = |problems: Vec<String>| ScheduleError {
            expression: s.to_string(),
            problems,
        };
        if text == "delete" {
            return Ok(Schedule::Delete);
        }
        if let Some(rest) = text.strip_prefix("cron(") {
            let inner = rest
                .strip_suffix(')')
                .ok_or_else(|| reject(vec!["cron: missing the closing `)`".to_string()]))?;
            return Cron::parse_fields(inner).map(Schedule::Cron).map_err(reject);
        }
        if let Some(rest) = text.strip_prefix("rate(") {
            let inner = rest
                .strip_suffix(')')
                .ok_or_else(|| reject(vec!["rate: missing the closing `)`".to_string()]))?;
            return Rate::parse_inner(inner).map(Schedule::Rate).map_err(reject);
        }
        Err(reject(vec![
            "use cron(minutes hours day-of-month month day-of-week year), rate(value unit), \
             or \"delete\" to remove a schedule that already exists"
                .to_string(),
        ]))
    }

    /// The next fire strictly after `after`.
    ///
    /// Cron ignores `anchor`. Rate returns the smallest `anchor + k·interval` (k ≥ 1) that is later
    /// than `after`, so a rate schedule keeps its phase across restarts. Delete never fires: `None`.
    /// `None` also when no fire is left (a cron whose years are past, or a rate beyond chrono's range).
    pub fn next_fire(&self, after: DateTime<Utc>, anchor: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Schedule::Cron(cron) => cron.next_after(after),
            Schedule::Rate(rate) => rate.next_after(after, anchor),
            Schedule::Delete => None,
        }
    }
}

impl FromStr for Schedule {
    type Err = ScheduleError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Schedule::parse(s)
    }
}

impl fmt::Display for Schedule {
    /// Canonical text that parses back to an equal value.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Schedule::Cron(cron) => cron.fmt(f),
            Schedule::Rate(rate) => rate.fmt(f),
            Schedule::Delete => f.write_str("delete"),
        }
    }
}

impl Serialize for Schedule {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Schedule {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Schedule::parse(&text).map_err(serde::de::Error::custom)
    }
}

// ---------------------------------------------------------------------------------------------------
// cron
// ---------------------------------------------------------------------------------------------------

/// A `cron(...)` expression, compiled to value sets.
///
/// Equality compares what the expression fires on, not its spelling: `cron(0 0 ? * MON *)` equals
/// `cron(0 0 ? * 2 *)`.
#[derive(Debug, Clone)]
pub struct Cron {
    /// The six fields, upper-cased and joined by single spaces: what `Display` prints.
    text: String,
    /// Bit m set: fires at minute m.
    minutes: u64,
    /// Bit h set: fires at hour h.
    hours: u32,
    days: DaySpec,
    /// Bit m set (1-12): fires in month m.
    months: u16,
    /// Bit (y - 1970) set: fires in year y.
    years: YearSet,
}

impl PartialEq for Cron {
    fn eq(&self, other: &Self) -> bool {
        self.minutes == other.minutes
            && self.hours == other.hours
            && self.days == other.days
            && self.months == other.months
            && self.years == other.years
    }
}

impl Eq for Cron {}

/// The day rule: exactly one of day-of-month and day-of-week is not `?`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DaySpec {
    OfMonth(MonthDays),
    OfWeek(WeekDays),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MonthDays {
    /// Bit d set (1-31). A day the month lacks does not fire in that month.
    Days(u32),
    /// `L`: the last day of the month.
    Last,
    /// `LW`: the last weekday (MON-FRI) of the month.
    LastWeekday,
    /// `15W`: the weekday nearest to that day, without leaving the month.
    NearestWeekday(u32),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WeekDays {
    /// Bit w set (1 = SUN ... 7 = SAT).
    Days(u8),
    /// `6L`: the last such weekday of the month.
    Last(u32),
    /// `6#3`: the third such weekday of the month (absent in a month without one).
    Nth { weekday: u32, nth: u32 },
}

/// Years 1970-2199 as a bit set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct YearSet([u64; 4]);

impl YearSet {
    fn contains(&self, year: i32) -> bool {
        if !(FIRST_YEAR..=LAST_YEAR).contains(&year) {
            return false;
        }
        let i = (year - FIRST_YEAR) as usize;
        self.0[i / 64] & (1 << (i % 64)) != 0
    }

    /// The first year in the set that is ≥ `year`.
    fn first_from(&self, year: i32) -> Option<i32> {
        (year.max(FIRST_YEAR)..=LAST_YEAR).find(|&y| self.contains(y))
    }
}

/// Bounds and names of one numeric cron field.
struct FieldSpec {
    name: &'static str,
    min: u32,
    max: u32,
    /// Names for min, min+1, ... (months and weekdays).
    names: &'static [&'static str],
}

const MINUTES: FieldSpec = FieldSpec {
    name: "minutes",
    min: 0,
    max: 59,
    names: &[],
};
const HOURS: FieldSpec = FieldSpec {
    name: "hours",
    min: 0,
    max: 23,
    names: &[],
};
const DAY_OF_MONTH: FieldSpec = FieldSpec {
    name: "day-of-month",
    min: 1,
    max: 31,
    names: &[],
};
const MONTH: FieldSpec = FieldSpec {
    name: "month",
    min: 1,
    max: 12,
    names: &[
        "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
    ],
};
const DAY_OF_WEEK: FieldSpec = FieldSpec {
    name: "day-of-week",
    min: 1,
    max: 7,
    names: &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"],
};
const YEAR: FieldSpec = FieldSpec {
    name: "year",
    min: FIRST_YEAR as u32,
    max: LAST_YEAR as u32,
    names: &[],
};

/// A set of field values, bit (value - min). 256 bits cover the 230 years.
type Bits = [u64; 4];

fn set_bit(bits: &mut Bits, i: u32) {
    bits[(i / 64) as usize] |= 1 << (i % 64);
}

impl FieldSpec {
    /// Parses a list field (`*`, `*/5`, `1,5`, `10-40/10`, `MON-FRI`) into a value set.
    fn parse_list(&self, text: &str) -> Result<Bits, String> {
        let mut bits = [0u64; 4];
        for item in text.split(',') {
            if item.is_empty() {
                return Err(format!("{}: an empty value in the list `{text}`", self.name));
            }
            self.parse_item(item, &mut bits)?;
        }
        Ok(bits)
    }

    fn parse_item(&self, item: &str, bits: &mut Bits) -> Result<(), String> {
        let (range, step) = match item.split_once('/') {
            Some((range, step)) => (range, Some(self.parse_step(step)?)),
            None => (item, None),
        };
        let (first, last) = if range == "*" {
            (self.min, self.max)
        } else if let Some((a, b)) = range.split_once('-') {
            let (a, b) = (self.parse_value(a)?, self.parse_value(b)?);
            if a > b {
                return Err(format!(
                    "{}: the range `{range}` is reversed (write it lowest first)",
                    self.name
                ));
            }
            (a, b)
        } else {
            let a = self.parse_value(range)?;
            // `5/15` means from 5 to the end of the field every 15, as in Quartz.
            (a, if step.is_some() { self.max } else { a })
        };
        let step = step.unwrap_or(1);
        let mut value = first;
        while value <= last {
            set_bit(bits, value - self.min);
            value += step;
        }
        Ok(())
    }

    fn parse_step(&self, text: &str) -> Result<u32, String> {
        let step: u32 = text
            .parse()
            .ok()
            .filter(|_| text.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(|| format!("{}: the step `{text}` is not a whole number", self.name))?;
        if step == 0 {
            return Err(format!("{}: a step of 0 never advances", self.name));
        }
        if step > self.max - self.min {
            return Err(format!(
                "{}: the step {step} is larger than the field's range {}-{}",
                self.name, self.min, self.max
            ));
        }
        Ok(step)
    }

    /// One value: a number in range, or a name (case-insensitive; the caller upper-cased the field).
    fn parse_value(&self, text: &str) -> Result<u32, String> {
        if let Some(i) = self.names.iter().position(|n| *n == text) {
            return Ok(self.min + i as u32);
        }
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            let names = if self.names.is_empty() {
                String::new()
            } else {
                format!(" or {}-{}", self.names[0], self.names[self.names.len() - 1])
            };
            return Err(format!(
                "{}: `{text}` is not a value; use {}-{}{names}",
                self.name, self.min, self.max
            ));
        }
        match text.parse::<u32>() {
            Ok(0) if self.name == DAY_OF_WEEK.name => Err(format!(
                "{}: 0 is not a day of the week; days are 1-7 with 1 = SUN (the reference accepted 0, \
                 but Quartz rejects it, so such a schedule never ran)",
                self.name
            )),
            Ok(v) if (self.min..=self.max).contains(&v) => Ok(v),
            _ => Err(format!(
                "{}: {text} is not within {}-{}",
                self.name, self.min, self.max
            )),
        }
    }
}

impl Cron {
    /// Parses the text between `cron(` and `)`.
    fn parse_fields(inner: &str) -> Result<Cron, Vec<String>> {
        let upper = inner.to_ascii_uppercase();
        let fields: Vec<&str> = upper.split_whitespace().collect();
        if fields.len() != 6 {
            return Err(vec![format!(
                "cron: Should have 6 fields (minutes hours day-of-month month day-of-week year); found {}",
                fields.len()
            )]);
        }
        let mut problems = Vec::new();
        let minutes = value_set(&MINUTES, fields[0], &mut problems)[0];
        let hours = value_set(&HOURS, fields[1], &mut problems)[0] as u32;
        let days = match (fields[2] == "?", fields[4] == "?") {
            (true, true) => Err(
                "day-of-month and day-of-week: Do not specify day-of-month and day-of week in the same \
                 cron expression; exactly one of them must be `?`, and here both are"
                    .to_string(),
            ),
            (false, false) => Err(
                "day-of-month and day-of-week: Do not specify day-of-month and day-of week in the same \
                 cron expression; use `?` in one of them"
                    .to_string(),
            ),
            (false, true) => parse_month_days(fields[2]).map(DaySpec::OfMonth),
            (true, false) => parse_week_days(fields[4]).map(DaySpec::OfWeek),
        };
        let days = days.map_err(|problem| problems.push(problem)).ok();
        // Bits are value - min; shift so that bit m is month m.
        let months = (value_set(&MONTH, fields[3], &mut problems)[0] << 1) as u16;
        let years = YearSet(value_set(&YEAR, fields[5], &mut problems));
        match days {
            Some(days) if problems.is_empty() => Ok(Cron {
                text: fields.join(" "),
                minutes,
                hours,
                days,
                months,
                years,
            }),
            _ => Err(problems),
        }
    }

    /// The first fire strictly after `after` (at second 0 of a minute), or `None` if the expression
    /// never fires again.
    ///
    /// Walks months and only then the matching days of a month, so it costs at most a few thousand
    /// steps even for an expression that fires once in 2196 or never.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let after = after.naive_utc();
        // The first candidate minute: strictly after `after`, at second 0.
        let start = after
            .date()
            .and_hms_opt(after.hour(), after.minute(), 0)?
            .checked_add_signed(Duration::minutes(1))?;
        let (mut year, mut month) = (start.year(), start.month());
        loop {
            let allowed = self.years.first_from(year)?;
            if allowed != year {
                (year, month) = (allowed, 1);
            }
            if let Some(found) = self.first_in_month(year, month, start) {
                return Some(found.and_utc());
            }
            (year, month) = if month == 12 {
                (year + 1, 1)
            } else {
                (year, month + 1)
            };
        }
    }

    /// The first fire at or after `start` within the given month.
    fn first_in_month(&self, year: i32, month: u32, start: NaiveDateTime) -> Option<NaiveDateTime> {
        if self.months & (1 << month) == 0 {
            return None;
        }
        let mut days = self.days_matching(year, month);
        let same_month = (year, month) == (start.year(), start.month());
        if same_month {
            // Drop the days before the start day.
            days &= !((1u32 << start.day()) - 1);
        }
        while days != 0 {
            let day = days.trailing_zeros();
            days &= days - 1;
            let from = if same_month && day == start.day() {
                (start.hour(), start.minute())
            } else {
                (0, 0)
            };
            if let Some((hour, minute)) = self.first_time_from(from) {
                let date = NaiveDate::from_ymd_opt(year, month, day)?;
                return Some(date.and_time(NaiveTime::from_hms_opt(hour, minute, 0)?));
            }
        }
        None
    }

    /// The first (hour, minute) of the day at or after `from` that the expression names.
    fn first_time_from(&self, (hour, minute): (u32, u32)) -> Option<(u32, u32)> {
        (hour..24).filter(|h| self.hours & (1 << h) != 0).find_map(|h| {
            let floor = if h == hour { minute } else { 0 };
            let left = self.minutes >> floor;
            (left != 0).then(|| (h, floor + left.trailing_zeros()))
        })
    }

    /// The days of the month the day rule names, as bit d for day d.
    fn days_matching(&self, year: i32, month: u32) -> u32 {
        let Some(first) = NaiveDate::from_ymd_opt(year, month, 1) else {
            return 0;
        };
        let last = u32::from(first.num_days_in_month());
        let first_weekday = first.weekday().num_days_from_sunday();
        // Cron numbering: 1 = SUN ... 7 = SAT.
        let weekday = |day: u32| (first_weekday + day - 1) % 7 + 1;
        match self.days {
            DaySpec::OfMonth(MonthDays::Days(days)) => days & ((1u64 << (last + 1)) - 2) as u32,
            DaySpec::OfMonth(MonthDays::Last) => 1 << last,
            DaySpec::OfMonth(MonthDays::LastWeekday) => {
                let day = match weekday(last) {
                    7 => last - 1,
                    1 => last - 2,
                    _ => last,
                };
                1 << day
            }
            DaySpec::OfMonth(MonthDays::NearestWeekday(day)) if day > last => 0,
            DaySpec::OfMonth(MonthDays::NearestWeekday(day)) => {
                let nearest = match weekday(day) {
                    7 if day == 1 => 3,
                    7 => day - 1,
                    1 if day == last => day - 2,
                    1 => day + 1,
                    _ => day,
                };
                1 << nearest
            }
            DaySpec::OfWeek(WeekDays::Days(weekdays)) => (1..=last)
                .filter(|&d| weekdays & (1 << weekday(d)) != 0)
                .fold(0, |days, d| days | 1 << d),
            DaySpec::OfWeek(WeekDays::Last(target)) => 1 << (last - (weekday(last) + 7 - target) % 7),
            DaySpec::OfWeek(WeekDays::Nth { weekday: target, nth }) => {
                let first = 1 + (target + 7 - weekday(1)) % 7;
                let day = first + 7 * (nth - 1);
                if day <= last { 1 << day } else { 0 }
            }
        }
    }
}

/// The value set of a list field, or an empty set after recording the problem.
fn value_set(spec: &FieldSpec, text: &str, problems: &mut Vec<String>) -> Bits {
    let parsed = if text.contains('?') {
        Err(format!(
            "{}: `?` is only allowed in day-of-month or day-of-week",
            spec.name
        ))
    } else {
        spec.parse_list(text)
    };
    parsed.unwrap_or_else(|problem| {
        problems.push(problem);
        [0; 4]
    })
}

/// `L`, `LW`, `15W` or a list (`1,15`, `1-7`, `*/2`).
fn parse_month_days(field: &str) -> Result<MonthDays, String> {
    match field {
        "L" => return Ok(MonthDays::Last),
        "LW" => return Ok(MonthDays::LastWeekday),
        _ => {}
    }
    if let Some(day) = field.strip_suffix('W') {
        if day.is_empty() {
            return Err("day-of-month: `W` needs a day before it, e.g. `15W`".to_string());
        }
        if day.contains([',', '-', '/', '*', 'L', 'W']) {
            return Err(format!(
                "day-of-month: `{field}`: `W` takes a single day and cannot be combined with other values"
            ));
        }
        return DAY_OF_MONTH.parse_value(day).map(MonthDays::NearestWeekday);
    }
    if field.contains(['L', 'W']) {
        return Err(format!(
            "day-of-month: `{field}`: `L` and `W` stand alone (`L`, `LW`, `15W`) and cannot be combined \
             with other values"
        ));
    }
    // Bits are day - 1; shift so that bit d is day d.
    DAY_OF_MONTH
        .parse_list(field)
        .map(|bits| MonthDays::Days((bits[0] << 1) as u32))
}

/// `L` (= SAT, as in Quartz), `6L`, `6#3` or a list (`MON-FRI`, `1,7`).
fn parse_week_days(field: &str) -> Result<WeekDays, String> {
    if field == "L" {
        return Ok(WeekDays::Days(1 << 7));
    }
    let single = |text: &str| -> Result<u32, String> {
        if text.contains([',', '-', '/', '*', 'L', '#']) {
            Err(format!(
                "day-of-week: `{field}`: `L` and `#` take a single weekday and cannot be combined with \
                 other values"
            ))
        } else {
            DAY_OF_WEEK.parse_value(text)
        }
    };
    if let Some((weekday, nth)) = field.split_once('#') {
        let weekday = single(weekday)?;
        return match nth.as_bytes() {
            [digit @ b'1'..=b'5'] => Ok(WeekDays::Nth {
                weekday,
                nth: u32::from(digit - b'0'),
            }),
            _ => Err(format!(
                "day-of-week: `{field}`: the number after `#` must be 1-5 (which occurrence in the month)"
            )),
        };
    }
    if let Some(weekday) = field.strip_suffix('L') {
        return single(weekday).map(WeekDays::Last);
    }
    if field.contains('L') {
        return Err(format!(
            "day-of-week: `{field}`: `L` stands alone or after one weekday (`6L`) and cannot be combined \
             with other values"
        ));
    }
    DAY_OF_WEEK
        .parse_list(field)
        .map(|bits| WeekDays::Days((bits[0] << 1) as u8))
}

impl fmt::Display for Cron {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cron({})", self.text)
    }
}

// ---------------------------------------------------------------------------------------------------
// rate
// ---------------------------------------------------------------------------------------------------

/// A `rate(N unit)` expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    value: u32,
    unit: RateUnit,
}

/// The unit of a [`Rate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateUnit {
    Minutes,
    Hours,
    Days,
}

impl RateUnit {
    fn word(self, value: u32) -> &'static str {
        match (self, value == 1) {
            (RateUnit::Minutes, true) => "minute",
            (RateUnit::Minutes, false) => "minutes",
            (RateUnit::Hours, true) => "hour",
            (RateUnit::Hours, false) => "hours",
            (RateUnit::Days, true) => "day",
            (RateUnit::Days, false) => "days",
        }
    }
}

impl Rate {
    /// The number of units between fires (≥ 1).
    pub fn value(&self) -> u32 {
        self.value
    }

    pub fn unit(&self) -> RateUnit {
        self.unit
    }

    /// The time between two fires.
    pub fn interval(&self) -> Duration {
        let value = i64::from(self.value);
        match self.unit {
            RateUnit::Minutes => Duration::minutes(value),
            RateUnit::Hours => Duration::hours(value),
            RateUnit::Days => Duration::days(value),
        }
    }

    /// The smallest `anchor + k·interval` (k ≥ 1) later than `after`.
    fn next_after(&self, after: DateTime<Utc>, anchor: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let interval = self.interval().num_seconds();
        // Whole intervals already elapsed; `num_seconds` truncates, which is exact here because the
        // interval is a whole number of seconds and only a full interval moves k.
        let elapsed = (after - anchor).num_seconds();
        let k = if elapsed < 0 { 1 } else { elapsed / interval + 1 };
        let offset = TimeDelta::try_seconds(k.checked_mul(interval)?)?;
        anchor.checked_add_signed(offset)
    }

    /// Parses the text between `rate(` and `)`.
    fn parse_inner(inner: &str) -> Result<Rate, Vec<String>> {
        let words: Vec<&str> = inner.split_whitespace().collect();
        let [value_text, unit_text] = words[..] else {
            return Err(vec![format!(
                "rate: expected `rate(value unit)`, e.g. `rate(5 minutes)`; found {} words",
                words.len()
            )]);
        };
        let mut problems = Vec::new();
        let value = if value_text.bytes().all(|b| b.is_ascii_digit()) {
            match value_text.parse::<u32>() {
                Ok(0) => {
                    problems.push("rate: the value must be a positive whole number, not 0".to_string());
                    None
                }
                Ok(value) => Some(value),
                Err(_) => {
                    problems.push(format!("rate: the value {value_text} is too large"));
                    None
                }
            }
        } else {
            problems.push(format!(
                "rate: the value `{value_text}` is not a positive whole number"
            ));
            None
        };
        let unit = match unit_text {
            "minute" | "minutes" => Some(RateUnit::Minutes),
            "hour" | "hours" => Some(RateUnit::Hours),
            "day" | "days" => Some(RateUnit::Days),
            _ => {
                problems.push(format!(
                    "rate: unknown unit `{unit_text}`; use minute(s), hour(s) or day(s)"
                ));
                None
            }
        };
        if let (Some(value), Some(unit)) = (value, unit) {
            let expected = unit.word(value);
            if unit_text != expected {
                problems.push(format!(
                    "rate: write `{value} {expected}`: the unit is singular exactly when the value is 1"
                ));
            }
            if problems.is_empty() {
                return Ok(Rate { value, unit });
            }
        }
        Err(problems)
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "rate({} {})", self.value, self.unit.word(self.value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// `"2026-11-28 10:17"` or `"2026-11-28 10:17:30"` as UTC.
    fn at(text: &str) -> DateTime<Utc> {
        let format = if text.len() > 16 {
            "%Y-%m-%d %H:%M:%S"
        } else {
            "%Y-%m-%d %H:%M"
        };
        NaiveDateTime::parse_from_str(text, format)
            .expect("test instants are well formed")
            .and_utc()
    }

    fn cron(text: &str) -> Cron {
        match Schedule::parse(text) {
            Ok(Schedule::Cron(cron)) => cron,
            other => panic!("{text} should parse as a cron, got {other:?}"),
        }
    }

    /// The next `n` fires of `expression` after `from`.
    fn fires(expression: &str, from: &str, n: usize) -> Vec<DateTime<Utc>> {
        let cron = cron(expression);
        let mut out = Vec::new();
        let mut t = at(from);
        while out.len() < n {
            match cron.next_after(t) {
                Some(next) => {
                    out.push(next);
                    t = next;
                }
                None => break,
            }
        }
        out
    }

    /// Checks a table of `(expression, from, "fire, fire, ...")`: the next fires, in order.
    fn assert_fire_table(rows: &[(&str, &str, &str)]) {
        for (expression, from, expected) in rows {
            let expected: Vec<_> = expected.split(", ").map(at).collect();
            assert_eq!(
                fires(expression, from, expected.len()),
                expected,
                "{expression} from {from}"
            );
        }
    }

    fn problems(text: &str) -> Vec<String> {
        Schedule::parse(text)
            .expect_err("the expression is invalid")
            .problems
    }

    #[rustfmt::skip]
    #[test]
    fn tooling_table_from_saturday_2026_11_28_10_17() {
        let base = "2026-11-28 10:17";
        assert_fire_table(&[
            ("cron(0 */6 * * ? *)", base, "2026-11-28 12:00, 2026-11-28 18:00, 2026-11-29 00:00"),
            ("cron(0 0 ? * 1 *)", base, "2026-11-29 00:00, 2026-12-06 00:00, 2026-12-13 00:00"),
            ("cron(0 3 * * ? *)", base, "2026-11-29 03:00, 2026-11-30 03:00, 2026-12-01 03:00"),
            ("cron(0 1 ? * 1 *)", base, "2026-11-29 01:00, 2026-12-06 01:00, 2026-12-13 01:00"),
            ("cron(0 9 ? * 2-6 *)", base, "2026-11-30 09:00, 2026-12-01 09:00, 2026-12-02 09:00"),
            ("cron(0 12 ? * 6L *)", base, "2026-12-25 12:00, 2027-01-29 12:00, 2027-02-26 12:00"),
            ("cron(0 12 ? * 6#3 *)", base, "2026-12-18 12:00, 2027-01-15 12:00, 2027-02-19 12:00"),
            ("cron(0 12 15W * ? *)", base, "2026-12-15 12:00, 2027-01-15 12:00, 2027-02-15 12:00"),
            ("cron(0 12 L * ? *)", base, "2026-11-30 12:00, 2026-12-31 12:00, 2027-01-31 12:00"),
            ("cron(0/15 * * * ? *)", base, "2026-11-28 10:30, 2026-11-28 10:45, 2026-11-28 11:00"),
        ]);
        assert_eq!(
            fires("cron(0 12 1 1 ? 2028)", base, 3),
            vec![at("2028-01-01 12:00")],
            "a single-year cron fires once"
        );
    }

    #[rustfmt::skip]
    #[test]
    fn next_fire_table() {
        assert_fire_table(&[
            // Strictly after: a fire exactly at `after` is skipped; seconds round up to the next minute.
            ("cron(0 12 * * ? *)", "2026-03-10 12:00", "2026-03-11 12:00"),
            ("cron(0 12 * * ? *)", "2026-03-10 11:59:59", "2026-03-10 12:00"),
            ("cron(* * * * ? *)", "2026-03-10 11:59:01", "2026-03-10 12:00, 2026-03-10 12:01"),
            // Year end and month ends.
            ("cron(0 0 1 1 ? *)", "2026-12-31 23:59:30", "2027-01-01 00:00, 2028-01-01 00:00"),
            ("cron(59 23 L * ? *)", "2027-02-01 00:00", "2027-02-28 23:59, 2027-03-31 23:59"),
            ("cron(0 0 L 2 ? *)", "2027-03-01 00:00", "2028-02-29 00:00, 2029-02-28 00:00"),
            // Days a month lacks do not fire in that month.
            ("cron(0 0 31 * ? *)", "2026-04-01 00:00", "2026-05-31 00:00, 2026-07-31 00:00"),
            ("cron(0 0 30 * ? *)", "2027-01-31 00:00", "2027-03-30 00:00"),
            // Leap years, including the century rule (2100 is not leap).
            ("cron(0 0 29 2 ? *)", "2026-03-01 00:00", "2028-02-29 00:00, 2032-02-29 00:00"),
            ("cron(0 0 29 2 ? *)", "2096-03-01 00:00", "2104-02-29 00:00"),
            ("cron(0 0 29 2 ? 2196)", "2026-01-01 00:00", "2196-02-29 00:00"),
            // W: the nearest weekday without leaving the month (2026-08-01 is a Saturday, 2026-05-31 a
            // Sunday); 31W does not fire in a 30-day month.
            ("cron(0 8 1W * ? *)", "2026-07-15 00:00", "2026-08-03 08:00, 2026-09-01 08:00"),
            ("cron(0 8 31W * ? *)", "2026-05-01 00:00", "2026-05-29 08:00, 2026-07-31 08:00"),
            ("cron(0 8 15W * ? *)", "2026-08-01 00:00", "2026-08-14 08:00, 2026-09-15 08:00"),
            ("cron(0 8 15W * ? *)", "2026-11-01 00:00", "2026-11-16 08:00"),
            ("cron(0 8 LW * ? *)", "2026-11-28 10:17", "2026-11-30 08:00, 2026-12-31 08:00, 2027-01-29 08:00"),
            // #5 skips months without a fifth such weekday.
            ("cron(0 0 ? * 2#5 *)", "2026-11-28 10:17", "2026-11-30 00:00, 2027-03-29 00:00, 2027-05-31 00:00"),
            // L alone in day-of-week is Saturday, as in Quartz.
            ("cron(0 0 ? * L *)", "2026-11-28 10:17", "2026-12-05 00:00, 2026-12-12 00:00"),
            // Steps, ranges, lists and names (case-insensitive).
            ("cron(10-40/10 * * * ? *)", "2026-11-28 10:17", "2026-11-28 10:20, 2026-11-28 10:30, 2026-11-28 10:40, 2026-11-28 11:10"),
            ("cron(5,35 14 * * ? *)", "2026-11-28 14:05", "2026-11-28 14:35, 2026-11-29 14:05"),
            ("cron(0 0 ? jan,Jul mon-fri *)", "2026-06-30 00:00", "2026-07-01 00:00, 2026-07-02 00:00, 2026-07-03 00:00, 2026-07-06 00:00"),
            ("cron(0 6 ? * SAT,SUN *)", "2026-11-28 10:17", "2026-11-29 06:00, 2026-12-05 06:00"),
            ("cron(0 0 1 */4 ? *)", "2026-02-01 00:00", "2026-05-01 00:00, 2026-09-01 00:00, 2027-01-01 00:00"),
            ("cron(0 0 1 1 ? 2030/5)", "2026-01-01 00:00", "2030-01-01 00:00, 2035-01-01 00:00"),
            // Year bounds.
            ("cron(0 0 1 1 ? 2199)", "2198-06-01 00:00", "2199-01-01 00:00"),
            ("cron(0 0 1 1 ? 1970)", "1969-06-01 00:00", "1970-01-01 00:00"),
        ]);
    }

    #[test]
    fn crons_that_never_fire_again_return_none() {
        for (expression, from) in [
            ("cron(0 0 30 2 ? *)", "2026-01-01 00:00"),
            ("cron(0 0 31 4,6,9,11 ? *)", "2026-01-01 00:00"),
            ("cron(0 0 * * ? 2020)", "2026-01-01 00:00"),
            ("cron(0 0 1 1 ? 2199)", "2199-01-01 00:00"),
            ("cron(* * * * ? *)", "2199-12-31 23:59"),
            ("cron(0 0 ? 2 2#5 2027)", "2026-01-01 00:00"),
        ] {
            assert_eq!(
                cron(expression).next_after(at(from)),
                None,
                "{expression} from {from}"
            );
        }
    }

    #[test]
    fn reference_reject_list_stays_rejected() {
        assert!(problems("cron(0 12 * * ? * *)")[0].contains("Should have 6 fields"));
        assert!(problems("cron(0 12 * * ?)")[0].contains("Should have 6 fields"));
        assert!(
            problems("cron(5,35 14 * * * *)")[0]
                .contains("Do not specify day-of-month and day-of week in the same cron expression")
        );
        assert_eq!(
            problems("cron(5,35 14 * * ? 1888)"),
            vec!["year: 1888 is not within 1970-2199".to_string()]
        );
        assert!(problems("not-cron")[0].contains("\"delete\""));
    }

    #[test]
    fn both_question_marks_are_rejected_with_the_reference_wording() {
        let found = problems("cron(0 12 ? * ? *)");
        assert_eq!(found.len(), 1);
        assert!(found[0].contains("Do not specify day-of-month and day-of week"));
        assert!(found[0].contains("both"));
    }

    #[test]
    fn day_of_week_zero_is_rejected_naming_the_reference_bug() {
        let found = problems("cron(0 12 ? * 0 *)");
        assert_eq!(found.len(), 1);
        assert!(found[0].starts_with("day-of-week: 0 is not a day of the week"));
        assert!(found[0].contains("Quartz"));
        assert!(problems("cron(0 12 ? * 0-5 *)")[0].contains("Quartz"));
    }

    #[test]
    fn bad_fields_are_rejected_each_naming_its_field() {
        let cases = [
            ("cron(0 12 ? * 8 *)", "day-of-week: 8 is not within 1-7"),
            ("cron(0 12 W * ? *)", "day-of-month: `W` needs a day"),
            ("cron(60 12 * * ? *)", "minutes: 60 is not within 0-59"),
            ("cron(0 24 * * ? *)", "hours: 24 is not within 0-23"),
            ("cron(0 12 32 * ? *)", "day-of-month: 32 is not within 1-31"),
            ("cron(0 12 0 * ? *)", "day-of-month: 0 is not within 1-31"),
            ("cron(0 12 * 13 ? *)", "month: 13 is not within 1-12"),
            (
                "cron(0 12 * FOO ? *)",
                "month: `FOO` is not a value; use 1-12 or JAN-DEC",
            ),
            ("cron(0 12 * * ? 2200)", "year: 2200 is not within 1970-2199"),
            (
                "cron(0 12 ? * FRI-MON *)",
                "day-of-week: the range `FRI-MON` is reversed",
            ),
            ("cron(40-10 12 * * ? *)", "minutes: the range `40-10` is reversed"),
            ("cron(*/0 12 * * ? *)", "minutes: a step of 0 never advances"),
            ("cron(*/60 12 * * ? *)", "minutes: the step 60 is larger"),
            (
                "cron(1,,2 12 * * ? *)",
                "minutes: an empty value in the list `1,,2`",
            ),
            ("cron(? 12 * * ? *)", "minutes: `?` is only allowed"),
            (
                "cron(0 12 1,L * ? *)",
                "day-of-month: `1,L`: `L` and `W` stand alone",
            ),
            (
                "cron(0 12 1-5W * ? *)",
                "day-of-month: `1-5W`: `W` takes a single day",
            ),
            (
                "cron(0 12 ? * 6#6 *)",
                "day-of-week: `6#6`: the number after `#` must be 1-5",
            ),
            (
                "cron(0 12 ? * 6#0 *)",
                "day-of-week: `6#0`: the number after `#` must be 1-5",
            ),
            (
                "cron(0 12 ? * 1,6L *)",
                "day-of-week: `1,6L`: `L` and `#` take a single weekday",
            ),
            ("cron(0 12 ? * W *)", "day-of-week: `W` is not a value"),
            ("cron(0 12 * * ? *", "cron: missing the closing `)`"),
            ("cron()", "Should have 6 fields"),
            ("rate(5 minutes", "rate: missing the closing `)`"),
        ];
        for (expression, expected) in cases {
            let found = problems(expression);
            assert!(
                found
                    .iter()
                    .any(|p| p.starts_with(expected) || p.contains(expected)),
                "{expression}: expected a problem like {expected:?}, got {found:?}"
            );
        }
    }

    #[test]
    fn every_problem_of_an_expression_is_reported_in_field_order() {
        let error = Schedule::parse("cron(61 25 32W 13 ? 1900)").expect_err("five bad fields");
        let fields: Vec<&str> = error
            .problems
            .iter()
            .filter_map(|p| p.split(':').next())
            .collect();
        assert_eq!(
            fields,
            ["minutes", "hours", "day-of-month", "month", "year"],
            "{error}"
        );
        assert!(
            error
                .to_string()
                .starts_with("invalid schedule expression \"cron(61 25 32W 13 ? 1900)\": minutes: 61 ")
        );
    }

    #[test]
    fn whitespace_around_and_between_fields_is_tolerated() {
        let spaced = Schedule::parse("  cron(0   */6 *  * ?  *)\n").expect("extra spaces are fine");
        assert_eq!(spaced, Schedule::parse("cron(0 */6 * * ? *)").expect("valid"));
        assert_eq!(spaced.to_string(), "cron(0 */6 * * ? *)");
        assert_eq!(Schedule::parse(" delete "), Ok(Schedule::Delete));
    }

    #[test]
    fn equality_is_semantic_and_display_is_normalised() {
        let named = Schedule::parse("cron(0 0 ? jan mon *)").expect("valid");
        assert_eq!(named, Schedule::parse("cron(0 0 ? 1 2 *)").expect("valid"));
        assert_eq!(named.to_string(), "cron(0 0 ? JAN MON *)");
        assert_ne!(named, Schedule::parse("cron(0 0 ? 1 3 *)").expect("valid"));
    }

    #[test]
    fn rates_parse_with_the_aws_singular_rule() {
        let minutes = Schedule::parse("rate(5 minutes)").expect("valid");
        let Schedule::Rate(rate) = minutes else {
            panic!("expected a rate, got {minutes:?}");
        };
        assert_eq!(rate.interval(), Duration::minutes(5));
        assert_eq!((rate.value(), rate.unit()), (5, RateUnit::Minutes));
        for (text, interval) in [
            ("rate(1 minute)", Duration::minutes(1)),
            ("rate(1 hour)", Duration::hours(1)),
            ("rate(12 hours)", Duration::hours(12)),
            ("rate(1 day)", Duration::days(1)),
            ("rate(7 days)", Duration::days(7)),
        ] {
            match Schedule::parse(text) {
                Ok(Schedule::Rate(rate)) => assert_eq!(rate.interval(), interval, "{text}"),
                other => panic!("{text}: {other:?}"),
            }
        }
        for (text, expected) in [
            ("rate(1 minutes)", "write `1 minute`"),
            ("rate(5 minute)", "write `5 minutes`"),
            ("rate(1 days)", "write `1 day`"),
            ("rate(0 minutes)", "not 0"),
            ("rate(-5 minutes)", "not a positive whole number"),
            ("rate(1.5 hours)", "not a positive whole number"),
            ("rate(5 weeks)", "unknown unit `weeks`"),
            ("rate(5)", "expected `rate(value unit)`"),
            ("rate()", "expected `rate(value unit)`"),
            ("rate(99999999999 days)", "too large"),
        ] {
            let found = problems(text);
            assert!(
                found.iter().any(|p| p.contains(expected)),
                "{text}: expected {expected:?} in {found:?}"
            );
        }
    }

    #[test]
    fn rate_fires_on_the_anchor_grid_strictly_after() {
        let hourly = Schedule::parse("rate(1 hour)").expect("valid");
        let anchor = at("2026-11-28 10:17");
        let next = |after: &str| hourly.next_fire(at(after), anchor);
        assert_eq!(next("2026-11-28 10:17"), Some(at("2026-11-28 11:17")));
        assert_eq!(next("2026-11-28 11:16:59"), Some(at("2026-11-28 11:17")));
        assert_eq!(next("2026-11-28 11:17"), Some(at("2026-11-28 12:17")));
        assert_eq!(next("2026-11-28 13:50"), Some(at("2026-11-28 14:17")));
        // Before the anchor: k ≥ 1, so the first fire is one interval after the anchor.
        assert_eq!(next("2026-01-01 00:00"), Some(at("2026-11-28 11:17")));
        let daily = Schedule::parse("rate(3 days)").expect("valid");
        assert_eq!(
            daily.next_fire(at("2026-12-05 00:00"), anchor),
            Some(at("2026-12-07 10:17"))
        );
        assert_eq!(
            Schedule::parse("rate(4294967295 days)")
                .expect("valid")
                .next_fire(anchor, anchor),
            None,
            "beyond chrono's range there is no next fire"
        );
    }

    #[test]
    fn delete_never_fires_and_cron_ignores_the_anchor() {
        let t = at("2026-11-28 10:17");
        assert_eq!(Schedule::Delete.next_fire(t, t), None);
        let daily = Schedule::parse("cron(0 3 * * ? *)").expect("valid");
        assert_eq!(
            daily.next_fire(t, at("2001-01-01 00:07")),
            Some(at("2026-11-29 03:00"))
        );
    }

    #[test]
    fn schedules_serialise_as_their_text() {
        let schedule = Schedule::parse("rate(2 hours)").expect("valid");
        let json = serde_json::to_string(&schedule).expect("serialisable");
        assert_eq!(json, "\"rate(2 hours)\"");
        assert_eq!(
            serde_json::from_str::<Schedule>(&json).expect("round trip"),
            schedule
        );
        let bad = serde_json::from_str::<Schedule>("\"cron(0 0 * * * *)\"").expect_err("invalid cron");
        assert!(bad.to_string().contains("Do not specify"));
    }

    // ------------------------------------------------------------------------------------------------
    // Property tests
    // ------------------------------------------------------------------------------------------------

    /// One list item of a numeric field: `*`, `*/s`, `a`, `a-b`, `a/s`, `a-b/s`.
    fn item(min: u32, max: u32) -> impl Strategy<Value = String> {
        let span = max - min;
        prop_oneof![
            Just("*".to_string()),
            (1..=span).prop_map(|s| format!("*/{s}")),
            (min..=max).prop_map(|a| a.to_string()),
            (min..=max, 0..=span).prop_map(move |(a, len)| format!("{a}-{}", (a + len).min(max))),
            (min..=max, 1..=span).prop_map(|(a, s)| format!("{a}/{s}")),
            (min..=max, 0..=span, 1..=span)
                .prop_map(move |(a, len, s)| format!("{a}-{}/{s}", (a + len).min(max))),
        ]
    }

    fn list(min: u32, max: u32) -> impl Strategy<Value = String> {
        prop::collection::vec(item(min, max), 1..=3).prop_map(|items| items.join(","))
    }

    const WEEKDAY_NAMES: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
    const MONTH_NAMES: [&str; 12] = [
        "jan", "Feb", "MAR", "apr", "May", "JUN", "jul", "aug", "SEP", "oct", "Nov", "DEC",
    ];

    fn weekday() -> impl Strategy<Value = String> {
        prop_oneof![
            (1..=7u32).prop_map(|w| w.to_string()),
            (0..7usize).prop_map(|w| WEEKDAY_NAMES[w].to_string()),
        ]
    }

    /// (day-of-month, day-of-week): exactly one is `?`.
    fn days() -> impl Strategy<Value = (String, String)> {
        let of_month = prop_oneof![
            4 => list(1, 31),
            1 => Just("L".to_string()),
            1 => Just("LW".to_string()),
            1 => (1..=31u32).prop_map(|d| format!("{d}W")),
        ];
        let of_week = prop_oneof![
            3 => list(1, 7),
            1 => (0..7usize, 0..7usize).prop_map(|(a, b)| {
                let (a, b) = (a.min(b), a.max(b));
                format!("{}-{}", WEEKDAY_NAMES[a], WEEKDAY_NAMES[b])
            }),
            1 => Just("L".to_string()),
            1 => weekday().prop_map(|w| format!("{w}L")),
            1 => (weekday(), 1..=5u32).prop_map(|(w, n)| format!("{w}#{n}")),
        ];
        prop_oneof![
            of_month.prop_map(|dom| (dom, "?".to_string())),
            of_week.prop_map(|dow| ("?".to_string(), dow)),
        ]
    }

    fn valid_cron() -> impl Strategy<Value = String> {
        let month = prop_oneof![
            3 => list(1, 12),
            1 => (0..12usize).prop_map(|m| MONTH_NAMES[m].to_string()),
        ];
        let year = prop_oneof![
            4 => Just("*".to_string()),
            1 => list(2020, 2199),
        ];
        (list(0, 59), list(0, 23), days(), month, year)
            .prop_map(|(mi, h, (dom, dow), mo, y)| format!("cron({mi} {h} {dom} {mo} {dow} {y})"))
    }

    fn instant() -> impl Strategy<Value = DateTime<Utc>> {
        // 2020-01-01 .. 2030-01-01, any second.
        (1_577_836_800i64..1_893_456_000)
            .prop_map(|s| DateTime::from_timestamp(s, 0).expect("the range is within chrono's"))
    }

    /// A naive, per-date reading of the day rule, written independently of `days_matching`.
    fn naive_day_matches(cron: &Cron, date: NaiveDate) -> bool {
        let mut last = date;
        while let Some(next) = last.succ_opt().filter(|n| n.month() == date.month()) {
            last = next;
        }
        let last = last.day();
        let (day, month) = (date.day(), date.month());
        let on = |d: u32| NaiveDate::from_ymd_opt(date.year(), month, d).expect("day within month");
        let is_weekday = |d: u32| on(d).weekday().number_from_monday() <= 5;
        let weekday = date.weekday().num_days_from_sunday() + 1;
        if !cron.years.contains(date.year()) || cron.months & (1 << month) == 0 {
            return false;
        }
        match cron.days {
            DaySpec::OfMonth(MonthDays::Days(days)) => days & (1 << day) != 0,
            DaySpec::OfMonth(MonthDays::Last) => day == last,
            DaySpec::OfMonth(MonthDays::LastWeekday) => {
                is_weekday(day) && (day + 1..=last).all(|d| !is_weekday(d))
            }
            DaySpec::OfMonth(MonthDays::NearestWeekday(n)) => {
                n <= last
                    && is_weekday(day)
                    && (1..=last)
                        .filter(|&d| is_weekday(d))
                        .min_by_key(|&d| d.abs_diff(n))
                        == Some(day)
            }
            DaySpec::OfWeek(WeekDays::Days(days)) => days & (1 << weekday) != 0,
            DaySpec::OfWeek(WeekDays::Last(w)) => weekday == w && day + 7 > last,
            DaySpec::OfWeek(WeekDays::Nth { weekday: w, nth }) => weekday == w && (day - 1) / 7 + 1 == nth,
        }
    }

    /// Brute force: the first matching minute after `t` within `days` days, if any.
    fn oracle(cron: &Cron, t: DateTime<Utc>, days: u32) -> Option<DateTime<Utc>> {
        let t = t.naive_utc();
        let mut date = t.date();
        for _ in 0..days {
            if naive_day_matches(cron, date) {
                for minute_of_day in 0..24 * 60 {
                    let (h, m) = (minute_of_day / 60, minute_of_day % 60);
                    let candidate = date.and_hms_opt(h, m, 0).expect("valid time");
                    if candidate > t && cron.hours & (1 << h) != 0 && cron.minutes & (1 << m) != 0 {
                        return Some(candidate.and_utc());
                    }
                }
            }
            date = date.succ_opt()?;
        }
        None
    }

    #[test]
    fn special_day_rules_agree_with_the_naive_reading_over_twelve_years() {
        let mut rules: Vec<(String, &str)> = vec![("L".into(), "?"), ("LW".into(), "?")];
        rules.extend((1..=31).map(|n| (format!("{n}W"), "?")));
        let week_rules: Vec<String> = (1..=7)
            .flat_map(|w| std::iter::once(format!("{w}L")).chain((1..=5).map(move |k| format!("{w}#{k}"))))
            .collect();
        for (dom, dow) in rules
            .iter()
            .map(|(dom, dow)| (dom.as_str(), *dow))
            .chain(week_rules.iter().map(|dow| ("?", dow.as_str())))
        {
            let cron = cron(&format!("cron(0 0 {dom} * {dow} *)"));
            // 2020-2031 holds every (first weekday, month length) combination that matters.
            for year in 2020..2032 {
                for month in 1..=12 {
                    let mask = cron.days_matching(year, month);
                    for day in 1..=31 {
                        let naive = NaiveDate::from_ymd_opt(year, month, day)
                            .is_some_and(|date| naive_day_matches(&cron, date));
                        assert_eq!(
                            mask & (1 << day) != 0,
                            naive,
                            "{dom} {dow} on {year}-{month}-{day}"
                        );
                    }
                }
            }
        }
    }

    proptest! {
        #[test]
        fn parse_never_panics_on_arbitrary_text(text in "\\PC{0,40}") {
            let _ = Schedule::parse(&text);
        }

        #[test]
        fn parse_never_panics_on_cron_token_soup(
            tokens in prop::collection::vec(
                prop::sample::select(vec![
                    "cron(", "rate(", ")", " ", "*", "?", "L", "W", "LW", "#", "/", "-", ",", "0", "1",
                    "5", "6", "7", "8", "15", "31", "59", "60", "1970", "2199", "99999999999", "MON",
                    "jan", "fri", "minutes", "day", "delete", "6#3", "6L",
                ]),
                0..16,
            ),
            t in instant(),
        ) {
            if let Ok(schedule) = Schedule::parse(&tokens.concat()) {
                let _ = schedule.next_fire(t, t);
            }
        }

        #[test]
        fn display_round_trips(text in valid_cron(), rate in (1u32..10_000, 0..3usize)) {
            let parsed = Schedule::parse(&text).expect("generated crons are valid");
            prop_assert_eq!(Schedule::parse(&parsed.to_string()), Ok(parsed.clone()));
            let unit = ["minute", "hour", "day"][rate.1];
            let plural = if rate.0 == 1 { "" } else { "s" };
            let rate = Schedule::parse(&format!("rate({} {unit}{plural})", rate.0)).expect("valid rate");
            prop_assert_eq!(Schedule::parse(&rate.to_string()), Ok(rate));
        }

        #[test]
        fn day_rules_agree_with_the_naive_reading_in_every_month(
            (dom, dow) in days(),
            year in 2020i32..2110,
            month in 1u32..=12,
        ) {
            let cron = cron(&format!("cron(0 0 {dom} * {dow} *)"));
            let mask = cron.days_matching(year, month);
            for day in 1..=31 {
                let naive = NaiveDate::from_ymd_opt(year, month, day)
                    .is_some_and(|date| naive_day_matches(&cron, date));
                prop_assert_eq!(mask & (1 << day) != 0, naive, "{} {} on {}-{}-{}", dom, dow, year, month, day);
            }
        }

        #[test]
        fn next_after_is_the_first_matching_minute(text in valid_cron(), t in instant()) {
            let cron = cron(&text);
            let next = cron.next_after(t);
            let window = 400;
            match oracle(&cron, t, window) {
                Some(expected) => prop_assert_eq!(next, Some(expected), "{}", text),
                None => prop_assert!(
                    next.is_none_or(|n| n >= t + Duration::days(i64::from(window) - 1)),
                    "{} fired at {:?} but the oracle found nothing in {} days", text, next, window
                ),
            }
            if let Some(next) = next {
                prop_assert!(next > t);
                prop_assert_eq!(next.second(), 0);
                prop_assert!(naive_day_matches(&cron, next.date_naive()));
                prop_assert!(cron.hours & (1 << next.hour()) != 0);
                prop_assert!(cron.minutes & (1 << next.minute()) != 0);
            }
        }
    }
}
