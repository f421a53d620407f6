//! One async function per endpoint, and the route table: each endpoint's route (its function,
//! method, path and rate-limit category), what its handler reads first, and how the handler is
//! called: `public`, or `user` (with the request's principal; 401 without one). Each function
//! binary is `shared::http::run(&shared::handlers::<ENDPOINT>)`; tests run the same endpoints
//! through `http::dispatch`.

mod auth;
mod devices;
mod governance;
mod jobs;
mod ledger;
mod meta;
mod sessions;

use lambda_http::Request;

use crate::http::{Endpoint, authenticated, no_first_read};
use crate::routes::{RateLimit, Route};
use crate::store::FirstRead;

macro_rules! endpoints {
    ($($name:ident: $function:literal, $method:literal $path:literal, $rate_limit:ident,
        $access:ident $handler:path $(, first read $first_read:path)?;)*) => {
        $(pub const $name: Endpoint = Endpoint {
            route: Route {
                function: $function,
                method: $method,
                path: $path,
                rate_limit: RateLimit::$rate_limit,
                needs_principal: endpoints!(@needs_principal $access),
            },
            first_read: endpoints!(@first_read $($first_read)?),
            handler: |req, state| Box::pin(endpoints!(@call $access $handler, req, state)),
        };)*

        /// Every endpoint, as `template.yaml` declares their routes.
        pub const ENDPOINTS: &[Endpoint] = &[$($name),*];
    };
    (@first_read) => { no_first_read };
    (@first_read $first_read:path) => {
        |req, claims| $first_read(req, claims).map(|read| read.keys()).unwrap_or_default()
    };
    (@needs_principal public) => { false };
    (@needs_principal user) => { true };
    (@call public $handler:path, $req:ident, $state:ident) => { $handler($req, $state) };
    (@call user $handler:path, $req:ident, $state:ident) => {
        authenticated($req, $state, $handler)
    };
}

endpoints! {
    ROOT: "root", "GET" "/", Read, public meta::root;
    HEALTH: "health", "GET" "/health", Exempt, public meta::health;
    REGISTER: "register", "POST" "/api/auth/register", Auth, public auth::register;
    LOGIN: "login", "POST" "/api/auth/login", Auth, public auth::login,
        first read auth::login_first_read;
    ME: "me", "GET" "/api/auth/me", Auth, user auth::me;
    LOGOUT: "logout", "POST" "/api/auth/logout", Auth, public auth::logout;
    REFRESH: "refresh", "POST" "/api/auth/refresh", Auth, public sessions::refresh,
        first read sessions::refresh_first_read;
    REVOKE: "revoke", "POST" "/api/auth/revoke", Auth, public sessions::revoke,
        first read sessions::refresh_first_read;
    LIST_SESSIONS: "list-sessions", "GET" "/api/auth/sessions", Auth,
        user sessions::list_sessions;
    DELETE_SESSION: "delete-session", "DELETE" "/api/auth/sessions/{id}", Auth,
        user sessions::delete_session;
    CHANGE_PASSWORD: "change-password", "POST" "/api/auth/change-password", Auth,
        user sessions::change_password;
    SUBMIT_JOB: "submit-job", "POST" "/api/scheduler/jobs", Write, user jobs::submit_job;
    LIST_JOBS: "list-jobs", "GET" "/api/scheduler/jobs", Read, user jobs::list_jobs;
    GET_JOB: "get-job", "GET" "/api/scheduler/jobs/{id}", Read, user jobs::get_job,
        first read jobs::get_job_first_read;
    CANCEL_JOB: "cancel-job", "DELETE" "/api/scheduler/jobs/{id}", Write, user jobs::cancel_job;
    REGISTER_DEVICE: "register-device", "POST" "/api/idle-compute/devices", Write,
        user devices::register_device;
    LIST_DEVICES: "list-devices", "GET" "/api/idle-compute/devices", Read,
        user devices::list_devices;
    BALANCE: "balance", "GET" "/api/tokenomics/balance", Read, user ledger::balance;
    TRANSFER: "transfer", "POST" "/api/tokenomics/transfer", Write, user ledger::transfer;
    STAKE: "stake", "POST" "/api/tokenomics/stake", Write, user ledger::stake;
    UNSTAKE: "unstake", "POST" "/api/tokenomics/unstake", Write, user ledger::unstake,
        first read ledger::unstake_first_read;
    MINT: "mint", "POST" "/api/tokenomics/mint", Write, user ledger::mint;
    CREATE_PROPOSAL: "create-proposal", "POST" "/api/tokenomics/proposals", Write,
        user governance::create_proposal;
    LIST_PROPOSALS: "list-proposals", "GET" "/api/tokenomics/proposals", Read,
        user governance::list_proposals;
    VOTE: "vote", "POST" "/api/tokenomics/vote", Write, user governance::vote,
        first read governance::vote_first_read;
    OPENAPI: "openapi", "GET" "/openapi.json", Read, public meta::openapi;
}

/// The string `field` of a JSON request body, if the body has one; for first reads, which look
/// ahead of the handler's own validation.
fn body_string(req: &Request, field: &str) -> Option<String> {
    let body = crate::http::json_body(req).ok()?;
    serde_json::from_str(body.get(field)?.get()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The policy the README states: `/health` exempt, every `/api/auth/` route `auth`, other
    /// reads `read` and other writes `write`.
    #[test]
    fn every_route_is_limited_as_the_readme_says() {
        for Endpoint { route, .. } in ENDPOINTS {
            let documented = if route.path == "/health" {
                RateLimit::Exempt
            } else if route.path.starts_with("/api/auth/") {
                RateLimit::Auth
            } else if route.method == "GET" {
                RateLimit::Read
            } else {
                RateLimit::Write
            };
            assert_eq!(route.rate_limit, documented, "{route:?}");
        }
    }

    #[test]
    fn functions_are_unique() {
        let mut functions: Vec<_> = ENDPOINTS
            .iter()
            .map(|endpoint| endpoint.route.function)
            .collect();
        functions.sort_unstable();
        functions.dedup();
        assert_eq!(functions.len(), ENDPOINTS.len());
    }
}
