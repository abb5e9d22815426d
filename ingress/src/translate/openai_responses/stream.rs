//! OpenAI Responses stream events to and from the IR stream vocabulary.

use serde_json::{Value, json};

use super::wire;
use crate::translate::errors::openai_error_value;
use crate::translate::ir::{ApiError, BlockDelta, BlockStart, ErrorClass, StreamEvent, Usage};
use crate::translate::json::{parse_event, to_string, type_tag};
use crate::translate::sse::{SseEvent, write_event};
use crate::translate::{Context, TranslateError};

#[derive(Debug)]
enum Item {
    Message {
        id: String,
        text: String,
    },
    Reasoning {
        id: String,
        text: String,
        signature: Option<String>,
    },
    Function {
        id: String,
        call_id: String,
        name: String,
        arguments: String,
        /// A freeform tool's call: streamed as `custom_tool_call` input once the arguments
        /// (the function form's JSON) are complete.
        freeform: bool,
    },
}

/// Writes Responses events. Every text block becomes a message item, every thinking block a
/// reasoning item (its signature in `encrypted_content`, so a client that sends the item back
/// gives an Anthropic upstream the signed thinking it needs), every tool call a function call.
#[derive(Debug)]
pub struct StreamEncoder {
    context: Context,
    sequence: u64,
    started: bool,
    done: bool,
    usage: Usage,
    output: Vec<Value>,
    /// The IR block index and the item it feeds.
    open: Option<(usize, Item)>,
    saw_tool_calls: bool,
}

impl StreamEncoder {
    pub fn new(context: Context) -> Self {
        Self {
            context,
            sequence: 0,
            started: false,
            done: false,
            usage: Usage::default(),
            output: Vec::new(),
            open: None,
            saw_tool_calls: false,
        }
    }

    pub fn sequence(&self) -> u64 {
        self.sequence
    }

    fn emit(&mut self, out: &mut Vec<u8>, kind: &str, mut event: Value) {
        if let Some(object) = event.as_object_mut() {
            object.insert("type".to_owned(), Value::from(kind));
            object.insert("sequence_number".to_owned(), Value::from(self.sequence));
        }
        self.sequence += 1;
        write_event(out, Some(kind), &to_string(&event));
    }

    fn response_object(
        &self,
        status: &str,
        incomplete_details: Option<wire::IncompleteDetails>,
        usage: bool,
    ) -> Value {
        let mut object = json!({
            "id": self.context.response_id,
            "object": "response",
            "created_at": self.context.created,
            "status": status,
            "error": null,
            "incomplete_details": incomplete_details,
            "model": self.context.model,
            "output": self.output,
            "usage": if usage { serde_json::to_value(super::usage_to_wire(&self.usage)).unwrap_or(Value::Null) } else { Value::Null },
        });
        if let Some(fields) = object.as_object_mut() {
            for (field, value) in &self.context.echo {
                fields.insert(field.clone(), value.clone());
            }
        }
        object
    }

    fn start(&mut self, out: &mut Vec<u8>) {
        if self.started {
            return;
        }
        self.started = true;
        let response = self.response_object("in_progress", None, false);
        self.emit(out, "response.created", json!({ "response": response }));
        self.emit(out, "response.in_progress", json!({ "response": response }));
    }

