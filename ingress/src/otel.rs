//! OpenTelemetry traces, off by default: one SERVER span per request and one CLIENT span per
//! upstream attempt (its child), with the GenAI semantic-convention attributes, exported over
//! OTLP/HTTP (protobuf) to `otel_endpoint`; and W3C trace context (`traceparent`, `tracestate`)
//! read from clients and sent upstream.
//!
//! Export never slows or fails a request: an ended span goes into a bounded queue
//! (`otel_queue_spans`) without waiting — a full queue drops it and counts it in
//! `ingress_trace_spans_dropped_total` — and one task sends what has queued as one batch, one
//! export at a time, each within `otel_export_timeout_ms`. At low load a batch is a span or two;
//! under load the spans that ended during an export go together in the next (group commit, as
//! the event pipeline does). On a graceful stop the task exports what is left, within the same
//! timeout.
//!
//! When tracing is off nothing of this runs: no exporter task, no tracer, no span objects. A
//! client's valid `traceparent` is still read (one header, bounded), forwarded upstream
//! unchanged (with its `tracestate`), and its trace id recorded in the request event, so a
//! request can be found by the trace id its caller logged. Every client value is checked
//! before anything keeps it: a header longer than its bound, or not in the W3C format, is
//! ignored as if absent.

use std::borrow::Cow;
use std::str::FromStr as _;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue};
use bytes::Bytes;
use opentelemetry::trace::{
    Span as _, SpanContext, SpanId, SpanKind, Status, TraceContextExt as _, TraceFlags, TraceId,
    TraceState, Tracer as _,
};
use opentelemetry::{Context, KeyValue, Value};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{
    Sampler, SdkTracer, SdkTracerProvider, SpanData, SpanExporter as _, SpanProcessor,
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// The longest `traceparent` read (version 00 is 55 bytes; later versions may append fields).
const MAX_TRACEPARENT_BYTES: usize = 256;
/// The longest `tracestate` kept (W3C asks propagators to pass at least 512 bytes).
const MAX_TRACESTATE_BYTES: usize = 512;
/// Spans sent in one export at most.
const MAX_EXPORT_BATCH: usize = 512;

/// The tracing settings, from the ingress config.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The OTLP/HTTP base URL (`http://collector:4318`); spans go to its `/v1/traces`.
    pub endpoint: String,
    pub service_name: String,
    /// Of the traces this node starts, the share sampled (0 to 1); a client's sampled flag is
    /// honoured either way (parent-based).
    pub sample_ratio: f64,
    pub export_timeout: Duration,
    pub queue_spans: usize,
    pub node_id: String,
}

/// The tracer, when tracing is on. Cloned into the request path; `None` costs nothing.
#[derive(Clone, Default)]
pub struct Tracing {
    tracer: Option<SdkTracer>,
}

/// The running exporter, stopped (and flushed) by [`Exporter::shutdown`].
pub struct Exporter {
    provider: SdkTracerProvider,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
    timeout: Duration,
}

impl Tracing {
    /// Tracing off.
    #[must_use]
    pub fn off() -> Self {
        Self::default()
    }

    /// Starts the exporter task and returns the tracer with its handle.
    ///
    /// # Errors
    /// When the endpoint is not a usable URL or the HTTP client cannot be built.
    pub fn start(settings: &Settings) -> Result<(Self, Exporter), String> {
        use opentelemetry_otlp::{WithExportConfig as _, WithHttpConfig as _};
        let client = reqwest::Client::builder()
            .timeout(settings.export_timeout)
            .connect_timeout(settings.export_timeout)
            .build()
            .map_err(|error| format!("otel_endpoint: cannot build the HTTP client: {error}"))?;
        let endpoint = format!("{}/v1/traces", settings.endpoint.trim_end_matches('/'));
        let mut exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
            .with_endpoint(endpoint)
            .with_timeout(settings.export_timeout)
            .with_http_client(ExportClient(client))
            .build()
            .map_err(|error| format!("otel_endpoint: {error}"))?;
        let resource = opentelemetry_sdk::Resource::builder()
            .with_service_name(settings.service_name.clone())
            .with_attributes([
                KeyValue::new("service.version", env!("CARGO_PKG_VERSION")),
                KeyValue::new("service.instance.id", settings.node_id.clone()),
            ])
            .build();
        exporter.set_resource(&resource);
        let (sender, receiver) = mpsc::channel(settings.queue_spans.max(1));
        let stop = CancellationToken::new();
        let task = tokio::spawn(export_loop(
            exporter,
            receiver,
            stop.clone(),
            settings.export_timeout,
        ));
        let provider = SdkTracerProvider::builder()
            .with_resource(resource)
            .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
                settings.sample_ratio,
            ))))
            .with_span_processor(QueueProcessor { sender })
            .build();
        let tracer = opentelemetry::trace::TracerProvider::tracer_with_scope(
            &provider,
            opentelemetry::InstrumentationScope::builder("axongate-ingress")
                .with_version(env!("CARGO_PKG_VERSION"))
                .build(),
        );
        Ok((
            Self {
                tracer: Some(tracer),
            },
            Exporter {
                provider,
                stop,
                task,
                timeout: settings.export_timeout,
            },
        ))
    }

    #[must_use]
    pub fn is_on(&self) -> bool {
        self.tracer.is_some()
    }
}

