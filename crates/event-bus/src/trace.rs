//! W3C trace context for events: captured on the producer, continued on the consumer.
//!
//! Both directions use the global OpenTelemetry text-map propagator, which `service-kit` sets to
//! the W3C TraceContext propagator at start-up (the default propagator does nothing, so without it
//! no `traceparent` is captured).

use std::collections::HashMap;

use opentelemetry::trace::TraceContextExt;
use opentelemetry::{Context, global};
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The W3C `traceparent` of the current `tracing` span, if it belongs to a sampled or remote trace.
#[must_use]
pub fn current_traceparent() -> Option<String> {
    let context = tracing::Span::current().context();
    let mut carrier = HashMap::new();
    global::get_text_map_propagator(|propagator| propagator.inject_context(&context, &mut carrier));
    carrier.remove("traceparent")
}

/// The OpenTelemetry context a `traceparent` describes (an empty context if it is malformed).
#[must_use]
pub fn context_from_traceparent(traceparent: &str) -> Context {
    let carrier = HashMap::from([("traceparent".to_owned(), traceparent.to_owned())]);
    global::get_text_map_propagator(|propagator| propagator.extract(&carrier))
}

/// Makes `span` a child of the trace `traceparent` names, and records the trace id in the span's
/// `trace_id` field (when it declares one) so the consumer's log lines join the producer's, as
/// an HTTP request span's do. Without an OpenTelemetry layer this does nothing.
pub fn continue_trace(span: &tracing::Span, traceparent: Option<&str>) {
    if let Some(traceparent) = traceparent {
        // Fails only when no OpenTelemetry layer is installed: then there is no trace to continue.
        let _ = span.set_parent(context_from_traceparent(traceparent));
    }
    let context = span.context();
    let span_context = context.span().span_context().clone();
    if span_context.is_valid() {
        span.record("trace_id", tracing::field::display(span_context.trace_id()));
    }
}