    fn close(&mut self, out: &mut Vec<u8>) {
        let Some((_, item)) = self.open.take() else {
            return;
        };
        let output_index = self.output.len();
        let done_item = match item {
            Item::Message { id, text } => {
                let part = json!({"type": "output_text", "text": text, "annotations": []});
                self.emit(out, "response.output_text.done", json!({
                    "item_id": id, "output_index": output_index, "content_index": 0, "text": text, "logprobs": [],
                }));
                self.emit(out, "response.content_part.done", json!({
                    "item_id": id, "output_index": output_index, "content_index": 0, "part": part,
                }));
                json!({"type": "message", "id": id, "status": "completed", "role": "assistant", "content": [part]})
            }
            Item::Reasoning {
                id,
                text,
                signature,
            } => {
                let part = json!({"type": "summary_text", "text": text});
                self.emit(out, "response.reasoning_summary_text.done", json!({
                    "item_id": id, "output_index": output_index, "summary_index": 0, "text": text,
                }));
                self.emit(out, "response.reasoning_summary_part.done", json!({
                    "item_id": id, "output_index": output_index, "summary_index": 0, "part": part,
                }));
                let mut item = json!({"type": "reasoning", "id": id, "summary": [part]});
                if let (Some(signature), Some(object)) = (signature, item.as_object_mut()) {
                    object.insert("encrypted_content".to_owned(), Value::from(signature));
                }
                item
            }
            Item::Function {
                id,
                call_id,
                name,
                arguments,
                freeform: true,
            } => {
                let input = serde_json::from_str(&arguments).map_or(arguments, |value| {
                    crate::translate::ir::Tool::freeform_input(&value)
                });
                self.emit(
                    out,
                    "response.custom_tool_call_input.delta",
                    json!({"item_id": id, "output_index": output_index, "delta": input}),
                );
                self.emit(
                    out,
                    "response.custom_tool_call_input.done",
                    json!({"item_id": id, "output_index": output_index, "input": input}),
                );
                json!({"type": "custom_tool_call", "id": id, "call_id": call_id, "name": name, "input": input, "status": "completed"})
            }
            Item::Function {
                id,
                call_id,
                name,
                arguments,
                freeform: false,
            } => {
                self.emit(
                    out,
                    "response.function_call_arguments.done",
                    json!({
                        "item_id": id, "output_index": output_index, "arguments": arguments,
                    }),
                );
                let mut item = json!({"type": "function_call", "id": id, "call_id": call_id, "name": name, "arguments": arguments, "status": "completed"});
                if let Some(namespace) = super::namespace_of(&self.context.echo, &name) {
                    item["namespace"] = Value::String(namespace);
                }
                item
            }
        };
        self.emit(
            out,
            "response.output_item.done",
            json!({"output_index": output_index, "item": done_item}),
        );
        self.output.push(done_item);
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
                self.close(out);
                let output_index = self.output.len();
                let item = match block {
                    BlockStart::Text => {
                        let id = super::encode::item_id("msg", &self.context, output_index);
                        self.emit(out, "response.output_item.added", json!({
                            "output_index": output_index,
                            "item": {"type": "message", "id": id, "status": "in_progress", "role": "assistant", "content": []},
                        }));
                        self.emit(
                            out,
                            "response.content_part.added",
                            json!({
                                "item_id": id, "output_index": output_index, "content_index": 0,
                                "part": {"type": "output_text", "text": "", "annotations": []},
                            }),
                        );
                        Item::Message {
                            id,
                            text: String::new(),
                        }
                    }
                    BlockStart::Thinking => {
                        let id = super::encode::item_id("rs", &self.context, output_index);
                        self.emit(out, "response.output_item.added", json!({
                            "output_index": output_index, "item": {"type": "reasoning", "id": id, "summary": []},
                        }));
                        self.emit(
                            out,
                            "response.reasoning_summary_part.added",
                            json!({
                                "item_id": id, "output_index": output_index, "summary_index": 0,
                                "part": {"type": "summary_text", "text": ""},
                            }),
                        );
                        Item::Reasoning {
                            id,
                            text: String::new(),
                            signature: None,
                        }
                    }
                    BlockStart::RedactedThinking { .. } => return,
                    BlockStart::ToolUse { id: call_id, name } => {
                        self.saw_tool_calls = true;
                        let freeform = super::is_freeform(&self.context.echo, name);
                        let id = if freeform {
                            let id = super::encode::item_id("ctc", &self.context, output_index);
                            self.emit(out, "response.output_item.added", json!({
                                "output_index": output_index,
                                "item": {"type": "custom_tool_call", "id": id, "call_id": call_id, "name": name, "input": "", "status": "in_progress"},
                            }));
                            id
                        } else {
                            let id = super::encode::item_id("fc", &self.context, output_index);
                            let mut item = json!({"type": "function_call", "id": id, "call_id": call_id, "name": name, "arguments": "", "status": "in_progress"});
                            if let Some(namespace) = super::namespace_of(&self.context.echo, name) {
                                item["namespace"] = Value::String(namespace);
                            }
                            self.emit(
                                out,
                                "response.output_item.added",
                                json!({
                                    "output_index": output_index,
                                    "item": item,
                                }),
                            );
                            id
                        };
                        Item::Function {
                            id,
                            call_id: call_id.clone(),
                            name: name.clone(),
                            arguments: String::new(),
                            freeform,
                        }
                    }
                };
                self.open = Some((*index, item));
            }
            StreamEvent::BlockDelta { index, delta } => {
                let output_index = self.output.len();
                let Some((open_index, item)) = self.open.as_mut() else {
                    return;
                };
                if *open_index != *index {
                    return;
                }
                let (kind, body) = match (item, delta) {
                    (Item::Message { id, text }, BlockDelta::Text(delta)) => {
                        text.push_str(delta);
                        (
                            "response.output_text.delta",
                            json!({
                                "item_id": id, "output_index": output_index, "content_index": 0, "delta": delta, "logprobs": [],
                            }),
                        )
                    }
                    (Item::Reasoning { id, text, .. }, BlockDelta::Thinking(delta)) => {
                        text.push_str(delta);
                        (
                            "response.reasoning_summary_text.delta",
                            json!({
                                "item_id": id, "output_index": output_index, "summary_index": 0, "delta": delta,
                            }),
                        )
                    }
                    (Item::Reasoning { signature, .. }, BlockDelta::Signature(delta)) => {
                        signature.get_or_insert_with(String::new).push_str(delta);
                        return;
                    }
                    (
                        Item::Function {
                            arguments,
                            freeform: true,
                            ..
                        },
                        BlockDelta::ToolArgs(delta),
                    ) => {
                        arguments.push_str(delta);
                        return;
                    }
                    (Item::Function { id, arguments, .. }, BlockDelta::ToolArgs(delta)) => {
                        arguments.push_str(delta);
                        (
                            "response.function_call_arguments.delta",
                            json!({
                                "item_id": id, "output_index": output_index, "delta": delta,
                            }),
                        )
                    }
                    _ => return,
                };
                self.emit(out, kind, body);
            }
            StreamEvent::BlockStop { index } => {
                if self
                    .open
                    .as_ref()
                    .is_some_and(|(open_index, _)| open_index == index)
                {
                    self.close(out);
                }
            }
            StreamEvent::MessageStop { stop_reason } => {
                self.start(out);
                self.close(out);
                let (status, incomplete_details) = super::encode::status_of(stop_reason);
                let response = self.response_object(status, incomplete_details, true);
                let kind = if status == "completed" {
                    "response.completed"
                } else {
                    "response.incomplete"
                };
                self.emit(out, kind, json!({ "response": response }));
                self.done = true;
            }
            StreamEvent::Error(error) => {
                self.start(out);
                let bytes = error_events(error, &self.context.response_id, self.sequence);
                self.sequence += 2;
                out.extend_from_slice(&bytes);
                self.done = true;
            }
        }
    }

    pub fn finish(&mut self, _out: &mut Vec<u8>) {}
}

