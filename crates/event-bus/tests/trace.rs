//! Trace context travels in the envelope: captured from the producer's span when the event is
//! written to the outbox, continued by the consumer's span.
//!
//! A binary of its own: it installs a global propagator and a thread-local subscriber.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use event_bus::{
    DomainEvent,
    trace::{context_from_traceparent, continue_trace, current_traceparent},
};
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_sdk::{propagation::TraceContextPropagator, trace::SdkTracerProvider};
use support::{Ping, TestDb};
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;

fn trace_id(span: &tracing::Span) -> opentelemetry::trace::TraceId {
    span.context().span().span_context().trace_id()
}

#[test]
fn the_outbox_captures_the_producer_trace_and_the_consumer_continues_it() {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let provider = SdkTracerProvider::builder().build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("event-bus-test")));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    tracing::subscriber::with_default(subscriber, || {
        runtime.block_on(async {
            let db = TestDb::new().await;
            let request = tracing::info_span!("POST /v1/bookings");
            let producer_trace = trace_id(&request);

            let (captured, event) = async {
                let captured = current_traceparent();
                let event = db.commit(Ping { seq: 1 }).await;
                (captured, event)
            }
            .instrument(request)
            .await;

            let stored: Option<String> = sqlx::query_scalar(
                "SELECT envelope->>'traceparent' FROM outbox WHERE event_id = $1",
            )
            .bind(event.id)
            .fetch_one(&db.pool)
            .await
            .unwrap();
            let traceparent = stored.expect("the envelope carries a traceparent");
            assert_eq!(Some(&traceparent), captured.as_ref());
            assert!(
                traceparent.contains(&producer_trace.to_string()),
                "{traceparent}"
            );
            assert_eq!(
                context_from_traceparent(&traceparent)
                    .span()
                    .span_context()
                    .trace_id(),
                producer_trace
            );

            let consumer = tracing::info_span!("event.consume");
            continue_trace(&consumer, Some(&traceparent));
            assert_eq!(trace_id(&consumer), producer_trace);

            // An explicit traceparent is kept as it is.
            let explicit = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
            let mut tx = db.pool.begin().await.unwrap();
            let event = DomainEvent::new("evbus-test", Ping { seq: 2 }).traceparent(explicit);
            event_bus::outbox::publish(&mut tx, &event).await.unwrap();
            tx.commit().await.unwrap();
            let kept: String = sqlx::query_scalar(
                "SELECT envelope->>'traceparent' FROM outbox WHERE event_id = $1",
            )
            .bind(event.id)
            .fetch_one(&db.pool)
            .await
            .unwrap();
            assert_eq!(kept, explicit);
        });
    });
}
