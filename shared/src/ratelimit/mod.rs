//! Rate limiting that holds across every Lambda instance: sliding-window counters in DynamoDB
//! (see `window` for the arithmetic, docs/rate-limiting.md for the policy).

mod lockout;
mod window;

use time::OffsetDateTime;
use uuid::Uuid;

pub use lockout::{
    LOCKOUT_SECONDS, MAX_FAILED_LOGINS, Reservation, lockout_seconds, reserve_login_attempt,
};
pub use window::{Decision, Window, WindowPosition, decide};

use crate::auth::{Claims, Credentials, PresentedKey, TokenFault};
use crate::config::RateLimits;
use crate::routes::{RateLimit, Route};
use crate::store::{
    Item, Key, KeySession, Prefetched, Session, Store, StoreError, counter_hits, keys,
};

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

/// Whom a request counts against: never anything the client can choose freely (an API key's
/// counter is named by the hash of the secret shown: a client can only choose to show its own).
#[derive(Clone, Debug, PartialEq, Eq)]
enum Identity {
    User(Uuid),
    Ip(String),
    /// The SHA-256 of an API key's secret.
    Key(String),
}

impl Identity {
    fn key_part(&self) -> String {
        match self {
            Self::User(id) => format!("user:{id}"),
            Self::Ip(ip) => format!("ip:{ip}"),
            Self::Key(hash) => format!("key:{hash}"),
        }
    }
}

pub enum Verdict {
    /// An exempt route, or DynamoDB failed on a category that fails open.
    Unlimited,
    Admitted(Decision),
    Refused(Decision),
}

/// What the rate limiter made of a request: its verdict, what its token's session or API key
/// came to, and the items of the route's first read.
pub struct Admission {
    pub verdict: Verdict,
    pub credentials: Credentials,
    pub prefetched: Option<Prefetched>,
}

/// The credentials a request shows, as far as the request alone tells.
#[derive(Debug)]
pub enum Shown {
    /// None (or a bearer token in a function that reads none).
    Nothing,
    /// A bearer token that does not verify, and why: counted against the IP, as nothing would be.
    Unverified(TokenFault),
    /// A bearer token that verified: its claims.
    Token(Claims),
    /// A well-formed API key, on a route that accepts keys.
    Key(PresentedKey),
}

impl Shown {
    /// What must be read to know whether the credentials are valid.
    fn keys(&self) -> Vec<Key> {
        match self {
            Self::Nothing | Self::Unverified(_) => Vec::new(),
            Self::Token(claims) => Session::keys(claims.sub, claims.jti, claims.sid).into(),
            Self::Key(key) => KeySession::keys(key.key_id, key.owner).into(),
        }
    }

    /// What the credentials come to, given the items read (`keys`) at `now`.
    fn resolve(&self, items: &[Item], now: OffsetDateTime) -> Result<Credentials, StoreError> {
        Ok(match self {
            Self::Nothing => Credentials::Missing,
            Self::Unverified(fault) => Credentials::Unverified(*fault),
            Self::Token(claims) => {
                let session = Session::from_items(items, claims.sub, claims.jti, claims.sid)?;
                Credentials::of_session(claims.clone(), session)
            }
            Self::Key(key) => {
                let session = KeySession::from_items(items, key.key_id, key.owner)?;
                Credentials::of_key(key, session, now)
            }
        })
    }
}

/// Who is asking, as far as the request alone tells: the credentials it shows, and the source IP
/// API Gateway saw.
pub struct Caller<'a> {
    pub shown: Shown,
    pub ip: &'a str,
}

/// A counter per identity: one route's in one category, per minute (the per-route buckets of
/// docs/rate-limiting.md); or an API key's own budget over every route, per hour, with the limit
/// its secret carries.
#[derive(Clone, Copy)]
enum Bucket<'a> {
    Route {
        category: Category,
        route: &'a Route,
    },
    /// The hash of the secret shown names the counter.
    Key { limit: u64, hash: &'a str },
}

impl Bucket<'_> {
    fn limit(self, limits: &RateLimits) -> u64 {
        match self {
            Self::Route { category, .. } => category.limit(limits),
            Self::Key { limit, .. } => limit,
        }
    }

    fn window(self) -> Window {
        match self {
            Self::Route { .. } => Window::MINUTE,
            Self::Key { .. } => Window::HOUR,
        }
    }

    fn counter_key(self, identity: &Identity, window_start_seconds: u64) -> keys::Key {
        match self {
            Self::Route { category, route } => keys::rate_counter(
                category.name(),
                route.function,
                &identity.key_part(),
                window_start_seconds,
            ),
            Self::Key { hash, .. } => keys::api_key_rate_counter(hash, window_start_seconds),
        }
    }
}

