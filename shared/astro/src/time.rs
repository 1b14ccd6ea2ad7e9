//! Civil time → UTC → TT/UT1/TDB.
//!
//! * UTC ≥ 1972-01-01: TT = UTC + (TAI−UTC) + 32.184 s from the leap-second table, and
//!   after its last entry (2017-01-01) with that entry's 37 s held, as IERS, SOFA/ERFA,
//!   skyfield and Swiss Ephemeris do; UT1 = TT − ΔT(model). Sidereal time and houses turn
//!   with that UT1.
//! * Before 1972 UTC did not exist: civil time is taken as UT1 and TT = UT1 + ΔT(model).
//!
//! ΔT comes from `data/delta_t.txt` (see docs/astro.md for its sources).

use std::sync::OnceLock;

use chrono::{LocalResult, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeZone};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::error::AstroError;

/// JD of 2000-01-01T12:00 TT.
pub const J2000: f64 = 2451545.0;
const SECONDS_PER_DAY: f64 = 86400.0;
/// JD at 0h of proleptic-Gregorian day 0 as counted by chrono's `num_days_from_ce`.
const JD_OF_CE_DAY_ZERO: f64 = 1721424.5;

/// First and last supported civil instants (UTC, inclusive start, exclusive end).
pub const RANGE_START: (i32, u32, u32) = (1800, 1, 1);
pub const RANGE_END: (i32, u32, u32) = (2200, 1, 1);

/// (year, month, TAI−UTC from the first day of that month).
const LEAP_SECONDS: [(i32, u32, f64); 28] = [
    (1972, 1, 10.0),
    (1972, 7, 11.0),
    (1973, 1, 12.0),
    (1974, 1, 13.0),
    (1975, 1, 14.0),
    (1976, 1, 15.0),
    (1977, 1, 16.0),
    (1978, 1, 17.0),
    (1979, 1, 18.0),
    (1980, 1, 19.0),
    (1981, 7, 20.0),
    (1982, 7, 21.0),
    (1983, 7, 22.0),
    (1985, 7, 23.0),
    (1988, 1, 24.0),
    (1990, 1, 25.0),
    (1991, 1, 26.0),
    (1992, 7, 27.0),
    (1993, 7, 28.0),
    (1994, 7, 29.0),
    (1996, 1, 30.0),
    (1997, 7, 31.0),
    (1999, 1, 32.0),
    (2006, 1, 33.0),
    (2009, 1, 34.0),
    (2012, 7, 35.0),
    (2015, 7, 36.0),
    (2017, 1, 37.0),
];

/// IERS Bulletin C has announced no leap second after 2016-12-31 up to this date. The
/// last TAI−UTC is held after it too (the standard convention, not a prediction), so a leap
/// second announced later would move TT of later UTC instants by 1 s.
pub const LEAP_TABLE_VALID_UNTIL: (i32, u32, u32) = (2026, 7, 1);

/// How to resolve a local time that occurs twice (DST overlap) or never (DST gap).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DstChoice {
    /// The earlier of the two candidate instants.
    Earlier,
    /// The later of the two candidate instants.
    Later,
}

/// A UTC calendar instant that can hold a leap second (`second_of_day` up to 86400.x).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UtcInstant {
    pub date: NaiveDate,
    pub second_of_day: f64,
}

/// The time scales the engine needs for one instant.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TimeScales {
    /// Julian day, UT1 (drives the Earth's rotation: houses, angles).
    pub jd_ut: f64,
    /// Julian day, Terrestrial Time (ephemeris argument, precession-nutation).
    pub jd_tt: f64,
}

impl TimeScales {
    /// TDB Julian day (TT plus the periodic term of USNO Circular 179 eq. 2.6).
    pub fn jd_tdb(&self) -> f64 {
        self.jd_tt + tdb_minus_tt_seconds(self.jd_tt) / SECONDS_PER_DAY
    }
    /// Build from a UT1 Julian day, deriving TT with the ΔT model.
    pub fn from_ut(jd_ut: f64) -> Self {
        TimeScales {
            jd_ut,
            jd_tt: jd_ut + delta_t_seconds(jd_ut) / SECONDS_PER_DAY,
        }
    }
    /// Build from a TT Julian day, deriving UT1 with the ΔT model.
    pub fn from_tt(jd_tt: f64) -> Self {
        TimeScales {
            jd_ut: jd_tt - delta_t_seconds(jd_tt) / SECONDS_PER_DAY,
            jd_tt,
        }
    }
}

