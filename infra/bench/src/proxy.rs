//! DynamoDB Local behind TLS, with a meter: the functions reach DynamoDB
//! through this proxy over HTTPS (so they pay for a TLS handshake, as they
//! do on AWS), and it records every request's operation and the capacity it
//! consumed. DynamoDB Local only speaks plain HTTP, hence the proxy.
//!
//! To read consumed capacity without changing the functions, the proxy adds
//! `"ReturnConsumedCapacity": "TOTAL"` to the requests of the operations that
//! take it; DynamoDB Local does not check request signatures. Responses pass
//! through unchanged, so the SDK's CRC32 check still holds.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::Context as _;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum_server::accept::NoDelayAcceptor;
use axum_server::tls_rustls::{RustlsAcceptor, RustlsConfig};
use local_api::dynamodb::wire;
use serde::Serialize;
use serde_json::Value;

/// Operations that accept `ReturnConsumedCapacity`.
#[rustfmt::skip]
const METERED: &[&str] = &["GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "Scan",
    "BatchGetItem", "BatchWriteItem", "TransactGetItems", "TransactWriteItems"];

/// One request a function made to DynamoDB.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Call {
    /// The operation (`GetItem`, `TransactWriteItems`, ...).
    pub(crate) operation: String,
    /// Capacity units it consumed (0 for unmetered operations).
    pub(crate) capacity: f64,
    /// The HTTP status DynamoDB answered with.
    pub(crate) status: u16,
    /// How long the function waited on DynamoDB Local for it, in ms: from
    /// the proxy having the request to it having the answer.
    pub(crate) wait_ms: f64,
    /// Items a `Query` or `Scan` returned (`Count`) and read (`ScannedCount`).
    pub(crate) count: Option<u64>,
    pub(crate) scanned: Option<u64>,
}

impl Call {
    /// The operation, with its status when it failed.
    pub(crate) fn describe(&self) -> String {
        match self.status {
            200 => self.operation.clone(),
            status => format!("{} ({status})", self.operation),
        }
    }
}

#[derive(Debug)]
struct Meter {
    upstream: String,
    client: reqwest::Client,
    calls: Mutex<Vec<Call>>,
}

/// The running proxy; it stops when dropped.
#[derive(Debug)]
pub(crate) struct DynamoProxy {
    /// The HTTPS endpoint for `AWS_ENDPOINT_URL_DYNAMODB`.
    pub(crate) endpoint: String,
    /// Its self-signed certificate, the one to trust, in PEM.
    pub(crate) ca_pem: String,
    meter: Arc<Meter>,
    handle: axum_server::Handle<SocketAddr>,
}

impl DynamoProxy {
    /// Starts a proxy to the DynamoDB at `upstream` (`http://127.0.0.1:N`),
    /// with a fresh self-signed certificate for 127.0.0.1.
    pub(crate) async fn start(upstream: &str) -> anyhow::Result<Self> {
        let certified = rcgen::generate_simple_self_signed(["127.0.0.1".to_owned()])
            .context("DynamoDB proxy certificate")?;
        let (ca_pem, key) = (certified.cert.pem(), certified.signing_key.serialize_pem());
        let tls = RustlsConfig::from_pem(ca_pem.clone().into(), key.into()).await?;
        // HTTP/1.1 only, as DynamoDB's endpoints speak it (no h2 by ALPN).
        let mut config = (*tls.get_inner()).clone();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        tls.reload_from_config(Arc::new(config));
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
        let address = listener.local_addr()?;
        let meter = Arc::new(Meter {
            upstream: upstream.trim_end_matches('/').to_owned(),
            client: reqwest::Client::new(),
            calls: Mutex::default(),
        });
        let router = Router::new()
            .fallback(forward)
            .with_state(Arc::clone(&meter));
        let handle = axum_server::Handle::new();
        let acceptor = RustlsAcceptor::new(tls).acceptor(NoDelayAcceptor::new());
        let server = axum_server::from_tcp(listener)?
            .acceptor(acceptor)
            .handle(handle.clone());
        tokio::spawn(server.serve(router.into_make_service()));
        Ok(Self {
            endpoint: format!("https://{address}"),
            ca_pem,
            meter,
            handle,
        })
    }

    /// The requests made since the last call, oldest first.
    pub(crate) fn take(&self) -> Vec<Call> {
        let mut calls = self
            .meter
            .calls
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        std::mem::take(&mut *calls)
    }
}

impl Drop for DynamoProxy {
    fn drop(&mut self) {
        self.handle.shutdown();
    }
}

async fn forward(State(meter): State<Arc<Meter>>, headers: HeaderMap, body: Bytes) -> Response {
    let operation = wire::operation(&headers);
    let body = match METERED.contains(&operation.as_str()) {
        true => with_capacity_report(body),
        false => body,
    };
    let outgoing = wire::outgoing(&headers);
    let sent = std::time::Instant::now();
    let answer = match wire::send(&meter.client, &meter.upstream, outgoing, body).await {
        Ok(answer) => answer,
        Err(refused) => return refused,
    };
    let wait_ms = sent.elapsed().as_secs_f64() * 1000.0;
    let json = serde_json::from_slice::<Value>(&answer.body).unwrap_or_default();
    let number = |name: &str| json.get(name).and_then(Value::as_u64);
    let call = Call {
        operation,
        capacity: consumed(&json),
        status: answer.status.as_u16(),
        wait_ms,
        count: number("Count"),
        scanned: number("ScannedCount"),
    };
    meter
        .calls
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(call);
    answer.into_response()
}

fn with_capacity_report(body: Bytes) -> Bytes {
    match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(mut object)) => {
            object
                .entry("ReturnConsumedCapacity")
                .or_insert_with(|| Value::from("TOTAL"));
            serde_json::to_vec(&object).map_or(body, Bytes::from)
        }
        _ => body,
    }
}

/// The capacity units a response reports (one object, or one per table).
fn consumed(answer: &Value) -> f64 {
    let units = |value: &Value| value.get("CapacityUnits").and_then(Value::as_f64);
    match answer.get("ConsumedCapacity") {
        Some(Value::Array(items)) => items.iter().filter_map(units).sum(),
        Some(item) => units(item).unwrap_or(0.0),
        None => 0.0,
    }
}
