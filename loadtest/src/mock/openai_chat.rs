//! OpenAI Chat Completions: `chat.completion` objects and `chat.completion.chunk` streams.
//!
//! The stream is: a first chunk with `delta.role`, the content (or tool-call argument) deltas, a
//! chunk with `finish_reason`, then — only with `stream_options.include_usage` — a chunk with
//! empty `choices` and the `usage`, then `data: [DONE]`. With `include_usage`, the other chunks
//! carry `"usage": null`, as OpenAI's do. This is the benchmarks' hot path, so every shape is a
//! typed struct serialized straight into the response buffer.

use axum::response::Response;
use serde::Serialize;
use serde_json::Value;

use super::errors::Dialect;
use super::plan::{Plan, Usage, plan};
use super::prompt;
use super::server::Exchange;
use super::stream::SseWriter;

#[derive(Serialize)]
pub struct ChatUsage {
    prompt_tokens: u32,
    completion_tokens: u32,
    total_tokens: u32,
    prompt_tokens_details: PromptTokensDetails,
    completion_tokens_details: CompletionTokensDetails,
}

#[derive(Serialize)]
struct PromptTokensDetails {
    cached_tokens: u32,
    audio_tokens: u32,
}

#[derive(Serialize)]
struct CompletionTokensDetails {
    reasoning_tokens: u32,
    audio_tokens: u32,
    accepted_prediction_tokens: u32,
    rejected_prediction_tokens: u32,
}

impl From<Usage> for ChatUsage {
    fn from(usage: Usage) -> Self {
        Self {
            prompt_tokens: usage.input_tokens,
            completion_tokens: usage.output_tokens,
            total_tokens: usage.total_tokens(),
            prompt_tokens_details: PromptTokensDetails {
                cached_tokens: usage.cache_read_tokens,
                audio_tokens: 0,
            },
            completion_tokens_details: CompletionTokensDetails {
                reasoning_tokens: 0,
                audio_tokens: 0,
                accepted_prediction_tokens: 0,
                rejected_prediction_tokens: 0,
            },
        }
    }
}

#[derive(Serialize)]
struct Completion<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: [CompletionChoice<'a>; 1],
    usage: ChatUsage,
    service_tier: &'static str,
    system_fingerprint: &'static str,
}

#[derive(Serialize)]
struct CompletionChoice<'a> {
    index: u32,
    message: AssistantMessage<'a>,
    logprobs: Option<()>,
    finish_reason: &'static str,
}

#[derive(Serialize)]
struct AssistantMessage<'a> {
    role: &'static str,
    content: Option<&'a str>,
    refusal: Option<()>,
    annotations: [(); 0],
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_calls: Option<[ToolCallOut<'a>; 1]>,
}

#[derive(Serialize)]
struct ToolCallOut<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    function: FunctionOut<'a>,
}

#[derive(Serialize)]
struct FunctionOut<'a> {
    name: &'a str,
    arguments: &'a str,
}

#[derive(Serialize)]
struct Chunk<'a, Delta: Serialize> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    service_tier: &'static str,
    system_fingerprint: &'static str,
    choices: &'a [ChunkChoice<Delta>],
    /// Absent without `include_usage`; `null` on every chunk but the last with it.
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<Option<&'a ChatUsage>>,
}

#[derive(Serialize)]
struct ChunkChoice<Delta: Serialize> {
    index: u32,
    delta: Delta,
    logprobs: Option<()>,
    finish_reason: Option<&'static str>,
}

#[derive(Serialize)]
struct RoleDelta<'a> {
    role: &'static str,
    content: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_calls: Option<[ToolCallStart<'a>; 1]>,
    refusal: Option<()>,
}

#[derive(Serialize)]
struct ToolCallStart<'a> {
    index: u32,
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    function: FunctionOut<'a>,
}

#[derive(Serialize)]
struct ContentDelta<'a> {
    content: &'a str,
}

#[derive(Serialize)]
struct ArgumentsDelta<'a> {
    tool_calls: [ArgumentsFragment<'a>; 1],
}

#[derive(Serialize)]
struct ArgumentsFragment<'a> {
    index: u32,
    function: ArgumentsOnly<'a>,
}

#[derive(Serialize)]
struct ArgumentsOnly<'a> {
    arguments: &'a str,
}

#[derive(Serialize)]
struct EmptyDelta {}

