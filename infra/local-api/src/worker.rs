//! Runs the history worker locally on the same records DynamoDB Streams
//! delivers: from the memory store's change feed, or from DynamoDB Local's
//! real stream of the table (polled through the DynamoDB Streams API).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodbstreams::types::{Record, ShardIteratorType};
use common::store::Store;
use common::stream::{EventRecord, StreamEvent};
use tokio::sync::mpsc::UnboundedReceiver;

/// Most records handed to the worker at once (Lambda's default batch size).
const BATCH_SIZE: usize = 100;
/// How often DynamoDB Local's stream is polled.
const POLL_INTERVAL: Duration = Duration::from_millis(200);

async fn deliver(store: &dyn Store, records: Vec<EventRecord>) {
    let mut event = StreamEvent::default();
    event.records = records;
    let response = history_worker::handle(store, event).await;
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
/// to the worker, shard by shard, from the oldest record kept.
pub async fn poll_stream(
    store: Arc<dyn Store>,
    client: aws_sdk_dynamodbstreams::Client,
    stream_arn: String,
) {
    let mut shards: HashMap<String, Shard> = HashMap::new();
    loop {
        if let Err(error) = poll_once(store.as_ref(), &client, &stream_arn, &mut shards).await {
            tracing::warn!(error = %error, "polling the table stream failed; retrying");
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// Where reading one shard has got to.
#[derive(Debug, Default)]
struct Shard {
    /// The iterator to read on with; `None` until one is got (again).
    iterator: Option<String>,
    /// The last record delivered, to resume after if an iterator is lost.
    last_sequence_number: Option<String>,
    /// Closed and read to its end.
    done: bool,
}

async fn poll_once(
    store: &dyn Store,
    client: &aws_sdk_dynamodbstreams::Client,
    stream_arn: &str,
    shards: &mut HashMap<String, Shard>,
) -> Result<(), aws_sdk_dynamodbstreams::Error> {
    let description = client
        .describe_stream()
        .stream_arn(stream_arn)
        .send()
        .await?;
    for shard in description
        .stream_description
        .and_then(|d| d.shards)
        .unwrap_or_default()
    {
        if let Some(shard_id) = shard.shard_id {
            shards.entry(shard_id).or_default();
        }
    }
    for (shard_id, shard) in shards.iter_mut().filter(|(_, s)| !s.done) {
        let iterator = match shard.iterator.take() {
            Some(iterator) => iterator,
            None => {
                let request = client
                    .get_shard_iterator()
                    .stream_arn(stream_arn)
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
        // On an error the iterator stays taken, so the next poll gets a
        // fresh one after the last record delivered.
        let output = client
            .get_records()
            .shard_iterator(&iterator)
            .send()
            .await?;
        let records: Vec<EventRecord> = output
            .records
            .unwrap_or_default()
            .into_iter()
            .map(event_record)
            .collect();
        if let Some(last) = records.last() {
            shard.last_sequence_number = last.change.sequence_number.clone();
            deliver(store, records).await;
        }
        // No next iterator: the shard is closed and fully read.
        shard.done = output.next_shard_iterator.is_none();
        shard.iterator = output.next_shard_iterator;
    }
    Ok(())
}

/// The Lambda event record for a record read from the Streams API.
fn event_record(record: Record) -> EventRecord {
    let change = record
        .dynamodb
        .unwrap_or_else(|| aws_sdk_dynamodbstreams::types::StreamRecord::builder().build());
    let at = change
        .approximate_creation_date_time
        .and_then(|t| chrono::DateTime::from_timestamp(t.secs(), t.subsec_nanos()))
        .unwrap_or_else(chrono::Utc::now);
    common::stream::record(
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