impl Exporter {
    /// Exports the spans still queued (within the export timeout) and stops.
    pub async fn shutdown(self) {
        self.stop.cancel();
        // The last export has its own timeout; this bounds the wait for the one in flight.
        let _ = tokio::time::timeout(self.timeout * 2, self.task).await;
        let _ = self.provider.shutdown();
    }
}

/// Ends spans into the bounded queue without ever waiting.
#[derive(Debug)]
struct QueueProcessor {
    sender: mpsc::Sender<SpanData>,
}

impl SpanProcessor for QueueProcessor {
    fn on_start(&self, _span: &mut opentelemetry_sdk::trace::Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        if self.sender.try_send(span).is_err() {
            metrics::counter!("ingress_trace_spans_dropped_total").increment(1);
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }
}

async fn export_loop(
    exporter: opentelemetry_otlp::SpanExporter,
    mut receiver: mpsc::Receiver<SpanData>,
    stop: CancellationToken,
    timeout: Duration,
) {
    let mut failing = false;
    loop {
        let mut batch = Vec::new();
        let stopping = tokio::select! {
            received = receiver.recv_many(&mut batch, MAX_EXPORT_BATCH) => received == 0,
            () = stop.cancelled() => true,
        };
        if stopping {
            // What is left goes in one last export (or a few, past the batch size).
            while let Ok(span) = receiver.try_recv() {
                batch.push(span);
            }
        }
        for chunk in batch.chunks(MAX_EXPORT_BATCH) {
            let spans = chunk.len() as u64;
            let result = tokio::time::timeout(timeout, exporter.export(chunk.to_vec())).await;
            match result {
                Ok(Ok(())) => {
                    metrics::counter!("ingress_trace_spans_exported_total").increment(spans);
                    if failing {
                        tracing::info!("trace export recovered");
                        failing = false;
                    }
                }
                Ok(Err(error)) => {
                    export_failed(&mut failing, spans, &error.to_string());
                }
                Err(_) => export_failed(&mut failing, spans, "timed out"),
            }
        }
        if stopping {
            return;
        }
    }
}

/// Counts a failed export; logs the first of a run of failures only (a collector that is down
/// would otherwise log once per batch).
fn export_failed(failing: &mut bool, spans: u64, reason: &str) {
    metrics::counter!("ingress_trace_spans_dropped_total").increment(spans);
    metrics::counter!("ingress_trace_export_failures_total").increment(1);
    if !*failing {
        tracing::warn!(
            reason,
            spans,
            "trace export failed; spans dropped until the collector answers"
        );
        *failing = true;
    }
}

/// opentelemetry-otlp's HTTP transport over the workspace's reqwest (its own reqwest feature
/// would compile a second major version).
#[derive(Debug)]
struct ExportClient(reqwest::Client);

#[async_trait::async_trait]
impl opentelemetry_http::HttpClient for ExportClient {
    async fn send_bytes(
        &self,
        request: http::Request<Bytes>,
    ) -> Result<http::Response<Bytes>, opentelemetry_http::HttpError> {
        let request = reqwest::Request::try_from(request)?;
        let response = self.0.execute(request).await?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.bytes().await?;
        let mut answer = http::Response::new(body);
        *answer.status_mut() = status;
        *answer.headers_mut() = headers;
        Ok(answer)
    }
}

/// A client's trace context, checked.
#[derive(Debug, Clone)]
struct Incoming {
    context: SpanContext,
    /// The `tracestate` as received (checked), forwarded as is.
    tracestate: Option<HeaderValue>,
}

/// Parses a W3C `traceparent`: `version-traceid-parentid-flags`, lower-case hex, neither id all
/// zeros, version `ff` invalid; a later version may carry more fields after the fourth.
fn parse_traceparent(value: &str) -> Option<(TraceId, SpanId, TraceFlags)> {
    if value.len() > MAX_TRACEPARENT_BYTES || value.len() < 55 {
        return None;
    }
    let lower_hex = |part: &str| {
        part.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    let version = value.get(0..2)?;
    if !lower_hex(version) || version == "ff" || (version == "00" && value.len() != 55) {
        return None;
    }
    if value.len() > 55 && value.as_bytes()[55] != b'-' {
        return None;
    }
    let mut parts = value[..55].split('-');
    let (_, trace, parent, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if trace.len() != 32 || parent.len() != 16 || flags.len() != 2 {
        return None;
    }
    if !lower_hex(trace) || !lower_hex(parent) || !lower_hex(flags) {
        return None;
    }
    let trace_id = TraceId::from_hex(trace).ok()?;
    let span_id = SpanId::from_hex(parent).ok()?;
    if trace_id == TraceId::INVALID || span_id == SpanId::INVALID {
        return None;
    }
    let flags = u8::from_str_radix(flags, 16).ok()?;
    // Only the sampled bit is defined; the others are not passed on.
    Some((trace_id, span_id, TraceFlags::new(flags & 1)))
}

fn incoming(headers: &HeaderMap) -> Option<Incoming> {
    let mut values = headers.get_all("traceparent").iter();
    let value = values.next()?;
    if values.next().is_some() {
        // Two traceparents: which one the client meant is unknown.
        return None;
    }
    let (trace_id, span_id, flags) = parse_traceparent(value.to_str().ok()?)?;
    let tracestate = headers
        .get("tracestate")
        .filter(|value| value.len() <= MAX_TRACESTATE_BYTES)
        .and_then(|value| {
            let text = value.to_str().ok()?;
            TraceState::from_str(text)
                .ok()
                .map(|state| (value.clone(), state))
        });
    let state = tracestate
        .as_ref()
        .map_or_else(TraceState::default, |(_, state)| state.clone());
    Some(Incoming {
        context: SpanContext::new(trace_id, span_id, flags, true, state),
        tracestate: tracestate.map(|(value, _)| value),
    })
}

fn traceparent(context: &SpanContext) -> Option<HeaderValue> {
    HeaderValue::from_str(&format!(
        "00-{}-{}-{:02x}",
        context.trace_id(),
        context.span_id(),
        context.trace_flags().to_u8()
    ))
    .ok()
}

/// The trace headers of one upstream attempt.
pub(crate) struct Propagation {
    traceparent: HeaderValue,
    tracestate: Option<HeaderValue>,
}

impl Propagation {
    pub(crate) fn apply(self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        let request = request.header("traceparent", self.traceparent);
        match self.tracestate {
            Some(state) => request.header("tracestate", state),
            None => request,
        }
    }
}

/// What the request span will say about the answer, as the answering path learns it.
#[derive(Default)]
struct Answer {
    response_id: Option<String>,
    finish_reason: Option<String>,
}

/// One request's trace: the client's context and, when tracing is on, the request span.
#[derive(Default)]
pub(crate) struct RequestTrace {
    incoming: Option<Incoming>,
    /// A context whose active span is the request span.
    span: Option<Context>,
    operation: Operation,
    answer: Answer,
}

/// The GenAI operation of a request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum Operation {
    #[default]
    Chat,
    Embeddings,
    CountTokens,
}

impl Operation {
    fn as_str(self) -> &'static str {
        match self {
            Self::Chat => "chat",
            Self::Embeddings => "embeddings",
            // Not a GenAI operation of the conventions: named for what it is.
            Self::CountTokens => "count_tokens",
        }
    }
}

/// The end of a request, for its span.
pub(crate) struct RequestEnd<'a> {
    pub(crate) request_id: &'a str,
    pub(crate) model_alias: &'a str,
    pub(crate) token_id: Option<&'a str>,
    pub(crate) provider: Option<(&'a str, shared::config::Protocol)>,
    pub(crate) upstream_model: Option<&'a str>,
    pub(crate) http_status: u16,
    pub(crate) outcome: &'static str,
    pub(crate) error_kind: Option<&'static str>,
    pub(crate) input_tokens: u64,
    pub(crate) output_tokens: u64,
}

/// One upstream attempt's span.
pub(crate) struct AttemptSpan {
    span: Option<opentelemetry_sdk::trace::Span>,
}

/// How an upstream attempt ended, for its span.
pub(crate) struct AttemptEnd {
    pub(crate) http_status: Option<u16>,
    pub(crate) outcome: &'static str,
    pub(crate) error_kind: Option<&'static str>,
}

/// `gen_ai.provider.name` of a protocol: the well-known provider whose API it is.
fn provider_name(protocol: shared::config::Protocol) -> &'static str {
    match protocol {
        shared::config::Protocol::OpenAi | shared::config::Protocol::OpenAiResponses => "openai",
        shared::config::Protocol::Anthropic => "anthropic",
        // The conventions' name for the Gemini API (Vertex AI is `gcp.vertex_ai`).
        shared::config::Protocol::Gemini => "gcp.gemini",
    }
}

