//! OpenAI Responses: `response` objects and the typed SSE event stream.
//!
//! A text answer streams `response.created`, `response.in_progress`,
//! `response.output_item.added`, `response.content_part.added`, the `response.output_text.delta`
//! events, `response.output_text.done`, `response.content_part.done`,
//! `response.output_item.done` and `response.completed` (`response.incomplete` when
//! `max_output_tokens` cut it short), each with `event:` naming its `type` and a
//! `sequence_number` counting from 0. A tool call streams a `function_call` item with
//! `response.function_call_arguments.delta` / `.done` instead of the content part; a call to a
//! `custom` (freeform) tool streams a `custom_tool_call` item (with `input`, not `arguments`) and
//! `response.custom_tool_call_input.delta` / `.done`. There is no `[DONE]` line.

use axum::response::Response;
use serde::Serialize;
use serde_json::{Value, json};

use super::errors::Dialect;
use super::plan::{Plan, Usage, plan};
use super::prompt;
use super::server::Exchange;
use super::stream::SseWriter;

#[derive(Serialize)]
struct TextDelta<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    sequence_number: u32,
    item_id: &'a str,
    output_index: u32,
    content_index: u32,
    delta: &'a str,
    logprobs: [(); 0],
}

#[derive(Serialize)]
struct ArgumentsDelta<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    sequence_number: u32,
    item_id: &'a str,
    output_index: u32,
    delta: &'a str,
}

fn usage_json(usage: Usage) -> Value {
    json!({
        "input_tokens": usage.input_tokens,
        "input_tokens_details": {"cached_tokens": usage.cache_read_tokens},
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": usage.total_tokens(),
    })
}

struct Ids {
    response: String,
    item: String,
    call: String,
}

fn echo(body: &Value, name: &str, default: Value) -> Value {
    body.get(name).cloned().unwrap_or(default)
}

/// The `response` object; `output` and `usage` are filled for the final form only.
fn response_object(
    exchange: &Exchange<'_>,
    ids: &Ids,
    status: &str,
    output: Vec<Value>,
    usage: Option<Usage>,
) -> Value {
    let body = exchange.body;
    json!({
        "id": ids.response,
        "object": "response",
        "created_at": exchange.created(),
        "status": status,
        "error": null,
        "incomplete_details": if status == "incomplete" { json!({"reason": "max_output_tokens"}) } else { Value::Null },
        "instructions": echo(body, "instructions", Value::Null),
        "max_output_tokens": echo(body, "max_output_tokens", Value::Null),
        "model": exchange.model,
        "output": output,
        "parallel_tool_calls": echo(body, "parallel_tool_calls", Value::Bool(true)),
        "previous_response_id": echo(body, "previous_response_id", Value::Null),
        "reasoning": {"effort": null, "summary": null},
        "store": echo(body, "store", Value::Bool(true)),
        "temperature": echo(body, "temperature", json!(1.0)),
        "text": {"format": {"type": "text"}},
        "tool_choice": echo(body, "tool_choice", json!("auto")),
        "tools": echo(body, "tools", json!([])),
        "top_p": echo(body, "top_p", json!(1.0)),
        "truncation": "disabled",
        "usage": usage.map(usage_json),
        "user": null,
        "metadata": echo(body, "metadata", json!({})),
    })
}

fn output_text_part(text: &str) -> Value {
    json!({"type": "output_text", "text": text, "annotations": []})
}

fn message_item(ids: &Ids, status: &str, content: Vec<Value>) -> Value {
    json!({"type": "message", "id": ids.item, "status": status, "role": "assistant", "content": content})
}

fn function_call_item(ids: &Ids, plan: &Plan<'_>, status: &str, arguments: &str) -> Value {
    match plan.tool_call {
        Some(call) if call.freeform => {
            json!({"type": "custom_tool_call", "id": ids.item, "call_id": ids.call, "name": call.name, "input": arguments, "status": status})
        }
        call => {
            let name = call.map_or("", |call| call.name.as_str());
            json!({"type": "function_call", "id": ids.item, "call_id": ids.call, "name": name, "arguments": arguments, "status": status})
        }
    }
}

fn final_item(ids: &Ids, plan: &Plan<'_>) -> Value {
    match plan.tool_call {
        Some(call) => function_call_item(ids, plan, "completed", &call.arguments),
        None => {
            let status = if plan.truncated {
                "incomplete"
            } else {
                "completed"
            };
            message_item(ids, status, vec![output_text_part(plan.text())])
        }
    }
}

