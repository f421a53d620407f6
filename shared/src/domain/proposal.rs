use std::ops::RangeInclusive;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{Tokens, WalletAddress};

pub const TITLE_CHARS: RangeInclusive<usize> = 10..=200;
pub const DESCRIPTION_CHARS: RangeInclusive<usize> = 50..=5000;

/// Proposals are open for voting from creation; nothing closes them yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProposalStatus {
    Active,
}

/// A DAO proposal. `title` and `description` are already trimmed and HTML-escaped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Proposal {
    pub id: Uuid,
    pub title: String,
    pub description: String,
    pub proposer: WalletAddress,
    pub status: ProposalStatus,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// The tallies are DynamoDB numbers that votes add to: the store reads and writes them.
    #[serde(skip)]
    pub votes_for: Tokens,
    #[serde(skip)]
    pub votes_against: Tokens,
}

/// One wallet's vote, weighted by what the wallet has staked when it votes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vote {
    pub proposal_id: Uuid,
    pub voter: WalletAddress,
    pub user_id: Uuid,
    pub in_favour: bool,
    pub weight: Tokens,
    pub at: OffsetDateTime,
}

impl Vote {
    pub fn choice(&self) -> &'static str {
        if self.in_favour { "for" } else { "against" }
    }
}
