//! HTTP plumbing: decoding requests, building responses, and the Lambda service loop.

mod request;
mod response;
mod service;

pub use request::{MAX_BODY_BYTES, bearer_token, json_body, source_ip};
pub use response::{json, json_text, problem};
pub use service::{dispatch, run};