pub fn tdb_minus_tt_seconds(jd_tt: f64) -> f64 {
    let t = (jd_tt - J2000) / 36525.0;
    0.001657 * (628.3076 * t + 6.2401).sin()
        + 0.000022 * (575.3385 * t + 4.2970).sin()
        + 0.000014 * (1256.6152 * t + 6.1969).sin()
        + 0.000005 * (606.9777 * t + 4.0212).sin()
        + 0.000005 * (52.9691 * t + 0.4444).sin()
        + 0.000002 * (21.3299 * t + 5.5431).sin()
        + 0.000010 * t * (628.3076 * t + 4.2490).sin()
}

fn jd_at_midnight(date: NaiveDate) -> f64 {
    f64::from(chrono::Datelike::num_days_from_ce(&date)) + JD_OF_CE_DAY_ZERO
}

fn date(ymd: (i32, u32, u32)) -> NaiveDate {
    // Constants above are valid dates; fall back to the epoch instead of panicking.
    NaiveDate::from_ymd_opt(ymd.0, ymd.1, ymd.2).unwrap_or_default()
}

struct DeltaTTable {
    first_year: f64,
    step_years: f64,
    values: Vec<f64>,
}

/// A plain decimal ("-12.3456"), parsed exactly like `str::parse::<f64>` (the digits
/// form an integer below 2^53 and the divisor is an exact power of ten) but without
/// its generic machinery; None for anything else.
fn parse_plain_decimal(field: &str) -> Option<f64> {
    const POWERS: [f64; 10] = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9];
    let (negative, digits) = match field.as_bytes().split_first()? {
        (b'-', rest) => (true, rest),
        _ => (false, field.as_bytes()),
    };
    let (mut mantissa, mut decimals, mut dot) = (0u64, 0usize, false);
    for &b in digits {
        match b {
            b'0'..=b'9' => {
                mantissa = mantissa.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
                decimals += usize::from(dot);
            }
            b'.' if !dot => dot = true,
            _ => return None,
        }
    }
    if digits.is_empty() || mantissa >= 1 << 53 {
        return None;
    }
    let value = mantissa as f64 / *POWERS.get(decimals)?;
    Some(if negative { -value } else { value })
}

fn delta_t_table() -> &'static DeltaTTable {
    static TABLE: OnceLock<DeltaTTable> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut years = Vec::with_capacity(4900);
        let mut values = Vec::with_capacity(4900);
        let parse = |s: &str| parse_plain_decimal(s).or_else(|| s.parse::<f64>().ok());
        for line in include_str!("../data/delta_t.txt").lines() {
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let mut parts = line.split(' ').filter(|p| !p.is_empty());
            let year = parts.next().and_then(parse);
            let value = parts.next().and_then(parse);
            if let (Some(y), Some(v)) = (year, value) {
                years.push(y);
                values.push(v);
            }
        }
        DeltaTTable {
            first_year: years[0],
            step_years: (years[years.len() - 1] - years[0]) / (years.len() - 1) as f64,
            values,
        }
    })
}

/// ΔT = TT − UT1 in seconds at the given Julian day (TT or UT: ΔT varies slowly).
pub fn delta_t_seconds(jd: f64) -> f64 {
    let table = delta_t_table();
    let year = 2000.0 + (jd - J2000) / 365.25;
    let position = ((year - table.first_year) / table.step_years).max(0.0);
    let last = table.values.len() - 2;
    let index = (position.floor() as usize).min(last);
    let fraction = position - index as f64;
    table.values[index] + (table.values[index + 1] - table.values[index]) * fraction
}

/// TAI−UTC on the given UTC date; None before 1972, when UTC as defined now did not exist.
/// After the table's last entry that entry's value holds (IERS/SOFA convention).
fn tai_minus_utc(day: NaiveDate) -> Option<f64> {
    // Compare (year, month) pairs: every table entry starts on the 1st of a month.
    let at = (chrono::Datelike::year(&day), chrono::Datelike::month(&day));
    if at < (1972, 1) {
        return None;
    }
    LEAP_SECONDS
        .iter()
        .rev()
        .find(|(y, m, _)| at >= (*y, *m))
        .map(|(_, _, s)| *s)
}

