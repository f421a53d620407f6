use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::types::{
    AttributeValue, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};
use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use super::keys;
use super::{Item, Store, StoreError, TTL_ATTRIBUTE, find, number, string};
use crate::domain::{
    Amount, AuditEvent, IdempotencyKey, MAX_TOKENS, StakeLock, StakeLocks, TokenAmount,
    WalletAddress, rfc3339,
};

/// How long an `Idempotency-Key` is remembered.
const IDEMPOTENCY_TTL: Duration = Duration::hours(24);

/// A wallet's stake locks: a map from proposal id to `{weight, until}` (numbers: smallest units,
/// epoch seconds), and the number of times it was written.
pub(super) const LOCKS: &str = "locks";
const LOCK_VERSION: &str = "lock_version";
const LOCK_WEIGHT: &str = "weight";
const LOCK_UNTIL: &str = "until";

/// The two figures of a wallet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holding {
    Balance,
    Staked,
}

impl Holding {
    fn attribute(self) -> &'static str {
        match self {
            Self::Balance => "balance",
            Self::Staked => "staked",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wallet {
    pub user_id: Uuid,
    pub balance: TokenAmount,
    pub staked: TokenAmount,
    pub locks: StakeLocks,
}

/// The wallet at `address` among read items (`keys::wallet`).
pub fn wallet_in(items: &[Item], address: &WalletAddress) -> Result<Option<Wallet>, StoreError> {
    find(items, &keys::wallet(address.as_str()))
        .map(Wallet::from_item)
        .transpose()
}

impl Wallet {
    pub fn holding(&self, holding: Holding) -> TokenAmount {
        match holding {
            Holding::Balance => self.balance,
            Holding::Staked => self.staked,
        }
    }

    pub(super) fn from_item(item: &Item) -> Result<Self, StoreError> {
        let user_id = item
            .get("user_id")
            .and_then(|value| value.as_s().ok())
            .and_then(|id| id.parse().ok())
            .ok_or_else(|| StoreError::Unexpected("wallet without a user_id".into()))?;
        Ok(Self {
            user_id,
            balance: tokens(item, Holding::Balance.attribute())?,
            staked: tokens(item, Holding::Staked.attribute())?,
            locks: stake_locks(item)?,
        })
    }
}

/// The stake locks of a wallet item; none before its first vote.
fn stake_locks(item: &Item) -> Result<StakeLocks, StoreError> {
    let malformed = || StoreError::Unexpected("malformed stake locks".into());
    let version = match item.get(LOCK_VERSION) {
        None => 0,
        Some(version) => version
            .as_n()
            .ok()
            .and_then(|version| version.parse().ok())
            .ok_or_else(malformed)?,
    };
    let by_proposal = match item.get(LOCKS) {
        None => BTreeMap::new(),
        Some(locks) => locks
            .as_m()
            .map_err(|_| malformed())?
            .iter()
            .map(|(proposal_id, lock)| {
                let lock = lock.as_m().map_err(|_| malformed())?;
                let until = lock
                    .get(LOCK_UNTIL)
                    .and_then(|until| until.as_n().ok())
                    .and_then(|until| until.parse().ok())
                    .and_then(|until| OffsetDateTime::from_unix_timestamp(until).ok())
                    .ok_or_else(malformed)?;
                let lock = StakeLock {
                    weight: tokens(lock, LOCK_WEIGHT)?,
                    until,
                };
                Ok((proposal_id.parse().map_err(|_| malformed())?, lock))
            })
            .collect::<Result<_, StoreError>>()?,
    };
    Ok(StakeLocks {
        by_proposal,
        version,
    })
}

/// Stake locks as the wallet item's `locks` map.
pub(super) fn locks_attribute(locks: &BTreeMap<Uuid, StakeLock>) -> AttributeValue {
    AttributeValue::M(
        locks
            .iter()
            .map(|(proposal_id, lock)| {
                let lock = HashMap::from([
                    (LOCK_WEIGHT.to_owned(), units(lock.weight)),
                    (LOCK_UNTIL.to_owned(), number(lock.until.unix_timestamp())),
                ]);
                (proposal_id.to_string(), AttributeValue::M(lock))
            })
            .collect(),
    )
}

/// That a wallet's locks were not written since they were read at `:lock_version`. The
/// attribute is absent until the first write and never removed after it, so its absence means
/// version 0.
pub(super) const LOCKS_UNCHANGED: &str =
    "(attribute_not_exists(lock_version) OR lock_version = :lock_version)";

pub(super) fn lock_version(version: u64) -> AttributeValue {
    AttributeValue::N(version.to_string())
}

/// A stored whole number of smallest units. Amounts are mapped by hand, not with serde_dynamo:
/// it has no 128-bit numbers (serde's default refuses `u128`), and amounts need up to 31 digits of
/// DynamoDB's 38.
pub(super) fn tokens(item: &Item, attribute: &str) -> Result<TokenAmount, StoreError> {
    item.get(attribute)
        .and_then(|value| value.as_n().ok())
        .and_then(|units| units.parse::<u128>().ok())
        .map(TokenAmount::from_units)
        .ok_or_else(|| StoreError::Unexpected(format!("{attribute} is not a whole number")))
}

pub(super) fn units(tokens: TokenAmount) -> AttributeValue {
    AttributeValue::N(tokens.units().to_string())
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MovementKind {
    /// From the movement's wallet to `to`.
    Transfer { to: WalletAddress },
    /// From the wallet's balance to its stake.
    Stake,
    /// From the wallet's stake to its balance, leaving staked what the wallet's votes lock
    /// (`locks`, as read before the movement).
    Unstake { locks: StakeLocks },
    /// New tokens onto the wallet's balance.
    Mint,
}

impl MovementKind {
    fn as_str(&self) -> &'static str {
        match self {
            Self::Transfer { .. } => "transfer",
            Self::Stake => "stake",
            Self::Unstake { .. } => "unstake",
            Self::Mint => "mint",
        }
    }
}

/// TokenAmount to move, recorded as one ledger entry in the wallet's partition.
#[derive(Debug, Clone)]
pub struct Movement {
    pub id: Uuid,
    /// The user asking; wallets debited must be theirs.
    pub actor: Uuid,
    pub wallet: WalletAddress,
    pub kind: MovementKind,
    pub amount: Amount,
    pub at: OffsetDateTime,
}

/// What one wallet undergoes in a movement.
struct WalletChange<'a> {
    address: &'a WalletAddress,
    owner: Option<Uuid>,
    debit: Option<Holding>,
    credit: Option<Holding>,
    /// The locks that the debit must leave staked, as read.
    locks: Option<&'a StakeLocks>,
}

impl Movement {
    pub fn new(
        actor: Uuid,
        wallet: WalletAddress,
        kind: MovementKind,
        amount: Amount,
        at: OffsetDateTime,
    ) -> Self {
        Self {
            id: Uuid::now_v7(),
            actor,
            wallet,
            kind,
            amount,
            at,
        }
    }

