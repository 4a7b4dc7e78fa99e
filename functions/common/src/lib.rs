//! Shared core of the users API functions: domain types that validate on
//! construction, the one error type and its problem+json mapping, HTTP
//! request/response helpers, page cursors, the `UserStore` trait with its
//! DynamoDB and in-memory implementations, and the JSON log lines that are
//! also CloudWatch metrics.
//!
//! Each function crate is `main.rs` (runtime wiring) plus `lib.rs` with
//! `handle(store, request)`; everything they share lives here.

pub mod config;
pub mod cursor;
pub mod domain;
pub mod error;
pub mod http;
pub mod lambda;
pub mod store;
pub mod stream;
#[cfg(feature = "testing")]
pub mod testing;
mod text;
pub mod wire;

pub use error::ApiError;
pub use lambda_http;
