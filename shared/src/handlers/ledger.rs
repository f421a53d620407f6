use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde_json::{Value, json};
use uuid::Uuid;

use super::admin::require_admin;
use super::body_string;
use crate::AppState;
use crate::auth::Principal;
use crate::domain::{
    Actor, Amount, AuditEvent, AuditEventType, Fields, IdempotencyKey, MAX_TOKENS, TokenAmount,
    User, WalletAddress, rfc3339,
};
use crate::http::{ApiError, audit_context, json_body, json_response, prefetched, query_fields};
use crate::store::{
    Holding, Movement, MovementError, MovementKind, MovementOutcome, StoredResponse, WalletRead,
};

const IDEMPOTENCY_KEY: &str = "Idempotency-Key";

/// The optional `Idempotency-Key` header, validated with the body's fields.
fn idempotency_key(req: &Request, fields: &mut Fields) -> Option<Option<IdempotencyKey>> {
    let Some(value) = req.headers().get(IDEMPOTENCY_KEY) else {
        return Some(None);
    };
    let parsed = value
        .to_str()
        .map_err(|_| "must be visible ASCII characters".to_owned())
        .and_then(IdempotencyKey::parse);
    match parsed {
        Ok(key) => Some(Some(key)),
        Err(message) => fields.fail(IDEMPOTENCY_KEY, message),
    }
}

fn not_yours() -> ApiError {
    ApiError::Forbidden("The wallet is not yours".into())
}

pub(super) fn require_own_wallet(user: &User, address: &WalletAddress) -> Result<(), ApiError> {
    if *address == user.wallet_address {
        Ok(())
    } else {
        Err(not_yours())
    }
}

/// Applies `movement` (once per `Idempotency-Key`, with its audit `event` if it has one) and
/// answers `body`, or the body first answered under the key, plus `figure`: the movement's
/// wallet's holding as it is now.
async fn move_tokens(
    state: &AppState,
    key: Option<IdempotencyKey>,
    movement: Movement,
    body: Value,
    figure: (&str, Holding),
    event: Option<AuditEvent>,
) -> Result<Response<Body>, ApiError> {
    let first = StoredResponse {
        status: StatusCode::OK.as_u16(),
        body: body.to_string(),
    };
    let outcome = state
        .store
        .apply_movement(
            &movement,
            key.as_ref().map(|key| (key, &first)),
            event.as_ref(),
        )
        .await
        .map_err(refusal)?;
    let (status, mut body) = match outcome {
        MovementOutcome::Applied => {
            tracing::info!(transaction_id = %movement.id, user_id = %movement.actor, "tokens moved");
            (StatusCode::OK, body)
        }
        MovementOutcome::Replayed(stored) => {
            tracing::info!(user_id = %movement.actor, "idempotent retry answered from its record");
            let status = StatusCode::from_u16(stored.status)
                .map_err(|error| ApiError::Internal(error.to_string()))?;
            let body = serde_json::from_str(&stored.body)
                .map_err(|error| ApiError::Internal(error.to_string()))?;
            (status, body)
        }
    };
    let wallet = state
        .store
        .wallet(&movement.wallet)
        .await?
        .ok_or_else(|| ApiError::Internal("a moved wallet vanished".into()))?;
    let (name, holding) = figure;
    body[name] = json!(wallet.holding(holding));
    Ok(json_response(status, &body))
}

fn refusal(error: MovementError) -> ApiError {
    match error {
        MovementError::WalletNotFound(address) => {
            ApiError::NotFound(format!("Wallet {address} not found"))
        }
        MovementError::NotOwner => not_yours(),
        MovementError::Insufficient(Holding::Balance) => {
            ApiError::Conflict("Insufficient balance".into())
        }
        MovementError::Insufficient(Holding::Staked) => {
            ApiError::Conflict("Insufficient staked balance".into())
        }
        MovementError::Locked {
            locked,
            unlocked_at,
        } => match rfc3339(unlocked_at) {
            Ok(unlocked_at) => ApiError::Conflict(format!(
                "{locked} staked tokens are locked by this wallet's votes on proposals still open; \
                 this unstake becomes possible at {unlocked_at}"
            )),
            Err(error) => error.into(),
        },
        MovementError::LocksChanged => {
            ApiError::Conflict("The wallet's votes changed while unstaking; try again".into())
        }
        MovementError::HoldingLimit(holding) => ApiError::Conflict(format!(
            "The wallet's {} would exceed the maximum of {} tokens",
            match holding {
                Holding::Balance => "balance",
                Holding::Staked => "stake",
            },
            TokenAmount::from_units(MAX_TOKENS)
        )),
        MovementError::IdempotencyKeyReused => {
            ApiError::validation(IDEMPOTENCY_KEY, "was already used for a different request")
        }
        MovementError::Store(error) => error.into(),
    }
}

/// `GET /api/tokenomics/balance?address=`: the caller's own wallet (the default).
pub async fn balance(
    req: Request,
    principal: Principal,
    state: &AppState,
) -> Result<Response<Body>, ApiError> {
    let user = principal.user();
    let mut query = Fields::new(query_fields(&req)?);
    let Some(address) = query.optional_string("address", WalletAddress::parse) else {
        return Err(query.into_error().into());
    };
    let address = address.unwrap_or_else(|| user.wallet_address.clone());
    require_own_wallet(user, &address)?;
    let wallet = state
        .store
        .wallet(&address)
        .await?
        .ok_or_else(|| ApiError::NotFound("Wallet not found".into()))?;
    let total = wallet
        .balance
        .checked_add(wallet.staked)
        .ok_or_else(|| ApiError::Internal("wallet total overflows".into()))?;
    let locked = wallet.locks.locked(state.clock.now());
    Ok(json_response(
        StatusCode::OK,
        &json!({"address": address, "balance": wallet.balance, "staked": wallet.staked, "locked": locked, "total": total}),
    ))
}

