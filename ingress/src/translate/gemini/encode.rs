//! IR to Gemini wire.

use std::collections::HashMap;

use serde_json::{Map, Value, json};
use shared::config::ReasoningSupport;

use super::{FOREIGN_CALL_SIGNATURE, MAX_STOP_SEQUENCES, is_generated_id, wire};
use crate::translate::ir::{
    Block, DocumentSource, Effort, FREEFORM_ARGUMENT, ImageSource, Reasoning, Request, Response,
    ResponseFormat, Role, Tool, ToolChoice, Warning,
};
use crate::translate::json::to_vec;
use crate::translate::{Context, Dialect, Target};

/// A tool call's arguments as Gemini's `args` object: a freeform call's raw text (or any
/// other non-object) goes in the one string argument its function has.
pub(super) fn args(input: &Value) -> Value {
    match input {
        Value::Object(_) => input.clone(),
        Value::String(text) => match serde_json::from_str::<Value>(text) {
            Ok(parsed @ Value::Object(_)) => parsed,
            _ => json!({ FREEFORM_ARGUMENT: text }),
        },
        other => json!({ FREEFORM_ARGUMENT: other }),
    }
}

/// An image's MIME type from its URL's extension (Gemini wants one with every file).
fn mime_from_url(url: &str) -> &'static str {
    let path = url
        .split(['?', '#'])
        .next()
        .unwrap_or(url)
        .to_ascii_lowercase();
    match path.rsplit('.').next() {
        Some("png") => "image/png",
        Some("gif") => "image/gif",
        Some("webp") => "image/webp",
        Some("heic") => "image/heic",
        Some("pdf") => "application/pdf",
        _ => "image/jpeg",
    }
}

fn text_part(text: &str) -> wire::Part {
    wire::Part {
        text: Some(text.to_owned()),
        ..wire::Part::default()
    }
}

/// Parts of one message or answer. `names` gives each tool call id its function's name
/// (Gemini's results name the function, not the call). A signature-only thinking block goes
/// onto the part after it.
fn parts(
    blocks: &[Block],
    field: &str,
    names: &HashMap<String, String>,
    warnings: &mut Vec<Warning>,
) -> Vec<wire::Part> {
    let mut out: Vec<wire::Part> = Vec::with_capacity(blocks.len());
    let mut pending_signature: Option<String> = None;
    for (position, block) in blocks.iter().enumerate() {
        let here = || format!("{field}[{position}]");
        if block.cache_control().is_some() {
            warnings.push(Warning::new(
                format!("{}.cache_control", here()),
                "Gemini caches implicitly and has no cache_control; dropped",
            ));
        }
        let part = match block {
            Block::Text { text, .. } => text_part(text),
            Block::Image { source, .. } => image_part(source),
            Block::Document {
                source,
                title,
                extra,
                ..
            } => {
                for name in extra.keys() {
                    warnings.push(Warning::new(
                        format!("{}.{name}", here()),
                        "Gemini documents have no such field; dropped",
                    ));
                }
                match source {
                    DocumentSource::Base64 { media_type, data } => wire::Part {
                        inline_data: Some(wire::Blob {
                            mime_type: media_type.clone(),
                            data: data.clone(),
                        }),
                        ..wire::Part::default()
                    },
                    DocumentSource::Text { data } => match title {
                        Some(title) => text_part(&format!("{title}\n\n{data}")),
                        None => text_part(data),
                    },
                    DocumentSource::Url { url } => wire::Part {
                        file_data: Some(wire::FileData {
                            mime_type: Some("application/pdf".to_owned()),
                            file_uri: url.clone(),
                        }),
                        ..wire::Part::default()
                    },
                    DocumentSource::FileId { .. } => {
                        warnings.push(Warning::new(
                            here(),
                            "an OpenAI file id means nothing to Gemini; dropped",
                        ));
                        continue;
                    }
                }
            }
            Block::ToolUse {
                id, name, input, ..
            } => wire::Part {
                function_call: Some(wire::FunctionCall {
                    id: (!is_generated_id(id)).then(|| id.clone()),
                    name: name.clone(),
                    args: Some(args(input)),
                }),
                ..wire::Part::default()
            },
            Block::ToolResult {
                tool_use_id,
                content,
                is_error,
                ..
            } => {
                let mut text = String::new();
                for (inner, block) in content.iter().enumerate() {
                    match block {
                        Block::Text { text: piece, .. } => {
                            if !text.is_empty() {
                                text.push('\n');
                            }
                            text.push_str(piece);
                        }
                        _ => warnings.push(Warning::new(
                            format!("{}.content[{inner}]", here()),
                            "only text is carried in a Gemini function response; dropped",
                        )),
                    }
                }
                let name = names.get(tool_use_id).cloned().unwrap_or_else(|| {
                    warnings.push(Warning::new(
                        format!("{}.tool_use_id", here()),
                        "no earlier call with this id; the result is sent under the id as the function name",
                    ));
                    tool_use_id.clone()
                });
                wire::Part {
                    function_response: Some(wire::FunctionResponse {
                        id: (!is_generated_id(tool_use_id)).then(|| tool_use_id.clone()),
                        name,
                        response: if *is_error {
                            json!({"error": text})
                        } else {
                            json!({"output": text})
                        },
                        parts: None,
                    }),
                    ..wire::Part::default()
                }
            }
            Block::Thinking {
                thinking,
                signature,
            } => {
                if thinking.is_empty() {
                    if signature.is_some() {
                        pending_signature = signature.clone();
                    }
                    continue;
                }
                wire::Part {
                    text: Some(thinking.clone()),
                    thought: Some(true),
                    thought_signature: signature.clone(),
                    ..wire::Part::default()
                }
            }
            Block::RedactedThinking { .. } => {
                warnings.push(Warning::new(
                    here(),
                    "Anthropic's redacted thinking cannot be read by Gemini; dropped",
                ));
                continue;
            }
            Block::Unknown {
                dialect: Dialect::Gemini,
                raw,
            } => wire::Part {
                other: raw.as_object().cloned().unwrap_or_default(),
                ..wire::Part::default()
            },
            Block::Unknown { .. } => {
                warnings.push(Warning::new(here(), "no Gemini equivalent; dropped"));
                continue;
            }
        };
        let mut part = part;
        if let Some(signature) = pending_signature.take() {
            part.thought_signature = Some(signature);
        }
        out.push(part);
    }
    if let Some(signature) = pending_signature {
        out.push(wire::Part {
            text: Some(String::new()),
            thought_signature: Some(signature),
            ..wire::Part::default()
        });
    }
    out
}

