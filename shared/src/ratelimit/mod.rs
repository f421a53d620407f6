//! Rate limiting that holds across every Lambda instance: sliding-window counters in DynamoDB
//! (see `window` for the arithmetic, the README for the policy).

mod lockout;
mod window;

use uuid::Uuid;

pub use lockout::{
    LOCKOUT_SECONDS, MAX_FAILED_LOGINS, Reservation, lockout_seconds, reserve_login_attempt,
};
pub use window::{Decision, WINDOW_MS, WindowPosition, decide};

use crate::auth::{Claims, Credentials};
use crate::config::RateLimits;
use crate::routes::{RateLimit, Route};
use crate::store::{Item, Key, Prefetched, Session, Store, StoreError, counter_hits, keys};

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

pub enum Verdict {
    /// An exempt route, or DynamoDB failed on a category that fails open.
    Unlimited,
    Admitted(Decision),
    Refused(Decision),
}

/// What the rate limiter made of a request: its verdict, what its token's session came to, and
/// the items of the route's first read.
pub struct Admission {
    pub verdict: Verdict,
    pub credentials: Credentials,
    pub prefetched: Option<Prefetched>,
}

/// Who is asking, as far as the request alone tells: its verified token's claims, and the source
/// IP API Gateway saw.
pub struct Caller<'a> {
    pub claims: Option<Claims>,
    pub ip: &'a str,
}

/// One route's counter for one category, per identity (the README's per-route buckets).
#[derive(Clone, Copy)]
struct Bucket<'a> {
    category: Category,
    route: &'a Route,
}

/// Counts a request to `route` and decides on it: one counter write, concurrent with one read
/// (the previous window's counter, batched with the caller's session when a token verified and
/// with `first_read`, the keys the route's handler reads first). An exempt route, or a failed
/// count on a category that fails open, still resolves the session (a read of its own). A
/// refused request makes no further call.
pub async fn admit(
    store: &Store,
    limits: &RateLimits,
    route: &Route,
    caller: Caller<'_>,
    first_read: Vec<Key>,
    now_ms: u64,
) -> Result<Admission, StoreError> {
    let Caller { claims, ip } = caller;
    let admin = claims.as_ref().is_some_and(|claims| claims.adm);
    let Some(category) = Category::of(route, admin) else {
        return unlimited(store, route, claims).await;
    };
    let ip = Identity::Ip(ip.to_owned());
    let counted = identify(category, claims.as_ref(), &ip);
    let bucket = Bucket { category, route };
    let position = WindowPosition::at(now_ms);
    let mut reads = first_read.clone();
    if let Some(claims) = &claims {
        reads.extend(Session::keys(claims.sub, claims.jti, claims.sid));
    }
    match count(store, limits, bucket, &counted, position, reads).await {
        Ok(counted_request) => {
            let credentials = match claims {
                Some(claims) => resolve(claims, &counted_request.items)?,
                None => Credentials::Missing,
            };
            let prefetched = (!first_read.is_empty())
                .then(|| Prefetched::new(first_read, &counted_request.items));
            let decision = match &credentials {
                Credentials::Refused(Some(_)) if counted != ip => {
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
                    .await?
                }
                _ => counted_request.decision,
            };
            let verdict = match decision.admitted {
                true => Verdict::Admitted(decision),
                false => Verdict::Refused(decision),
            };
            Ok(Admission {
                verdict,
                credentials,
                prefetched,
            })
        }
        Err(StoreError::Unavailable(reason)) if category != Category::Auth => {
            tracing::warn!(%reason, category = category.name(), "rate limiter unavailable; failing open");
            unlimited(store, route, claims).await
        }
        Err(error) => Err(error),
    }
}

/// Admits without counting; a route that acts for the caller reads the session by itself.
async fn unlimited(
    store: &Store,
    route: &Route,
    claims: Option<Claims>,
) -> Result<Admission, StoreError> {
    let credentials = match claims {
        Some(claims) if !route.needs_principal => Credentials::Unresolved(claims),
        Some(claims) => {
            let session = store.session(claims.sub, claims.jti, claims.sid).await?;
            Credentials::of_session(claims, session)
        }
        None => Credentials::Missing,
    };
    Ok(Admission {
        verdict: Verdict::Unlimited,
        credentials,
        prefetched: None,
    })
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

/// What a verified token's session, read among `items`, comes to.
fn resolve(claims: Claims, items: &[Item]) -> Result<Credentials, StoreError> {
    let session = Session::from_items(items, claims.sub, claims.jti, claims.sid)?;
    Ok(Credentials::of_session(claims, session))
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
        let route = |method, path, rate_limit| Route {
            function: "f",
            method,
            path,
            rate_limit,
            needs_principal: true,
        };
        let (health, login, me) = (
            route("GET", "/health", RateLimit::Exempt),
            route("POST", "/api/auth/login", RateLimit::Auth),
            route("GET", "/api/auth/me", RateLimit::Auth),
        );
        let (list_jobs, transfer) = (
            route("GET", "/api/scheduler/jobs", RateLimit::Read),
            route("POST", "/api/tokenomics/transfer", RateLimit::Write),
        );
        assert_eq!(Category::of(&health, false), None);
        assert_eq!(Category::of(&health, true), None);
        assert_eq!(Category::of(&login, false), Some(Category::Auth));
        assert_eq!(Category::of(&me, true), Some(Category::Auth));
        assert_eq!(Category::of(&list_jobs, false), Some(Category::Read));
        assert_eq!(Category::of(&transfer, false), Some(Category::Write));
        assert_eq!(Category::of(&transfer, true), Some(Category::Admin));
        assert_eq!(Category::of(&list_jobs, true), Some(Category::Admin));
    }

    #[test]
    fn auth_routes_count_against_the_ip_even_with_a_token() {
        let claims = Claims {
            sub: Uuid::new_v4(),
            username: "alice".into(),
            iat: 0,
            exp: 0,
            jti: Uuid::new_v4(),
            sid: Uuid::now_v7(),
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
