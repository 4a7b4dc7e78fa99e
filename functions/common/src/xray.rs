//! X-Ray subsegments for DynamoDB calls, sent to the X-Ray daemon over UDP
//! as the X-Ray SDKs do: Lambda records the function's segment, and each
//! DynamoDB call becomes a subsegment under it (its parent is the `Parent`
//! of the invocation's trace header).
//!
//! Only where a daemon is configured (`AWS_XRAY_DAEMON_ADDRESS`, which Lambda
//! sets when active tracing is on) and the invocation is sampled: elsewhere
//! (locally, in tests) nothing is built, sent or logged.

use std::net::{SocketAddr, UdpSocket};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

/// The daemon's address, as Lambda gives it.
pub const DAEMON_ADDRESS_VAR: &str = "AWS_XRAY_DAEMON_ADDRESS";
/// The invocation's trace header, as the Lambda runtime sets it.
pub const TRACE_HEADER_VAR: &str = "_X_AMZN_TRACE_ID";
/// What precedes each segment document in a datagram.
const DATAGRAM_HEADER: &str = "{\"format\":\"json\",\"version\":1}\n";

/// Where subsegments go: a daemon, or nowhere.
#[derive(Debug, Clone, Default)]
pub struct Daemon {
    target: Option<(SocketAddr, std::sync::Arc<OnceLock<Option<UdpSocket>>>)>,
}

impl Daemon {
    /// The daemon Lambda names in `AWS_XRAY_DAEMON_ADDRESS` (`host:port`,
    /// or its `tcp:… udp:…` form), if any.
    pub fn from_env() -> Self {
        std::env::var(DAEMON_ADDRESS_VAR)
            .ok()
            .and_then(|value| parse_daemon_address(&value))
            .map_or_else(Self::default, Self::at)
    }

    /// A daemon at `address` (tests listen on loopback).
    pub fn at(address: SocketAddr) -> Self {
        Self {
            target: Some((address, std::sync::Arc::default())),
        }
    }

    /// Whether subsegments are sent anywhere.
    pub fn is_enabled(&self) -> bool {
        self.target.is_some()
    }

    /// Sends one segment document; a failure to send is ignored (tracing
    /// must never fail a request).
    pub fn send(&self, document: &Value) {
        let Some((address, socket)) = &self.target else {
            return;
        };
        // Bound on first use, so init pays nothing for it.
        let socket = socket.get_or_init(|| {
            let local: SocketAddr = if address.is_ipv4() {
                ([0, 0, 0, 0], 0).into()
            } else {
                ([0_u16; 8], 0).into()
            };
            UdpSocket::bind(local).ok()
        });
        if let Some(socket) = socket {
            let datagram = format!("{DATAGRAM_HEADER}{document}");
            let _ = socket.send_to(datagram.as_bytes(), address);
        }
    }
}

/// `127.0.0.1:2000`, or `tcp:127.0.0.1:2000 udp:127.0.0.1:2000`.
fn parse_daemon_address(value: &str) -> Option<SocketAddr> {
    let value = value.trim();
    let udp = value
        .split_whitespace()
        .find_map(|part| part.strip_prefix("udp:"))
        .unwrap_or(value);
    udp.parse().ok()
}

/// The parts of a trace header (`Root=1-…;Parent=…;Sampled=1`) a
/// subsegment needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceHeader {
    /// The trace id, `1-5759e988-bd862e3fe1be46a994272793`.
    pub root: String,
    /// The id of the segment new subsegments belong to.
    pub parent: Option<String>,
    /// Whether this trace is recorded.
    pub sampled: bool,
}

impl TraceHeader {
    /// Parses a trace header; `None` without a `Root`.
    pub fn parse(header: &str) -> Option<Self> {
        let mut root = None;
        let mut parent = None;
        let mut sampled = false;
        for part in header.split(';') {
            match part.trim().split_once('=') {
                Some(("Root", value)) => root = Some(value.to_owned()),
                Some(("Parent", value)) => parent = Some(value.to_owned()),
                Some(("Sampled", value)) => sampled = value == "1",
                _ => {}
            }
        }
        root.map(|root| Self {
            root,
            parent,
            sampled,
        })
    }

    /// The current invocation's header, which the Lambda runtime sets in
    /// `_X_AMZN_TRACE_ID` before each invocation.
    pub fn from_env() -> Option<Self> {
        std::env::var(TRACE_HEADER_VAR)
            .ok()
            .and_then(|header| Self::parse(&header))
    }
}

/// One finished DynamoDB call, as a subsegment reports it.
#[derive(Debug, Clone)]
pub struct Call<'a> {
    /// `GetItem`, `TransactWriteItems`…
    pub operation: &'a str,
    /// The region called.
    pub region: Option<&'a str>,
    /// The table named in the request, if it names one.
    pub table: Option<&'a str>,
    /// DynamoDB's `x-amzn-requestid`.
    pub request_id: Option<&'a str>,
    /// The final HTTP status, if a response came.
    pub status: Option<u16>,
    /// Whether the final answer was a throttling error.
    pub throttled: bool,
    /// When the SDK started and finished the call.
    pub started: SystemTime,
    /// See `started`.
    pub ended: SystemTime,
}

