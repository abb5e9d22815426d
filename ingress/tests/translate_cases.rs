//! Data-driven translation cases, property tests and a byte fuzzer.
//!
//! Each folder under `tests/cases/` is one case; `case.json` says what it checks:
//!
//! * `"kind": "request"` — `client_request.json` decoded in `client`'s dialect and encoded for
//!   `upstream` must equal `expected_upstream_request.json`; `warnings` lists the fields the
//!   encoder must report as dropped (exactly).
//! * `"kind": "response"` — `upstream_response.json` from `upstream` encoded for `client` with
//!   `context` must equal `expected_client_response.json`.
//! * `"kind": "stream"` — `upstream.sse` through a `StreamTranslator` must give
//!   `expected_client.sse` (compared event by event, JSON-parsed), the same whether the bytes come
//!   whole or one at a time; `usage` and `stop_reason`, when present, must match what the
//!   translator read.
//! * `"kind": "error"` — `upstream_error.body` with `status` from `upstream` rendered for `client`
//!   must give `expected_status` and `expected_client_error.json`.
//! * `"kind": "bad_request"` — `client_request.json` must be rejected with `expected_param`, and
//!   rendered as `expected_client_error.json` (its `message` is not compared).
//! * `"kind": "count_tokens"` — the estimate for `client_request.json` must equal `expected`.

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test harness: a broken case file must fail loudly"
)]

use std::path::{Path, PathBuf};

use ingress::translate::ir::{self, ApiError, ErrorKind};
use ingress::translate::sse::SseDecoder;
use ingress::translate::{
    Context, Dialect, StreamTranslator, count_tokens, decode_request, decode_response,
    decode_upstream_error, encode_error, encode_request, encode_response, encode_stream_error,
};
use serde_json::Value;

fn dialect(value: &Value, key: &str) -> Dialect {
    match value.get(key).and_then(Value::as_str) {
        Some("openai_chat") => Dialect::OpenAiChat,
        Some("openai_responses") => Dialect::OpenAiResponses,
        Some("anthropic") => Dialect::Anthropic,
        other => panic!("case.json: bad {key}: {other:?}"),
    }
}

fn read(dir: &Path, name: &str) -> Vec<u8> {
    std::fs::read(dir.join(name))
        .unwrap_or_else(|error| panic!("{}: {error}", dir.join(name).display()))
}

fn json(dir: &Path, name: &str) -> Value {
    serde_json::from_slice(&read(dir, name)).unwrap_or_else(|error| panic!("{name}: {error}"))
}

fn context(case: &Value) -> Context {
    let context = case.get("context").cloned().unwrap_or(Value::Null);
    Context {
        response_id: context
            .get("response_id")
            .and_then(Value::as_str)
            .unwrap_or("resp_1")
            .to_owned(),
        created: context
            .get("created")
            .and_then(Value::as_u64)
            .unwrap_or(1_700_000_000),
        model: context
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or("gw-model")
            .to_owned(),
        include_usage: context
            .get("include_usage")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    }
}

/// SSE as a list of (event name, JSON-or-text data).
fn sse_events(bytes: &[u8]) -> Vec<(Option<String>, Value)> {
    let mut decoder = SseDecoder::new();
    let mut events = decoder.push(bytes).expect("sse");
    events.extend(decoder.finish());
    events
        .into_iter()
        .map(|event| {
            let data = serde_json::from_str(&event.data).unwrap_or(Value::String(event.data));
            (event.event, data)
        })
        .collect()
}

fn json_diff(expected: &Value, actual: &Value) -> String {
    format!(
        "expected:\n{}\nactual:\n{}",
        serde_json::to_string_pretty(expected).unwrap(),
        serde_json::to_string_pretty(actual).unwrap()
    )
}

fn usage_json(usage: &ir::Usage) -> Value {
    serde_json::json!({
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "cache_read_tokens": usage.cache_read_tokens,
        "cache_write_tokens": usage.cache_write_tokens,
    })
}

