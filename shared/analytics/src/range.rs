//! The query parameters every report shares: a time range (`from`, `to`) and the export format.

use chrono::{DateTime, Datelike as _, Duration as ChronoDuration, NaiveDate, Utc};
use orrery::ApiError;
use orrery::error::FieldError;

use crate::export::Format;

/// A report's range, `[from, to)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

/// An RFC 3339 time, or a UTC date (its start).
pub fn parse_time(field: &str, text: &str) -> Result<DateTime<Utc>, FieldError> {
    let text = text.trim();
    let at = DateTime::parse_from_rfc3339(text)
        .map(|at| at.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .ok()
                .and_then(|day| day.and_hms_opt(0, 0, 0))
                .map(|at| at.and_utc())
        })
        .ok_or_else(|| FieldError::new(field, "must be an RFC 3339 time or a date (YYYY-MM-DD)"))?;
    // Arithmetic on the range stays far from chrono's limits.
    if !(1970..=9999).contains(&at.year()) {
        return Err(FieldError::new(
            field,
            "must be between the years 1970 and 9999",
        ));
    }
    Ok(at)
}

/// `from`/`to` as given (each defaulting: `to` to `now`, `from` to `default_span` before `to`),
/// checked: `from` before `to`, at most `max_days` apart. Field errors are added to `errors`.
pub fn parse_range(
    from: Option<&str>,
    to: Option<&str>,
    now: DateTime<Utc>,
    default_span: ChronoDuration,
    max_days: i64,
    errors: &mut Vec<FieldError>,
) -> Option<Range> {
    // An empty value is an absent one (`?from=&to=` from a form).
    let (from, to) = (
        from.filter(|text| !text.trim().is_empty()),
        to.filter(|text| !text.trim().is_empty()),
    );
    let to = match to {
        Some(text) => parse_time("to", text).map_err(|e| errors.push(e)).ok(),
        None => Some(now),
    };
    let from = match from {
        Some(text) => parse_time("from", text).map_err(|e| errors.push(e)).ok(),
        None => to.map(|to| to - default_span),
    };
    let (from, to) = (from?, to?);
    if from >= to {
        errors.push(FieldError::new("from", "must be before to"));
        return None;
    }
    if to - from > ChronoDuration::days(max_days) {
        errors.push(FieldError::new(
            "from",
            format!("the range may span at most {max_days} days here"),
        ));
        return None;
    }
    Some(Range { from, to })
}

/// The export format: `?format=` wins over `Accept`.
pub fn parse_format(
    format: Option<&str>,
    accept: Option<&str>,
    errors: &mut Vec<FieldError>,
) -> Format {
    Format::negotiate(format, accept).unwrap_or_else(|message| {
        errors.push(FieldError::new("format", message));
        Format::Json
    })
}

/// `Ok(value)` when no field error was found, else the 422 listing them all.
pub fn checked<T>(value: Option<T>, errors: Vec<FieldError>) -> Result<T, ApiError> {
    match value {
        Some(value) if errors.is_empty() => Ok(value),
        _ => Err(ApiError::Validation(errors)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_dates_within_the_supported_years() {
        assert_eq!(
            parse_time("from", "2026-12-02").unwrap().to_rfc3339(),
            "2026-12-02T00:00:00+00:00"
        );
        assert!(parse_time("from", "2026-12-02T10:00:00+02:00").is_ok());
        for bad in ["+262143-01-01", "0001-01-01", "yesterday", "2026-13-01", ""] {
            assert!(parse_time("from", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ranges_are_ordered_and_bounded() {
        let now = parse_time("to", "2026-12-02").unwrap();
        let mut errors = Vec::new();
        let range = parse_range(None, None, now, ChronoDuration::days(7), 90, &mut errors).unwrap();
        assert_eq!(range.to - range.from, ChronoDuration::days(7));
        assert!(
            parse_range(
                Some("2026-12-02"),
                Some("2026-12-01"),
                now,
                ChronoDuration::days(7),
                90,
                &mut errors
            )
            .is_none()
        );
        assert!(
            parse_range(
                Some("2020-01-01"),
                None,
                now,
                ChronoDuration::days(7),
                90,
                &mut errors
            )
            .is_none()
        );
        assert_eq!(errors.len(), 2);
    }
}
