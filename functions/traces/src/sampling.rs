//! Which invocations are traced: `OTEL_TRACES_SAMPLER` and
//! `OTEL_TRACES_SAMPLER_ARG`, as OpenTelemetry's SDK configuration defines
//! them. The default is `parentbased_traceidratio` with a ratio of 1: a
//! parent's decision (the client's `traceparent` flag, or X-Ray's `Sampled`
//! when Lambda's trace is the parent) is kept, and a trace that starts here
//! is kept with the probability `OTEL_TRACES_SAMPLER_ARG` (1 when unset or
//! not a number in 0..=1).

use opentelemetry_sdk::trace::Sampler;

/// The sampler the two variables describe; an unknown sampler name falls
/// back to the default, as the SDK specification asks.
pub fn sampler(name: Option<&str>, argument: Option<&str>) -> Sampler {
    let ratio = argument
        .and_then(|argument| argument.trim().parse::<f64>().ok())
        .filter(|ratio| (0.0..=1.0).contains(ratio))
        .unwrap_or(1.0);
    let parent_based = |root: Sampler| Sampler::ParentBased(Box::new(root));
    match name.map(str::trim).unwrap_or_default() {
        "always_on" => Sampler::AlwaysOn,
        "always_off" => Sampler::AlwaysOff,
        "traceidratio" => Sampler::TraceIdRatioBased(ratio),
        "parentbased_always_on" => parent_based(Sampler::AlwaysOn),
        "parentbased_always_off" => parent_based(Sampler::AlwaysOff),
        _ => parent_based(Sampler::TraceIdRatioBased(ratio)),
    }
}

/// [`sampler`] from the process's environment.
pub fn from_env() -> Sampler {
    sampler(
        std::env::var("OTEL_TRACES_SAMPLER").ok().as_deref(),
        std::env::var("OTEL_TRACES_SAMPLER_ARG").ok().as_deref(),
    )
}

#[cfg(test)]
mod tests {
    use opentelemetry::Context;
    use opentelemetry::trace::{
        SpanContext, SpanId, SpanKind, TraceContextExt, TraceFlags, TraceId, TraceState,
    };
    use opentelemetry_sdk::trace::{SamplingDecision, ShouldSample};

    use super::*;

    fn decide(sampler: &Sampler, parent: Option<bool>, trace_id: TraceId) -> SamplingDecision {
        let context = parent.map_or_else(Context::new, |sampled| {
            Context::new().with_remote_span_context(SpanContext::new(
                trace_id,
                SpanId::from_bytes(1_u64.to_be_bytes()),
                if sampled {
                    TraceFlags::SAMPLED
                } else {
                    TraceFlags::default()
                },
                true,
                TraceState::default(),
            ))
        });
        sampler
            .should_sample(
                Some(&context),
                trace_id,
                "span",
                &SpanKind::Server,
                &[],
                &[],
            )
            .decision
    }

    #[test]
    fn the_parent_s_decision_is_kept_whatever_the_ratio() {
        let none = sampler(None, Some("0"));
        let trace = TraceId::from_bytes(u128::MAX.to_be_bytes());
        assert_eq!(
            decide(&none, Some(true), trace),
            SamplingDecision::RecordAndSample
        );
        assert_eq!(decide(&none, Some(false), trace), SamplingDecision::Drop);
        assert_eq!(
            decide(&none, None, trace),
            SamplingDecision::Drop,
            "ratio 0"
        );
    }

    #[test]
    fn a_trace_that_starts_here_follows_the_ratio() {
        let half = sampler(Some("parentbased_traceidratio"), Some("0.5"));
        // The ratio sampler keeps trace ids whose lower 8 bytes fall under
        // ratio × 2^63.
        let low = TraceId::from_bytes(1_u128.to_be_bytes());
        let high = TraceId::from_bytes(u128::from(u64::MAX).to_be_bytes());
        assert_eq!(decide(&half, None, low), SamplingDecision::RecordAndSample);
        assert_eq!(decide(&half, None, high), SamplingDecision::Drop);
        let default = sampler(None, None);
        assert_eq!(
            decide(&default, None, high),
            SamplingDecision::RecordAndSample
        );
        let nonsense = sampler(None, Some("2"));
        assert_eq!(
            decide(&nonsense, None, high),
            SamplingDecision::RecordAndSample,
            "a ratio out of range is 1"
        );
        assert_eq!(
            decide(&sampler(Some("always_off"), None), Some(true), low),
            SamplingDecision::Drop
        );
    }
}