/// Whether a positive leap second (23:59:60) ends this UTC day.
pub fn has_leap_second(day: NaiveDate) -> bool {
    match (tai_minus_utc(day), day.succ_opt().and_then(tai_minus_utc)) {
        (Some(a), Some(b)) => b > a,
        _ => false,
    }
}

/// Append the `width` lowest decimal digits of `value` (≥ 0), zero-padded.
fn push_digits(text: &mut String, value: i64, width: u32) {
    for k in (0..width).rev() {
        let digit = (value / 10_i64.pow(k)) % 10;
        text.push(char::from(b'0' + digit as u8));
    }
}

impl UtcInstant {
    pub fn time_scales(&self) -> TimeScales {
        let jd_midnight = jd_at_midnight(self.date);
        match tai_minus_utc(self.date) {
            Some(leap) => {
                let jd_tt = jd_midnight + (self.second_of_day + leap + 32.184) / SECONDS_PER_DAY;
                TimeScales::from_tt(jd_tt)
            }
            None => {
                let jd_ut = jd_midnight + self.second_of_day / SECONDS_PER_DAY;
                TimeScales {
                    jd_ut,
                    jd_tt: jd_ut + delta_t_seconds(jd_ut) / SECONDS_PER_DAY,
                }
            }
        }
    }

    /// RFC 3339 in UTC, millisecond precision, `:60` for a leap second.
    pub fn to_rfc3339(&self) -> String {
        let millis = (self.second_of_day * 1000.0).round() as i64;
        let (h, rest) = (millis / 3_600_000, millis % 3_600_000);
        let (mut h, mut m, s_ms) = (h, rest / 60_000, rest % 60_000);
        let mut s = s_ms / 1000;
        if millis >= 86_400_000 {
            // Inside the leap second.
            h = 23;
            m = 59;
            s = 60;
        }
        let ms = s_ms % 1000;
        let year = chrono::Datelike::year(&self.date);
        if !(0..=9999).contains(&year) {
            let frac = if ms == 0 {
                String::new()
            } else {
                format!(".{ms:03}")
            };
            return format!(
                "{}T{h:02}:{m:02}:{s:02}{frac}Z",
                self.date.format("%Y-%m-%d")
            );
        }
        // Hand-formatted (this runs once per chart; `format!` with chrono's
        // `%Y-%m-%d` costs about a microsecond).
        let month = i64::from(chrono::Datelike::month(&self.date));
        let day = i64::from(chrono::Datelike::day(&self.date));
        let mut text = String::with_capacity(24);
        push_digits(&mut text, i64::from(year), 4);
        for (separator, value) in [('-', month), ('-', day), ('T', h), (':', m), (':', s)] {
            text.push(separator);
            push_digits(&mut text, value, 2);
        }
        if ms != 0 {
            text.push('.');
            push_digits(&mut text, ms, 3);
        }
        text.push('Z');
        text
    }

    fn from_naive_utc(dt: NaiveDateTime) -> Self {
        let t = dt.time();
        let secs = chrono::Timelike::num_seconds_from_midnight(&t);
        let nanos = chrono::Timelike::nanosecond(&t);
        UtcInstant {
            date: dt.date(),
            second_of_day: f64::from(secs) + f64::from(nanos) * 1e-9,
        }
    }

    /// Whether the instant lies in the supported range.
    fn in_range(&self) -> bool {
        self.date >= date(RANGE_START) && self.date < date(RANGE_END)
    }
}

/// Supported civil range as (start inclusive, end exclusive) RFC 3339 strings.
pub fn supported_range_text() -> (String, String) {
    (
        format!("{}T00:00:00Z", date(RANGE_START).format("%Y-%m-%d")),
        format!("{}T00:00:00Z", date(RANGE_END).format("%Y-%m-%d")),
    )
}

/// A parsed `datetime` string: wall-clock fields plus an optional explicit offset.
struct ParsedDateTime {
    local: NaiveDateTime,
    /// Seconds field was 60 (a leap second, valid only at 23:59:60 UTC).
    leap: bool,
    offset_seconds: Option<i32>,
}

