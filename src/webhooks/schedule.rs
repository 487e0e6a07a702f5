//! What follows one delivery attempt: delivered, try again when, give up, or the endpoint
//! is gone. Pure: the answer, the position in the schedule, the time and the jitter are
//! passed in, so every rule is tested here without a receiver or a clock.
//!
//! Standard Webhooks' schedule: an attempt immediately, then after 5 seconds, 5 minutes,
//! 30 minutes, 2 hours, 5 hours, 10 hours and 10 hours: 8 attempts over about 27.6 hours.

use std::time::Duration;

use time::OffsetDateTime;

use super::client::{DeliveryError, DeliveryOutcome, MAX_RETRY_AFTER};
use crate::store::AttemptOutcome;

/// The waits after each failed attempt, per the specification.
pub const DEFAULT_WAITS: [Duration; 7] = [
    Duration::from_secs(5),
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(5 * 3600),
    Duration::from_secs(10 * 3600),
    Duration::from_secs(10 * 3600),
];

/// Each wait is stretched or shrunk by up to this fraction (±10%). When a receiver is down,
/// every delivery queued meanwhile fails within the same seconds; without jitter they would
/// all come back at the same instant, step after step, as a burst on a receiver that has
/// just recovered. ±10% spreads a burst of failures over a fifth of the wait (a minute of
/// the 5-minute step, two hours of the 10-hour one) while keeping the schedule recognisable.
pub const JITTER: f64 = 0.10;

/// The statuses whose `Retry-After` is honoured (RFC 9110 §10.2.3 names 503 and the 3xx;
/// 429 is RFC 6585's; gateways send it with 502 and 504).
const RETRY_AFTER_STATUSES: [u16; 4] = [429, 502, 503, 504];

/// The waits between attempts; the first attempt is immediate, so a schedule of `n`
/// waits makes `n + 1` attempts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySchedule {
    waits: Vec<Duration>,
}

impl Default for RetrySchedule {
    fn default() -> RetrySchedule {
        RetrySchedule {
            waits: DEFAULT_WAITS.to_vec(),
        }
    }
}

/// Why a schedule was refused (`CONSENTRY_WEBHOOK_RETRY_SCHEDULE`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("must list 1 to {MAX_WAITS} waits, e.g. 5s,5m,30m,2h,5h,10h,10h")]
    Count,
    #[error("'{0}' is not a duration like 5s, 30m or 10h")]
    NotADuration(String),
    #[error("each wait must be between 1s and 1d, not '{0}'")]
    OutOfRange(String),
}

/// More waits than this would keep a delivery retrying for weeks.
const MAX_WAITS: usize = 20;

