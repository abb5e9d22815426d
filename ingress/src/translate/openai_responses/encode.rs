//! IR to OpenAI Responses wire.

use serde_json::Value;

use super::wire;
use crate::translate::ir::{
    Block, DocumentSource, Effort, InstructionRole, Reasoning, Request, Response, ResponseFormat,
    Role, StopReason, Tool, ToolChoice, Warning,
};
use crate::translate::json::{to_vec, type_tag};
use crate::translate::openai_chat;
use crate::translate::{Context, Dialect};

fn input_part(
    block: &Block,
    assistant: bool,
    field: &str,
    warnings: &mut Vec<Warning>,
) -> Option<wire::ContentPart> {
    match block {
        Block::Text {
            text,
            cache_control,
        } => {
            if cache_control.is_some() {
                warnings.push(Warning::new(
                    format!("{field}.cache_control"),
                    "OpenAI has no cache_control; dropped",
                ));
            }
            Some(if assistant {
                wire::ContentPart::OutputText {
                    text: text.clone(),
                    annotations: None,
                }
            } else {
                wire::ContentPart::InputText { text: text.clone() }
            })
        }
        Block::Image { source, detail, .. } if !assistant => Some(wire::ContentPart::InputImage {
            image_url: Some(openai_chat::image_to_url(source)),
            detail: detail.clone(),
        }),
        Block::Document {
            source: DocumentSource::Text { data },
            title,
            extra,
            ..
        } if !assistant => {
            warn_document_extra(extra, || field.to_owned(), warnings);
            Some(wire::ContentPart::InputText {
                text: titled(title.as_deref(), data),
            })
        }
        Block::Document {
            source,
            title,
            extra,
            ..
        } if !assistant => {
            warn_document_extra(extra, || field.to_owned(), warnings);
            let mut file = source.to_openai_file(title.as_deref(), true)?;
            file.insert("type".into(), "input_file".into());
            Some(wire::ContentPart::Unknown(Value::Object(file)))
        }
        Block::Unknown {
            dialect: Dialect::OpenAiResponses,
            raw,
        } => Some(wire::ContentPart::Unknown(raw.clone())),
        Block::Unknown { raw, .. } => {
            warnings.push(Warning::new(
                field,
                format!(
                    "content type `{}` has no Responses equivalent; dropped",
                    type_tag(raw)
                ),
            ));
            None
        }
        _ => {
            warnings.push(Warning::new(
                field,
                "not expressible in this Responses item; dropped",
            ));
            None
        }
    }
}

/// A warning for each Anthropic document field (`citations`, `context`) an OpenAI dialect
/// cannot carry.
pub(crate) fn warn_document_extra(
    extra: &serde_json::Map<String, Value>,
    here: impl Fn() -> String,
    warnings: &mut Vec<Warning>,
) {
    for name in extra.keys() {
        warnings.push(Warning::new(
            format!("{}.{name}", here()),
            format!("the document's `{name}` has no OpenAI equivalent; dropped"),
        ));
    }
}

/// A plain-text document as text, under its title.
pub(crate) fn titled(title: Option<&str>, text: &str) -> String {
    match title {
        Some(title) => format!("{title}\n\n{text}"),
        None => text.to_owned(),
    }
}

fn message_item(role: &str, parts: Vec<wire::ContentPart>) -> wire::InputItem {
    let content = match parts.as_slice() {
        [wire::ContentPart::InputText { text }] => wire::MessageContent::Text(text.clone()),
        _ => wire::MessageContent::Parts(parts),
    };
    wire::InputItem::Message(wire::MessageItem {
        kind: None,
        role: role.to_owned(),
        content,
    })
}

