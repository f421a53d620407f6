use std::time::SystemTime;

use aws_sdk_dynamodb::config::interceptors::{
    BeforeTransmitInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_types::config_bag::{Storable, StoreReplace};

use crate::telemetry;

/// Logs a cost line per DynamoDB round trip: per attempt, so that retries count too.
#[derive(Debug)]
pub(super) struct RoundTripLog;

#[derive(Debug, Clone)]
struct AttemptStarted(SystemTime);

impl Storable for AttemptStarted {
    type Storer = StoreReplace<Self>;
}

impl Intercept for RoundTripLog {
    fn name(&self) -> &'static str {
        "RoundTripLog"
    }

    fn read_before_attempt(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        cfg.interceptor_state()
            .store_put(AttemptStarted(SystemTime::now()));
        Ok(())
    }

    fn read_after_attempt(
        &self,
        _context: &FinalizerInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(AttemptStarted(started)) = cfg.load::<AttemptStarted>() {
            let operation = cfg.load::<Metadata>().map_or("unknown", Metadata::name);
            telemetry::log_cost("dynamodb", operation, *started);
        }
        Ok(())
    }
}
