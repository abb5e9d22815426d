//! Translation cost per direction: a typical request, a ~2k-token response, one stream chunk.

use criterion::{Criterion, black_box, criterion_group, criterion_main};
use ingress::translate::{
    Context, Dialect, StreamTranslator, Target, decode_request, decode_response, encode_request,
    encode_response,
};
use serde_json::json;

fn context() -> Context {
    Context {
        response_id: "gw_1".into(),
        created: 1_700_000_000,
        model: "gw-model".into(),
        include_usage: true,
        echo: serde_json::Map::new(),
    }
}

fn weather_tool_schema() -> serde_json::Value {
    json!({"type": "object", "properties": {"city": {"type": "string", "description": "City name"}, "unit": {"type": "string", "enum": ["c", "f"]}}, "required": ["city"]})
}

/// A coding-agent-like turn: system prompt, a few turns, a tool call and its result, two tools.
fn openai_request() -> Vec<u8> {
    serde_json::to_vec(&json!({
        "model": "gw", "stream": true, "stream_options": {"include_usage": true}, "max_completion_tokens": 4096, "temperature": 0.2,
        "messages": [
            {"role": "system", "content": "You are a careful coding assistant. ".repeat(20)},
            {"role": "user", "content": "Please look at the failing test in src/lib.rs and fix it."},
            {"role": "assistant", "content": "Let me read the file.", "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "read_file", "arguments": "{\"path\":\"src/lib.rs\"}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "fn add(a: i32, b: i32) -> i32 { a - b }\n".repeat(30)},
            {"role": "user", "content": "Go ahead."}
        ],
        "tools": [
            {"type": "function", "function": {"name": "read_file", "description": "Read a file", "parameters": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}}},
            {"type": "function", "function": {"name": "get_weather", "description": "Weather", "parameters": weather_tool_schema()}}
        ],
        "tool_choice": "auto"
    }))
    .unwrap_or_default()
}

fn anthropic_request() -> Vec<u8> {
    serde_json::to_vec(&json!({
        "model": "gw", "stream": true, "max_tokens": 4096,
        "system": [{"type": "text", "text": "You are a careful coding assistant. ".repeat(20), "cache_control": {"type": "ephemeral"}}],
        "messages": [
            {"role": "user", "content": "Please look at the failing test in src/lib.rs and fix it."},
            {"role": "assistant", "content": [{"type": "text", "text": "Let me read the file."}, {"type": "tool_use", "id": "toolu_1", "name": "read_file", "input": {"path": "src/lib.rs"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "fn add(a: i32, b: i32) -> i32 { a - b }\n".repeat(30)}]},
            {"role": "user", "content": "Go ahead."}
        ],
        "tools": [
            {"name": "read_file", "description": "Read a file", "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}},
            {"name": "get_weather", "description": "Weather", "input_schema": weather_tool_schema()}
        ],
        "tool_choice": {"type": "auto"}
    }))
    .unwrap_or_default()
}

fn responses_request() -> Vec<u8> {
    serde_json::to_vec(&json!({
        "model": "gw", "stream": true, "max_output_tokens": 4096,
        "instructions": "You are a careful coding assistant. ".repeat(20),
        "input": [
            {"role": "user", "content": "Please look at the failing test in src/lib.rs and fix it."},
            {"type": "function_call", "call_id": "call_1", "name": "read_file", "arguments": "{\"path\":\"src/lib.rs\"}"},
            {"type": "function_call_output", "call_id": "call_1", "output": "fn add(a: i32, b: i32) -> i32 { a - b }\n".repeat(30)},
            {"role": "user", "content": "Go ahead."}
        ],
        "tools": [{"type": "function", "name": "read_file", "description": "Read a file", "parameters": {"type": "object", "properties": {"path": {"type": "string"}}}}]
    }))
    .unwrap_or_default()
}

/// About 2,000 tokens of text (roughly 8,000 characters).
fn long_text() -> String {
    "The quick brown fox jumps over the lazy dog while the compiler checks every borrow. "
        .repeat(95)
}

fn anthropic_response() -> Vec<u8> {
    serde_json::to_vec(&json!({
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
        "content": [{"type": "text", "text": long_text()}, {"type": "tool_use", "id": "toolu_1", "name": "read_file", "input": {"path": "src/lib.rs"}}],
        "stop_reason": "tool_use", "stop_sequence": null,
        "usage": {"input_tokens": 1200, "output_tokens": 2000, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 800}
    }))
    .unwrap_or_default()
}

fn openai_response() -> Vec<u8> {
    serde_json::to_vec(&json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": long_text(), "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "read_file", "arguments": "{\"path\":\"src/lib.rs\"}"}}]}, "finish_reason": "tool_calls"}],
        "usage": {"prompt_tokens": 2000, "completion_tokens": 2000, "total_tokens": 4000, "prompt_tokens_details": {"cached_tokens": 800}}
    }))
    .unwrap_or_default()
}

