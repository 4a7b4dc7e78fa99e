//! API Gateway (the stack's HTTP API), locally: the template's routes
//! served over HTTP, each request turned into the payload format 2.0 event
//! a deployed function receives ([`server`]), behind the JWT authorizer the
//! template configures ([`auth`]). Beside the routes, [`docs`] serves
//! `openapi.yaml` and Swagger UI, which the deployed API does not: a local
//! addition, on the same port so that "try it out" calls these routes.

pub mod auth;
pub mod docs;
pub mod server;
