//! A function's instances: one invocation at a time per instance, more
//! instances started while every one is busy (up to a limit), idle ones kept
//! warm, and a failed one replaced by a fresh one on the next request — as
//! Lambda scales a function. An instance whose extensions are still at work
//! on an invocation after its response is busy until they are done: the
//! response goes back at once, the instance (and its place under the
//! limit) only when the invocation ends.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::body::Bytes;
use tokio::sync::Semaphore;

use super::instance::{Failure, Instance, Launch};
use super::runtime_api::Outcome;

/// How long a request waits for a free instance: API Gateway's limit for
/// an HTTP API integration.
const INTEGRATION_TIMEOUT: Duration = Duration::from_secs(30);

/// The instances of one function.
#[derive(Debug)]
pub struct FunctionPool {
    launch: Launch,
    timeout: Duration,
    idle: Arc<Mutex<Vec<Instance>>>,
    permits: Arc<Semaphore>,
    inits: Mutex<Vec<Duration>>,
}

impl FunctionPool {
    /// A pool of at most `instances` processes started by `launch`, each
    /// invocation limited to `timeout`.
    pub fn new(launch: Launch, timeout: Duration, instances: usize) -> Self {
        Self {
            launch,
            timeout,
            idle: Arc::default(),
            permits: Arc::new(Semaphore::new(instances.max(1))),
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

    /// How many instances are idle: warm, and done with their last
    /// invocation (extensions included).
    pub fn idle(&self) -> usize {
        lock(&self.idle).len()
    }

    /// Invokes the function with `event` on an idle instance, or a new one.
    pub async fn invoke(&self, event: Bytes) -> Result<Outcome, Failure> {
        let Ok(Ok(permit)) = tokio::time::timeout(
            INTEGRATION_TIMEOUT,
            Arc::clone(&self.permits).acquire_owned(),
        )
        .await
        else {
            return Err(Failure::Busy(INTEGRATION_TIMEOUT));
        };
        let idle = lock(&self.idle).pop();
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
            Ok(outcome) if instance.is_settled() => {
                lock(&self.idle).push(instance);
                drop(permit);
                Ok(outcome)
            }
            Ok(outcome) => {
                let idle = Arc::clone(&self.idle);
                let name = self.launch.name.clone();
                tokio::spawn(async move {
                    match instance.settle().await {
                        Ok(after) => {
                            tracing::debug!(
                                function = %name,
                                post_runtime_ms = after.as_secs_f64() * 1000.0,
                                "extensions done"
                            );
                            lock(&idle).push(instance);
                        }
                        Err(failure) => {
                            tracing::error!(function = %name, error = %failure, "invocation failed after its response; the instance is replaced");
                            instance.stop().await;
                        }
                    }
                    drop(permit);
                });
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

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
