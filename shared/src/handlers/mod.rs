//! One async function per endpoint: `(request, state) -> response or error`. Each function
//! binary runs one of them through `http::run`; tests call them through `http::dispatch`.

mod auth;
mod devices;
mod governance;
mod jobs;
mod ledger;
mod meta;

use lambda_http::Request;

use crate::auth::Claims;
use crate::routes::{self, Route};
use crate::store::Key;

pub use auth::{login, logout, me, register};
pub use devices::{list_devices, register_device};
pub use governance::{create_proposal, list_proposals, vote};
pub use jobs::{cancel_job, get_job, list_jobs, submit_job};
pub use ledger::{balance, mint, stake, transfer, unstake};
pub use meta::{health, openapi, root};

/// The string `field` of a JSON request body, if the body has one; for first reads, which look
/// ahead of the handler's own validation.
fn body_string(req: &Request, field: &str) -> Option<String> {
    let body = crate::http::json_body(req).ok()?;
    serde_json::from_str(body.get(field)?.get()).ok()
}

/// The items a route's handler reads first, which the rate limiter's read fetches in the same
/// round trip and hands over (`ratelimit::FirstReads`). `claims`: those of the request's
/// verified token, if any.
pub fn first_reads(route: &Route, req: &Request, claims: Option<&Claims>) -> Vec<Key> {
    match route {
        route if *route == routes::LOGIN => auth::login_first_reads(req),
        route if *route == routes::VOTE => governance::vote_first_reads(req),
        route if *route == routes::UNSTAKE => ledger::unstake_first_reads(req),
        route if *route == routes::GET_JOB => jobs::get_job_first_reads(req, claims),
        _ => Vec::new(),
    }
}
