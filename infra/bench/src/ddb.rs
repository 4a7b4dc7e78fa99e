//! DynamoDB Local for the benchmarks: started with the repository's own
//! `infra/dynamodb-local/run.sh` on a free port, tables created from the
//! template's definition, and users seeded straight into a table.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context as _;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
use common::domain::{Email, Timestamp, User, UserId, UserName};
use futures::{StreamExt as _, TryStreamExt as _};
use local_api::stack::template::TableDefinition;
use tokio::process::{Child, Command};

use crate::proxy::DynamoProxy;
use crate::scenarios::Context;

/// Items one `BatchWriteItem` takes at most.
const BATCH: usize = 25;
/// Batches in flight at once while seeding.
const SEED_CONCURRENCY: usize = 4;

/// A running DynamoDB Local behind the metering TLS proxy, with the files
/// that make a process trust the proxy.
#[derive(Debug)]
pub(crate) struct DynamoDbLocal {
    /// A client with the credentials and region every benchmark process uses.
    client: Client,
    process: Child,
    pub(crate) proxy: DynamoProxy,
    ca_file: PathBuf,
    bundle_file: PathBuf,
    /// The template's table, which every table here copies.
    definition: TableDefinition,
}

impl DynamoDbLocal {
    /// Starts it (installing it on first use), waits until it answers,
    /// creates `table` and puts the proxy in front of it.
    pub(crate) async fn start(cx: &Context, table: &str) -> anyhow::Result<Self> {
        crate::say("starting DynamoDB Local");
        let port = crate::free_port()?;
        let log = std::fs::File::create(cx.logs.join(format!("dynamodb-local-{table}.log")))?;
        let process = Command::new(cx.root.join("infra/dynamodb-local/run.sh"))
            .arg(port.to_string())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()?;
        let endpoint = format!("http://127.0.0.1:{port}");
        // Bulk writes to a large local table can pause past the functions'
        // 2 s attempt timeout (a JVM collecting): the harness's own client waits.
        let config = local_api::dynamodb::table::local_config(&endpoint)
            .await
            .into_builder();
        let patient = TimeoutConfig::builder().operation_attempt_timeout(Duration::from_secs(60));
        let client = Client::new(&config.timeout_config(patient.build()).build());
        let answers = async {
            while client.list_tables().send().await.is_err() {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        };
        let waited = tokio::time::timeout(Duration::from_secs(120), answers).await;
        waited.context("DynamoDB Local did not answer within 2 minutes")?;
        let proxy = DynamoProxy::start(&endpoint).await?;
        let ca_file = cx.work_dir.join(format!("ca-{table}.pem"));
        std::fs::write(&ca_file, &proxy.ca_pem)?;
        let system = std::fs::read_to_string("/etc/ssl/certs/ca-certificates.crt")?;
        let bundle_file = cx.work_dir.join(format!("ca-bundle-{table}.pem"));
        std::fs::write(&bundle_file, format!("{system}\n{}", proxy.ca_pem))?;
        let definition = cx.template.table.clone();
        let db = Self {
            client,
            process,
            proxy,
            ca_file,
            bundle_file,
            definition,
        };
        db.create_table(table, true).await?;
        Ok(db)
    }

    /// The environment that points a function (ours or a peer) at `table`
    /// through the proxy: the system's roots plus the proxy's CA for the
    /// system store, the CA alone for `storage/local-ca` builds.
    pub(crate) fn env(&self, table: &str) -> Vec<(String, String)> {
        let (bundle, ca) = (self.bundle_file.display(), self.ca_file.display());
        [
            ("TABLE_NAME", table.to_owned()),
            ("AWS_ENDPOINT_URL_DYNAMODB", self.proxy.endpoint.clone()),
            ("SSL_CERT_FILE", bundle.to_string()),
            ("AWS_CA_BUNDLE", bundle.to_string()),
            ("USERS_API_LOCAL_CA_FILE", ca.to_string()),
            ("NODE_EXTRA_CA_CERTS", ca.to_string()),
        ]
        .map(|(k, v)| (k.to_owned(), v))
        .into()
    }

    /// Creates `table` from the template's definition; without `stream`,
    /// with no stream. DynamoDB Local writes a stream record beside every
    /// item, which makes seeding a large table about ten times slower
    /// (100,000 users: about 3.5 minutes with the stream, 22 s without).
    pub(crate) async fn create_table(&self, table: &str, stream: bool) -> anyhow::Result<()> {
        let mut definition = self.definition.clone();
        if !stream {
            definition.stream_specification = None;
        }
        let created =
            local_api::dynamodb::table::create_if_missing(&self.client, table, &definition);
        created.await.with_context(|| format!("creating {table}"))?;
        Ok(())
    }

    /// Writes `count` users into `table` with `BatchWriteItem`, bypassing
    /// the functions; with `complete`, also what the API would have written
    /// with them: their email claims and their "created" history events.
    /// Returns their ids in creation order.
    pub(crate) async fn seed_users(
        &self,
        table: &str,
        count: usize,
        complete: bool,
    ) -> anyhow::Result<Vec<UserId>> {
        let started = Timestamp::now().unix_seconds() * 1000;
        let mut ids = Vec::with_capacity(count);
        let mut requests = Vec::new();
        for i in 0..count {
            let at = Timestamp::from_unix_millis(started + i64::try_from(i)?)?;
            let email = Email::parse(&format!("seed{i}@example.com"))?;
            let user = User::new(email, UserName::parse(&format!("Seeded User {i}"))?, at);
            for item in storage::created_items(&user, complete)? {
                let put = PutRequest::builder().set_item(Some(item)).build()?;
                requests.push(WriteRequest::builder().put_request(put).build());
            }
            ids.push(user.id);
        }
        let writes = requests
            .chunks(BATCH)
            .map(|chunk| self.write_batch(table, chunk.to_vec()));
        futures::stream::iter(writes)
            .buffer_unordered(SEED_CONCURRENCY)
            .try_collect::<()>()
            .await?;
        Ok(ids)
    }

    async fn write_batch(&self, table: &str, chunk: Vec<WriteRequest>) -> anyhow::Result<()> {
        let mut pending = HashMap::from([(table.to_owned(), chunk)]);
        for _ in 0..20 {
            let output = self
                .client
                .batch_write_item()
                .set_request_items(Some(pending))
                .send()
                .await
                .context("seeding")?;
            match output.unprocessed_items {
                Some(rest) if !rest.is_empty() => pending = rest,
                _ => return Ok(()),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        anyhow::bail!("seeding: items kept coming back unprocessed")
    }

    /// Stops it.
    pub(crate) async fn stop(mut self) {
        let _ = self.process.kill().await;
    }
}
