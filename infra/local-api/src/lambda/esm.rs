//! The DynamoDB stream event source mapping, as Lambda runs it for the
//! history worker: the stream read with the function's own role, records
//! kept only when they match the mapping's `FilterCriteria`, delivered in
//! batches of at most `BatchSize` (or what the batching window gathered),
//! shard by shard and in order. A failed batch is retried as the mapping
//! says: from the first failed record with `ReportBatchItemFailures`, in
//! halves with `BisectBatchOnFunctionError`, at most `MaximumRetryAttempts`
//! times and for records younger than `MaximumRecordAgeInSeconds`; then the
//! batch's coordinates go to the on-failure destination (a local
//! dead-letter file) and the shard moves on.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use axum::body::Bytes;
use serde_json::{Value, json};

use super::pool::FunctionPool;
use super::worker::{POLL_INTERVAL, StreamReader, mapped_record};
use crate::iam::Authorization;
use crate::iam::coverage::AccessLog;
use crate::iam::proxy::Principal;
use crate::json_lines::KeptRecords;
use crate::stack::deployment::{LocalResources, StreamMapping};

/// A filter pattern the local mapping cannot evaluate faithfully.
#[derive(Debug, thiserror::Error)]
#[error("filter pattern {0}: only exact values and nested fields are supported locally")]
pub struct UnsupportedFilter(String);

/// Checks that `pattern` uses only exact-value lists and nested fields.
pub fn check_filter(pattern: &Value) -> Result<(), UnsupportedFilter> {
    let Some(fields) = pattern.as_object() else {
        return Err(UnsupportedFilter(pattern.to_string()));
    };
    for value in fields.values() {
        match value {
            Value::Object(_) => check_filter(value)?,
            Value::Array(options) if options.iter().all(|o| !o.is_object() && !o.is_array()) => {}
            _ => return Err(UnsupportedFilter(pattern.to_string())),
        }
    }
    Ok(())
}

/// Whether `record` matches `pattern` (every field; a list matches any of
/// its values).
pub fn matches(pattern: &Value, record: &Value) -> bool {
    pattern.as_object().is_some_and(|fields| {
        fields.iter().all(|(name, expected)| {
            let actual = &record[name];
            match expected {
                Value::Object(_) => matches(expected, actual),
                Value::Array(options) => options.contains(actual),
                _ => false,
            }
        })
    })
}

impl StreamMapping {
    /// Whether the mapping's filters keep `record` (an event record as JSON;
    /// with no filters, every record is kept).
    pub fn keeps(&self, record: &Value) -> bool {
        self.filters.is_empty() || self.filters.iter().any(|f| matches(f, record))
    }
}

/// Where records the worker gave up on go: Lambda's on-failure record for a
/// stream (the batch's coordinates, not its data), logged, kept, and
/// appended to a file when one is given.
#[derive(Debug, Default)]
pub struct DeadLetters(KeptRecords);

impl DeadLetters {
    /// Dead letters also appended to `path` as JSON lines, if given.
    pub fn new(path: Option<&Path>) -> std::io::Result<Self> {
        Ok(Self(KeptRecords::new(path, None)?))
    }

    /// Every dead letter so far.
    pub fn all(&self) -> Vec<Value> {
        self.0.all()
    }

    fn push(&self, letter: Value) {
        tracing::error!(dead_letter = %letter, "stream records sent to the on-failure destination");
        self.0.extend(vec![letter]);
    }
}

/// One record on its way to the function.
#[derive(Debug, Clone)]
struct Pending {
    record: Value,
    sequence_number: String,
    arrived: SystemTime,
    shard: String,
    attempts: u32,
}

/// Everything the mapping needs to run.
#[derive(Debug)]
pub struct Mapping {
    /// Its settings, from the template.
    pub settings: StreamMapping,
    /// The function it invokes.
    pub pool: Arc<FunctionPool>,
    /// The function's role (the mapping reads and sends with it).
    pub principal: Principal,
    /// Where IAM decisions are recorded.
    pub access: Arc<AccessLog>,
    /// The local resources.
    pub local: LocalResources,
    /// The on-failure destination.
    pub dead_letters: Arc<DeadLetters>,
    /// The function's ARN, for dead letters.
    pub function_arn: String,
}

