//! When a failed delivery is tried again: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h after each
//! failure, each ±20 % jitter so endpoints recovering from an outage are not hit by every
//! retry at once; a `Retry-After` from a 429/503 is honoured instead (never sooner than asked).
//! SQS caps a message's hidden time at 12 h, which bounds every delay.

use std::time::Duration;

/// Delay before retry *n* (index 0 follows the first failed attempt).
pub const RETRY_DELAYS: [Duration; 7] = [
    Duration::from_secs(5),
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(5 * 3600),
    Duration::from_secs(10 * 3600),
    Duration::from_secs(10 * 3600),
];

/// Attempts in all: the first one and one per delay.
pub const MAX_ATTEMPTS: u32 = RETRY_DELAYS.len() as u32 + 1;

/// The share of a delay that jitter may add or remove.
pub const JITTER: f64 = 0.2;

/// The most a message can stay hidden (SQS `ChangeMessageVisibility`).
pub const MAX_DELAY: Duration = Duration::from_secs(12 * 3600);

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum NextStep {
    /// Try again after this long.
    RetryAfter(Duration),
    /// That was the last attempt: the message goes to the dead-letter queue.
    GiveUp,
}

/// The next step after attempt number `attempt` (1-based) failed. `unit` is a uniform random
/// number in [0, 1) that places the delay within ±20 %; `retry_after` is the endpoint's own
/// `Retry-After` (429/503), which wins when it asks for longer.
pub fn next_step(attempt: u32, unit: f64, retry_after: Option<Duration>) -> NextStep {
    let Some(base) = attempt
        .checked_sub(1)
        .and_then(|index| RETRY_DELAYS.get(index as usize))
    else {
        return NextStep::GiveUp;
    };
    let factor = 1.0 - JITTER + 2.0 * JITTER * unit.clamp(0.0, 1.0);
    let jittered = base.mul_f64(factor);
    let delay = match retry_after {
        Some(asked) if asked > jittered => asked,
        _ => jittered,
    };
    NextStep::RetryAfter(delay.min(MAX_DELAY))
}

/// Parses a `Retry-After` header: delay-seconds, or an HTTP date (RFC 9110 §10.2.3).
pub fn parse_retry_after(value: &str, now: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let seconds = (at.with_timezone(&chrono::Utc) - now).num_seconds();
    Some(Duration::from_secs(u64::try_from(seconds).unwrap_or(0)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn delay(step: NextStep) -> Duration {
        match step {
            NextStep::RetryAfter(delay) => delay,
            NextStep::GiveUp => panic!("gave up"),
        }
    }

    #[test]
    fn the_schedule_without_jitter_is_the_documented_one() {
        let expected = [5, 300, 1800, 7200, 18_000, 36_000, 36_000];
        for (attempt, seconds) in (1..).zip(expected) {
            // unit 0.5 is the midpoint: no jitter.
            assert_eq!(
                delay(next_step(attempt, 0.5, None)),
                Duration::from_secs(seconds),
                "after attempt {attempt}"
            );
        }
        assert_eq!(next_step(8, 0.5, None), NextStep::GiveUp);
        assert_eq!(next_step(0, 0.5, None), NextStep::GiveUp);
        assert_eq!(MAX_ATTEMPTS, 8);
    }

    #[test]
    fn jitter_stays_within_twenty_percent() {
        for attempt in 1..=7 {
            let base = RETRY_DELAYS[attempt as usize - 1];
            let low = delay(next_step(attempt, 0.0, None));
            let high = delay(next_step(attempt, 0.999_999, None));
            assert_eq!(low, base.mul_f64(0.8));
            assert!(high <= base.mul_f64(1.2) && high > base.mul_f64(1.19));
            // Out-of-range randomness is clamped, never a negative or huge delay.
            assert_eq!(delay(next_step(attempt, -3.0, None)), low);
            assert!(delay(next_step(attempt, 7.0, None)) <= base.mul_f64(1.2));
        }
    }

    #[test]
    fn retry_after_is_honoured_when_longer_and_capped_at_twelve_hours() {
        let asked = Duration::from_secs(120);
        assert_eq!(delay(next_step(1, 0.5, Some(asked))), asked);
        // Shorter than the schedule: the schedule wins.
        assert_eq!(
            delay(next_step(3, 0.5, Some(asked))),
            Duration::from_secs(1800)
        );
        assert_eq!(
            delay(next_step(1, 0.5, Some(Duration::from_secs(86_400)))),
            MAX_DELAY
        );
        assert_eq!(next_step(8, 0.5, Some(asked)), NextStep::GiveUp);
    }

    #[test]
    fn retry_after_headers_parse_as_seconds_or_dates() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-11-29T12:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        assert_eq!(
            parse_retry_after(" 120 ", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Sun, 29 Nov 2026 12:01:30 GMT", now),
            Some(Duration::from_secs(90))
        );
        assert_eq!(
            parse_retry_after("Sun, 29 Nov 2026 11:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-5", now), None);
    }
}