/// An `error` event and the `response.failed` that ends the stream.
pub fn error_events(error: &ApiError, response_id: &str, sequence: u64) -> Vec<u8> {
    let value = openai_error_value(error);
    let mut out = Vec::new();
    let code = value.code.clone().unwrap_or_else(|| value.kind.to_owned());
    write_event(
        &mut out,
        Some("error"),
        &to_string(&json!({
            "type": "error", "code": code, "message": value.message, "param": value.param, "sequence_number": sequence,
        })),
    );
    write_event(
        &mut out,
        Some("response.failed"),
        &to_string(&json!({
            "type": "response.failed",
            "sequence_number": sequence + 1,
            "response": {
                "id": response_id, "object": "response", "status": "failed",
                "error": {"code": code, "message": value.message}, "incomplete_details": null, "output": [], "usage": null,
            },
        })),
    );
    out
}

/// Reads Responses events from an upstream.
#[derive(Debug, Default)]
pub struct StreamDecoder {
    /// (output_index, content_index) to our block index.
    blocks: Vec<((u64, u64), usize)>,
    next_index: usize,
    saw_tool_calls: bool,
    done: bool,
}

fn index_of(value: &Value, key: &str) -> u64 {
    value.get(key).and_then(Value::as_u64).unwrap_or(0)
}

