//! Where an invocation's trace comes from: the request's W3C
//! `traceparent`/`tracestate` (W3C Trace Context), the request's
//! `X-Amzn-Trace-Id`, and Lambda's own X-Ray trace for the invocation, each
//! turned into an OpenTelemetry [`SpanContext`].
//!
//! Which request headers count is `OTEL_PROPAGATORS`, as in OpenTelemetry's
//! SDKs: a comma-separated list of `tracecontext` (the default), `xray` and
//! `none`; the others (`baggage`, `b3`…) carry no parent we use and are
//! ignored.

use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};

/// The request headers read for a parent, as OpenTelemetry's
/// `OTEL_PROPAGATORS` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Propagators {
    /// `tracecontext`: W3C `traceparent` and `tracestate`.
    pub trace_context: bool,
    /// `xray`: the request's `X-Amzn-Trace-Id`.
    pub xray: bool,
}

impl Default for Propagators {
    /// OpenTelemetry's default, `tracecontext,baggage` (baggage carries no
    /// parent).
    fn default() -> Self {
        Self {
            trace_context: true,
            xray: false,
        }
    }
}

impl Propagators {
    /// The propagators `OTEL_PROPAGATORS` names; the default when it is
    /// unset or empty. `none` anywhere in the list turns all off.
    pub fn parse(value: Option<&str>) -> Self {
        let Some(value) = value.map(str::trim).filter(|value| !value.is_empty()) else {
            return Self::default();
        };
        let names: Vec<String> = value
            .split(',')
            .map(|name| name.trim().to_ascii_lowercase())
            .collect();
        if names.iter().any(|name| name == "none") {
            return Self {
                trace_context: false,
                xray: false,
            };
        }
        Self {
            trace_context: names.iter().any(|name| name == "tracecontext"),
            xray: names.iter().any(|name| name == "xray"),
        }
    }

    /// The remote parent the request's headers name, if any: the first of
    /// `traceparent` (with its `tracestate`) and `X-Amzn-Trace-Id` that is
    /// enabled and valid.
    pub fn extract(&self, headers: &http::HeaderMap) -> Option<SpanContext> {
        let trace_context = self.trace_context.then(|| {
            let traceparent = single(headers, "traceparent")?;
            let tracestate = joined(headers, "tracestate");
            parse_traceparent(traceparent, tracestate.as_deref())
        });
        let xray = || {
            self.xray
                .then(|| parse_xray(single(headers, "x-amzn-trace-id")?))
                .flatten()
        };
        trace_context.flatten().or_else(xray)
    }
}

/// A header's value when it appears exactly once (W3C: a request with
/// several `traceparent` headers has none that can be trusted).
fn single<'h>(headers: &'h http::HeaderMap, name: &str) -> Option<&'h str> {
    let mut values = headers.get_all(name).iter();
    let value = values.next()?;
    if values.next().is_some() {
        return None;
    }
    value.to_str().ok()
}

/// A list header's values joined with commas, as HTTP combines them.
fn joined(headers: &http::HeaderMap, name: &str) -> Option<String> {
    let values: Vec<&str> = headers
        .get_all(name)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .collect();
    (!values.is_empty()).then(|| values.join(","))
}

