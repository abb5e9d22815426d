//! Anthropic stream events to and from the IR stream vocabulary.

use serde::Serialize;
use serde_json::Value;

use super::wire;
use crate::translate::Context;
use crate::translate::errors::{anthropic_error_type, kind_from_anthropic_type};
use crate::translate::ir::{
    ApiError, BlockDelta, BlockStart, StopReason, StreamEvent, Usage, UsageUpdate,
};
use crate::translate::json::{parse_event, to_vec, type_tag};
use crate::translate::sse::{SseEvent, write_event};
use crate::translate::{TranslateError, ir};

/// Reads an Anthropic event stream.
#[derive(Debug, Default)]
pub struct StreamDecoder {
    /// Upstream block index to ours; `None` for blocks we do not model (server tool results…).
    indexes: Vec<Option<usize>>,
    next_index: usize,
    stop_reason: Option<StopReason>,
    finished: bool,
}

const KNOWN_EVENTS: &[&str] = &[
    "message_start",
    "content_block_start",
    "content_block_delta",
    "content_block_stop",
    "message_delta",
    "message_stop",
    "ping",
    "error",
];

fn usage_update(usage: &wire::WireUsage) -> UsageUpdate {
    UsageUpdate {
        input_tokens: usage.input_tokens,
        output_tokens: usage.output_tokens,
        cache_read_tokens: usage.cache_read_input_tokens,
        cache_write_tokens: usage.cache_creation_input_tokens,
        reasoning_tokens: None,
    }
}

impl StreamDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    fn our_index(&self, upstream: usize) -> Option<usize> {
        self.indexes.get(upstream).copied().flatten()
    }

    pub fn push(&mut self, event: &SseEvent) -> Result<Vec<StreamEvent>, TranslateError> {
        if self.finished || event.data.is_empty() {
            return Ok(Vec::new());
        }
        let parsed: wire::StreamEvent = match parse_event(&event.data) {
            Ok(parsed) => parsed,
            Err(error) => {
                // Unknown event types are tolerated; a malformed known one is an upstream fault.
                let value: Value = parse_event(&event.data)?;
                if KNOWN_EVENTS.contains(&type_tag(&value)) {
                    return Err(error);
                }
                return Ok(Vec::new());
            }
        };
        let mut out = Vec::new();
        match parsed {
            wire::StreamEvent::MessageStart { message } => {
                // Usage first, so an encoder has the input count when it writes its own start.
                out.push(StreamEvent::Usage(usage_update(&message.usage)));
                out.push(StreamEvent::MessageStart {
                    id: message.id,
                    model: message.model,
                });
            }
            wire::StreamEvent::ContentBlockStart {
                index,
                content_block,
            } => {
                if self.indexes.len() <= index {
                    self.indexes.resize(index + 1, None);
                }
                let ours = self.next_index;
                let (start, initial) = match content_block {
                    wire::ContentBlock::Text { text, .. } => (
                        BlockStart::Text,
                        (!text.is_empty()).then_some(BlockDelta::Text(text)),
                    ),
                    wire::ContentBlock::Thinking { thinking, .. } => (
                        BlockStart::Thinking,
                        (!thinking.is_empty()).then_some(BlockDelta::Thinking(thinking)),
                    ),
                    wire::ContentBlock::RedactedThinking { data } => {
                        (BlockStart::RedactedThinking { data }, None)
                    }
                    wire::ContentBlock::ToolUse {
                        id, name, input, ..
                    } => {
                        let initial = match &input {
                            Value::Object(object) if !object.is_empty() => {
                                Some(BlockDelta::ToolArgs(input.to_string()))
                            }
                            _ => None,
                        };
                        (BlockStart::ToolUse { id, name }, initial)
                    }
                    _ => return Ok(out),
                };
                self.indexes[index] = Some(ours);
                self.next_index += 1;
                out.push(StreamEvent::BlockStart {
                    index: ours,
                    block: start,
                });
                if let Some(delta) = initial {
                    out.push(StreamEvent::BlockDelta { index: ours, delta });
                }
            }
            wire::StreamEvent::ContentBlockDelta { index, delta } => {
                let Some(ours) = self.our_index(index) else {
                    return Ok(out);
                };
                let delta = match delta {
                    wire::Delta::TextDelta { text } => BlockDelta::Text(text),
                    wire::Delta::InputJsonDelta { partial_json } => {
                        BlockDelta::ToolArgs(partial_json)
                    }
                    wire::Delta::ThinkingDelta { thinking } => BlockDelta::Thinking(thinking),
                    wire::Delta::SignatureDelta { signature } => BlockDelta::Signature(signature),
                    wire::Delta::Other => return Ok(out),
                };
                out.push(StreamEvent::BlockDelta { index: ours, delta });
            }
            wire::StreamEvent::ContentBlockStop { index } => {
                if let Some(ours) = self.our_index(index) {
                    out.push(StreamEvent::BlockStop { index: ours });
                }
            }
            wire::StreamEvent::MessageDelta { delta, usage } => {
                self.stop_reason = Some(super::stop_reason_from_wire(
                    delta.stop_reason.as_deref(),
                    delta.stop_sequence,
                ));
                out.push(StreamEvent::Usage(usage_update(&usage)));
            }
            wire::StreamEvent::MessageStop {} => {
                self.finished = true;
                out.push(StreamEvent::MessageStop {
                    stop_reason: self.stop_reason.take().unwrap_or_default(),
                });
            }
            wire::StreamEvent::Ping {} => {}
            wire::StreamEvent::Error { error } => {
                self.finished = true;
                out.push(StreamEvent::Error(ApiError::new(
                    kind_from_anthropic_type(&error.kind, 500),
                    error.message,
                )));
            }
        }
        Ok(out)
    }

    /// The upstream closed. Without `message_stop` the answer is incomplete, which the client
    /// must learn rather than take a truncated answer for a whole one.
    pub fn finish(&mut self) -> Vec<StreamEvent> {
        if self.finished {
            return Vec::new();
        }
        self.finished = true;
        vec![StreamEvent::Error(ApiError::new(
            ir::ErrorClass::Api,
            "the upstream stream ended before message_stop",
        ))]
    }
}

