//! Traces: one trace from a webhook to every job it leads to and their sends. Each job stores
//! the W3C `traceparent` of the span it was queued under, and a worker continues that trace when
//! it runs the job. Spans are exported over OTLP (HTTP, protobuf or JSON) when
//! `SWITCHYARD_OTLP_ENDPOINT` is set; off by default, when no span carries a trace id and jobs
//! store none.

use std::collections::HashMap;

use opentelemetry::propagation::TextMapPropagator as _;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// How spans travel to the collector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OtlpProtocol {
    /// OTLP over HTTP with protobuf bodies (what collectors expect by default).
    #[value(name = "http/protobuf")]
    HttpProtobuf,
    /// OTLP over HTTP with JSON bodies.
    #[value(name = "http/json")]
    HttpJson,
}

/// An exporter to `endpoint` (the collector's traces URL, e.g.
/// `http://collector:4318/v1/traces`), batching spans on its own thread; flush it with
/// [`SdkTracerProvider::shutdown`] before the process exits.
pub fn provider(endpoint: &str, protocol: OtlpProtocol) -> anyhow::Result<SdkTracerProvider> {
    use opentelemetry_otlp::{Protocol, WithExportConfig as _};
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(endpoint)
        .with_protocol(match protocol {
            OtlpProtocol::HttpProtobuf => Protocol::HttpBinary,
            OtlpProtocol::HttpJson => Protocol::HttpJson,
        })
        .build()?;
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name("switchyard")
        .with_attribute(opentelemetry::KeyValue::new(
            "service.version",
            env!("CARGO_PKG_VERSION"),
        ))
        .build();
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build())
}

/// The `tracing` layer that turns spans into OpenTelemetry spans of `provider`.
pub fn layer<S>(
    provider: &SdkTracerProvider,
) -> tracing_opentelemetry::OpenTelemetryLayer<S, opentelemetry_sdk::trace::Tracer>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    tracing_opentelemetry::layer().with_tracer(provider.tracer("switchyard"))
}

/// The W3C `traceparent` of the current span, when tracing is on.
pub fn current_traceparent() -> Option<String> {
    let context = tracing::Span::current().context();
    let mut carrier: HashMap<String, String> = HashMap::new();
    TraceContextPropagator::new().inject_context(&context, &mut carrier);
    carrier.remove("traceparent")
}

/// Make `span` a child of the span `traceparent` names (a job continuing its webhook's trace);
/// nothing when there is none or it is malformed.
pub fn continue_trace(span: &tracing::Span, traceparent: Option<&str>) {
    let Some(parent) = traceparent.filter(|t| t.len() <= 128) else {
        return;
    };
    let carrier = HashMap::from([("traceparent".to_string(), parent.to_string())]);
    let context = TraceContextPropagator::new().extract(&carrier);
    use opentelemetry::trace::TraceContextExt as _;
    if context.span().span_context().is_valid() {
        let _ = span.set_parent(context);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt as _;

    #[test]
    fn a_job_continues_the_trace_it_was_queued_under() {
        let provider = SdkTracerProvider::builder().build();
        let subscriber = tracing_subscriber::registry().with(layer(&provider));
        tracing::subscriber::with_default(subscriber, || {
            let webhook = tracing::info_span!("webhook");
            let queued = webhook
                .in_scope(current_traceparent)
                .expect("a traceparent");
            assert!(queued.starts_with("00-") && queued.len() == 55, "{queued}");
            let job = tracing::info_span!("job");
            continue_trace(&job, Some(&queued));
            let inside = job.in_scope(current_traceparent).expect("a traceparent");
            // Same trace id, another span id.
            assert_eq!(inside[3..35], queued[3..35]);
            assert_ne!(inside[36..52], queued[36..52]);
            // Junk is ignored: the span starts a trace of its own.
            let other = tracing::info_span!("job");
            continue_trace(&other, Some("00-nonsense"));
            let own = other.in_scope(current_traceparent).expect("a traceparent");
            assert_ne!(own[3..35], queued[3..35]);
        });
        // Without the layer (tracing off) there is nothing to store.
        assert_eq!(tracing::info_span!("x").in_scope(current_traceparent), None);
    }
}