fn datetime_error(message: impl Into<String>) -> AstroError {
    AstroError::InvalidDatetime {
        message: message.into(),
    }
}

const DATETIME_FORMS: &str = "expected \"YYYY-MM-DDTHH:MM[:SS[.fff]]\" with `timezone` or `utc_offset`, or an RFC 3339 instant such as \"1990-05-17T14:30:00Z\" / \"1990-05-17T14:30:00+02:00\"";

/// Parse "+05:30" / "-08:00" / "Z" into seconds east of Greenwich.
pub fn parse_utc_offset(text: &str) -> Option<i32> {
    if text == "Z" || text == "z" {
        return Some(0);
    }
    let bytes = text.as_bytes();
    if bytes.len() != 6 || bytes[3] != b':' {
        return None;
    }
    let sign = match bytes[0] {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let hours: i32 = text.get(1..3)?.parse().ok()?;
    let minutes: i32 = text.get(4..6)?.parse().ok()?;
    if hours > 18 || minutes > 59 {
        return None;
    }
    Some(sign * (hours * 3600 + minutes * 60))
}

/// Fast path for the canonical "YYYY-MM-DD" (chrono's format parser, the fallback,
/// costs about a microsecond); None if the text is not exactly that shape or no such day.
fn parse_iso_date(text: &str) -> Option<NaiveDate> {
    let b = text.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let number = |digits: &[u8]| {
        digits.iter().try_fold(0u32, |acc, &d| {
            d.is_ascii_digit().then(|| acc * 10 + u32::from(d - b'0'))
        })
    };
    let year = i32::try_from(number(&b[0..4])?).ok()?;
    NaiveDate::from_ymd_opt(year, number(&b[5..7])?, number(&b[8..10])?)
}

fn parse_datetime(text: &str) -> Result<ParsedDateTime, AstroError> {
    let text = text.trim();
    // Split off a trailing Z or ±HH:MM offset.
    let (body, offset_seconds) = if let Some(stripped) = text.strip_suffix(['Z', 'z']) {
        (stripped, Some(0))
    } else if text.len() > 16 && matches!(text.as_bytes()[text.len() - 6], b'+' | b'-') {
        let (b, o) = text.split_at(text.len() - 6);
        let offset = parse_utc_offset(o)
            .ok_or_else(|| datetime_error(format!("bad UTC offset {o:?}; {DATETIME_FORMS}")))?;
        (b, Some(offset))
    } else {
        (text, None)
    };
    let (date_part, time_part) = body
        .split_once(['T', 't', ' '])
        .ok_or_else(|| datetime_error(format!("{text:?} has no time part; {DATETIME_FORMS}")))?;
    let day = parse_iso_date(date_part)
        .map_or_else(|| NaiveDate::parse_from_str(date_part, "%Y-%m-%d"), Ok);
    let day = day.map_err(|_| {
        datetime_error(format!(
            "{date_part:?} is not a valid date; {DATETIME_FORMS}"
        ))
    })?;
    let fields: Vec<&str> = time_part.split(':').collect();
    if !(2..=3).contains(&fields.len()) {
        return Err(datetime_error(format!(
            "{time_part:?} is not HH:MM[:SS]; {DATETIME_FORMS}"
        )));
    }
    let number = |s: &str| -> Result<u32, AstroError> {
        if s.len() != 2 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(datetime_error(format!(
                "{time_part:?} is not HH:MM[:SS]; {DATETIME_FORMS}"
            )));
        }
        s.parse::<u32>().map_err(|_| datetime_error(DATETIME_FORMS))
    };
    let hour = number(fields[0])?;
    let minute = number(fields[1])?;
    let (second, nanos) = match fields.get(2) {
        None => (0, 0),
        Some(sec) => {
            let (whole, frac) = sec.split_once('.').unwrap_or((sec, ""));
            let second = number(whole)?;
            if frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
                return Err(datetime_error(format!(
                    "bad fractional seconds in {time_part:?}"
                )));
            }
            let nanos = if frac.is_empty() {
                0
            } else {
                format!("{frac:0<9}").parse::<u32>().unwrap_or(0)
            };
            (second, nanos)
        }
    };
    let leap = second == 60;
    let time = NaiveTime::from_hms_nano_opt(hour, minute, if leap { 59 } else { second }, nanos)
        .ok_or_else(|| datetime_error(format!("{time_part:?} is not a valid time of day")))?;
    Ok(ParsedDateTime {
        local: day.and_time(time),
        leap,
        offset_seconds,
    })
}