fn image_part(source: &ImageSource) -> wire::Part {
    match source {
        ImageSource::Base64 { media_type, data } => wire::Part {
            inline_data: Some(wire::Blob {
                mime_type: media_type.clone(),
                data: data.clone(),
            }),
            ..wire::Part::default()
        },
        ImageSource::Url { url } => wire::Part {
            file_data: Some(wire::FileData {
                mime_type: Some(mime_from_url(url).to_owned()),
                file_uri: url.clone(),
            }),
            ..wire::Part::default()
        },
    }
}

fn function_declaration(
    tool: &Tool,
    position: usize,
    warnings: &mut Vec<Warning>,
) -> Option<Value> {
    match tool {
        Tool::Function {
            name,
            description,
            parameters,
            strict,
            ..
        } => {
            if *strict == Some(true) {
                warnings.push(Warning::new(
                    format!("tools[{position}].strict"),
                    "Gemini has no strict mode for function arguments; dropped",
                ));
            }
            let mut declaration = Map::new();
            declaration.insert("name".into(), name.clone().into());
            if let Some(description) = description {
                declaration.insert("description".into(), description.clone().into());
            }
            // Full JSON Schema (what every other dialect sends) goes in `parametersJsonSchema`;
            // `parameters` takes only Gemini's OpenAPI subset.
            if !parameters.is_null() {
                declaration.insert("parametersJsonSchema".into(), parameters.clone());
            }
            Some(Value::Object(declaration))
        }
        Tool::Custom { name, .. } => {
            let (description, schema) = tool.freeform_as_function(position, warnings);
            Some(json!({"name": name, "description": description, "parametersJsonSchema": schema}))
        }
        Tool::Unknown { .. } => None,
    }
}

/// The tool call ids of a conversation, each with its function's name.
fn call_names(request: &Request) -> HashMap<String, String> {
    request
        .messages
        .iter()
        .flat_map(|message| &message.content)
        .filter_map(|block| match block {
            Block::ToolUse { id, name, .. } => Some((id.clone(), name.clone())),
            _ => None,
        })
        .collect()
}