pub fn request(request: &Request, upstream_model: &str, warnings: &mut Vec<Warning>) -> Vec<u8> {
    let mut items = Vec::new();
    for block in &request.system {
        let role = match block.role {
            InstructionRole::System => "system",
            InstructionRole::Developer => "developer",
        };
        items.push(message_item(
            role,
            vec![wire::ContentPart::InputText {
                text: block.text.clone(),
            }],
        ));
    }
    for (position, message) in request.messages.iter().enumerate() {
        let field = format!("messages[{position}].content");
        match message.role {
            Role::User | Role::System | Role::Developer => {
                let role = match message.role {
                    Role::System => "system",
                    Role::Developer => "developer",
                    _ => "user",
                };
                let mut parts = Vec::new();
                for (index, block) in message.content.iter().enumerate() {
                    let here = format!("{field}[{index}]");
                    if let Block::ToolResult {
                        tool_use_id,
                        content,
                        is_error,
                        ..
                    } = block
                    {
                        if *is_error {
                            warnings.push(Warning::new(
                                format!("{here}.is_error"),
                                "Responses cannot flag an error; dropped",
                            ));
                        }
                        let inner: Vec<wire::ContentPart> = content
                            .iter()
                            .enumerate()
                            .filter_map(|(inner, block)| {
                                input_part(
                                    block,
                                    false,
                                    &format!("{here}.content[{inner}]"),
                                    warnings,
                                )
                            })
                            .collect();
                        let output = match inner.as_slice() {
                            [wire::ContentPart::InputText { text }] => {
                                wire::FunctionOutput::Text(text.clone())
                            }
                            [] => wire::FunctionOutput::Text(String::new()),
                            _ => wire::FunctionOutput::Parts(inner),
                        };
                        items.push(wire::InputItem::FunctionCallOutput(
                            wire::FunctionCallOutputItem {
                                kind: "function_call_output".to_owned(),
                                call_id: tool_use_id.clone(),
                                output,
                            },
                        ));
                    } else if let Some(part) = input_part(block, false, &here, warnings) {
                        parts.push(part);
                    }
                }
                if !parts.is_empty() {
                    items.push(message_item(role, parts));
                }
            }
            Role::Assistant => {
                let mut parts = Vec::new();
                for (index, block) in message.content.iter().enumerate() {
                    let here = format!("{field}[{index}]");
                    let item = match block {
                        Block::Thinking {
                            thinking,
                            signature,
                        } => wire::InputItem::Reasoning(wire::ReasoningItem {
                            kind: "reasoning".to_owned(),
                            id: None,
                            summary: vec![wire::SummaryPart {
                                kind: "summary_text".to_owned(),
                                text: thinking.clone(),
                            }],
                            encrypted_content: signature.clone(),
                        }),
                        Block::ToolUse {
                            id, name, input, ..
                        } => wire::InputItem::FunctionCall(wire::FunctionCallItem {
                            kind: "function_call".to_owned(),
                            call_id: id.clone(),
                            name: name.clone(),
                            arguments: openai_chat::encode::arguments(input),
                            id: None,
                            status: None,
                            namespace: None,
                        }),
                        other => {
                            if let Some(part) = input_part(other, true, &here, warnings) {
                                parts.push(part);
                            }
                            continue;
                        }
                    };
                    if !parts.is_empty() {
                        items.push(message_item("assistant", std::mem::take(&mut parts)));
                    }
                    items.push(item);
                }
                if !parts.is_empty() {
                    items.push(message_item("assistant", parts));
                }
            }
        }
    }

    let params = &request.params;
    if !params.stop.is_empty() {
        warnings.push(Warning::new(
            "stop",
            "Responses has no stop sequences; dropped",
        ));
    }
    if params.seed.is_some() {
        warnings.push(Warning::new("seed", "Responses has no seed; dropped"));
    }
    if params.top_k.is_some() {
        warnings.push(Warning::new("top_k", "Responses has no top_k; dropped"));
    }
    let mut tools = Vec::new();
    for (position, tool) in request.tools.iter().enumerate() {
        match tool {
            Tool::Function {
                name,
                description,
                parameters,
                strict,
                ..
            } => {
                tools.push(wire::ResponsesTool::Function(wire::FunctionTool {
                    kind: "function".to_owned(),
                    name: name.clone(),
                    description: description.clone(),
                    parameters: (!parameters.is_null()).then(|| parameters.clone()),
                    strict: *strict,
                }));
            }
            Tool::Custom {
                name,
                description,
                format,
            } => {
                let mut tool = serde_json::json!({"type": "custom", "name": name});
                if let Some(object) = tool.as_object_mut() {
                    if let Some(description) = description {
                        object.insert("description".into(), description.clone().into());
                    }
                    if let Some(format) = format {
                        object.insert("format".into(), format.clone());
                    }
                }
                tools.push(wire::ResponsesTool::Unknown(tool));
            }
            Tool::Unknown {
                dialect: Dialect::OpenAiResponses,
                raw,
            } => tools.push(wire::ResponsesTool::Unknown(raw.clone())),
            Tool::Unknown { raw, .. } => warnings.push(Warning::new(
                format!("tools[{position}]"),
                format!(
                    "tool type `{}` has no Responses equivalent; dropped",
                    type_tag(raw)
                ),
            )),
        }
    }
    let tool_choice = request.tool_choice.as_ref().map(|choice| match choice {
        ToolChoice::Auto => wire::ResponsesToolChoice::Mode("auto".to_owned()),
        ToolChoice::None => wire::ResponsesToolChoice::Mode("none".to_owned()),
        ToolChoice::Required => wire::ResponsesToolChoice::Mode("required".to_owned()),
        ToolChoice::Named(name) => wire::ResponsesToolChoice::Named(wire::NamedToolChoice {
            kind: "function".to_owned(),
            name: name.clone(),
        }),
    });
    let effort = match request.reasoning {
        None | Some(Reasoning::Disabled) => None,
        Some(Reasoning::Effort(effort)) => Some(effort),
        Some(Reasoning::Budget(budget)) => Some(Effort::from_budget(budget)),
    };
    let format = params.response_format.as_ref().map(|format| match format {
        ResponseFormat::Text => wire::TextFormat::Text {},
        ResponseFormat::JsonObject => wire::TextFormat::JsonObject {},
        ResponseFormat::JsonSchema {
            name,
            schema,
            strict,
            description,
        } => wire::TextFormat::JsonSchema {
            name: name.clone(),
            schema: schema.clone(),
            description: description.clone(),
            strict: *strict,
        },
    });
    let wire = wire::ResponsesRequest {
        model: upstream_model.to_owned(),
        input: Some(wire::Input::Items(items)),
        instructions: None,
        max_output_tokens: params.max_tokens,
        temperature: params.temperature,
        top_p: params.top_p,
        tools: (!tools.is_empty()).then_some(tools),
        tool_choice,
        parallel_tool_calls: request.parallel_tool_calls,
        reasoning: effort.map(|effort| wire::ReasoningParam {
            effort: Some(effort.as_str().to_owned()),
            summary: None,
        }),
        text: (format.is_some() || params.verbosity.is_some()).then(|| wire::TextParam {
            format,
            verbosity: params.verbosity.clone(),
        }),
        metadata: params.metadata.clone(),
        user: crate::translate::ir::openai_user(params.user.as_deref(), "user", warnings),
        stream: request.stream.then_some(true),
        prompt_cache_key: params.prompt_cache_key.clone(),
    };
    if request.extra.is_empty() {
        return to_vec(&wire);
    }
    if request.extra.dialect != Some(Dialect::OpenAiResponses) {
        for key in request.extra.fields.keys() {
            warnings.push(Warning::new(
                key.clone(),
                "no Responses equivalent; dropped",
            ));
        }
        return to_vec(&wire);
    }
    let mut value = serde_json::to_value(&wire).unwrap_or(Value::Null);
    if let Some(object) = value.as_object_mut() {
        for (key, field) in &request.extra.fields {
            object.entry(key.clone()).or_insert_with(|| field.clone());
        }
    }
    to_vec(&value)
}

