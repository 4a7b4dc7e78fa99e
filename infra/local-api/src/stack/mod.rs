//! The stack as CloudFormation would build it, read locally: the local
//! parts are made from the same files AWS deploys, not from a second
//! description of them.
//!
//! - [`template`]: what `template.yaml` says directly: the HTTP API's
//!   routes (which function serves each) and the table's definition, read
//!   by [`crate::gateway`], [`crate::dynamodb::table`] and the IAM proxy;
//! - [`deployment`]: what the SAM translator makes of it
//!   (`infra/sam/translated/*.json`): each function's settings, environment
//!   and role (as IAM policies, [`crate::iam::Policy`]), and the stream's
//!   event source mapping, with CloudFormation's intrinsics resolved
//!   against the local stand-ins; `--lambda` mode and the IAM checks run
//!   from it.

pub mod deployment;
pub mod template;
