//! Structured JSON logs, one object per line, as Lambda's JSON log format
//! expects: `timestamp` (RFC 3339), `level` (which Lambda's log-level
//! filtering reads), `message`, then, inside an invocation, Lambda's request
//! id (`function_request_id`) and the X-Ray trace id (`xray_trace_id`), and,
//! inside a request's span, the trace id it is part of in W3C form
//! (`trace_id`, which a client's `traceparent` may have chosen); then the
//! event's fields.
//!
//! A field named [`MERGED_FIELD`] holding a JSON object's text is not
//! written as a string: its members join the line's top level. That is how
//! the request log line is also a CloudWatch EMF document (see
//! [`crate::metrics`]), which needs `_aws` and the metric values there.

use std::fmt;

use serde::de::IgnoredAny;
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Metadata, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::filter::{FilterExt, LevelFilter, Targets, filter_fn};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

/// The field whose JSON object's members are written at the line's top
/// level.
pub const MERGED_FIELD: &str = "emf";
/// The span the Lambda runtime opens around each invocation, with its
/// `requestId` and `xrayTraceId`.
pub const INVOCATION_SPAN: &str = "Lambda runtime invoke";
/// The span `common::http::serve` opens around a request, with the
/// `trace_id` of its OpenTelemetry span.
pub const TRACE_SPAN: &str = "trace";

/// The crates whose logs follow the configured level all the way down:
/// ours, which never log a token, a body, an email address or a name at
/// any level.
const OUR_CRATES: [&str; 10] = [
    "common",
    "storage",
    "telemetry",
    "create_user",
    "get_user",
    "list_users",
    "update_user",
    "delete_user",
    "list_user_events",
    "history_worker",
];

/// Installs the JSON log subscriber on stdout, with [`filter`]. The level comes from
/// `RUST_LOG`, else `LOG_LEVEL` (template.yaml sets it from `LogLevel`),
/// else Lambda's `AWS_LAMBDA_LOG_LEVEL`, else `info`.
/// Calling it again is harmless.
pub fn init() {
    init_with_writer(std::io::stdout);
}

/// [`init`], writing the lines to `writer` (tests read them back).
pub fn init_with_writer<W>(writer: W)
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let level = ["RUST_LOG", "LOG_LEVEL", "AWS_LAMBDA_LOG_LEVEL"]
        .iter()
        .find_map(|name| std::env::var(name).ok()?.trim().parse::<LevelFilter>().ok())
        .unwrap_or(LevelFilter::INFO);
    // The invocation span passes whatever the level, so that every line
    // inside it, warnings and errors included, carries its ids.
    let lines = tracing_subscriber::fmt::layer()
        .event_format(JsonLine)
        .with_writer(writer)
        .with_filter(filter(level).or(filter_fn(is_invocation)));
    let _ = tracing_subscriber::registry()
        .with(InvocationIds.with_filter(filter_fn(is_invocation)))
        .with(lines)
        .try_init();
}

/// `level` for our crates, and at most `info` for every dependency: at
/// `debug` and `trace` the Lambda runtime logs raw events (the
/// `Authorization` header, bodies, claims) and the AWS SDK logs request
/// bodies (email addresses, names), so those levels are never theirs. The
/// lines that carry metrics ([`crate::metrics::LOG_TARGET`]) are kept at
/// every level.
pub fn filter(level: LevelFilter) -> Targets {
    Targets::new()
        .with_default(level.min(LevelFilter::INFO))
        .with_targets(OUR_CRATES.map(|krate| (krate, level)))
        .with_target(crate::metrics::LOG_TARGET, level.max(LevelFilter::INFO))
}

fn is_invocation(metadata: &Metadata<'_>) -> bool {
    metadata.is_span() && [INVOCATION_SPAN, TRACE_SPAN].contains(&metadata.name())
}

/// Lambda's ids for one invocation, or the trace id of one request, kept
/// on its span.
#[derive(Debug, Default)]
struct Invocation {
    request_id: Option<String>,
    xray_trace_id: Option<String>,
    trace_id: Option<String>,
}

impl Visit for Invocation {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "requestId" => self.request_id = Some(value.to_owned()),
            // Only the trace id (`Root`) identifies the trace in X-Ray.
            "xrayTraceId" => {
                self.xray_trace_id = value
                    .split(';')
                    .find_map(|part| part.trim().strip_prefix("Root="))
                    .map(str::to_owned);
            }
            "trace_id" => self.trace_id = Some(value.to_owned()),
            _ => {}
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.record_str(field, format!("{value:?}").trim_matches('"'));
    }
}

