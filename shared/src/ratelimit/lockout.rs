//! Brute-force lockout: after `MAX_FAILED_LOGINS` failed logins for one username within
//! `LOCKOUT_SECONDS`, that username's logins are refused until the oldest of them ages out.
//! An attempt is reserved before its password is verified, so parallel guesses cannot pass.

use uuid::Uuid;

use crate::domain::AuditEvent;
use crate::store::{AttemptsWrite, LoginAttempts, Store, StoreError};

pub const MAX_FAILED_LOGINS: usize = 5;
pub const LOCKOUT_SECONDS: i64 = 15 * 60;

/// Each retry follows another request's write to the record; after this many the caller gets 503.
const RESERVATION_TRIES: usize = 3 * MAX_FAILED_LOGINS;

pub enum Reservation {
    /// Verify the password; release the attempt if it was right, keep it as a failure if not.
    /// `provisional`: the events written with it, which stand if the password was wrong.
    Reserved {
        attempt: Uuid,
        provisional: Vec<AuditEvent>,
    },
    Locked {
        retry_after_seconds: u64,
    },
}

/// Reserves a login attempt for `username`, whose attempts were read as `seen`: one conditional
/// write that keeps the attempts still inside the window plus this one, refused when the
/// record changed since it was read (then redone from the record as it is). Locked, nothing is
/// written. `if_failed(locks)` names the events that record the attempt as failed (`locks`: its
/// failure locks the username), written with the reservation.
pub async fn reserve_login_attempt(
    store: &Store,
    username: &str,
    mut seen: LoginAttempts,
    now: i64,
    if_failed: impl Fn(bool) -> Vec<AuditEvent>,
) -> Result<Reservation, StoreError> {
    let attempt = Uuid::new_v4();
    for _ in 0..RESERVATION_TRIES {
        if let Some(retry_after_seconds) = lockout_seconds(&seen.times(), now) {
            return Ok(Reservation::Locked {
                retry_after_seconds,
            });
        }
        let mut kept: Vec<(Uuid, i64)> = seen
            .attempts
            .iter()
            .copied()
            .filter(|&(_, at)| at > now - LOCKOUT_SECONDS)
            .collect();
        kept.push((attempt, now));
        let times: Vec<i64> = kept.iter().map(|&(_, at)| at).collect();
        let provisional = if_failed(lockout_seconds(&times, now).is_some());
        match store
            .replace_login_attempts(
                username,
                seen.version,
                &kept,
                now + LOCKOUT_SECONDS,
                &provisional,
            )
            .await?
        {
            AttemptsWrite::Written => {
                return Ok(Reservation::Reserved {
                    attempt,
                    provisional,
                });
            }
            AttemptsWrite::Changed(current) => seen = current,
        }
    }
    Err(StoreError::Unavailable(
        "login attempts kept changing while reserving one".into(),
    ))
}

/// Seconds the username stays locked, given its failed-login times; `None` when not locked.
pub fn lockout_seconds(failures: &[i64], now: i64) -> Option<u64> {
    let mut recent: Vec<i64> = failures
        .iter()
        .copied()
        .filter(|&time| time > now - LOCKOUT_SECONDS)
        .collect();
    if recent.len() < MAX_FAILED_LOGINS {
        return None;
    }
    recent.sort_unstable();
    let oldest_that_locks = recent[recent.len() - MAX_FAILED_LOGINS];
    Some((oldest_that_locks + LOCKOUT_SECONDS - now).max(1) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    #[test]
    fn four_failures_do_not_lock() {
        assert_eq!(
            lockout_seconds(&[NOW - 3, NOW - 2, NOW - 1, NOW], NOW),
            None
        );
    }

    #[test]
    fn five_failures_lock_until_the_oldest_ages_out() {
        let failures = [NOW - 100, NOW - 50, NOW - 10, NOW - 5, NOW];
        assert_eq!(
            lockout_seconds(&failures, NOW),
            Some((LOCKOUT_SECONDS - 100) as u64)
        );
    }

    #[test]
    fn failures_older_than_the_window_do_not_count() {
        let failures = [NOW - LOCKOUT_SECONDS, NOW - 3, NOW - 2, NOW - 1, NOW];
        assert_eq!(lockout_seconds(&failures, NOW), None);
        let failures = [NOW - LOCKOUT_SECONDS + 1, NOW - 3, NOW - 2, NOW - 1, NOW];
        assert_eq!(lockout_seconds(&failures, NOW), Some(1));
    }

    #[test]
    fn the_newest_five_decide_in_any_order() {
        let failures = [NOW, NOW - 700, NOW - 800, NOW - 1, NOW - 2, NOW - 3];
        // Newest five: NOW-700, -3, -2, -1, NOW; the lock lasts until NOW-700 ages out.
        assert_eq!(
            lockout_seconds(&failures, NOW),
            Some((LOCKOUT_SECONDS - 700) as u64)
        );
    }
}
