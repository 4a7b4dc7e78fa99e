//! DynamoDB's surroundings, locally. DynamoDB itself is never emulated: it
//! is DynamoDB Local. Around it:
//!
//! - [`table`]: the table created from the template's definition, and the
//!   clients' configuration for a local DynamoDB;
//! - [`wire`]: DynamoDB's JSON protocol as the proxies in front of DynamoDB
//!   Local read and answer it (the IAM proxy, [`crate::iam::proxy`], and
//!   the fault proxy);
//! - [`fault`]: a proxy that injects DynamoDB's failures (throttling,
//!   server errors, lost answers), for the fault suite.

pub mod fault;
pub mod table;
pub mod wire;
