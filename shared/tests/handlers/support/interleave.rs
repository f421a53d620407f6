//! Another request's effect committed at an exact point of a request: an SDK interceptor that,
//! before the `nth` DynamoDB call of one operation, runs an action to completion on a runtime of
//! its own (the request's runtime waits meanwhile), as a racing request could have.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::config::interceptors::BeforeSerializationInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::orchestrator::Metadata;

type Action = Pin<Box<dyn Future<Output = ()> + Send>>;

#[derive(Clone)]
pub struct Interleave {
    operation: &'static str,
    nth: usize,
    seen: Arc<AtomicUsize>,
    action: Arc<Mutex<Option<Action>>>,
}

impl std::fmt::Debug for Interleave {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Interleave(before {} #{})", self.operation, self.nth)
    }
}

impl Interleave {
    /// Runs `action` once, before the `nth` (from 1) call of `operation`.
    pub fn before(
        operation: &'static str,
        nth: usize,
        action: impl Future<Output = ()> + Send + 'static,
    ) -> Self {
        Self {
            operation,
            nth,
            seen: Arc::default(),
            action: Arc::new(Mutex::new(Some(Box::pin(action)))),
        }
    }

    /// Whether the action ran.
    pub fn ran(&self) -> bool {
        self.action.lock().unwrap().is_none()
    }
}

impl Intercept for Interleave {
    fn name(&self) -> &'static str {
        "Interleave"
    }

    fn read_before_serialization(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let operation = cfg.load::<Metadata>().map_or("unknown", Metadata::name);
        if operation != self.operation || self.seen.fetch_add(1, Ordering::SeqCst) + 1 != self.nth {
            return Ok(());
        }
        if let Some(action) = self.action.lock().unwrap().take() {
            std::thread::spawn(move || {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap()
                    .block_on(action)
            })
            .join()
            .map_err(|_| "the interleaved action panicked")?;
        }
        Ok(())
    }
}
