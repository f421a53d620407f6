//! HTTP plumbing: decoding requests, building responses, the one mapping of errors to HTTP, and
//! the Lambda service loop.

mod endpoint;
mod error;
mod pagination;
mod request;
mod response;
mod service;

pub use endpoint::{
    Endpoint, FirstReadKeys, Handler, HandlerFuture, authenticated, credentials, no_first_read,
    prefetched,
};
pub use error::ApiError;

pub use pagination::{
    UsernamePage, encode_cursor, encode_username_cursor, page_request, username_page_request,
};
pub use request::{
    API_KEY_HEADER, CORRELATION_ID_HEADER, MAX_BODY_BYTES, api_key_header, audit_context,
    bearer_token, client_correlation_id, has_authorization, json_body, path_parameter,
    query_fields, query_parameter, refuse_unknown_query_parameters, source_ip,
};
pub use response::{file_response, json_response, json_text_response, problem};
pub use service::{dispatch, run};
