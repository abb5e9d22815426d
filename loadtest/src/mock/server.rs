//! The HTTP side of the mock: one handler that records, authenticates, validates, applies the
//! behavior and hands the request to the dialect that answers it.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::serve::ListenerExt;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::behavior::Behavior;
use super::errors::{ApiError, Dialect};
use super::prompt::{self, Prompt};
use super::stream::{Frame, Pacing, aborted_body, paced_body};
use super::{RecordedRequest, anthropic, embeddings, gemini, openai_chat, openai_responses};

/// Requests above this size get a 413, like the providers' 32 MB limit.
const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;

pub async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let router = Router::new().fallback(handle).with_state(shared);
    // Small SSE frames must leave at once; Nagle's algorithm would hold them back.
    let listener = listener.tap_io(|stream| {
        let _ = stream.set_nodelay(true);
    });
    axum::serve(listener, router)
        .with_graceful_shutdown(async move {
            let _ = shutdown.wait_for(|&stopping| stopping).await;
        })
        .await
}

/// State shared by every request of one mock.
pub struct Shared {
    behavior: RwLock<Behavior>,
    /// Requests that reached the failure check since the behavior was set.
    behavior_ordinal: AtomicU64,
    recording: AtomicBool,
    records: Mutex<Vec<RecordedRequest>>,
    recorded_count: watch::Sender<usize>,
    received: AtomicU64,
    per_model_requests: Mutex<HashMap<String, u32>>,
    prompt_cache: Mutex<HashSet<u64>>,
    valid_keys: Option<HashSet<String>>,
    shutdown: watch::Receiver<bool>,
    instance: u32,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    pub fn new(
        behavior: Behavior,
        record: bool,
        valid_keys: Option<HashSet<String>>,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.subsec_nanos());
        Self {
            behavior: RwLock::new(behavior),
            behavior_ordinal: AtomicU64::new(0),
            recording: AtomicBool::new(record),
            records: Mutex::new(Vec::new()),
            recorded_count: watch::Sender::new(0),
            received: AtomicU64::new(0),
            per_model_requests: Mutex::new(HashMap::new()),
            prompt_cache: Mutex::new(HashSet::new()),
            valid_keys,
            shutdown,
            instance: nanos ^ std::process::id().rotate_left(16),
        }
    }

    pub fn recorded(&self) -> Vec<RecordedRequest> {
        lock(&self.records).clone()
    }

    pub fn received_count(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }

    pub fn subscribe_recorded(&self) -> watch::Receiver<usize> {
        self.recorded_count.subscribe()
    }

    pub fn clear(&self) {
        let mut records = lock(&self.records);
        records.clear();
        self.recorded_count.send_replace(0);
        drop(records);
        lock(&self.per_model_requests).clear();
        lock(&self.prompt_cache).clear();
    }

    pub fn set_behavior(&self, behavior: Behavior) {
        let mut current = self
            .behavior
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        *current = behavior;
        self.behavior_ordinal.store(0, Ordering::Relaxed);
    }

    /// The behavior and this request's ordinal under it, read together so that a concurrent
    /// `set_behavior` cannot pair one behavior with the other's count.
    pub fn behavior(&self) -> (Behavior, u64) {
        let current = self.behavior.read().unwrap_or_else(PoisonError::into_inner);
        let ordinal = self.behavior_ordinal.fetch_add(1, Ordering::Relaxed);
        (current.clone(), ordinal)
    }

    pub fn set_recording(&self, record: bool) {
        self.recording.store(record, Ordering::Relaxed);
    }

    fn record(&self, request: RecordedRequest) {
        let mut records = lock(&self.records);
        records.push(request);
        self.recorded_count.send_replace(records.len());
    }

    /// Counts a request for `model` and says whether it is among the first `count`.
    fn within_first_requests(&self, model: &str, count: u32) -> bool {
        let mut counters = lock(&self.per_model_requests);
        let seen = counters.entry(model.to_owned()).or_insert(0);
        let within = *seen < count;
        *seen = seen.saturating_add(1);
        within
    }

    /// Looks the prompt's prefix up in the prompt cache, adding it when missing. Returns
    /// `(cache_read_tokens, cache_write_tokens)`: OpenAI and Gemini report only reads,
    /// Anthropic reports the first sighting as a cache write.
    pub fn cache_usage(&self, prompt: &Prompt, dialect: Dialect) -> (u32, u32) {
        if !prompt.cache_requested || prompt.prefix_tokens == 0 {
            return (0, 0);
        }
        let newly_inserted = lock(&self.prompt_cache).insert(prompt.prefix_hash);
        match (newly_inserted, dialect) {
            (false, _) => (prompt.prefix_tokens, 0),
            (true, Dialect::Anthropic) => (0, prompt.prefix_tokens),
            (true, Dialect::OpenAi | Dialect::Gemini) => (0, 0),
        }
    }

    /// A provider-looking identifier, unique within this mock: `prefix`, 8 hex digits naming the
    /// mock instance, then the request number.
    pub fn id(&self, prefix: &str, request_number: u64) -> String {
        format!("{prefix}{:08x}{request_number:012}", self.instance)
    }
}