    fn changes(&self) -> Vec<WalletChange<'_>> {
        let own = |debit, credit| WalletChange {
            address: &self.wallet,
            owner: Some(self.actor),
            debit: Some(debit),
            credit,
            locks: None,
        };
        match &self.kind {
            MovementKind::Transfer { to } => vec![
                own(Holding::Balance, None),
                WalletChange {
                    address: to,
                    owner: None,
                    debit: None,
                    credit: Some(Holding::Balance),
                    locks: None,
                },
            ],
            MovementKind::Stake => vec![own(Holding::Balance, Some(Holding::Staked))],
            MovementKind::Unstake { locks } => vec![WalletChange {
                locks: Some(locks),
                ..own(Holding::Staked, Some(Holding::Balance))
            }],
            MovementKind::Mint => vec![WalletChange {
                address: &self.wallet,
                owner: None,
                debit: None,
                credit: Some(Holding::Balance),
                locks: None,
            }],
        }
    }

    /// What the request asked for, whatever its id and time: SHA-256 of a canonical text.
    pub fn fingerprint(&self) -> String {
        let to = match &self.kind {
            MovementKind::Transfer { to } => to.as_str(),
            _ => "",
        };
        let canonical = format!(
            "{}\n{}\n{}\n{}",
            self.kind.as_str(),
            self.wallet,
            to,
            self.amount.units()
        );
        STANDARD_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
    }
}

/// A response kept under an `Idempotency-Key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    pub status: u16,
    pub body: String,
}

#[derive(Debug)]
pub enum MovementOutcome {
    Applied,
    /// The key was used before for the same request: nothing moved this time.
    Replayed(StoredResponse),
}