impl RetrySchedule {
    /// Comma-separated waits, e.g. `5s,5m,30m,2h,5h,10h,10h` (the default).
    pub fn parse(raw: &str) -> Result<RetrySchedule, ScheduleError> {
        let parts: Vec<&str> = raw
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .collect();
        if parts.is_empty() || parts.len() > MAX_WAITS {
            return Err(ScheduleError::Count);
        }
        let waits = parts
            .iter()
            .map(|part| {
                let wait = crate::config::parse_duration(part)
                    .map_err(|_| ScheduleError::NotADuration((*part).to_owned()))?;
                if wait < Duration::from_secs(1) || wait > Duration::from_secs(86_400) {
                    return Err(ScheduleError::OutOfRange((*part).to_owned()));
                }
                Ok(wait)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(RetrySchedule { waits })
    }

    /// Attempts before giving up.
    pub fn attempts(&self) -> usize {
        self.waits.len() + 1
    }

    pub fn waits(&self) -> &[Duration] {
        &self.waits
    }

    /// What follows an attempt that got `answer`, the attempt being number `step + 1` since
    /// the delivery was (re)queued and ending `now`. `jitter` is uniform in [0, 1).
    pub fn after_attempt(
        &self,
        step: i64,
        answer: &Result<DeliveryOutcome, DeliveryError>,
        now: OffsetDateTime,
        jitter: f64,
    ) -> AttemptOutcome {
        let retry_after = match answer {
            Ok(outcome) if outcome.is_success() => return AttemptOutcome::Delivered,
            // 410 before the schedule: the receiver asked us to stop, not to retry.
            Ok(outcome) if outcome.is_gone() => return AttemptOutcome::EndpointGone,
            Ok(outcome) if RETRY_AFTER_STATUSES.contains(&outcome.status) => outcome.retry_after,
            // A 3xx, another 4xx or 5xx, or no answer: a failure, on the schedule.
            _ => None,
        };
        let Some(wait) = usize::try_from(step)
            .ok()
            .and_then(|step| self.waits.get(step))
        else {
            return AttemptOutcome::GaveUp;
        };
        AttemptOutcome::RetryAt(now + next_wait(*wait, retry_after, jitter))
    }
}

/// The wait before the next attempt: the schedule's step, jittered ±`JITTER`; or, when
/// the receiver sent `Retry-After`, never less than it asks (capped at the longest step of
/// the specification's schedule, 10 hours), jittered upwards only, since "not before" is
/// what it asked.
fn next_wait(step: Duration, retry_after: Option<Duration>, jitter: f64) -> Duration {
    let jitter = jitter.clamp(0.0, 1.0);
    let scheduled = step.mul_f64(1.0 + JITTER * (2.0 * jitter - 1.0));
    match retry_after {
        Some(asked) => scheduled.max(asked.min(MAX_RETRY_AFTER).mul_f64(1.0 + JITTER * jitter)),
        None => scheduled,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: OffsetDateTime = time::macros::datetime!(2026-11-30 12:00:00 UTC);

    fn answered(status: u16, retry_after: Option<u64>) -> Result<DeliveryOutcome, DeliveryError> {
        Ok(DeliveryOutcome {
            status,
            retry_after: retry_after.map(Duration::from_secs),
            elapsed: Duration::from_millis(20),
        })
    }

    fn wait_of(outcome: AttemptOutcome) -> Duration {
        match outcome {
            AttemptOutcome::RetryAt(at) => (at - NOW).try_into().unwrap(),
            other => panic!("expected a retry, got {other:?}"),
        }
    }

    #[test]
    fn the_default_is_the_specifications_eight_attempts() {
        let schedule = RetrySchedule::default();

        assert_eq!(schedule.attempts(), 8);
        assert_eq!(
            RetrySchedule::parse("5s,5m,30m,2h,5h,10h,10h").unwrap(),
            schedule
        );
    }

    #[test]
    fn each_failure_waits_its_step_and_the_eighth_gives_up() {
        let schedule = RetrySchedule::default();
        let failed = answered(500, None);

        let waits: Vec<Duration> = (0..7)
            .map(|step| wait_of(schedule.after_attempt(step, &failed, NOW, 0.5)))
            .collect();
        let last = schedule.after_attempt(7, &failed, NOW, 0.5);

        assert_eq!(waits, DEFAULT_WAITS.to_vec(), "jitter 0.5 is the middle");
        assert_eq!(last, AttemptOutcome::GaveUp);
        assert_eq!(
            schedule.after_attempt(40, &failed, NOW, 0.5),
            AttemptOutcome::GaveUp
        );
    }

    #[test]
    fn jitter_stays_within_ten_percent_either_side() {
        let schedule = RetrySchedule::default();
        let failed = answered(503, None);

        let low = wait_of(schedule.after_attempt(1, &failed, NOW, 0.0));
        let high = wait_of(schedule.after_attempt(1, &failed, NOW, 0.999_999));

        assert!(low.abs_diff(Duration::from_secs(270)) < Duration::from_millis(1));
        assert!(high > Duration::from_secs(329) && high <= Duration::from_secs(330));
    }

    #[test]
    fn success_gone_and_redirects() {
        let schedule = RetrySchedule::default();

        for status in [200, 201, 202, 204, 299] {
            assert_eq!(
                schedule.after_attempt(0, &answered(status, None), NOW, 0.5),
                AttemptOutcome::Delivered,
                "{status}"
            );
        }
        assert_eq!(
            schedule.after_attempt(0, &answered(410, None), NOW, 0.5),
            AttemptOutcome::EndpointGone
        );
        // Even on the last attempt: the endpoint is disabled, the delivery waits.
        assert_eq!(
            schedule.after_attempt(7, &answered(410, None), NOW, 0.5),
            AttemptOutcome::EndpointGone
        );
        for status in [301, 302, 307, 308, 400, 404, 500] {
            assert_eq!(
                wait_of(schedule.after_attempt(0, &answered(status, None), NOW, 0.5)),
                Duration::from_secs(5),
                "{status}"
            );
        }
    }

    #[test]
    fn retry_after_is_a_lower_bound_on_throttling_and_gateway_answers_only() {
        let schedule = RetrySchedule::default();

        for status in [429, 502, 503, 504] {
            let wait = wait_of(schedule.after_attempt(0, &answered(status, Some(60)), NOW, 0.0));
            assert_eq!(wait, Duration::from_secs(60), "{status}");
            let jittered =
                wait_of(schedule.after_attempt(0, &answered(status, Some(60)), NOW, 0.999));
            assert!(jittered >= Duration::from_secs(60) && jittered <= Duration::from_secs(66));
        }
        // Shorter than the step: the step wins.
        assert_eq!(
            wait_of(schedule.after_attempt(2, &answered(503, Some(1)), NOW, 0.5)),
            Duration::from_secs(30 * 60)
        );
        // Not a status that may ask: the schedule.
        assert_eq!(
            wait_of(schedule.after_attempt(0, &answered(500, Some(60)), NOW, 0.5)),
            Duration::from_secs(5)
        );
        // Capped at the 10-hour step.
        assert_eq!(
            wait_of(schedule.after_attempt(0, &answered(429, Some(999_999)), NOW, 0.0)),
            MAX_RETRY_AFTER
        );
        // Asked for, but the schedule is exhausted.
        assert_eq!(
            schedule.after_attempt(7, &answered(429, Some(60)), NOW, 0.5),
            AttemptOutcome::GaveUp
        );
    }

    #[test]
    fn no_answer_is_a_failure_on_the_schedule() {
        let schedule = RetrySchedule::parse("1s, 2s").unwrap();
        let timed_out = Err(DeliveryError::TimedOut {
            elapsed: Duration::from_secs(15),
        });

        assert_eq!(schedule.attempts(), 3);
        assert_eq!(
            wait_of(schedule.after_attempt(1, &timed_out, NOW, 0.5)),
            Duration::from_secs(2)
        );
        assert_eq!(
            schedule.after_attempt(2, &timed_out, NOW, 0.5),
            AttemptOutcome::GaveUp
        );
    }

    #[test]
    fn bad_schedules_are_refused_with_a_reason() {
        assert_eq!(RetrySchedule::parse(""), Err(ScheduleError::Count));
        assert_eq!(RetrySchedule::parse(" , "), Err(ScheduleError::Count));
        assert_eq!(
            RetrySchedule::parse(&vec!["1s"; 21].join(",")),
            Err(ScheduleError::Count)
        );
        assert_eq!(
            RetrySchedule::parse("5s,soon"),
            Err(ScheduleError::NotADuration("soon".into()))
        );
        assert_eq!(
            RetrySchedule::parse("0s"),
            Err(ScheduleError::OutOfRange("0s".into()))
        );
        assert_eq!(
            RetrySchedule::parse("2d"),
            Err(ScheduleError::OutOfRange("2d".into()))
        );
    }
}
