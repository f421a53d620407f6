//! The sliding-window counter, as pure arithmetic over an injected clock.
//!
//! Each identity has one counter per fixed window (60 s for the route buckets, 3600 s for an
//! API key's own budget). A request is admitted when
//! `previous * (1 - elapsed / length) + current <= limit`, `current` counting this request: the
//! previous window's count is assumed to have been spread evenly over it (Cloudflare's
//! approximation of a sliding log).

/// The length of a bucket's fixed windows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub length_ms: u64,
}

impl Window {
    /// The route buckets' window.
    pub const MINUTE: Self = Self { length_ms: 60_000 };
    /// An API key's budget: `rate_limit` requests per hour.
    pub const HOUR: Self = Self {
        length_ms: 3_600_000,
    };

    /// Where `now_ms` falls in this window length.
    pub fn at(self, now_ms: u64) -> WindowPosition {
        WindowPosition {
            start_ms: now_ms - now_ms % self.length_ms,
            elapsed_ms: now_ms % self.length_ms,
            length_ms: self.length_ms,
        }
    }

    /// How long a counter is kept: its own window, then one more, during which it weighs in as
    /// the previous one.
    pub fn counter_ttl_seconds(self) -> i64 {
        (2 * self.length_ms / 1000) as i64
    }
}

/// Where `now` falls: the start of its window, how far into it, and the window's length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WindowPosition {
    pub start_ms: u64,
    pub elapsed_ms: u64,
    pub length_ms: u64,
}

impl WindowPosition {
    pub fn start_seconds(self) -> u64 {
        self.start_ms / 1000
    }

    pub fn previous_start_seconds(self) -> u64 {
        (self.start_ms - self.length_ms) / 1000
    }

