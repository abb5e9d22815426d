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

use ingress::translate::ir::{self, ApiError, ErrorClass};
use ingress::translate::sse::SseDecoder;
use ingress::translate::{
    Context, Dialect, StreamTranslator, Target, count_tokens, decode_request, decode_response,
    decode_upstream_error, encode_error, encode_response, encode_stream_error, passthrough,
    upstream_request,
};
use serde_json::Value;

fn dialect(value: &Value, key: &str) -> Dialect {
    match value.get(key).and_then(Value::as_str) {
        Some("openai_chat") => Dialect::OpenAiChat,
        Some("openai_responses") => Dialect::OpenAiResponses,
        Some("anthropic") => Dialect::Anthropic,
        Some("gemini") => Dialect::Gemini,
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
        echo: context
            .get("echo")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default(),
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
            let capabilities: shared::config::Capabilities = case
                .get("capabilities")
                .map(|declared| serde_json::from_value(declared.clone()).unwrap())
                .unwrap_or_default();
            let target = Target::new(upstream, model, &capabilities);
            let client_body = read(dir, "client_request.json");
            let encoded = upstream_request(client, upstream, &client_body, &request, &target)
                .map_err(|error| error.to_string())?;
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
            let upstream_body = read(dir, "upstream_response.json");
            let response = decode_response(upstream, &upstream_body)
                .map_err(|error| format!("decode failed: {error}"))?;
            // As ingress does: the same dialect gets the upstream's answer with the alias in it.
            let out = if client == upstream {
                passthrough::response(client, &upstream_body, &context(&case).model)
            } else {
                encode_response(client, &response, &context(&case))
            };
            let actual: Value = serde_json::from_slice(&out).unwrap();
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
                    "timeout" => ErrorClass::Timeout,
                    _ => ErrorClass::Unavailable,
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

// ---------------------------------------------------------------------------------------------
// Property tests: decode(encode(x)) == x for every dialect, over requests that dialect can
// express in its canonical form, and SSE framing that does not depend on chunking.
// ---------------------------------------------------------------------------------------------

mod properties {
    use ingress::translate::ir::{
        self, Block, DocumentSource, Effort, Extra, ImageSource, InstructionRole, Message,
        Reasoning, Request, ResponseFormat, Role, SamplingParams, SystemBlock, Tool, ToolChoice,
    };
    use ingress::translate::sse::{SseDecoder, SseEvent};
    use ingress::translate::{
        Dialect, StreamTranslator, Target, decode_request, encode_request, upstream_request,
    };
    use shared::config::ReasoningSupport;

    /// A target that takes everything the dialect can express, so a round trip loses nothing.
    fn accepting(dialect: Dialect, model: &str) -> Target<'_> {
        Target {
            model,
            reasoning: if dialect == Dialect::Anthropic {
                ReasoningSupport::Budget
            } else {
                ReasoningSupport::Effort
            },
            max_output_tokens: None,
        }
    }
    use proptest::prelude::*;
    use serde_json::{Map, Value, json};

    fn word() -> impl Strategy<Value = String> {
        "[a-z]{1,8}"
    }

    fn text() -> impl Strategy<Value = String> {
        "[a-zA-Z0-9 ,.!?é\"\\\\\n]{1,24}"
    }

    fn cache_control() -> impl Strategy<Value = Option<Value>> {
        prop_oneof![Just(None), Just(Some(json!({"type": "ephemeral"})))]
    }

    fn object() -> impl Strategy<Value = Value> {
        prop::collection::btree_map(
            word(),
            prop_oneof![
                word().prop_map(Value::from),
                (0i64..1000).prop_map(Value::from)
            ],
            0..3,
        )
        .prop_map(|map| Value::Object(map.into_iter().collect()))
    }

    fn image(detail: bool) -> impl Strategy<Value = Block> {
        let source = prop_oneof![
            ("image/(png|jpeg|gif|webp)", "[A-Za-z0-9+/]{4,16}")
                .prop_map(|(media_type, data)| ImageSource::Base64 { media_type, data }),
            word().prop_map(|name| ImageSource::Url {
                url: format!("https://example.com/{name}.png")
            }),
        ];
        let detail = if detail {
            prop_oneof![
                Just(None),
                Just(Some("low".to_owned())),
                Just(Some("high".to_owned()))
            ]
            .boxed()
        } else {
            Just(None).boxed()
        };
        (source, detail).prop_map(|(source, detail)| Block::Image {
            source,
            detail,
            cache_control: None,
        })
    }

    fn tool_use(cache: bool) -> impl Strategy<Value = Block> {
        let cache = if cache {
            cache_control().boxed()
        } else {
            Just(None).boxed()
        };
        (word(), word(), object(), cache).prop_map(|(id, name, input, cache_control)| {
            Block::ToolUse {
                id: format!("call_{id}"),
                name,
                input,
                cache_control,
            }
        })
    }

    fn params(stop_max: usize, seed: bool, top_k: bool) -> impl Strategy<Value = SamplingParams> {
        (
            prop::option::of(1u64..100_000),
            prop::option::of(prop_oneof![Just(0.0), Just(0.5), Just(1.0)]),
            prop::option::of(prop_oneof![Just(0.1), Just(0.9)]),
            if top_k {
                prop::option::of(1u64..100).boxed()
            } else {
                Just(None).boxed()
            },
            prop::collection::vec(word(), 0..=stop_max),
            if seed {
                prop::option::of(0i64..1000).boxed()
            } else {
                Just(None).boxed()
            },
            prop::option::of(word()),
        )
            .prop_map(
                |(max_tokens, temperature, top_p, top_k, stop, seed, user)| SamplingParams {
                    max_tokens,
                    temperature,
                    top_p,
                    top_k,
                    stop,
                    seed,
                    user,
                    metadata: None,
                    response_format: None,
                    prompt_cache_key: None,
                    verbosity: None,
                },
            )
    }

    fn response_format() -> impl Strategy<Value = Option<ResponseFormat>> {
        prop_oneof![
            Just(None),
            Just(Some(ResponseFormat::Text)),
            Just(Some(ResponseFormat::JsonObject)),
            (
                word(),
                object(),
                prop::option::of(any::<bool>()),
                prop::option::of(word())
            )
                .prop_map(|(name, schema, strict, description)| {
                    Some(ResponseFormat::JsonSchema {
                        name,
                        schema,
                        strict,
                        description,
                    })
                }),
        ]
    }

    fn function_tool(strict: bool, cache: bool) -> impl Strategy<Value = Tool> {
        (
            word(),
            prop::option::of(text()),
            object(),
            if strict {
                prop::option::of(any::<bool>()).boxed()
            } else {
                Just(None).boxed()
            },
            if cache {
                cache_control().boxed()
            } else {
                Just(None).boxed()
            },
        )
            .prop_map(|(name, description, parameters, strict, cache_control)| {
                Tool::Function {
                    name,
                    description,
                    parameters,
                    strict,
                    cache_control,
                }
            })
    }

    fn tool_choice() -> impl Strategy<Value = Option<ToolChoice>> {
        prop_oneof![
            Just(None),
            Just(Some(ToolChoice::Auto)),
            Just(Some(ToolChoice::None)),
            Just(Some(ToolChoice::Required)),
            word().prop_map(|name| Some(ToolChoice::Named(name))),
        ]
    }

    fn effort() -> impl Strategy<Value = Option<Reasoning>> {
        prop_oneof![
            Just(None),
            prop_oneof![
                Just(Effort::Minimal),
                Just(Effort::Low),
                Just(Effort::Medium),
                Just(Effort::High)
            ]
            .prop_map(|effort| Some(Reasoning::Effort(effort))),
        ]
    }

    fn no_adjacent(messages: &[Message], same: impl Fn(&Message, &Message) -> bool) -> bool {
        messages.windows(2).all(|pair| !same(&pair[0], &pair[1]))
    }

    fn only_results(message: &Message) -> bool {
        message.role == Role::User
            && message
                .content
                .iter()
                .all(|block| matches!(block, Block::ToolResult { .. }))
    }

    fn anthropic_request() -> impl Strategy<Value = Request> {
        let system = prop::collection::vec(
            (text(), cache_control()).prop_map(|(text, cache_control)| SystemBlock {
                role: InstructionRole::System,
                text,
                cache_control,
            }),
            0..3,
        );
        let user_block = prop_oneof![
            (text(), cache_control()).prop_map(|(text, cache_control)| Block::Text {
                text,
                cache_control
            }),
            image(false),
            (
                word(),
                prop::collection::vec(text().prop_map(Block::text), 0..3),
                any::<bool>(),
                cache_control()
            )
                .prop_map(|(id, content, is_error, cache_control)| Block::ToolResult {
                    tool_use_id: format!("call_{id}"),
                    content,
                    is_error,
                    cache_control
                }),
            Just(Block::Document {
                source: DocumentSource::Text { data: "d".into() },
                title: Some("notes".into()),
                cache_control: None,
                extra: serde_json::Map::from_iter([(
                    "context".to_owned(),
                    json!("From the notes")
                )]),
            }),
            Just(Block::Unknown {
                dialect: Dialect::Anthropic,
                raw: json!({"type": "search_result", "source": "https://example.com", "title": "A", "content": [{"type": "text", "text": "d"}]}),
            }),
        ];
        let assistant_block = prop_oneof![
            text().prop_map(Block::text),
            tool_use(true),
            (text(), "[A-Za-z0-9]{8,16}").prop_map(|(thinking, signature)| Block::Thinking {
                thinking,
                signature: Some(signature)
            }),
            "[A-Za-z0-9]{8,16}".prop_map(|data| Block::RedactedThinking { data }),
        ];
        let message = prop_oneof![
            prop::collection::vec(user_block, 1..4).prop_map(|content| Message {
                role: Role::User,
                content
            }),
            prop::collection::vec(assistant_block, 1..4).prop_map(|content| Message {
                role: Role::Assistant,
                content
            }),
        ];
        let tools = prop::collection::vec(
            prop_oneof![
                function_tool(false, true),
                Just(Tool::Unknown {
                    dialect: Dialect::Anthropic,
                    raw: json!({"type": "web_search_20250305", "name": "web_search"})
                }),
            ],
            0..3,
        );
        (
            word(),
            system,
            prop::collection::vec(message, 1..5),
            params(3, false, true),
            tools,
            tool_choice(),
            prop::option::of(any::<bool>()),
            prop_oneof![
                Just(None),
                Just(Some(Reasoning::Disabled)),
                (1024u64..3000).prop_map(|budget| Some(Reasoning::Budget(budget)))
            ],
            any::<bool>(),
            prop_oneof![
                Just(Map::new()),
                Just(
                    json!({"service_tier": "auto"})
                        .as_object()
                        .cloned()
                        .unwrap_or_default()
                )
            ],
        )
            .prop_map(
                |(
                    model,
                    system,
                    messages,
                    mut params,
                    tools,
                    mut tool_choice,
                    mut parallel,
                    reasoning,
                    stream,
                    extra,
                )| {
                    if tools.is_empty() {
                        tool_choice = None;
                    }
                    // Anthropic carries the parallel flag inside a tool choice other than `none`.
                    if matches!(tool_choice, None | Some(ToolChoice::None)) {
                        parallel = None;
                    }
                    if let Some(Reasoning::Budget(budget)) = reasoning {
                        params.max_tokens = Some(budget + 1 + params.max_tokens.unwrap_or(0));
                        params.temperature = None;
                        params.top_k = None;
                        params.top_p = None;
                        if matches!(
                            tool_choice,
                            Some(ToolChoice::Required | ToolChoice::Named(_))
                        ) {
                            tool_choice = Some(ToolChoice::Auto);
                        }
                    }
                    params.max_tokens = Some(params.max_tokens.unwrap_or(4096));
                    Request {
                        model,
                        system,
                        messages,
                        params,
                        tools,
                        tool_choice,
                        parallel_tool_calls: parallel,
                        reasoning,
                        stream,
                        include_usage: stream,
                        extra: Extra::new(Dialect::Anthropic, extra),
                    }
                },
            )
    }

    fn instruction_role() -> impl Strategy<Value = InstructionRole> {
        prop_oneof![
            Just(InstructionRole::System),
            Just(InstructionRole::Developer)
        ]
    }

    fn openai_chat_request() -> impl Strategy<Value = Request> {
        let system = prop::collection::vec(
            (instruction_role(), text()).prop_map(|(role, text)| SystemBlock {
                role,
                text,
                cache_control: None,
            }),
            0..3,
        );
        let user =
            prop::collection::vec(prop_oneof![text().prop_map(Block::text), image(true)], 1..4)
                .prop_map(|content| Message {
                    role: Role::User,
                    content,
                });
        let results = prop::collection::vec(
            (
                word(),
                prop::collection::vec(text().prop_map(Block::text), 1..3),
            )
                .prop_map(|(id, content)| Block::ToolResult {
                    tool_use_id: format!("call_{id}"),
                    content,
                    is_error: false,
                    cache_control: None,
                }),
            1..3,
        )
        .prop_map(|content| Message {
            role: Role::User,
            content,
        });
        let assistant = (
            prop::option::of(text()),
            prop::collection::vec(text().prop_map(Block::text), 0..3),
            prop::collection::vec(tool_use(false), 0..3),
        )
            .prop_map(|(thinking, texts, tools)| {
                let mut content = Vec::new();
                if let Some(thinking) = thinking {
                    content.push(Block::Thinking {
                        thinking,
                        signature: None,
                    });
                }
                content.extend(texts);
                content.extend(tools);
                Message {
                    role: Role::Assistant,
                    content,
                }
            });
        let instruction = (
            prop_oneof![Just(Role::System), Just(Role::Developer)],
            prop::collection::vec(text().prop_map(Block::text), 1..3),
        )
            .prop_map(|(role, content)| Message { role, content });
        let later = prop_oneof![user.clone(), results, assistant, instruction];
        let tools = prop::collection::vec(
            prop_oneof![
                function_tool(true, false),
                Just(Tool::Unknown {
                    dialect: Dialect::OpenAiChat,
                    raw: json!({"type": "custom", "custom": {"name": "grammar"}})
                }),
            ],
            0..3,
        );
        (
            word(),
            system,
            user,
            prop::collection::vec(later, 0..5),
            params(4, true, false),
            (
                response_format(),
                prop::option::of(Just(
                    json!({"team": "a"})
                        .as_object()
                        .cloned()
                        .unwrap_or_default(),
                )),
            ),
            tools,
            tool_choice(),
            prop::option::of(any::<bool>()),
            effort(),
            any::<bool>(),
            prop_oneof![
                Just(Map::new()),
                Just(
                    json!({"frequency_penalty": 0.5, "n": 1})
                        .as_object()
                        .cloned()
                        .unwrap_or_default()
                )
            ],
        )
            .prop_filter("tool results in one turn", |(_, _, first, later, ..)| {
                let mut all = vec![first.clone()];
                all.extend(later.iter().cloned());
                no_adjacent(&all, |a, b| only_results(a) && only_results(b))
            })
            .prop_map(
                |(
                    model,
                    system,
                    first,
                    later,
                    mut params,
                    (format, metadata),
                    tools,
                    tool_choice,
                    mut parallel,
                    reasoning,
                    stream,
                    extra,
                )| {
                    params.response_format = format;
                    params.metadata = metadata;
                    if tools.is_empty() {
                        parallel = None;
                    }
                    let mut messages = vec![first];
                    messages.extend(later);
                    Request {
                        model,
                        system,
                        messages,
                        params,
                        tools,
                        tool_choice,
                        parallel_tool_calls: parallel,
                        reasoning,
                        stream,
                        include_usage: stream,
                        extra: Extra::new(Dialect::OpenAiChat, extra),
                    }
                },
            )
    }

    fn responses_request() -> impl Strategy<Value = Request> {
        let system = prop::collection::vec(
            (instruction_role(), text()).prop_map(|(role, text)| SystemBlock {
                role,
                text,
                cache_control: None,
            }),
            0..3,
        );
        let user =
            prop::collection::vec(prop_oneof![text().prop_map(Block::text), image(true)], 1..4)
                .prop_map(|content| Message {
                    role: Role::User,
                    content,
                });
        let results = prop::collection::vec(
            (
                word(),
                prop::collection::vec(prop_oneof![text().prop_map(Block::text), image(true)], 1..3),
            )
                .prop_map(|(id, content)| Block::ToolResult {
                    tool_use_id: format!("call_{id}"),
                    content,
                    is_error: false,
                    cache_control: None,
                }),
            1..3,
        )
        .prop_map(|content| Message {
            role: Role::User,
            content,
        });
        let assistant = prop::collection::vec(
            prop_oneof![
                text().prop_map(Block::text),
                tool_use(false),
                (text(), prop::option::of("[A-Za-z0-9]{8,16}")).prop_map(
                    |(thinking, signature)| Block::Thinking {
                        thinking,
                        signature
                    }
                ),
            ],
            1..4,
        )
        .prop_map(|content| Message {
            role: Role::Assistant,
            content,
        });
        let instruction = (
            prop_oneof![Just(Role::System), Just(Role::Developer)],
            text(),
        )
            .prop_map(|(role, text)| Message {
                role,
                content: vec![Block::text(text)],
            });
        let later = prop_oneof![user.clone(), results, assistant, instruction];
        let tools = prop::collection::vec(
            prop_oneof![
                function_tool(true, false),
                Just(Tool::Unknown {
                    dialect: Dialect::OpenAiResponses,
                    raw: json!({"type": "web_search"})
                })
            ],
            0..3,
        );
        (
            word(),
            system,
            user,
            prop::collection::vec(later, 0..5),
            params(0, false, false),
            (
                response_format(),
                prop::option::of(Just(
                    json!({"team": "a"})
                        .as_object()
                        .cloned()
                        .unwrap_or_default(),
                )),
            ),
            tools,
            tool_choice(),
            prop::option::of(any::<bool>()),
            effort(),
            any::<bool>(),
            prop_oneof![
                Just(Map::new()),
                Just(
                    json!({"store": false})
                        .as_object()
                        .cloned()
                        .unwrap_or_default()
                )
            ],
        )
            .prop_filter("one turn per role run", |(_, _, first, later, ..)| {
                let mut all = vec![first.clone()];
                all.extend(later.iter().cloned());
                no_adjacent(&all, |a, b| {
                    (only_results(a) && only_results(b))
                        || (a.role == Role::Assistant && b.role == Role::Assistant)
                })
            })
            .prop_map(
                |(
                    model,
                    system,
                    first,
                    later,
                    mut params,
                    (format, metadata),
                    tools,
                    tool_choice,
                    parallel,
                    reasoning,
                    stream,
                    extra,
                )| {
                    params.response_format = format;
                    params.metadata = metadata;
                    let mut messages = vec![first];
                    messages.extend(later);
                    Request {
                        model,
                        system,
                        messages,
                        params,
                        tools,
                        tool_choice,
                        parallel_tool_calls: parallel,
                        reasoning,
                        stream,
                        include_usage: stream,
                        extra: Extra::new(Dialect::OpenAiResponses, extra),
                    }
                },
            )
    }

    /// One Gemini turn: the model's content, then the user's (the results of its calls, or
    /// words and images when it made none). Roles alternate, as Gemini's contents do (a run of
    /// one role is one content).
    fn gemini_turn() -> impl Strategy<Value = (Message, Message)> {
        let signature = "[A-Za-z0-9+/]{8,16}";
        let before = prop::collection::vec(
            prop_oneof![
                text().prop_map(Block::text),
                (text(), prop::option::of(signature)).prop_map(|(thinking, signature)| {
                    Block::Thinking {
                        thinking,
                        signature,
                    }
                }),
            ],
            0..3,
        );
        let calls = prop::collection::vec((tool_use(false), text(), any::<bool>()), 0..3);
        (
            before,
            calls,
            prop::option::of(signature),
            prop::collection::vec(gemini_user_block(), 1..3),
        )
            .prop_map(|(before, calls, call_signature, words)| {
                let mut model = before;
                let mut results = Vec::new();
                for (index, (call, output, is_error)) in calls.into_iter().enumerate() {
                    // Gemini puts a signature on the first call of a step.
                    if index == 0
                        && let Some(signature) = &call_signature
                    {
                        model.push(Block::Thinking {
                            thinking: String::new(),
                            signature: Some(signature.clone()),
                        });
                    }
                    if let Block::ToolUse { id, .. } = &call {
                        results.push(Block::ToolResult {
                            tool_use_id: id.clone(),
                            content: vec![Block::text(output)],
                            is_error,
                            cache_control: None,
                        });
                    }
                    model.push(call);
                }
                if model.is_empty() {
                    model.push(Block::text("ok"));
                }
                let user = if results.is_empty() { words } else { results };
                (
                    Message {
                        role: Role::Assistant,
                        content: model,
                    },
                    Message {
                        role: Role::User,
                        content: user,
                    },
                )
            })
    }

    /// What a user part can be: words, images (inline, or a file URL whose extension names its
    /// type) and PDFs.
    fn gemini_user_block() -> impl Strategy<Value = Block> {
        prop_oneof![
            text().prop_map(Block::text),
            image(false),
            prop_oneof![
                "[A-Za-z0-9+/]{4,16}".prop_map(|data| DocumentSource::Base64 {
                    media_type: "application/pdf".into(),
                    data
                }),
                word().prop_map(|name| DocumentSource::Url {
                    url: format!("https://example.com/{name}.pdf")
                }),
            ]
            .prop_map(|source| Block::Document {
                source,
                title: None,
                cache_control: None,
                extra: Map::new(),
            }),
        ]
    }

    /// Requests Gemini carries whole: the model and streaming are the URL's (a decoded request
    /// has neither), instructions only before the contents, one text per function result,
    /// reasoning as a thinking level (what `accepting` declares), function tools before the
    /// built-in ones.
    fn gemini_request() -> impl Strategy<Value = Request> {
        let system = prop::collection::vec(
            text().prop_map(|text| SystemBlock {
                role: InstructionRole::System,
                text,
                cache_control: None,
            }),
            0..3,
        );
        let first = prop::collection::vec(gemini_user_block(), 1..4).prop_map(|content| Message {
            role: Role::User,
            content,
        });
        let functions = prop::collection::vec(function_tool(false, false), 0..3);
        let builtin = prop::option::of(Just(Tool::Unknown {
            dialect: Dialect::Gemini,
            raw: json!({"googleSearch": {}}),
        }));
        let format = prop_oneof![
            Just(None),
            Just(Some(ResponseFormat::JsonObject)),
            object().prop_map(|schema| Some(ResponseFormat::JsonSchema {
                name: "response".into(),
                schema,
                strict: None,
                description: None,
            })),
        ];
        (
            system,
            first,
            prop::collection::vec(gemini_turn(), 0..3),
            (params(5, true, true), format),
            (functions, builtin),
            tool_choice(),
            effort(),
            prop_oneof![
                Just(Map::new()),
                Just(
                    json!({
                        "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}],
                        "generationConfig.candidateCount": 1
                    })
                    .as_object()
                    .cloned()
                    .unwrap_or_default()
                )
            ],
        )
            .prop_map(
                |(
                    system,
                    first,
                    turns,
                    (mut params, format),
                    (mut tools, builtin),
                    tool_choice,
                    reasoning,
                    extra,
                )| {
                    params.user = None;
                    params.response_format = format;
                    tools.extend(builtin);
                    let mut messages = vec![first];
                    for (model, user) in turns {
                        messages.push(model);
                        messages.push(user);
                    }
                    Request {
                        model: String::new(),
                        system,
                        messages,
                        params,
                        tools,
                        tool_choice,
                        parallel_tool_calls: None,
                        reasoning,
                        stream: false,
                        include_usage: false,
                        extra: Extra::new(Dialect::Gemini, extra),
                    }
                },
            )
    }

    fn roundtrip(dialect: Dialect, request: &Request) -> Result<(), TestCaseError> {
        let encoded = encode_request(dialect, request, &accepting(dialect, &request.model))
            .map_err(|error| TestCaseError::fail(error.to_string()))?;
        prop_assert!(
            encoded.warnings.is_empty(),
            "unexpected warnings {:?}",
            encoded.warnings
        );
        let decoded = decode_request(dialect, &encoded.body).map_err(|error| {
            TestCaseError::fail(format!(
                "{error}: {}",
                String::from_utf8_lossy(&encoded.body)
            ))
        })?;
        // OpenAI Chat carries adjacent instructions of one role as one message.
        let mut expected = request.clone();
        if dialect == Dialect::OpenAiChat {
            expected.system = Vec::new();
            for block in &request.system {
                match expected.system.last_mut() {
                    Some(last) if last.role == block.role => {
                        last.text.push_str("\n\n");
                        last.text.push_str(&block.text);
                    }
                    _ => expected.system.push(block.clone()),
                }
            }
        }
        prop_assert_eq!(
            &decoded,
            &expected,
            "body: {}",
            String::from_utf8_lossy(&encoded.body)
        );
        Ok(())
    }

    /// Events rendered with varied framing: line endings, comments, `data:` without a space.
    /// One line-ending style per stream: a `\r` ending followed by a `\n` one would be a `\r\n`.
    fn framed(events: &[SseEvent], endings: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let ending: &[u8] = match endings.first().copied().unwrap_or(0) % 3 {
            0 => b"\n",
            1 => b"\r\n",
            _ => b"\r",
        };
        let newline = |out: &mut Vec<u8>| out.extend_from_slice(ending);
        for (index, event) in events.iter().enumerate() {
            if index % 3 == 1 {
                out.extend_from_slice(b": comment");
                newline(&mut out);
            }
            if let Some(name) = &event.event {
                out.extend_from_slice(format!("event: {name}").as_bytes());
                newline(&mut out);
            }
            for (line_index, line) in event.data.split('\n').enumerate() {
                out.extend_from_slice(if line_index % 2 == 0 {
                    b"data: "
                } else {
                    b"data:"
                });
                out.extend_from_slice(line.as_bytes());
                newline(&mut out);
            }
            newline(&mut out);
        }
        out
    }

    fn decode_in_pieces(bytes: &[u8], cuts: &[usize]) -> Vec<SseEvent> {
        let mut cuts: Vec<usize> = cuts.iter().map(|cut| cut % (bytes.len() + 1)).collect();
        cuts.sort_unstable();
        let mut decoder = SseDecoder::new();
        let mut events = Vec::new();
        let mut start = 0;
        for cut in cuts {
            events.extend(decoder.push(&bytes[start..cut]).unwrap());
            start = cut;
        }
        events.extend(decoder.push(&bytes[start..]).unwrap());
        events.extend(decoder.finish());
        events
    }

    fn sse_event() -> impl Strategy<Value = SseEvent> {
        // Data lines never start with a space here: the one space after `data:` is framing.
        (
            prop::option::of("[a-z_.]{1,12}"),
            prop::collection::vec("[a-zA-Z0-9{}\":,\\[\\] ]{0,20}", 1..3),
        )
            .prop_map(|(event, lines)| {
                let data = lines
                    .iter()
                    .map(|line| line.trim_start().to_owned())
                    .collect::<Vec<_>>()
                    .join("\n");
                SseEvent { event, data }
            })
    }

    fn usage_strategy(cache_write: bool, reasoning: bool) -> impl Strategy<Value = ir::Usage> {
        (
            0u64..100_000,
            0u64..100_000,
            0u64..100_000,
            0u64..100_000,
            0u64..1000,
        )
            .prop_map(
                move |(
                    input_tokens,
                    output_tokens,
                    cache_read_tokens,
                    cache_write_tokens,
                    reasoning_tokens,
                )| ir::Usage {
                    input_tokens,
                    output_tokens,
                    cache_read_tokens,
                    cache_write_tokens: if cache_write { cache_write_tokens } else { 0 },
                    reasoning_tokens: reasoning.then_some(reasoning_tokens.min(output_tokens)),
                },
            )
    }

    /// Answers each dialect can carry whole: Anthropic keeps every block kind; OpenAI Chat has
    /// one text, unsigned reasoning and tool calls; Responses items in any order.
    fn response_strategy(dialect: Dialect) -> BoxedStrategy<ir::Response> {
        let signature = "[A-Za-z0-9]{8,16}";
        match dialect {
            Dialect::Anthropic => (
                prop::collection::vec(
                    prop_oneof![
                        text().prop_map(Block::text),
                        tool_use(false),
                        (text(), signature).prop_map(|(thinking, signature)| Block::Thinking {
                            thinking,
                            signature: Some(signature)
                        }),
                        signature.prop_map(|data| Block::RedactedThinking { data }),
                    ],
                    0..5,
                ),
                prop_oneof![
                    Just(ir::StopReason::EndTurn),
                    Just(ir::StopReason::MaxTokens),
                    Just(ir::StopReason::ToolUse),
                    prop::option::of(word()).prop_map(ir::StopReason::StopSequence),
                    Just(ir::StopReason::ContentFilter),
                    Just(ir::StopReason::Pause),
                ],
                usage_strategy(true, false),
            )
                .prop_map(|(content, stop_reason, usage)| ir::Response {
                    id: String::new(),
                    model: String::new(),
                    content,
                    stop_reason,
                    usage,
                })
                .boxed(),
            Dialect::OpenAiChat => (
                prop::option::of(text()),
                prop::option::of(text()),
                prop::collection::vec(tool_use(false), 0..3),
                any::<bool>(),
                usage_strategy(false, true),
            )
                .prop_map(|(thinking, answer, tools, cut, usage)| {
                    let mut content = Vec::new();
                    if let Some(thinking) = thinking {
                        content.push(Block::Thinking {
                            thinking,
                            signature: None,
                        });
                    }
                    content.extend(answer.map(Block::text));
                    let stop_reason = if !tools.is_empty() {
                        ir::StopReason::ToolUse
                    } else if cut {
                        ir::StopReason::MaxTokens
                    } else {
                        ir::StopReason::EndTurn
                    };
                    content.extend(tools);
                    ir::Response {
                        id: String::new(),
                        model: String::new(),
                        content,
                        stop_reason,
                        usage,
                    }
                })
                .boxed(),
            Dialect::OpenAiResponses => (
                prop::collection::vec(
                    prop_oneof![
                        text().prop_map(Block::text),
                        tool_use(false),
                        (text(), prop::option::of(signature)).prop_map(|(thinking, signature)| {
                            Block::Thinking {
                                thinking,
                                signature,
                            }
                        }),
                    ],
                    0..5,
                ),
                prop_oneof![
                    Just(ir::StopReason::EndTurn),
                    Just(ir::StopReason::MaxTokens),
                    Just(ir::StopReason::ContentFilter)
                ],
                usage_strategy(false, true),
            )
                .prop_map(|(content, mut stop_reason, usage)| {
                    if stop_reason == ir::StopReason::EndTurn
                        && content
                            .iter()
                            .any(|block| matches!(block, Block::ToolUse { .. }))
                    {
                        stop_reason = ir::StopReason::ToolUse;
                    }
                    ir::Response {
                        id: String::new(),
                        model: String::new(),
                        content,
                        stop_reason,
                        usage,
                    }
                })
                .boxed(),
            // Parts in any order: words, calls (with Gemini's ids), thoughts with or without a
            // signature, and a signature alone before the part it belongs to.
            Dialect::Gemini => (
                prop::collection::vec(
                    prop_oneof![
                        "[a-z]{1,8}( [a-z]{1,8}){0,3}".prop_map(Block::text),
                        tool_use(false),
                        ("[a-z]{1,8}( [a-z]{1,8}){0,3}", prop::option::of(signature)).prop_map(
                            |(thinking, signature)| Block::Thinking {
                                thinking,
                                signature,
                            }
                        ),
                    ],
                    0..5,
                ),
                prop_oneof![
                    Just(ir::StopReason::EndTurn),
                    Just(ir::StopReason::MaxTokens),
                    Just(ir::StopReason::ContentFilter)
                ],
                usage_strategy(false, true),
            )
                .prop_map(|(content, mut stop_reason, usage)| {
                    if stop_reason == ir::StopReason::EndTurn
                        && content
                            .iter()
                            .any(|block| matches!(block, Block::ToolUse { .. }))
                    {
                        stop_reason = ir::StopReason::ToolUse;
                    }
                    ir::Response {
                        id: String::new(),
                        model: String::new(),
                        content,
                        stop_reason,
                        usage,
                    }
                })
                .boxed(),
        }
    }

    fn response_roundtrip(
        dialect: Dialect,
        mut response: ir::Response,
    ) -> Result<(), TestCaseError> {
        let context = ingress::translate::Context {
            response_id: "gw_1".into(),
            created: 1,
            model: "gw-model".into(),
            include_usage: false,
            echo: serde_json::Map::new(),
        };
        response.id = context.response_id.clone();
        response.model = context.model.clone();
        let body = ingress::translate::encode_response(dialect, &response, &context);
        let decoded = ingress::translate::decode_response(dialect, &body)
            .map_err(|error| TestCaseError::fail(error.to_string()))?;
        prop_assert_eq!(
            decoded,
            response,
            "body: {}",
            String::from_utf8_lossy(&body)
        );
        Ok(())
    }

    const DIALECTS: [Dialect; 4] = [
        Dialect::OpenAiChat,
        Dialect::OpenAiResponses,
        Dialect::Anthropic,
        Dialect::Gemini,
    ];

    proptest! {
        #[test]
        fn anthropic_requests_roundtrip(request in anthropic_request()) {
            roundtrip(Dialect::Anthropic, &request)?;
        }

        #[test]
        fn openai_chat_requests_roundtrip(request in openai_chat_request()) {
            roundtrip(Dialect::OpenAiChat, &request)?;
        }

        #[test]
        fn responses_requests_roundtrip(request in responses_request()) {
            roundtrip(Dialect::OpenAiResponses, &request)?;
        }

        #[test]
        fn gemini_requests_roundtrip(request in gemini_request()) {
            roundtrip(Dialect::Gemini, &request)?;
        }

        #[test]
        fn anthropic_responses_roundtrip(response in response_strategy(Dialect::Anthropic)) {
            response_roundtrip(Dialect::Anthropic, response)?;
        }

        #[test]
        fn openai_chat_responses_roundtrip(response in response_strategy(Dialect::OpenAiChat)) {
            response_roundtrip(Dialect::OpenAiChat, response)?;
        }

        #[test]
        fn responses_responses_roundtrip(response in response_strategy(Dialect::OpenAiResponses)) {
            response_roundtrip(Dialect::OpenAiResponses, response)?;
        }

        #[test]
        fn gemini_responses_roundtrip(response in response_strategy(Dialect::Gemini)) {
            response_roundtrip(Dialect::Gemini, response)?;
        }

        #[test]
        fn sse_survives_any_split(
            events in prop::collection::vec(sse_event(), 1..8),
            endings in prop::collection::vec(any::<u8>(), 1..8),
            cuts in prop::collection::vec(any::<usize>(), 0..12),
        ) {
            let bytes = framed(&events, &endings);
            let whole = decode_in_pieces(&bytes, &[]);
            prop_assert_eq!(&whole, &events);
            prop_assert_eq!(decode_in_pieces(&bytes, &cuts), whole);
        }

        /// Fuzz: arbitrary bytes never panic the request decoders.
        #[test]
        fn fuzz_request_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
            for dialect in DIALECTS {
                let _ = decode_request(dialect, &bytes);
            }
        }

        /// Fuzz: arbitrary JSON (far likelier to reach deep decoding than random bytes).
        #[test]
        fn fuzz_request_json(value in json_value()) {
            let bytes = serde_json::to_vec(&value).unwrap();
            for dialect in DIALECTS {
                if let Ok(request) = decode_request(dialect, &bytes) {
                    for upstream in DIALECTS {
                        let _ = upstream_request(
                            dialect,
                            upstream,
                            &bytes,
                            &request,
                            &Target::named(upstream, "m"),
                        );
                    }
                }
            }
        }

        /// Fuzz: arbitrary bytes, and SSE-framed arbitrary JSON, never panic a stream translator.
        #[test]
        fn fuzz_stream(bytes in prop::collection::vec(any::<u8>(), 0..512), events in prop::collection::vec(stream_event(), 0..12)) {
            let mut framed = Vec::new();
            for (name, value) in &events {
                if let Some(name) = name {
                    framed.extend_from_slice(format!("event: {name}\n").as_bytes());
                }
                framed.extend_from_slice(format!("data: {value}\n\n").as_bytes());
            }
            for upstream in DIALECTS {
                for client in DIALECTS {
                    for input in [&bytes, &framed] {
                        let mut translator = StreamTranslator::new(upstream, client, ingress::translate::Context::default());
                        if translator.push(input).is_err() {
                            let _ = translator.fail(&ingress::translate::ir::ApiError::new(ingress::translate::ir::ErrorClass::Api, "x"));
                        }
                        let _ = translator.finish();
                        let _ = translator.usage();
                    }
                }
            }
        }
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let keys = prop_oneof![
            Just("model"),
            Just("messages"),
            Just("role"),
            Just("content"),
            Just("type"),
            Just("text"),
            Just("tools"),
            Just("tool_choice"),
            Just("input"),
            Just("system"),
            Just("max_tokens"),
            Just("thinking"),
            Just("tool_calls"),
            Just("function"),
            Just("arguments"),
            Just("image_url"),
            Just("url"),
            Just("source"),
            Just("stream"),
            Just("name"),
            Just("tool_use_id"),
            Just("call_id"),
            Just("output"),
            Just("reasoning"),
            Just("budget_tokens"),
            Just("effort"),
            // Gemini's members, so the fuzzers reach its decoders past the first level.
            Just("contents"),
            Just("parts"),
            Just("systemInstruction"),
            Just("functionCall"),
            Just("functionResponse"),
            Just("functionDeclarations"),
            Just("parameters"),
            Just("args"),
            Just("response"),
            Just("id"),
            Just("inlineData"),
            Just("fileData"),
            Just("mimeType"),
            Just("fileUri"),
            Just("data"),
            Just("thought"),
            Just("thoughtSignature"),
            Just("toolConfig"),
            Just("functionCallingConfig"),
            Just("mode"),
            Just("allowedFunctionNames"),
            Just("generationConfig"),
            Just("thinkingConfig"),
            Just("thinkingBudget"),
            Just("thinkingLevel"),
            Just("candidates"),
            Just("finishReason"),
            Just("usageMetadata"),
            Just("promptFeedback"),
            Just("blockReason"),
            Just("error"),
        ];
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            prop_oneof![
                Just("user"),
                Just("assistant"),
                Just("system"),
                Just("tool"),
                Just("developer"),
                Just("text"),
                Just("image"),
                Just("tool_use"),
                Just("tool_result"),
                Just("function"),
                Just("function_call"),
                Just("function_call_output"),
                Just("auto"),
                Just("any"),
                Just("none"),
                Just("required"),
                Just("enabled"),
                Just("high"),
                Just("data:x;base64,"),
                Just("image_url"),
                Just("message"),
                Just("reasoning"),
                Just("thinking"),
                Just("model"),
                Just("STOP"),
                Just("ANY"),
                Just("OBJECT"),
                Just("image/png"),
                Just("application/pdf"),
                Just(""),
            ]
            .prop_map(Value::from),
        ];
        leaf.prop_recursive(5, 64, 6, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::vec((keys.clone(), inner), 0..6).prop_map(|entries| {
                    Value::Object(
                        entries
                            .into_iter()
                            .map(|(key, value)| (key.to_owned(), value))
                            .collect(),
                    )
                }),
            ]
        })
    }

    fn stream_event() -> impl Strategy<Value = (Option<String>, Value)> {
        let kind = prop_oneof![
            Just("message_start"),
            Just("content_block_start"),
            Just("content_block_delta"),
            Just("content_block_stop"),
            Just("message_delta"),
            Just("message_stop"),
            Just("error"),
            Just("ping"),
            Just("response.created"),
            Just("response.output_item.added"),
            Just("response.content_part.added"),
            Just("response.output_text.delta"),
            Just("response.function_call_arguments.delta"),
            Just("response.output_item.done"),
            Just("response.completed"),
        ];
        (prop::option::of(kind.clone()), kind, json_value(), 0usize..4).prop_map(|(name, kind, value, index)| {
            let mut value = match value {
                Value::Object(map) => Value::Object(map),
                other => json!({"delta": other, "choices": [{"index": 0, "delta": {"content": "x", "tool_calls": [{"index": index}]}}]}),
            };
            if let Some(object) = value.as_object_mut() {
                object.insert("type".into(), Value::from(kind));
                object.entry("index").or_insert(Value::from(index));
            }
            (name.map(str::to_owned), value)
        })
    }
}
