//! Configuration read once from the environment at start-up.

use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::config::{Credentials, Region, SharedHttpClient};
use aws_smithy_http_client::Builder as HttpClientBuilder;
use aws_smithy_http_client::tls::{self, TlsContext, TrustStore, rustls_provider::CryptoMode};

/// The longest init waits for [`open_connection`]: a cold start that meets
/// a stalled DynamoDB adds at most this to the request's own budget.
const OPEN_CONNECTION_LIMIT: Duration = Duration::from_secs(1);

/// The time budget of one DynamoDB call (see docs/api.md, "Time budget"): a
/// connection must open within [`CONNECT_TIMEOUT`], one attempt answer
/// within [`ATTEMPT_TIMEOUT`], and the call, retries and their pauses
/// included, end within [`OPERATION_TIMEOUT`]. A request as a whole is held
/// to [`common::http::REQUEST_BUDGET`], below the function's 6 s timeout.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Longest wait for one attempt of a DynamoDB call.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest wait for one DynamoDB call, its retries included.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(4);
/// Attempts per DynamoDB call: the first and two retries.
pub const MAX_ATTEMPTS: u32 = 3;
/// First pause before the SDK retries a throttled or failed attempt; it
/// grows exponentially with jitter, up to [`MAX_BACKOFF`].
pub const INITIAL_BACKOFF: Duration = Duration::from_millis(50);
/// Longest pause between two attempts of a DynamoDB call.
pub const MAX_BACKOFF: Duration = Duration::from_millis(1000);

/// The timeouts every DynamoDB client of the API uses.
pub fn timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .operation_timeout(OPERATION_TIMEOUT)
        .build()
}

/// The retry policy every DynamoDB client of the API uses: the SDK's
/// standard mode (throttling, 5xx, timeouts and IO errors are retried;
/// `TransactWriteItems` keeps its client request token across retries, so
/// a transaction whose answer was lost is not applied twice).
pub fn retries() -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(MAX_ATTEMPTS)
        .with_initial_backoff(INITIAL_BACKOFF)
        .with_max_backoff(MAX_BACKOFF)
}

/// Settings every function needs.
#[derive(Debug, Clone)]
pub struct Config {
    /// The DynamoDB table (`TABLE_NAME`).
    pub table_name: String,
}

/// A required setting is missing.
#[derive(Debug, thiserror::Error)]
#[error("environment variable {0} must be set")]
pub struct ConfigError(&'static str);

impl Config {
    /// Reads the configuration; fails fast when something is missing.
    pub fn from_env() -> Result<Self, ConfigError> {
        let table_name = std::env::var("TABLE_NAME")
            .ok()
            .filter(|name| !name.trim().is_empty())
            .ok_or(ConfigError("TABLE_NAME"))?;
        Ok(Self { table_name })
    }
}

/// A DynamoDB client with the API's [`timeouts`] and [`retries`], speaking
/// TLS through [`https_client`].
///
/// On Lambda (`AWS_LAMBDA_FUNCTION_NAME`, the role's credentials and
/// `AWS_REGION` in the environment) it is built straight from those
/// variables: the SDK's default chain would also look for profile files, web
/// identity, container and instance credentials before settling on them.
/// Anywhere else (a function run by hand with a profile, say) it keeps the
/// default chain. `AWS_ENDPOINT_URL_DYNAMODB` (or `AWS_ENDPOINT_URL`) points
/// it elsewhere in both cases.
pub async fn dynamodb_client() -> aws_sdk_dynamodb::Client {
    let http = https_client();
    let config = match lambda_environment(env_var) {
        Some((region, credentials)) => {
            let mut config = aws_sdk_dynamodb::Config::builder()
                .behavior_version(BehaviorVersion::latest())
                .region(region)
                .credentials_provider(credentials);
            config.set_endpoint_url(endpoint_url());
            config
        }
        None => {
            let shared = aws_config::defaults(BehaviorVersion::latest())
                .http_client(http.clone())
                .load()
                .await;
            aws_sdk_dynamodb::config::Builder::from(&shared)
        }
    };
    let config = config
        .http_client(http)
        .timeout_config(timeouts())
        .retry_config(retries())
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

/// An environment variable that is set and not empty.
fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|value| !value.is_empty())
}

/// The region and the role's credentials Lambda puts in the environment
/// (read through `var`), or `None` when not on Lambda or one is missing
/// ([`traces::export::lambda_identity`], which X-Ray's exports sign with).
fn lambda_environment(var: impl Fn(&str) -> Option<String>) -> Option<(Region, Credentials)> {
    traces::export::lambda_identity(var)
        .map(|(region, credentials)| (Region::new(region), credentials))
}

/// DynamoDB's endpoint when it is not the region's own, as the SDK's
/// configuration chain reads it.
fn endpoint_url() -> Option<String> {
    ["AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL"]
        .into_iter()
        .find_map(env_var)
}

