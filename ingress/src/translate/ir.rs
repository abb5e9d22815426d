//! The protocol-neutral representation every dialect decodes to and encodes from.
//!
//! It is shaped after the richest of the three dialects (Anthropic Messages) because that one can
//! say the most: tool results are blocks inside a user turn, thinking blocks carry signatures and
//! cache markers sit on blocks. The OpenAI dialects map onto it without loss for everything they
//! can express; what a target cannot express is dropped by its encoder with a [`Warning`].

use serde_json::{Map, Value};

use super::Dialect;

/// A request as the client meant it, before any upstream model is chosen.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Request {
    /// The model name the client asked for (an AxonGate alias).
    pub model: String,
    /// Leading system and developer instructions, in order.
    pub system: Vec<SystemBlock>,
    /// The conversation, oldest first.
    pub messages: Vec<Message>,
    pub params: SamplingParams,
    pub tools: Vec<Tool>,
    pub tool_choice: Option<ToolChoice>,
    /// `Some(false)` when the client asked for at most one tool call per turn.
    pub parallel_tool_calls: Option<bool>,
    pub reasoning: Option<Reasoning>,
    pub stream: bool,
    /// The client wants usage in the stream (always true for Anthropic and Responses clients).
    pub include_usage: bool,
    /// Top-level fields the client's dialect has and the representation does not model. They are
    /// forwarded only to an upstream of the same dialect and dropped with a warning otherwise.
    pub extra: Extra,
}

/// Unknown fields together with the dialect they came from.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Extra {
    pub dialect: Option<Dialect>,
    pub fields: Map<String, Value>,
}