    pub fn now_seconds(self) -> i64 {
        ((self.start_ms + self.elapsed_ms) / 1000) as i64
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    pub admitted: bool,
    pub limit: u64,
    /// Requests that would still be admitted now.
    pub remaining: u64,
    /// Whole seconds until one more request would be admitted (0 when one would be now).
    pub reset_seconds: u64,
}

/// Scaled by the window's length in ms so that the weighting stays in integers.
fn weighted_count(previous: u64, current: u64, position: WindowPosition) -> u128 {
    let length = position.length_ms as u128;
    previous as u128 * (length - position.elapsed_ms as u128) + current as u128 * length
}

/// The decision for a request that made the current window's count `current` (including
/// itself). `current` is `None` when the counter refused to go past the limit.
pub fn decide(
    limit: u64,
    previous: u64,
    current: Option<u64>,
    position: WindowPosition,
) -> Decision {
    let length = position.length_ms as u128;
    let scaled_limit = limit as u128 * length;
    let counted = current.unwrap_or(limit.max(1));
    let admitted = current.is_some() && weighted_count(previous, counted, position) <= scaled_limit;
    let in_use = weighted_count(previous, counted, position).div_ceil(length);
    let remaining = (limit as u128).saturating_sub(in_use) as u64;
    let reset_seconds = if remaining > 0 {
        0
    } else {
        wait_ms(limit, previous, counted, position).div_ceil(1000)
    };
    Decision {
        admitted,
        limit,
        remaining,
        reset_seconds,
    }
}

/// Milliseconds until the weighted count drops to `limit - 1`, if no request arrives meanwhile.
fn wait_ms(limit: u64, previous: u64, current: u64, position: WindowPosition) -> u64 {
    let length = position.length_ms as u128;
    let target = (limit.saturating_sub(1)) as u128 * length;
    // Within this window only the previous window's share decays.
    if current as u128 * length <= target && previous > 0 {
        let needed_decay = weighted_count(previous, current, position) - target;
        return needed_decay.div_ceil(previous as u128) as u64;
    }
    // Otherwise wait into the next window, where this window's count decays.
    let until_next = position.length_ms - position.elapsed_ms;
    if current == 0 {
        return until_next;
    }
    let needed_decay = (current as u128 * length).saturating_sub(target);
    until_next + needed_decay.div_ceil(current as u128) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(elapsed_ms: u64) -> WindowPosition {
        Window::MINUTE.at(1_800_000_000_000 + elapsed_ms)
    }

    /// 1_800_000_000_000 ms is a whole number of hours too.
    fn hour_at(elapsed_ms: u64) -> WindowPosition {
        Window::HOUR.at(1_800_000_000_000 + elapsed_ms)
    }

    #[test]
    fn windows_are_aligned_minutes() {
        let position = Window::MINUTE.at(1_800_000_012_345);
        assert_eq!(position.start_ms % 60_000, 0);
        assert_eq!(position.elapsed_ms, 1_800_000_012_345 % 60_000);
        assert_eq!(
            position.start_seconds() - position.previous_start_seconds(),
            60
        );
        assert_eq!(position.now_seconds(), 1_800_000_012);
        assert_eq!(Window::MINUTE.counter_ttl_seconds(), 120);
    }

    #[test]
    fn hour_windows_are_aligned_hours() {
        let position = Window::HOUR.at(1_800_000_000_000 + 59 * 60_000 + 1);
        assert_eq!(position.start_ms, 1_800_000_000_000);
        assert_eq!(position.elapsed_ms, 59 * 60_000 + 1);
        assert_eq!(
            position.start_seconds() - position.previous_start_seconds(),
            3600
        );
        assert_eq!(
            Window::HOUR.at(1_800_003_600_000).start_ms,
            1_800_003_600_000
        );
        assert_eq!(Window::HOUR.counter_ttl_seconds(), 7200);
    }

    #[test]
    fn an_hour_window_weighs_the_previous_hour_by_its_remaining_share() {
        // 10 in the previous hour, a quarter into this one: 7.5 still count.
        let quarter = hour_at(15 * 60_000);
        assert!(decide(10, 10, Some(2), quarter).admitted);
        assert!(!decide(10, 10, Some(3), quarter).admitted);
        // A fresh hour admits exactly the limit.
        for n in 1..=10 {
            assert!(decide(10, 0, Some(n), hour_at(0)).admitted, "request {n}");
        }
        assert!(!decide(10, 0, None, hour_at(0)).admitted);
    }

    #[test]
    fn an_hour_window_resets_in_hours_not_minutes() {
        // Full at the half hour: 30 min to the next window, then 10 * (1 - t/60 min) <= 9 needs
        // t >= 6 min.
        let full = decide(10, 0, None, hour_at(30 * 60_000));
        assert_eq!(full.reset_seconds, 36 * 60);
        // A full previous hour at the start: 12 min until one of its 10 has decayed enough.
        assert_eq!(decide(10, 10, Some(1), hour_at(0)).reset_seconds, 12 * 60);
    }

    #[test]
    fn admits_up_to_the_limit_in_a_fresh_window() {
        let position = at(0);
        for n in 1..=10 {
            let decision = decide(10, 0, Some(n), position);
            assert!(decision.admitted, "request {n}");
            assert_eq!(decision.remaining, 10 - n);
        }
        let refused = decide(10, 0, None, position);
        assert!(!refused.admitted);
        assert_eq!(refused.remaining, 0);
    }

    #[test]
    fn the_previous_window_counts_by_its_remaining_share() {
        // 10 in the previous window, a quarter through this one: 7.5 still count.
        let position = at(15_000);
        assert!(decide(10, 10, Some(2), position).admitted);
        assert!(!decide(10, 10, Some(3), position).admitted);
        // Three quarters through: 2.5 count.
        let later = at(45_000);
        assert!(decide(10, 10, Some(7), later).admitted);
        assert!(!decide(10, 10, Some(8), later).admitted);
    }

    #[test]
    fn a_full_previous_window_refuses_at_the_start_and_frees_slots_as_it_slides() {
        let start = decide(10, 10, Some(1), at(0));
        assert!(!start.admitted);
        // The weighted count is 10 + 1 = 11 -> 9 needs 12 s of the previous window's 10 to decay
        // (10 * 12/60 = 2).
        assert_eq!(start.reset_seconds, 12);
        assert!(decide(10, 10, Some(1), at(6_000)).admitted);
    }

    #[test]
    fn reset_is_zero_while_slots_remain_and_counts_into_the_next_window_otherwise() {
        assert_eq!(decide(10, 0, Some(3), at(30_000)).reset_seconds, 0);
        // 10 used at 30 s: 30 s to the next window, then 10 * (1 - t/60) <= 9 needs t >= 6 s.
        let full = decide(10, 0, None, at(30_000));
        assert!(!full.admitted);
        assert_eq!(full.reset_seconds, 36);
    }

    #[test]
    fn a_limit_of_one_waits_for_the_whole_share_to_decay() {
        let decision = decide(1, 0, None, at(59_000));
        assert_eq!(decision.reset_seconds, 1 + 60);
    }
}