/// Deterministic item ids derived from the response id.
pub fn item_id(prefix: &str, context: &Context, output_index: usize) -> String {
    format!("{prefix}_{}_{output_index}", context.response_id)
}

pub fn status_of(stop_reason: &StopReason) -> (&'static str, Option<wire::IncompleteDetails>) {
    match stop_reason {
        StopReason::MaxTokens => (
            "incomplete",
            Some(wire::IncompleteDetails {
                reason: Some("max_output_tokens".to_owned()),
            }),
        ),
        StopReason::ContentFilter => (
            "incomplete",
            Some(wire::IncompleteDetails {
                reason: Some("content_filter".to_owned()),
            }),
        ),
        _ => ("completed", None),
    }
}

pub fn output_items(content: &[Block], context: &Context) -> Vec<wire::OutputItem> {
    let mut output = Vec::new();
    let mut parts = Vec::new();
    let flush = |parts: &mut Vec<wire::ContentPart>, output: &mut Vec<wire::OutputItem>| {
        if !parts.is_empty() {
            let index = output.len();
            output.push(wire::OutputItem::Message(wire::OutputMessage {
                kind: "message".to_owned(),
                id: item_id("msg", context, index),
                status: "completed".to_owned(),
                role: "assistant".to_owned(),
                content: std::mem::take(parts),
            }));
        }
    };
    for block in content {
        match block {
            Block::Text { text, .. } => {
                parts.push(wire::ContentPart::OutputText {
                    text: text.clone(),
                    annotations: Some(Vec::new()),
                });
            }
            Block::Thinking {
                thinking,
                signature,
            } => {
                flush(&mut parts, &mut output);
                let index = output.len();
                output.push(wire::OutputItem::Reasoning(wire::ReasoningItem {
                    kind: "reasoning".to_owned(),
                    id: Some(item_id("rs", context, index)),
                    summary: vec![wire::SummaryPart {
                        kind: "summary_text".to_owned(),
                        text: thinking.clone(),
                    }],
                    encrypted_content: signature.clone(),
                }));
            }
            Block::ToolUse {
                id, name, input, ..
            } => {
                flush(&mut parts, &mut output);
                let index = output.len();
                if super::is_freeform(&context.echo, name) {
                    output.push(wire::OutputItem::Unknown(serde_json::json!({
                        "type": "custom_tool_call",
                        "id": item_id("ctc", context, index),
                        "call_id": id,
                        "name": name,
                        "input": crate::translate::ir::Tool::freeform_input(input),
                        "status": "completed",
                    })));
                    continue;
                }
                output.push(wire::OutputItem::FunctionCall(wire::FunctionCallItem {
                    kind: "function_call".to_owned(),
                    call_id: id.clone(),
                    name: name.clone(),
                    arguments: openai_chat::encode::arguments(input),
                    id: Some(item_id("fc", context, index)),
                    status: Some("completed".to_owned()),
                    namespace: super::namespace_of(&context.echo, name),
                }));
            }
            _ => {}
        }
    }
    flush(&mut parts, &mut output);
    output
}

pub fn response(response: &Response, context: &Context) -> Vec<u8> {
    let (status, incomplete_details) = status_of(&response.stop_reason);
    to_vec(&wire::ResponseObject {
        id: context.response_id.clone(),
        object: "response".to_owned(),
        created_at: context.created,
        status: status.to_owned(),
        error: None,
        incomplete_details,
        model: context.model.clone(),
        output: output_items(&response.content, context),
        usage: Some(super::usage_to_wire(&response.usage)),
        echo: context.echo.clone(),
    })
}
