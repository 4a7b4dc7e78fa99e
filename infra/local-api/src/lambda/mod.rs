//! Lambda, locally. Its parts:
//!
//! - [`runtime_api`]: the Runtime API and the Extensions API a function's
//!   process talks to;
//! - [`instance`]: one function process, started as Lambda starts one, and
//!   [`pool`]: a function's instances, scaled as Lambda scales them;
//! - `log_level`: Lambda's log-level filtering of a function's output;
//! - [`invoke`]: Lambda's `Invoke` API for the local functions;
//! - [`esm`]: the DynamoDB stream event source mapping, and [`worker`]:
//!   the stream's records read and shaped as that mapping delivers them,
//!   and handed to the history worker in-process when it is not run as
//!   its own process;
//! - [`replay`]: the mapping's dead letters replayed (against AWS or this
//!   twin);
//! - [`boot`]: one built binary booted under the Runtime API and sent one
//!   event (the deploy checks).
//!
//! This module itself is `--lambda` mode: the deployed shape on a
//! developer's machine. Each route's function runs as its own binary under
//! a local Lambda Runtime API, with the environment and role the translated
//! template gives it; its DynamoDB calls pass through an IAM-enforcing
//! proxy; the history worker is fed by a local copy of the stream's event
//! source mapping; the spans they export over OTLP reach a local receiver
//! ([`crate::otlp`]).

pub mod boot;
pub mod esm;
pub mod instance;
pub mod invoke;
mod log_level;
pub mod pool;
pub mod replay;
pub mod runtime_api;
pub mod worker;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::iam::coverage::AccessLog;
use crate::iam::dynamodb::KeySchema;
use crate::iam::proxy::{IamProxy, Principal};
use crate::json_lines::JsonLines;
use crate::otlp::{Spans, TraceReceiver};
use crate::stack::deployment::{Deployment, DeploymentError, FunctionSpec, REGION};
use esm::{DeadLetters, Mapping};
use instance::Launch;
use pool::FunctionPool;
use worker::StreamReader;

/// Lambda's own limit on a function's init phase.
const INIT_TIMEOUT: Duration = Duration::from_secs(10);

/// How `--lambda` mode runs the functions.
#[derive(Debug, Clone)]
pub struct LambdaOptions {
    /// Where the functions' binaries are (`target/debug` by default).
    pub dir: PathBuf,
    /// Where the translated templates are.
    pub translations: PathBuf,
    /// Most instances of one function at once.
    pub instances: usize,
    /// A file to append every IAM decision to (JSON lines).
    pub iam_record: Option<PathBuf>,
    /// A file to append the stream's dead letters to (JSON lines).
    pub dead_letter_file: Option<PathBuf>,
    /// A file to append every log line Lambda keeps of the functions'
    /// output to (JSON lines, as CloudWatch Logs would hold them).
    pub log_file: Option<PathBuf>,
    /// A file to append every span the functions export to (one OTLP JSON
    /// line a span: see [`crate::otlp`]).
    pub traces_file: Option<PathBuf>,
    /// Template parameter values instead of the defaults (only those the
    /// translation holds for: see [`Deployment::with_parameters`]).
    pub parameters: BTreeMap<String, String>,
}

impl LambdaOptions {
    /// Where `cargo build` puts binaries: `$CARGO_TARGET_DIR/debug`, else
    /// the workspace's `target/debug`.
    pub fn default_dir() -> PathBuf {
        std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../target")))
            .join("debug")
    }
}

impl Default for LambdaOptions {
    fn default() -> Self {
        Self {
            dir: Self::default_dir(),
            translations: crate::stack::deployment::default_translation_dir(),
            instances: 4,
            iam_record: None,
            dead_letter_file: None,
            log_file: None,
            traces_file: None,
            parameters: BTreeMap::new(),
        }
    }
}

