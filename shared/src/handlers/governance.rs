use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde::Serialize;
use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

use super::body_string;
use super::ledger::require_own_wallet;
use crate::AppState;
use crate::auth::Principal;
use crate::domain::{
    DEFAULT_VOTING_PERIOD_HOURS, DESCRIPTION_CHARS, EscapedText, Fields, Proposal, ProposalStatus,
    TITLE_CHARS, TokenAmount, VOTING_PERIOD_HOURS, Vote, WalletAddress, rfc3339,
};
use crate::http::{
    ApiError, encode_cursor, json_body, json_response, page_request, prefetched, query_fields,
};
use crate::store::{VoteError, VoteRead};

/// A proposal as the API lists it at `now`, in the old backend's field names.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ProposalView<'a> {
    id: Uuid,
    title: &'a str,
    description: &'a str,
    proposer: &'a WalletAddress,
    status: ProposalStatus,
    votes_for: TokenAmount,
    votes_against: TokenAmount,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(rename = "voting_ends_at", with = "time::serde::rfc3339")]
    voting_ends_at: OffsetDateTime,
}

impl<'a> ProposalView<'a> {
    fn at(proposal: &'a Proposal, now: OffsetDateTime) -> Self {
        Self {
            id: proposal.id,
            title: &proposal.title,
            description: &proposal.description,
            proposer: &proposal.proposer,
            status: proposal.status(now),
            votes_for: proposal.votes_for,
            votes_against: proposal.votes_against,
            created_at: proposal.created_at,
            voting_ends_at: proposal.voting_ends_at,
        }
    }
}

/// `POST /api/tokenomics/proposals` `{title, description, proposer, voting_period_hours?}`
pub async fn create_proposal(
    req: Request,
    principal: Principal,
    state: &AppState,
) -> Result<Response<Body>, ApiError> {
    let user = principal.user();
    let mut fields = Fields::new(json_body(&req)?);
    let title = fields.string("title", |raw| EscapedText::parse(raw, TITLE_CHARS));
    let description = fields.string("description", |raw| {
        EscapedText::parse(raw, DESCRIPTION_CHARS)
    });
    let proposer = fields.string("proposer", WalletAddress::parse);
    let voting_period_hours = fields
        .optional_integer("voting_period_hours", VOTING_PERIOD_HOURS)
        .map(|hours| hours.unwrap_or(DEFAULT_VOTING_PERIOD_HOURS));
    let (Some(title), Some(description), Some(proposer), Some(voting_period_hours)) =
        (title, description, proposer, voting_period_hours)
    else {
        return Err(fields.into_error().into());
    };
    require_own_wallet(user, &proposer)?;
    let proposal = Proposal::open(
        title.into_string(),
        description.into_string(),
        proposer,
        state.clock.now(),
        voting_period_hours,
    );
    state.store.create_proposal(&proposal).await?;
    tracing::info!(proposal_id = %proposal.id, user_id = %user.id, "proposal created");
    Ok(json_response(
        StatusCode::CREATED,
        &json!({"success": true, "proposalId": proposal.id}),
    ))
}

/// `GET /api/tokenomics/proposals?limit=&cursor=`: newest first.
pub async fn list_proposals(
    req: Request,
    _principal: Principal,
    state: &AppState,
) -> Result<Response<Body>, ApiError> {
    let mut query = Fields::new(query_fields(&req)?);
    let Some(page) = page_request(&req, &mut query)? else {
        return Err(query.into_error().into());
    };
    let page = state.store.proposals(page).await?;
    let now = state.clock.now();
    let proposals: Vec<ProposalView> = page
        .items
        .iter()
        .map(|proposal| ProposalView::at(proposal, now))
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({"proposals": proposals, "next_cursor": page.next.map(encode_cursor)}),
    ))
}

/// `POST /api/tokenomics/vote` `{proposal_id, voter, vote}`: one vote per wallet and proposal
/// while voting is open, weighted by the wallet's stake, which stays locked until voting ends.
pub async fn vote(
    req: Request,
    principal: Principal,
    state: &AppState,
) -> Result<Response<Body>, ApiError> {
    let user = principal.user();
    let mut fields = Fields::new(json_body(&req)?);
    let proposal_id = fields.string("proposal_id", |raw| {
        raw.parse::<Uuid>()
            .map_err(|_| "must be a proposal id".to_owned())
    });
    let voter = fields.string("voter", WalletAddress::parse);
    let in_favour = fields.boolean("vote", None);
    let (Some(proposal_id), Some(voter), Some(in_favour)) = (proposal_id, voter, in_favour) else {
        return Err(fields.into_error().into());
    };
    require_own_wallet(user, &voter)?;
    let read = VoteRead {
        voter,
        proposal: proposal_id,
    };
    let (wallet, proposal) = state.store.first_read(&read, prefetched(&req)).await?;
    let voter = read.voter;
    let wallet = wallet.ok_or_else(|| ApiError::NotFound("Wallet not found".into()))?;
    if wallet.staked.is_zero() {
        return Err(ApiError::validation(
            "voter",
            "has nothing staked; stake tokens to vote",
        ));
    }
    let proposal = proposal.ok_or_else(proposal_not_found)?;
    let vote = Vote {
        proposal_id,
        voter,
        user_id: user.id,
        in_favour,
        weight: wallet.staked,
        at: state.clock.now(),
        voting_ends_at: proposal.voting_ends_at,
    };
    state
        .store
        .vote(&vote, &wallet.locks)
        .await
        .map_err(|error| match error {
            VoteError::ProposalNotFound => proposal_not_found(),
            VoteError::VotingClosed(ended_at) => match rfc3339(ended_at) {
                Ok(ended_at) => {
                    ApiError::Conflict(format!("Voting on this proposal closed at {ended_at}"))
                }
                Err(error) => error.into(),
            },
            VoteError::AlreadyVoted => {
                ApiError::Conflict("This wallet has already voted on this proposal".into())
            }
            VoteError::WalletChanged => ApiError::Conflict(
                "The wallet's stake or its votes changed while voting; try again".into(),
            ),
            VoteError::Store(error) => error.into(),
        })?;
    tracing::info!(%proposal_id, user_id = %user.id, "vote recorded");
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "success": true,
            "proposalId": proposal_id,
            "vote": vote.choice(),
            "weight": vote.weight,
        }),
    ))
}

fn proposal_not_found() -> ApiError {
    ApiError::NotFound("Proposal not found".into())
}

/// What `vote` reads first: the voter's wallet (its stake and locks) and the proposal (when its
/// voting ends).
pub fn vote_first_read(req: &Request, _: Option<Uuid>) -> Option<VoteRead> {
    Some(VoteRead {
        voter: body_string(req, "voter").and_then(|voter| WalletAddress::parse(&voter).ok())?,
        proposal: body_string(req, "proposal_id").and_then(|id| id.parse().ok())?,
    })
}
