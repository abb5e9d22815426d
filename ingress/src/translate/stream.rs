//! The streaming pipeline: upstream SSE bytes → upstream decoder → IR events → client encoder
//! → client SSE bytes, reading usage and the stop reason on the way.

use super::ir::{ApiError, StopReason, StreamEvent, Usage};
use super::sse::{SseDecoder, write_event};
use super::{Context, Dialect, TranslateError, anthropic, gemini, openai_chat, openai_responses};

#[derive(Debug)]
enum Decoder {
    Anthropic(anthropic::StreamDecoder),
    OpenAiChat(openai_chat::StreamDecoder),
    OpenAiResponses(openai_responses::StreamDecoder),
    Gemini(gemini::StreamDecoder),
}

#[derive(Debug)]
enum Encoder {
    Anthropic(anthropic::StreamEncoder),
    OpenAiChat(openai_chat::StreamEncoder),
    OpenAiResponses(openai_responses::StreamEncoder),
    Gemini(gemini::StreamEncoder),
}

/// Translates one streamed answer. Same-dialect traffic is passed through event by event, each
/// event's data as received except the model name, which becomes the client's alias (as in a
/// non-streamed answer), and only read for usage; everything else is re-encoded.
#[derive(Debug)]
pub struct StreamTranslator {
    client: Dialect,
    sse: SseDecoder,
    decoder: Decoder,
    /// `None` when upstream and client speak the same dialect.
    encoder: Option<Encoder>,
    usage: Usage,
    stop_reason: Option<StopReason>,
    saw_first_content: bool,
    failed: bool,
    /// OpenAI Chat passthrough for a client that did not ask for usage in the stream.
    strip_usage_chunks: bool,
    /// The alias the client asked for, written over the upstream's model name in passthrough.
    alias: String,
}

impl StreamTranslator {
    pub fn new(upstream: Dialect, client: Dialect, context: Context) -> Self {
        let decoder = match upstream {
            Dialect::Anthropic => Decoder::Anthropic(anthropic::StreamDecoder::new()),
            Dialect::OpenAiChat => Decoder::OpenAiChat(openai_chat::StreamDecoder::new()),
            Dialect::OpenAiResponses => {
                Decoder::OpenAiResponses(openai_responses::StreamDecoder::new())
            }
            Dialect::Gemini => Decoder::Gemini(gemini::StreamDecoder::new()),
        };
        let strip_usage_chunks = upstream == Dialect::OpenAiChat
            && client == Dialect::OpenAiChat
            && !context.include_usage;
        let alias = context.model.clone();
        let encoder = (upstream != client).then(|| match client {
            Dialect::Anthropic => Encoder::Anthropic(anthropic::StreamEncoder::new(context)),
            Dialect::OpenAiChat => Encoder::OpenAiChat(openai_chat::StreamEncoder::new(context)),
            Dialect::OpenAiResponses => {
                Encoder::OpenAiResponses(openai_responses::StreamEncoder::new(context))
            }
            Dialect::Gemini => Encoder::Gemini(gemini::StreamEncoder::new(context)),
        });
        Self {
            client,
            sse: SseDecoder::new(),
            decoder,
            encoder,
            usage: Usage::default(),
            stop_reason: None,
            saw_first_content: false,
            failed: false,
            strip_usage_chunks,
            alias,
        }
    }

