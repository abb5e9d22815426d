//! Gemini API wire types (`POST /v1beta/models/{model}:generateContent` and
//! `:streamGenerateContent?alt=sse`), as documented in Google's API reference. The REST API
//! writes members in camelCase and also reads the protobuf names in snake_case; both are read.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use serde_with::skip_serializing_none;

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct GenerateContentRequest {
    #[serde(default)]
    pub contents: Vec<Content>,
    #[serde(alias = "system_instruction")]
    pub system_instruction: Option<Content>,
    /// Each a `Tool` object: `functionDeclarations`, or a built-in tool (`googleSearch`,
    /// `codeExecution`, `urlContext`…), read member by member.
    pub tools: Option<Vec<Map<String, Value>>>,
    #[serde(alias = "tool_config")]
    pub tool_config: Option<ToolConfig>,
    /// Read member by member ([`GENERATION_FIELDS`]); the others are kept as unmodelled.
    #[serde(alias = "generation_config")]
    pub generation_config: Option<Map<String, Value>>,
}

/// The request members the representation models (the rest are kept verbatim). `model` is
/// named in the URL; one in the body is ignored.
pub const REQUEST_FIELDS: &[&str] = &[
    "contents",
    "systemInstruction",
    "system_instruction",
    "tools",
    "toolConfig",
    "tool_config",
    "generationConfig",
    "generation_config",
    "model",
];

/// `generationConfig` members the representation models, in both spellings.
pub const GENERATION_FIELDS: &[&str] = &[
    "temperature",
    "topP",
    "top_p",
    "topK",
    "top_k",
    "maxOutputTokens",
    "max_output_tokens",
    "stopSequences",
    "stop_sequences",
    "seed",
    "responseMimeType",
    "response_mime_type",
    "responseSchema",
    "response_schema",
    "responseJsonSchema",
    "response_json_schema",
    "thinkingConfig",
    "thinking_config",
];

#[skip_serializing_none]
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
pub struct Content {
    pub role: Option<String>,
    #[serde(default)]
    pub parts: Vec<Part>,
}

/// One part of a content: exactly one of its data members is set, plus the thought markers.
#[skip_serializing_none]
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Part {
    pub text: Option<String>,
    /// A thought summary (the model's reasoning), not answer text.
    pub thought: Option<bool>,
    /// Opaque reasoning state the model wants back with this part in the next turn.
    #[serde(alias = "thought_signature")]
    pub thought_signature: Option<String>,
    #[serde(alias = "inline_data")]
    pub inline_data: Option<Blob>,
    #[serde(alias = "file_data")]
    pub file_data: Option<FileData>,
    #[serde(alias = "function_call")]
    pub function_call: Option<FunctionCall>,
    #[serde(alias = "function_response")]
    pub function_response: Option<FunctionResponse>,
    /// `executableCode`, `codeExecutionResult`, `videoMetadata`…: kept as they came.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Blob {
    #[serde(alias = "mime_type")]
    pub mime_type: String,
    pub data: String,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FileData {
    #[serde(alias = "mime_type")]
    pub mime_type: Option<String>,
    #[serde(alias = "file_uri")]
    pub file_uri: String,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FunctionCall {
    pub id: Option<String>,
    pub name: String,
    pub args: Option<Value>,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FunctionResponse {
    pub id: Option<String>,
    pub name: String,
    #[serde(default)]
    pub response: Value,
    /// Multimodal results (images) of newer models.
    pub parts: Option<Vec<Part>>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ToolConfig {
    #[serde(alias = "function_calling_config")]
    pub function_calling_config: Option<FunctionCallingConfig>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct FunctionCallingConfig {
    pub mode: Option<String>,
    #[serde(alias = "allowed_function_names")]
    pub allowed_function_names: Option<Vec<String>>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ThinkingConfig {
    #[serde(alias = "include_thoughts")]
    pub include_thoughts: Option<bool>,
    /// Tokens, `0` off, `-1` dynamic (Gemini 2.5).
    #[serde(alias = "thinking_budget")]
    pub thinking_budget: Option<i64>,
    /// `minimal`, `low`, `medium`, `high` (Gemini 3), any case.
    #[serde(alias = "thinking_level")]
    pub thinking_level: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct GenerateContentResponse {
    #[serde(default)]
    pub candidates: Vec<Candidate>,
    #[serde(alias = "prompt_feedback")]
    pub prompt_feedback: Option<Value>,
    #[serde(alias = "usage_metadata")]
    pub usage_metadata: Option<UsageMetadata>,
    #[serde(alias = "model_version")]
    pub model_version: Option<String>,
    #[serde(alias = "response_id")]
    pub response_id: Option<String>,
    /// An error reported inside a stream.
    pub error: Option<Value>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Candidate {
    pub content: Option<Content>,
    #[serde(alias = "finish_reason")]
    pub finish_reason: Option<String>,
    #[serde(default)]
    pub index: u32,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Copy, Serialize, Deserialize, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct UsageMetadata {
    /// The whole prompt, cached content included.
    #[serde(alias = "prompt_token_count")]
    pub prompt_token_count: Option<u64>,
    /// The answer, thoughts excluded.
    #[serde(alias = "candidates_token_count")]
    pub candidates_token_count: Option<u64>,
    #[serde(alias = "total_token_count")]
    pub total_token_count: Option<u64>,
    #[serde(alias = "cached_content_token_count")]
    pub cached_content_token_count: Option<u64>,
    #[serde(alias = "thoughts_token_count")]
    pub thoughts_token_count: Option<u64>,
    #[serde(alias = "tool_use_prompt_token_count")]
    pub tool_use_prompt_token_count: Option<u64>,
}