impl Mapping {
    /// Reads the stream through `reader` and delivers its records, forever.
    pub async fn run(self, mut reader: StreamReader) {
        let stream_arn = reader.stream_arn().to_owned();
        let mut buffers: Vec<(String, Vec<Pending>, Instant)> = Vec::new();
        loop {
            match reader.read().await {
                Ok(shards) => {
                    for (shard, records) in shards {
                        let kept: Vec<Pending> = records
                            .into_iter()
                            .filter_map(|r| self.pending(r, &stream_arn, &shard))
                            .collect();
                        if kept.is_empty() {
                            continue;
                        }
                        match buffers.iter_mut().find(|(s, _, _)| *s == shard) {
                            Some((_, buffer, _)) => buffer.extend(kept),
                            None => buffers.push((shard, kept, Instant::now())),
                        }
                    }
                }
                Err(error) => tracing::warn!(%error, "reading the table stream failed; retrying"),
            }
            let mut waiting = Vec::new();
            for (shard, mut buffer, since) in std::mem::take(&mut buffers) {
                if buffer.len() < self.settings.batch_size
                    && since.elapsed() < self.settings.batching_window
                {
                    waiting.push((shard, buffer, since));
                    continue;
                }
                while !buffer.is_empty() {
                    let rest = buffer.split_off(buffer.len().min(self.settings.batch_size));
                    self.deliver(std::mem::replace(&mut buffer, rest), &stream_arn)
                        .await;
                }
            }
            buffers = waiting;
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// A stream record as the function receives it, if the mapping's
    /// filters keep it (with no filters, every record is kept).
    fn pending(
        &self,
        record: aws_sdk_dynamodbstreams::types::Record,
        stream_arn: &str,
        shard: &str,
    ) -> Option<Pending> {
        let record = mapped_record(record, stream_arn, crate::stack::deployment::REGION);
        let sequence_number = record.change.sequence_number.clone()?;
        let arrived = SystemTime::from(record.change.approximate_creation_date_time);
        let record = serde_json::to_value(&record).ok()?;
        self.settings.keeps(&record).then(|| Pending {
            record,
            sequence_number,
            arrived,
            shard: shard.to_owned(),
            attempts: 0,
        })
    }

    /// Delivers one batch, retrying as the mapping says, until every record
    /// is processed or given up on.
    async fn deliver(&self, batch: Vec<Pending>, stream_arn: &str) {
        let mut queue = VecDeque::from([batch]);
        while let Some(batch) = queue.pop_front() {
            let (expired, batch): (Vec<Pending>, Vec<Pending>) = batch.into_iter().partition(|p| {
                self.settings
                    .maximum_record_age
                    .is_some_and(|limit| p.arrived.elapsed().is_ok_and(|age| age > limit))
            });
            if !expired.is_empty() {
                self.give_up(&expired, "RecordAgeExceeded", stream_arn);
            }
            if batch.is_empty() {
                continue;
            }
            if let Some(attempts) = batch.first().map(|p| p.attempts).filter(|a| *a > 0) {
                tokio::time::sleep(Duration::from_millis(50 * u64::from(attempts.min(10)))).await;
            }
            let event = json!({ "Records": batch.iter().map(|p| &p.record).collect::<Vec<_>>() });
            let outcome = self.pool.invoke(Bytes::from(event.to_string())).await;
            // A function error, crash, timeout or throttle fails the whole batch.
            let retry_from = match &outcome {
                Ok(outcome) if !outcome.failed => self.failed_from(&outcome.body, &batch),
                _ => Some(0),
            };
            let Some(from) = retry_from else { continue };
            let whole = from == 0;
            let mut rest: Vec<Pending> = batch[from..].to_vec();
            for pending in &mut rest {
                pending.attempts += 1;
            }
            let exhausted = self
                .settings
                .maximum_retry_attempts
                .is_some_and(|limit| rest.first().is_some_and(|p| p.attempts > limit));
            if exhausted {
                self.give_up(&rest, "RetryAttemptsExhausted", stream_arn);
            } else if whole && self.settings.bisect_on_error && rest.len() > 1 {
                let second = rest.split_off(rest.len() / 2);
                queue.push_front(second);
                queue.push_front(rest);
            } else {
                queue.push_front(rest);
            }
        }
    }

    /// Where to retry a batch from, judged from the function's response:
    /// `None` when it all succeeded, the first failed record's index with
    /// `ReportBatchItemFailures`, 0 when the response counts as a failure
    /// of the whole batch (as Lambda treats an unreadable response or an
    /// unknown item identifier).
    fn failed_from(&self, body: &[u8], batch: &[Pending]) -> Option<usize> {
        if !self.settings.report_batch_item_failures {
            return None;
        }
        let response: Value = match serde_json::from_slice(body) {
            Ok(response) => response,
            Err(_) => return Some(0),
        };
        let failures = match &response["batchItemFailures"] {
            Value::Null => return None,
            Value::Array(failures) if failures.is_empty() => return None,
            Value::Array(failures) => failures,
            _ => return Some(0),
        };
        let mut first: Option<usize> = None;
        for failure in failures {
            let index = failure["itemIdentifier"]
                .as_str()
                .and_then(|id| batch.iter().position(|p| p.sequence_number == id));
            match index {
                Some(index) => first = Some(first.map_or(index, |f| f.min(index))),
                None => return Some(0),
            }
        }
        first
    }

    fn give_up(&self, records: &[Pending], condition: &str, stream_arn: &str) {
        let (Some(first), Some(last)) = (records.first(), records.last()) else {
            return;
        };
        let Some(destination) = &self.settings.on_failure else {
            tracing::error!(
                records = records.len(),
                condition,
                "stream records dropped (no on-failure destination)"
            );
            return;
        };
        let send = Authorization {
            action: "sqs:SendMessage".to_owned(),
            resource: destination.clone(),
            context: Default::default(),
        };
        if !self
            .principal
            .authorize(&send, &self.access, &self.local)
            .allowed()
        {
            tracing::error!(function = %self.principal.function, destination, "the role may not send to the on-failure destination: stream records lost");
            return;
        }
        let time = |t: SystemTime| {
            time::OffsetDateTime::from(t)
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default()
        };
        self.dead_letters.push(json!({
            "requestContext": {
                "requestId": ulid::Ulid::new().to_string().to_lowercase(),
                "functionArn": self.function_arn,
                "condition": condition,
                "approximateInvokeCount": first.attempts,
            },
            "version": "1.0",
            "timestamp": time(SystemTime::now()),
            "DDBStreamBatchInfo": {
                "shardId": first.shard,
                "startSequenceNumber": first.sequence_number,
                "endSequenceNumber": last.sequence_number,
                "approximateArrivalOfFirstRecord": time(first.arrived),
                "approximateArrivalOfLastRecord": time(last.arrived),
                "batchSize": records.len(),
                "streamArn": stream_arn,
            },
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(text: &str) -> Value {
        serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn a_filter_matches_exact_values_in_nested_fields() {
        let profile = pattern(
            r#"{"eventName": ["INSERT", "MODIFY"], "dynamodb": {"Keys": {"sk": {"S": ["PROFILE"]}}}}"#,
        );
        let record = |event: &str, sk: &str| json!({"eventName": event, "dynamodb": {"Keys": {"pk": {"S": "USER#1"}, "sk": {"S": sk}}}});
        assert!(matches(&profile, &record("INSERT", "PROFILE")));
        assert!(matches(&profile, &record("MODIFY", "PROFILE")));
        assert!(!matches(&profile, &record("REMOVE", "PROFILE")));
        assert!(!matches(&profile, &record("INSERT", "EMAIL")));
        assert!(!matches(&profile, &json!({"eventName": "INSERT"})));
    }

    #[test]
    fn a_filter_with_operators_is_refused_rather_than_misread() {
        assert!(
            check_filter(&pattern(
                r#"{"eventName": ["INSERT"], "dynamodb": {"Keys": {"sk": {"S": ["DELETED"]}}}}"#
            ))
            .is_ok()
        );
        for unsupported in [
            r#"{"eventName": [{"prefix": "IN"}]}"#,
            r#"{"eventName": "INSERT"}"#,
            r#"{"dynamodb": {"Keys": {"sk": {"S": [{"anything-but": ["X"]}]}}}}"#,
        ] {
            assert!(
                check_filter(&pattern(unsupported)).is_err(),
                "{unsupported}"
            );
        }
    }
}
