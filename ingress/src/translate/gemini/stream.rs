//! Gemini's stream (`:streamGenerateContent?alt=sse`: one `GenerateContentResponse` per
//! `data:` event, no event names and no end marker) to and from the IR stream vocabulary.

use serde_json::{Value, json};

use super::wire;
use crate::translate::Context;
use crate::translate::TranslateError;
use crate::translate::errors::{gemini_error_value, kind_from_gemini_status};
use crate::translate::ir::{ApiError, BlockDelta, BlockStart, StreamEvent, Usage};
use crate::translate::json::{parse_event, to_string};
use crate::translate::sse::{SseEvent, write_event};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    Text(usize),
    Thinking(usize),
}

/// Reads a Gemini stream. Text and thought parts grow one block each while they continue; a
/// function call comes whole in one part and is one block; a signature on a non-thought part is
/// a thinking block of its own before that part. The stop is held back until the stream ends,
/// since Gemini has no end event.
#[derive(Debug, Default)]
pub struct StreamDecoder {
    started: bool,
    response_id: String,
    open: Option<Open>,
    next_index: usize,
    calls: usize,
    saw_call: bool,
    finish_reason: Option<String>,
    done: bool,
}

impl StreamDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    fn close(&mut self, out: &mut Vec<StreamEvent>) {
        if let Some(Open::Text(index) | Open::Thinking(index)) = self.open.take() {
            out.push(StreamEvent::BlockStop { index });
        }
    }

    fn next(&mut self) -> usize {
        let index = self.next_index;
        self.next_index += 1;
        index
    }

    fn open_text(&mut self, thinking: bool, out: &mut Vec<StreamEvent>) -> usize {
        match self.open {
            Some(Open::Text(index)) if !thinking => return index,
            Some(Open::Thinking(index)) if thinking => return index,
            _ => {}
        }
        self.close(out);
        let index = self.next();
        self.open = Some(if thinking {
            Open::Thinking(index)
        } else {
            Open::Text(index)
        });
        out.push(StreamEvent::BlockStart {
            index,
            block: if thinking {
                BlockStart::Thinking
            } else {
                BlockStart::Text
            },
        });
        index
    }

    fn part(&mut self, part: wire::Part, out: &mut Vec<StreamEvent>) {
        let signature = part
            .thought_signature
            .filter(|signature| !signature.is_empty());
        if part.thought == Some(true) {
            let text = part.text.unwrap_or_default();
            let index = self.open_text(true, out);
            if !text.is_empty() {
                out.push(StreamEvent::BlockDelta {
                    index,
                    delta: BlockDelta::Thinking(text),
                });
            }
            if let Some(signature) = signature {
                out.push(StreamEvent::BlockDelta {
                    index,
                    delta: BlockDelta::Signature(signature),
                });
            }
            return;
        }
        if let Some(signature) = signature {
            self.close(out);
            let index = self.next();
            out.push(StreamEvent::BlockStart {
                index,
                block: BlockStart::Thinking,
            });
            out.push(StreamEvent::BlockDelta {
                index,
                delta: BlockDelta::Signature(signature),
            });
            out.push(StreamEvent::BlockStop { index });
        }
        if let Some(call) = part.function_call {
            self.close(out);
            let id = call
                .id
                .filter(|id| !id.is_empty())
                .unwrap_or_else(|| super::generated_id(&self.response_id, self.calls));
            self.calls += 1;
            self.saw_call = true;
            let index = self.next();
            out.push(StreamEvent::BlockStart {
                index,
                block: BlockStart::ToolUse {
                    id,
                    name: call.name,
                },
            });
            let args = call.args.unwrap_or_else(|| json!({}));
            out.push(StreamEvent::BlockDelta {
                index,
                delta: BlockDelta::ToolArgs(to_string(&args)),
            });
            out.push(StreamEvent::BlockStop { index });
        } else if let Some(text) = part.text
            && !text.is_empty()
        {
            let index = self.open_text(false, out);
            out.push(StreamEvent::BlockDelta {
                index,
                delta: BlockDelta::Text(text),
            });
        }
    }

    pub fn push(&mut self, event: &SseEvent) -> Result<Vec<StreamEvent>, TranslateError> {
        let mut out = Vec::new();
        let data = event.data.trim();
        if self.done || data.is_empty() || data == "[DONE]" {
            return Ok(out);
        }
        let chunk: wire::GenerateContentResponse = parse_event(data)?;
        if let Some(error) = chunk.error {
            self.done = true;
            out.push(StreamEvent::Error(stream_error(&error)));
            return Ok(out);
        }
        if !self.started {
            self.started = true;
            self.response_id = chunk.response_id.clone().unwrap_or_default();
            out.push(StreamEvent::MessageStart {
                id: self.response_id.clone(),
                model: chunk.model_version.clone().unwrap_or_default(),
            });
        }
        if chunk.candidates.is_empty()
            && chunk
                .prompt_feedback
                .as_ref()
                .and_then(|feedback| feedback.get("blockReason"))
                .is_some()
        {
            self.finish_reason = Some("SAFETY".to_owned());
        }
        for candidate in chunk.candidates.into_iter().filter(|c| c.index == 0) {
            for part in candidate
                .content
                .map(|content| content.parts)
                .unwrap_or_default()
            {
                self.part(part, &mut out);
            }
            if candidate.finish_reason.is_some() {
                self.finish_reason = candidate.finish_reason;
            }
        }
        if let Some(usage) = &chunk.usage_metadata {
            out.push(StreamEvent::Usage(super::usage_update(usage)));
        }
        Ok(out)
    }

    pub fn finish(&mut self) -> Vec<StreamEvent> {
        if self.done {
            return Vec::new();
        }
        self.done = true;
        let mut out = Vec::new();
        match self.finish_reason.take() {
            Some(reason) => {
                self.close(&mut out);
                out.push(StreamEvent::MessageStop {
                    stop_reason: super::stop_reason_from_wire(Some(&reason), self.saw_call),
                });
            }
            // A cut stream: the open block did not end, the stream failed (as the other
            // dialects' decoders report a stream without its end).
            None => out.push(StreamEvent::Error(ApiError::new(
                crate::translate::ir::ErrorClass::Api,
                "the upstream stream ended before its finish reason",
            ))),
        }
        out
    }
}

