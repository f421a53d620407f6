//! Rate limiting that holds across every Lambda instance: sliding-window counters in DynamoDB
//! (see `window` for the arithmetic, the README for the policy).

mod lockout;
mod window;

use lambda_http::Request;
use uuid::Uuid;

pub use lockout::{
    LOCKOUT_SECONDS, MAX_FAILED_LOGINS, Reservation, lockout_seconds, reserve_login_attempt,
};
pub use window::{Decision, WINDOW_MS, WindowPosition, decide};

use crate::auth::Claims;
use crate::config::RateLimits;
use crate::domain::User;
use crate::http::{bearer_token, source_ip};
use crate::routes::{RateLimit, Route};
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
    /// The category of a request to `route`, or `None` for an exempt route. `admin`: the
    /// request's verified token says its user is an administrator.
    pub fn of(route: &Route, admin: bool) -> Option<Self> {
        match route.rate_limit {
            RateLimit::Exempt => None,
            RateLimit::Auth => Some(Self::Auth),
            RateLimit::Read | RateLimit::Write if admin => Some(Self::Admin),
            RateLimit::Read => Some(Self::Read),
            RateLimit::Write => Some(Self::Write),
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

/// The keys a route's handler reads first, given its request and the claims of its verified
/// token.
pub type FirstReadKeys = fn(&Route, &Request, Option<&Claims>) -> Vec<keys::Key>;

/// One route's counter for one category, per identity (the README's per-route buckets).
#[derive(Clone, Copy)]
struct Bucket<'a> {
    category: Category,
    route: &'a Route,
}

/// Counts the request and decides on it: one counter write, concurrent with one read (the
/// previous window's counter, batched with the caller's session when a token verifies and with
/// the keys the handler reads first). Hands the session and the first reads to the handler in
/// the request's extensions. A refused request makes no further call.
pub async fn admit(
    req: &mut Request,
    state: &AppState,
    route: &Route,
    now_ms: u64,
    first_read_keys: FirstReadKeys,
) -> Result<Admission, ApiError> {
    if route.rate_limit == RateLimit::Exempt {
        return Ok(Admission::Unlimited);
    }
    let tokens = state.tokens()?;
    let claims = bearer_token(req).and_then(|token| tokens.verify(token).ok());
    let Some(category) = Category::of(route, claims.as_ref().is_some_and(|c| c.adm)) else {
        return Ok(Admission::Unlimited);
    };
    let first_reads = first_read_keys(route, req, claims.as_ref());
    let ip = Identity::Ip(source_ip(req).unwrap_or("unknown").to_owned());
    let counted = identify(category, claims.as_ref(), &ip);
    let bucket = Bucket { category, route };
    let position = WindowPosition::at(now_ms);
    let store = &state.store;
    let limits = &state.config.rate_limits;
    let mut reads = first_reads.clone();
    if let Some(claims) = &claims {
        reads.extend(Session::keys(claims.sub, claims.jti));
    }
    let outcome = match count(store, limits, bucket, &counted, position, reads).await {
        Err(error) => Err(error),
        Ok(counted_request) => {
            hand_over_first_reads(req, first_reads, &counted_request.items);
            let session = match &claims {
                Some(claims) => resolve(req, claims, &counted_request.items),
                None => Ok(true),
            };
            match session {
                Err(error) => Err(error),
                Ok(true) => Ok(counted_request.decision),
                Ok(false) if counted == ip => Ok(counted_request.decision),
                Ok(false) => {
                    let ip_bucket = Bucket {
                        category: Category::of(route, false).unwrap_or(category),
                        route,
                    };
                    recount_against_the_ip(
                        store,
                        limits,
                        bucket,
                        &counted,
                        counted_request.hit,
                        ip_bucket,
                        &ip,
                        position,
                    )
                    .await
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

/// Whom a request counts against: a verified token's user, except on auth routes, which always
/// count against the source IP (tokens of many accounts must not open many login buckets). A
/// token found revoked later is recounted against the IP (`recount_against_the_ip`).
fn identify(category: Category, claims: Option<&Claims>, ip: &Identity) -> Identity {
    match claims {
        Some(claims) if category != Category::Auth => Identity::User(claims.sub),
        _ => ip.clone(),
    }
}

/// Hands the token's session to the handler (`ResolvedSession`); whether it is valid: neither
/// revoked nor its user inactive or gone.
fn resolve(req: &mut Request, claims: &Claims, items: &[Item]) -> Result<bool, StoreError> {
    let session = Session::from_items(items, claims.sub, claims.jti)?;
    let valid = session
        .user
        .filter(|user| user.is_active && !session.revoked);
    let is_valid = valid.is_some();
    req.extensions_mut()
        .insert(ResolvedSession(valid.map(|user| (user, claims.clone()))));
    Ok(is_valid)
}

/// Not the user's request after all: gives the user's count back and charges the IP.
#[allow(clippy::too_many_arguments)]
async fn recount_against_the_ip(
    store: &Store,
    limits: &RateLimits,
    user_bucket: Bucket<'_>,
    user: &Identity,
    user_was_hit: bool,
    ip_bucket: Bucket<'_>,
    ip: &Identity,
    position: WindowPosition,
) -> Result<Decision, StoreError> {
    let user_key = counter_key(user_bucket, user, position.start_seconds());
    let refund = async {
        match user_was_hit {
            true => store.refund_counter(&user_key).await,
            false => Ok(()),
        }
    };
    let (refund, ip_count) = tokio::join!(
        refund,
        count(store, limits, ip_bucket, ip, position, Vec::new())
    );
    refund?;
    ip_count.map(|counted| counted.decision)
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

fn counter_key(bucket: Bucket, identity: &Identity, window_start_seconds: u64) -> keys::Key {
    keys::rate_counter(
        bucket.category.name(),
        bucket.route.function,
        &identity.key_part(),
        window_start_seconds,
    )
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
    bucket: Bucket<'_>,
    identity: &Identity,
    position: WindowPosition,
    mut reads: Vec<keys::Key>,
) -> Result<Counted, StoreError> {
    let limit = bucket.category.limit(limits);
    let now = (position.start_ms + position.elapsed_ms) as i64 / 1000;
    let current_key = counter_key(bucket, identity, position.start_seconds());
    let previous_key = counter_key(bucket, identity, position.previous_start_seconds());
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
        use crate::routes::{HEALTH, LIST_JOBS, LOGIN, ME, TRANSFER};
        assert_eq!(Category::of(&HEALTH, false), None);
        assert_eq!(Category::of(&HEALTH, true), None);
        assert_eq!(Category::of(&LOGIN, false), Some(Category::Auth));
        assert_eq!(Category::of(&ME, true), Some(Category::Auth));
        assert_eq!(Category::of(&LIST_JOBS, false), Some(Category::Read));
        assert_eq!(Category::of(&TRANSFER, false), Some(Category::Write));
        assert_eq!(Category::of(&TRANSFER, true), Some(Category::Admin));
        assert_eq!(Category::of(&LIST_JOBS, true), Some(Category::Admin));
    }

    #[test]
    fn auth_routes_count_against_the_ip_even_with_a_token() {
        let claims = Claims {
            sub: Uuid::new_v4(),
            username: "alice".into(),
            iat: 0,
            exp: 0,
            jti: Uuid::new_v4(),
            iss: String::new(),
            aud: String::new(),
            adm: false,
        };
        let ip = Identity::Ip("203.0.113.1".into());
        assert_eq!(identify(Category::Auth, Some(&claims), &ip), ip);
        assert_eq!(
            identify(Category::Read, Some(&claims), &ip),
            Identity::User(claims.sub)
        );
        assert_eq!(identify(Category::Write, None, &ip), ip);
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
