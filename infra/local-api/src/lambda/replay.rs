//! Replays dead letters: each on-failure record of the stream's event source
//! mapping names a range of stream records (shard, first and last sequence
//! numbers), not the records. While the stream retains them (24 hours),
//! they are read back from the Streams API, kept or dropped by the
//! mapping's filters, and delivered to the history worker as Lambda
//! delivers them (the same event record fields, in order, at most
//! `BatchSize` a batch). The worker skips events it already wrote, so a
//! replay can be run again.
//!
//! Not a stand-in: the operator's tool for the mapping's on-failure
//! destination (`local-api replay-dead-letters`), which reads the deployed
//! stack's queue and stream and invokes its worker, or this twin's.

use std::time::Duration;

use aws_sdk_dynamodbstreams::error::ProvideErrorMetadata;
use aws_sdk_dynamodbstreams::types::{Record, ShardIteratorType};
use aws_sdk_lambda::primitives::Blob;
use serde_json::{Value, json};

use super::worker::mapped_record;
use crate::stack::deployment::StreamMapping;

/// Where the letters come from.
#[derive(Debug, Clone)]
pub enum Source {
    /// A dead-letter file (JSON lines), as `--dead-letter-file` writes it.
    File(std::path::PathBuf),
    /// The SQS queue of the mapping's on-failure destination: each message
    /// replayed is deleted, the others come back when their visibility
    /// timeout ends.
    Queue {
        /// Its client.
        sqs: aws_sdk_sqs::Client,
        /// `HistoryDeadLetterQueueUrl`.
        url: String,
    },
}

/// How long a received message stays hidden from other readers while it is
/// replayed.
const VISIBILITY_TIMEOUT_SECONDS: i32 = 300;

/// How often a batch the worker reports failed is delivered again.
const ATTEMPTS: usize = 3;
/// Empty pages read from an open shard before its range counts as missing.
const EMPTY_PAGES: u32 = 5;

/// One on-failure record: where its stream records are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Letter {
    /// `DDBStreamBatchInfo.streamArn`.
    pub stream_arn: String,
    /// `DDBStreamBatchInfo.shardId`.
    pub shard: String,
    /// `DDBStreamBatchInfo.startSequenceNumber`.
    pub first: String,
    /// `DDBStreamBatchInfo.endSequenceNumber`.
    pub last: String,
    /// `requestContext.functionArn`: the function the mapping invoked.
    pub function_arn: String,
}

impl Letter {
    /// Reads Lambda's on-failure record for a DynamoDB stream.
    pub fn parse(letter: &Value) -> Result<Self, ReplayError> {
        let batch = &letter["DDBStreamBatchInfo"];
        let field = |value: &Value, name: &str| {
            value[name]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| ReplayError::NotALetter(format!("it has no {name}")))
        };
        Ok(Self {
            stream_arn: field(batch, "streamArn")?,
            shard: field(batch, "shardId")?,
            first: field(batch, "startSequenceNumber")?,
            last: field(batch, "endSequenceNumber")?,
            function_arn: field(&letter["requestContext"], "functionArn")?,
        })
    }

    /// The region in the stream's ARN.
    fn region(&self) -> &str {
        self.stream_arn.split(':').nth(3).unwrap_or_default()
    }
}

/// What one replay did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Replayed {
    /// Stream records in the letter's range.
    pub records: usize,
    /// Of those, the records the mapping's filters keep: delivered.
    pub delivered: usize,
    /// Invocations of the worker.
    pub invocations: usize,
}

/// Why a letter could not be replayed.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The message is not a stream's on-failure record.
    #[error("not an on-failure record of a DynamoDB stream: {0}")]
    NotALetter(String),
    /// The records are no longer in the stream.
    #[error(
        "shard {shard} from sequence number {first}: the records are no longer in the stream (past its 24-hour retention, or the stream is gone) and cannot be replayed. The users' items still hold their current state; the history events of those changes are lost. docs/operating.md, \"Dead letters\", says how to find the users concerned"
    )]
    PastRetention {
        /// The letter's shard.
        shard: String,
        /// Its first sequence number.
        first: String,
    },
    /// The letters could not be read (the file, or the queue).
    #[error("reading the dead letters failed: {0}")]
    Source(String),
    /// The Streams API failed otherwise.
    #[error("reading the stream failed: {0}")]
    Stream(String),
    /// The worker could not be invoked.
    #[error("invoking {function} failed: {message}")]
    Invoke {
        /// The function.
        function: String,
        /// Lambda's error.
        message: String,
    },
    /// The worker failed the batch, or kept reporting records failed.
    #[error("{function} failed the replayed records after {ATTEMPTS} attempts: {answer}")]
    Worker {
        /// The function.
        function: String,
        /// Its answer.
        answer: String,
    },
}

