//! HTTP plumbing: decoding requests, building responses, and the Lambda service loop.

mod pagination;
mod request;
mod response;
mod service;

pub use pagination::{encode_cursor, page_request};
pub use request::{
    MAX_BODY_BYTES, bearer_token, json_body, path_parameter, query_fields, query_parameter,
    source_ip,
};
pub use response::{json, json_text, problem};
pub use service::{dispatch, run};