/// Counts a request to `route` and decides on it: one counter write, concurrent with one read
/// (the previous window's counter, batched with the caller's session or API key and owner when
/// it shows them, and with `first_read`, the keys the route's handler reads first). An exempt
/// route, or a failed count on a category that fails open, still resolves the credentials (a
/// read of its own). A refused request makes no further call.
pub async fn admit(
    store: &Store,
    limits: &RateLimits,
    route: &Route,
    caller: Caller<'_>,
    first_read: Vec<Key>,
    now_ms: u64,
) -> Result<Admission, StoreError> {
    let Caller { shown, ip } = caller;
    let admin = matches!(&shown, Shown::Token(claims) if claims.adm);
    let Some(category) = Category::of(route, admin) else {
        return unlimited(store, shown, now_ms).await;
    };
    let ip = Identity::Ip(ip.to_owned());
    let (bucket, counted) = identify(category, route, &shown, &ip);
    let reads = batch_reads(&first_read, &shown);
    match count(store, limits, bucket, &counted, now_ms, reads).await {
        Ok(counted_request) => {
            let credentials = shown.resolve(&counted_request.items, at(now_ms))?;
            let prefetched = (!first_read.is_empty())
                .then(|| Prefetched::new(first_read, &counted_request.items));
            let decision = match &credentials {
                Credentials::Refused(_) | Credentials::RefusedKey if counted != ip => {
                    let ip_bucket = Bucket::Route {
                        category: Category::of(route, false).unwrap_or(category),
                        route,
                    };
                    recount_against_the_ip(
                        store,
                        limits,
                        (bucket, &counted, counted_request.hit),
                        (ip_bucket, &ip),
                        now_ms,
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
            unlimited(store, shown, now_ms).await
        }
        Err(error) => Err(error),
    }
}

/// What the limiter's one batch reads besides its counter: the route's first read and what the
/// shown credentials need, each key once. DynamoDB refuses a batch that names a key twice, and a
/// request may well name one twice: a refresh token names the same user and session as the
/// bearer token beside it.
pub fn batch_reads(first_read: &[Key], shown: &Shown) -> Vec<Key> {
    let mut reads = first_read.to_vec();
    for key in shown.keys() {
        if !reads.contains(&key) {
            reads.push(key);
        }
    }
    reads
}

/// `now_ms` as a time.
fn at(now_ms: u64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(now_ms as i128 * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Admits without counting, resolving the credentials by themselves. When the table does not
/// answer that read either, the credentials are `Unavailable`: a public route (the index, the
/// OpenAPI document) still answers, an authenticated one is 503.
async fn unlimited(store: &Store, shown: Shown, now_ms: u64) -> Result<Admission, StoreError> {
    let keys = shown.keys();
    let credentials = match keys.is_empty() {
        true => shown.resolve(&[], at(now_ms))?,
        false => match store.get_items(keys).await {
            Ok(items) => shown.resolve(&items, at(now_ms))?,
            Err(StoreError::Unavailable(reason)) => {
                tracing::warn!(%reason, "credentials unchecked: DynamoDB unavailable");
                Credentials::Unavailable
            }
            Err(error) => return Err(error),
        },
    };
    Ok(Admission {
        verdict: Verdict::Unlimited,
        credentials,
        prefetched: None,
    })
}

/// Which counter a request counts on, and whom against: an API key's own budget; a verified
/// token's user, except on auth routes, which always count against the source IP (tokens of many
/// accounts must not open many login buckets); otherwise the IP. A token or key found invalid
/// later is recounted against the IP (`recount_against_the_ip`).
fn identify<'a>(
    category: Category,
    route: &'a Route,
    shown: &'a Shown,
    ip: &Identity,
) -> (Bucket<'a>, Identity) {
    let route_bucket = Bucket::Route { category, route };
    match shown {
        Shown::Key(key) => (
            Bucket::Key {
                limit: key.rate_limit.into(),
                hash: key.hash(),
            },
            Identity::Key(key.hash().to_owned()),
        ),
        Shown::Token(claims) if category != Category::Auth => {
            (route_bucket, Identity::User(claims.sub))
        }
        _ => (route_bucket, ip.clone()),
    }
}

/// Not the user's (or the key's) request after all: gives its count back and charges the IP.
async fn recount_against_the_ip(
    store: &Store,
    limits: &RateLimits,
    (counted_bucket, counted, was_hit): (Bucket<'_>, &Identity, bool),
    (ip_bucket, ip): (Bucket<'_>, &Identity),
    now_ms: u64,
) -> Result<Decision, StoreError> {
    let position = counted_bucket.window().at(now_ms);
    let counted_key = counted_bucket.counter_key(counted, position.start_seconds());
    let refund = async {
        match was_hit {
            true => store.refund_counter(&counted_key).await,
            false => Ok(()),
        }
    };
    let (refund, ip_count) = tokio::join!(
        refund,
        count(store, limits, ip_bucket, ip, now_ms, Vec::new())
    );
    refund?;
    ip_count.map(|counted| counted.decision)
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
    now_ms: u64,
    mut reads: Vec<keys::Key>,
) -> Result<Counted, StoreError> {
    let limit = bucket.limit(limits);
    let window = bucket.window();
    let position = window.at(now_ms);
    let now = position.now_seconds();
    let current_key = bucket.counter_key(identity, position.start_seconds());
    let previous_key = bucket.counter_key(identity, position.previous_start_seconds());
    let expires_at = position.start_seconds() as i64 + window.counter_ttl_seconds();
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
        let route = |method, paths, rate_limit| Route {
            function: "f",
            method,
            paths,
            rate_limit,
            api_keys: crate::routes::ApiKeys::Ignored,
            serves: crate::routes::Serves::Json,
            query: &[],
        };
        let (health, login, me) = (
            route("GET", &["/health"], RateLimit::Exempt),
            route("POST", &["/api/auth/login"], RateLimit::Auth),
            route("GET", &["/api/auth/me"], RateLimit::Auth),
        );
        let (list_jobs, transfer) = (
            route("GET", &["/api/scheduler/jobs"], RateLimit::Read),
            route("POST", &["/api/tokenomics/transfer"], RateLimit::Write),
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
            auth_time: None,
            amr: Vec::new(),
            aal: None,
        };
        let ip = Identity::Ip("203.0.113.1".into());
        let route = Route {
            function: "f",
            method: "GET",
            paths: &["/f"],
            rate_limit: RateLimit::Read,
            api_keys: crate::routes::ApiKeys::AnyScope,
            serves: crate::routes::Serves::Json,
            query: &[],
        };
        let shown = Shown::Token(claims.clone());
        assert_eq!(identify(Category::Auth, &route, &shown, &ip).1, ip);
        assert_eq!(
            identify(Category::Read, &route, &shown, &ip).1,
            Identity::User(claims.sub)
        );
        assert_eq!(
            identify(Category::Write, &route, &Shown::Nothing, &ip).1,
            ip
        );
    }

    #[test]
    fn a_key_counts_against_its_own_hourly_budget_whatever_the_route() {
        let issued = crate::auth::issue_key(Uuid::new_v4(), Uuid::now_v7(), 42);
        let key = PresentedKey::parse(issued.secret.expose()).unwrap();
        let ip = Identity::Ip("203.0.113.1".into());
        let (login, list_jobs) = (
            Route {
                function: "me",
                method: "GET",
                paths: &["/api/auth/me"],
                rate_limit: RateLimit::Auth,
                api_keys: crate::routes::ApiKeys::AnyScope,
                serves: crate::routes::Serves::Json,
                query: &[],
            },
            Route {
                function: "list-jobs",
                method: "GET",
                paths: &["/api/scheduler/jobs"],
                rate_limit: RateLimit::Read,
                api_keys: crate::routes::ApiKeys::AnyScope,
                serves: crate::routes::Serves::Json,
                query: &[],
            },
        );
        let limits = RateLimits {
            auth: 1,
            write: 1,
            read: 1,
            admin: 1,
        };
        let mut counters = Vec::new();
        let shown = Shown::Key(key);
        for (category, route) in [(Category::Auth, &login), (Category::Read, &list_jobs)] {
            let (bucket, identity) = identify(category, route, &shown, &ip);
            assert_eq!(identity, Identity::Key(issued.hash.clone()));
            assert_eq!(bucket.limit(&limits), 42);
            assert_eq!(bucket.window(), Window::HOUR);
            counters.push(bucket.counter_key(&identity, 1_800_000_000));
        }
        assert_eq!(counters[0], counters[1], "one budget over every route");
        assert_eq!(
            counters[0].partition(),
            format!("RATE#apikey#{}", issued.hash)
        );
    }

    #[test]
    fn identities_never_collide() {
        let id = Uuid::new_v4();
        assert_ne!(
            Identity::User(id).key_part(),
            Identity::Ip(id.to_string()).key_part()
        );
        assert_ne!(
            Identity::Key(id.to_string()).key_part(),
            Identity::Ip(id.to_string()).key_part()
        );
    }
}