fn stop_reason_name(stop_reason: &ir::StopReason) -> String {
    match stop_reason {
        ir::StopReason::EndTurn => "end_turn".into(),
        ir::StopReason::MaxTokens => "max_tokens".into(),
        ir::StopReason::ToolUse => "tool_use".into(),
        ir::StopReason::StopSequence(_) => "stop_sequence".into(),
        ir::StopReason::ContentFilter => "content_filter".into(),
        ir::StopReason::Pause => "pause".into(),
        ir::StopReason::Other(other) => other.clone(),
    }
}

fn run_stream(
    upstream: Dialect,
    client: Dialect,
    context: &Context,
    bytes: &[u8],
    one_byte: bool,
) -> (Vec<u8>, StreamTranslator) {
    let mut translator = StreamTranslator::new(upstream, client, context.clone());
    let mut out = Vec::new();
    if one_byte {
        for byte in bytes {
            match translator.push(std::slice::from_ref(byte)) {
                Ok(bytes) => out.extend(bytes),
                Err(error) => {
                    out.extend(translator.fail(&error.to_api_error()));
                    return (out, translator);
                }
            }
        }
    } else {
        match translator.push(bytes) {
            Ok(bytes) => out.extend(bytes),
            Err(error) => {
                out.extend(translator.fail(&error.to_api_error()));
                return (out, translator);
            }
        }
    }
    out.extend(translator.finish());
    (out, translator)
}

