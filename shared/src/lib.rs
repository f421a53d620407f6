//! Everything the Fog Compute Lambda functions share: configuration, domain types, token and
//! password handling, DynamoDB access, HTTP plumbing and the request handlers themselves.
//! Each function binary is `shared::http::run(&shared::handlers::<ENDPOINT>)`.

pub mod app;
pub mod auth;
pub mod clock;
pub mod config;
pub mod domain;
pub mod handlers;
pub mod http;
pub mod mail;
pub mod ratelimit;
pub mod routes;
pub mod store;
pub mod telemetry;

pub use app::AppState;