#[derive(Debug, thiserror::Error)]
pub enum MovementError {
    #[error("wallet {0} not found")]
    WalletNotFound(WalletAddress),
    #[error("the wallet belongs to another user")]
    NotOwner,
    #[error("insufficient {0:?}")]
    Insufficient(Holding),
    /// The stake that would remain is below what the wallet's votes lock until `unlocked_at`.
    #[error("{locked:?} of the stake is locked by votes")]
    Locked {
        locked: TokenAmount,
        unlocked_at: OffsetDateTime,
    },
    /// The wallet's stake locks were written (by a vote) after they were read.
    #[error("the wallet's stake locks changed")]
    LocksChanged,
    #[error("{0:?} would exceed the maximum")]
    HoldingLimit(Holding),
    #[error("idempotency key used for another request")]
    IdempotencyKeyReused,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Store {
    pub async fn wallet(&self, address: &WalletAddress) -> Result<Option<Wallet>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(keys::wallet(address.as_str()).attributes()))
            .consistent_read(true)
            .send()
            .await?;
        output.item.as_ref().map(Wallet::from_item).transpose()
    }

    /// Moves tokens in one transaction: every wallet update (each conditioned on ownership,
    /// sufficiency and the holding limit), the ledger entry and, with an `Idempotency-Key`,
    /// the record of `response` under that key, conditioned on the key being new or expired,
    /// and the movement's audit `event` if it has one (a mint). So either all of it happens once,
    /// or nothing does.
    pub async fn apply_movement(
        &self,
        movement: &Movement,
        idempotency: Option<(&IdempotencyKey, &StoredResponse)>,
        event: Option<&AuditEvent>,
    ) -> Result<MovementOutcome, MovementError> {
        let mut items = Vec::new();
        if let Some((key, response)) = idempotency {
            items.push(self.idempotency_record(movement, key, response));
        }
        let changes = movement.changes();
        for change in &changes {
            items.push(self.wallet_update(change, movement.amount, movement.at)?);
        }
        items.push(self.ledger_entry(movement)?);
        if let Some(event) = event {
            items.push(self.audit_put(event)?);
        }
        let Err(refusal) = self.transact(items).await? else {
            if let Some(event) = event {
                event.log();
            }
            return Ok(MovementOutcome::Applied);
        };
        // The idempotency record, when there is one, comes first; then the wallets' updates.
        let first_change = usize::from(idempotency.is_some());
        if idempotency.is_some()
            && let Some(record) = refusal.refused(0)
        {
            let record = record.ok_or_else(|| {
                StoreError::Unexpected("no idempotency record in the cancellation".into())
            })?;
            return replay(record, &movement.fingerprint());
        }
        for (index, change) in changes.iter().enumerate() {
            if let Some(wallet) = refusal.refused(first_change + index) {
                return Err(why_refused(change, wallet, movement.amount, movement.at));
            }
        }
        Err(StoreError::Unexpected("movement cancelled without a failed condition".into()).into())
    }

    fn idempotency_record(
        &self,
        movement: &Movement,
        key: &IdempotencyKey,
        response: &StoredResponse,
    ) -> TransactWriteItem {
        let mut item = keys::idempotency(movement.actor, key.as_str()).attributes();
        item.extend([
            ("fingerprint".to_owned(), string(movement.fingerprint())),
            ("status".to_owned(), number(response.status.into())),
            ("body".to_owned(), string(&response.body)),
            ("transaction_id".to_owned(), string(movement.id.to_string())),
            (
                TTL_ATTRIBUTE.to_owned(),
                number((movement.at + IDEMPOTENCY_TTL).unix_timestamp()),
            ),
        ]);
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(PK) OR #expires_at <= :now")
            .expression_attribute_names("#expires_at", TTL_ATTRIBUTE)
            .expression_attribute_values(":now", number(movement.at.unix_timestamp()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .expect("table, item and condition are set");
        TransactWriteItem::builder().put(put).build()
    }

    fn wallet_update(
        &self,
        change: &WalletChange,
        amount: Amount,
        at: OffsetDateTime,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut assignments = Vec::new();
        let mut conditions = vec!["attribute_exists(PK)"];
        let mut names = HashMap::new();
        let mut values = HashMap::from([(":amount".to_owned(), units(amount.tokens()))]);
        if let Some(owner) = change.owner {
            conditions.push("user_id = :owner");
            values.insert(":owner".to_owned(), string(owner.to_string()));
        }
        if let Some(debit) = change.debit {
            let locked = change
                .locks
                .map_or(TokenAmount::ZERO, |locks| locks.locked(at));
            let required = amount
                .tokens()
                .checked_add(locked)
                .ok_or_else(|| StoreError::Unexpected("locked stake overflows".into()))?;
            assignments.push("#debit = #debit - :amount");
            conditions.push("#debit >= :required");
            names.insert("#debit".to_owned(), debit.attribute().to_owned());
            values.insert(":required".to_owned(), units(required));
        }
        if let Some(locks) = change.locks {
            conditions.push(LOCKS_UNCHANGED);
            values.insert(":lock_version".to_owned(), lock_version(locks.version));
        }
        if let Some(credit) = change.credit {
            assignments.push("#credit = #credit + :amount");
            conditions.push("#credit <= :ceiling");
            names.insert("#credit".to_owned(), credit.attribute().to_owned());
            values.insert(
                ":ceiling".to_owned(),
                units(TokenAmount::from_units(MAX_TOKENS - amount.units())),
            );
        }
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(keys::wallet(change.address.as_str()).attributes()))
            .update_expression(format!("SET {}", assignments.join(", ")))
            .condition_expression(conditions.join(" AND "))
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .expect("table, key and expressions are set");
        Ok(TransactWriteItem::builder().update(update).build())
    }

    fn ledger_entry(&self, movement: &Movement) -> Result<TransactWriteItem, StoreError> {
        let at = rfc3339(movement.at)?;
        let mut item = keys::ledger_entry(movement.wallet.as_str(), movement.id).attributes();
        item.extend([
            ("transaction_id".to_owned(), string(movement.id.to_string())),
            ("kind".to_owned(), string(movement.kind.as_str())),
            ("amount".to_owned(), units(movement.amount.tokens())),
            ("user_id".to_owned(), string(movement.actor.to_string())),
            ("created_at".to_owned(), string(at)),
        ]);
        if let MovementKind::Transfer { to } = &movement.kind {
            item.insert("to_address".to_owned(), string(to.as_str()));
        }
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(PK)")
            .build()
            .expect("table, item and condition are set");
        Ok(TransactWriteItem::builder().put(put).build())
    }
}