/// The routes the mock serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Endpoint {
    ChatCompletions,
    Responses,
    Messages,
    CountTokens,
    Embeddings,
    Models,
    Health,
    /// Gemini's `:generateContent`, `:streamGenerateContent`, `:countTokens`, and `GET` of one
    /// model; the model is in the path.
    GenerateContent,
    StreamGenerateContent,
    GeminiCountTokens,
    GeminiModel,
}

impl Endpoint {
    /// `gemini_key`: the request carries `x-goog-api-key` or `key=`, which makes a `GET` of
    /// `/v1/models/{model}` Gemini's rather than OpenAI's.
    fn resolve(method: &Method, path: &str, gemini_key: bool) -> Option<Self> {
        let endpoint = if let Some((_, gemini_method)) = gemini::route(path) {
            match gemini_method {
                Some("generateContent") => Self::GenerateContent,
                Some("streamGenerateContent") => Self::StreamGenerateContent,
                Some("countTokens") => Self::GeminiCountTokens,
                None if gemini_key || path.starts_with("/v1beta/") => Self::GeminiModel,
                _ => return None,
            }
        } else {
            match path {
                "/v1/chat/completions" | "/chat/completions" => Self::ChatCompletions,
                "/v1/responses" | "/responses" => Self::Responses,
                "/v1/messages" => Self::Messages,
                "/v1/messages/count_tokens" => Self::CountTokens,
                "/v1/embeddings" | "/embeddings" => Self::Embeddings,
                "/v1/models" | "/models" | "/v1beta/models" => Self::Models,
                "/health" => Self::Health,
                _ => return None,
            }
        };
        let expected = match endpoint {
            Self::Models | Self::Health | Self::GeminiModel => Method::GET,
            _ => Method::POST,
        };
        (*method == expected).then_some(endpoint)
    }
}

/// Everything a dialect needs to answer one request.
pub struct Exchange<'a> {
    pub shared: &'a Shared,
    pub body: &'a Value,
    pub model: &'a str,
    pub behavior: &'a Behavior,
    pub stream: bool,
    pub request_number: u64,
    pub request_id: &'a str,
}