pub fn answer(exchange: &Exchange<'_>) -> Response {
    let prompt = prompt::openai_responses(exchange.body, exchange.model);
    let plan = plan(exchange, &prompt, Dialect::OpenAi);
    let number = exchange.request_number;
    let ids = Ids {
        response: exchange.shared.id("resp_", number),
        item: exchange.shared.id(
            match plan.tool_call {
                Some(call) if call.freeform => "ctc_",
                Some(_) => "fc_",
                None => "msg_",
            },
            number,
        ),
        call: exchange.shared.id("call_", number),
    };
    let status = if plan.truncated {
        "incomplete"
    } else {
        "completed"
    };
    if !exchange.stream {
        let response = response_object(
            exchange,
            &ids,
            status,
            vec![final_item(&ids, &plan)],
            Some(plan.usage),
        );
        return exchange.json(
            serde_json::to_vec(&response).unwrap_or_default(),
            Dialect::OpenAi,
        );
    }

    let mut writer = SseWriter::with_capacity(plan.chunks as usize + 10, 200);
    let mut sequence = 0;
    let mut next = || {
        let current = sequence;
        sequence += 1;
        current
    };
    let lifecycle = |writer: &mut SseWriter, kind: &str, sequence_number: u32, response: Value| {
        writer.event(
            Some(kind),
            &json!({"type": kind, "sequence_number": sequence_number, "response": response}),
            false,
        );
    };
    lifecycle(
        &mut writer,
        "response.created",
        next(),
        response_object(exchange, &ids, "in_progress", Vec::new(), None),
    );
    lifecycle(
        &mut writer,
        "response.in_progress",
        next(),
        response_object(exchange, &ids, "in_progress", Vec::new(), None),
    );

    let added_item = match plan.tool_call {
        Some(_) => function_call_item(&ids, &plan, "in_progress", ""),
        None => message_item(&ids, "in_progress", Vec::new()),
    };
    let kind = "response.output_item.added";
    writer.event(
        Some(kind),
        &json!({"type": kind, "sequence_number": next(), "output_index": 0, "item": added_item}),
        false,
    );

    if let Some(call) = plan.tool_call {
        let delta_kind = if call.freeform {
            "response.custom_tool_call_input.delta"
        } else {
            "response.function_call_arguments.delta"
        };
        for fragment in plan.argument_chunks() {
            let delta = ArgumentsDelta {
                kind: delta_kind,
                sequence_number: next(),
                item_id: &ids.item,
                output_index: 0,
                delta: fragment,
            };
            writer.event(Some(delta.kind), &delta, true);
        }
        if call.freeform {
            let kind = "response.custom_tool_call_input.done";
            writer.event(
                Some(kind),
                &json!({"type": kind, "sequence_number": next(), "item_id": ids.item, "output_index": 0, "input": call.arguments}),
                false,
            );
        } else {
            let kind = "response.function_call_arguments.done";
            writer.event(
                Some(kind),
                &json!({"type": kind, "sequence_number": next(), "item_id": ids.item, "output_index": 0, "name": call.name, "arguments": call.arguments}),
                false,
            );
        }
    } else {
        let kind = "response.content_part.added";
        writer.event(
            Some(kind),
            &json!({"type": kind, "sequence_number": next(), "item_id": ids.item, "output_index": 0, "content_index": 0, "part": output_text_part("")}),
            false,
        );
        for text in plan.text_chunks() {
            let delta = TextDelta {
                kind: "response.output_text.delta",
                sequence_number: next(),
                item_id: &ids.item,
                output_index: 0,
                content_index: 0,
                delta: text,
                logprobs: [],
            };
            writer.event(Some(delta.kind), &delta, true);
        }
        let kind = "response.output_text.done";
        writer.event(
            Some(kind),
            &json!({"type": kind, "sequence_number": next(), "item_id": ids.item, "output_index": 0, "content_index": 0, "text": plan.text(), "logprobs": []}),
            false,
        );
        let kind = "response.content_part.done";
        writer.event(
            Some(kind),
            &json!({"type": kind, "sequence_number": next(), "item_id": ids.item, "output_index": 0, "content_index": 0, "part": output_text_part(plan.text())}),
            false,
        );
    }
    let item = final_item(&ids, &plan);
    let kind = "response.output_item.done";
    writer.event(
        Some(kind),
        &json!({"type": kind, "sequence_number": next(), "output_index": 0, "item": item}),
        false,
    );
    let kind = if plan.truncated {
        "response.incomplete"
    } else {
        "response.completed"
    };
    lifecycle(
        &mut writer,
        kind,
        next(),
        response_object(exchange, &ids, status, vec![item], Some(plan.usage)),
    );
    exchange.sse(writer.finish(), Dialect::OpenAi)
}