/// Replays letters with the function's and the stream's clients.
#[derive(Debug, Clone)]
pub struct Replayer {
    /// Reads the stream.
    pub streams: aws_sdk_dynamodbstreams::Client,
    /// Invokes the worker.
    pub lambda: aws_sdk_lambda::Client,
    /// The mapping's settings (filters, batch size), from the template.
    pub mapping: StreamMapping,
    /// The function to invoke instead of the letter's.
    pub function: Option<String>,
}

/// Where a replay reads the stream and invokes the worker: AWS (the
/// default credential chain and region), or local endpoints.
#[derive(Debug, Clone, Default)]
pub struct Endpoints {
    /// DynamoDB Local, whose Streams API holds the stream.
    pub dynamodb: Option<String>,
    /// A local API started with `--lambda`, which serves Lambda's `Invoke`.
    pub lambda: Option<String>,
}

impl Replayer {
    /// A replayer for `endpoints`, with the stream mapping's settings read
    /// from the translation of `template`.
    pub async fn connect(
        endpoints: &Endpoints,
        translations: &std::path::Path,
        template: &std::path::Path,
        function: Option<String>,
    ) -> Result<Self, crate::stack::deployment::DeploymentError> {
        let local = crate::stack::deployment::LocalResources {
            table: String::new(),
            stream_arn: None,
        };
        let mapping =
            crate::stack::deployment::Deployment::load(translations, template, "none", local)?
                .stream_mappings()?
                .into_iter()
                .next()
                .ok_or_else(|| {
                    crate::stack::deployment::DeploymentError::Content(
                        "the template has no stream event source mapping".to_owned(),
                    )
                })?;
        let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        let streams = match &endpoints.dynamodb {
            Some(endpoint) => aws_sdk_dynamodbstreams::Client::new(
                &crate::dynamodb::table::local_config(endpoint).await,
            ),
            None => aws_sdk_dynamodbstreams::Client::new(&aws),
        };
        let lambda = match &endpoints.lambda {
            Some(endpoint) => aws_sdk_lambda::Client::new(
                &aws_config::defaults(aws_config::BehaviorVersion::latest())
                    .endpoint_url(endpoint)
                    .region(aws_config::Region::new(crate::stack::deployment::REGION))
                    .credentials_provider(aws_sdk_lambda::config::Credentials::new(
                        "local", "local", None, None, "replay",
                    ))
                    .load()
                    .await,
            ),
            None => aws_sdk_lambda::Client::new(&aws),
        };
        Ok(Self {
            streams,
            lambda,
            mapping,
            function,
        })
    }

