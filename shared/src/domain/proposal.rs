use std::ops::RangeInclusive;

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use super::{StakeLock, TokenAmount, WalletAddress};

pub const TITLE_CHARS: RangeInclusive<usize> = 10..=200;
pub const DESCRIPTION_CHARS: RangeInclusive<usize> = 50..=5000;
/// How long a proposal is open for voting, in whole hours (`voting_period_hours`).
pub const VOTING_PERIOD_HOURS: RangeInclusive<i64> = 1..=720;
pub const DEFAULT_VOTING_PERIOD_HOURS: i64 = 168;

/// Not stored: whether voting is open follows from the time and `voting_ends_at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ProposalStatus {
    Active,
    Closed,
}

/// A DAO proposal. `title` and `description` are already trimmed and HTML-escaped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Proposal {
    pub id: Uuid,
    pub title: String,
    pub description: String,
    pub proposer: WalletAddress,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Stored as whole epoch seconds, which the vote transaction's condition compares with its
    /// own time.
    #[serde(with = "time::serde::timestamp")]
    pub voting_ends_at: OffsetDateTime,
    /// The tallies are DynamoDB numbers that votes add to: the store reads and writes them.
    #[serde(skip)]
    pub votes_for: TokenAmount,
    #[serde(skip)]
    pub votes_against: TokenAmount,
}

impl Proposal {
    /// A proposal created at `created_at`, open for voting `voting_period_hours` from then.
    pub fn open(
        title: String,
        description: String,
        proposer: WalletAddress,
        created_at: OffsetDateTime,
        voting_period_hours: i64,
    ) -> Self {
        Self {
            id: Uuid::now_v7(),
            title,
            description,
            proposer,
            created_at,
            voting_ends_at: created_at + Duration::hours(voting_period_hours),
            votes_for: TokenAmount::ZERO,
            votes_against: TokenAmount::ZERO,
        }
    }

    pub fn status(&self, now: OffsetDateTime) -> ProposalStatus {
        if now < self.voting_ends_at {
            ProposalStatus::Active
        } else {
            ProposalStatus::Closed
        }
    }
}

/// One wallet's vote, weighted by what the wallet has staked when it votes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vote {
    pub proposal_id: Uuid,
    pub voter: WalletAddress,
    pub user_id: Uuid,
    pub in_favour: bool,
    pub weight: TokenAmount,
    pub at: OffsetDateTime,
    /// When voting on the proposal ends, and with it the lock the vote puts on its weight.
    pub voting_ends_at: OffsetDateTime,
}

impl Vote {
    pub fn choice(&self) -> &'static str {
        if self.in_favour { "for" } else { "against" }
    }

    /// What the vote holds of its wallet's stake.
    pub fn lock(&self) -> StakeLock {
        StakeLock {
            weight: self.weight,
            until: self.voting_ends_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn voting_is_open_until_its_end_and_closed_from_then() {
        let created_at = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let proposal = Proposal::open(
            "Lower the fees".into(),
            "d".repeat(50),
            WalletAddress::generate(),
            created_at,
            2,
        );
        let end = created_at + Duration::hours(2);
        assert_eq!(proposal.voting_ends_at, end);
        assert_eq!(proposal.status(created_at), ProposalStatus::Active);
        let just_before = end - Duration::nanoseconds(1);
        assert_eq!(proposal.status(just_before), ProposalStatus::Active);
        assert_eq!(proposal.status(end), ProposalStatus::Closed);
    }
}