impl Extra {
    pub fn new(dialect: Dialect, fields: Map<String, Value>) -> Self {
        Self {
            dialect: Some(dialect),
            fields,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstructionRole {
    System,
    Developer,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SystemBlock {
    pub role: InstructionRole,
    pub text: String,
    pub cache_control: Option<Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    User,
    Assistant,
    /// A system or developer message in the middle of the conversation (OpenAI dialects only);
    /// Anthropic encoding hoists it into `system` with a warning.
    System,
    Developer,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub role: Role,
    pub content: Vec<Block>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ImageSource {
    Base64 { media_type: String, data: String },
    Url { url: String },
}

#[derive(Debug, Clone, PartialEq)]
pub enum DocumentSource {
    /// The file's bytes in base64 (`application/pdf` unless said otherwise).
    Base64 {
        media_type: String,
        data: String,
    },
    /// A plain-text document's text (Anthropic's `text` source).
    Text {
        data: String,
    },
    Url {
        url: String,
    },
    /// An OpenAI file id: it names a file only to the OpenAI account that holds it.
    FileId {
        id: String,
    },
}

impl DocumentSource {
    /// The document in an OpenAI file object's fields (`filename`, `file_data` as a data URL,
    /// `file_url`, `file_id`: Chat's `file.file` and Responses' `input_file` share them).
    /// `None` for a URL when `urls` is false (Chat takes files by content or id only) and for a
    /// plain-text document (sent as text instead).
    pub fn to_openai_file(&self, title: Option<&str>, urls: bool) -> Option<Map<String, Value>> {
        let mut file = Map::new();
        match self {
            Self::Base64 { media_type, data } => {
                let extension = if media_type == "application/pdf" {
                    "pdf"
                } else {
                    "bin"
                };
                let filename = title.map_or_else(|| format!("document.{extension}"), str::to_owned);
                file.insert("filename".into(), filename.into());
                file.insert(
                    "file_data".into(),
                    format!("data:{media_type};base64,{data}").into(),
                );
            }
            Self::Url { url } if urls => {
                file.insert("file_url".into(), url.clone().into());
            }
            Self::FileId { id } => {
                file.insert("file_id".into(), id.clone().into());
            }
            Self::Url { .. } | Self::Text { .. } => return None,
        }
        Some(file)
    }

    /// An OpenAI file object (see [`Self::to_openai_file`]) as a document and its file name.
    pub fn from_openai_file(file: &Value) -> Option<(Self, Option<String>)> {
        let filename = file
            .get("filename")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let text = |name: &str| file.get(name).and_then(Value::as_str);
        let source = if let Some(data) = text("file_data") {
            match data
                .strip_prefix("data:")
                .and_then(|rest| rest.split_once(','))
                .and_then(|(header, data)| Some((header.strip_suffix(";base64")?, data)))
            {
                Some((media_type, data)) => Self::Base64 {
                    media_type: media_type.to_owned(),
                    data: data.to_owned(),
                },
                // Bare base64: OpenAI's file inputs are PDFs.
                None => Self::Base64 {
                    media_type: "application/pdf".to_owned(),
                    data: data.to_owned(),
                },
            }
        } else if let Some(url) = text("file_url") {
            Self::Url {
                url: url.to_owned(),
            }
        } else {
            Self::FileId {
                id: text("file_id")?.to_owned(),
            }
        };
        Some((source, filename))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Block {
    Text {
        text: String,
        cache_control: Option<Value>,
    },
    Image {
        source: ImageSource,
        /// OpenAI's `detail` hint; Anthropic has no equivalent.
        detail: Option<String>,
        cache_control: Option<Value>,
    },
    ToolUse {
        id: String,
        name: String,
        /// The arguments. OpenAI sends them as a JSON string; one that does not parse is kept as
        /// `Value::String` with the raw text so it is never silently changed.
        input: Value,
        cache_control: Option<Value>,
    },
    ToolResult {
        tool_use_id: String,
        /// Text and image blocks.
        content: Vec<Block>,
        is_error: bool,
        cache_control: Option<Value>,
    },
    /// A file the model reads: a PDF (Anthropic `document`, OpenAI `file` / `input_file`) or a
    /// plain-text document.
    Document {
        source: DocumentSource,
        /// The document's title or file name.
        title: Option<String>,
        cache_control: Option<Value>,
        /// Anthropic document fields the representation does not model (`citations`,
        /// `context`): written back toward Anthropic, dropped with a warning elsewhere.
        extra: serde_json::Map<String, Value>,
    },
    Thinking {
        thinking: String,
        signature: Option<String>,
    },
    RedactedThinking {
        data: String,
    },
    /// A block one dialect has and the representation does not model, kept as it came.
    Unknown {
        dialect: Dialect,
        raw: Value,
    },
}

impl Block {
    /// The block's Anthropic cache breakpoint, on the kinds that can carry one.
    pub fn cache_control(&self) -> Option<&Value> {
        match self {
            Self::Text { cache_control, .. }
            | Self::Image { cache_control, .. }
            | Self::Document { cache_control, .. }
            | Self::ToolUse { cache_control, .. }
            | Self::ToolResult { cache_control, .. } => cache_control.as_ref(),
            Self::Thinking { .. } | Self::RedactedThinking { .. } | Self::Unknown { .. } => None,
        }
    }

    /// A document from an OpenAI file object (Chat's `file.file`, a Responses `input_file`).
    pub fn document(file: &Value) -> Option<Self> {
        let (source, title) = DocumentSource::from_openai_file(file)?;
        Some(Self::Document {
            source,
            title,
            cache_control: None,
            extra: serde_json::Map::new(),
        })
    }

    pub fn text(text: impl Into<String>) -> Self {
        Self::Text {
            text: text.into(),
            cache_control: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct SamplingParams {
    pub max_tokens: Option<u64>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub top_k: Option<u64>,
    pub stop: Vec<String>,
    pub seed: Option<i64>,
    /// End-user identifier (OpenAI `user`, Anthropic `metadata.user_id`).
    pub user: Option<String>,
    /// Free-form metadata (OpenAI and Responses `metadata`).
    pub metadata: Option<Map<String, Value>>,
    pub response_format: Option<ResponseFormat>,
    /// OpenAI's `prompt_cache_key` (both OpenAI dialects): requests that share it share a
    /// prompt cache. Toward Anthropic it asks for cache breakpoints instead.
    pub prompt_cache_key: Option<String>,
    /// OpenAI's output verbosity (`verbosity` in Chat, `text.verbosity` in Responses).
    pub verbosity: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ResponseFormat {
    Text,
    JsonObject,
    JsonSchema {
        name: String,
        schema: Value,
        strict: Option<bool>,
        description: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Tool {
    Function {
        name: String,
        description: Option<String>,
        /// JSON Schema of the arguments.
        parameters: Value,
        strict: Option<bool>,
        cache_control: Option<Value>,
    },
    /// A freeform tool (Responses `custom`, Codex's `apply_patch`): the model writes raw text,
    /// optionally in a grammar (`format`). Toward a dialect without freeform tools it is a
    /// function with one string argument, [`FREEFORM_ARGUMENT`], and its calls come back to a
    /// Responses client as `custom_tool_call` items with the raw text.
    Custom {
        name: String,
        description: Option<String>,
        format: Option<Value>,
    },
    /// A provider-hosted tool (web search, computer use…) kept as it came.
    Unknown { dialect: Dialect, raw: Value },
}

/// The one argument of the function a freeform tool becomes.
pub const FREEFORM_ARGUMENT: &str = "input";

impl Tool {
    /// A freeform tool as a function: its description, with the format it expects spelled out
    /// (the grammar is described to the model, not enforced, which the warning records), and a
    /// schema of one string argument (empty for a tool that is not freeform).
    pub fn freeform_as_function(
        &self,
        position: usize,
        warnings: &mut Vec<Warning>,
    ) -> (String, Value) {
        let Self::Custom {
            name,
            description,
            format,
        } = self
        else {
            return (String::new(), Value::Null);
        };
        warnings.push(Warning::new(
            format!("tools[{position}]"),
            format!(
                "custom tool `{name}` sent as a function with one string argument `{FREEFORM_ARGUMENT}`; its grammar is described to the model, not enforced"
            ),
        ));
        let mut text = description.clone().unwrap_or_default();
        let field = |name: &str| {
            format
                .as_ref()
                .and_then(|format| format.get(name))
                .and_then(Value::as_str)
        };
        if !text.is_empty() {
            text.push_str("\n\n");
        }
        text.push_str(&format!(
            "Put the tool's whole input, as raw text, in the `{FREEFORM_ARGUMENT}` string argument."
        ));
        if let Some(definition) = field("definition") {
            text.push_str(&format!(
                " The text must match this {} grammar:\n{definition}",
                field("syntax").unwrap_or("formal")
            ));
        }
        let schema = serde_json::json!({
            "type": "object",
            "properties": {FREEFORM_ARGUMENT: {"type": "string"}},
            "required": [FREEFORM_ARGUMENT],
            "additionalProperties": false,
        });
        (text, schema)
    }

    /// The raw text of a call to a freeform tool made as a function call: the string argument,
    /// or the arguments as they came when they are not that object.
    pub fn freeform_input(input: &Value) -> String {
        match input.get(FREEFORM_ARGUMENT) {
            Some(Value::String(text)) => text.clone(),
            _ => match input {
                Value::String(text) => text.clone(),
                other => other.to_string(),
            },
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolChoice {
    Auto,
    None,
    /// OpenAI `required`, Anthropic `any`.
    Required,
    Named(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effort {
    Minimal,
    Low,
    Medium,
    High,
}

impl Effort {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Minimal => "minimal",
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "minimal" => Some(Self::Minimal),
            "low" => Some(Self::Low),
            "medium" => Some(Self::Medium),
            "high" => Some(Self::High),
            _ => None,
        }
    }

    /// The Anthropic thinking budget used for an OpenAI effort level (1024 is Anthropic's minimum).
    pub fn budget_tokens(self) -> u64 {
        match self {
            Self::Minimal | Self::Low => 1024,
            Self::Medium => 4096,
            Self::High => 16384,
        }
    }

    /// The effort level used for an Anthropic thinking budget.
    pub fn from_budget(budget_tokens: u64) -> Self {
        match budget_tokens {
            0..=2047 => Self::Low,
            2048..=8191 => Self::Medium,
            _ => Self::High,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Reasoning {
    /// Thinking explicitly off (Anthropic `{"type":"disabled"}`).
    Disabled,
    Effort(Effort),
    Budget(u64),
}

/// A complete (non-streamed) model answer.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Response {
    pub id: String,
    pub model: String,
    pub content: Vec<Block>,
    pub stop_reason: StopReason,
    pub usage: Usage,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum StopReason {
    #[default]
    EndTurn,
    MaxTokens,
    ToolUse,
    /// Which sequence matched, when the upstream says.
    StopSequence(Option<String>),
    /// OpenAI `content_filter`, Anthropic `refusal`.
    ContentFilter,
    /// Anthropic `pause_turn`.
    Pause,
    Other(String),
}

/// Token counts. `input_tokens` never includes cached tokens (the Anthropic convention); the
/// OpenAI encoders add them back because OpenAI counts them inside `prompt_tokens`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_read_tokens: u64,
    pub cache_write_tokens: u64,
    /// Reasoning tokens, part of `output_tokens`, when the upstream reports them.
    pub reasoning_tokens: Option<u64>,
}

impl Usage {
    /// Everything the prompt cost, cached or not (what OpenAI calls `prompt_tokens`).
    pub fn prompt_tokens(&self) -> u64 {
        self.input_tokens + self.cache_read_tokens + self.cache_write_tokens
    }

    pub fn apply(&mut self, update: &UsageUpdate) {
        if let Some(value) = update.input_tokens {
            self.input_tokens = value;
        }
        if let Some(value) = update.output_tokens {
            self.output_tokens = value;
        }
        if let Some(value) = update.cache_read_tokens {
            self.cache_read_tokens = value;
        }
        if let Some(value) = update.cache_write_tokens {
            self.cache_write_tokens = value;
        }
        if update.reasoning_tokens.is_some() {
            self.reasoning_tokens = update.reasoning_tokens;
        }
    }
}

/// A usage report inside a stream: each field present replaces the running value (both
/// dialects report cumulative counts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UsageUpdate {
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
    pub cache_read_tokens: Option<u64>,
    pub cache_write_tokens: Option<u64>,
    pub reasoning_tokens: Option<u64>,
}

impl From<Usage> for UsageUpdate {
    fn from(usage: Usage) -> Self {
        Self {
            input_tokens: Some(usage.input_tokens),
            output_tokens: Some(usage.output_tokens),
            cache_read_tokens: Some(usage.cache_read_tokens),
            cache_write_tokens: Some(usage.cache_write_tokens),
            reasoning_tokens: usage.reasoning_tokens,
        }
    }
}

/// The stream vocabulary. Block indexes are the decoder's own, increasing from 0; encoders
/// renumber as their dialect needs.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    MessageStart { id: String, model: String },
    BlockStart { index: usize, block: BlockStart },
    BlockDelta { index: usize, delta: BlockDelta },
    BlockStop { index: usize },
    Usage(UsageUpdate),
    MessageStop { stop_reason: StopReason },
    Error(ApiError),
}

#[derive(Debug, Clone, PartialEq)]
pub enum BlockStart {
    Text,
    Thinking,
    RedactedThinking { data: String },
    ToolUse { id: String, name: String },
}

#[derive(Debug, Clone, PartialEq)]
pub enum BlockDelta {
    Text(String),
    Thinking(String),
    Signature(String),
    /// A fragment of the tool call's JSON arguments.
    ToolArgs(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    InvalidRequest,
    Authentication,
    Permission,
    NotFound,
    RequestTooLarge,
    /// The path exists but not with this HTTP method.
    MethodNotAllowed,
    RateLimit,
    Api,
    Overloaded,
    Timeout,
    Unavailable,
}

impl ErrorClass {
    /// The class an upstream HTTP status means when the body says nothing better: read from
    /// the one error table ([`super::errors`]), a 408 as a timeout, any other 4xx as an invalid
    /// request and anything else as an API error.
    pub fn from_status(status: u16) -> Self {
        super::errors::class_of_status(status)
    }
}

/// An error to show a client, whatever produced it.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub kind: ErrorClass,
    pub message: String,
    /// The offending request field, when known.
    pub param: Option<String>,
    /// A provider-specific code (OpenAI `code`), kept for same-dialect clients.
    pub code: Option<String>,
    /// Seconds the client should wait, from the upstream's `Retry-After`.
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(kind: ErrorClass, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            param: None,
            code: None,
            retry_after: None,
        }
    }
}

/// The most characters OpenAI takes in `user` (and `safety_identifier`); Claude Code's
/// `metadata.user_id` is about 150.
pub const OPENAI_USER_MAX: usize = 64;

/// An end-user id for OpenAI's `user`: as given when it fits, else a stable digest of it (the
/// same user keeps one id, so abuse tracking and cache routing still see one user), with a
/// warning.
pub fn openai_user(user: Option<&str>, field: &str, warnings: &mut Vec<Warning>) -> Option<String> {
    let user = user?;
    if user.chars().count() <= OPENAI_USER_MAX {
        return Some(user.to_owned());
    }
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(user.as_bytes());
    let hex: String = digest.iter().map(|byte| format!("{byte:02x}")).collect();
    warnings.push(Warning::new(
        field,
        format!(
            "{} characters, more than OpenAI's {OPENAI_USER_MAX}; sent as a SHA-256 digest",
            user.chars().count()
        ),
    ));
    Some(format!("sha256-{}", &hex[..OPENAI_USER_MAX - 7]))
}

/// Something the target dialect cannot express and that was therefore dropped or changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// Where in the request, e.g. `messages[2].content[0].cache_control`.
    pub field: String,
    pub message: String,
}

impl Warning {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}