/// Runs one case folder; returns a description of the mismatch, if any.
fn check(dir: &Path) -> Result<(), String> {
    let case = json(dir, "case.json");
    let kind = case["kind"].as_str().unwrap_or_default();
    match kind {
        "request" => {
            let client = dialect(&case, "client");
            let upstream = dialect(&case, "upstream");
            let request = decode_request(client, &read(dir, "client_request.json"))
                .map_err(|error| format!("decode failed: {error}"))?;
            let model = case["upstream_model"].as_str().unwrap_or("upstream-model");
            let encoded =
                encode_request(upstream, &request, model).map_err(|error| error.to_string())?;
            let actual: Value = serde_json::from_slice(&encoded.body).unwrap();
            let expected = json(dir, "expected_upstream_request.json");
            if actual != expected {
                return Err(json_diff(&expected, &actual));
            }
            let mut expected_warnings: Vec<String> = case
                .get("warnings")
                .and_then(Value::as_array)
                .map(|warnings| {
                    warnings
                        .iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default();
            let mut actual_warnings: Vec<String> = encoded
                .warnings
                .iter()
                .map(|warning| warning.field.clone())
                .collect();
            expected_warnings.sort();
            actual_warnings.sort();
            if expected_warnings != actual_warnings {
                return Err(format!(
                    "warnings: expected {expected_warnings:?}, got {:?}",
                    encoded.warnings
                ));
            }
        }
        "response" => {
            let client = dialect(&case, "client");
            let upstream = dialect(&case, "upstream");
            let response = decode_response(upstream, &read(dir, "upstream_response.json"))
                .map_err(|error| format!("decode failed: {error}"))?;
            let actual: Value =
                serde_json::from_slice(&encode_response(client, &response, &context(&case)))
                    .unwrap();
            let expected = json(dir, "expected_client_response.json");
            if actual != expected {
                return Err(json_diff(&expected, &actual));
            }
        }
        "stream" => {
            let client = dialect(&case, "client");
            let upstream = dialect(&case, "upstream");
            let context = context(&case);
            let input = read(dir, "upstream.sse");
            let (whole, translator) = run_stream(upstream, client, &context, &input, false);
            let (split, _) = run_stream(upstream, client, &context, &input, true);
            let expected = sse_events(&read(dir, "expected_client.sse"));
            let actual = sse_events(&whole);
            if actual != expected {
                return Err(format!(
                    "stream mismatch\nexpected:\n{}\nactual:\n{}",
                    String::from_utf8_lossy(&read(dir, "expected_client.sse")),
                    String::from_utf8_lossy(&whole)
                ));
            }
            if sse_events(&split) != actual {
                return Err("byte-by-byte output differs from whole-input output".into());
            }
            if let Some(usage) = case.get("usage") {
                let actual = usage_json(&translator.usage());
                if &actual != usage {
                    return Err(format!("usage: {}", json_diff(usage, &actual)));
                }
            }
            if let Some(stop_reason) = case.get("stop_reason").and_then(Value::as_str) {
                let actual = translator.stop_reason().map(stop_reason_name);
                if actual.as_deref() != Some(stop_reason) {
                    return Err(format!(
                        "stop reason: expected {stop_reason}, got {actual:?}"
                    ));
                }
            }
        }
        "error" => {
            let client = dialect(&case, "client");
            let error = if case.get("transport").is_some() {
                let kind = match case["transport"].as_str().unwrap_or_default() {
                    "timeout" => ErrorKind::Timeout,
                    _ => ErrorKind::Unavailable,
                };
                ApiError::new(kind, case["message"].as_str().unwrap_or_default())
            } else {
                let upstream = dialect(&case, "upstream");
                let status = case["status"].as_u64().unwrap_or(500) as u16;
                decode_upstream_error(upstream, status, &read(dir, "upstream_error.body"))
            };
            let (status, body) = if case.get("in_stream").and_then(Value::as_bool) == Some(true) {
                let expected = sse_events(&read(dir, "expected_client.sse"));
                let actual = sse_events(&encode_stream_error(client, &error));
                if actual != expected {
                    return Err(format!("{expected:?}\n!=\n{actual:?}"));
                }
                return Ok(());
            } else {
                encode_error(client, &error)
            };
            let expected_status = case["expected_status"].as_u64().unwrap_or(0) as u16;
            if status != expected_status {
                return Err(format!("status: expected {expected_status}, got {status}"));
            }
            let actual: Value = serde_json::from_slice(&body).unwrap();
            let expected = json(dir, "expected_client_error.json");
            if actual != expected {
                return Err(json_diff(&expected, &actual));
            }
        }
        "bad_request" => {
            let client = dialect(&case, "client");
            let error = match decode_request(client, &read(dir, "client_request.json")) {
                Ok(request) => return Err(format!("expected a rejection, decoded {request:?}")),
                Err(error) => error,
            };
            let api_error = error.to_api_error();
            let expected_param = case.get("expected_param").and_then(Value::as_str);
            if api_error.param.as_deref() != expected_param {
                return Err(format!(
                    "param: expected {expected_param:?}, got {:?} ({error})",
                    api_error.param
                ));
            }
            let (status, body) = encode_error(client, &api_error);
            if status != 400 {
                return Err(format!("status {status}"));
            }
            let mut actual: Value = serde_json::from_slice(&body).unwrap();
            let mut expected = json(dir, "expected_client_error.json");
            for value in [&mut actual, &mut expected] {
                if let Some(error) = value.get_mut("error").and_then(Value::as_object_mut) {
                    error.remove("message");
                }
            }
            if actual != expected {
                return Err(json_diff(&expected, &actual));
            }
        }
        "count_tokens" => {
            let client = dialect(&case, "client");
            let request = decode_request(client, &read(dir, "client_request.json"))
                .map_err(|error| error.to_string())?;
            let actual = count_tokens(&request);
            let expected = case["expected"].as_u64().unwrap_or(0);
            if actual != expected {
                return Err(format!("tokens: expected {expected}, got {actual}"));
            }
        }
        other => return Err(format!("unknown kind {other:?}")),
    }
    Ok(())
}

fn case_dirs() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.join("case.json").exists())
        .collect();
    dirs.sort();
    dirs
}

#[test]
fn translation_cases() {
    let dirs = case_dirs();
    let filter = std::env::var("CASE").ok();
    let mut failures = Vec::new();
    let mut ran = 0;
    for dir in &dirs {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        if filter
            .as_deref()
            .is_some_and(|filter| !name.contains(filter))
        {
            continue;
        }
        ran += 1;
        if let Err(message) = check(dir) {
            failures.push(format!("--- {name}\n{message}"));
        }
    }
    assert!(ran > 0, "no cases ran");
    assert!(
        failures.is_empty(),
        "{} of {ran} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    eprintln!("{ran} translation cases passed");
}