fn stream_error(error: &Value) -> ApiError {
    let message = error
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or("the upstream reported an error mid-stream")
        .to_owned();
    let status = error.get("status").and_then(Value::as_str).unwrap_or("");
    let code = error
        .get("code")
        .and_then(Value::as_u64)
        .and_then(|code| u16::try_from(code).ok())
        .unwrap_or(500);
    ApiError::new(kind_from_gemini_status(status, code), message)
}

/// Writes a Gemini stream: one chunk per text or thought delta, one per whole function call,
/// and a last chunk with the finish reason and the usage.
#[derive(Debug)]
pub struct StreamEncoder {
    context: Context,
    usage: Usage,
    /// The call being streamed: id, name and its arguments so far.
    call: Option<(String, String, String)>,
    /// A signature that arrived without thought text, for the next part.
    pending_signature: Option<String>,
    thought_has_text: bool,
    done: bool,
}

impl StreamEncoder {
    pub fn new(context: Context) -> Self {
        Self {
            context,
            usage: Usage::default(),
            call: None,
            pending_signature: None,
            thought_has_text: false,
            done: false,
        }
    }

    fn chunk(&self, part: wire::Part, out: &mut Vec<u8>) {
        let body = json!({
            "candidates": [{"content": {"parts": [part], "role": "model"}, "index": 0}],
            "modelVersion": self.context.model,
            "responseId": self.context.response_id,
        });
        write_event(out, None, &to_string(&body));
    }

    pub fn push(&mut self, event: &StreamEvent, out: &mut Vec<u8>) {
        if self.done {
            return;
        }
        match event {
            StreamEvent::MessageStart { .. } => {}
            StreamEvent::BlockStart { block, .. } => match block {
                BlockStart::ToolUse { id, name } => {
                    self.call = Some((id.clone(), name.clone(), String::new()));
                }
                BlockStart::Thinking => self.thought_has_text = false,
                BlockStart::Text | BlockStart::RedactedThinking { .. } => {}
            },
            StreamEvent::BlockDelta { delta, .. } => match delta {
                BlockDelta::Text(text) => {
                    let part = wire::Part {
                        text: Some(text.clone()),
                        thought_signature: self.pending_signature.take(),
                        ..wire::Part::default()
                    };
                    self.chunk(part, out);
                }
                BlockDelta::Thinking(text) => {
                    self.thought_has_text = true;
                    let part = wire::Part {
                        text: Some(text.clone()),
                        thought: Some(true),
                        ..wire::Part::default()
                    };
                    self.chunk(part, out);
                }
                BlockDelta::Signature(signature) if self.thought_has_text => {
                    let part = wire::Part {
                        text: Some(String::new()),
                        thought: Some(true),
                        thought_signature: Some(signature.clone()),
                        ..wire::Part::default()
                    };
                    self.chunk(part, out);
                }
                BlockDelta::Signature(signature) => {
                    self.pending_signature = Some(signature.clone());
                }
                BlockDelta::ToolArgs(fragment) => {
                    if let Some((_, _, arguments)) = &mut self.call {
                        arguments.push_str(fragment);
                    }
                }
            },
            StreamEvent::BlockStop { .. } => {
                if let Some((id, name, arguments)) = self.call.take() {
                    // A call without arguments streams none (or an empty fragment): no
                    // arguments, not an empty freeform text.
                    let args = if arguments.trim().is_empty() {
                        json!({})
                    } else {
                        super::encode::args(&Value::String(arguments))
                    };
                    let part = wire::Part {
                        function_call: Some(wire::FunctionCall {
                            id: (!super::is_generated_id(&id)).then_some(id),
                            name,
                            args: Some(args),
                        }),
                        thought_signature: self.pending_signature.take(),
                        ..wire::Part::default()
                    };
                    self.chunk(part, out);
                }
            }
            StreamEvent::Usage(update) => self.usage.apply(update),
            StreamEvent::MessageStop { stop_reason } => {
                self.done = true;
                let part = wire::Part {
                    text: Some(String::new()),
                    thought_signature: self.pending_signature.take(),
                    ..wire::Part::default()
                };
                let body = json!({
                    "candidates": [{
                        "content": {"parts": [part], "role": "model"},
                        "finishReason": super::stop_reason_to_wire(stop_reason),
                        "index": 0,
                    }],
                    "usageMetadata": super::usage_to_wire(&self.usage),
                    "modelVersion": self.context.model,
                    "responseId": self.context.response_id,
                });
                write_event(out, None, &to_string(&body));
            }
            StreamEvent::Error(error) => {
                self.done = true;
                out.extend_from_slice(&error_event(error));
            }
        }
    }

    pub fn finish(&mut self, _out: &mut Vec<u8>) {}
}

/// The error chunk that ends a Gemini stream.
pub fn error_event(error: &ApiError) -> Vec<u8> {
    let mut out = Vec::new();
    write_event(
        &mut out,
        None,
        &to_string(&json!({"error": gemini_error_value(error)})),
    );
    out
}