    /// Feeds raw upstream bytes (any split) and returns the bytes to send to the client.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<u8>, TranslateError> {
        let sse_events = self
            .sse
            .push(bytes)
            .map_err(|error| TranslateError::BadUpstream(error.to_string()))?;
        let mut out = Vec::new();
        let passthrough = self.encoder.is_none();
        for sse_event in &sse_events {
            let events = match &mut self.decoder {
                Decoder::Anthropic(decoder) => decoder.push(sse_event)?,
                Decoder::OpenAiChat(decoder) => decoder.push(sse_event)?,
                Decoder::OpenAiResponses(decoder) => decoder.push(sse_event)?,
                Decoder::Gemini(decoder) => decoder.push(sse_event)?,
            };
            // The gateway always asks an OpenAI upstream for usage; a client that did not ask
            // must not get the usage-only chunk (its `choices` is empty, which breaks clients
            // that read `choices[0]`).
            let hidden =
                self.strip_usage_chunks && matches!(events.as_slice(), [StreamEvent::Usage(_)]);
            if passthrough && !hidden {
                let data = with_alias(self.client, sse_event, &self.alias);
                write_event(&mut out, sse_event.event.as_deref(), &data);
            }
            self.handle(events, &mut out);
        }
        Ok(out)
    }

    /// The upstream closed: flushes what is pending and completes the client stream (or ends
    /// it with an error event when the upstream stopped short).
    pub fn finish(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut events = Vec::new();
        for sse_event in self.sse.finish() {
            let decoded = match &mut self.decoder {
                Decoder::Anthropic(decoder) => decoder.push(&sse_event),
                Decoder::OpenAiChat(decoder) => decoder.push(&sse_event),
                Decoder::OpenAiResponses(decoder) => decoder.push(&sse_event),
                Decoder::Gemini(decoder) => decoder.push(&sse_event),
            };
            match decoded {
                Ok(decoded) => events.extend(decoded),
                Err(error) => events.push(StreamEvent::Error(error.to_api_error())),
            }
        }
        events.extend(match &mut self.decoder {
            Decoder::Anthropic(decoder) => decoder.finish(),
            Decoder::OpenAiChat(decoder) => decoder.finish(),
            Decoder::OpenAiResponses(decoder) => decoder.finish(),
            Decoder::Gemini(decoder) => decoder.finish(),
        });
        let passthrough = self.encoder.is_none();
        if passthrough {
            // The upstream's own events already went out; only a missing ending is added.
            let truncated = events.iter().find_map(|event| match event {
                StreamEvent::Error(error) => Some(error.clone()),
                _ => None,
            });
            self.handle(events, &mut Vec::new());
            if let Some(error) = truncated {
                out.extend_from_slice(&super::encode_stream_error(self.client, &error));
            }
        } else {
            self.handle(events, &mut out);
            match &mut self.encoder {
                Some(Encoder::Anthropic(encoder)) => encoder.finish(&mut out),
                Some(Encoder::OpenAiChat(encoder)) => encoder.finish(&mut out),
                Some(Encoder::OpenAiResponses(encoder)) => encoder.finish(&mut out),
                Some(Encoder::Gemini(encoder)) => encoder.finish(&mut out),
                None => {}
            }
        }
        out
    }

    /// Ends the client stream with an error event after a failure past the first byte.
    pub fn fail(&mut self, error: &ApiError) -> Vec<u8> {
        if self.failed {
            return Vec::new();
        }
        self.failed = true;
        let mut out = Vec::new();
        match &mut self.encoder {
            Some(Encoder::Anthropic(encoder)) => {
                encoder.push(&StreamEvent::Error(error.clone()), &mut out)
            }
            Some(Encoder::OpenAiChat(encoder)) => {
                encoder.push(&StreamEvent::Error(error.clone()), &mut out)
            }
            Some(Encoder::OpenAiResponses(encoder)) => {
                encoder.push(&StreamEvent::Error(error.clone()), &mut out)
            }
            Some(Encoder::Gemini(encoder)) => {
                encoder.push(&StreamEvent::Error(error.clone()), &mut out)
            }
            None => out = super::encode_stream_error(self.client, error),
        }
        out
    }

    fn handle(&mut self, events: Vec<StreamEvent>, out: &mut Vec<u8>) {
        for event in &events {
            match event {
                StreamEvent::Usage(update) => self.usage.apply(update),
                StreamEvent::BlockStart { .. } | StreamEvent::BlockDelta { .. } => {
                    self.saw_first_content = true
                }
                StreamEvent::MessageStop { stop_reason } => {
                    self.stop_reason = Some(stop_reason.clone())
                }
                StreamEvent::Error(_) => self.failed = true,
                _ => {}
            }
            match &mut self.encoder {
                Some(Encoder::Anthropic(encoder)) => encoder.push(event, out),
                Some(Encoder::OpenAiChat(encoder)) => encoder.push(event, out),
                Some(Encoder::OpenAiResponses(encoder)) => encoder.push(event, out),
                Some(Encoder::Gemini(encoder)) => encoder.push(event, out),
                None => {}
            }
        }
    }

    /// Usage read so far (final once the stream is finished).
    pub fn usage(&self) -> Usage {
        self.usage
    }

    /// The stop reason, once the upstream said it.
    pub fn stop_reason(&self) -> Option<&StopReason> {
        self.stop_reason.as_ref()
    }

    /// Whether any content (a block) has arrived: past this point a retry would duplicate output.
    pub fn saw_first_content(&self) -> bool {
        self.saw_first_content
    }

    /// Whether the stream ended with an error.
    pub fn failed(&self) -> bool {
        self.failed
    }
}