/// Resolve the chart's `datetime` (+ `timezone` / `utc_offset` / `dst`) to a UTC instant.
pub fn resolve_civil_time(
    datetime: &str,
    timezone: Option<&str>,
    utc_offset: Option<&str>,
    dst: Option<DstChoice>,
) -> Result<UtcInstant, AstroError> {
    let parsed = parse_datetime(datetime)?;
    let explicit_offset = match (parsed.offset_seconds, timezone, utc_offset) {
        (_, Some(_), Some(_)) => {
            return Err(AstroError::ConflictingTimezone {
                message: "pass either `timezone` or `utc_offset`, not both".into(),
            });
        }
        // An instant with an offset may also name a zone or offset, if they agree on it.
        (Some(o), Some(_), None) | (Some(o), None, Some(_)) => {
            check_offset_agrees(o, parsed.local, timezone, utc_offset)?;
            Some(o)
        }
        (Some(o), None, None) => Some(o),
        (None, None, Some(text)) => {
            Some(
                parse_utc_offset(text).ok_or_else(|| AstroError::InvalidUtcOffset {
                    given: text.to_string(),
                })?,
            )
        }
        (None, Some(_), None) => None,
        (None, None, None) => return Err(AstroError::MissingTimezone),
    };
    let utc_naive = match (explicit_offset, timezone) {
        (Some(offset), _) => parsed.local - chrono::Duration::seconds(i64::from(offset)),
        (None, Some(name)) => {
            let tz: Tz = name.parse().map_err(|_| AstroError::UnknownTimezone {
                given: name.to_string(),
            })?;
            local_to_utc(&tz, name, parsed.local, dst)?
        }
        (None, None) => return Err(AstroError::MissingTimezone),
    };
    let mut instant = UtcInstant::from_naive_utc(utc_naive);
    if parsed.leap {
        let is_2359 =
            chrono::Timelike::hour(&utc_naive) == 23 && chrono::Timelike::minute(&utc_naive) == 59;
        if !(is_2359 && has_leap_second(instant.date)) {
            return Err(datetime_error(format!(
                "second 60 is only valid at 23:59:60 UTC on a day that ends with a leap second; {datetime:?} is not one"
            )));
        }
        instant.second_of_day += 1.0;
    }
    if !instant.in_range() {
        let (start, end) = supported_range_text();
        return Err(AstroError::DateOutOfRange {
            given: instant.to_rfc3339(),
            start,
            end,
        });
    }
    Ok(instant)
}

/// Refuses a `timezone` or `utc_offset` whose offset at the instant differs from the one the
/// `datetime` carries (e.g. "…Z" with "Europe/Paris"); an agreeing one is redundant and fine.
fn check_offset_agrees(
    carried: i32,
    local: NaiveDateTime,
    timezone: Option<&str>,
    utc_offset: Option<&str>,
) -> Result<(), AstroError> {
    let utc = local - chrono::Duration::seconds(i64::from(carried));
    let (named, other) = match (timezone, utc_offset) {
        (Some(name), _) => {
            let tz: Tz = name.parse().map_err(|_| AstroError::UnknownTimezone {
                given: name.to_string(),
            })?;
            let offset = tz.offset_from_utc_datetime(&utc).fix().local_minus_utc();
            (format!("timezone {name:?}"), offset)
        }
        (None, Some(text)) => {
            let offset = parse_utc_offset(text).ok_or_else(|| AstroError::InvalidUtcOffset {
                given: text.to_string(),
            })?;
            (format!("utc_offset {text:?}"), offset)
        }
        (None, None) => return Ok(()),
    };
    if other == carried {
        return Ok(());
    }
    Err(AstroError::ConflictingTimezone {
        message: format!(
            "`datetime` carries the offset {}, but {named} is at {} then; omit one or make them agree",
            offset_text(carried),
            offset_text(other)
        ),
    })
}

fn offset_text(seconds: i32) -> String {
    let sign = if seconds < 0 { '-' } else { '+' };
    let minutes = seconds.unsigned_abs() / 60;
    format!("{sign}{:02}:{:02}", minutes / 60, minutes % 60)
}