    /// Replays every letter of `source`, printing each outcome; returns how
    /// many letters could not be replayed.
    pub async fn run(&self, source: &Source) -> Result<usize, ReplayError> {
        let mut failed = 0;
        let mut report = |what: &str, outcome: Result<Replayed, ReplayError>| match outcome {
            Ok(done) => println!(
                "{what}: replayed: {} stream records, {} delivered in {} invocations",
                done.records, done.delivered, done.invocations
            ),
            Err(error) => {
                failed += 1;
                println!("{what}: not replayed: {error}");
            }
        };
        match source {
            Source::File(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| ReplayError::Source(format!("{}: {e}", path.display())))?;
                for (number, line) in text
                    .lines()
                    .enumerate()
                    .filter(|(_, l)| !l.trim().is_empty())
                {
                    let outcome = self.replay_text(line).await;
                    report(&format!("{}:{}", path.display(), number + 1), outcome);
                }
            }
            Source::Queue { sqs, url } => loop {
                let received = sqs
                    .receive_message()
                    .queue_url(url)
                    .max_number_of_messages(10)
                    .visibility_timeout(VISIBILITY_TIMEOUT_SECONDS)
                    .wait_time_seconds(1)
                    .send()
                    .await
                    .map_err(|e| {
                        ReplayError::Source(aws_sdk_sqs::error::DisplayErrorContext(&e).to_string())
                    })?;
                let messages = received.messages.unwrap_or_default();
                if messages.is_empty() {
                    break;
                }
                for message in messages {
                    let id = message.message_id.clone().unwrap_or_default();
                    let outcome = self.replay_text(message.body().unwrap_or_default()).await;
                    if outcome.is_ok() {
                        sqs.delete_message()
                            .queue_url(url)
                            .set_receipt_handle(message.receipt_handle)
                            .send()
                            .await
                            .map_err(|e| {
                                ReplayError::Source(
                                    aws_sdk_sqs::error::DisplayErrorContext(&e).to_string(),
                                )
                            })?;
                    }
                    report(&format!("message {id}"), outcome);
                }
            },
        }
        Ok(failed)
    }

    async fn replay_text(&self, text: &str) -> Result<Replayed, ReplayError> {
        let letter: Value =
            serde_json::from_str(text).map_err(|e| ReplayError::NotALetter(e.to_string()))?;
        self.replay(&Letter::parse(&letter)?).await
    }

    /// Reads the letter's records back and delivers them to the worker.
    pub async fn replay(&self, letter: &Letter) -> Result<Replayed, ReplayError> {
        let records = self.read(letter).await?;
        let function = self.function.as_deref().unwrap_or(&letter.function_arn);
        let mut delivered = Vec::new();
        for record in &records {
            let event = mapped_record(record.clone(), &letter.stream_arn, letter.region());
            let event =
                serde_json::to_value(&event).map_err(|e| ReplayError::Stream(e.to_string()))?;
            if self.mapping.keeps(&event) {
                delivered.push(event);
            }
        }
        let mut invocations = 0;
        for batch in delivered.chunks(self.mapping.batch_size.max(1)) {
            invocations += self.deliver(function, batch).await?;
        }
        Ok(Replayed {
            records: records.len(),
            delivered: delivered.len(),
            invocations,
        })
    }

    /// The stream records from the letter's first to its last sequence
    /// number, both included.
    async fn read(&self, letter: &Letter) -> Result<Vec<Record>, ReplayError> {
        let past = || ReplayError::PastRetention {
            shard: letter.shard.clone(),
            first: letter.first.clone(),
        };
        let stream_error = |error: &dyn ProvideErrorMetadata, display: String| {
            if is_past_retention(error.code()) {
                past()
            } else {
                ReplayError::Stream(display)
            }
        };
        let mut iterator = self
            .streams
            .get_shard_iterator()
            .stream_arn(&letter.stream_arn)
            .shard_id(&letter.shard)
            .shard_iterator_type(ShardIteratorType::AtSequenceNumber)
            .sequence_number(&letter.first)
            .send()
            .await
            .map_err(|e| {
                let display = aws_sdk_dynamodbstreams::error::DisplayErrorContext(&e).to_string();
                stream_error(&e, display)
            })?
            .shard_iterator;
        let mut records = Vec::new();
        let mut empty = 0;
        while let Some(current) = iterator.take() {
            let page = self
                .streams
                .get_records()
                .shard_iterator(current)
                .send()
                .await
                .map_err(|e| {
                    let display =
                        aws_sdk_dynamodbstreams::error::DisplayErrorContext(&e).to_string();
                    stream_error(&e, display)
                })?;
            let got = page.records.unwrap_or_default();
            empty = if got.is_empty() { empty + 1 } else { 0 };
            for record in got {
                let sequence = sequence_number(&record);
                if records.is_empty() && sequence != letter.first {
                    // The first record kept is later than the letter's: the
                    // ones before it were trimmed.
                    return Err(past());
                }
                if later(sequence, &letter.last) {
                    return Ok(records);
                }
                let done = sequence == letter.last;
                records.push(record);
                if done {
                    return Ok(records);
                }
            }
            if empty >= EMPTY_PAGES {
                break;
            }
            iterator = page.next_shard_iterator;
        }
        if records.is_empty() {
            return Err(past());
        }
        Err(ReplayError::Stream(format!(
            "shard {} ended before sequence number {}",
            letter.shard, letter.last
        )))
    }

    /// Invokes `function` with `batch` until it takes every record; returns
    /// the invocations made.
    async fn deliver(&self, function: &str, batch: &[Value]) -> Result<usize, ReplayError> {
        let mut from = 0;
        let mut attempt = 1;
        loop {
            let event = json!({ "Records": &batch[from..] });
            let output = self
                .lambda
                .invoke()
                .function_name(function)
                .payload(Blob::new(event.to_string()))
                .send()
                .await
                .map_err(|e| ReplayError::Invoke {
                    function: function.to_owned(),
                    message: aws_sdk_lambda::error::DisplayErrorContext(&e).to_string(),
                })?;
            let answer = output
                .payload
                .map(|p| String::from_utf8_lossy(&p.into_inner()).into_owned())
                .unwrap_or_default();
            let failed = match output.function_error {
                Some(_) => Some(0),
                None => first_failed(&answer, &batch[from..]),
            };
            match failed {
                None => return Ok(attempt),
                Some(_) if attempt == ATTEMPTS => {
                    return Err(ReplayError::Worker {
                        function: function.to_owned(),
                        answer,
                    });
                }
                Some(index) => {
                    from += index;
                    tokio::time::sleep(Duration::from_secs(attempt as u64)).await;
                    attempt += 1;
                }
            }
        }
    }
}