/// `POST /api/tokenomics/transfer` `{from_address, to_address, amount}`
pub async fn transfer(
    req: Request,
    principal: Principal,
    state: &AppState,
) -> Result<Response<Body>, ApiError> {
    let user = principal.user();
    let mut fields = Fields::new(json_body(&req)?);
    let key = idempotency_key(&req, &mut fields);
    let from = fields.string("from_address", WalletAddress::parse);
    let to = match (&from, fields.string("to_address", WalletAddress::parse)) {
        (Some(from), Some(to)) if *from == to => {
            fields.fail("to_address", "must differ from from_address")
        }
        (_, to) => to,
    };
    let amount = fields.amount("amount");
    let (Some(key), Some(from), Some(to), Some(amount)) = (key, from, to, amount) else {
        return Err(fields.into_error().into());
    };
    require_own_wallet(user, &from)?;
    let movement = Movement::new(
        user.id,
        from.clone(),
        MovementKind::Transfer { to: to.clone() },
        amount,
        state.clock.now(),
    );
    let body = json!({
        "success": true,
        "transactionId": movement.id,
        "from_address": from,
        "to_address": to,
        "amount": amount,
    });
    move_tokens(
        state,
        key,
        movement,
        body,
        ("balance", Holding::Balance),
        None,
    )
    .await
}

/// The `{address, amount}` body of stake, unstake and mint, with the `Idempotency-Key`.
fn wallet_amount(
    req: &Request,
) -> Result<(Option<IdempotencyKey>, WalletAddress, Amount), ApiError> {
    let mut fields = Fields::new(json_body(req)?);
    let key = idempotency_key(req, &mut fields);
    let address = fields.string("address", WalletAddress::parse);
    let amount = fields.amount("amount");
    match (key, address, amount) {
        (Some(key), Some(address), Some(amount)) => Ok((key, address, amount)),
        _ => Err(fields.into_error().into()),
    }
}

/// `POST /api/tokenomics/stake` `{address, amount}`: balance to stake.
pub async fn stake(
    req: Request,
    principal: Principal,
    state: &AppState,
) -> Result<Response<Body>, ApiError> {
    let user = principal.user();
    let (key, address, amount) = wallet_amount(&req)?;
    require_own_wallet(user, &address)?;
    let body = json!({"success": true, "address": address, "stakedAmount": amount});
    let movement = Movement::new(
        user.id,
        address,
        MovementKind::Stake,
        amount,
        state.clock.now(),
    );
    move_tokens(
        state,
        key,
        movement,
        body,
        ("totalStaked", Holding::Staked),
        None,
    )
    .await
}

/// `POST /api/tokenomics/unstake` `{address, amount}`: stake back to balance, leaving staked
/// what the wallet's votes on open proposals lock.
pub async fn unstake(
    req: Request,
    principal: Principal,
    state: &AppState,
) -> Result<Response<Body>, ApiError> {
    let user = principal.user();
    let (key, address, amount) = wallet_amount(&req)?;
    require_own_wallet(user, &address)?;
    let read = WalletRead(address);
    // An absent wallet keeps no locks; the movement then answers 404.
    let locks = state
        .store
        .first_read(&read, prefetched(&req))
        .await?
        .map(|wallet| wallet.locks)
        .unwrap_or_default();
    let address = read.0;
    let body = json!({"success": true, "address": address, "unstakedAmount": amount});
    let kind = MovementKind::Unstake { locks };
    let movement = Movement::new(user.id, address, kind, amount, state.clock.now());
    move_tokens(
        state,
        key,
        movement,
        body,
        ("totalStaked", Holding::Staked),
        None,
    )
    .await
}

/// What `unstake` reads first: the wallet, for its stake locks.
pub fn unstake_first_read(req: &Request, _: Option<Uuid>) -> Option<WalletRead> {
    body_string(req, "address")
        .and_then(|address| WalletAddress::parse(&address).ok())
        .map(WalletRead)
}

/// `POST /api/tokenomics/mint` `{address, amount}`: administrators credit any wallet.
pub async fn mint(
    req: Request,
    principal: Principal,
    state: &AppState,
) -> Result<Response<Body>, ApiError> {
    let user = principal.user();
    require_admin(&principal, state)?;
    let (key, address, amount) = wallet_amount(&req)?;
    let movement = Movement::new(
        user.id,
        address.clone(),
        MovementKind::Mint,
        amount,
        state.clock.now(),
    );
    let body = json!({"success": true, "transactionId": movement.id, "address": address, "amount": amount});
    let minted = audit_context(&req, state, Actor::User(user.id), movement.at)
        .event(AuditEventType::TokensMinted, address.as_str())
        .with_amount(&amount.to_string())
        .with_transaction(movement.id);
    let figure = ("balance", Holding::Balance);
    move_tokens(state, key, movement, body, figure, Some(minted)).await
}