fn string(value: &str) -> Value {
    Value::String(value.to_owned().into())
}

impl RequestTrace {
    /// Reads the client's trace context; no span yet.
    pub(crate) fn from_headers(headers: &HeaderMap) -> Self {
        Self {
            incoming: incoming(headers),
            ..Self::default()
        }
    }

    pub(crate) fn set_operation(&mut self, operation: Operation) {
        self.operation = operation;
    }

    /// Starts the request span (tracing on), as a child of the client's span if it sent one.
    pub(crate) fn start(&mut self, tracing: &Tracing, started_at: std::time::SystemTime) {
        let Some(tracer) = &tracing.tracer else {
            return;
        };
        if self.span.is_some() {
            return;
        }
        let parent = match &self.incoming {
            Some(incoming) => Context::new().with_remote_span_context(incoming.context.clone()),
            None => Context::new(),
        };
        let span = tracer.build_with_context(
            opentelemetry::trace::SpanBuilder::from_name(self.operation.as_str())
                .with_kind(SpanKind::Server)
                .with_start_time(started_at),
            &parent,
        );
        self.span = Some(parent.with_span(span));
    }

    /// The trace id of the request: the client's when it sent one (the request span, if any,
    /// is in that trace), else that of the trace ingress started, when sampled (an unsampled
    /// one is exported nowhere, so its id would lead nowhere); `None` otherwise.
    pub(crate) fn trace_id(&self) -> Option<String> {
        if let Some(incoming) = &self.incoming {
            return Some(incoming.context.trace_id().to_string());
        }
        let cx = self.span.as_ref()?;
        let span = cx.span();
        let context = span.span_context();
        context.is_sampled().then(|| context.trace_id().to_string())
    }