fn thinking_config(
    request: &Request,
    target: &Target<'_>,
    warnings: &mut Vec<Warning>,
) -> Option<Value> {
    let reasoning = request.reasoning.as_ref()?;
    match (target.reasoning, reasoning) {
        (ReasoningSupport::None, _) => None,
        // Gemini 3 takes a thinking level and cannot turn thinking off (Thinking guide).
        (ReasoningSupport::Effort, Reasoning::Disabled) => {
            warnings.push(Warning::new(
                "reasoning",
                format!(
                    "{} cannot turn thinking off; it thinks at its default level",
                    target.model
                ),
            ));
            None
        }
        (ReasoningSupport::Effort, Reasoning::Effort(Effort::Minimal))
            if super::super::target::gemini_pro(target.model) =>
        {
            warnings.push(Warning::new(
                "reasoning",
                format!(
                    "{} has no minimal thinking level; sent as low",
                    target.model
                ),
            ));
            Some(json!({"thinkingLevel": "low", "includeThoughts": true}))
        }
        (ReasoningSupport::Effort, Reasoning::Effort(effort)) => {
            Some(json!({"thinkingLevel": effort.as_str(), "includeThoughts": true}))
        }
        (ReasoningSupport::Effort, Reasoning::Budget(budget)) => Some(
            json!({"thinkingLevel": Effort::from_budget(*budget).as_str(), "includeThoughts": true}),
        ),
        // Gemini 2.5 Pro only works in thinking mode: a budget of 0 is refused (Thinking guide).
        (ReasoningSupport::Budget, Reasoning::Disabled)
            if super::super::target::gemini_pro(target.model) =>
        {
            warnings.push(Warning::new(
                "reasoning",
                format!(
                    "{} cannot turn thinking off; it thinks with a dynamic budget",
                    target.model
                ),
            ));
            None
        }
        (ReasoningSupport::Budget, Reasoning::Disabled) => Some(json!({"thinkingBudget": 0})),
        (ReasoningSupport::Budget, Reasoning::Effort(effort)) => {
            Some(json!({"thinkingBudget": effort.budget_tokens(), "includeThoughts": true}))
        }
        (ReasoningSupport::Budget, Reasoning::Budget(budget)) => {
            Some(json!({"thinkingBudget": budget, "includeThoughts": true}))
        }
    }
}

