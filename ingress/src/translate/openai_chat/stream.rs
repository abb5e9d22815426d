//! OpenAI Chat chunks to and from the IR stream vocabulary.

use serde_json::Value;

use super::wire;
use crate::translate::Context;
use crate::translate::TranslateError;
use crate::translate::errors::openai_error_value;
use crate::translate::ir::{
    ApiError, BlockDelta, BlockStart, ErrorClass, StopReason, StreamEvent, Usage,
};
use crate::translate::json::{parse_event, to_vec};
use crate::translate::sse::{SseEvent, write_event};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OpenBlock {
    Text(usize),
    Thinking(usize),
    Tool(usize),
}

#[derive(Debug, Clone)]
struct ToolSlot {
    /// The OpenAI tool-call index.
    openai_index: usize,
    id: String,
    ours: usize,
}

/// Reads OpenAI chunks. Text, reasoning and each tool call (keyed by its OpenAI `index`)
/// become blocks; the stop is held back until `[DONE]` (or the end of the stream) so that the
/// usage chunk, which comes after the `finish_reason` chunk, is not missed.
#[derive(Debug, Default)]
pub struct StreamDecoder {
    started: bool,
    open: Option<OpenBlock>,
    next_index: usize,
    tools: Vec<ToolSlot>,
    finish_reason: Option<String>,
    refused: bool,
    done: bool,
}

