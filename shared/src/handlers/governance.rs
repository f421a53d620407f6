use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde::Serialize;
use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

use super::body_string;
use super::ledger::require_own_wallet;
use crate::auth::authenticate;
use crate::domain::{
    DESCRIPTION_CHARS, EscapedText, Fields, Proposal, ProposalStatus, TITLE_CHARS, Tokens, Vote,
    WalletAddress,
};
use crate::http::{encode_cursor, json, json_body, page_request, query_fields};
use crate::ratelimit::FirstReads;
use crate::store::{Key, VoteError, keys, wallet_in};
use crate::{ApiError, AppState};

/// A proposal as the API lists it, in the old backend's field names.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ProposalView<'a> {
    id: Uuid,
    title: &'a str,
    description: &'a str,
    proposer: &'a WalletAddress,
    status: ProposalStatus,
    votes_for: Tokens,
    votes_against: Tokens,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
}

impl<'a> From<&'a Proposal> for ProposalView<'a> {
    fn from(proposal: &'a Proposal) -> Self {
        Self {
            id: proposal.id,
            title: &proposal.title,
            description: &proposal.description,
            proposer: &proposal.proposer,
            status: proposal.status,
            votes_for: proposal.votes_for,
            votes_against: proposal.votes_against,
            created_at: proposal.created_at,
        }
    }
}

/// `POST /api/tokenomics/proposals` `{title, description, proposer}`
pub async fn create_proposal(req: Request, state: &AppState) -> Result<Response<Body>, ApiError> {
    let (user, _) = authenticate(&req, state).await?;
    let mut fields = Fields::new(json_body(&req)?);
    let title = fields.string("title", |raw| EscapedText::parse(raw, TITLE_CHARS));
    let description = fields.string("description", |raw| {
        EscapedText::parse(raw, DESCRIPTION_CHARS)
    });
    let proposer = fields.string("proposer", WalletAddress::parse);
    let (Some(title), Some(description), Some(proposer)) = (title, description, proposer) else {
        return Err(fields.into_error());
    };
    require_own_wallet(&user, &proposer)?;
    let proposal = Proposal {
        id: Uuid::now_v7(),
        title: title.into_string(),
        description: description.into_string(),
        proposer,
        status: ProposalStatus::Active,
        created_at: OffsetDateTime::now_utc(),
        votes_for: Tokens::ZERO,
        votes_against: Tokens::ZERO,
    };
    state.store.create_proposal(&proposal).await?;
    tracing::info!(proposal_id = %proposal.id, user_id = %user.id, "proposal created");
    Ok(json(
        StatusCode::CREATED,
        &json!({"success": true, "proposalId": proposal.id}),
    ))
}

/// `GET /api/tokenomics/proposals?limit=&cursor=`: newest first.
pub async fn list_proposals(req: Request, state: &AppState) -> Result<Response<Body>, ApiError> {
    authenticate(&req, state).await?;
    let mut query = Fields::new(query_fields(&req)?);
    let Some(page) = page_request(&req, &mut query)? else {
        return Err(query.into_error());
    };
    let page = state.store.proposals(page).await?;
    let proposals: Vec<ProposalView> = page.items.iter().map(ProposalView::from).collect();
    Ok(json(
        StatusCode::OK,
        &json!({"proposals": proposals, "next_cursor": page.next.map(encode_cursor)}),
    ))
}

/// `POST /api/tokenomics/vote` `{proposal_id, voter, vote}`: one vote per wallet and proposal,
/// weighted by the wallet's stake.
pub async fn vote(req: Request, state: &AppState) -> Result<Response<Body>, ApiError> {
    let (user, _) = authenticate(&req, state).await?;
    let mut fields = Fields::new(json_body(&req)?);
    let proposal_id = fields.string("proposal_id", |raw| {
        raw.parse::<Uuid>()
            .map_err(|_| "must be a proposal id".to_owned())
    });
    let voter = fields.string("voter", WalletAddress::parse);
    let in_favour = fields.boolean("vote", None);
    let (Some(proposal_id), Some(voter), Some(in_favour)) = (proposal_id, voter, in_favour) else {
        return Err(fields.into_error());
    };
    require_own_wallet(&user, &voter)?;
    let items = FirstReads::items_or_read(&req, &state.store, vote_reads(&voter)).await?;
    let wallet =
        wallet_in(&items, &voter)?.ok_or_else(|| ApiError::NotFound("Wallet not found".into()))?;
    if wallet.staked.is_zero() {
        return Err(ApiError::validation(
            "voter",
            "has nothing staked; stake tokens to vote",
        ));
    }
    let vote = Vote {
        proposal_id,
        voter,
        user_id: user.id,
        in_favour,
        weight: wallet.staked,
        at: OffsetDateTime::now_utc(),
    };
    state.store.vote(&vote).await.map_err(|error| match error {
        VoteError::ProposalNotFound => ApiError::NotFound("Proposal not found".into()),
        VoteError::AlreadyVoted => {
            ApiError::Conflict("This wallet has already voted on this proposal".into())
        }
        VoteError::StakeChanged => {
            ApiError::Conflict("The wallet's stake changed while voting; try again".into())
        }
        VoteError::Store(error) => error.into(),
    })?;
    tracing::info!(%proposal_id, user_id = %user.id, "vote recorded");
    Ok(json(
        StatusCode::OK,
        &json!({
            "success": true,
            "proposalId": proposal_id,
            "vote": vote.choice(),
            "weight": vote.weight,
        }),
    ))
}

fn vote_reads(voter: &WalletAddress) -> Vec<Key> {
    vec![keys::wallet(voter.as_str())]
}

/// What `vote` reads first (the voter's wallet, for its stake): the rate limiter's read fetches
/// it in the same round trip.
pub fn vote_first_reads(req: &Request) -> Vec<Key> {
    body_string(req, "voter")
        .and_then(|voter| WalletAddress::parse(&voter).ok())
        .map(|voter| vote_reads(&voter))
        .unwrap_or_default()
}
