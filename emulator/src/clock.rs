//! The emulator's notion of "now", which tests can move forward through the control API.
//!
//! Token lifetimes are an hour; a test that wants an expired token advances this clock
//! instead of sleeping. Only the emulator's clock moves: clients keep their own.

use std::sync::atomic::{AtomicI64, Ordering};
use time::OffsetDateTime;

/// How far the clock may be moved in all: a thousand years. Every date the emulator writes
/// then keeps four-digit years (`time` refuses to format others), and every sum of seconds
/// it makes with "now" stays far from `i64`'s limits.
pub const MAX_OFFSET_SECS: i64 = 1000 * 366 * 24 * 3600;

/// Wall-clock time plus an offset that only ever grows, up to [`MAX_OFFSET_SECS`].
#[derive(Debug, Default)]
pub struct Clock {
    offset_secs: AtomicI64,
}

/// Why the clock was not moved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the clock may move at most {MAX_OFFSET_SECS} seconds in all; it has moved {offset} already"
)]
pub struct OutOfRange {
    pub offset: i64,
}

impl Clock {
    pub fn now(&self) -> OffsetDateTime {
        let real = OffsetDateTime::now_utc();
        // The offset is bounded, so the sum exists; a fallback keeps even a bug from
        // panicking every request.
        real.checked_add(time::Duration::seconds(self.offset_secs()))
            .unwrap_or(real)
    }

    pub fn offset_secs(&self) -> i64 {
        self.offset_secs.load(Ordering::Relaxed)
    }

    /// Moves the clock forward; returns the new offset, or refuses a step that would take
    /// the offset past [`MAX_OFFSET_SECS`] (leaving it as it was). Going backwards is
    /// refused by the caller: tokens already issued would otherwise become "not yet valid".
    pub fn advance(&self, secs: u32) -> Result<i64, OutOfRange> {
        let step = i64::from(secs);
        self.offset_secs
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |offset| {
                offset
                    .checked_add(step)
                    .filter(|next| *next <= MAX_OFFSET_SECS)
            })
            .map(|before| before + step)
            .map_err(|offset| OutOfRange { offset })
    }
}

/// `2026-11-21 05:02:03Z`, the form of `timestamp` in the identity platform's error JSON.
pub fn sts_timestamp(t: OffsetDateTime) -> String {
    const FORMAT: &[time::format_description::FormatItem<'static>] =
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]Z");
    t.format(FORMAT).unwrap_or_default()
}

/// `2026-11-21T05:02:03Z`, as Graph writes dates.
pub fn rfc3339_seconds(t: OffsetDateTime) -> String {
    const FORMAT: &[time::format_description::FormatItem<'static>] =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    t.format(FORMAT).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advancing_moves_now_forward() {
        let clock = Clock::default();
        let before = clock.now();
        assert_eq!(clock.advance(3600), Ok(3600));
        assert_eq!(clock.advance(60), Ok(3660));
        assert!(clock.now() - before >= time::Duration::seconds(3660));
    }

    #[test]
    fn refuses_to_move_past_the_limit_and_stays_usable() {
        let clock = Clock::default();
        let mut moved = 0;
        while clock.advance(u32::MAX).is_ok() {
            moved += 1;
        }
        let offset = clock.offset_secs();

        assert_eq!(moved, MAX_OFFSET_SECS / i64::from(u32::MAX));
        assert_eq!(clock.advance(u32::MAX), Err(OutOfRange { offset }));
        assert_eq!(
            clock.offset_secs(),
            offset,
            "a refused step changes nothing"
        );
        assert_eq!(clock.advance(0), Ok(offset));
        let now = clock.now();
        assert!(now.year() < 10_000 && now.year() > 2900);
        assert_eq!(rfc3339_seconds(now).len(), "2026-11-21T05:02:03Z".len());
        let last_step = u32::try_from(MAX_OFFSET_SECS - offset).unwrap();
        assert_eq!(clock.advance(last_step), Ok(MAX_OFFSET_SECS));
        assert!(clock.advance(1).is_err());
    }

    #[test]
    fn formats_like_microsoft() {
        let t = time::macros::datetime!(2026-11-21 05:02:03 UTC);
        assert_eq!(sts_timestamp(t), "2026-11-21 05:02:03Z");
        assert_eq!(rfc3339_seconds(t), "2026-11-21T05:02:03Z");
    }
}