/// Writes an Anthropic event stream.
#[derive(Debug)]
pub struct StreamEncoder {
    context: Context,
    started: bool,
    done: bool,
    usage: Usage,
    /// Our index to the client's (Anthropic indexes are dense and increasing).
    indexes: Vec<Option<usize>>,
    next_index: usize,
    open: Option<usize>,
}

#[derive(Serialize)]
struct MessageDeltaEvent<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    delta: MessageDeltaBody<'a>,
    usage: wire::WireUsage,
}

#[derive(Serialize)]
struct MessageDeltaBody<'a> {
    stop_reason: &'a str,
    stop_sequence: Option<String>,
}

fn emit<T: Serialize>(out: &mut Vec<u8>, name: &str, event: &T) {
    let data = to_vec(event);
    write_event(
        out,
        Some(name),
        std::str::from_utf8(&data).unwrap_or_default(),
    );
}

impl StreamEncoder {
    pub fn new(context: Context) -> Self {
        Self {
            context,
            started: false,
            done: false,
            usage: Usage::default(),
            indexes: Vec::new(),
            next_index: 0,
            open: None,
        }
    }

    fn start(&mut self, out: &mut Vec<u8>) {
        if self.started {
            return;
        }
        self.started = true;
        let message = wire::MessageResponse {
            id: self.context.response_id.clone(),
            kind: "message".to_owned(),
            role: "assistant".to_owned(),
            model: self.context.model.clone(),
            content: Vec::new(),
            stop_reason: None,
            stop_sequence: None,
            usage: super::encode::usage(&self.usage),
        };
        emit(
            out,
            "message_start",
            &wire::StreamEvent::MessageStart { message },
        );
    }

    fn close_open(&mut self, out: &mut Vec<u8>) {
        if let Some(index) = self.open.take() {
            emit(
                out,
                "content_block_stop",
                &wire::StreamEvent::ContentBlockStop { index },
            );
        }
    }

