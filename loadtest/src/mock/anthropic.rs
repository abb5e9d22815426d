//! Anthropic Messages: `message` objects, the named-event SSE stream, and token counting.
//!
//! The stream is `message_start` (input usage, `output_tokens: 1`), `content_block_start`,
//! `ping`, the `content_block_delta` events (`text_delta`, or `input_json_delta` for a tool
//! call), `content_block_stop`, `message_delta` (`stop_reason` and the final cumulative usage,
//! input fields included as the current API sends them) and `message_stop`.

use axum::response::Response;
use serde::Serialize;
use serde_json::{Value, json};

use super::errors::Dialect;
use super::plan::{Plan, Usage, plan};
use super::prompt;
use super::server::Exchange;
use super::stream::SseWriter;

#[derive(Serialize)]
struct BlockDelta<Delta: Serialize> {
    #[serde(rename = "type")]
    kind: &'static str,
    index: u32,
    delta: Delta,
}

#[derive(Serialize)]
struct TextDelta<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    text: &'a str,
}

#[derive(Serialize)]
struct JsonDelta<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    partial_json: &'a str,
}

fn usage_json(usage: Usage, output_tokens: u32) -> Value {
    json!({
        "input_tokens": usage.uncached_input_tokens(),
        "cache_creation_input_tokens": usage.cache_write_tokens,
        "cache_read_input_tokens": usage.cache_read_tokens,
        "output_tokens": output_tokens,
    })
}

fn stop_reason(plan: &Plan<'_>) -> &'static str {
    if plan.tool_call.is_some() {
        "tool_use"
    } else if plan.truncated {
        "max_tokens"
    } else {
        "end_turn"
    }
}

pub fn answer(exchange: &Exchange<'_>) -> Response {
    let prompt = prompt::anthropic(exchange.body, exchange.model);
    let plan = plan(exchange, &prompt, Dialect::Anthropic);
    let id = exchange.shared.id("msg_01", exchange.request_number);
    let tool_use_id = exchange.shared.id("toolu_01", exchange.request_number);
    let tool_input = |call: &prompt::ToolCall| -> Value {
        serde_json::from_str(&call.arguments).unwrap_or_else(|_| json!({}))
    };
    if !exchange.stream {
        let content = match plan.tool_call {
            Some(call) => {
                json!([{"type": "tool_use", "id": tool_use_id, "name": call.name, "input": tool_input(call)}])
            }
            None => json!([{"type": "text", "text": plan.text()}]),
        };
        let message = json!({
            "id": id,
            "type": "message",
            "role": "assistant",
            "model": exchange.model,
            "content": content,
            "stop_reason": stop_reason(&plan),
            "stop_sequence": null,
            "usage": usage_json(plan.usage, plan.usage.output_tokens),
        });
        return exchange.json(
            serde_json::to_vec(&message).unwrap_or_default(),
            Dialect::Anthropic,
        );
    }

    let mut writer = SseWriter::with_capacity(plan.chunks as usize + 7, 120);
    writer.event(
        Some("message_start"),
        &json!({"type": "message_start", "message": {
            "id": id,
            "type": "message",
            "role": "assistant",
            "model": exchange.model,
            "content": [],
            "stop_reason": null,
            "stop_sequence": null,
            "usage": usage_json(plan.usage, 1),
        }}),
        false,
    );
    let block = match plan.tool_call {
        Some(call) => {
            json!({"type": "tool_use", "id": tool_use_id, "name": call.name, "input": {}})
        }
        None => json!({"type": "text", "text": ""}),
    };
    writer.event(
        Some("content_block_start"),
        &json!({"type": "content_block_start", "index": 0, "content_block": block}),
        false,
    );
    writer.event(Some("ping"), &json!({"type": "ping"}), false);
    if plan.tool_call.is_some() {
        for fragment in plan.argument_chunks() {
            let delta = BlockDelta {
                kind: "content_block_delta",
                index: 0,
                delta: JsonDelta {
                    kind: "input_json_delta",
                    partial_json: fragment,
                },
            };
            writer.event(Some(delta.kind), &delta, true);
        }
    } else {
        for text in plan.text_chunks() {
            let delta = BlockDelta {
                kind: "content_block_delta",
                index: 0,
                delta: TextDelta {
                    kind: "text_delta",
                    text,
                },
            };
            writer.event(Some(delta.kind), &delta, true);
        }
    }
    writer.event(
        Some("content_block_stop"),
        &json!({"type": "content_block_stop", "index": 0}),
        false,
    );
    writer.event(
        Some("message_delta"),
        &json!({
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason(&plan), "stop_sequence": null},
            "usage": usage_json(plan.usage, plan.usage.output_tokens),
        }),
        false,
    );
    writer.event(
        Some("message_stop"),
        &json!({"type": "message_stop"}),
        false,
    );
    exchange.sse(writer.finish(), Dialect::Anthropic)
}

/// `POST /v1/messages/count_tokens`: the prompt's tokens by the same rule as `usage`.
pub fn count_tokens(exchange: &Exchange<'_>) -> Response {
    let prompt = prompt::anthropic(exchange.body, exchange.model);
    let body = json!({"input_tokens": prompt.input_tokens});
    exchange.json(
        serde_json::to_vec(&body).unwrap_or_default(),
        Dialect::Anthropic,
    )
}
