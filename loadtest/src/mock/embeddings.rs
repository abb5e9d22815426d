//! OpenAI Embeddings and the model lists (OpenAI, Anthropic, Gemini).
//!
//! Embeddings are deterministic unit vectors derived from a hash of each input, so the same
//! input always embeds the same way. `dimensions` sets their length (default 1536, like
//! `text-embedding-3-small`); `encoding_format: "base64"` returns little-endian `f32` bytes in
//! base64, as OpenAI does.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::{Value, json};

use super::errors::Dialect;
use super::prompt;
use super::server::Exchange;

const DEFAULT_DIMENSIONS: usize = 1536;
const MAX_DIMENSIONS: usize = 8192;

/// A deterministic pseudo-random unit vector seeded by `seed` (xorshift64*).
fn vector(seed: u64, dimensions: usize) -> Vec<f32> {
    let mut state = seed | 1;
    let mut values: Vec<f32> = (0..dimensions)
        .map(|_| {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            let bits = state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40;
            #[expect(clippy::cast_precision_loss, reason = "24-bit values are exact in f32")]
            let unit = bits as f32 / (1u64 << 24) as f32;
            unit * 2.0 - 1.0
        })
        .collect();
    let norm = values.iter().map(|value| value * value).sum::<f32>().sqrt();
    if norm > 0.0 {
        values.iter_mut().for_each(|value| *value /= norm);
    }
    values
}

pub fn answer(exchange: &Exchange<'_>) -> Response {
    let body = exchange.body;
    let dimensions = body
        .get("dimensions")
        .and_then(Value::as_u64)
        .map_or(DEFAULT_DIMENSIONS, |value| {
            usize::try_from(value).unwrap_or(MAX_DIMENSIONS)
        })
        .clamp(1, MAX_DIMENSIONS);
    let base64 = body.get("encoding_format").and_then(Value::as_str) == Some("base64");
    let inputs = prompt::embedding_inputs(body.get("input"));
    let mut tokens: u32 = 0;
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(index, &(input_tokens, seed))| {
            tokens = tokens.saturating_add(input_tokens);
            let values = vector(seed, dimensions);
            let embedding = if base64 {
                let bytes: Vec<u8> = values
                    .iter()
                    .flat_map(|value| value.to_le_bytes())
                    .collect();
                Value::from(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                Value::from(values)
            };
            json!({"object": "embedding", "index": index, "embedding": embedding})
        })
        .collect();
    let response = json!({
        "object": "list",
        "data": data,
        "model": exchange.model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    });
    exchange.json(
        serde_json::to_vec(&response).unwrap_or_default(),
        Dialect::OpenAi,
    )
}

/// Model ids the lists advertise. Any model name is accepted by the other routes.
const OPENAI_MODELS: &[&str] = &[
    "gpt-4o",
    "gpt-4o-mini",
    "text-embedding-3-small",
    "mock-fail-500",
];
const ANTHROPIC_MODELS: &[(&str, &str)] = &[
    ("claude-sonnet-4-5", "Claude Sonnet 4.5"),
    ("claude-haiku-4-5", "Claude Haiku 4.5"),
];
const GEMINI_MODELS: &[(&str, &str)] = &[
    ("gemini-2.5-flash", "Gemini 2.5 Flash"),
    ("gemini-2.5-pro", "Gemini 2.5 Pro"),
];

/// One entry of Gemini's `models` list, as `GET /v1beta/models/{model}` also answers it.
pub fn gemini_model(id: &str, display_name: &str) -> Value {
    json!({
        "name": format!("models/{id}"),
        "version": "001",
        "displayName": display_name,
        "description": format!("{display_name}, served by the AxonGate mock upstream."),
        "inputTokenLimit": 1_048_576,
        "outputTokenLimit": 65_536,
        "supportedGenerationMethods": ["generateContent", "countTokens", "createCachedContent", "batchGenerateContent"],
        "temperature": 1,
        "topP": 0.95,
        "topK": 64,
        "maxTemperature": 2,
        "thinking": true,
    })
}

/// `GET /v1beta/models/{model}`: any model name is served, listed or not.
pub fn gemini_model_by_id(model: &str) -> Response {
    let display_name = GEMINI_MODELS
        .iter()
        .find(|(id, _)| *id == model)
        .map_or(model, |(_, name)| *name);
    json_response(&gemini_model(model, display_name), Dialect::Gemini, "")
}

/// `GET /v1/models`: OpenAI's list, or Anthropic's when `anthropic-version` is sent;
/// `GET /v1beta/models`: Gemini's.
pub fn models(dialect: Dialect, request_id: &str) -> Response {
    let body = match dialect {
        Dialect::OpenAi => json!({
            "object": "list",
            "data": OPENAI_MODELS
                .iter()
                .map(|id| json!({"id": id, "object": "model", "created": 1_715_367_049, "owned_by": "axongate-mock"}))
                .collect::<Vec<_>>(),
        }),
        Dialect::Anthropic => json!({
            "data": ANTHROPIC_MODELS
                .iter()
                .map(|(id, name)| json!({"type": "model", "id": id, "display_name": name, "created_at": "2025-10-01T00:00:00Z"}))
                .collect::<Vec<_>>(),
            "has_more": false,
            "first_id": ANTHROPIC_MODELS.first().map(|(id, _)| *id),
            "last_id": ANTHROPIC_MODELS.last().map(|(id, _)| *id),
        }),
        Dialect::Gemini => json!({
            "models": GEMINI_MODELS
                .iter()
                .map(|(id, name)| gemini_model(id, name))
                .collect::<Vec<_>>(),
        }),
    };
    json_response(&body, dialect, request_id)
}

fn json_response(body: &Value, dialect: Dialect, request_id: &str) -> Response {
    let mut response = (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        serde_json::to_vec(body).unwrap_or_default(),
    )
        .into_response();
    if let Some(name) = dialect.request_id_header()
        && let Ok(value) = HeaderValue::from_str(request_id)
    {
        response.headers_mut().insert(name, value);
    }
    response
}
