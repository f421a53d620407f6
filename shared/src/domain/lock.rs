use std::collections::BTreeMap;

use time::OffsetDateTime;
use uuid::Uuid;

use super::TokenAmount;

/// What one vote holds of its wallet's stake: `weight` stays staked until `until`, when voting on
/// the proposal ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StakeLock {
    pub weight: TokenAmount,
    pub until: OffsetDateTime,
}

impl StakeLock {
    fn is_active(&self, now: OffsetDateTime) -> bool {
        now < self.until
    }
}

/// What a wallet's votes hold of its stake, by proposal, as read together with `version`: a write
/// conditioned on that version fails if another wrote the locks in between.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StakeLocks {
    pub by_proposal: BTreeMap<Uuid, StakeLock>,
    /// How many times the locks were written: 0 before the wallet's first vote.
    pub version: u64,
}

impl StakeLocks {
    /// How much of the stake must stay: the largest weight among the votes whose proposals are
    /// still open at `now`. The same tokens back each of those votes, so they lock once.
    pub fn locked(&self, now: OffsetDateTime) -> TokenAmount {
        self.active(now)
            .map(|lock| lock.weight)
            .max()
            .unwrap_or(TokenAmount::ZERO)
    }

    /// From when a stake of `remaining` no longer falls below what is locked: the last end among
    /// the active locks heavier than it; `None` when none is.
    pub fn unlocked_at(
        &self,
        remaining: TokenAmount,
        now: OffsetDateTime,
    ) -> Option<OffsetDateTime> {
        self.active(now)
            .filter(|lock| lock.weight > remaining)
            .map(|lock| lock.until)
            .max()
    }

    /// The locks after a vote on `proposal_id`: those still active at `now`, and the vote's.
    pub fn with_vote(
        &self,
        proposal_id: Uuid,
        lock: StakeLock,
        now: OffsetDateTime,
    ) -> BTreeMap<Uuid, StakeLock> {
        let mut locks: BTreeMap<Uuid, StakeLock> = self
            .by_proposal
            .iter()
            .filter(|(_, lock)| lock.is_active(now))
            .map(|(id, lock)| (*id, *lock))
            .collect();
        locks.insert(proposal_id, lock);
        locks
    }

    fn active(&self, now: OffsetDateTime) -> impl Iterator<Item = &StakeLock> {
        self.by_proposal
            .values()
            .filter(move |lock| lock.is_active(now))
    }
}

#[cfg(test)]
mod tests {
    use time::Duration;

    use super::*;

    fn at(hours: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap() + Duration::hours(hours)
    }

    fn tokens(units: u128) -> TokenAmount {
        TokenAmount::from_units(units)
    }

    /// Locks of 100 until hour 168 and of 150 until hour 1.
    fn two_locks() -> (StakeLocks, Uuid, Uuid) {
        let (week, hour) = (Uuid::now_v7(), Uuid::now_v7());
        let locks = StakeLocks {
            by_proposal: BTreeMap::from([
                (
                    week,
                    StakeLock {
                        weight: tokens(100),
                        until: at(168),
                    },
                ),
                (
                    hour,
                    StakeLock {
                        weight: tokens(150),
                        until: at(1),
                    },
                ),
            ]),
            version: 2,
        };
        (locks, week, hour)
    }

    #[test]
    fn the_largest_active_weight_is_locked() {
        let (locks, _, _) = two_locks();
        assert_eq!(locks.locked(at(0)), tokens(150));
        assert_eq!(locks.locked(at(1) - Duration::nanoseconds(1)), tokens(150));
        assert_eq!(locks.locked(at(1)), tokens(100));
        assert_eq!(locks.locked(at(168)), TokenAmount::ZERO);
        assert_eq!(StakeLocks::default().locked(at(0)), TokenAmount::ZERO);
    }

    #[test]
    fn a_remaining_stake_is_free_once_every_heavier_lock_has_ended() {
        let (locks, _, _) = two_locks();
        assert_eq!(locks.unlocked_at(tokens(150), at(0)), None);
        assert_eq!(locks.unlocked_at(tokens(120), at(0)), Some(at(1)));
        assert_eq!(locks.unlocked_at(tokens(99), at(0)), Some(at(168)));
        assert_eq!(locks.unlocked_at(tokens(99), at(2)), Some(at(168)));
        assert_eq!(locks.unlocked_at(tokens(0), at(168)), None);
    }

    #[test]
    fn a_vote_writes_its_lock_beside_the_active_ones_only() {
        let (locks, week, hour) = two_locks();
        let new = Uuid::now_v7();
        let lock = StakeLock {
            weight: tokens(5),
            until: at(200),
        };
        assert_eq!(
            locks.with_vote(new, lock, at(2)),
            BTreeMap::from([(week, locks.by_proposal[&week]), (new, lock)])
        );
        assert!(locks.with_vote(new, lock, at(0)).contains_key(&hour));
    }
}
