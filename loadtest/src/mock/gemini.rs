//! Gemini `generateContent` (the Gemini API's `v1beta`): `GenerateContentResponse` objects, the
//! streamed chunks, and token counting. The model is named by the URL path
//! (`/v1beta/models/{model}:{method}`), never by the body.
//!
//! A response is `{candidates: [{content: {role: "model", parts}, finishReason, index}],
//! usageMetadata, modelVersion, responseId}`; a function call is a `functionCall` part and still
//! ends with `STOP`, a truncated text with `MAX_TOKENS`. `:streamGenerateContent?alt=sse` sends
//! one such object per `data:` event, framed `\r\n\r\n` as Google's front end does, with no event
//! names and no terminator; without `alt=sse` the same objects come as one JSON array. As in
//! recorded Gemini 2.0/2.5 streams, every chunk carries `role`, `usageMetadata` (prompt side only
//! until the last chunk), `modelVersion` and `responseId`, no chunk carries `index`, and the last
//! text fragment carries `finishReason` and the final usage; a function call comes whole in one
//! chunk.
//!
//! Thinking: with `generationConfig.thinkingConfig` present and a `thinkingBudget` other than 0,
//! the "model" thinks [`THOUGHT`] and reports `thoughtsTokenCount`; with `includeThoughts: true`
//! the thought is sent first as a `{text, thought: true}` part. The first part after it carries
//! an opaque base64 `thoughtSignature`, as Gemini 2.5 does.

use axum::http::{HeaderValue, header};
use axum::response::Response;
use base64::Engine;
use serde_json::{Value, json};

use super::errors::Dialect;
use super::plan::{Plan, Usage, plan};
use super::prompt::{self, proto_field};
use super::server::Exchange;
use super::stream::SseWriter;

/// The thought summary the mock "thinks" when thinking is on.
pub const THOUGHT: &str = "**Planning the mock answer**\n\nThe mock upstream thinks this one fixed paragraph before it answers, so that thought parts, signatures and thought token counts can be tested.";

/// Splits a Gemini model path, `[/v1beta|/v1]/models/{model}[:{method}]`, into the model and
/// the method (`None` for the `GET` of one model). `/v1` is the `google-genai` SDKs' default
/// version, `v1beta` the REST reference's.
pub fn route(path: &str) -> Option<(&str, Option<&str>)> {
    let rest = path
        .strip_prefix("/v1beta")
        .or_else(|| path.strip_prefix("/v1"))
        .unwrap_or(path)
        .strip_prefix("/models/")?;
    let (model, method) = match rest.split_once(':') {
        Some((model, method)) => (model, Some(method)),
        None => (rest, None),
    };
    (!model.is_empty() && !model.contains('/')).then_some((model, method))
}

/// The thinking a request asks for.
struct Thinking {
    /// `includeThoughts`: the thought is sent as a part, not only counted.
    shown: bool,
    tokens: u32,
}

fn thinking(body: &Value) -> Option<Thinking> {
    let config = proto_field(proto_field(body, "generationConfig")?, "thinkingConfig")?;
    if proto_field(config, "thinkingBudget").and_then(Value::as_i64) == Some(0) {
        return None;
    }
    Some(Thinking {
        shown: proto_field(config, "includeThoughts").and_then(Value::as_bool) == Some(true),
        tokens: u32::try_from(THOUGHT.len().div_ceil(4)).unwrap_or(u32::MAX),
    })
}

/// `usageMetadata`; `complete` is false for the chunks before a stream's last, which report the
/// prompt side only.
fn usage_json(usage: Usage, thoughts: Option<&Thinking>, complete: bool) -> Value {
    let thoughts_tokens = thoughts.map_or(0, |thinking| thinking.tokens);
    let candidates_tokens = if complete { usage.output_tokens } else { 0 };
    let mut metadata = json!({
        "promptTokenCount": usage.input_tokens,
        "totalTokenCount": usage
            .input_tokens
            .saturating_add(candidates_tokens)
            .saturating_add(thoughts_tokens),
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": usage.input_tokens}],
    });
    if complete {
        metadata["candidatesTokenCount"] = json!(usage.output_tokens);
    }
    if usage.cache_read_tokens > 0 {
        metadata["cachedContentTokenCount"] = json!(usage.cache_read_tokens);
        metadata["cacheTokensDetails"] =
            json!([{"modality": "TEXT", "tokenCount": usage.cache_read_tokens}]);
    }
    if thoughts.is_some() {
        metadata["thoughtsTokenCount"] = json!(thoughts_tokens);
    }
    metadata
}

fn finish_reason(plan: &Plan<'_>) -> &'static str {
    if plan.truncated && plan.tool_call.is_none() {
        "MAX_TOKENS"
    } else {
        "STOP"
    }
}

/// What one answer sends, shared by the plain and streamed forms.
struct Answer<'a> {
    plan: Plan<'a>,
    thinking: Option<Thinking>,
    model: &'a str,
    response_id: String,
}