/// The W3C `traceparent` field, `00-<trace-id>-<parent-id>-<flags>`, with
/// its `tracestate`, as a remote span context; `None` when invalid, as W3C
/// Trace Context §4.3 says: version `ff`, an id that is all zeros, a field of
/// the wrong length or not lowercase hex, or, for version `00`, anything
/// after the flags. A later version is read by its first four fields, when
/// what follows them starts with `-`. A `tracestate` that does not parse is
/// dropped on its own, keeping the parent.
pub fn parse_traceparent(traceparent: &str, tracestate: Option<&str>) -> Option<SpanContext> {
    let value = traceparent.trim_matches([' ', '\t']);
    let version = value.get(..2).filter(|version| is_lower_hex(version))?;
    if version == "ff" {
        return None;
    }
    let fields = value.get(..55)?;
    let rest = &value[55..];
    if (version == "00" && !rest.is_empty()) || (!rest.is_empty() && !rest.starts_with('-')) {
        return None;
    }
    let mut parts = fields.split('-');
    let (_, trace_id, parent_id, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if trace_id.len() != 32 || parent_id.len() != 16 || flags.len() != 2 {
        return None;
    }
    if ![trace_id, parent_id, flags]
        .iter()
        .all(|part| is_lower_hex(part))
    {
        return None;
    }
    let trace_id = TraceId::from_hex(trace_id).ok()?;
    let span_id = SpanId::from_hex(parent_id).ok()?;
    if trace_id == TraceId::INVALID || span_id == SpanId::INVALID {
        return None;
    }
    let flags = u8::from_str_radix(flags, 16).ok()?;
    let state = tracestate
        .and_then(|state| state.parse::<TraceState>().ok())
        .unwrap_or_default();
    Some(SpanContext::new(
        trace_id,
        span_id,
        // Only the sampled bit is defined; the others are not propagated.
        TraceFlags::new(flags) & TraceFlags::SAMPLED,
        true,
        state,
    ))
}

fn is_lower_hex(text: &str) -> bool {
    text.bytes()
        .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte))
}

/// An X-Ray trace header (`Root=1-5759e988-bd862e3fe1be46a994272793;
/// Parent=53995c3f42cd8ad8;Sampled=1`) in W3C form: the trace id is the
/// root's time and random parts together (`5759e988bd862e3fe1be46a994272793`),
/// the parent span is `Parent`, and it is sampled when `Sampled=1`. `None`
/// without a valid `Root` and `Parent` (a span context needs both).
pub fn parse_xray(header: &str) -> Option<SpanContext> {
    let mut root = None;
    let mut parent = None;
    let mut sampled = false;
    for part in header.split(';') {
        match part.trim().split_once('=') {
            Some(("Root", value)) => root = Some(value.trim()),
            Some(("Parent", value)) => parent = Some(value.trim()),
            Some(("Sampled", value)) => sampled = value.trim() == "1",
            _ => {}
        }
    }
    let trace_id = xray_root_to_trace_id(root?)?;
    let parent = parent.filter(|parent| parent.len() == 16 && is_hex(parent))?;
    let span_id = SpanId::from_hex(parent).ok()?;
    if span_id == SpanId::INVALID {
        return None;
    }
    let flags = if sampled {
        TraceFlags::SAMPLED
    } else {
        TraceFlags::default()
    };
    Some(SpanContext::new(
        trace_id,
        span_id,
        flags,
        true,
        TraceState::default(),
    ))
}

/// `1-5759e988-bd862e3fe1be46a994272793` as the W3C trace id
/// `5759e988bd862e3fe1be46a994272793`.
pub fn xray_root_to_trace_id(root: &str) -> Option<TraceId> {
    let mut parts = root.split('-');
    let (version, time, random) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || version != "1" || time.len() != 8 || random.len() != 24 {
        return None;
    }
    if !is_hex(time) || !is_hex(random) {
        return None;
    }
    let trace_id = TraceId::from_hex(&format!("{time}{random}")).ok()?;
    (trace_id != TraceId::INVALID).then_some(trace_id)
}

