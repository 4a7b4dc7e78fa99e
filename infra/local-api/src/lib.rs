//! The users API on a developer's machine: the template's routes served over
//! HTTP by the function crates in-process, on the in-memory store or on a
//! local DynamoDB (whose table is created from the template's definition);
//! or, in `--lambda` mode, by each function's own binary run as Lambda runs
//! it, under its role (see [`lambda`]).
//!
//! With `--dynamodb-endpoint` it needs no AWS permissions beyond what
//! DynamoDB Local accepts; it never talks to AWS itself.
//!
//! A module per AWS service it stands in for: [`gateway`] (API Gateway and
//! its JWT authorizer), [`lambda`] (the Runtime, Extensions and Invoke
//! APIs, function instances, the stream's event source mapping), [`iam`]
//! (each function's role enforced on its DynamoDB calls), [`dynamodb`]
//! (what surrounds DynamoDB Local), [`edge`] (CloudFront and WAF),
//! [`otlp`] (where the spans go); [`stack`] reads the template and its SAM
//! translation they are all made from. [`json_lines`] and [`loopback`] are
//! plumbing they share.

pub mod dynamodb;
pub mod edge;
pub mod gateway;
pub mod iam;
pub mod json_lines;
pub mod lambda;
pub mod loopback;
pub mod otlp;
pub mod stack;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use storage::{DynamoStore, MemoryStore, Store};
use tokio::net::TcpListener;

use crate::dynamodb::table;
use crate::gateway::auth::{AuthConfig, Authorizer};
use crate::gateway::server::Backend;
use crate::iam::dynamodb::KeySchema;
use crate::lambda::{Functions, LambdaError, LambdaOptions};
use crate::stack::deployment::{Deployment, LocalResources};
use crate::stack::template::Template;

/// The template beside the workspace this binary was built from.
pub fn default_template_path() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../template.yaml"))
}

/// Where the local API keeps users.
#[derive(Debug, Clone)]
pub enum StoreChoice {
    /// In process memory (the default): nothing to install, lost on exit.
    Memory,
    /// A DynamoDB at `endpoint` (DynamoDB Local), table `table`.
    DynamoDb {
        /// Its URL, such as `http://127.0.0.1:8000`.
        endpoint: String,
        /// The table, created from the template if missing.
        table: String,
    },
}