impl Answer<'_> {
    fn new<'a>(exchange: &'a Exchange<'_>, prompt: &'a prompt::Prompt) -> Answer<'a> {
        Answer {
            plan: plan(exchange, prompt, Dialect::Gemini),
            thinking: thinking(exchange.body),
            model: exchange.model,
            response_id: exchange.shared.id("mock", exchange.request_number),
        }
    }

    fn thought_part(&self) -> Option<Value> {
        self.thinking
            .as_ref()
            .filter(|thinking| thinking.shown)
            .map(|_| json!({"text": THOUGHT, "thought": true}))
    }

    /// The first part after the thought carries the signature of the thinking.
    fn signed(&self, mut part: Value) -> Value {
        if self.thinking.is_some() {
            let signature = base64::engine::general_purpose::STANDARD
                .encode(format!("axongate-mock-thought:{}", self.response_id));
            part["thoughtSignature"] = json!(signature);
        }
        part
    }

    fn function_call_part(&self) -> Option<Value> {
        self.plan.tool_call.map(|call| {
            let args = serde_json::from_str::<Value>(&call.arguments)
                .ok()
                .filter(Value::is_object)
                .unwrap_or_else(|| json!({}));
            json!({"functionCall": {"name": call.name, "args": args}})
        })
    }

    /// One `GenerateContentResponse`: `index` only in the plain form, as Gemini sends it.
    fn response(&self, parts: Vec<Value>, finished: bool, index: Option<u32>) -> Value {
        let mut candidate = json!({"content": {"parts": parts, "role": "model"}});
        if finished {
            candidate["finishReason"] = json!(finish_reason(&self.plan));
        }
        if let Some(index) = index {
            candidate["index"] = json!(index);
        }
        json!({
            "candidates": [candidate],
            "usageMetadata": usage_json(self.plan.usage, self.thinking.as_ref(), finished),
            "modelVersion": self.model,
            "responseId": self.response_id,
        })
    }

    /// The stream's chunks: the thought (when shown), then the function call whole or the text
    /// fragment by fragment, the last one finished.
    fn chunks(&self) -> Vec<Value> {
        let mut chunks: Vec<Value> = self
            .thought_part()
            .map(|part| self.response(vec![part], false, None))
            .into_iter()
            .collect();
        if let Some(call) = self.function_call_part() {
            chunks.push(self.response(vec![self.signed(call)], true, None));
            return chunks;
        }
        let mut fragments: Vec<&str> = self.plan.text_chunks().collect();
        if fragments.is_empty() {
            fragments.push("");
        }
        let last = fragments.len() - 1;
        for (position, fragment) in fragments.into_iter().enumerate() {
            let mut part = json!({"text": fragment});
            if position == 0 {
                part = self.signed(part);
            }
            chunks.push(self.response(vec![part], position == last, None));
        }
        chunks
    }
}

/// `POST /v1beta/models/{model}:generateContent`.
pub fn generate_content(exchange: &Exchange<'_>) -> Response {
    let prompt = prompt::gemini(exchange.body, exchange.model);
    let answer = Answer::new(exchange, &prompt);
    let main_part = answer
        .function_call_part()
        .unwrap_or_else(|| json!({"text": answer.plan.text()}));
    let parts = answer
        .thought_part()
        .into_iter()
        .chain([answer.signed(main_part)])
        .collect();
    let body = answer.response(parts, true, Some(0));
    exchange.json(
        serde_json::to_vec(&body).unwrap_or_default(),
        Dialect::Gemini,
    )
}

/// `POST /v1beta/models/{model}:streamGenerateContent`: SSE with `alt=sse`, else a JSON array
/// sent piece by piece.
pub fn stream_generate_content(exchange: &Exchange<'_>, sse: bool) -> Response {
    let prompt = prompt::gemini(exchange.body, exchange.model);
    let answer = Answer::new(exchange, &prompt);
    let chunks = answer.chunks();
    let mut writer = SseWriter::with_capacity(chunks.len(), 360).with_crlf();
    if sse {
        for chunk in &chunks {
            writer.event(None, chunk, true);
        }
        return exchange.sse(writer.finish(), Dialect::Gemini);
    }
    let last = chunks.len().saturating_sub(1);
    for (position, chunk) in chunks.iter().enumerate() {
        let prefix = if position == 0 { "[" } else { ",\r\n" };
        let suffix = if position == last { "]" } else { "" };
        writer.json_piece(prefix, chunk, suffix, true);
    }
    let mut response = exchange.sse(writer.finish(), Dialect::Gemini);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=UTF-8"),
    );
    response
}

/// `POST /v1beta/models/{model}:countTokens`: the prompt's tokens by the same rule as
/// `promptTokenCount`, for `contents` or a whole `generateContentRequest`.
pub fn count_tokens(exchange: &Exchange<'_>) -> Response {
    let request = proto_field(exchange.body, "generateContentRequest").unwrap_or(exchange.body);
    let prompt = prompt::gemini(request, exchange.model);
    let body = json!({
        "totalTokens": prompt.input_tokens,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt.input_tokens}],
    });
    exchange.json(
        serde_json::to_vec(&body).unwrap_or_default(),
        Dialect::Gemini,
    )
}

#[cfg(test)]
mod tests {
    use super::route;

    #[test]
    fn routes_name_the_model_and_method() {
        assert_eq!(
            route("/v1beta/models/gemini-2.5-flash:generateContent"),
            Some(("gemini-2.5-flash", Some("generateContent")))
        );
        assert_eq!(
            route("/models/mock-fail-500:streamGenerateContent"),
            Some(("mock-fail-500", Some("streamGenerateContent")))
        );
        assert_eq!(
            route("/v1beta/models/gemini-2.5-pro"),
            Some(("gemini-2.5-pro", None))
        );
        assert_eq!(
            route("/v1/models/gemini-2.5-pro:countTokens"),
            Some(("gemini-2.5-pro", Some("countTokens")))
        );
        assert_eq!(route("/v1beta/models"), None);
        assert_eq!(route("/v1/chat/completions"), None);
        assert_eq!(route("/v1beta/models/:generateContent"), None);
    }
}