    /// What the answer said: its id and why it ended.
    pub(crate) fn answered(
        &mut self,
        response_id: &str,
        stop: Option<&crate::translate::ir::StopReason>,
    ) {
        if self.span.is_none() {
            return;
        }
        if !response_id.is_empty() {
            self.answer.response_id = Some(crate::bounds::for_record(response_id));
        }
        self.answer.finish_reason = stop.map(finish_reason);
    }

    /// Starts an attempt's span, returns it with the headers that carry it upstream. With
    /// tracing off, the client's own context (if any) is forwarded unchanged.
    pub(crate) fn attempt(
        &self,
        tracing: &Tracing,
        candidate: &crate::routing::Candidate,
        number: usize,
    ) -> (AttemptSpan, Option<Propagation>) {
        let tracestate = self
            .incoming
            .as_ref()
            .and_then(|incoming| incoming.tracestate.clone());
        let (Some(tracer), Some(parent)) = (&tracing.tracer, &self.span) else {
            let propagation = self.incoming.as_ref().and_then(|incoming| {
                Some(Propagation {
                    traceparent: traceparent(&incoming.context)?,
                    tracestate,
                })
            });
            return (AttemptSpan { span: None }, propagation);
        };
        let provider = &candidate.provider.provider;
        let mut attributes = vec![
            KeyValue::new("gen_ai.operation.name", self.operation.as_str()),
            KeyValue::new("gen_ai.provider.name", provider_name(provider.protocol)),
            KeyValue::new("gen_ai.system", provider_name(provider.protocol)),
            KeyValue::new("gen_ai.request.model", string(&candidate.upstream_model)),
            KeyValue::new("axongate.provider.id", string(&provider.id)),
            KeyValue::new("axongate.provider_key.id", string(&candidate.key.key.id)),
            KeyValue::new(
                "axongate.attempt",
                i64::try_from(number).unwrap_or(i64::MAX),
            ),
        ];
        if let Ok(url) = url::Url::parse(&provider.base_url) {
            if let Some(host) = url.host_str() {
                attributes.push(KeyValue::new("server.address", string(host)));
            }
            if let Some(port) = url.port_or_known_default() {
                attributes.push(KeyValue::new("server.port", i64::from(port)));
            }
        }
        let span = tracer.build_with_context(
            opentelemetry::trace::SpanBuilder::from_name(format!(
                "{} {}",
                self.operation.as_str(),
                candidate.upstream_model
            ))
            .with_kind(SpanKind::Client)
            .with_attributes(attributes),
            parent,
        );
        let propagation = traceparent(span.span_context()).map(|traceparent| Propagation {
            traceparent,
            tracestate,
        });
        (AttemptSpan { span: Some(span) }, propagation)
    }