/// Why `--lambda` mode could not start.
#[derive(Debug, thiserror::Error)]
pub enum LambdaError {
    /// The translated template could not be used.
    #[error(transparent)]
    Deployment(#[from] DeploymentError),
    /// A function's binary is not there.
    #[error(
        "{binary} is missing: build it with `cargo build -p {function}` (every function: `cargo build --bins`), or point --lambda-dir at the folder that has it"
    )]
    MissingBinary {
        /// The path looked at.
        binary: String,
        /// The function's crate.
        function: String,
    },
    /// A stream filter the local mapping cannot evaluate.
    #[error(transparent)]
    Filter(#[from] esm::UnsupportedFilter),
    /// A port or file could not be opened.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// The running functions, their IAM proxy and their stream mapping.
#[derive(Debug)]
pub struct Functions {
    /// Each function's instances, by binary name.
    pub pools: BTreeMap<String, Arc<FunctionPool>>,
    /// Every IAM decision made.
    pub access: Arc<AccessLog>,
    /// The stream's on-failure destination.
    pub dead_letters: Arc<DeadLetters>,
    /// The functions as Lambda's `Invoke` API finds them.
    pub invocable: invoke::Invocable,
    /// The spans the functions exported.
    pub spans: Arc<Spans>,
    traces: TraceReceiver,
    _proxy: IamProxy,
    mappings: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Functions {
    fn drop(&mut self) {
        for mapping in &self.mappings {
            mapping.abort();
        }
    }
}

/// The access key a function's process signs with: the proxy tells
/// functions apart by it.
pub(crate) fn access_key(function: &FunctionSpec) -> String {
    format!("AKIALOCAL{}", function.logical_id.to_ascii_uppercase())
}

/// The environment Lambda gives `function`'s process, plus the local
/// additions: its DynamoDB endpoint is the IAM proxy, and its OTLP traces
/// endpoint the receiver at `traces` (`http://127.0.0.1:PORT/v1/traces`),
/// which takes binary Protobuf.
pub fn environment(
    function: &FunctionSpec,
    dir: &std::path::Path,
    dynamodb: &str,
    traces: &str,
) -> Vec<(String, String)> {
    let mut env: BTreeMap<String, String> = BTreeMap::new();
    let mut set = |name: &str, value: String| {
        env.insert(name.to_owned(), value);
    };
    set(
        "PATH",
        std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".to_owned()),
    );
    set("LANG", "en_US.UTF-8".to_owned());
    set("TZ", ":UTC".to_owned());
    set("_HANDLER", "bootstrap".to_owned());
    set("LAMBDA_TASK_ROOT", dir.display().to_string());
    set("AWS_REGION", REGION.to_owned());
    set("AWS_DEFAULT_REGION", REGION.to_owned());
    set("AWS_LAMBDA_FUNCTION_NAME", function.name.clone());
    set(
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        function.memory_mb.to_string(),
    );
    set("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned());
    set("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".to_owned());
    set("AWS_LAMBDA_LOG_GROUP_NAME", function.log_group.clone());
    set(
        "AWS_LAMBDA_LOG_STREAM_NAME",
        format!(
            "local/[$LATEST]{}",
            ulid::Ulid::new().to_string().to_lowercase()
        ),
    );
    if let Some(format) = &function.log_format {
        set("AWS_LAMBDA_LOG_FORMAT", format.clone());
        // Lambda sets the level only with the JSON log format.
        if let (Some(level), "JSON") = (&function.log_level, format.as_str()) {
            set("AWS_LAMBDA_LOG_LEVEL", level.clone());
        }
    }
    if function.tracing {
        set("AWS_XRAY_CONTEXT_MISSING", "LOG_ERROR".to_owned());
        set("AWS_XRAY_DAEMON_ADDRESS", "127.0.0.1:2000".to_owned());
    }
    let key = access_key(function);
    set("AWS_ACCESS_KEY_ID", key.clone());
    set("AWS_SECRET_ACCESS_KEY", key.to_lowercase());
    set(
        "AWS_SESSION_TOKEN",
        format!("local-session-{}", function.logical_id),
    );
    for (name, value) in &function.environment {
        set(name, value.clone());
    }
    set("AWS_ENDPOINT_URL_DYNAMODB", dynamodb.to_owned());
    set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", traces.to_owned());
    set("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf".to_owned());
    env.into_iter().collect()
}

impl Functions {
    /// The OTLP traces endpoint the functions export to
    /// (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`).
    pub fn traces_endpoint(&self) -> String {
        self.traces.endpoint()
    }

    /// Starts the IAM proxy in front of the DynamoDB at `endpoint` (whose
    /// tables live under `upstream_key`), a pool for every function of
    /// `deployment`, and the stream's event source mappings.
    pub async fn start(
        options: &LambdaOptions,
        deployment: &Deployment,
        endpoint: &str,
        upstream_key: &str,
        keys: KeySchema,
    ) -> Result<Self, LambdaError> {
        let access = Arc::new(AccessLog::new(options.iam_record.as_deref())?);
        let dead_letters = Arc::new(DeadLetters::new(options.dead_letter_file.as_deref())?);
        let traces = TraceReceiver::start(options.traces_file.as_deref()).await?;
        let functions = deployment.functions()?;
        let mut principals = HashMap::new();
        for function in &functions {
            let role = deployment.role(&function.role)?;
            principals.insert(
                access_key(function),
                Principal {
                    function: function.binary.clone(),
                    session: role.session_arn(&function.name),
                    policies: role.policies().cloned().collect(),
                },
            );
        }
        let proxy = IamProxy::start(
            endpoint,
            upstream_key,
            principals.clone(),
            keys,
            deployment.local().clone(),
            Arc::clone(&access),
        )
        .await?;
        let kept_lines = match &options.log_file {
            Some(path) => Some(Arc::new(JsonLines::open(Some(path))?)),
            None => None,
        };
        // Absolute: each process starts in it, so a relative path to the
        // binary would no longer lead there.
        let dir = std::path::absolute(&options.dir)?;
        let mut pools = BTreeMap::new();
        let mut invocable = invoke::Invocable::default();
        for function in &functions {
            let binary = dir.join(&function.binary);
            if !binary.is_file() {
                return Err(LambdaError::MissingBinary {
                    binary: binary.display().to_string(),
                    function: function.binary.clone(),
                });
            }
            let launch = Launch {
                name: function.binary.clone(),
                arn: function.arn(),
                command: vec![binary.display().to_string()],
                dir: dir.clone(),
                env: environment(function, &dir, &proxy.url(), &traces.endpoint()),
                init_timeout: INIT_TIMEOUT,
                output: None,
                kept_lines: kept_lines.clone(),
                cpu: None,
            };
            let pool = Arc::new(FunctionPool::new(
                launch,
                function.timeout,
                options.instances,
            ));
            invocable.add(function, &pool);
            pools.insert(function.binary.clone(), pool);
        }
        let mut mappings = Vec::new();
        for settings in deployment.stream_mappings()? {
            for filter in &settings.filters {
                esm::check_filter(filter)?;
            }
            let Some(function) = functions.iter().find(|f| f.logical_id == settings.function)
            else {
                return Err(DeploymentError::Content(format!(
                    "the stream mapping invokes unknown {}",
                    settings.function
                ))
                .into());
            };
            let Some(stream_arn) = deployment.local().stream_arn.clone() else {
                return Err(
                    DeploymentError::Content("the local table has no stream".to_owned()).into(),
                );
            };
            let key = access_key(function);
            let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
                .endpoint_url(proxy.url())
                .region(aws_config::Region::new(REGION))
                .credentials_provider(aws_sdk_dynamodbstreams::config::Credentials::new(
                    &key,
                    key.to_lowercase(),
                    None,
                    None,
                    "event-source-mapping",
                ))
                .load()
                .await;
            let reader =
                StreamReader::new(aws_sdk_dynamodbstreams::Client::new(&config), stream_arn);
            let mapping = Mapping {
                settings,
                pool: Arc::clone(&pools[&function.binary]),
                principal: principals[&key].clone(),
                access: Arc::clone(&access),
                local: deployment.local().clone(),
                dead_letters: Arc::clone(&dead_letters),
                function_arn: function.arn(),
            };
            mappings.push(tokio::spawn(mapping.run(reader)));
        }
        Ok(Self {
            pools,
            access,
            dead_letters,
            invocable,
            spans: traces.spans(),
            traces,
            _proxy: proxy,
            mappings,
        })
    }
}