pub fn request(request: &Request, target: &Target<'_>, warnings: &mut Vec<Warning>) -> Vec<u8> {
    let names = call_names(request);
    let mut system: Vec<wire::Part> = request
        .system
        .iter()
        .enumerate()
        .map(|(position, block)| {
            if block.cache_control.is_some() {
                warnings.push(Warning::new(
                    format!("system[{position}].cache_control"),
                    "Gemini caches implicitly and has no cache_control; dropped",
                ));
            }
            text_part(&block.text)
        })
        .collect();
    let foreign_calls = super::super::target::gemini_requires_signatures(target.model);
    let mut contents: Vec<wire::Content> = Vec::with_capacity(request.messages.len());
    for (position, message) in request.messages.iter().enumerate() {
        let field = format!("messages[{position}].content");
        let role = match message.role {
            Role::User => "user",
            Role::Assistant => "model",
            Role::System | Role::Developer => {
                warnings.push(Warning::new(
                    format!("messages[{position}]"),
                    "Gemini has instructions only before the conversation; moved into systemInstruction",
                ));
                system.extend(parts(&message.content, &field, &names, warnings));
                continue;
            }
        };
        let mut parts = parts(&message.content, &field, &names, warnings);
        if role == "model"
            && foreign_calls
            && let Some(first_call) = parts.iter_mut().find(|part| part.function_call.is_some())
            && first_call.thought_signature.is_none()
        {
            first_call.thought_signature = Some(FOREIGN_CALL_SIGNATURE.to_owned());
        }
        if parts.is_empty() {
            continue;
        }
        // Gemini wants every result of one step in one turn: a run of one role is one content.
        match contents.last_mut() {
            Some(last) if last.role.as_deref() == Some(role) => last.parts.append(&mut parts),
            _ => contents.push(wire::Content {
                role: Some(role.to_owned()),
                parts,
            }),
        }
    }
    let mut body = Map::new();
    body.insert(
        "contents".into(),
        serde_json::to_value(&contents).unwrap_or_default(),
    );
    if !system.is_empty() {
        body.insert("systemInstruction".into(), json!({"parts": system}));
    }
    let mut tools = Vec::new();
    let declarations: Vec<Value> = request
        .tools
        .iter()
        .enumerate()
        .filter_map(|(position, tool)| function_declaration(tool, position, warnings))
        .collect();
    if !declarations.is_empty() {
        tools.push(json!({"functionDeclarations": declarations}));
    }
    for (position, tool) in request.tools.iter().enumerate() {
        match tool {
            Tool::Unknown {
                dialect: Dialect::Gemini,
                raw,
            } => tools.push(raw.clone()),
            Tool::Unknown { .. } => warnings.push(Warning::new(
                format!("tools[{position}]"),
                "a provider tool Gemini does not have; dropped",
            )),
            _ => {}
        }
    }
    if !tools.is_empty() {
        body.insert("tools".into(), Value::Array(tools));
    }
    if let Some(choice) = &request.tool_choice {
        let config = match choice {
            ToolChoice::Auto => json!({"mode": "AUTO"}),
            ToolChoice::None => json!({"mode": "NONE"}),
            ToolChoice::Required => json!({"mode": "ANY"}),
            ToolChoice::Named(name) => json!({"mode": "ANY", "allowedFunctionNames": [name]}),
        };
        body.insert(
            "toolConfig".into(),
            json!({"functionCallingConfig": config}),
        );
    }
    if request.parallel_tool_calls == Some(false) {
        warnings.push(Warning::new(
            "parallel_tool_calls",
            "Gemini cannot be limited to one call per turn; dropped",
        ));
    }
    let params = &request.params;
    let mut config = Map::new();
    if let Some(value) = params.temperature {
        config.insert("temperature".into(), value.into());
    }
    if let Some(value) = params.top_p {
        config.insert("topP".into(), value.into());
    }
    if let Some(value) = params.top_k {
        config.insert("topK".into(), value.into());
    }
    if let Some(value) = params.max_tokens {
        config.insert("maxOutputTokens".into(), value.into());
    }
    if !params.stop.is_empty() {
        if params.stop.len() > MAX_STOP_SEQUENCES {
            warnings.push(Warning::new(
                "stop",
                format!(
                    "Gemini takes at most {MAX_STOP_SEQUENCES} stop sequences; the rest dropped"
                ),
            ));
        }
        let stop: Vec<&String> = params.stop.iter().take(MAX_STOP_SEQUENCES).collect();
        config.insert("stopSequences".into(), json!(stop));
    }
    if let Some(seed) = params.seed {
        config.insert("seed".into(), seed.into());
    }
    match &params.response_format {
        None | Some(ResponseFormat::Text) => {}
        Some(ResponseFormat::JsonObject) => {
            config.insert("responseMimeType".into(), "application/json".into());
        }
        Some(ResponseFormat::JsonSchema { schema, .. }) => {
            config.insert("responseMimeType".into(), "application/json".into());
            config.insert("responseJsonSchema".into(), schema.clone());
        }
    }
    if let Some(thinking) = thinking_config(request, target, warnings) {
        config.insert("thinkingConfig".into(), thinking);
    }
    for (present, field, why) in [
        (
            params.user.is_some(),
            "user",
            "Gemini has no end-user id; dropped",
        ),
        (
            params.metadata.is_some(),
            "metadata",
            "Gemini has no request metadata; dropped",
        ),
        (
            params.prompt_cache_key.is_some(),
            "prompt_cache_key",
            "Gemini caches implicitly and takes no cache key; dropped",
        ),
        (
            params.verbosity.is_some(),
            "verbosity",
            "Gemini has no output verbosity; dropped",
        ),
    ] {
        if present {
            warnings.push(Warning::new(field, why));
        }
    }
    if request.extra.dialect == Some(Dialect::Gemini) {
        for (key, value) in &request.extra.fields {
            match key.strip_prefix("generationConfig.") {
                Some(inner) => {
                    config
                        .entry(inner.to_owned())
                        .or_insert_with(|| value.clone());
                }
                None => {
                    body.entry(key.clone()).or_insert_with(|| value.clone());
                }
            }
        }
    } else {
        for key in request.extra.fields.keys() {
            warnings.push(Warning::new(key.clone(), "no Gemini equivalent; dropped"));
        }
    }
    if !config.is_empty() {
        body.insert("generationConfig".into(), Value::Object(config));
    }
    to_vec(&Value::Object(body))
}

/// An answer's parts for a Gemini client.
pub fn response_parts(content: &[Block]) -> Vec<wire::Part> {
    let content: Vec<Block> = content
        .iter()
        .filter(|block| {
            !matches!(
                block,
                Block::ToolResult { .. } | Block::RedactedThinking { .. }
            )
        })
        .cloned()
        .collect();
    parts(&content, "content", &HashMap::new(), &mut Vec::new())
}

pub fn response(response: &Response, context: &Context) -> Vec<u8> {
    let body = json!({
        "candidates": [{
            "content": {"parts": response_parts(&response.content), "role": "model"},
            "finishReason": super::stop_reason_to_wire(&response.stop_reason),
            "index": 0,
        }],
        "usageMetadata": super::usage_to_wire(&response.usage),
        "modelVersion": context.model,
        "responseId": context.response_id,
    });
    to_vec(&body)
}