    /// Ends the request span with what the request's event says.
    pub(crate) fn finish(&mut self, end: &RequestEnd<'_>) {
        let Some(cx) = self.span.take() else {
            return;
        };
        let span = cx.span();
        let operation = self.operation.as_str();
        if end.model_alias.is_empty() {
            span.update_name(Cow::Borrowed(operation));
        } else {
            span.update_name(format!("{operation} {}", end.model_alias));
        }
        let mut attributes = vec![
            KeyValue::new("gen_ai.operation.name", operation),
            KeyValue::new("axongate.request.id", string(end.request_id)),
            KeyValue::new("axongate.outcome", end.outcome),
            KeyValue::new("http.response.status_code", i64::from(end.http_status)),
            KeyValue::new(
                "gen_ai.usage.input_tokens",
                i64::try_from(end.input_tokens).unwrap_or(i64::MAX),
            ),
            KeyValue::new(
                "gen_ai.usage.output_tokens",
                i64::try_from(end.output_tokens).unwrap_or(i64::MAX),
            ),
        ];
        if !end.model_alias.is_empty() {
            attributes.push(KeyValue::new(
                "gen_ai.request.model",
                string(end.model_alias),
            ));
        }
        if let Some(token_id) = end.token_id {
            attributes.push(KeyValue::new("axongate.token.id", string(token_id)));
        }
        if let Some((provider_id, protocol)) = end.provider {
            attributes.push(KeyValue::new(
                "gen_ai.provider.name",
                provider_name(protocol),
            ));
            attributes.push(KeyValue::new("gen_ai.system", provider_name(protocol)));
            attributes.push(KeyValue::new("axongate.provider.id", string(provider_id)));
        }
        if let Some(model) = end.upstream_model
            && end.error_kind.is_none()
        {
            attributes.push(KeyValue::new("gen_ai.response.model", string(model)));
        }
        if let Some(id) = self.answer.response_id.take() {
            attributes.push(KeyValue::new("gen_ai.response.id", id));
        }
        if let Some(reason) = self.answer.finish_reason.take() {
            attributes.push(KeyValue::new(
                "gen_ai.response.finish_reasons",
                Value::Array(vec![opentelemetry::StringValue::from(reason)].into()),
            ));
        }
        if let Some(kind) = end.error_kind {
            attributes.push(KeyValue::new("error.type", kind));
            span.set_status(Status::error(kind));
        }
        span.set_attributes(attributes);
        span.end();
    }
}