impl Exchange<'_> {
    pub fn created(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_secs())
    }

    /// A JSON response; with a disconnect configured, half the body is sent and then the
    /// connection dropped.
    pub fn json(&self, body: Vec<u8>, dialect: Dialect) -> Response {
        let mut response = if self.behavior.disconnect_after_chunks.is_some() {
            let full = Bytes::from(body);
            let middle = full.len() / 2;
            // The second half is never sent: the connection drops after the first.
            let frames = vec![
                Frame {
                    bytes: full.slice(..middle),
                    content: true,
                },
                Frame {
                    bytes: full.slice(middle..),
                    content: true,
                },
            ];
            let pacing = Pacing {
                disconnect_after: Some(1),
                ..Pacing::default()
            };
            Response::new(paced_body(frames, pacing, self.shared.shutdown.clone()))
        } else {
            Response::new(Body::from(body))
        };
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        self.add_request_id(&mut response, dialect);
        response
    }

    /// An SSE response sent with the behavior's pacing.
    pub fn sse(&self, frames: Vec<Frame>, dialect: Dialect) -> Response {
        let pacing = Pacing {
            chunk_delay: self.behavior.chunk_delay,
            disconnect_after: self.behavior.disconnect_after_chunks,
            stall_after: self.behavior.stall_after_chunks,
            linger: self.behavior.linger,
        };
        let mut response = Response::new(paced_body(frames, pacing, self.shared.shutdown.clone()));
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream; charset=utf-8"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        self.add_request_id(&mut response, dialect);
        response
    }

    fn add_request_id(&self, response: &mut Response, dialect: Dialect) {
        if let Some(name) = dialect.request_id_header()
            && let Ok(value) = HeaderValue::from_str(self.request_id)
        {
            response.headers_mut().insert(name, value);
        }
    }
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path();
    let query = parts.uri.query().unwrap_or_default();
    let gemini_key = parts.headers.contains_key("x-goog-api-key") || query_key(query).is_some();
    let Some(endpoint) = Endpoint::resolve(&parts.method, path, gemini_key) else {
        let request_number = shared.received.fetch_add(1, Ordering::Relaxed);
        let request_id = shared.id("req_", request_number);
        if path.starts_with("/v1beta") || gemini_key {
            return ApiError::new(404)
                .with_message(format!("Method not found ({} {path}).", parts.method))
                .render(Dialect::Gemini, &request_id);
        }
        let dialect = if path.starts_with("/v1/messages") {
            Dialect::Anthropic
        } else {
            Dialect::OpenAi
        };
        return ApiError::new(404)
            .with_message(format!("Invalid URL ({} {path})", parts.method))
            .with_code("unknown_url")
            .render(dialect, &request_id);
    };
    if endpoint == Endpoint::Health {
        return (StatusCode::OK, "ok").into_response();
    }
    let request_number = shared.received.fetch_add(1, Ordering::Relaxed);
    let request_id = shared.id("req_", request_number);
    let dialect = match endpoint {
        Endpoint::Messages | Endpoint::CountTokens => Dialect::Anthropic,
        Endpoint::GenerateContent
        | Endpoint::StreamGenerateContent
        | Endpoint::GeminiCountTokens
        | Endpoint::GeminiModel => Dialect::Gemini,
        Endpoint::Models if path == "/v1beta/models" || gemini_key => Dialect::Gemini,
        Endpoint::Models if parts.headers.contains_key("anthropic-version") => Dialect::Anthropic,
        _ => Dialect::OpenAi,
    };

    let bytes = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(bytes) => bytes,
        // Gemini answers an oversized request with a 400, not a 413.
        Err(_) if dialect == Dialect::Gemini => {
            return ApiError::new(400)
                .with_message(format!(
                    "Request payload size exceeds the limit: {MAX_BODY_BYTES} bytes."
                ))
                .render(dialect, &request_id);
        }
        Err(_) => return ApiError::new(413).render(dialect, &request_id),
    };
    let parsed: Result<Value, _> = if bytes.is_empty() {
        Ok(Value::Null)
    } else {
        serde_json::from_slice(&bytes)
    };
    if shared.recording.load(Ordering::Relaxed) {
        let body = match &parsed {
            Ok(value) => value.clone(),
            Err(_) => Value::String(String::from_utf8_lossy(&bytes).into_owned()),
        };
        shared.record(RecordedRequest {
            method: parts.method.to_string(),
            path: parts
                .uri
                .path_and_query()
                .map_or(path, |value| value.as_str())
                .to_owned(),
            headers: parts
                .headers
                .iter()
                .map(|(name, value)| {
                    (
                        name.as_str().to_owned(),
                        String::from_utf8_lossy(value.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            body,
        });
    }

    if let Err(rejection) = authenticate(&shared, &parts.headers, query, dialect) {
        return rejection.render(dialect, &request_id);
    }
    let gemini_model = gemini::route(path).map(|(model, _)| model);
    if endpoint == Endpoint::Models {
        return embeddings::models(dialect, &request_id);
    }
    if let (Endpoint::GeminiModel, Some(model)) = (endpoint, gemini_model) {
        return embeddings::gemini_model_by_id(model);
    }
    let body = match parsed {
        Ok(body) if body.is_object() => body,
        _ => {
            let message = match dialect {
                Dialect::OpenAi => {
                    "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)"
                }
                Dialect::Anthropic => {
                    "There was an issue with the format of your request: the body is not a JSON object."
                }
                Dialect::Gemini => "Invalid JSON payload received. Unexpected token.",
            };
            return ApiError::new(400)
                .with_message(message)
                .render(dialect, &request_id);
        }
    };
    if let Err(missing) = validate(endpoint, dialect, &body) {
        return missing.render(dialect, &request_id);
    }
    let model = gemini_model
        .or_else(|| body.get("model").and_then(Value::as_str))
        .unwrap_or_default();

    let (mut behavior, ordinal) = shared.behavior();
    let fail_first_for_model = behavior.apply_model_name(model);
    let mut shutdown = shared.shutdown.clone();
    if behavior.hang {
        let _ = shutdown.wait_for(|&stopping| stopping).await;
        return Response::new(aborted_body());
    }
    if !behavior.first_byte_delay.is_zero() {
        tokio::select! {
            () = tokio::time::sleep(behavior.first_byte_delay) => {}
            _ = shutdown.wait_for(|&stopping| stopping) => return Response::new(aborted_body()),
        }
    }
    if let Some(failure) = &behavior.failure {
        let fails = match fail_first_for_model {
            Some(count) => shared.within_first_requests(model, count),
            None => failure.applies_to(ordinal),
        };
        if fails {
            let mut error = ApiError::new(failure.status).with_message(format!(
                "{} (injected by the mock upstream for model {model})",
                injected_message(failure.status, dialect)
            ));
            error.retry_after_seconds = failure.retry_after_seconds;
            return error.render(dialect, &request_id);
        }
    }

    if let Some((field, inside)) = refused_field(&behavior.refuses, &body, dialect) {
        let error = match dialect {
            Dialect::OpenAi => ApiError::new(400)
                .with_message(format!(
                    "Unsupported parameter: '{field}' is not supported with this model."
                ))
                .with_param(field)
                .with_code("unsupported_parameter"),
            Dialect::Anthropic => {
                ApiError::new(400).with_message(format!("{field}: Extra inputs are not permitted"))
            }
            Dialect::Gemini => unknown_field(field, inside),
        };
        return error.render(dialect, &request_id);
    }

    let exchange = Exchange {
        shared: &shared,
        body: &body,
        model,
        behavior: &behavior,
        stream: endpoint == Endpoint::StreamGenerateContent
            || body.get("stream").and_then(Value::as_bool) == Some(true),
        request_number,
        request_id: &request_id,
    };
    match endpoint {
        Endpoint::ChatCompletions => openai_chat::answer(&exchange),
        Endpoint::Responses => openai_responses::answer(&exchange),
        Endpoint::Messages => anthropic::answer(&exchange),
        Endpoint::CountTokens => anthropic::count_tokens(&exchange),
        Endpoint::Embeddings => embeddings::answer(&exchange),
        Endpoint::GenerateContent => gemini::generate_content(&exchange),
        Endpoint::StreamGenerateContent => gemini::stream_generate_content(
            &exchange,
            query.split('&').any(|pair| pair == "alt=sse"),
        ),
        Endpoint::GeminiCountTokens => gemini::count_tokens(&exchange),
        Endpoint::Models | Endpoint::Health | Endpoint::GeminiModel => {
            StatusCode::NOT_FOUND.into_response()
        }
    }
}

/// The first refused field the body sets: at the top level, or for Gemini also inside
/// `generationConfig` (where `thinkingConfig` and most sampling fields live), with the proto
/// name of the message it was found in.
fn refused_field<'a>(
    refuses: &'a [String],
    body: &Value,
    dialect: Dialect,
) -> Option<(&'a str, Option<&'static str>)> {
    let sets = |object: &Value, field: &str| match dialect {
        Dialect::Gemini => prompt::proto_field(object, field).is_some(),
        Dialect::OpenAi | Dialect::Anthropic => object.get(field).is_some(),
    };
    refuses.iter().find_map(|field| {
        if sets(body, field) {
            Some((field.as_str(), None))
        } else if dialect == Dialect::Gemini
            && prompt::proto_field(body, "generationConfig")
                .is_some_and(|config| sets(config, field))
        {
            Some((field.as_str(), Some("generation_config")))
        } else {
            None
        }
    })
}

/// Gemini's 400 for a field its schema does not have, as Google's JSON parser words it.
fn unknown_field(field: &str, inside: Option<&str>) -> ApiError {
    let location = inside
        .map(|message| format!(" at '{message}'"))
        .unwrap_or_default();
    let description = format!(
        "Invalid JSON payload received. Unknown name \"{field}\"{location}: Cannot find field."
    );
    let mut violation = json!({"description": description});
    if let Some(message) = inside {
        violation["field"] = json!(message);
    }
    ApiError::new(400)
        .with_message(description)
        .with_gemini_detail(json!({
            "@type": "type.googleapis.com/google.rpc.BadRequest",
            "fieldViolations": [violation],
        }))
}

/// The `key` query parameter, Gemini's alternative to `x-goog-api-key`.
fn query_key(query: &str) -> Option<&str> {
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix("key="))
        .filter(|key| !key.is_empty())
}

fn injected_message(status: u16, dialect: Dialect) -> &'static str {
    match (status, dialect) {
        (429, Dialect::Gemini) => "Resource has been exhausted (e.g. check quota).",
        (503 | 529, Dialect::Gemini) => "The model is overloaded. Please try again later.",
        (504, Dialect::Gemini) => "Deadline expired before operation could complete.",
        (500..=599, Dialect::Gemini) => "An internal error has occurred.",
        (429, Dialect::OpenAi) => "Rate limit reached for requests",
        (429, Dialect::Anthropic) => {
            "This request would exceed the rate limit for your organization"
        }
        (529, _) | (503, _) => "Overloaded",
        (500..=599, _) => "The server had an error while processing your request",
        (413, _) => "Request too large",
        _ => "The request was rejected",
    }
}

