//! One async function per endpoint: `(request, state) -> response or error`. Each function
//! binary runs one of them through `http::run`; tests call them through `http::dispatch`.

mod auth;
mod meta;

pub use auth::{login, logout, me, register};
pub use meta::{ROUTES, health, openapi, root};
