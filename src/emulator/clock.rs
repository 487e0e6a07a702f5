//! The emulator's notion of "now", which tests can move forward through the control API.
//!
//! Token lifetimes are an hour; a test that wants an expired token advances this clock
//! instead of sleeping. Only the emulator's clock moves: clients keep their own.

use std::sync::atomic::{AtomicI64, Ordering};
use time::OffsetDateTime;

/// Wall-clock time plus an offset that only ever grows.
#[derive(Debug, Default)]
pub struct Clock {
    offset_secs: AtomicI64,
}

impl Clock {
    pub fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc() + time::Duration::seconds(self.offset_secs())
    }

    pub fn offset_secs(&self) -> i64 {
        self.offset_secs.load(Ordering::Relaxed)
    }

    /// Moves the clock forward; returns the new offset. Going backwards is refused by the
    /// caller: tokens already issued would otherwise become "not yet valid".
    pub fn advance(&self, secs: u32) -> i64 {
        self.offset_secs
            .fetch_add(i64::from(secs), Ordering::Relaxed)
            .saturating_add(i64::from(secs))
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
        assert_eq!(clock.advance(3600), 3600);
        assert_eq!(clock.advance(60), 3660);
        assert!(clock.now() - before >= time::Duration::seconds(3660));
    }

    #[test]
    fn formats_like_microsoft() {
        let t = time::macros::datetime!(2026-11-21 05:02:03 UTC);
        assert_eq!(sts_timestamp(t), "2026-11-21 05:02:03Z");
        assert_eq!(rfc3339_seconds(t), "2026-11-21T05:02:03Z");
    }
}
