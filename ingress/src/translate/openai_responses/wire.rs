//! OpenAI Responses wire types (`POST /v1/responses`), as in the API reference.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};
use serde_with::skip_serializing_none;

use crate::translate::json::{from_value, type_tag};

#[skip_serializing_none]
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct ResponsesRequest {
    pub model: String,
    pub input: Option<Input>,
    pub instructions: Option<String>,
    pub max_output_tokens: Option<u64>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub tools: Option<Vec<ResponsesTool>>,
    pub tool_choice: Option<ResponsesToolChoice>,
    pub parallel_tool_calls: Option<bool>,
    pub reasoning: Option<ReasoningParam>,
    pub text: Option<TextParam>,
    pub metadata: Option<Map<String, Value>>,
    pub user: Option<String>,
    pub stream: Option<bool>,
    pub prompt_cache_key: Option<String>,
}

pub const REQUEST_FIELDS: &[&str] = &[
    "model",
    "input",
    "instructions",
    "max_output_tokens",
    "temperature",
    "top_p",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "reasoning",
    "text",
    "metadata",
    "user",
    "stream",
    "prompt_cache_key",
];

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Input {
    Text(String),
    Items(Vec<InputItem>),
}

#[skip_serializing_none]
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct ReasoningParam {
    pub effort: Option<String>,
    pub summary: Option<String>,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct TextParam {
    pub format: Option<TextFormat>,
    pub verbosity: Option<String>,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TextFormat {
    Text {},
    JsonObject {},
    JsonSchema {
        name: String,
        schema: Value,
        description: Option<String>,
        strict: Option<bool>,
    },
}

#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum InputItem {
    Message(MessageItem),
    FunctionCall(FunctionCallItem),
    FunctionCallOutput(FunctionCallOutputItem),
    /// A call to a freeform (`custom`) tool, with its raw text input.
    CustomToolCall(CustomToolCallItem),
    /// Its output (the same shape as a function call's).
    CustomToolCallOutput(FunctionCallOutputItem),
    Reasoning(ReasoningItem),
    Unknown(Value),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CustomToolCallItem {
    pub call_id: String,
    pub name: String,
    #[serde(default)]
    pub input: String,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MessageItem {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub role: String,
    pub content: MessageContent,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MessageContent {
    Text(String),
    Parts(Vec<ContentPart>),
}

#[skip_serializing_none]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FunctionCallItem {
    #[serde(rename = "type")]
    pub kind: String,
    pub call_id: String,
    pub name: String,
    #[serde(default)]
    pub arguments: String,
    pub id: Option<String>,
    pub status: Option<String>,
    /// The namespace tool group the called function belongs to (e.g. an MCP server's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FunctionCallOutputItem {
    #[serde(rename = "type")]
    pub kind: String,
    pub call_id: String,
    pub output: FunctionOutput,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum FunctionOutput {
    Text(String),
    Parts(Vec<ContentPart>),
}

#[skip_serializing_none]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReasoningItem {
    #[serde(rename = "type")]
    pub kind: String,
    pub id: Option<String>,
    #[serde(default)]
    pub summary: Vec<SummaryPart>,
    pub encrypted_content: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SummaryPart {
    #[serde(rename = "type")]
    pub kind: String,
    pub text: String,
}

impl<'de> Deserialize<'de> for InputItem {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Ok(match type_tag(&value) {
            "" | "message" if value.get("role").is_some() => Self::Message(from_value(value)?),
            "function_call" => Self::FunctionCall(from_value(value)?),
            "function_call_output" => Self::FunctionCallOutput(from_value(value)?),
            "custom_tool_call" => Self::CustomToolCall(from_value(value)?),
            "custom_tool_call_output" => Self::CustomToolCallOutput(from_value(value)?),
            "reasoning" => Self::Reasoning(from_value(value)?),
            "" => {
                return Err(serde::de::Error::custom(
                    "an input item needs a `type` or a `role`",
                ));
            }
            _ => Self::Unknown(value),
        })
    }
}

/// Input and output content parts; files and anything newer are kept raw.
#[skip_serializing_none]
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContentPart {
    InputText {
        text: String,
    },
    OutputText {
        text: String,
        annotations: Option<Vec<Value>>,
    },
    InputImage {
        image_url: Option<String>,
        detail: Option<String>,
    },
    Refusal {
        refusal: String,
    },
    #[serde(untagged)]
    Unknown(Value),
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum KnownPart {
    InputText {
        text: String,
    },
    OutputText {
        text: String,
        annotations: Option<Vec<Value>>,
    },
    InputImage {
        image_url: Option<String>,
        detail: Option<String>,
    },
    Refusal {
        refusal: String,
    },
}

impl<'de> Deserialize<'de> for ContentPart {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        let known = matches!(type_tag(&value), "input_text" | "output_text" | "refusal")
            || (type_tag(&value) == "input_image" && value.get("image_url").is_some());
        if !known {
            return Ok(Self::Unknown(value));
        }
        Ok(match from_value::<KnownPart, D::Error>(value)? {
            KnownPart::InputText { text } => Self::InputText { text },
            KnownPart::OutputText { text, annotations } => Self::OutputText { text, annotations },
            KnownPart::InputImage { image_url, detail } => Self::InputImage { image_url, detail },
            KnownPart::Refusal { refusal } => Self::Refusal { refusal },
        })
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum ResponsesTool {
    Function(FunctionTool),
    /// A freeform tool (`{"type":"custom","name","description","format"}`).
    Custom(CustomTool),
    /// A group of tools (`{"type":"namespace","name","description","tools":[…]}`, as Codex
    /// sends MCP tools); expanded into its tools.
    Namespace(NamespaceTool),
    Unknown(Value),
}

#[skip_serializing_none]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CustomTool {
    pub name: String,
    pub description: Option<String>,
    pub format: Option<Value>,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NamespaceTool {
    pub name: String,
    pub description: Option<String>,
    #[serde(default)]
    pub tools: Vec<ResponsesTool>,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FunctionTool {
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    pub description: Option<String>,
    pub parameters: Option<Value>,
    pub strict: Option<bool>,
}

impl<'de> Deserialize<'de> for ResponsesTool {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Ok(match type_tag(&value) {
            "function" => Self::Function(from_value(value)?),
            "custom" if value.get("name").is_some() => Self::Custom(from_value(value)?),
            "namespace" if value.get("tools").is_some() => Self::Namespace(from_value(value)?),
            _ => Self::Unknown(value),
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ResponsesToolChoice {
    Mode(String),
    Named(NamedToolChoice),
    /// Hosted-tool choices (`{"type":"web_search_preview"}`), `allowed_tools`, anything newer.
    Other(Value),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NamedToolChoice {
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
}

/// The `response` object (non-streamed body, and inside lifecycle events).
#[skip_serializing_none]
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct ResponseObject {
    pub id: String,
    #[serde(default = "response_object")]
    pub object: String,
    #[serde(default)]
    pub created_at: u64,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    #[serde(skip_serializing_if = "skip_never")]
    pub error: Option<Value>,
    #[serde(default)]
    #[serde(skip_serializing_if = "skip_never")]
    pub incomplete_details: Option<IncompleteDetails>,
    #[serde(default)]
    pub model: String,
    #[serde(default)]
    pub output: Vec<OutputItem>,
    #[serde(default)]
    #[serde(skip_serializing_if = "skip_never")]
    pub usage: Option<ResponsesUsage>,
    /// The request fields the object repeats (`tools`, `tool_choice`, `parallel_tool_calls`)
    /// and, when decoding an upstream's, whatever else it carries.
    #[serde(flatten)]
    pub echo: serde_json::Map<String, Value>,
}

/// Keeps `null` fields: the Responses object always has them.
fn skip_never<T>(_: &T) -> bool {
    false
}

fn response_object() -> String {
    "response".to_owned()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IncompleteDetails {
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum OutputItem {
    Message(OutputMessage),
    FunctionCall(FunctionCallItem),
    Reasoning(ReasoningItem),
    Unknown(Value),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OutputMessage {
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
    pub status: String,
    pub role: String,
    pub content: Vec<ContentPart>,
}

impl<'de> Deserialize<'de> for OutputItem {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Ok(match type_tag(&value) {
            "message" => Self::Message(from_value(value)?),
            "function_call" => Self::FunctionCall(from_value(value)?),
            "reasoning" => Self::Reasoning(from_value(value)?),
            _ => Self::Unknown(value),
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct ResponsesUsage {
    #[serde(default)]
    pub input_tokens: u64,
    #[serde(default)]
    pub input_tokens_details: TokenDetails,
    #[serde(default)]
    pub output_tokens: u64,
    #[serde(default)]
    pub output_tokens_details: TokenDetails,
    #[serde(default)]
    pub total_tokens: u64,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct TokenDetails {
    pub cached_tokens: Option<u64>,
    pub reasoning_tokens: Option<u64>,
}
