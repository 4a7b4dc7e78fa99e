//! DynamoDB Local for the benchmarks: started with the repository's own
//! `infra/dynamodb-local/run.sh` on a free port, tables created from the
//! template's definition, and users seeded straight into a table.

use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use common::domain::{Email, Timestamp, User, UserId, UserName};
use local_api::template::Template;
use tokio::process::{Child, Command};

/// Items one `BatchWriteItem` takes at most.
const BATCH: usize = 25;
/// Batches in flight at once while seeding.
const SEED_CONCURRENCY: usize = 4;

/// A running DynamoDB Local.
#[derive(Debug)]
pub(crate) struct DynamoDbLocal {
    /// Its plain-HTTP endpoint.
    pub(crate) endpoint: String,
    /// A client with the credentials and region every benchmark process uses.
    pub(crate) client: Client,
    process: Child,
}

impl DynamoDbLocal {
    /// Starts it (installing it on first use) and waits until it answers.
    pub(crate) async fn start(root: &Path, log: &Path) -> Result<Self, crate::Error> {
        let port = crate::free_port()?;
        let log = std::fs::File::create(log)?;
        let process = Command::new(root.join("infra/dynamodb-local/run.sh"))
            .arg(port.to_string())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()?;
        let endpoint = format!("http://127.0.0.1:{port}");
        let client = local_api::table::local_client(&endpoint).await;
        for _ in 0..240 {
            if client.list_tables().send().await.is_ok() {
                return Ok(Self {
                    endpoint,
                    client,
                    process,
                });
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        Err(crate::Error::msg(
            "DynamoDB Local did not answer within 2 minutes",
        ))
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
        let started = Timestamp::now();
        let mut users = Vec::with_capacity(count);
        for i in 0..count {
            let millis = i64::try_from(i).unwrap_or(i64::MAX);
            let at = Timestamp::from_unix_millis(started.unix_seconds() * 1000 + millis)
                .map_err(|e| crate::Error::msg(e.to_string()))?;
            let email = Email::parse(&format!("seed{i}@example.com"))
                .map_err(|e| crate::Error::msg(e.to_string()))?;
            let name = UserName::parse(&format!("Seeded User {i}"))
                .map_err(|e| crate::Error::msg(e.to_string()))?;
            users.push(User::new(email, name, at));
        }
        let requests: Vec<WriteRequest> = users
            .iter()
            .flat_map(|user| {
                let linked = complete.then(|| [claim_item(user), created_event_item(user)]);
                std::iter::once(user_item(user)).chain(linked.into_iter().flatten())
            })
            .map(|item| {
                PutRequest::builder()
                    .set_item(Some(item))
                    .build()
                    .map(|put| WriteRequest::builder().put_request(put).build())
            })
            .collect::<Result<_, _>>()
            .map_err(|e| crate::Error::msg(e.to_string()))?;
        let mut chunks = requests.chunks(BATCH).map(<[WriteRequest]>::to_vec);
        loop {
            let wave: Vec<_> = chunks.by_ref().take(SEED_CONCURRENCY).collect();
            if wave.is_empty() {
                break;
            }
            let writes = wave.into_iter().map(|chunk| self.write_batch(table, chunk));
            for result in futures::future::join_all(writes).await {
                result?;
            }
        }
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
