use aws_sdk_dynamodb::types::{
    Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};
use serde_dynamo::aws_sdk_dynamodb_1::{from_item, to_item};
use time::OffsetDateTime;
use uuid::Uuid;

use super::keys::{self, GSI1, PROPOSALS};
use super::ledger::{LOCKS, LOCKS_UNCHANGED, lock_version, locks_attribute, tokens, units};
use super::{Item, Page, PageRequest, Store, StoreError, find, next_page_start, number, string};
use crate::domain::{Proposal, StakeLocks, Vote, rfc3339};

const VOTES_FOR: &str = "votes_for";
const VOTES_AGAINST: &str = "votes_against";
const VOTING_ENDS_AT: &str = "voting_ends_at";

#[derive(Debug, thiserror::Error)]
pub enum VoteError {
    #[error("proposal not found")]
    ProposalNotFound,
    #[error("voting on the proposal closed at {0}")]
    VotingClosed(OffsetDateTime),
    #[error("the wallet already voted on this proposal")]
    AlreadyVoted,
    /// The stake read as the vote's weight, or the wallet's stake locks, changed before the vote
    /// was written.
    #[error("the wallet's stake or its locks changed while voting")]
    WalletChanged,
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn proposal_from_item(item: Item) -> Result<Proposal, StoreError> {
    let votes_for = tokens(&item, VOTES_FOR)?;
    let votes_against = tokens(&item, VOTES_AGAINST)?;
    Ok(Proposal {
        votes_for,
        votes_against,
        ..from_item(item)?
    })
}

/// The proposal `id` among read items (`keys::proposal`).
pub fn proposal_in(items: &[Item], id: Uuid) -> Result<Option<Proposal>, StoreError> {
    find(items, &keys::proposal(id))
        .cloned()
        .map(proposal_from_item)
        .transpose()
}

impl Store {
    pub async fn create_proposal(&self, proposal: &Proposal) -> Result<(), StoreError> {
        let mut item = to_item(proposal)?;
        item.extend(keys::proposal_in_index(proposal.id));
        item.insert(VOTES_FOR.to_owned(), units(proposal.votes_for));
        item.insert(VOTES_AGAINST.to_owned(), units(proposal.votes_against));
        self.put(item).await
    }

    /// A page of every proposal, newest first (GSI1; eventually consistent in AWS).
    pub async fn proposals(&self, page: PageRequest) -> Result<Page<Proposal>, StoreError> {
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(GSI1)
            .key_condition_expression("GSI1PK = :proposals")
            .expression_attribute_values(":proposals", string(PROPOSALS))
            .scan_index_forward(false)
            .limit(page.limit)
            .set_exclusive_start_key(page.after.map(keys::proposal_in_index))
            .send()
            .await?;
        Ok(Page {
            next: next_page_start(output.last_evaluated_key(), keys::GSI1SK, "")?,
            items: output
                .items
                .unwrap_or_default()
                .into_iter()
                .map(proposal_from_item)
                .collect::<Result<_, _>>()?,
        })
    }

    /// Records a vote, adds its weight to the proposal's tally and locks that weight of the
    /// wallet's stake until voting ends, in one transaction: conditioned on the proposal existing
    /// and open at `vote.at`, the wallet not having voted on it, its stake still being the
    /// weight, and its locks still being `locks` (as read with the weight). The locks written
    /// are those still active and the vote's.
    pub async fn vote(&self, vote: &Vote, locks: &StakeLocks) -> Result<(), VoteError> {
        let at = rfc3339(vote.at).map_err(StoreError::from)?;
        let mut record = keys::vote(vote.proposal_id, vote.voter.as_str()).attributes();
        record.extend([
            (
                "proposal_id".to_owned(),
                string(vote.proposal_id.to_string()),
            ),
            ("voter".to_owned(), string(vote.voter.as_str())),
            ("user_id".to_owned(), string(vote.user_id.to_string())),
            ("vote".to_owned(), string(vote.choice())),
            ("weight".to_owned(), units(vote.weight)),
            ("created_at".to_owned(), string(at)),
        ]);
        let record = Put::builder()
            .table_name(&self.table)
            .set_item(Some(record))
            .condition_expression("attribute_not_exists(PK)")
            .build()
            .expect("table, item and condition are set");
        let tally = Update::builder()
            .table_name(&self.table)
            .set_key(Some(keys::proposal(vote.proposal_id).attributes()))
            .update_expression("ADD #tally :weight")
            .condition_expression("attribute_exists(PK) AND #voting_ends_at > :now")
            .expression_attribute_names(
                "#tally",
                if vote.in_favour {
                    VOTES_FOR
                } else {
                    VOTES_AGAINST
                },
            )
            .expression_attribute_names("#voting_ends_at", VOTING_ENDS_AT)
            .expression_attribute_values(":weight", units(vote.weight))
            .expression_attribute_values(":now", number(vote.at.unix_timestamp()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .expect("table, key and expressions are set");
        let wallet = Update::builder()
            .table_name(&self.table)
            .set_key(Some(keys::wallet(vote.voter.as_str()).attributes()))
            .update_expression("SET #locks = :locks, lock_version = :next_lock_version")
            .condition_expression(format!(
                "user_id = :owner AND staked = :weight AND {LOCKS_UNCHANGED}"
            ))
            .expression_attribute_names("#locks", LOCKS)
            .expression_attribute_values(":owner", string(vote.user_id.to_string()))
            .expression_attribute_values(":weight", units(vote.weight))
            .expression_attribute_values(":lock_version", lock_version(locks.version))
            .expression_attribute_values(":next_lock_version", lock_version(locks.version + 1))
            .expression_attribute_values(
                ":locks",
                locks_attribute(&locks.with_vote(vote.proposal_id, vote.lock(), vote.at)),
            )
            .build()
            .expect("table, key and expressions are set");
        let items = vec![
            TransactWriteItem::builder().put(record).build(),
            TransactWriteItem::builder().update(tally).build(),
            TransactWriteItem::builder().update(wallet).build(),
        ];
        let Err(refusal) = self.transact(items).await? else {
            return Ok(());
        };
        if let Some(tally) = refusal.refused(1) {
            match tally {
                None => Err(VoteError::ProposalNotFound),
                Some(proposal) => Err(VoteError::VotingClosed(
                    proposal_from_item(proposal.clone())?.voting_ends_at,
                )),
            }
        } else if refusal.failed(0) {
            Err(VoteError::AlreadyVoted)
        } else if refusal.failed(2) {
            Err(VoteError::WalletChanged)
        } else {
            Err(refusal.unexpected("vote cancelled").into())
        }
    }
}
