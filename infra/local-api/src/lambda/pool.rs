//! A function's instances: one invocation at a time per instance, more
//! instances started while every one is busy (up to a limit), idle ones kept
//! warm, and a failed one replaced by a fresh one on the next request — as
//! Lambda scales a function.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use axum::body::Bytes;
use tokio::sync::Semaphore;

use super::instance::{Failure, Instance, Launch};
use crate::runtime_api::Outcome;

/// How long a request waits for a free instance: API Gateway's limit for
/// an HTTP API integration.
const INTEGRATION_TIMEOUT: Duration = Duration::from_secs(30);

/// The instances of one function.
#[derive(Debug)]
pub struct FunctionPool {
    launch: Launch,
    timeout: Duration,
    idle: Mutex<Vec<Instance>>,
    permits: Semaphore,
    inits: Mutex<Vec<Duration>>,
}

impl FunctionPool {
    /// A pool of at most `instances` processes started by `launch`, each
    /// invocation limited to `timeout`.
    pub fn new(launch: Launch, timeout: Duration, instances: usize) -> Self {
        Self {
            launch,
            timeout,
            idle: Mutex::default(),
            permits: Semaphore::new(instances.max(1)),
            inits: Mutex::default(),
        }
    }

    /// The function's name.
    pub fn name(&self) -> &str {
        &self.launch.name
    }

    /// The init time of every instance started so far.
    pub fn inits(&self) -> Vec<Duration> {
        self.inits
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Invokes the function with `event` on an idle instance, or a new one.
    pub async fn invoke(&self, event: Bytes) -> Result<Outcome, Failure> {
        let Ok(Ok(_permit)) =
            tokio::time::timeout(INTEGRATION_TIMEOUT, self.permits.acquire()).await
        else {
            return Err(Failure::Busy(INTEGRATION_TIMEOUT));
        };
        let idle = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let mut instance = match idle {
            Some(instance) => instance,
            None => {
                let instance = self.launch.start().await.inspect_err(|error| {
                    tracing::error!(function = %self.launch.name, %error, "function init failed");
                })?;
                tracing::info!(
                    function = %self.launch.name,
                    init_ms = instance.init.as_secs_f64() * 1000.0,
                    "cold start"
                );
                self.inits
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(instance.init);
                instance
            }
        };
        match instance.invoke(event, self.timeout).await {
            Ok(outcome) => {
                self.idle
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(instance);
                Ok(outcome)
            }
            Err(failure) => {
                tracing::error!(function = %self.launch.name, error = %failure, "invocation failed; the instance is replaced");
                instance.stop().await;
                Err(failure)
            }
        }
    }
}