fn replay(record: &Item, fingerprint: &str) -> Result<MovementOutcome, MovementError> {
    let text = |name: &str| record.get(name).and_then(|value| value.as_s().ok());
    if text("fingerprint").map(String::as_str) != Some(fingerprint) {
        return Err(MovementError::IdempotencyKeyReused);
    }
    let status = record
        .get("status")
        .and_then(|value| value.as_n().ok())
        .and_then(|status| status.parse().ok());
    match (status, text("body")) {
        (Some(status), Some(body)) => Ok(MovementOutcome::Replayed(StoredResponse {
            status,
            body: body.clone(),
        })),
        _ => Err(StoreError::Unexpected("incomplete idempotency record".into()).into()),
    }
}

/// Which of a wallet update's conditions failed, from the wallet as it was (`None`: absent).
fn why_refused(
    change: &WalletChange,
    wallet: Option<&Item>,
    amount: Amount,
    at: OffsetDateTime,
) -> MovementError {
    let Some(item) = wallet else {
        return MovementError::WalletNotFound(change.address.clone());
    };
    let wallet = match Wallet::from_item(item) {
        Ok(wallet) => wallet,
        Err(error) => return error.into(),
    };
    if change.owner.is_some_and(|owner| owner != wallet.user_id) {
        return MovementError::NotOwner;
    }
    if let Some(debit) = change.debit
        && wallet.holding(debit) < amount.tokens()
    {
        return MovementError::Insufficient(debit);
    }
    if let Some(locks) = change.locks {
        if wallet.locks.version != locks.version {
            return MovementError::LocksChanged;
        }
        let remaining = TokenAmount::from_units(wallet.staked.units() - amount.units());
        if let Some(unlocked_at) = wallet.locks.unlocked_at(remaining, at) {
            return MovementError::Locked {
                locked: wallet.locks.locked(at),
                unlocked_at,
            };
        }
    }
    if let Some(credit) = change.credit
        && wallet.holding(credit).units() > MAX_TOKENS - amount.units()
    {
        return MovementError::HoldingLimit(credit);
    }
    StoreError::Unexpected("wallet update refused for no known reason".into()).into()
}
