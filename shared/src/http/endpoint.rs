use std::pin::Pin;

use lambda_http::{Body, Request, Response};

use uuid::Uuid;

use crate::AppState;
use crate::auth::{Credentials, Principal};
use crate::routes::{ApiKeys, Route};
use crate::store::{Key, Prefetched};

use super::ApiError;

pub type HandlerFuture = Pin<Box<dyn Future<Output = Result<Response<Body>, ApiError>> + Send>>;

/// A route's handler, as `http::dispatch` runs it.
pub type Handler = fn(Request, &'static AppState) -> HandlerFuture;

/// The keys a route's handler reads first, given its request and the user its credentials name
/// (a verified token's, or the owner a well-formed API key claims; the handler runs only if
/// they turn out valid): the rate limiter reads them in its own round trip (`store::FirstRead`).
pub type FirstReadKeys = fn(&Request, Option<Uuid>) -> Vec<Key>;

/// Everything a function binary serves: its route, what its handler reads first, the handler.
pub struct Endpoint {
    pub route: Route,
    pub first_read: FirstReadKeys,
    pub handler: Handler,
}

/// For a route whose handler reads nothing first.
pub fn no_first_read(_: &Request, _: Option<Uuid>) -> Vec<Key> {
    Vec::new()
}

/// Runs an authenticated route's handler with the request's principal: 401 without one, and 403
/// for an API key the route does not take (`api_keys`, from its line in the route table) or
/// without the route's scope, or, with `REQUIRE_VERIFIED_EMAIL`, for an unverified user on a
/// route that writes to the platform, before the handler sees the request.
pub async fn authenticated<H, F>(
    mut req: Request,
    state: &'static AppState,
    api_keys: ApiKeys,
    handler: H,
) -> Result<Response<Body>, ApiError>
where
    H: FnOnce(Request, Principal, &'static AppState) -> F,
    F: Future<Output = Result<Response<Body>, ApiError>>,
{
    let principal = credentials(&mut req).principal()?;
    principal.authorize(api_keys)?;
    if state.config.require_verified_email && api_keys.writes_platform() {
        principal.email_verified()?;
    }
    handler(req, principal, state).await
}

/// What the request's credentials came to (`Credentials::Missing` when no token was shown);
/// taken out of the request, so a handler holds them once.
pub fn credentials(req: &mut Request) -> Credentials {
    req.extensions_mut()
        .remove::<Credentials>()
        .unwrap_or(Credentials::Missing)
}

/// The items the rate limiter read for the route's first read, if it did.
pub fn prefetched(req: &Request) -> Option<&Prefetched> {
    req.extensions().get::<Prefetched>()
}
