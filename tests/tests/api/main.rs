//! The one integration test binary: the store contract suite on both
//! stores, the black-box HTTP suite against the local API on both stores,
//! and the checks that tie the code to `template.yaml` and `openapi.yaml`.
#![allow(
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failed expectation is a failed test"
)]

mod auth;
mod concurrency;
mod doc_links;
mod edge;
mod extensions;
mod faults;
mod http_api;
mod iam_proxy;
mod identities;
mod lambda;
mod linearizability;
mod logs;
mod metrics;
mod model;
mod openapi;
mod spans;
mod store_contract;
mod support;
mod template;
mod tracing;
mod translation;