fn authenticate(
    shared: &Shared,
    headers: &HeaderMap,
    query: &str,
    dialect: Dialect,
) -> Result<(), ApiError> {
    let key = match dialect {
        Dialect::OpenAi => header_str(headers, "authorization")
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|key| !key.is_empty())
            .ok_or_else(|| {
                ApiError::new(401)
                    .with_message("You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).")
                    .with_code("missing_api_key")
            })?,
        Dialect::Anthropic => header_str(headers, "x-api-key")
            .filter(|key| !key.is_empty())
            .ok_or_else(|| ApiError::new(401).with_message("x-api-key header is required"))?,
        // Without a key Google does not know the caller's project: a 403, not a 401.
        Dialect::Gemini => header_str(headers, "x-goog-api-key")
            .filter(|key| !key.is_empty())
            .or_else(|| query_key(query))
            .ok_or_else(|| {
                ApiError::new(403).with_message(
                    "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.",
                )
            })?,
    };
    if shared
        .valid_keys
        .as_ref()
        .is_some_and(|keys| !keys.contains(key))
    {
        return Err(match dialect {
            Dialect::OpenAi => ApiError::new(401).with_message(format!(
                "Incorrect API key provided: {}. You can find your API key at https://platform.openai.com/account/api-keys.",
                redact(key)
            )),
            Dialect::Anthropic => ApiError::new(401).with_message("invalid x-api-key"),
            Dialect::Gemini => {
                let message = "API key not valid. Please pass a valid API key.";
                ApiError::new(400)
                    .with_message(message)
                    .with_gemini_detail(json!({
                        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                        "reason": "API_KEY_INVALID",
                        "domain": "googleapis.com",
                        "metadata": {"service": "generativelanguage.googleapis.com"},
                    }))
                    .with_gemini_detail(json!({
                        "@type": "type.googleapis.com/google.rpc.LocalizedMessage",
                        "locale": "en-US",
                        "message": message,
                    }))
            }
        });
    }
    if dialect == Dialect::Anthropic && header_str(headers, "anthropic-version").is_none() {
        return Err(ApiError::new(400).with_message("anthropic-version: header is required"));
    }
    Ok(())
}