impl StreamDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    fn open(&mut self, key: (u64, u64), block: BlockStart, out: &mut Vec<StreamEvent>) {
        let index = self.next_index;
        self.next_index += 1;
        self.blocks.push((key, index));
        out.push(StreamEvent::BlockStart { index, block });
    }

    fn find(&self, key: (u64, u64)) -> Option<usize> {
        self.blocks
            .iter()
            .rev()
            .find(|(candidate, _)| *candidate == key)
            .map(|(_, index)| *index)
    }

    pub fn push(&mut self, event: &SseEvent) -> Result<Vec<StreamEvent>, TranslateError> {
        let mut out = Vec::new();
        if self.done || event.data.trim().is_empty() || event.data.trim() == "[DONE]" {
            return Ok(out);
        }
        let value: Value = parse_event(&event.data)?;
        let output_index = index_of(&value, "output_index");
        match type_tag(&value) {
            "response.created" => {
                let response = value.get("response").cloned().unwrap_or(Value::Null);
                out.push(StreamEvent::MessageStart {
                    id: response
                        .get("id")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned(),
                    model: response
                        .get("model")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned(),
                });
            }
            "response.output_item.added" => {
                let item = value.get("item").cloned().unwrap_or(Value::Null);
                match type_tag(&item) {
                    "function_call" => {
                        self.saw_tool_calls = true;
                        let id = item
                            .get("call_id")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_owned();
                        let name = item
                            .get("name")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_owned();
                        self.open(
                            (output_index, 0),
                            BlockStart::ToolUse { id, name },
                            &mut out,
                        );
                    }
                    "reasoning" => self.open((output_index, 0), BlockStart::Thinking, &mut out),
                    _ => {}
                }
            }
            "response.content_part.added" => {
                let key = (output_index, index_of(&value, "content_index"));
                self.open(key, BlockStart::Text, &mut out);
            }
            "response.output_text.delta" | "response.refusal.delta" => {
                let key = (output_index, index_of(&value, "content_index"));
                if let (Some(index), Some(delta)) =
                    (self.find(key), value.get("delta").and_then(Value::as_str))
                {
                    out.push(StreamEvent::BlockDelta {
                        index,
                        delta: BlockDelta::Text(delta.to_owned()),
                    });
                }
            }
            "response.content_part.done" => {
                if let Some(index) = self.find((output_index, index_of(&value, "content_index"))) {
                    out.push(StreamEvent::BlockStop { index });
                }
            }
            "response.reasoning_summary_text.delta" | "response.reasoning_text.delta" => {
                if let (Some(index), Some(delta)) = (
                    self.find((output_index, 0)),
                    value.get("delta").and_then(Value::as_str),
                ) {
                    out.push(StreamEvent::BlockDelta {
                        index,
                        delta: BlockDelta::Thinking(delta.to_owned()),
                    });
                }
            }
            "response.function_call_arguments.delta" => {
                if let (Some(index), Some(delta)) = (
                    self.find((output_index, 0)),
                    value.get("delta").and_then(Value::as_str),
                ) {
                    out.push(StreamEvent::BlockDelta {
                        index,
                        delta: BlockDelta::ToolArgs(delta.to_owned()),
                    });
                }
            }
            "response.output_item.done" => {
                let item = value.get("item").cloned().unwrap_or(Value::Null);
                if matches!(type_tag(&item), "function_call" | "reasoning")
                    && let Some(index) = self.find((output_index, 0))
                {
                    if let Some(signature) = item.get("encrypted_content").and_then(Value::as_str) {
                        out.push(StreamEvent::BlockDelta {
                            index,
                            delta: BlockDelta::Signature(signature.to_owned()),
                        });
                    }
                    out.push(StreamEvent::BlockStop { index });
                }
            }
            "response.completed" | "response.incomplete" => {
                self.done = true;
                let response: wire::ResponseObject =
                    serde_json::from_value(value.get("response").cloned().unwrap_or(Value::Null))
                        .map_err(|error| TranslateError::BadUpstream(error.to_string()))?;
                if let Some(usage) = &response.usage {
                    out.push(StreamEvent::Usage(super::usage_update(usage)));
                }
                let stop_reason = super::decode::stop_reason(
                    &response.status,
                    response
                        .incomplete_details
                        .as_ref()
                        .and_then(|details| details.reason.as_deref()),
                    self.saw_tool_calls,
                );
                out.push(StreamEvent::MessageStop { stop_reason });
            }
            "response.failed" | "error" => {
                self.done = true;
                let error = value
                    .get("response")
                    .and_then(|response| response.get("error"))
                    .unwrap_or(&value);
                let message = error
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("the upstream response failed");
                out.push(StreamEvent::Error(ApiError::new(ErrorClass::Api, message)));
            }
            _ => {}
        }
        Ok(out)
    }

    pub fn finish(&mut self) -> Vec<StreamEvent> {
        if self.done {
            return Vec::new();
        }
        self.done = true;
        vec![StreamEvent::Error(ApiError::new(
            ErrorClass::Api,
            "the upstream stream ended before response.completed",
        ))]
    }
}