fn local_to_utc(
    tz: &Tz,
    name: &str,
    local: NaiveDateTime,
    dst: Option<DstChoice>,
) -> Result<NaiveDateTime, AstroError> {
    let to_utc = |offset_seconds: i32| local - chrono::Duration::seconds(i64::from(offset_seconds));
    let offset_of = |dt: &chrono::DateTime<Tz>| dt.offset().fix().local_minus_utc();
    match tz.from_local_datetime(&local) {
        LocalResult::Single(dt) => Ok(dt.naive_utc()),
        LocalResult::Ambiguous(a, b) => {
            let (x, y) = (a.naive_utc(), b.naive_utc());
            let (earlier, later) = if x <= y { (x, y) } else { (y, x) };
            match dst {
                Some(DstChoice::Earlier) => Ok(earlier),
                Some(DstChoice::Later) => Ok(later),
                None => Err(AstroError::AmbiguousLocalTime {
                    local: local.format("%Y-%m-%dT%H:%M:%S").to_string(),
                    timezone: name.to_string(),
                    earlier: format!("{}Z", earlier.format("%Y-%m-%dT%H:%M:%S")),
                    later: format!("{}Z", later.format("%Y-%m-%dT%H:%M:%S")),
                }),
            }
        }
        LocalResult::None => {
            // In a gap: read the wall clock with the offsets in force just before and after it.
            let probe = chrono::Duration::hours(6);
            let before = tz.from_local_datetime(&(local - probe)).earliest();
            let after = tz.from_local_datetime(&(local + probe)).latest();
            let (Some(before), Some(after)) = (before, after) else {
                return Err(datetime_error(format!(
                    "{local} does not exist in {name} and its neighbouring offsets could not be determined"
                )));
            };
            let (x, y) = (to_utc(offset_of(&before)), to_utc(offset_of(&after)));
            let (earlier, later) = if x <= y { (x, y) } else { (y, x) };
            match dst {
                Some(DstChoice::Earlier) => Ok(earlier),
                Some(DstChoice::Later) => Ok(later),
                None => Err(AstroError::NonexistentLocalTime {
                    local: local.format("%Y-%m-%dT%H:%M:%S").to_string(),
                    timezone: name.to_string(),
                    earlier: format!("{}Z", earlier.format("%Y-%m-%dT%H:%M:%S")),
                    later: format!("{}Z", later.format("%Y-%m-%dT%H:%M:%S")),
                }),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(
        dt: &str,
        tz: Option<&str>,
        off: Option<&str>,
        dst: Option<DstChoice>,
    ) -> Result<String, AstroError> {
        resolve_civil_time(dt, tz, off, dst).map(|u| u.to_rfc3339())
    }

    #[test]
    fn new_york_spring_gap_names_both_instants() {
        let err = resolve("2021-03-14T02:30", Some("America/New_York"), None, None).unwrap_err();
        match &err {
            AstroError::NonexistentLocalTime { earlier, later, .. } => {
                assert_eq!(earlier, "2021-03-14T06:30:00Z");
                assert_eq!(later, "2021-03-14T07:30:00Z");
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(err.field(), Some("datetime"));
        assert!(err.to_string().contains("dst"));
        assert_eq!(
            resolve(
                "2021-03-14T02:30",
                Some("America/New_York"),
                None,
                Some(DstChoice::Later)
            )
            .unwrap(),
            "2021-03-14T07:30:00Z"
        );
    }

    #[test]
    fn new_york_autumn_overlap() {
        let err = resolve("2021-11-07T01:30", Some("America/New_York"), None, None).unwrap_err();
        match err {
            AstroError::AmbiguousLocalTime { earlier, later, .. } => {
                assert_eq!(earlier, "2021-11-07T05:30:00Z");
                assert_eq!(later, "2021-11-07T06:30:00Z");
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(
            resolve(
                "2021-11-07T01:30",
                Some("America/New_York"),
                None,
                Some(DstChoice::Earlier)
            )
            .unwrap(),
            "2021-11-07T05:30:00Z"
        );
    }

    #[test]
    fn london_gap_and_overlap() {
        assert!(matches!(
            resolve("2023-03-26T01:15", Some("Europe/London"), None, None),
            Err(AstroError::NonexistentLocalTime { .. })
        ));
        assert!(matches!(
            resolve("2023-10-29T01:15", Some("Europe/London"), None, None),
            Err(AstroError::AmbiguousLocalTime { .. })
        ));
        assert_eq!(
            resolve(
                "2023-10-29T01:15",
                Some("Europe/London"),
                None,
                Some(DstChoice::Later)
            )
            .unwrap(),
            "2023-10-29T01:15:00Z"
        );
        assert_eq!(
            resolve("2023-07-01T12:00", Some("Europe/London"), None, None).unwrap(),
            "2023-07-01T11:00:00Z"
        );
    }

    #[test]
    fn offsets_and_instants() {
        assert_eq!(
            resolve("1990-05-17T14:30", None, Some("+05:30"), None).unwrap(),
            "1990-05-17T09:00:00Z"
        );
        assert_eq!(
            resolve("1990-05-17T14:30:15.250+02:00", None, None, None).unwrap(),
            "1990-05-17T12:30:15.250Z"
        );
        assert!(matches!(
            resolve("1990-05-17T14:30", None, Some("+5:30"), None),
            Err(AstroError::InvalidUtcOffset { .. })
        ));
        assert!(matches!(
            resolve("1990-05-17T14:30", None, None, None),
            Err(AstroError::MissingTimezone)
        ));
        assert!(matches!(
            resolve("1990-05-17T14:30Z", Some("Europe/Paris"), None, None),
            Err(AstroError::ConflictingTimezone { .. })
        ));
        // A zone or offset that agrees with the instant's own offset is redundant, not a conflict.
        for (datetime, zone, offset) in [
            ("1990-05-17T14:30Z", Some("UTC"), None),
            ("1990-05-17T16:30+02:00", Some("Europe/Paris"), None),
            ("1990-05-17T14:30Z", None, Some("+00:00")),
            ("1990-05-17T16:30+02:00", None, Some("+02:00")),
        ] {
            assert_eq!(
                resolve(datetime, zone, offset, None).unwrap(),
                "1990-05-17T14:30:00Z",
                "{datetime} {zone:?} {offset:?}"
            );
        }
        let Err(AstroError::ConflictingTimezone { message }) =
            resolve("1990-01-17T16:30+02:00", Some("Europe/Paris"), None, None)
        else {
            panic!("winter Paris is +01:00")
        };
        assert!(
            message.contains("+02:00") && message.contains("+01:00"),
            "{message}"
        );
        assert!(matches!(
            resolve("1990-05-17T14:30Z", None, Some("+01:00"), None),
            Err(AstroError::ConflictingTimezone { .. })
        ));
        assert!(matches!(
            resolve("1990-05-17T14:30", Some("Mars/Olympus"), None, None),
            Err(AstroError::UnknownTimezone { .. })
        ));
        assert!(matches!(
            resolve("1990-13-17T14:30Z", None, None, None),
            Err(AstroError::InvalidDatetime { .. })
        ));
        assert!(matches!(
            resolve("1799-12-31T23:59:59Z", None, None, None),
            Err(AstroError::DateOutOfRange { .. })
        ));
        assert!(matches!(
            resolve("2200-01-01T00:00:00Z", None, None, None),
            Err(AstroError::DateOutOfRange { .. })
        ));
        assert!(resolve("1800-01-01T00:00:00Z", None, None, None).is_ok());
    }

    #[test]
    fn leap_second_boundaries() {
        let at = |s: &str| {
            resolve_civil_time(s, None, None, None)
                .unwrap()
                .time_scales()
                .jd_tt
        };
        let sec = 1.0 / 86400.0;
        // TT advances by exactly one second across 23:59:59 → 23:59:60 → 00:00:00.
        let a = at("2016-12-31T23:59:59Z");
        let b = at("2016-12-31T23:59:60Z");
        let c = at("2017-01-01T00:00:00Z");
        assert!(((b - a) / sec - 1.0).abs() < 1e-4);
        assert!(((c - b) / sec - 1.0).abs() < 1e-4);
        // TT − UTC = 69.184 s after 2017, 32.184 + 10 s in early 1972.
        let tt_minus_utc = |s: &str, utc_jd: f64| (at(s) - utc_jd) * 86400.0;
        assert!((tt_minus_utc("2017-01-01T00:00:00Z", 2457754.5) - 69.184).abs() < 1e-4);
        assert!((tt_minus_utc("1972-01-01T00:00:00Z", 2441317.5) - 42.184).abs() < 1e-4);
        assert_eq!(
            resolve_civil_time("2016-12-31T23:59:60Z", None, None, None)
                .unwrap()
                .to_rfc3339(),
            "2016-12-31T23:59:60Z"
        );
        // No leap second at the end of 2017.
        assert!(resolve_civil_time("2017-12-31T23:59:60Z", None, None, None).is_err());
        // A local leap second with an offset maps to 23:59:60 UTC.
        assert!(resolve_civil_time("2017-01-01T00:59:60+01:00", None, None, None).is_ok());
    }

    #[test]
    fn delta_t_model_is_continuous_at_1972() {
        // Where UTC starts, civil-as-UT1 and the leap-second table agree to < 0.2 s.
        let day = date((1972, 1, 1));
        let inside = UtcInstant {
            date: day,
            second_of_day: 1.0,
        }
        .time_scales();
        let outside = UtcInstant {
            date: day.pred_opt().unwrap(),
            second_of_day: 86399.0,
        }
        .time_scales();
        let gap = (inside.jd_tt - outside.jd_tt) * 86400.0 - 2.0;
        assert!(gap.abs() < 0.2, "1972-01: {gap}");
    }

    #[test]
    fn after_the_last_leap_second_tt_is_utc_plus_69_184_s() {
        // IERS/SOFA/skyfield/SE convention: the last TAI−UTC (37 s) holds indefinitely and UT1
        // follows from the ΔT model. (Until 2026-11 the engine switched to UTC-as-UT1 at
        // LEAP_TABLE_VALID_UNTIL, which put TT 152 s off by 2200.)
        for (text, utc_jd) in [
            ("2017-01-01T00:00:00Z", 2457754.5),
            ("2026-07-01T00:00:00Z", 2461222.5),
            ("2049-06-15T12:00:00Z", 2469608.0),
            ("2199-12-31T12:00:00Z", 2524593.0),
        ] {
            let t = resolve_civil_time(text, None, None, None)
                .unwrap()
                .time_scales();
            let tt_minus_utc = (t.jd_tt - utc_jd) * SECONDS_PER_DAY;
            assert!(
                (tt_minus_utc - 69.184).abs() < 1e-4,
                "{text}: {tt_minus_utc}"
            );
            let delta_t = (t.jd_tt - t.jd_ut) * SECONDS_PER_DAY;
            assert!((delta_t - delta_t_seconds(t.jd_tt)).abs() < 1e-4, "{text}");
        }
        // No step where the leap table's confirmed span ends: TT advances 2 s in 2 s of UTC.
        let day = date(LEAP_TABLE_VALID_UNTIL);
        let before = UtcInstant {
            date: day.pred_opt().unwrap(),
            second_of_day: 86399.0,
        };
        let after = UtcInstant {
            date: day,
            second_of_day: 1.0,
        };
        let step = (after.time_scales().jd_tt - before.time_scales().jd_tt) * SECONDS_PER_DAY;
        assert!((step - 2.0).abs() < 1e-4, "{step}");
        assert!(!has_leap_second(date((2030, 12, 31))));
    }

    #[test]
    fn plain_decimals_parse_like_str_parse() {
        for text in include_str!("../data/delta_t.txt").split_whitespace() {
            if let Ok(expected) = text.parse::<f64>() {
                assert_eq!(parse_plain_decimal(text), Some(expected), "{text}");
            }
        }
        for text in [
            "0",
            "-0.5",
            "123.4567",
            "1e3",
            "",
            "-",
            "1.2.3",
            "9007199254740993",
        ] {
            if let Some(v) = parse_plain_decimal(text) {
                assert_eq!(Ok(v), text.parse::<f64>(), "{text}");
            }
        }
    }

    #[test]
    fn delta_t_values_are_plausible() {
        assert!((delta_t_seconds(J2000) - 63.83).abs() < 0.1);
        assert!((delta_t_seconds(2378496.5) - 18.4).abs() < 1.5);
    }
}