/// The conventions' finish reason: OpenAI's names, the de facto vocabulary.
fn finish_reason(stop: &crate::translate::ir::StopReason) -> String {
    use crate::translate::ir::StopReason;
    match stop {
        StopReason::EndTurn | StopReason::StopSequence(_) => "stop".into(),
        StopReason::MaxTokens => "length".into(),
        StopReason::ToolUse => "tool_calls".into(),
        StopReason::ContentFilter => "content_filter".into(),
        StopReason::Pause => "pause_turn".into(),
        StopReason::Other(other) => crate::bounds::for_record(other),
    }
}

impl AttemptSpan {
    /// Ends the span with the attempt's result.
    pub(crate) fn end(self, end: &AttemptEnd) {
        let Some(mut span) = self.span else {
            return;
        };
        span.set_attribute(KeyValue::new("axongate.outcome", end.outcome));
        if let Some(status) = end.http_status {
            span.set_attribute(KeyValue::new(
                "http.response.status_code",
                i64::from(status),
            ));
        }
        if let Some(kind) = end.error_kind {
            span.set_attribute(KeyValue::new("error.type", kind));
            span.set_status(Status::error(kind));
        }
        span.end();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_is_parsed_strictly() {
        let valid = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let (trace, span, flags) = parse_traceparent(valid).unwrap_or_else(|| panic!("valid"));
        assert_eq!(trace.to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(span.to_string(), "00f067aa0ba902b7");
        assert!(flags.is_sampled());
        for invalid in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01",
            "00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01",
        ] {
            assert!(parse_traceparent(invalid).is_none(), "{invalid:?}");
        }
        // A later version may add fields; the first four are read.
        assert!(
            parse_traceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-x")
                .is_some()
        );
        let long = format!(
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-{}",
            "x".repeat(300)
        );
        assert!(parse_traceparent(&long).is_none(), "bounded");
    }

    /// Sampling is parent-based: a client's sampled flag decides for its trace whatever the
    /// ratio; a trace ingress starts follows the ratio, and an unsampled one records no id.
    #[tokio::test]
    async fn sampling_follows_the_clients_flag_then_the_ratio() {
        let settings = Settings {
            // Nothing listens there: the one sampled span, ended as it is dropped, fails to export.
            endpoint: "http://127.0.0.1:9".into(),
            service_name: "test".into(),
            sample_ratio: 0.0,
            export_timeout: Duration::from_millis(100),
            queue_spans: 16,
            node_id: "n".into(),
        };
        let (tracing, exporter) =
            Tracing::start(&settings).unwrap_or_else(|error| panic!("{error}"));
        let started = |traceparent: Option<&'static str>| {
            let mut headers = HeaderMap::new();
            if let Some(value) = traceparent {
                headers.insert("traceparent", HeaderValue::from_static(value));
            }
            let mut trace = RequestTrace::from_headers(&headers);
            trace.start(&tracing, std::time::SystemTime::now());
            let sampled = trace
                .span
                .as_ref()
                .map(|cx| cx.span().span_context().is_sampled());
            (trace.trace_id(), sampled)
        };
        assert_eq!(
            started(None),
            (None, Some(false)),
            "ratio 0: not sampled, no id"
        );
        assert_eq!(
            started(Some(
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
            )),
            (Some("4bf92f3577b34da6a3ce929d0e0e4736".into()), Some(true)),
            "the client sampled it"
        );
        assert_eq!(
            started(Some(
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"
            )),
            (Some("4bf92f3577b34da6a3ce929d0e0e4736".into()), Some(false)),
            "the client did not"
        );
        exporter.shutdown().await;
    }

    #[test]
    fn with_tracing_off_the_clients_context_is_kept_and_forwarded() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "traceparent",
            HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        );
        headers.insert("tracestate", HeaderValue::from_static("vendor=abc"));
        let trace = RequestTrace::from_headers(&headers);
        assert_eq!(
            trace.trace_id().as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        let incoming = trace.incoming.as_ref().map(|incoming| &incoming.context);
        let header = incoming.and_then(traceparent);
        assert_eq!(
            header.as_ref().and_then(|value| value.to_str().ok()),
            Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
        );

        headers.insert("tracestate", HeaderValue::from_static("not a tracestate"));
        headers.append(
            "traceparent",
            HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"),
        );
        assert!(
            RequestTrace::from_headers(&headers).trace_id().is_none(),
            "two traceparents"
        );
        assert!(
            RequestTrace::from_headers(&HeaderMap::new())
                .trace_id()
                .is_none()
        );
    }
}
