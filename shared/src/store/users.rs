use aws_sdk_dynamodb::types::{AttributeValue, Put, ReturnValue, TransactWriteItem};
use serde::{Deserialize, Serialize};
use serde_dynamo::aws_sdk_dynamodb_1::{from_item, to_item};
use time::OffsetDateTime;
use uuid::Uuid;

use super::error::unless_refused;
use super::keys::{self, Key};
use super::login_attempts::{LoginAttempts, login_attempts_in};
use super::recovery::NewToken;
use super::sessions::{SessionRecord, session_in};
use super::{Item, Store, StoreError, find, number, string};
use crate::domain::{AuditEvent, User, rfc3339};

const NOT_EXISTS: &str = "attribute_not_exists(PK)";

#[derive(Debug, thiserror::Error)]
pub enum CreateUserError {
    #[error("username taken")]
    UsernameTaken,
    #[error("email taken")]
    EmailTaken,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What login needs to know about a username.
#[derive(Serialize, Deserialize)]
pub struct Credential {
    pub user_id: Uuid,
    pub password_hash: String,
    /// Whether the user has an enabled second factor: a login then asks for it.
    #[serde(default)]
    pub mfa: bool,
}

/// What login reads about a username before it verifies a password.
pub struct LoginState {
    pub credential: Option<Credential>,
    /// Its attempts that did not succeed.
    pub attempts: LoginAttempts,
}

impl LoginState {
    /// The items to read (one round trip), so that callers can batch them with others.
    pub fn keys(username: &str) -> Vec<Key> {
        vec![keys::username(username), keys::login_failures(username)]
    }

    pub fn from_items(items: &[Item], username: &str) -> Result<Self, StoreError> {
        let credential = find(items, &keys::username(username))
            .map(|item| from_item(item.clone()))
            .transpose()?;
        Ok(Self {
            credential,
            attempts: login_attempts_in(items, username)?,
        })
    }
}

pub enum LoginRecord {
    Recorded(User),
    Disabled,
}

/// A token's user, whether the token was revoked, and its session (`sid`).
pub struct Session {
    pub user: Option<User>,
    pub revoked: bool,
    pub record: Option<SessionRecord>,
}

impl Session {
    /// The items to read, so that callers can batch them with others.
    pub fn keys(user_id: Uuid, jti: Uuid, sid: Uuid) -> [Key; 3] {
        [
            keys::user(user_id),
            keys::revoked_token(jti),
            keys::session(sid),
        ]
    }

    /// A revocation counts while it is there, whatever its TTL: it is kept at least as long as
    /// its token verifies (`log_out`), and a jti names one token only.
    pub fn from_items(
        items: &[Item],
        user_id: Uuid,
        jti: Uuid,
        sid: Uuid,
    ) -> Result<Self, StoreError> {
        let user = find(items, &keys::user(user_id))
            .map(|item| from_item(item.clone()))
            .transpose()?;
        let revoked = find(items, &keys::revoked_token(jti)).is_some();
        let record = session_in(items, sid)?;
        Ok(Self {
            user,
            revoked,
            record,
        })
    }
}

fn with_key(mut item: Item, key: Key) -> Item {
    item.extend(key.attributes());
    item
}

impl Store {
    /// Writes the user, its username credential, its email reservation, its empty wallet, its
    /// `registered` event and its address's verification token in one transaction: either all
    /// exist afterwards or none does.
    pub async fn create_user(
        &self,
        user: &User,
        password_hash: &str,
        registered: &AuditEvent,
        verification: NewToken,
    ) -> Result<(), CreateUserError> {
        let mut profile = with_key(
            to_item(user).map_err(StoreError::from)?,
            keys::user(user.id),
        );
        profile.extend(keys::user_index(&user.username));
        let credential = Credential {
            user_id: user.id,
            password_hash: password_hash.to_owned(),
            mfa: false,
        };
        let credential = with_key(
            to_item(&credential).map_err(StoreError::from)?,
            keys::username(&user.username),
        );
        let email = with_key(
            [("user_id".to_owned(), string(user.id.to_string()))].into(),
            keys::email(&user.email),
        );
        let wallet = with_key(
            [
                ("user_id".to_owned(), string(user.id.to_string())),
                ("balance".to_owned(), number(0)),
                ("staked".to_owned(), number(0)),
            ]
            .into(),
            keys::wallet(user.wallet_address.as_str()),
        );
        let mut items: Vec<TransactWriteItem> = [profile, credential, email, wallet]
            .map(|item| {
                let put = Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(item))
                    .condition_expression(NOT_EXISTS)
                    .build()
                    .expect("table and item are set");
                TransactWriteItem::builder().put(put).build()
            })
            .into();
        items.push(self.audit_put(registered)?);
        items.push(self.verification_put(user, &verification)?);
        let Err(refusal) = self.transact(items).await? else {
            registered.log();
            return Ok(());
        };
        if refusal.failed(1) {
            Err(CreateUserError::UsernameTaken)
        } else if refusal.failed(2) {
            Err(CreateUserError::EmailTaken)
        } else {
            Err(refusal.unexpected("registration cancelled").into())
        }
    }

    pub async fn credential(&self, username: &str) -> Result<Option<Credential>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(keys::username(username).attributes()))
            .consistent_read(true)
            .send()
            .await?;
        Ok(output.item.map(from_item).transpose()?)
    }

    /// Sets `last_login`, only while the account is active.
    pub async fn record_login(
        &self,
        user_id: Uuid,
        at: OffsetDateTime,
    ) -> Result<LoginRecord, StoreError> {
        let at = rfc3339(at)?;
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(keys::user(user_id).attributes()))
            .update_expression("SET last_login = :at")
            .condition_expression("attribute_exists(PK) AND is_active = :active")
            .expression_attribute_values(":at", string(at))
            .expression_attribute_values(":active", AttributeValue::Bool(true))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        let Some(output) = unless_refused(result)? else {
            return Ok(LoginRecord::Disabled);
        };
        let item = output
            .attributes
            .ok_or_else(|| StoreError::Unexpected("update returned no attributes".into()))?;
        Ok(LoginRecord::Recorded(from_item(item)?))
    }

    /// The user a token names, whether the token was revoked, and its session, in one round
    /// trip.
    pub async fn session(
        &self,
        user_id: Uuid,
        jti: Uuid,
        sid: Uuid,
    ) -> Result<Session, StoreError> {
        let items = self
            .get_items(Session::keys(user_id, jti, sid).into())
            .await?;
        Session::from_items(&items, user_id, jti, sid)
    }
}
