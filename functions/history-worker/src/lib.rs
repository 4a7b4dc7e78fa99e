//! The background worker: consumes the table's DynamoDB stream and writes
//! one history event per user change (created; updated, naming the changed
//! fields, never their values; deleted). The stream is the queue: a change
//! is committed once, in DynamoDB, and this worker sees it.
//!
//! Each event is a conditional put keyed on the user and the version the
//! change produced, so a record delivered twice records one event. The
//! first record that cannot be processed stops the batch: it and every
//! record after it are reported in `batchItemFailures` (the event source
//! mapping uses `ReportBatchItemFailures` and retries from the first
//! reported record), so a user's events are stored in version order and a
//! reader whose cursor passed version 3 has already seen version 2. After
//! bounded retries Lambda sends the record to the dead-letter queue.
//!
//! A batch keeps the invocation's deadline: it stops [`DEADLINE_MARGIN`]
//! before it and reports the record in progress and every later one as
//! failed, so a slow or throttled table makes reported failures that the
//! mapping retries, never a function timeout (which retries the whole
//! batch, counts as an error and bisects it). A put cut off mid-call either
//! happened or did not; its retry writes the event once either way.
//!
//! DynamoDB permissions (its role in template.yaml): `PutItem` of the
//! events, `DescribeEndpoints` at init. The event source mapping reads the
//! stream and sends failures to the dead-letter queue with the same role,
//! through the policies SAM attaches for the `DynamoDB` event.

use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use lambda_runtime::LambdaEvent;
use storage::stream::{
    self, DynamoDbBatchItemFailure, DynamoDbEventResponse, EventRecord, InvalidRecord, StreamEvent,
};
use storage::{HistoryStore, StoreError};
use telemetry::{dynamodb_calls, metrics};
use traces::FutureExt;

