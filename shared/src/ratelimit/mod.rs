//! Rate limiting that holds across every Lambda instance: sliding-window counters in DynamoDB
//! (see `window` for the arithmetic, the README for the policy).

mod lockout;
mod window;

use lambda_http::http::Method;
use lambda_http::{Request, RequestExt};
use uuid::Uuid;

pub use lockout::{LOCKOUT_SECONDS, MAX_FAILED_LOGINS, lockout_seconds};
pub use window::{Decision, WINDOW_MS, WindowPosition, decide};

use crate::auth::Claims;
use crate::config::RateLimits;
use crate::domain::User;
use crate::http::{bearer_token, source_ip};
use crate::store::{Item, Session, Store, StoreError, counter_hits, keys};
use crate::{ApiError, AppState};

/// Counters outlive their window by one more, during which they weigh in as the previous one.
const COUNTER_TTL_SECONDS: i64 = 2 * (WINDOW_MS / 1000) as i64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Category {
    Auth,
    Write,
    Read,
    Admin,
}

impl Category {
    /// The category of a request, or `None` for the exempt health check.
    pub fn of(method: &Method, path: &str, admin: bool) -> Option<Self> {
        if path == "/health" {
            None
        } else if path.starts_with("/api/auth/") {
            Some(Self::Auth)
        } else if admin {
            Some(Self::Admin)
        } else if method == Method::GET || method == Method::HEAD {
            Some(Self::Read)
        } else {
            Some(Self::Write)
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Auth => "auth",
            Self::Write => "write",
            Self::Read => "read",
            Self::Admin => "admin",
        }
    }

    fn limit(self, limits: &RateLimits) -> u64 {
        match self {
            Self::Auth => limits.auth,
            Self::Write => limits.write,
            Self::Read => limits.read,
            Self::Admin => limits.admin,
        }
    }
}

/// Whom a request counts against: never anything the client can choose freely.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Identity {
    User(Uuid),
    Ip(String),
}

impl Identity {
    fn key_part(&self) -> String {
        match self {
            Self::User(id) => format!("user:{id}"),
            Self::Ip(ip) => format!("ip:{ip}"),
        }
    }
}

/// The caller's session, resolved while the rate limiter ran, so the handler need not read it
/// again. `None` inside: the token was revoked or its user inactive or gone.
#[derive(Clone, Debug)]
pub struct ResolvedSession(pub Option<(User, Claims)>);

/// The items a handler reads first, fetched in the rate limiter's read (see `admit`).
#[derive(Clone, Debug)]
pub struct FirstReads {
    keys: Vec<keys::Key>,
    items: Vec<Item>,
}

impl FirstReads {
    /// The items at `keys`: those the rate limiter read for this request, or else read now.
    pub async fn items_or_read(
        req: &Request,
        store: &Store,
        keys: Vec<keys::Key>,
    ) -> Result<Vec<Item>, StoreError> {
        match req.extensions().get::<Self>() {
            Some(first_reads) if first_reads.keys == keys => Ok(first_reads.items.clone()),
            _ => store.get_items(keys).await,
        }
    }
}

pub enum Admission {
    /// `/health`, or DynamoDB failed on a category that fails open.
    Unlimited,
    Admitted(Decision),
    Refused(Decision),
}

/// The keys a handler reads first, given its request and the claims of its verified token.
pub type FirstReadKeys = fn(&Request, Option<&Claims>) -> Vec<keys::Key>;