    pub fn push(&mut self, event: &StreamEvent, out: &mut Vec<u8>) {
        if self.done {
            return;
        }
        match event {
            StreamEvent::MessageStart { .. } => self.start(out),
            StreamEvent::Usage(update) => self.usage.apply(update),
            StreamEvent::BlockStart { index, block } => {
                self.start(out);
                self.close_open(out);
                let client_index = self.next_index;
                self.next_index += 1;
                if self.indexes.len() <= *index {
                    self.indexes.resize(index + 1, None);
                }
                self.indexes[*index] = Some(client_index);
                self.open = Some(client_index);
                let content_block = match block {
                    BlockStart::Text => wire::ContentBlock::Text {
                        text: String::new(),
                        cache_control: None,
                    },
                    // `signature` is a required string of a thinking block (Anthropic's SDKs
                    // type it so): a translated one starts with an empty one, which a later
                    // `signature_delta` replaces when the upstream has one.
                    BlockStart::Thinking => wire::ContentBlock::Thinking {
                        thinking: String::new(),
                        signature: Some(String::new()),
                    },
                    BlockStart::RedactedThinking { data } => {
                        wire::ContentBlock::RedactedThinking { data: data.clone() }
                    }
                    BlockStart::ToolUse { id, name } => wire::ContentBlock::ToolUse {
                        id: id.clone(),
                        name: name.clone(),
                        input: Value::Object(serde_json::Map::new()),
                        cache_control: None,
                    },
                };
                emit(
                    out,
                    "content_block_start",
                    &wire::StreamEvent::ContentBlockStart {
                        index: client_index,
                        content_block,
                    },
                );
            }
            StreamEvent::BlockDelta { index, delta } => {
                let Some(client_index) = self.indexes.get(*index).copied().flatten() else {
                    return;
                };
                let delta = match delta {
                    BlockDelta::Text(text) => wire::Delta::TextDelta { text: text.clone() },
                    BlockDelta::Thinking(thinking) => wire::Delta::ThinkingDelta {
                        thinking: thinking.clone(),
                    },
                    BlockDelta::Signature(signature) => wire::Delta::SignatureDelta {
                        signature: signature.clone(),
                    },
                    BlockDelta::ToolArgs(partial_json) => wire::Delta::InputJsonDelta {
                        partial_json: partial_json.clone(),
                    },
                };
                emit(
                    out,
                    "content_block_delta",
                    &wire::StreamEvent::ContentBlockDelta {
                        index: client_index,
                        delta,
                    },
                );
            }
            StreamEvent::BlockStop { index } => {
                let client_index = self.indexes.get(*index).copied().flatten();
                if client_index.is_some() && client_index == self.open {
                    self.close_open(out);
                }
            }
            StreamEvent::MessageStop { stop_reason } => {
                self.start(out);
                self.close_open(out);
                let (stop_reason, stop_sequence) = super::stop_reason_to_wire(stop_reason);
                emit(
                    out,
                    "message_delta",
                    &MessageDeltaEvent {
                        kind: "message_delta",
                        delta: MessageDeltaBody {
                            stop_reason,
                            stop_sequence,
                        },
                        usage: super::encode::usage(&self.usage),
                    },
                );
                emit(out, "message_stop", &wire::StreamEvent::MessageStop {});
                self.done = true;
            }
            StreamEvent::Error(error) => {
                out.extend_from_slice(&error_event(error));
                self.done = true;
            }
        }
    }

    pub fn finish(&mut self, _out: &mut Vec<u8>) {}
}

/// `event: error` as Anthropic sends it mid-stream.
pub fn error_event(error: &ApiError) -> Vec<u8> {
    let mut out = Vec::new();
    emit(
        &mut out,
        "error",
        &wire::StreamEvent::Error {
            error: wire::ErrorBody {
                kind: anthropic_error_type(error.kind).to_owned(),
                message: error.message.clone(),
            },
        },
    );
    out
}