/// The index of the first record the worker's answer reports failed, if
/// any (an unreadable answer or an unknown identifier fails the batch, as
/// Lambda treats them).
fn first_failed(answer: &str, batch: &[Value]) -> Option<usize> {
    let Ok(answer) = serde_json::from_str::<Value>(answer) else {
        return Some(0);
    };
    let failures = match &answer["batchItemFailures"] {
        Value::Null => return None,
        Value::Array(failures) => failures,
        _ => return Some(0),
    };
    failures
        .iter()
        .map(|failure| {
            batch
                .iter()
                .position(|r| r["dynamodb"]["SequenceNumber"] == failure["itemIdentifier"])
                .unwrap_or(0)
        })
        .min()
}

/// Whether the Streams API's error `code` says the records are gone:
/// `TrimmedDataAccessException` ("You request a shard iterator with a
/// sequence number older than the trim point (24 hours)", in the API
/// reference) or `ResourceNotFoundException` ("The operation tried to
/// access a nonexistent stream": a shard or stream deleted after its
/// retention).
fn is_past_retention(code: Option<&str>) -> bool {
    matches!(
        code,
        Some("TrimmedDataAccessException" | "ResourceNotFoundException")
    )
}

fn sequence_number(record: &Record) -> &str {
    record
        .dynamodb
        .as_ref()
        .and_then(|d| d.sequence_number.as_deref())
        .unwrap_or_default()
}

/// Whether sequence number `a` comes after `b` (both decimal numbers of up
/// to 40 digits, too long for an integer type).
fn later(a: &str, b: &str) -> bool {
    (a.len(), a) > (b.len(), b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_trimmed_or_missing_records_count_as_past_retention() {
        assert!(is_past_retention(Some("TrimmedDataAccessException")));
        assert!(is_past_retention(Some("ResourceNotFoundException")));
        assert!(!is_past_retention(Some("ValidationException")));
        assert!(!is_past_retention(Some("InternalServerError")));
        assert!(!is_past_retention(None));
    }

    #[test]
    fn sequence_numbers_compare_as_numbers() {
        assert!(later(
            "100000000000000000000000010",
            "99999999999999999999999999"
        ));
        assert!(later("4000000000000000000001", "4000000000000000000000"));
        assert!(!later("4000000000000000000000", "4000000000000000000000"));
    }

    #[test]
    fn a_letter_names_its_range_and_function() {
        let letter = json!({
            "requestContext": {"functionArn": "arn:aws:lambda:eu-west-1:1:function:w:live", "condition": "RetryAttemptsExhausted"},
            "DDBStreamBatchInfo": {"shardId": "s", "startSequenceNumber": "1", "endSequenceNumber": "2", "streamArn": "arn:aws:dynamodb:eu-west-1:1:table/t/stream/x"},
        });
        let parsed = Letter::parse(&letter).expect("a letter");
        assert_eq!(parsed.region(), "eu-west-1");
        assert_eq!((parsed.first.as_str(), parsed.last.as_str()), ("1", "2"));
        assert!(matches!(
            Letter::parse(&json!({"Records": []})),
            Err(ReplayError::NotALetter(_))
        ));
    }

    #[test]
    fn the_worker_s_answer_says_where_to_deliver_again_from() {
        let batch = [
            json!({"dynamodb": {"SequenceNumber": "10"}}),
            json!({"dynamodb": {"SequenceNumber": "11"}}),
        ];
        assert_eq!(first_failed(r#"{"batchItemFailures": []}"#, &batch), None);
        assert_eq!(
            first_failed(
                r#"{"batchItemFailures": [{"itemIdentifier": "11"}]}"#,
                &batch
            ),
            Some(1)
        );
        assert_eq!(first_failed("not json", &batch), Some(0));
    }
}