/// Decodes a whole upstream stream into IR events (for tests and tools).
pub fn decode_all(upstream: Dialect, bytes: &[u8]) -> Result<Vec<StreamEvent>, TranslateError> {
    let mut sse = SseDecoder::new();
    let mut sse_events = sse
        .push(bytes)
        .map_err(|error| TranslateError::BadUpstream(error.to_string()))?;
    sse_events.extend(sse.finish());
    let mut events = Vec::new();
    match upstream {
        Dialect::Anthropic => {
            let mut decoder = anthropic::StreamDecoder::new();
            for event in &sse_events {
                events.extend(decoder.push(event)?);
            }
            events.extend(decoder.finish());
        }
        Dialect::OpenAiChat => {
            let mut decoder = openai_chat::StreamDecoder::new();
            for event in &sse_events {
                events.extend(decoder.push(event)?);
            }
            events.extend(decoder.finish());
        }
        Dialect::OpenAiResponses => {
            let mut decoder = openai_responses::StreamDecoder::new();
            for event in &sse_events {
                events.extend(decoder.push(event)?);
            }
            events.extend(decoder.finish());
        }
        Dialect::Gemini => {
            let mut decoder = gemini::StreamDecoder::new();
            for event in &sse_events {
                events.extend(decoder.push(event)?);
            }
            events.extend(decoder.finish());
        }
    }
    Ok(events)
}

/// A passed-through event's data with the upstream's model name replaced by the client's alias,
/// where each dialect names it: every OpenAI Chat chunk's top-level `model`, Anthropic's
/// `message_start.message.model`, and the `response.model` of a Responses lifecycle event
/// (`response.created`, `.in_progress`, `.completed`, ...), and every Gemini chunk's
/// `modelVersion`. Every other event, and every other member, keeps its bytes.
fn with_alias<'a>(
    client: Dialect,
    event: &'a super::sse::SseEvent,
    alias: &str,
) -> std::borrow::Cow<'a, str> {
    use std::borrow::Cow;
    let data = event.data.as_str();
    let name = event.event.as_deref().unwrap_or_default();
    if client == Dialect::Gemini {
        return super::passthrough::with_member(data.as_bytes(), &[], "modelVersion", alias)
            .and_then(|rewritten| String::from_utf8(rewritten).ok())
            .map_or(Cow::Borrowed(data), Cow::Owned);
    }
    let path: &[&str] = match client {
        Dialect::OpenAiChat if data.starts_with('{') => &[],
        Dialect::Anthropic if name == "message_start" => &["message"],
        Dialect::OpenAiResponses
            if name
                .strip_prefix("response.")
                .is_some_and(|stage| !stage.contains('.')) =>
        {
            &["response"]
        }
        _ => return Cow::Borrowed(data),
    };
    super::passthrough::with_model(data.as_bytes(), path, alias)
        .and_then(|rewritten| String::from_utf8(rewritten).ok())
        .map_or(Cow::Borrowed(data), Cow::Owned)
}