/// Records [`Invocation`] on each invocation span, for [`JsonLine`].
#[derive(Debug)]
struct InvocationIds;

impl<S> Layer<S> for InvocationIds
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attributes: &Attributes<'_>, id: &Id, context: Context<'_, S>) {
        let mut invocation = Invocation::default();
        attributes.record(&mut invocation);
        if let Some(span) = context.span(id) {
            span.extensions_mut().insert(invocation);
        }
    }
}

/// Formats each event as one JSON object.
#[derive(Debug, Clone, Copy)]
struct JsonLine;

impl<S, N> FormatEvent<S, N> for JsonLine
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        context: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let timestamp = OffsetDateTime::now_utc()
            .format(&Rfc3339)
            .unwrap_or_default();
        let mut fields = Fields {
            trusted: event.metadata().target() == crate::metrics::LOG_TARGET,
            ..Fields::default()
        };
        event.record(&mut fields);
        let mut line: Vec<(&str, Value)> = vec![
            ("timestamp", Value::String(timestamp)),
            (
                "level",
                Value::String(event.metadata().level().as_str().to_owned()),
            ),
        ];
        if let Some(message) = fields.message {
            line.push(("message", Value::String(message)));
        }
        for span in context
            .event_scope()
            .into_iter()
            .flat_map(|scope| scope.from_root())
        {
            if let Some(invocation) = span.extensions().get::<Invocation>() {
                for (name, value) in [
                    ("function_request_id", &invocation.request_id),
                    ("xray_trace_id", &invocation.xray_trace_id),
                    ("trace_id", &invocation.trace_id),
                ] {
                    if let Some(value) = value {
                        line.push((name, Value::String(value.clone())));
                    }
                }
            }
        }
        line.extend(fields.values);
        let mut text = serde_json::to_string(&Ordered(&line)).map_err(|_| fmt::Error)?;
        // The merged object's members join the line's as they are: its text
        // is already JSON, so it is spliced in rather than parsed again.
        if let Some(members) = fields
            .merged
            .as_deref()
            .and_then(|merged| merged.strip_prefix('{'))
            .filter(|members| members.trim() != "}")
        {
            text.pop();
            text.push(',');
            text.push_str(members);
        }
        writeln!(writer, "{text}")
    }
}

