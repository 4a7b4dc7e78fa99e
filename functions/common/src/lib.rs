//! Shared core of the users API functions: domain types that validate on
//! construction, the one error type and its problem+json mapping, wire
//! types, HTTP request/response helpers (serving a request, with its log
//! line and metrics from `telemetry`), and page cursors. It calls no AWS
//! API and needs no permission.
//!
//! Each function crate is `main.rs` (runtime wiring) plus `lib.rs` with
//! `handle(store, request)`; what they share lives here, storage in
//! `storage`, logs and metrics in `telemetry`, spans in `traces`.

pub mod cursor;
pub mod domain;
pub mod error;
pub mod http;
#[cfg(feature = "testing")]
pub mod testing;
mod text;
pub mod wire;

pub use error::ApiError;
pub use lambda_http;
