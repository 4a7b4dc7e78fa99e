//! Runs the history worker locally on the same records DynamoDB Streams
//! delivers: from the memory store's change feed, or from DynamoDB Local's
//! real stream of the table (polled through the DynamoDB Streams API). In
//! `--lambda` mode the stream is read by [`super::esm`] instead.
//!
//! In-process, this stands in for the stream's event source mapping (a
//! Lambda feature) in its simplest form: batches of at most Lambda's
//! default size, no retries. The stream reader and the record shape
//! Lambda delivers ([`mapped_record`]) are shared with [`super::esm`] and
//! [`super::replay`].

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodbstreams::types::{Record, ShardIteratorType};
use storage::Store;
use storage::stream::{EventRecord, StreamEvent};
use tokio::sync::mpsc::UnboundedReceiver;

/// Most records handed to the worker at once (Lambda's default batch size).
const BATCH_SIZE: usize = 100;
/// How long a batch may take: the deployed worker's timeout (template.yaml)
/// less the worker's own margin.
const BATCH_BUDGET: Duration = Duration::from_millis(29_500);
/// How often DynamoDB Local's stream is polled.
pub(crate) const POLL_INTERVAL: Duration = Duration::from_millis(200);

async fn deliver(store: &dyn Store, records: Vec<EventRecord>) {
    let mut event = StreamEvent::default();
    event.records = records;
    let response = history_worker::handle(store, event, BATCH_BUDGET).await;
    // Lambda would retry these and finally send them to the dead-letter
    // queue; locally they are logged by the worker and dropped.
    if !response.batch_item_failures.is_empty() {
        tracing::warn!(
            failed = response.batch_item_failures.len(),
            "history worker reported failures"
        );
    }
}

/// Feeds the memory store's change feed to the worker until the store is dropped.
pub async fn run_feed(store: Arc<dyn Store>, mut changes: UnboundedReceiver<EventRecord>) {
    let mut batch = Vec::with_capacity(BATCH_SIZE);
    while changes.recv_many(&mut batch, BATCH_SIZE).await > 0 {
        deliver(store.as_ref(), std::mem::take(&mut batch)).await;
    }
}

/// Polls the stream `stream_arn` of DynamoDB Local and feeds every record
/// to the worker in-process, shard by shard, from the oldest record kept.
pub async fn poll_stream(
    store: Arc<dyn Store>,
    client: aws_sdk_dynamodbstreams::Client,
    stream_arn: String,
) {
    let mut reader = StreamReader::new(client, stream_arn);
    loop {
        match reader.read().await {
            Ok(shards) => {
                for (_, records) in shards {
                    deliver(
                        store.as_ref(),
                        records.into_iter().map(event_record).collect(),
                    )
                    .await;
                }
            }
            Err(error) => {
                tracing::warn!(error = %error, "polling the table stream failed; retrying")
            }
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// Reads a table's stream shard by shard, each from its oldest record,
/// resuming after the last record read (also when an iterator is lost).
#[derive(Debug)]
pub struct StreamReader {
    client: aws_sdk_dynamodbstreams::Client,
    stream_arn: String,
    shards: HashMap<String, Shard>,
}

/// Where reading one shard has got to.
#[derive(Debug, Default)]
struct Shard {
    /// The iterator to read on with; `None` until one is got (again).
    iterator: Option<String>,
    /// The last record read, to resume after if an iterator is lost.
    last_sequence_number: Option<String>,
    /// Closed and read to its end.
    done: bool,
}

impl StreamReader {
    /// A reader of `stream_arn` through `client`.
    pub fn new(client: aws_sdk_dynamodbstreams::Client, stream_arn: String) -> Self {
        Self {
            client,
            stream_arn,
            shards: HashMap::new(),
        }
    }

    /// The stream's ARN.
    pub fn stream_arn(&self) -> &str {
        &self.stream_arn
    }

    /// The records added since the last read, by shard id.
    pub async fn read(
        &mut self,
    ) -> Result<Vec<(String, Vec<Record>)>, aws_sdk_dynamodbstreams::Error> {
        let description = self
            .client
            .describe_stream()
            .stream_arn(&self.stream_arn)
            .send()
            .await?;
        for shard in description
            .stream_description
            .and_then(|d| d.shards)
            .unwrap_or_default()
        {
            if let Some(shard_id) = shard.shard_id {
                self.shards.entry(shard_id).or_default();
            }
        }
        let mut read = Vec::new();
        for (shard_id, shard) in self.shards.iter_mut().filter(|(_, s)| !s.done) {
            let iterator = match shard.iterator.take() {
                Some(iterator) => iterator,
                None => {
                    let request = self
                        .client
                        .get_shard_iterator()
                        .stream_arn(&self.stream_arn)
                        .shard_id(shard_id);
                    let request = match &shard.last_sequence_number {
                        Some(after) => request
                            .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                            .sequence_number(after),
                        None => request.shard_iterator_type(ShardIteratorType::TrimHorizon),
                    };
                    match request.send().await?.shard_iterator {
                        Some(iterator) => iterator,
                        None => continue,
                    }
                }
            };
            // On an error the iterator stays taken, so the next read gets a
            // fresh one after the last record read.
            let output = self
                .client
                .get_records()
                .shard_iterator(&iterator)
                .send()
                .await?;
            let records = output.records.unwrap_or_default();
            if let Some(last) = records.last() {
                shard.last_sequence_number = last
                    .dynamodb
                    .as_ref()
                    .and_then(|d| d.sequence_number.clone());
                read.push((shard_id.clone(), records));
            }
            // No next iterator: the shard is closed and fully read.
            shard.done = output.next_shard_iterator.is_none();
            shard.iterator = output.next_shard_iterator;
        }
        Ok(read)
    }
}

/// The record as a stream event source mapping delivers it: [`event_record`]
/// with the stream's ARN and region, which Lambda adds.
pub fn mapped_record(record: Record, stream_arn: &str, region: &str) -> EventRecord {
    let mut record = event_record(record);
    record.event_source_arn = Some(stream_arn.to_owned());
    record.aws_region = region.to_owned();
    record
}

/// The Lambda event record for a record read from the Streams API.
pub fn event_record(record: Record) -> EventRecord {
    let change = record
        .dynamodb
        .unwrap_or_else(|| aws_sdk_dynamodbstreams::types::StreamRecord::builder().build());
    let at = change
        .approximate_creation_date_time
        .and_then(|t| chrono::DateTime::from_timestamp(t.secs(), t.subsec_nanos()))
        .unwrap_or_else(chrono::Utc::now);
    storage::stream::record(
        record
            .event_name
            .as_ref()
            .map(|n| n.as_str())
            .unwrap_or_default(),
        change
            .keys
            .map(serde_dynamo::Item::from)
            .unwrap_or_default(),
        change
            .new_image
            .map(serde_dynamo::Item::from)
            .unwrap_or_default(),
        change
            .old_image
            .map(serde_dynamo::Item::from)
            .unwrap_or_default(),
        change.sequence_number.unwrap_or_default(),
        at,
    )
}
