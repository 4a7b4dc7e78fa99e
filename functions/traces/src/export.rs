//! Where the spans go, and how: OTLP over HTTP with protobuf bodies
//! (`opentelemetry-otlp`), over the DynamoDB client's own HTTP connector
//! (`aws-smithy-http-client`: hyper and rustls on *ring*), so the binary
//! carries one HTTP and TLS stack, not a second copy of it.
//!
//! - `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (used as it is), else
//!   `OTEL_EXPORTER_OTLP_ENDPOINT` (with `/v1/traces` added), with the
//!   headers of `OTEL_EXPORTER_OTLP_TRACES_HEADERS` /
//!   `OTEL_EXPORTER_OTLP_HEADERS` and the timeout of
//!   `OTEL_EXPORTER_OTLP_TRACES_TIMEOUT` / `OTEL_EXPORTER_OTLP_TIMEOUT`:
//!   any OTLP backend or collector;
//! - else, on Lambda, X-Ray's OTLP endpoint
//!   `https://xray.<region>.amazonaws.com/v1/traces`, each request signed
//!   with Signature V4 (service `xray`) with the function's own credentials
//!   from the environment; the role needs `xray:PutTraceSegments`, and the
//!   account CloudWatch Transaction Search;
//! - nowhere when `OTEL_TRACES_EXPORTER` is `none`, or off Lambda without an
//!   endpoint.

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_http_client::Connector;
use aws_smithy_http_client::tls::{self, TlsContext, TrustStore, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::client::http::HttpConnector;
use aws_smithy_runtime_api::client::identity::Identity;
use aws_smithy_types::body::SdkBody;
use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use opentelemetry_http::{HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{Protocol, RetryPolicy, WithExportConfig, WithHttpConfig};

/// Longest an export may take when no `OTEL_EXPORTER_OTLP_*TIMEOUT` says:
/// Lambda waits for it before the next invocation, so it is far below
/// OTLP's default of 10 s.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);
/// The largest response body read back (OTLP answers are small).
const RESPONSE_LIMIT: usize = 64 * 1024;
/// The trust anchors: Amazon Trust Services' roots, as for DynamoDB.
const AMAZON_TRUST_SERVICES: &[u8] = include_bytes!("../../common/certs/amazon-trust-services.pem");

/// Where spans are exported.
#[derive(Debug, Clone, PartialEq)]
pub enum Destination {
    /// An OTLP endpoint: `endpoint` (the full URL, `…/v1/traces`), or the
    /// one the `OTEL_EXPORTER_OTLP_*` variables name.
    Otlp {
        /// The endpoint when it is not the environment's.
        endpoint: Option<String>,
    },
    /// X-Ray's OTLP endpoint in `region`, signed with `credentials`.
    XRay {
        /// The function's region.
        region: String,
        /// The function's credentials.
        credentials: Credentials,
    },
}

impl Destination {
    /// The destination the environment (read through `var`) names, if any.
    pub fn from(var: impl Fn(&str) -> Option<String>) -> Option<Self> {
        let var = |name: &str| var(name).filter(|value| !value.trim().is_empty());
        if var("OTEL_TRACES_EXPORTER").is_some_and(|exporter| exporter.trim() == "none") {
            return None;
        }
        if otlp_endpoint(var).is_some() {
            return Some(Self::Otlp { endpoint: None });
        }
        let (region, credentials) = lambda_identity(var)?;
        Some(Self::XRay {
            region,
            credentials,
        })
    }

    /// The OTLP transport the environment (read through `var`) asks for
    /// (`OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`, else
    /// `OTEL_EXPORTER_OTLP_PROTOCOL`) when it is not `http/protobuf`, the
    /// only one these exports speak (OTLP's specification: SDKs SHOULD
    /// support it; `grpc` and `http/json` MAY be).
    pub fn unsupported_protocol(var: impl Fn(&str) -> Option<String>) -> Option<String> {
        let var = |name: &str| var(name).filter(|value| !value.trim().is_empty());
        var("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
            .or_else(|| var("OTEL_EXPORTER_OTLP_PROTOCOL"))
            .filter(|protocol| protocol.trim() != "http/protobuf")
    }

    /// [`Destination::from`] the process's environment.
    pub fn from_env() -> Option<Self> {
        Self::from(|name| std::env::var(name).ok())
    }

    /// The OTLP/HTTP protobuf exporter to this destination.
    pub fn exporter(&self) -> Result<opentelemetry_otlp::SpanExporter, ExportError> {
        let timeout_set = [
            "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
            "OTEL_EXPORTER_OTLP_TIMEOUT",
        ]
        .iter()
        .any(|name| std::env::var_os(name).is_some());
        let (client, endpoint) = match self {
            Self::Otlp { endpoint } => {
                let url = endpoint.clone().or_else(|| {
                    otlp_endpoint(|name| std::env::var(name).ok().filter(|v| !v.trim().is_empty()))
                });
                let https = url.is_some_and(|url| url.trim().starts_with("https://"));
                (Client::new(None, https)?, endpoint.clone())
            }
            Self::XRay {
                region,
                credentials,
            } => (
                Client::new(
                    Some(Signer {
                        region: region.clone(),
                        identity: credentials.clone().into(),
                    }),
                    false,
                )?,
                Some(format!("https://xray.{region}.amazonaws.com/v1/traces")),
            ),
        };
        // One attempt: Lambda waits for the export before the next
        // invocation and bills for it, so a failed batch is dropped rather
        // than retried with backoff.
        let mut builder = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_http_client(client)
            .with_protocol(Protocol::HttpBinary)
            .with_retry_policy(RetryPolicy::disabled());
        if let Some(endpoint) = endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        if !timeout_set {
            builder = builder.with_timeout(DEFAULT_TIMEOUT);
        }
        builder
            .build()
            .map_err(|error| ExportError(error.to_string()))
    }
}

/// The function's region and its role's credentials, as Lambda puts them in
/// the environment (read through `var`), or `None` off Lambda or when one is
/// missing: what X-Ray's requests are signed with, and the DynamoDB
/// client's too (storage's configuration).
pub fn lambda_identity(var: impl Fn(&str) -> Option<String>) -> Option<(String, Credentials)> {
    var("AWS_LAMBDA_FUNCTION_NAME")?;
    let credentials = Credentials::new(
        var("AWS_ACCESS_KEY_ID")?,
        var("AWS_SECRET_ACCESS_KEY")?,
        var("AWS_SESSION_TOKEN"),
        None,
        "lambda-environment",
    );
    Some((var("AWS_REGION")?, credentials))
}

/// The OTLP endpoint the environment (read through `var`, empty values
/// already dropped) names: the traces' own, else the general one.
fn otlp_endpoint(var: impl Fn(&str) -> Option<String>) -> Option<String> {
    var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").or_else(|| var("OTEL_EXPORTER_OTLP_ENDPOINT"))
}

/// Why no exporter could be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("traces exporter: {0}")]
pub struct ExportError(String);

/// Signs each request for X-Ray with Signature V4.
#[derive(Debug)]
struct Signer {
    region: String,
    identity: Identity,
}

impl Signer {
    fn sign(&self, request: &mut Request<Bytes>) -> Result<(), HttpError> {
        let settings = SigningSettings::default();
        let params = v4::SigningParams::builder()
            .identity(&self.identity)
            .region(&self.region)
            .name("xray")
            .time(SystemTime::now())
            .settings(settings)
            .build()?
            .into();
        let headers: Vec<(&str, &str)> = request
            .headers()
            .iter()
            .filter_map(|(name, value)| Some((name.as_str(), value.to_str().ok()?)))
            .collect();
        let uri = request.uri().to_string();
        let signable = SignableRequest::new(
            request.method().as_str(),
            uri.as_str(),
            headers.into_iter(),
            SignableBody::Bytes(request.body()),
        )?;
        let (instructions, _signature) = sign(signable, &params)?.into_parts();
        instructions.apply_to_request_http1x(request);
        Ok(())
    }
}

/// The exporter's HTTP client: the SDK's connector, the very types the
/// DynamoDB client runs on (plain HTTP for a local collector), signing for
/// X-Ray when it has a [`Signer`], and trusting the system's store too when
/// `system_roots` (an https endpoint other than X-Ray's).
#[derive(Debug)]
pub struct Client {
    http: Connector,
    signer: Option<Signer>,
}

impl Client {
    fn new(signer: Option<Signer>, system_roots: bool) -> Result<Self, ExportError> {
        let tls = TlsContext::builder()
            .with_trust_store(trust_store(system_roots))
            .build()
            .map_err(|error| ExportError(error.to_string()))?;
        let http = Connector::builder()
            .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
            .tls_context(tls)
            .build();
        Ok(Self { http, signer })
    }
}

/// The certificate authorities an export trusts: Amazon Trust Services'
/// roots, enough for X-Ray; for any other OTLP endpoint (a vendor's or a
/// collector's, whose certificate may chain to any public authority) over
/// https also the system's store (`SSL_CERT_FILE`, or the distribution's
/// bundle: `/etc/pki/tls/certs/ca-bundle.crt` on Lambda's Amazon Linux
/// 2023), read once when the connector is built and only then: a few
/// milliseconds of init (about 150 authorities), which X-Ray and a
/// plain-http collector never pay.
fn trust_store(with_system_store: bool) -> TrustStore {
    TrustStore::empty()
        .with_native_roots(with_system_store)
        .with_pem_certificate(AMAZON_TRUST_SERVICES)
}

#[async_trait::async_trait]
impl HttpClient for Client {
    async fn send_bytes(&self, mut request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        if let Some(signer) = &self.signer {
            signer.sign(&mut request)?;
        }
        let request = request.map(SdkBody::from).try_into()?;
        let response = self.http.call(request).await?.try_into_http1x()?;
        let (parts, body) = response.into_parts();
        let body = Limited::new(body, RESPONSE_LIMIT)
            .collect()
            .await?
            .to_bytes();
        Ok(Response::from_parts(parts, body))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    /// An environment holding `set`.
    fn environment(set: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let set: HashMap<String, String> = set
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect();
        move |name| set.get(name).cloned()
    }

    const LAMBDA: [(&str, &str); 4] = [
        ("AWS_LAMBDA_FUNCTION_NAME", "get-user"),
        ("AWS_REGION", "eu-west-1"),
        ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
        ("AWS_SECRET_ACCESS_KEY", "secret"),
    ];

    /// An OTLP endpoint over https may chain to any authority the system
    /// trusts (Let's Encrypt's, which vendors' endpoints and many collectors
    /// use, is not among Amazon's five roots): its store reads the system's
    /// too; X-Ray's holds Amazon's roots alone.
    #[test]
    fn an_otlp_endpoint_may_chain_to_any_authority_the_system_trusts_x_ray_to_amazon_s() {
        let reads_system =
            |store: TrustStore| format!("{store:?}").contains("enable_native_roots: true");
        assert!(reads_system(trust_store(true)));
        assert!(!reads_system(trust_store(false)));
    }

    #[test]
    fn only_a_protocol_other_than_http_protobuf_is_unsupported() {
        let unsupported =
            |set: &[(&str, &str)]| Destination::unsupported_protocol(environment(set));
        assert_eq!(unsupported(&[]), None);
        assert_eq!(
            unsupported(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")]),
            None
        );
        assert_eq!(
            unsupported(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")]),
            Some("grpc".to_owned())
        );
        assert_eq!(
            unsupported(&[
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
                ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/json"),
            ]),
            Some("http/json".to_owned()),
            "the traces' own setting wins"
        );
    }

    #[test]
    fn an_otlp_endpoint_wins_then_x_ray_on_lambda_then_nothing() {
        let with = |extra: &[(&str, &str)]| {
            let mut all = LAMBDA.to_vec();
            all.extend_from_slice(extra);
            Destination::from(environment(&all))
        };
        assert_eq!(
            with(&[(
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "http://127.0.0.1:4318/v1/traces"
            )]),
            Some(Destination::Otlp { endpoint: None })
        );
        assert_eq!(
            with(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")]),
            Some(Destination::Otlp { endpoint: None })
        );
        assert!(matches!(
            with(&[]),
            Some(Destination::XRay { region, .. }) if region == "eu-west-1"
        ));
        assert_eq!(with(&[("OTEL_TRACES_EXPORTER", "none")]), None);
        assert_eq!(
            Destination::from(environment(&LAMBDA[1..])),
            None,
            "not on Lambda"
        );
    }

    #[test]
    fn x_ray_requests_are_signed_for_the_xray_service_in_the_region() {
        let signer = Signer {
            region: "eu-west-1".to_owned(),
            identity: Credentials::new("AKIDEXAMPLE", "secret", Some("token".into()), None, "t")
                .into(),
        };
        let mut request = Request::post("https://xray.eu-west-1.amazonaws.com/v1/traces")
            .header("content-type", "application/x-protobuf")
            .body(Bytes::from_static(b"\x0a\x00"))
            .expect("request");
        signer.sign(&mut request).expect("signed");
        let authorization = request.headers()["authorization"].to_str().expect("ASCII");
        assert!(
            authorization.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"),
            "{authorization}"
        );
        assert!(
            authorization.contains("/eu-west-1/xray/aws4_request"),
            "{authorization}"
        );
        assert!(request.headers().contains_key("x-amz-date"));
        assert_eq!(request.headers()["x-amz-security-token"], "token");
    }
}
