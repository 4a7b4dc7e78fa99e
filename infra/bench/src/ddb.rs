//! DynamoDB Local for the benchmarks: started with the repository's own
//! `infra/dynamodb-local/run.sh` on a free port, tables created from the
//! template's definition, and users seeded straight into a table.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use common::domain::{Email, Timestamp, User, UserId, UserName};
use futures::{StreamExt as _, TryStreamExt as _};
use local_api::template::Template;
use tokio::process::{Child, Command};

use crate::Error;
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
}

impl DynamoDbLocal {
    /// Starts it (installing it on first use), waits until it answers,
    /// creates `table` and puts the proxy in front of it.
    pub(crate) async fn start(cx: &Context, table: &str) -> Result<Self, crate::Error> {
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
        let client = local_api::table::local_client(&endpoint).await;
        let mut tries = 0;
        while client.list_tables().send().await.is_err() {
            tries += 1;
            if tries > 240 {
                return Err(crate::Error::msg(
                    "DynamoDB Local did not answer within 2 minutes",
                ));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let proxy = DynamoProxy::start(&endpoint).await?;
        let ca_file = cx.work_dir.join(format!("ca-{table}.pem"));
        std::fs::write(&ca_file, proxy.ca_pem())?;
        let system = std::fs::read_to_string("/etc/ssl/certs/ca-certificates.crt")?;
        let bundle_file = cx.work_dir.join(format!("ca-bundle-{table}.pem"));
        std::fs::write(&bundle_file, format!("{system}\n{}", proxy.ca_pem()))?;
        let db = Self {
            client,
            process,
            proxy,
            ca_file,
            bundle_file,
        };
        db.create_table(&cx.template, table).await?;
        Ok(db)
    }

    /// The environment that points a function (ours or a peer) at `table`
    /// through the proxy: the system's roots plus the proxy's CA for the
    /// system store, the CA alone for `common/local-ca` builds.
    pub(crate) fn env(&self, table: &str) -> Vec<(String, String)> {
        let (bundle, ca) = (self.bundle_file.display(), self.ca_file.display());
        [
            ("TABLE_NAME", table.to_owned()),
            ("AWS_ENDPOINT_URL_DYNAMODB", self.proxy.endpoint()),
            ("SSL_CERT_FILE", bundle.to_string()),
            ("AWS_CA_BUNDLE", bundle.to_string()),
            ("USERS_API_LOCAL_CA_FILE", ca.to_string()),
            ("NODE_EXTRA_CA_CERTS", ca.to_string()),
        ]
        .map(|(k, v)| (k.to_owned(), v))
        .into()
    }

    /// Creates `table` from the template's definition.
    pub(crate) async fn create_table(
        &self,
        template: &Template,
        table: &str,
    ) -> Result<(), crate::Error> {
        local_api::table::create_if_missing(&self.client, table, &template.table)
            .await
            .map_err(|e| crate::Error::msg(format!("creating {table}: {e}")))?;
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
    ) -> Result<Vec<UserId>, crate::Error> {
        let started = Timestamp::now().unix_seconds() * 1000;
        let mut users = Vec::with_capacity(count);
        for i in 0..count {
            let at = Timestamp::from_unix_millis(started + i64::try_from(i).unwrap_or(i64::MAX));
            let email = Email::parse(&format!("seed{i}@example.com")).map_err(Error::text)?;
            let name = UserName::parse(&format!("Seeded User {i}")).map_err(Error::text)?;
            users.push(User::new(email, name, at.map_err(Error::text)?));
        }
        let items = users.iter().flat_map(|user| {
            let linked = complete.then(|| [claim_item(user), created_event_item(user)]);
            std::iter::once(user_item(user)).chain(linked.into_iter().flatten())
        });
        let put = |item| PutRequest::builder().set_item(Some(item)).build();
        let puts: Vec<PutRequest> = items
            .map(put)
            .collect::<Result<_, _>>()
            .map_err(Error::text)?;
        let requests: Vec<_> = puts
            .into_iter()
            .map(|put| WriteRequest::builder().put_request(put).build())
            .collect();
        let writes = requests
            .chunks(BATCH)
            .map(|chunk| self.write_batch(table, chunk.to_vec()));
        futures::stream::iter(writes)
            .buffer_unordered(SEED_CONCURRENCY)
            .try_collect::<()>()
            .await?;
        Ok(users.into_iter().map(|u| u.id).collect())
    }

    async fn write_batch(&self, table: &str, chunk: Vec<WriteRequest>) -> Result<(), crate::Error> {
        let mut pending = HashMap::from([(table.to_owned(), chunk)]);
        for _ in 0..20 {
            let output = self
                .client
                .batch_write_item()
                .set_request_items(Some(pending))
                .send()
                .await
                .map_err(|e| crate::Error::msg(format!("seeding: {e:?}")))?;
            match output.unprocessed_items {
                Some(rest) if !rest.is_empty() => pending = rest,
                _ => return Ok(()),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(crate::Error::msg(
            "seeding: items kept coming back unprocessed",
        ))
    }

    /// Stops it.
    pub(crate) async fn stop(mut self) {
        let _ = self.process.kill().await;
    }
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

/// A user item as the DynamoDB store writes it (see docs/storage.md).
fn user_item(user: &User) -> HashMap<String, AttributeValue> {
    HashMap::from([
        ("pk".to_owned(), s(format!("USER#{}", user.id))),
        ("sk".to_owned(), s("PROFILE")),
        ("gsi1pk".to_owned(), s("USERS")),
        ("gsi1sk".to_owned(), s(user.id.to_string())),
        ("id".to_owned(), s(user.id.to_string())),
        ("email".to_owned(), s(user.email.as_str())),
        ("name".to_owned(), s(user.name.as_str())),
        ("createdAt".to_owned(), s(user.created_at.to_string())),
        ("updatedAt".to_owned(), s(user.updated_at.to_string())),
        (
            "version".to_owned(),
            AttributeValue::N(user.version.get().to_string()),
        ),
    ])
}

/// The email claim item that goes with a user.
fn claim_item(user: &User) -> HashMap<String, AttributeValue> {
    HashMap::from([
        ("pk".to_owned(), s(format!("EMAIL#{}", user.email))),
        ("sk".to_owned(), s("EMAIL")),
        ("userId".to_owned(), s(user.id.to_string())),
    ])
}

/// The history event the history worker records for a new user.
fn created_event_item(user: &User) -> HashMap<String, AttributeValue> {
    HashMap::from([
        ("pk".to_owned(), s(format!("USER#{}", user.id))),
        ("sk".to_owned(), s(format!("EVENT#{:020}", 1))),
        ("userId".to_owned(), s(user.id.to_string())),
        ("type".to_owned(), s("created")),
        ("version".to_owned(), AttributeValue::N("1".to_owned())),
        (
            "changedFields".to_owned(),
            AttributeValue::L(vec![s("email"), s("name")]),
        ),
        ("occurredAt".to_owned(), s(user.created_at.to_string())),
    ])
}
