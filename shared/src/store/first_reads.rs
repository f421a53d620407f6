//! What a handler reads first, typed. A route declares its first read; the rate limiter fetches
//! its keys in its own `BatchGetItem` and hands the items over (`Prefetched`); the handler gets
//! typed values from `Store::first_read`, which reads for itself only when the limiter did not
//! fetch the same keys (when it failed open, say). Handlers never see items or keys.

use uuid::Uuid;

use super::keys::{self, Key};
use super::{
    Item, LoginState, MfaLoginState, RefreshLookup, SecondFactorState, Store, StoreError, Wallet,
    api_key_in, job_in, proposal_in, user_in, wallet_in,
};
use crate::domain::{
    ApiKey, Job, MfaLoginToken, Proposal, RefreshToken, User, Username, WalletAddress,
};

/// Items read together, and what a handler makes of them.
pub trait FirstRead {
    type Value;
    fn keys(&self) -> Vec<Key>;
    fn value(&self, items: &[Item]) -> Result<Self::Value, StoreError>;
}

/// The items the rate limiter read for a route's first read.
#[derive(Clone, Debug)]
pub struct Prefetched {
    keys: Vec<Key>,
    items: Vec<Item>,
}

impl Prefetched {
    /// The items among `read` that have one of `keys`.
    pub fn new(keys: Vec<Key>, read: &[Item]) -> Self {
        let items = read
            .iter()
            .filter(|item| keys.iter().any(|key| key.identifies(item)))
            .cloned()
            .collect();
        Self { keys, items }
    }
}

impl Store {
    /// What `read` names: from `prefetched` when the rate limiter fetched the same keys,
    /// otherwise read now (one round trip).
    pub async fn first_read<R: FirstRead>(
        &self,
        read: &R,
        prefetched: Option<&Prefetched>,
    ) -> Result<R::Value, StoreError> {
        let keys = read.keys();
        match prefetched {
            Some(prefetched) if prefetched.keys == keys => read.value(&prefetched.items),
            _ => read.value(&self.get_items(keys).await?),
        }
    }
}

/// Login's: the username's credential and its failed attempts.
pub struct LoginRead(pub Username);

impl FirstRead for LoginRead {
    type Value = LoginState;

    fn keys(&self) -> Vec<Key> {
        LoginState::keys(self.0.as_str())
    }

    fn value(&self, items: &[Item]) -> Result<LoginState, StoreError> {
        LoginState::from_items(items, self.0.as_str())
    }
}

/// A user's job.
pub struct JobRead {
    pub owner: Uuid,
    pub job: Uuid,
}

impl FirstRead for JobRead {
    type Value = Option<Job>;

    fn keys(&self) -> Vec<Key> {
        vec![keys::job(self.owner, self.job)]
    }

    fn value(&self, items: &[Item]) -> Result<Option<Job>, StoreError> {
        job_in(items, self.owner, self.job)
    }
}

/// A wallet (unstake's, for its stake locks).
pub struct WalletRead(pub WalletAddress);

impl FirstRead for WalletRead {
    type Value = Option<Wallet>;

    fn keys(&self) -> Vec<Key> {
        vec![keys::wallet(self.0.as_str())]
    }

    fn value(&self, items: &[Item]) -> Result<Option<Wallet>, StoreError> {
        wallet_in(items, &self.0)
    }
}

/// Vote's: the voter's wallet (its stake and locks) and the proposal (when voting ends).
pub struct VoteRead {
    pub voter: WalletAddress,
    pub proposal: Uuid,
}

impl FirstRead for VoteRead {
    type Value = (Option<Wallet>, Option<Proposal>);

    fn keys(&self) -> Vec<Key> {
        vec![
            keys::wallet(self.voter.as_str()),
            keys::proposal(self.proposal),
        ]
    }

    fn value(&self, items: &[Item]) -> Result<Self::Value, StoreError> {
        Ok((
            wallet_in(items, &self.voter)?,
            proposal_in(items, self.proposal)?,
        ))
    }
}

/// Refresh's and revoke's: the refresh token's item, its session and its user, all named by the
/// token itself.
pub struct RefreshRead(pub RefreshToken);

impl FirstRead for RefreshRead {
    type Value = RefreshLookup;

    fn keys(&self) -> Vec<Key> {
        RefreshLookup::keys(&self.0)
    }

    fn value(&self, items: &[Item]) -> Result<RefreshLookup, StoreError> {
        RefreshLookup::from_items(items, &self.0)
    }
}

/// One of a user's API keys (another user's reads as absent).
pub struct ApiKeyRead {
    pub owner: Uuid,
    pub key: Uuid,
}

impl FirstRead for ApiKeyRead {
    type Value = Option<ApiKey>;

    fn keys(&self) -> Vec<Key> {
        vec![keys::api_key(self.key)]
    }

    fn value(&self, items: &[Item]) -> Result<Option<ApiKey>, StoreError> {
        Ok(api_key_in(items, self.key)?.filter(|key| key.user_id == self.owner))
    }
}

/// A user's profile, by id (the target of an administrator's action).
pub struct UserRead(pub Uuid);

impl FirstRead for UserRead {
    type Value = Option<User>;

    fn keys(&self) -> Vec<Key> {
        vec![keys::user(self.0)]
    }

    fn value(&self, items: &[Item]) -> Result<Option<User>, StoreError> {
        user_in(items, self.0)
    }
}

/// A user's second factor and wrong second factors (the MFA routes', by the caller's id).
pub struct SecondFactorRead(pub Uuid);

impl FirstRead for SecondFactorRead {
    type Value = SecondFactorState;

    fn keys(&self) -> Vec<Key> {
        SecondFactorState::keys(self.0)
    }

    fn value(&self, items: &[Item]) -> Result<SecondFactorState, StoreError> {
        SecondFactorState::from_items(items, self.0)
    }
}

/// A login's second step: its temp token's item, and the user's profile, factor and wrong
/// second factors, all named by the token.
pub struct MfaLoginRead(pub MfaLoginToken);

impl FirstRead for MfaLoginRead {
    type Value = MfaLoginState;

    fn keys(&self) -> Vec<Key> {
        MfaLoginState::keys(&self.0)
    }

    fn value(&self, items: &[Item]) -> Result<MfaLoginState, StoreError> {
        MfaLoginState::from_items(items, &self.0)
    }
}