/// The subsegment document of `call` within `trace`, if the trace is
/// sampled and names its parent segment.
pub fn subsegment(trace: &TraceHeader, call: &Call<'_>) -> Option<Value> {
    if !trace.sampled {
        return None;
    }
    let parent = trace.parent.as_deref()?;
    let status = call.status;
    let mut aws = json!({ "operation": call.operation });
    for (name, value) in [
        ("region", call.region),
        ("table_name", call.table),
        ("request_id", call.request_id),
    ] {
        if let Some(value) = value {
            aws[name] = Value::String(value.to_owned());
        }
    }
    let mut document = json!({
        "type": "subsegment",
        "id": format!("{:016x}", fastrand::u64(..)),
        "trace_id": trace.root,
        "parent_id": parent,
        "name": "DynamoDB",
        "namespace": "aws",
        "start_time": seconds(call.started),
        "end_time": seconds(call.ended),
        "aws": aws,
    });
    if let Some(status) = status {
        document["http"] = json!({ "response": { "status": status } });
    }
    let client_error = status.is_some_and(|s| (400..500).contains(&s));
    let server_error = status.is_none_or(|s| s >= 500);
    if client_error {
        document["error"] = Value::Bool(true);
    }
    if server_error {
        document["fault"] = Value::Bool(true);
    }
    if call.throttled {
        document["throttle"] = Value::Bool(true);
    }
    Some(document)
}

/// Seconds since the epoch, with microseconds, as X-Ray wants times.
fn seconds(at: SystemTime) -> f64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0.0, |since| since.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str =
        "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";

    #[test]
    fn a_trace_header_gives_its_root_parent_and_sampling() {
        let trace = TraceHeader::parse(HEADER).expect("header");
        assert_eq!(trace.root, "1-5759e988-bd862e3fe1be46a994272793");
        assert_eq!(trace.parent.as_deref(), Some("53995c3f42cd8ad8"));
        assert!(trace.sampled);
        assert!(
            !TraceHeader::parse("Root=1-a-b;Sampled=0")
                .expect("header")
                .sampled
        );
        assert_eq!(TraceHeader::parse("Parent=1;Sampled=1"), None, "no root");
    }

    #[test]
    fn the_daemon_address_takes_either_form_lambda_uses() {
        let expected: SocketAddr = "169.254.79.129:2000".parse().expect("address");
        for value in [
            "169.254.79.129:2000",
            "tcp:169.254.79.129:2000 udp:169.254.79.129:2000",
        ] {
            assert_eq!(parse_daemon_address(value), Some(expected), "{value}");
        }
        assert_eq!(parse_daemon_address("nonsense"), None);
        assert!(!Daemon::default().is_enabled());
    }

    fn call(status: Option<u16>, throttled: bool) -> Call<'static> {
        Call {
            operation: "GetItem",
            region: Some("eu-west-1"),
            table: Some("users"),
            request_id: Some("R1"),
            status,
            throttled,
            started: UNIX_EPOCH + std::time::Duration::from_micros(1_700_000_000_123_456),
            ended: UNIX_EPOCH + std::time::Duration::from_micros(1_700_000_000_126_000),
        }
    }

    #[test]
    fn a_subsegment_hangs_under_the_invocation_s_segment() {
        let trace = TraceHeader::parse(HEADER).expect("header");
        let document = subsegment(&trace, &call(Some(200), false)).expect("sampled");
        assert_eq!(document["type"], "subsegment");
        assert_eq!(document["trace_id"], "1-5759e988-bd862e3fe1be46a994272793");
        assert_eq!(document["parent_id"], "53995c3f42cd8ad8");
        assert_eq!(document["name"], "DynamoDB");
        assert_eq!(document["namespace"], "aws");
        assert_eq!(document["aws"]["operation"], "GetItem");
        assert_eq!(document["aws"]["table_name"], "users");
        assert_eq!(document["http"]["response"]["status"], 200);
        assert_eq!(document["id"].as_str().map(str::len), Some(16));
        assert!(document["end_time"].as_f64() > document["start_time"].as_f64());
        assert!(document.get("error").is_none() && document.get("fault").is_none());
    }

    #[test]
    fn failures_are_marked_as_x_ray_expects() {
        let trace = TraceHeader::parse(HEADER).expect("header");
        let throttled = subsegment(&trace, &call(Some(400), true)).expect("sampled");
        assert_eq!(throttled["error"], true);
        assert_eq!(throttled["throttle"], true);
        let unreachable = subsegment(&trace, &call(None, false)).expect("sampled");
        assert_eq!(unreachable["fault"], true);
        let unsampled = TraceHeader::parse("Root=1-a-b;Parent=c;Sampled=0").expect("header");
        assert!(subsegment(&unsampled, &call(Some(200), false)).is_none());
    }
}