fn redact(key: &str) -> String {
    let start: String = key.chars().take(3).collect();
    let end: String = key
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("{start}***{end}")
}

fn validate(endpoint: Endpoint, dialect: Dialect, body: &Value) -> Result<(), ApiError> {
    let required: &[&'static str] = match endpoint {
        Endpoint::ChatCompletions => &["model", "messages"],
        Endpoint::Responses => &["model"],
        Endpoint::Messages => &["model", "messages", "max_tokens"],
        Endpoint::CountTokens => &["model", "messages"],
        Endpoint::Embeddings => &["model", "input"],
        Endpoint::GenerateContent | Endpoint::StreamGenerateContent => &["contents"],
        Endpoint::Models
        | Endpoint::Health
        | Endpoint::GeminiCountTokens
        | Endpoint::GeminiModel => &[],
    };
    let missing = |name: &str| match body.get(name) {
        None | Some(Value::Null) => true,
        // Gemini's proto has no null: an empty repeated field is an absent one.
        Some(Value::Array(items)) => dialect == Dialect::Gemini && items.is_empty(),
        Some(_) => false,
    };
    let Some(&name) = required.iter().find(|name| missing(name)) else {
        return Ok(());
    };
    Err(match dialect {
        Dialect::Anthropic => ApiError::new(400).with_message(format!("{name}: Field required")),
        Dialect::OpenAi => ApiError::new(400)
            .with_message(format!("Missing required parameter: '{name}'."))
            .with_param(name)
            .with_code("missing_required_parameter"),
        Dialect::Gemini => ApiError::new(400).with_message(format!(
            "* GenerateContentRequest.{name}: {name} is not specified\n"
        )),
    })
}