fn is_hex(text: &str) -> bool {
    text.bytes().all(|byte| byte.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn a_valid_traceparent_is_a_remote_sampled_parent_with_its_tracestate() {
        let parent = parse_traceparent(VALID, Some("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"))
            .expect("valid");
        assert_eq!(
            parent.trace_id(),
            TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").expect("hex")
        );
        assert_eq!(
            parent.span_id(),
            SpanId::from_hex("00f067aa0ba902b7").expect("hex")
        );
        assert!(parent.is_sampled());
        assert!(parent.is_remote());
        assert_eq!(parent.trace_state().get("rojo"), Some("00f067aa0ba902b7"));
        assert_eq!(parent.trace_state().get("congo"), Some("t61rcWkgMzE"));
        let unsampled = parse_traceparent(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
            None,
        )
        .expect("valid");
        assert!(!unsampled.is_sampled());
    }

    #[test]
    fn invalid_traceparents_are_ignored() {
        let cases: [(&str, &str); 12] = [
            (
                "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                "version ff is forbidden",
            ),
            (
                "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
                "all-zero trace id",
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
                "all-zero parent id",
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
                "trace id one digit short",
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e47366-0f067aa0ba902b7-01",
                "trace id one digit long, parent one short",
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
                "flags one digit",
            ),
            (
                "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
                "upper-case hex",
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
                "version 00 with more fields",
            ),
            (
                "0-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                "version one digit",
            ),
            (
                "00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01",
                "wrong separators",
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba9g2b7-01",
                "not hex",
            ),
            ("", "empty"),
        ];
        for (value, why) in cases {
            assert_eq!(parse_traceparent(value, None), None, "{why}: {value}");
        }
    }

    #[test]
    fn a_later_version_is_read_by_its_first_four_fields() {
        let later = "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-comes-next";
        assert!(parse_traceparent(later, None).is_some());
        let glued = "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01what";
        assert_eq!(parse_traceparent(glued, None), None, "no dash after flags");
    }

    #[test]
    fn an_invalid_tracestate_is_dropped_and_the_parent_kept() {
        let parent = parse_traceparent(VALID, Some("not a list member")).expect("valid");
        assert_eq!(parent.trace_state().header(), "");
    }

    #[test]
    fn an_x_ray_header_becomes_its_w3c_form() {
        let parent = parse_xray(
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
        )
        .expect("valid");
        assert_eq!(
            parent.trace_id(),
            TraceId::from_hex("5759e988bd862e3fe1be46a994272793").expect("hex")
        );
        assert_eq!(
            parent.span_id(),
            SpanId::from_hex("53995c3f42cd8ad8").expect("hex")
        );
        assert!(parent.is_sampled());
        assert!(parent.is_remote());
        let unsampled = parse_xray(
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0;Lineage=a87bd80c:1",
        )
        .expect("valid");
        assert!(!unsampled.is_sampled());
        for (header, why) in [
            (
                "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1",
                "no parent",
            ),
            ("Parent=53995c3f42cd8ad8;Sampled=1", "no root"),
            (
                "Root=2-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8",
                "unknown version",
            ),
            (
                "Root=1-5759e98-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8",
                "short time",
            ),
            (
                "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad",
                "short parent",
            ),
        ] {
            assert_eq!(parse_xray(header), None, "{why}");
        }
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> http::HeaderMap {
        let mut headers = http::HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, http::HeaderValue::from_static(value));
        }
        headers
    }

    #[test]
    fn otel_propagators_chooses_the_request_headers_read() {
        let xray = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";
        let both = headers(&[("traceparent", VALID), ("x-amzn-trace-id", xray)]);
        let only_xray = headers(&[("x-amzn-trace-id", xray)]);
        let w3c = TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").expect("hex");
        let from_xray = TraceId::from_hex("5759e988bd862e3fe1be46a994272793").expect("hex");
        let trace = |propagators: &str, headers: &http::HeaderMap| {
            Propagators::parse(Some(propagators))
                .extract(headers)
                .map(|parent| parent.trace_id())
        };
        assert_eq!(Propagators::parse(None), Propagators::default());
        assert_eq!(trace("", &both), Some(w3c), "default: tracecontext");
        assert_eq!(trace("tracecontext,baggage", &only_xray), None);
        assert_eq!(trace("xray", &both), Some(from_xray));
        assert_eq!(trace("tracecontext, xray", &both), Some(w3c));
        assert_eq!(trace("tracecontext,xray", &only_xray), Some(from_xray));
        assert_eq!(trace("none", &both), None);
        assert_eq!(trace("tracecontext,none", &both), None);
        let twice = headers(&[("traceparent", VALID), ("traceparent", VALID)]);
        assert_eq!(trace("tracecontext", &twice), None, "two traceparents");
    }
}