/// Members written in their order, whatever order `serde_json::Map` keeps.
struct Ordered<'a>(&'a [(&'a str, Value)]);

impl Serialize for Ordered<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, value) in self.0 {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

/// An event's fields, in the order they were recorded.
#[derive(Default)]
struct Fields {
    message: Option<String>,
    values: Vec<(&'static str, Value)>,
    /// The text of [`MERGED_FIELD`]'s object.
    merged: Option<String>,
    /// Whether the event is a metrics line, whose merged object is
    /// `Emf::to_json`'s (serde_json's) output: it is spliced in as it is,
    /// where any other line's is parsed first to check it is JSON. The
    /// parse was a twentieth of a create-user request's CPU time.
    trusted: bool,
}

impl Fields {
    fn push(&mut self, field: &Field, value: Value) {
        if field.name() == "message" {
            self.message = Some(match value {
                Value::String(text) => text,
                other => other.to_string(),
            });
        } else {
            self.values.push((field.name(), value));
        }
    }
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == MERGED_FIELD
            && value.trim_start().starts_with('{')
            && (self.trusted || serde_json::from_str::<IgnoredAny>(value).is_ok())
        {
            self.merged = Some(value.trim().to_owned());
            return;
        }
        self.push(field, Value::String(value.to_owned()));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.push(field, Value::Bool(value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.push(field, Value::from(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.push(field, Value::from(value));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.push(field, Value::from(value));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.push(field, Value::String(value.to_string()));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.push(field, Value::String(format!("{value:?}")));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The lines `log` writes with the functions' layers at `level`.
    fn capture(level: &str, log: impl FnOnce()) -> Vec<Value> {
        capture_filtered(level.parse::<Targets>().expect("a valid level"), log)
    }

    /// The lines `log` writes with the functions' layers behind `targets`.
    fn capture_filtered(targets: Targets, log: impl FnOnce()) -> Vec<Value> {
        let lines = crate::captured_log::CapturedLog::default();
        let subscriber = tracing_subscriber::registry()
            .with(InvocationIds.with_filter(filter_fn(is_invocation)))
            .with(
                tracing_subscriber::fmt::layer()
                    .event_format(JsonLine)
                    .with_writer(lines.clone())
                    .with_filter(targets.or(filter_fn(is_invocation))),
            );
        tracing::subscriber::with_default(subscriber, log);
        lines
            .text()
            .lines()
            .map(|line| serde_json::from_str(line).expect("each line is one JSON object"))
            .collect()
    }

    #[test]
    fn each_event_is_one_json_line_with_level_message_and_fields() {
        let lines = capture("info", || {
            tracing::info!(request_id = "r-1", status = 404_u16, ok = false, "request");
            tracing::warn!(error = %"boom", "failed");
        });
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["level"], "INFO");
        assert_eq!(lines[0]["message"], "request");
        assert_eq!(lines[0]["request_id"], "r-1");
        assert_eq!(lines[0]["status"], 404);
        assert_eq!(lines[0]["ok"], false);
        assert!(
            lines[0]["timestamp"]
                .as_str()
                .is_some_and(|t| t.ends_with('Z'))
        );
        assert_eq!(lines[1]["level"], "WARN");
        assert_eq!(lines[1]["error"], "boom");
    }

    #[test]
    fn lines_inside_an_invocation_carry_its_request_and_trace_ids() {
        let lines = capture("warn", || {
            let span = tracing::info_span!(
                "Lambda runtime invoke",
                requestId = "8476a536-e9f4-11e8-9739-2dfe598c3fcd",
                xrayTraceId =
                    "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
            );
            span.in_scope(|| tracing::warn!("inside, and the span is below the level"));
            tracing::warn!("outside");
        });
        assert_eq!(lines.len(), 2);
        assert_eq!(
            lines[0]["function_request_id"],
            "8476a536-e9f4-11e8-9739-2dfe598c3fcd"
        );
        assert_eq!(
            lines[0]["xray_trace_id"],
            "1-5759e988-bd862e3fe1be46a994272793"
        );
        assert!(lines[1].get("function_request_id").is_none());
        assert!(lines[1].get("xray_trace_id").is_none());
    }

    #[test]
    fn lines_inside_a_request_carry_its_w3c_trace_id() {
        let lines = capture("warn", || {
            let invocation = tracing::info_span!(
                "Lambda runtime invoke",
                requestId = "r-1",
                xrayTraceId =
                    "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
            );
            let request = invocation.in_scope(|| {
                tracing::info_span!(TRACE_SPAN, trace_id = "4bf92f3577b34da6a3ce929d0e0e4736")
            });
            invocation.in_scope(|| request.in_scope(|| tracing::warn!("inside")));
            invocation.in_scope(|| tracing::warn!("before the request's span"));
        });
        assert_eq!(lines[0]["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(
            lines[0]["xray_trace_id"], "1-5759e988-bd862e3fe1be46a994272793",
            "Lambda's trace stays beside it"
        );
        assert_eq!(lines[0]["function_request_id"], "r-1");
        assert!(lines[1].get("trace_id").is_none());
    }

    #[test]
    fn the_merged_field_joins_the_top_level() {
        let lines = capture("info", || {
            tracing::info!(
                route = "GET /users",
                emf = r#"{"_aws":{"Timestamp":1},"Requests":1}"#,
                "request"
            );
        });
        assert_eq!(lines[0]["route"], "GET /users");
        assert_eq!(lines[0]["_aws"]["Timestamp"], 1);
        assert_eq!(lines[0]["Requests"], 1);
        assert!(lines[0].get(MERGED_FIELD).is_none());
    }

    #[test]
    fn a_merged_field_that_is_no_json_object_stays_a_plain_field() {
        let lines = capture("info", || {
            tracing::info!(emf = "{not json", "request");
            tracing::info!(emf = "{}", "empty");
        });
        assert_eq!(lines[0]["emf"], "{not json");
        assert_eq!(lines[1]["message"], "empty");
        assert!(lines[1].get("emf").is_none());
    }

    #[test]
    fn the_lines_that_carry_metrics_are_kept_at_every_level() {
        for level in [
            LevelFilter::ERROR,
            LevelFilter::WARN,
            LevelFilter::INFO,
            LevelFilter::DEBUG,
            LevelFilter::TRACE,
        ] {
            let lines = capture_filtered(filter(level), || {
                tracing::info!(target: crate::metrics::LOG_TARGET, "request");
                tracing::info!("history event");
                tracing::warn!("slow");
            });
            let kept: Vec<&str> = lines
                .iter()
                .filter_map(|line| line["message"].as_str())
                .collect();
            assert!(kept.contains(&"request"), "{level}: {kept:?}");
            assert_eq!(
                kept.contains(&"history event"),
                level >= LevelFilter::INFO,
                "{level}: {kept:?}"
            );
            assert_eq!(
                kept.contains(&"slow"),
                level >= LevelFilter::WARN,
                "{level}: {kept:?}"
            );
        }
    }
}