#[derive(Debug, thiserror::Error)]
enum RecordError {
    #[error(transparent)]
    Invalid(#[from] InvalidRecord),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Kept free before the invocation's deadline to return the batch's
/// failures.
pub const DEADLINE_MARGIN: Duration = Duration::from_millis(500);

/// The time a batch invoked with `deadline` may take: until the deadline
/// less [`DEADLINE_MARGIN`] (none when it has passed).
pub fn budget(deadline: SystemTime) -> Duration {
    deadline
        .duration_since(SystemTime::now())
        .unwrap_or_default()
        .saturating_sub(DEADLINE_MARGIN)
}

/// Handles one invocation: its batch, within the invocation's deadline
/// ([`budget`]), inside a `CONSUMER` span with the batch's record count
/// (`messaging.batch.message_count`), an error when a record failed.
pub async fn handle_invocation(
    store: &dyn HistoryStore,
    event: LambdaEvent<StreamEvent>,
) -> DynamoDbEventResponse {
    let LambdaEvent { payload, context } = event;
    let budget = budget(context.deadline());
    let Some(traces) = traces::current() else {
        return handle(store, payload, budget).await;
    };
    let records = i64::try_from(payload.records.len()).unwrap_or(i64::MAX);
    let span = traces.start_invocation(
        "stream batch".to_owned(),
        traces::SpanKind::Consumer,
        &traces::Invocation {
            request_id: &context.request_id,
            function_arn: &context.invoked_function_arn,
            xray_trace_id: context.xray_trace_id.as_deref(),
        },
        None,
        vec![
            traces::KeyValue::new("faas.trigger", "datasource"),
            traces::KeyValue::new("messaging.batch.message_count", records),
        ],
    );
    let log_span = tracing::info_span!(
        telemetry::log::TRACE_SPAN,
        trace_id = traces::trace_id(&span)
    );
    let response = tracing::Instrument::instrument(handle(store, payload, budget), log_span)
        .with_context(span.clone())
        .await;
    traces::end_invocation(&span, None, !response.batch_item_failures.is_empty());
    response
}

/// Handles one batch of stream records, in order, up to the first that
/// fails or the end of `budget`; that record and all later ones are
/// reported as failed. Its log line is also the batch's CloudWatch
/// metrics: records processed and failed, the oldest record's age, and the
/// DynamoDB calls.
pub async fn handle(
    store: &dyn HistoryStore,
    event: StreamEvent,
    budget: Duration,
) -> DynamoDbEventResponse {
    let stop_at = tokio::time::Instant::now() + budget;
    let (response, calls) = dynamodb_calls::measure(process_batch(store, &event, stop_at)).await;
    let failed = response.batch_item_failures.len();
    let processed = event.records.len().saturating_sub(failed);
    let emf = metrics::batch(processed, failed, oldest_age(&event, Utc::now()), &calls);
    tracing::info!(
        target: metrics::LOG_TARGET,
        records = event.records.len(),
        failed,
        emf = emf.to_json().as_str(),
        "stream batch"
    );
    response
}

async fn process_batch(
    store: &dyn HistoryStore,
    event: &StreamEvent,
    stop_at: tokio::time::Instant,
) -> DynamoDbEventResponse {
    let mut response = DynamoDbEventResponse::default();
    let mut records = event.records.iter();
    for record in records.by_ref() {
        let sequence_number = record.change.sequence_number.as_deref().unwrap_or_default();
        match tokio::time::timeout_at(stop_at, process(store, record)).await {
            Ok(Ok(())) => continue,
            Ok(Err(error)) => tracing::error!(
                sequence_number,
                event_name = record.event_name,
                error = %common::error::chain(&error),
                "stream record failed; it and the rest of the batch will be retried"
            ),
            Err(_) => tracing::warn!(
                sequence_number,
                event_name = record.event_name,
                "out of time before the invocation's deadline; this record and the rest of the batch will be retried"
            ),
        }
        response.batch_item_failures.push(failure(record));
        break;
    }
    // Not attempted: a later change of the same user must not be stored
    // before the failed one.
    response.batch_item_failures.extend(records.map(failure));
    response
}

/// How long the batch's oldest record waited in the stream: from its
/// approximate creation time to `now` (zero if clocks disagree).
fn oldest_age(event: &StreamEvent, now: DateTime<Utc>) -> Option<Duration> {
    event
        .records
        .iter()
        .map(|record| record.change.approximate_creation_date_time)
        .min()
        .map(|created| (now - created).to_std().unwrap_or_default())
}

fn failure(record: &EventRecord) -> DynamoDbBatchItemFailure {
    let mut failure = DynamoDbBatchItemFailure::default();
    failure.item_identifier = record.change.sequence_number.clone();
    failure
}

async fn process(store: &dyn HistoryStore, record: &EventRecord) -> Result<(), RecordError> {
    if let Some(event) = stream::history_event(record)? {
        store.record(&event).await?;
        tracing::info!(user_id = %event.user_id, version = event.version.get(), kind = event.kind.as_str(), "history event");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use common::domain::{PageRequest, PageSize, UserId};
    use storage::MemoryStore;

    use super::*;

    const BATCH: &str = include_str!("../fixtures/stream-batch.json");
    /// More time than any batch of these tests takes.
    const AMPLE: Duration = Duration::from_secs(60);

    fn batch() -> StreamEvent {
        serde_json::from_str(BATCH).expect("fixture is a DynamoDB stream event")
    }

    #[test]
    fn the_event_age_is_the_oldest_record_s() {
        let event = batch();
        let oldest = event
            .records
            .iter()
            .map(|r| r.change.approximate_creation_date_time)
            .min()
            .expect("records");
        let now = oldest + chrono::Duration::milliseconds(2_500);
        assert_eq!(oldest_age(&event, now), Some(Duration::from_millis(2_500)));
        assert_eq!(
            oldest_age(&event, oldest - chrono::Duration::seconds(1)),
            Some(Duration::ZERO),
            "a clock behind the stream's is no negative age"
        );
        assert_eq!(oldest_age(&StreamEvent::default(), now), None);
    }

    #[tokio::test]
    async fn a_poison_record_fails_itself_and_every_later_record_of_the_batch() {
        let store = MemoryStore::new();
        let response = handle(&store, batch(), AMPLE).await;
        let failed: Vec<_> = response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.clone())
            .collect();
        let later: Vec<_> = batch()
            .records
            .iter()
            .skip_while(|r| r.change.sequence_number.as_deref() != Some("200000000000000000002"))
            .map(|r| r.change.sequence_number.clone())
            .collect();
        assert!(
            later.len() > 1,
            "the fixture has records after the poison one"
        );
        assert_eq!(failed, later, "the poison record and every one after it");
        let id = UserId::parse("01JDQ7Z3K5N6P8R9S0T1V2W3X4").expect("id");
        let history = store
            .history(id, PageRequest::first(PageSize::default()))
            .await
            .expect("history");
        let kinds: Vec<&str> = history.items.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(kinds, ["created"], "only the records before the poison one");
    }

    /// The fixture less its poison record.
    fn without_poison() -> StreamEvent {
        let mut event = batch();
        event
            .records
            .retain(|r| r.change.sequence_number.as_deref() != Some("200000000000000000002"));
        event
    }

    #[tokio::test]
    async fn a_batch_retried_from_its_first_failure_keeps_each_users_order() {
        let store = MemoryStore::new();
        handle(&store, batch(), AMPLE).await;
        let response = handle(&store, without_poison(), AMPLE).await;
        assert!(response.batch_item_failures.is_empty());
        let id = UserId::parse("01JDQ7Z3K5N6P8R9S0T1V2W3X4").expect("id");
        let history = store
            .history(id, PageRequest::first(PageSize::default()))
            .await
            .expect("history");
        let versions: Vec<u64> = history.items.iter().map(|e| e.version.get()).collect();
        assert_eq!(versions, [1, 2, 3]);
        assert_eq!(history.items[1].changed_fields, ["name"]);
        assert_eq!(
            history.items[2].actor.as_deref(),
            Some("admin-app"),
            "the tombstone names who deleted"
        );
    }

    #[tokio::test]
    async fn a_record_delivered_twice_records_one_event() {
        let store = MemoryStore::new();
        handle(&store, without_poison(), AMPLE).await;
        handle(&store, without_poison(), AMPLE).await;
        let id = UserId::parse("01JDQ7Z3K5N6P8R9S0T1V2W3X4").expect("id");
        let history = store
            .history(id, PageRequest::first(PageSize::default()))
            .await
            .expect("history");
        assert_eq!(history.items.len(), 3);
    }

    /// A history store whose puts never finish after the first `served`.
    #[derive(Debug)]
    struct Stalling {
        inner: MemoryStore,
        served: std::sync::atomic::AtomicUsize,
    }

    #[async_trait::async_trait]
    impl HistoryStore for Stalling {
        async fn record(&self, event: &common::domain::HistoryEvent) -> Result<(), StoreError> {
            if self
                .served
                .fetch_sub(1, std::sync::atomic::Ordering::SeqCst)
                == 0
            {
                std::future::pending::<()>().await;
            }
            self.inner.record(event).await
        }

        async fn history(
            &self,
            user: UserId,
            page: PageRequest<common::domain::Version>,
        ) -> Result<common::domain::Page<common::domain::HistoryEvent>, StoreError> {
            self.inner.history(user, page).await
        }
    }

    // Paused time: the budget runs out in virtual time, at once and always
    // in the same place.
    #[tokio::test(start_paused = true)]
    async fn a_stalled_put_ends_the_batch_at_its_budget_with_the_rest_reported_failed() {
        let store = Stalling {
            inner: MemoryStore::new(),
            served: 1.into(),
        };
        let event = without_poison();
        let response = handle(&store, event.clone(), Duration::from_secs(5)).await;
        let failed: Vec<_> = response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.clone())
            .collect();
        let after_first: Vec<_> = event
            .records
            .iter()
            .skip(1)
            .map(|r| r.change.sequence_number.clone())
            .collect();
        assert_eq!(
            failed, after_first,
            "the stalled record and every later one"
        );
        let id = UserId::parse("01JDQ7Z3K5N6P8R9S0T1V2W3X4").expect("id");
        let history = store
            .history(id, PageRequest::first(PageSize::default()))
            .await
            .expect("history");
        assert_eq!(history.items.len(), 1, "only the record before the stall");
    }

    #[test]
    fn the_budget_keeps_the_margin_before_the_deadline() {
        let deadline = SystemTime::now() + Duration::from_secs(30);
        let left = budget(deadline);
        assert!(
            left <= Duration::from_secs(30) - DEADLINE_MARGIN,
            "{left:?}"
        );
        assert!(left > Duration::from_secs(29), "{left:?}");
        assert_eq!(
            budget(SystemTime::now() - Duration::from_secs(1)),
            Duration::ZERO
        );
    }
}
