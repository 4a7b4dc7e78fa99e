//! Logs and metrics of the users API functions: the JSON log line each
//! function writes ([`log`]), the CloudWatch Embedded Metric Format
//! documents those lines also are ([`metrics`]), and what a request's
//! DynamoDB calls cost, gathered by an SDK interceptor that also makes each
//! call a span of its trace ([`dynamodb_calls`], spans from [`traces`]).
//!
//! Nothing here calls an AWS API: logs go to stdout, and CloudWatch Logs
//! extracts the metrics from them, so it needs no permission of its own.

#[cfg(any(test, feature = "testing"))]
pub mod captured_log;
pub mod dynamodb_calls;
pub mod log;
pub mod metrics;