/// Counts the request and decides on it: one counter write, concurrent with one read (the
/// previous window's counter, batched with the caller's session when a token verifies and with
/// the keys the handler reads first). Hands the session and the first reads to the handler in
/// the request's extensions. A refused request makes no further call.
pub async fn admit(
    req: &mut Request,
    state: &AppState,
    now_ms: u64,
    first_read_keys: FirstReadKeys,
) -> Result<Admission, ApiError> {
    let claims = bearer_token(req).and_then(|token| state.tokens.verify(token).ok());
    let Some(category) = Category::of(
        req.method(),
        req.raw_http_path(),
        claims.as_ref().is_some_and(|c| c.adm),
    ) else {
        return Ok(Admission::Unlimited);
    };
    let first_reads = first_read_keys(req, claims.as_ref());
    let ip = Identity::Ip(source_ip(req).unwrap_or("unknown").to_owned());
    let position = WindowPosition::at(now_ms);
    let now = (now_ms / 1000) as i64;
    let store = &state.store;
    let limits = &state.config.rate_limits;

    let outcome = match claims {
        None => count(store, limits, category, &ip, position, first_reads.clone())
            .await
            .map(|counted| {
                hand_over_first_reads(req, first_reads, &counted.items);
                counted.decision
            }),
        Some(claims) => {
            let user = Identity::User(claims.sub);
            let mut reads = Session::keys(claims.sub, claims.jti).to_vec();
            reads.extend(first_reads.iter().cloned());
            match count(store, limits, category, &user, position, reads).await {
                Err(error) => Err(error),
                Ok(counted) => {
                    hand_over_first_reads(req, first_reads, &counted.items);
                    let session =
                        Session::from_items(&counted.items, claims.sub, claims.jti, time_at(now))?;
                    let valid = session
                        .user
                        .filter(|user| user.is_active && !session.revoked);
                    let is_valid = valid.is_some();
                    req.extensions_mut()
                        .insert(ResolvedSession(valid.map(|user| (user, claims))));
                    if is_valid {
                        Ok(counted.decision)
                    } else {
                        // Not the user's request after all: give the count back, charge the IP.
                        let ip_category = Category::of(req.method(), req.raw_http_path(), false)
                            .unwrap_or(category);
                        let user_key = counter_key(category, &user, position.start_seconds());
                        let refund = async {
                            match counted.hit {
                                true => store.refund_counter(&user_key).await,
                                false => Ok(()),
                            }
                        };
                        let (refund, ip_count) = tokio::join!(
                            refund,
                            count(store, limits, ip_category, &ip, position, Vec::new())
                        );
                        refund?;
                        ip_count.map(|counted| counted.decision)
                    }
                }
            }
        }
    };
    match outcome {
        Ok(decision) if decision.admitted => Ok(Admission::Admitted(decision)),
        Ok(decision) => Ok(Admission::Refused(decision)),
        Err(StoreError::Unavailable(reason)) if category != Category::Auth => {
            tracing::warn!(%reason, category = category.name(), "rate limiter unavailable; failing open");
            Ok(Admission::Unlimited)
        }
        Err(error) => Err(error.into()),
    }
}

fn hand_over_first_reads(req: &mut Request, keys: Vec<keys::Key>, read: &[Item]) {
    if keys.is_empty() {
        return;
    }
    let items = read
        .iter()
        .filter(|item| keys.iter().any(|key| crate::store::same_key(item, key)))
        .cloned()
        .collect();
    req.extensions_mut().insert(FirstReads { keys, items });
}

fn counter_key(category: Category, identity: &Identity, window_start_seconds: u64) -> keys::Key {
    keys::rate_counter(category.name(), &identity.key_part(), window_start_seconds)
}

fn time_at(seconds: i64) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(seconds)
        .unwrap_or_else(|_| time::OffsetDateTime::now_utc())
}

struct Counted {
    decision: Decision,
    /// Whether the counter took this request (it refuses to go past the limit).
    hit: bool,
    items: Vec<Item>,
}

/// Counts one request for `identity` and decides, reading `reads` in the same round trip as the
/// previous window's counter.
async fn count(
    store: &Store,
    limits: &RateLimits,
    category: Category,
    identity: &Identity,
    position: WindowPosition,
    mut reads: Vec<keys::Key>,
) -> Result<Counted, StoreError> {
    let limit = category.limit(limits);
    let now = (position.start_ms + position.elapsed_ms) as i64 / 1000;
    let current_key = counter_key(category, identity, position.start_seconds());
    let previous_key = counter_key(category, identity, position.previous_start_seconds());
    let expires_at = position.start_seconds() as i64 + COUNTER_TTL_SECONDS;
    reads.push(previous_key.clone());
    let (hits, items) = tokio::join!(
        store.hit_counter(&current_key, limit, expires_at, now),
        store.get_items(reads)
    );
    let (hits, items) = (hits?, items?);
    let previous = counter_hits(&items, &previous_key, now);
    Ok(Counted {
        decision: decide(limit, previous, hits, position),
        hit: hits.is_some(),
        items,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories() {
        let of = |method: Method, path: &str, admin: bool| Category::of(&method, path, admin);
        assert_eq!(of(Method::GET, "/health", false), None);
        assert_eq!(of(Method::GET, "/health", true), None);
        assert_eq!(
            of(Method::POST, "/api/auth/login", false),
            Some(Category::Auth)
        );
        assert_eq!(of(Method::GET, "/api/auth/me", true), Some(Category::Auth));
        assert_eq!(
            of(Method::GET, "/api/scheduler/jobs", false),
            Some(Category::Read)
        );
        assert_eq!(of(Method::GET, "/", false), Some(Category::Read));
        for method in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
            assert_eq!(
                of(method.clone(), "/api/tokenomics/transfer", false),
                Some(Category::Write)
            );
            assert_eq!(
                of(method, "/api/tokenomics/transfer", true),
                Some(Category::Admin)
            );
        }
        assert_eq!(
            of(Method::GET, "/api/scheduler/jobs", true),
            Some(Category::Admin)
        );
    }

    #[test]
    fn identities_never_collide() {
        let id = Uuid::new_v4();
        assert_ne!(
            Identity::User(id).key_part(),
            Identity::Ip(id.to_string()).key_part()
        );
    }
}
