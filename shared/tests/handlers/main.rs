//! The in-process handler tests: API Gateway v2 events to the handlers, against the local
//! DynamoDB `make test` starts. One test binary, so that the harness (`support`) is compiled
//! and the library linked once, and every module's tests share the test threads.

mod support;

mod admin;
mod api_keys;
mod audit;
mod auth;
mod body_encoding;
mod contract;
mod decoding_properties;
mod docs;
mod faults;
mod first_reads;
mod governance;
mod jobs;
mod ledger;
mod mfa;
mod password_reset;
mod ratelimit;
mod reauthentication;
mod sessions;
mod startup;