/// The trust anchors of the functions' HTTPS: Amazon Trust Services' five
/// roots, which AWS recommends a custom trust store hold.
const AMAZON_TRUST_SERVICES: &[u8] = include_bytes!("../../common/certs/amazon-trust-services.pem");

/// HTTPS with rustls on *ring*, trusting only the roots compiled into the
/// binary ([`AMAZON_TRUST_SERVICES`]) rather than the system's store: nothing
/// is read from disk at init, 5 certificates are parsed rather than about
/// 140, and aws-lc's start-up (its entropy source) is not paid. The cipher
/// suites are the SDK's own.
///
/// Built with the `local-ca` feature (the benchmarks), it also trusts the
/// certificate authority in the PEM file `USERS_API_LOCAL_CA_FILE`, so a
/// local TLS proxy can stand in for DynamoDB; a deployed build has no such
/// way in.
fn https_client() -> SharedHttpClient {
    let roots = TrustStore::empty()
        .with_native_roots(false)
        .with_pem_certificate(AMAZON_TRUST_SERVICES);
    #[cfg(feature = "local-ca")]
    let roots = match std::env::var_os("USERS_API_LOCAL_CA_FILE").map(std::fs::read) {
        Some(Ok(pem)) => roots.with_pem_certificate(pem),
        _ => roots,
    };
    let builder = HttpClientBuilder::new().tls_provider(tls::Provider::Rustls(CryptoMode::Ring));
    match TlsContext::builder().with_trust_store(roots).build() {
        Ok(tls) => builder.tls_context(tls).build_https(),
        // It cannot fail today (the SDK checks certificates when it first
        // connects); should it ever, the system's store still works.
        Err(error) => {
            tracing::error!(%error, "compiled-in root certificates refused; using the system's");
            builder.build_https()
        }
    }
}

/// Opens the client's connection to DynamoDB during init, so the first
/// request does not pay for it: the root certificates, the TLS handshake and
/// the first signing all happen on the client's first call, and Lambda runs
/// init at full CPU. The call is `DescribeEndpoints`, and its answer, even a
/// refusal, is ignored; if it fails or takes too long, the first request
/// opens the connection as it would have anyway.
pub async fn open_connection(client: &aws_sdk_dynamodb::Client) {
    let _ = tokio::time::timeout(OPEN_CONNECTION_LIMIT, client.describe_endpoints().send()).await;
}

#[cfg(test)]
mod tests {
    use aws_sdk_dynamodb::config::ProvideCredentials;
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;

    use super::{AMAZON_TRUST_SERVICES, lambda_environment};

    /// An environment with `set`, as `(name, value)` pairs.
    fn environment<'a>(set: &'a [(&str, &str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            set.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    const LAMBDA: [(&str, &str); 5] = [
        ("AWS_LAMBDA_FUNCTION_NAME", "users-api-CreateUser"),
        ("AWS_ACCESS_KEY_ID", "ASIAEXAMPLE"),
        ("AWS_SECRET_ACCESS_KEY", "secret"),
        ("AWS_SESSION_TOKEN", "token"),
        ("AWS_REGION", "eu-west-1"),
    ];

    #[tokio::test]
    async fn on_lambda_region_and_credentials_come_from_its_environment() {
        let (region, credentials) = lambda_environment(environment(&LAMBDA)).expect("on Lambda");
        assert_eq!(region.as_ref(), "eu-west-1");
        let credentials = credentials
            .provide_credentials()
            .await
            .expect("credentials");
        assert_eq!(credentials.access_key_id(), "ASIAEXAMPLE");
        assert_eq!(credentials.secret_access_key(), "secret");
        assert_eq!(credentials.session_token(), Some("token"));
    }

    #[test]
    fn off_lambda_or_with_a_part_missing_the_default_chain_is_used() {
        for missing in [
            "AWS_LAMBDA_FUNCTION_NAME",
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_REGION",
        ] {
            let set: Vec<_> = LAMBDA
                .into_iter()
                .filter(|(name, _)| *name != missing)
                .collect();
            assert!(
                lambda_environment(environment(&set)).is_none(),
                "without {missing}"
            );
        }
        let without_token: Vec<_> = LAMBDA
            .into_iter()
            .filter(|(name, _)| *name != "AWS_SESSION_TOKEN")
            .collect();
        assert!(lambda_environment(environment(&without_token)).is_some());
    }

    /// The compiled-in roots are the five of Amazon Trust Services, each
    /// byte for byte one Mozilla's root program still trusts (so a root
    /// Mozilla drops fails here when `webpki-root-certs` is updated).
    #[test]
    fn the_roots_are_amazon_trust_services_five_as_mozilla_trusts_them() {
        let roots = CertificateDer::pem_slice_iter(AMAZON_TRUST_SERVICES)
            .collect::<Result<Vec<_>, _>>()
            .expect("the file is PEM");
        assert_eq!(roots.len(), 5);
        for root in &roots {
            assert!(
                webpki_root_certs::TLS_SERVER_ROOT_CERTS.contains(root),
                "a compiled-in root is not in Mozilla's set"
            );
        }
    }
}