/// Why the local API could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The template could not be read.
    #[error(transparent)]
    Template(#[from] stack::template::TemplateError),
    /// The table could not be created.
    #[error(transparent)]
    Table(#[from] table::TableError),
    /// The authorizer's keys could not be loaded.
    #[error(transparent)]
    Auth(#[from] gateway::auth::AuthError),
    /// A route has no handler.
    #[error(transparent)]
    Route(#[from] gateway::server::UnknownFunction),
    /// The port could not be bound.
    #[error("cannot listen: {0}")]
    Listen(#[from] std::io::Error),
    /// `--lambda` mode could not start.
    #[error(transparent)]
    Lambda(#[from] LambdaError),
    /// `--lambda` mode was asked for without a DynamoDB.
    #[error(
        "--lambda runs the functions against DynamoDB: give --dynamodb-endpoint too (see docs/local-development.md, \"The deployed shape, locally\")"
    )]
    LambdaNeedsDynamoDb,
}

/// A local API bound to a port and ready to serve.
#[derive(Debug)]
pub struct LocalApi {
    listener: TcpListener,
    router: axum::Router,
    functions: Option<Arc<Functions>>,
    /// With `--edge`, the API behind the edge on its own address (the
    /// `execute-api` URL's stand-in).
    origin: Option<(TcpListener, axum::Router)>,
}

impl LocalApi {
    /// Reads the template, prepares the store, starts the history worker on
    /// the store's changes and binds `address` (port 0 picks a free port).
    /// With `auth`, every route checks bearer tokens as the template's JWT
    /// authorizer does; without, the API is open.
    pub async fn bind(
        address: SocketAddr,
        template: &std::path::Path,
        store: &StoreChoice,
        auth: Option<AuthConfig>,
    ) -> Result<Self, StartError> {
        Self::bind_with(address, template, store, auth, None).await
    }

    /// As [`LocalApi::bind`], and with `lambda` runs every function as its
    /// own process under its role instead of in-process (DynamoDB only).
    pub async fn bind_with(
        address: SocketAddr,
        template_path: &std::path::Path,
        store: &StoreChoice,
        auth: Option<AuthConfig>,
        lambda: Option<LambdaOptions>,
    ) -> Result<Self, StartError> {
        let template = Template::load(template_path)?;
        let mut functions = None;
        let backend = match (store, lambda) {
            (StoreChoice::Memory, Some(_)) => return Err(StartError::LambdaNeedsDynamoDb),
            (StoreChoice::Memory, None) => {
                let (store, changes) = MemoryStore::with_change_feed();
                let store: Arc<dyn Store> = Arc::new(store);
                tokio::spawn(lambda::worker::run_feed(Arc::clone(&store), changes));
                Backend::InProcess(store)
            }
            (StoreChoice::DynamoDb { endpoint, table }, lambda) => {
                let config = table::local_config(endpoint).await;
                let client = aws_sdk_dynamodb::Client::new(&config);
                if table::create_if_missing(&client, table, &template.table).await? {
                    tracing::info!(table, "created table from template.yaml");
                }
                let stream_arn = table::stream_arn(&client, table).await?;
                match lambda {
                    Some(options) => {
                        let local = LocalResources {
                            table: table.clone(),
                            stream_arn,
                        };
                        let mode = if auth.is_some() { "cognito" } else { "none" };
                        let deployment =
                            Deployment::load(&options.translations, template_path, mode, local)
                                .and_then(|d| d.with_parameters(&options.parameters))
                                .map_err(LambdaError::from)?;
                        let started = Functions::start(
                            &options,
                            &deployment,
                            endpoint,
                            table::LOCAL_ACCESS_KEY,
                            KeySchema::of(&template.table),
                        )
                        .await?;
                        let backend = Backend::Lambda(started.pools.clone());
                        functions = Some(Arc::new(started));
                        backend
                    }
                    None => {
                        let store: Arc<dyn Store> =
                            Arc::new(DynamoStore::new(client.clone(), table.clone()));
                        match stream_arn {
                            Some(arn) => {
                                let streams = aws_sdk_dynamodbstreams::Client::new(&config);
                                tokio::spawn(lambda::worker::poll_stream(
                                    Arc::clone(&store),
                                    streams,
                                    arn,
                                ));
                            }
                            None => tracing::warn!(
                                table,
                                "table has no stream: the history worker does not run"
                            ),
                        }
                        Backend::InProcess(store)
                    }
                }
            }
        };
        let authorizer = match auth {
            Some(config) => Some(Arc::new(Authorizer::load(config).await?)),
            None => None,
        };
        let mut router = gateway::server::router(&template.routes, &backend, authorizer)?
            .merge(gateway::docs::router());
        if let Some(functions) = &functions {
            router = router.merge(functions.invocable.clone().router());
        }
        let listener = TcpListener::bind(address).await?;
        Ok(Self {
            listener,
            router,
            functions,
            origin: None,
        })
    }

    /// Puts `edge` in front of the API on its address, and serves the API
    /// alone, refusing what did not pass the edge, on `origin_address`.
    pub async fn with_edge(
        self,
        edge: edge::Edge,
        origin_address: SocketAddr,
    ) -> std::io::Result<Self> {
        let (front, origin) = edge.wrap(self.router);
        let origin_listener = TcpListener::bind(origin_address).await?;
        Ok(Self {
            router: front,
            origin: Some((origin_listener, origin)),
            ..self
        })
    }

    /// With an edge, the address of the API behind it.
    pub fn origin_addr(&self) -> Option<std::io::Result<SocketAddr>> {
        self.origin
            .as_ref()
            .map(|(listener, _)| listener.local_addr())
    }

    /// In `--lambda` mode, the running functions (their instances, IAM
    /// decisions and dead letters).
    pub fn functions(&self) -> Option<Arc<Functions>> {
        self.functions.clone()
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` completes.
    pub async fn serve(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        if let Some((listener, router)) = self.origin {
            tokio::spawn(gateway::server::serve(
                listener,
                router,
                std::future::pending(),
            ));
        }
        gateway::server::serve(self.listener, self.router, shutdown).await
    }
}
