//! DynamoDB Local behind TLS, with a meter: the functions reach DynamoDB
//! through this proxy over HTTPS (so they pay for a TLS handshake, as they
//! do on AWS), and it records every request's operation and the capacity it
//! consumed. DynamoDB Local only speaks plain HTTP, hence the proxy.
//!
//! To read consumed capacity without changing the functions, the proxy adds
//! `"ReturnConsumedCapacity": "TOTAL"` to the requests of the operations that
//! take it; DynamoDB Local does not check request signatures. Responses pass
//! through unchanged, so the SDK's CRC32 check still holds.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{CONTENT_LENGTH, HOST};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde::Serialize;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

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

/// The proxy's certificates could not be made or used.
fn tls(error: impl std::fmt::Display) -> crate::Error {
    crate::Error::msg(format!("DynamoDB proxy TLS: {error}"))
}

struct State {
    upstream: String,
    client: Client<HttpConnector, Full<Bytes>>,
    calls: Mutex<Vec<Call>>,
}

/// The running proxy.
pub(crate) struct DynamoProxy {
    address: SocketAddr,
    ca_pem: String,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for DynamoProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamoProxy")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

impl DynamoProxy {
    /// Starts a proxy to the DynamoDB at `upstream` (`http://127.0.0.1:N`),
    /// with a fresh certificate authority and a certificate for 127.0.0.1.
    pub(crate) async fn start(upstream: &str) -> Result<Self, crate::Error> {
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(tls)?;
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "users-api bench CA");
        let ca = rcgen::CertifiedIssuer::self_signed(
            ca_params,
            rcgen::KeyPair::generate().map_err(tls)?,
        )
        .map_err(tls)?;
        let key = rcgen::KeyPair::generate().map_err(tls)?;
        let params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()]).map_err(tls)?;
        let certificate = params.signed_by(&key, &ca).map_err(tls)?;

        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(tls)?
            .with_no_client_auth()
            .with_single_cert(
                vec![certificate.der().clone()],
                rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).map_err(tls)?,
            )
            .map_err(tls)?;
        let acceptor = TlsAcceptor::from(Arc::new(config));

        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let address = listener.local_addr()?;
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let state = Arc::new(State {
            upstream: upstream.trim_end_matches('/').to_owned(),
            client: Client::builder(TokioExecutor::new()).build(connector),
            calls: Mutex::default(),
        });
        let task = tokio::spawn(accept(listener, acceptor, Arc::clone(&state)));
        Ok(Self {
            address,
            ca_pem: ca.pem(),
            state,
            task,
        })
    }

    /// The HTTPS endpoint for `AWS_ENDPOINT_URL_DYNAMODB`.
    pub(crate) fn endpoint(&self) -> String {
        format!("https://{}", self.address)
    }

    /// The certificate authority to trust, in PEM.
    pub(crate) fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The requests made since the last call, oldest first.
    pub(crate) fn take(&self) -> Vec<Call> {
        std::mem::take(
            &mut *self
                .state
                .calls
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        )
    }
}

impl Drop for DynamoProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept(listener: TcpListener, acceptor: TlsAcceptor, state: Arc<State>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let acceptor = acceptor.clone();
        let state = Arc::clone(&state);
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(stream).await else {
                return;
            };
            let service = service_fn(move |request| forward(Arc::clone(&state), request));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tls), service)
                .await;
        });
    }
}

fn plain(status: StatusCode) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = status;
    response
}

async fn forward(
    state: Arc<State>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (mut parts, body) = request.into_parts();
    let Ok(body) = body.collect().await.map(|b| b.to_bytes()) else {
        return Ok(plain(StatusCode::BAD_REQUEST));
    };
    let operation = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .and_then(|target| target.rsplit('.').next())
        .unwrap_or("unknown")
        .to_owned();
    let body = if METERED.contains(&operation.as_str()) {
        with_capacity_report(body)
    } else {
        body
    };
    parts.headers.insert(CONTENT_LENGTH, body.len().into());
    parts.headers.remove(HOST);
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let Ok(uri) = format!("{}{path}", state.upstream).parse() else {
        return Ok(plain(StatusCode::BAD_GATEWAY));
    };
    parts.uri = uri;
    let Ok(response) = state
        .client
        .request(Request::from_parts(parts, Full::new(body)))
        .await
    else {
        return Ok(plain(StatusCode::BAD_GATEWAY));
    };
    let (parts, body) = response.into_parts();
    let Ok(body) = body.collect().await.map(|b| b.to_bytes()) else {
        return Ok(plain(StatusCode::BAD_GATEWAY));
    };
    let call = Call {
        operation,
        capacity: consumed(&body),
        status: parts.status.as_u16(),
    };
    state
        .calls
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(call);
    Ok(Response::from_parts(parts, Full::new(body)))
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
fn consumed(body: &[u8]) -> f64 {
    let units = |value: &Value| value.get("CapacityUnits").and_then(Value::as_f64);
    match serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("ConsumedCapacity").cloned())
    {
        Some(Value::Array(items)) => items.iter().filter_map(units).sum(),
        Some(item) => units(&item).unwrap_or(0.0),
        None => 0.0,
    }
}