impl StreamDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    fn close(&mut self, out: &mut Vec<StreamEvent>) {
        if let Some(open) = self.open.take() {
            let (OpenBlock::Text(index) | OpenBlock::Thinking(index) | OpenBlock::Tool(index)) =
                open;
            out.push(StreamEvent::BlockStop { index });
        }
    }

    fn open_text(&mut self, thinking: bool, out: &mut Vec<StreamEvent>) -> usize {
        match self.open {
            Some(OpenBlock::Text(index)) if !thinking => return index,
            Some(OpenBlock::Thinking(index)) if thinking => return index,
            _ => {}
        }
        self.close(out);
        let index = self.next_index;
        self.next_index += 1;
        self.open = Some(if thinking {
            OpenBlock::Thinking(index)
        } else {
            OpenBlock::Text(index)
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

    pub fn push(&mut self, event: &SseEvent) -> Result<Vec<StreamEvent>, TranslateError> {
        let mut out = Vec::new();
        if self.done {
            return Ok(out);
        }
        let data = event.data.trim();
        if data.is_empty() {
            return Ok(out);
        }
        if data == "[DONE]" {
            self.end(&mut out);
            return Ok(out);
        }
        let chunk: wire::ChatChunk = parse_event(data)?;
        if let Some(error) = chunk.error {
            self.done = true;
            let message = error
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("the upstream reported an error mid-stream")
                .to_owned();
            out.push(StreamEvent::Error(ApiError::new(ErrorClass::Api, message)));
            return Ok(out);
        }
        if !self.started {
            self.started = true;
            out.push(StreamEvent::MessageStart {
                id: chunk.id.clone(),
                model: chunk.model.clone(),
            });
        }
        for choice in chunk.choices.iter().filter(|choice| choice.index == 0) {
            let delta = &choice.delta;
            let reasoning = delta
                .reasoning_content
                .as_deref()
                .or(delta.reasoning.as_deref());
            if let Some(text) = reasoning.filter(|text| !text.is_empty()) {
                let index = self.open_text(true, &mut out);
                out.push(StreamEvent::BlockDelta {
                    index,
                    delta: BlockDelta::Thinking(text.to_owned()),
                });
            }
            if let Some(text) = delta.content.as_deref().filter(|text| !text.is_empty()) {
                let index = self.open_text(false, &mut out);
                out.push(StreamEvent::BlockDelta {
                    index,
                    delta: BlockDelta::Text(text.to_owned()),
                });
            }
            if let Some(text) = delta.refusal.as_deref().filter(|text| !text.is_empty()) {
                self.refused = true;
                let index = self.open_text(false, &mut out);
                out.push(StreamEvent::BlockDelta {
                    index,
                    delta: BlockDelta::Text(text.to_owned()),
                });
            }
            for (position, call) in delta.tool_calls.iter().flatten().enumerate() {
                self.tool_call(call, position, &mut out);
            }
            if let Some(reason) = &choice.finish_reason {
                self.finish_reason = Some(reason.clone());
                self.close(&mut out);
            }
        }
        if let Some(usage) = &chunk.usage {
            out.push(StreamEvent::Usage(super::usage_update(usage)));
        }
        Ok(out)
    }

    fn tool_call(
        &mut self,
        call: &wire::ToolCallDelta,
        position: usize,
        out: &mut Vec<StreamEvent>,
    ) {
        let openai_index = call.index.unwrap_or(position);
        let function = call.function.clone().unwrap_or_default();
        // A known index with a different id is a new call from a server that reuses indexes.
        let existing = self.tools.iter().rev().find(|slot| {
            slot.openai_index == openai_index
                && call
                    .id
                    .as_deref()
                    .is_none_or(|id| id.is_empty() || id == slot.id)
        });
        let ours = match existing {
            Some(slot) => slot.ours,
            None => {
                self.close(out);
                let ours = self.next_index;
                self.next_index += 1;
                let id = call.id.clone().unwrap_or_else(|| format!("call_{ours}"));
                self.tools.push(ToolSlot {
                    openai_index,
                    id: id.clone(),
                    ours,
                });
                self.open = Some(OpenBlock::Tool(ours));
                out.push(StreamEvent::BlockStart {
                    index: ours,
                    block: BlockStart::ToolUse {
                        id,
                        name: function.name.clone().unwrap_or_default(),
                    },
                });
                ours
            }
        };
        if let Some(arguments) = function.arguments.filter(|arguments| !arguments.is_empty()) {
            out.push(StreamEvent::BlockDelta {
                index: ours,
                delta: BlockDelta::ToolArgs(arguments),
            });
        }
    }

    fn end(&mut self, out: &mut Vec<StreamEvent>) {
        self.done = true;
        if !self.started {
            out.push(StreamEvent::MessageStart {
                id: String::new(),
                model: String::new(),
            });
        }
        self.close(out);
        let mut stop_reason =
            super::stop_reason_from_wire(self.finish_reason.as_deref(), !self.tools.is_empty());
        if self.refused && stop_reason == StopReason::EndTurn {
            stop_reason = StopReason::ContentFilter;
        }
        out.push(StreamEvent::MessageStop { stop_reason });
    }

    /// The upstream closed. Without `[DONE]` a stream that reached its `finish_reason` is still
    /// complete; one that did not was cut short.
    pub fn finish(&mut self) -> Vec<StreamEvent> {
        let mut out = Vec::new();
        if self.done {
            return out;
        }
        if self.finish_reason.is_some() {
            self.end(&mut out);
        } else {
            self.done = true;
            out.push(StreamEvent::Error(ApiError::new(
                ErrorClass::Api,
                "the upstream stream ended before a finish_reason",
            )));
        }
        out
    }
}

#[derive(Debug, Clone, Copy)]
enum ClientBlock {
    Text,
    Thinking,
    Tool(usize),
    Ignored,
}

/// Writes OpenAI chunks: one id, model and `created` throughout, role in the first chunk, a
/// final chunk with `finish_reason`, the usage chunk with empty `choices` when the client asked
/// for it, then `data: [DONE]`.
#[derive(Debug)]
pub struct StreamEncoder {
    context: Context,
    started: bool,
    done: bool,
    usage: Usage,
    blocks: Vec<ClientBlock>,
    next_tool: usize,
}

impl StreamEncoder {
    pub fn new(context: Context) -> Self {
        Self {
            context,
            started: false,
            done: false,
            usage: Usage::default(),
            blocks: Vec::new(),
            next_tool: 0,
        }
    }

    fn chunk(
        &self,
        out: &mut Vec<u8>,
        delta: wire::OutDelta<'_>,
        finish_reason: Option<&'static str>,
    ) {
        let chunk = wire::OutChunk {
            id: &self.context.response_id,
            object: "chat.completion.chunk",
            created: self.context.created,
            model: &self.context.model,
            choices: vec![wire::OutChoice {
                index: 0,
                delta,
                logprobs: None,
                finish_reason,
            }],
            usage: self.context.include_usage.then_some(Value::Null),
        };
        write_event(
            out,
            None,
            std::str::from_utf8(&to_vec(&chunk)).unwrap_or_default(),
        );
    }

    fn start(&mut self, out: &mut Vec<u8>) {
        if !self.started {
            self.started = true;
            self.chunk(
                out,
                wire::OutDelta {
                    role: Some("assistant"),
                    content: Some(""),
                    ..Default::default()
                },
                None,
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
                if self.blocks.len() <= *index {
                    self.blocks.resize(index + 1, ClientBlock::Ignored);
                }
                self.blocks[*index] = match block {
                    BlockStart::Text => ClientBlock::Text,
                    BlockStart::Thinking => ClientBlock::Thinking,
                    BlockStart::RedactedThinking { .. } => ClientBlock::Ignored,
                    BlockStart::ToolUse { id, name } => {
                        let tool = self.next_tool;
                        self.next_tool += 1;
                        self.chunk(
                            out,
                            wire::OutDelta {
                                tool_calls: Some([wire::OutToolCall {
                                    index: tool,
                                    id: Some(id),
                                    kind: Some("function"),
                                    function: wire::OutFunction {
                                        name: Some(name),
                                        arguments: "",
                                    },
                                }]),
                                ..Default::default()
                            },
                            None,
                        );
                        ClientBlock::Tool(tool)
                    }
                };
            }
            StreamEvent::BlockDelta { index, delta } => {
                // An empty fragment (Anthropic opens tool input with one) is not worth a chunk.
                if let BlockDelta::Text(text)
                | BlockDelta::Thinking(text)
                | BlockDelta::ToolArgs(text) = delta
                    && text.is_empty()
                {
                    return;
                }
                let block = self
                    .blocks
                    .get(*index)
                    .copied()
                    .unwrap_or(ClientBlock::Ignored);
                let delta = match (block, delta) {
                    (ClientBlock::Text, BlockDelta::Text(text)) => wire::OutDelta {
                        content: Some(text),
                        ..Default::default()
                    },
                    (ClientBlock::Thinking, BlockDelta::Thinking(text)) => wire::OutDelta {
                        reasoning_content: Some(text),
                        ..Default::default()
                    },
                    (ClientBlock::Tool(tool), BlockDelta::ToolArgs(arguments)) => wire::OutDelta {
                        tool_calls: Some([wire::OutToolCall {
                            index: tool,
                            id: None,
                            kind: None,
                            function: wire::OutFunction {
                                name: None,
                                arguments,
                            },
                        }]),
                        ..Default::default()
                    },
                    _ => return,
                };
                self.chunk(out, delta, None);
            }
            StreamEvent::BlockStop { .. } => {}
            StreamEvent::MessageStop { stop_reason } => {
                self.start(out);
                self.chunk(
                    out,
                    wire::OutDelta::default(),
                    Some(super::stop_reason_to_wire(stop_reason)),
                );
                if self.context.include_usage {
                    let chunk = wire::OutChunk {
                        id: &self.context.response_id,
                        object: "chat.completion.chunk",
                        created: self.context.created,
                        model: &self.context.model,
                        choices: Vec::new(),
                        usage: serde_json::to_value(super::usage_to_wire(&self.usage)).ok(),
                    };
                    write_event(
                        out,
                        None,
                        std::str::from_utf8(&to_vec(&chunk)).unwrap_or_default(),
                    );
                }
                write_event(out, None, "[DONE]");
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

/// A data chunk with an `error` object; nothing follows it, not even `[DONE]`.
pub fn error_event(error: &ApiError) -> Vec<u8> {
    #[derive(serde::Serialize)]
    struct Body {
        error: crate::translate::errors::OpenAiErrorValue,
    }
    let mut out = Vec::new();
    write_event(
        &mut out,
        None,
        std::str::from_utf8(&to_vec(&Body {
            error: openai_error_value(error),
        }))
        .unwrap_or_default(),
    );
    out
}
