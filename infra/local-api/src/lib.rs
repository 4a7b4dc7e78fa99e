//! The users API on a developer's machine: the template's routes served over
//! HTTP by the function crates in-process, on the in-memory store or on a
//! local DynamoDB (whose table is created from the template's definition).
//!
//! With `--dynamodb-endpoint` it needs no AWS permissions beyond what
//! DynamoDB Local accepts; it never talks to AWS itself.

pub mod auth;
pub mod docs;
pub mod server;
pub mod table;
pub mod template;
pub mod worker;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use common::store::{DynamoStore, MemoryStore, Store};
use tokio::net::TcpListener;

use crate::auth::{AuthConfig, Authorizer};
use crate::template::Template;

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
    Template(#[from] template::TemplateError),
    /// The table could not be created.
    #[error(transparent)]
    Table(#[from] table::TableError),
    /// The authorizer's keys could not be loaded.
    #[error(transparent)]
    Auth(#[from] auth::AuthError),
    /// A route has no handler.
    #[error(transparent)]
    Route(#[from] server::UnknownFunction),
    /// The port could not be bound.
    #[error("cannot listen: {0}")]
    Listen(#[from] std::io::Error),
}

/// A local API bound to a port and ready to serve.
#[derive(Debug)]
pub struct LocalApi {
    listener: TcpListener,
    router: axum::Router,
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
        let template = Template::load(template)?;
        let store: Arc<dyn Store> = match store {
            StoreChoice::Memory => {
                let (store, changes) = MemoryStore::with_change_feed();
                let store: Arc<dyn Store> = Arc::new(store);
                tokio::spawn(worker::run_feed(Arc::clone(&store), changes));
                store
            }
            StoreChoice::DynamoDb { endpoint, table } => {
                let config = table::local_config(endpoint).await;
                let client = aws_sdk_dynamodb::Client::new(&config);
                if table::create_if_missing(&client, table, &template.table).await? {
                    tracing::info!(table, "created table from template.yaml");
                }
                let store: Arc<dyn Store> =
                    Arc::new(DynamoStore::new(client.clone(), table.clone()));
                match table::stream_arn(&client, table).await? {
                    Some(arn) => {
                        let streams = aws_sdk_dynamodbstreams::Client::new(&config);
                        tokio::spawn(worker::poll_stream(Arc::clone(&store), streams, arn));
                    }
                    None => tracing::warn!(
                        table,
                        "table has no stream: the history worker does not run"
                    ),
                }
                store
            }
        };
        let authorizer = match auth {
            Some(config) => Some(Arc::new(Authorizer::load(config).await?)),
            None => None,
        };
        let router = server::router(&template.routes, store, authorizer)?.merge(docs::router());
        let listener = TcpListener::bind(address).await?;
        Ok(Self { listener, router })
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
        server::serve(self.listener, self.router, shutdown).await
    }
}