fn finish_reason(plan: &Plan<'_>) -> &'static str {
    if plan.tool_call.is_some() {
        "tool_calls"
    } else if plan.truncated {
        "length"
    } else {
        "stop"
    }
}

pub fn answer(exchange: &Exchange<'_>) -> Response {
    let prompt = prompt::openai_chat(exchange.body, exchange.model);
    let plan = plan(exchange, &prompt, Dialect::OpenAi);
    let id = exchange.shared.id("chatcmpl-", exchange.request_number);
    let call_id = plan
        .tool_call
        .map(|_| exchange.shared.id("call_", exchange.request_number));
    if exchange.stream {
        let include_usage = exchange
            .body
            .get("stream_options")
            .and_then(|options| options.get("include_usage"))
            .and_then(Value::as_bool)
            == Some(true);
        stream(exchange, &plan, &id, call_id.as_deref(), include_usage)
    } else {
        let completion = Completion {
            id: &id,
            object: "chat.completion",
            created: exchange.created(),
            model: exchange.model,
            choices: [CompletionChoice {
                index: 0,
                message: AssistantMessage {
                    role: "assistant",
                    content: plan.tool_call.is_none().then(|| plan.text()),
                    refusal: None,
                    annotations: [],
                    tool_calls: plan
                        .tool_call
                        .zip(call_id.as_deref())
                        .map(|(call, call_id)| {
                            [ToolCallOut {
                                id: call_id,
                                kind: "function",
                                function: FunctionOut {
                                    name: &call.name,
                                    arguments: &call.arguments,
                                },
                            }]
                        }),
                },
                logprobs: None,
                finish_reason: finish_reason(&plan),
            }],
            usage: plan.usage.into(),
            service_tier: "default",
            system_fingerprint: "fp_axongate_mock",
        };
        exchange.json(
            serde_json::to_vec(&completion).unwrap_or_default(),
            Dialect::OpenAi,
        )
    }
}

fn stream(
    exchange: &Exchange<'_>,
    plan: &Plan<'_>,
    id: &str,
    call_id: Option<&str>,
    include_usage: bool,
) -> Response {
    let header = ChunkHeader {
        id,
        created: exchange.created(),
        model: exchange.model,
    };
    let mut writer = SseWriter::with_capacity(plan.chunks as usize + 4, 220 + exchange.model.len());

    let first = RoleDelta {
        role: "assistant",
        content: if plan.tool_call.is_some() {
            None
        } else {
            Some("")
        },
        tool_calls: plan.tool_call.zip(call_id).map(|(call, call_id)| {
            [ToolCallStart {
                index: 0,
                id: call_id,
                kind: "function",
                function: FunctionOut {
                    name: &call.name,
                    arguments: "",
                },
            }]
        }),
        refusal: None,
    };
    writer.event(
        None,
        &header.chunk(&[choice(first, None)], include_usage.then_some(None)),
        false,
    );

    if plan.tool_call.is_some() {
        for fragment in plan.argument_chunks() {
            let delta = ArgumentsDelta {
                tool_calls: [ArgumentsFragment {
                    index: 0,
                    function: ArgumentsOnly {
                        arguments: fragment,
                    },
                }],
            };
            writer.event(
                None,
                &header.chunk(&[choice(delta, None)], include_usage.then_some(None)),
                true,
            );
        }
    } else {
        for text in plan.text_chunks() {
            let delta = ContentDelta { content: text };
            writer.event(
                None,
                &header.chunk(&[choice(delta, None)], include_usage.then_some(None)),
                true,
            );
        }
    }

    let last = [choice(EmptyDelta {}, Some(finish_reason(plan)))];
    writer.event(
        None,
        &header.chunk(&last, include_usage.then_some(None)),
        false,
    );
    if include_usage {
        let usage = ChatUsage::from(plan.usage);
        let no_choices: &[ChunkChoice<EmptyDelta>] = &[];
        writer.event(None, &header.chunk(no_choices, Some(Some(&usage))), false);
    }
    writer.data_line("[DONE]");
    exchange.sse(writer.finish(), Dialect::OpenAi)
}

struct ChunkHeader<'a> {
    id: &'a str,
    created: u64,
    model: &'a str,
}

impl ChunkHeader<'_> {
    fn chunk<'b, Delta: Serialize>(
        &'b self,
        choices: &'b [ChunkChoice<Delta>],
        usage: Option<Option<&'b ChatUsage>>,
    ) -> Chunk<'b, Delta> {
        Chunk {
            id: self.id,
            object: "chat.completion.chunk",
            created: self.created,
            model: self.model,
            service_tier: "default",
            system_fingerprint: "fp_axongate_mock",
            choices,
            usage,
        }
    }
}

fn choice<Delta: Serialize>(
    delta: Delta,
    finish_reason: Option<&'static str>,
) -> ChunkChoice<Delta> {
    ChunkChoice {
        index: 0,
        delta,
        logprobs: None,
        finish_reason,
    }
}
