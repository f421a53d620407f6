//! `make bench`: every function of `template.yaml` run as Lambda runs it, through a Runtime API
//! of the bench's own on loopback, against the local DynamoDB: cold start, warm latency, peak
//! memory, size, and DynamoDB round trips, next to a floor function built the same way.

pub mod chain;
pub mod chart;
pub mod costs;
pub mod events;
pub mod measure;
pub mod process;
pub mod report;
pub mod runtime_api;
pub mod stats;
pub mod template;
pub mod world;