fn requests(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group("request");
    for (name, client, upstream, body) in [
        (
            "openai_chat->anthropic",
            Dialect::OpenAiChat,
            Dialect::Anthropic,
            openai_request(),
        ),
        (
            "anthropic->openai_chat",
            Dialect::Anthropic,
            Dialect::OpenAiChat,
            anthropic_request(),
        ),
        (
            "anthropic->anthropic",
            Dialect::Anthropic,
            Dialect::Anthropic,
            anthropic_request(),
        ),
        (
            "responses->anthropic",
            Dialect::OpenAiResponses,
            Dialect::Anthropic,
            responses_request(),
        ),
        (
            "responses->openai_chat",
            Dialect::OpenAiResponses,
            Dialect::OpenAiChat,
            responses_request(),
        ),
    ] {
        group.bench_function(name, |bencher| {
            bencher.iter(|| {
                let request = decode_request(client, black_box(&body)).unwrap_or_default();
                black_box(
                    encode_request(
                        upstream,
                        &request,
                        &Target::named(upstream, "upstream-model"),
                    )
                    .map(|encoded| encoded.body.len())
                    .unwrap_or(0),
                )
            });
        });
    }
    group.finish();
}

fn responses(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group("response_2k_tokens");
    let context = context();
    for (name, upstream, client, body) in [
        (
            "anthropic->openai_chat",
            Dialect::Anthropic,
            Dialect::OpenAiChat,
            anthropic_response(),
        ),
        (
            "anthropic->responses",
            Dialect::Anthropic,
            Dialect::OpenAiResponses,
            anthropic_response(),
        ),
        (
            "openai_chat->anthropic",
            Dialect::OpenAiChat,
            Dialect::Anthropic,
            openai_response(),
        ),
        (
            "openai_chat->responses",
            Dialect::OpenAiChat,
            Dialect::OpenAiResponses,
            openai_response(),
        ),
    ] {
        group.bench_function(name, |bencher| {
            bencher.iter(|| {
                let response = decode_response(upstream, black_box(&body)).unwrap_or_default();
                black_box(encode_response(client, &response, &context).len())
            });
        });
    }
    group.finish();
}

fn stream_chunks(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group("stream_chunk");
    let openai_start = b"data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n".to_vec();
    let openai_chunk = b"data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" the lazy dog\"},\"finish_reason\":null}]}\n\n".to_vec();
    let anthropic_start = b"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":10,\"output_tokens\":1}}}\n\nevent: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n".to_vec();
    let anthropic_chunk = b"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\" the lazy dog\"}}\n\n".to_vec();
    for (name, upstream, client, start, chunk) in [
        (
            "openai_chat->anthropic",
            Dialect::OpenAiChat,
            Dialect::Anthropic,
            &openai_start,
            &openai_chunk,
        ),
        (
            "openai_chat->responses",
            Dialect::OpenAiChat,
            Dialect::OpenAiResponses,
            &openai_start,
            &openai_chunk,
        ),
        (
            "anthropic->openai_chat",
            Dialect::Anthropic,
            Dialect::OpenAiChat,
            &anthropic_start,
            &anthropic_chunk,
        ),
        (
            "anthropic->responses",
            Dialect::Anthropic,
            Dialect::OpenAiResponses,
            &anthropic_start,
            &anthropic_chunk,
        ),
        (
            "anthropic->anthropic (passthrough)",
            Dialect::Anthropic,
            Dialect::Anthropic,
            &anthropic_start,
            &anthropic_chunk,
        ),
    ] {
        let mut translator = StreamTranslator::new(upstream, client, context());
        let _ = translator.push(start);
        group.bench_function(name, |bencher| {
            bencher.iter(|| {
                black_box(
                    translator
                        .push(black_box(chunk))
                        .map(|bytes| bytes.len())
                        .unwrap_or(0),
                )
            });
        });
    }
    group.finish();
}

criterion_group!(benches, requests, responses, stream_chunks);
criterion_main!(benches);
