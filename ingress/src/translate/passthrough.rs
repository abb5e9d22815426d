//! Same dialect on both sides is not a translation: the upstream gets the client's JSON as sent,
//! member by member with every value's bytes untouched, and only what the gateway owns is
//! rewritten in place:
//!
//! * `model` becomes the route's upstream model (and, in an answer, the alias again);
//! * an OpenAI Chat stream asks for usage (`stream_options.include_usage`), which the gateway
//!   bills from (the stream translator hides the usage chunk from a client that did not ask);
//! * an Anthropic request without `max_tokens` (which Anthropic requires) gets the route's
//!   output ceiling;
//! * what the route's model cannot take is removed with a warning: a reasoning parameter for a
//!   model without reasoning, an output limit above the model's ceiling (lowered).
//!
//! Fields that would let a client choose where the gateway sends a request or with which
//! credentials — the routing and credential fields that proxies downstream of us (LiteLLM and
//! the like) honour — are refused with a 400 naming the field: see [`REFUSED_FIELDS`].

use std::fmt::Write as _;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use shared::config::ReasoningSupport;

use super::ir::Warning;
use super::target::Target;
use super::{Dialect, TranslateError};

/// Top-level request fields the gateway refuses: a downstream proxy would read them as the
/// upstream's address, credentials or extra headers, or (Anthropic's `mcp_servers`) have the
/// provider call servers the operator never configured.
pub const REFUSED_FIELDS: [&str; 16] = [
    "api_base",
    "base_url",
    "api_key",
    "api_version",
    "api_type",
    "organization",
    "extra_headers",
    "headers",
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_session_token",
    "aws_region_name",
    "vertex_credentials",
    "vertex_project",
    "vertex_location",
    "mcp_servers",
];

/// A member name: borrowed from the input unless it had escapes.
enum Key<'a> {
    Borrowed(&'a str),
    Owned(String),
}

impl Key<'_> {
    fn as_str(&self) -> &str {
        match self {
            Key::Borrowed(key) => key,
            Key::Owned(key) => key,
        }
    }
}

impl<'de> serde::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
                formatter.write_str("a member name")
            }
            fn visit_borrowed_str<E>(self, key: &'de str) -> Result<Self::Value, E> {
                Ok(Key::Borrowed(key))
            }
            fn visit_str<E>(self, key: &str) -> Result<Self::Value, E> {
                Ok(Key::Owned(key.to_owned()))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

/// The members of one JSON object, in order, each value as its raw bytes.
struct Members<'a>(Vec<(Key<'a>, &'a RawValue)>);

impl<'de> serde::Deserialize<'de> for Members<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MembersVisitor;
        impl<'de> Visitor<'de> for MembersVisitor {
            type Value = Members<'de>;
            fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
                formatter.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut members = Vec::with_capacity(map.size_hint().unwrap_or(8));
                while let Some(member) = map.next_entry::<Key<'de>, &'de RawValue>()? {
                    members.push(member);
                }
                Ok(Members(members))
            }
        }
        deserializer.deserialize_map(MembersVisitor)
    }
}

/// What replaces a member's value.
enum Edit {
    Keep,
    Remove,
    Replace(String),
}

impl Members<'_> {
    fn parse(body: &[u8]) -> Option<Members<'_>> {
        serde_json::from_slice(body).ok()
    }

    fn get(&self, name: &str) -> Option<&RawValue> {
        self.0
            .iter()
            .find(|(key, _)| key.as_str() == name)
            .map(|(_, value)| *value)
    }

    /// Writes the object back, member by member: edited values replaced, `added` appended.
    fn write(&self, mut edit: impl FnMut(&str) -> Edit, added: &[(&str, String)]) -> Vec<u8> {
        let mut out = String::with_capacity(
            self.0
                .iter()
                .map(|(key, value)| key.as_str().len() + value.get().len() + 4)
                .sum::<usize>()
                + 64,
        );
        out.push('{');
        let mut first = true;
        let mut member = |out: &mut String, key: &str, value: &str| {
            if !first {
                out.push(',');
            }
            first = false;
            push_json_string(out, key);
            out.push(':');
            out.push_str(value);
        };
        for (key, value) in &self.0 {
            match edit(key.as_str()) {
                Edit::Keep => member(&mut out, key.as_str(), value.get()),
                Edit::Remove => {}
                Edit::Replace(replacement) => member(&mut out, key.as_str(), &replacement),
            }
        }
        for (key, value) in added {
            member(&mut out, key, value);
        }
        out.push('}');
        out.into_bytes()
    }
}

fn push_json_string(out: &mut String, text: &str) {
    // serde_json escapes exactly as JSON requires; a String never fails to serialize.
    match serde_json::to_string(text) {
        Ok(quoted) => out.push_str(&quoted),
        Err(_) => {
            let _ = write!(out, "\"{}\"", text.escape_default());
        }
    }
}

fn as_u64(value: Option<&RawValue>) -> Option<u64> {
    value.and_then(|raw| raw.get().trim().parse().ok())
}

/// The client's request for an upstream of its own dialect (see the module docs).
pub fn request(
    dialect: Dialect,
    body: &[u8],
    target: &Target<'_>,
    warnings: &mut Vec<Warning>,
) -> Result<Vec<u8>, TranslateError> {
    let members = Members::parse(body).ok_or_else(|| TranslateError::BadRequest {
        field: String::new(),
        message: "the request body must be a JSON object".into(),
    })?;
    if let Some((key, _)) = members
        .0
        .iter()
        .find(|(key, _)| REFUSED_FIELDS.contains(&key.as_str()))
    {
        return Err(TranslateError::BadRequest {
            field: key.as_str().to_owned(),
            message:
                "not accepted: the gateway chooses the upstream, its address and its credentials"
                    .into(),
        });
    }
    let drop_reasoning = target.reasoning == ReasoningSupport::None;
    let ceiling = target.max_output_tokens.map(u64::from);
    if dialect == Dialect::Gemini {
        return Ok(gemini_request(
            &members,
            target,
            drop_reasoning,
            ceiling,
            warnings,
        ));
    }
    let reasoning_fields: &[&str] = match dialect {
        Dialect::OpenAiChat => &["reasoning_effort", "reasoning"],
        Dialect::OpenAiResponses => &["reasoning"],
        Dialect::Anthropic => &["thinking"],
        Dialect::Gemini => &[],
    };
    let limit_fields: &[&str] = match dialect {
        Dialect::OpenAiChat => &["max_tokens", "max_completion_tokens"],
        Dialect::OpenAiResponses => &["max_output_tokens"],
        Dialect::Anthropic => &["max_tokens"],
        Dialect::Gemini => &[],
    };
    let streaming = members.get("stream").is_some_and(|raw| raw.get() == "true");
    let mut added = Vec::new();
    if dialect == Dialect::Anthropic && members.get("max_tokens").is_none() {
        let limit = ceiling.unwrap_or(super::anthropic::DEFAULT_MAX_TOKENS);
        added.push(("max_tokens", limit.to_string()));
    }
    if dialect == Dialect::OpenAiChat && streaming && members.get("stream_options").is_none() {
        added.push(("stream_options", r#"{"include_usage":true}"#.to_owned()));
    }
    let model = serde_json::to_string(target.model).unwrap_or_else(|_| "\"\"".into());
    let body = members.write(
        |key| {
            if key == "model" {
                return Edit::Replace(model.clone());
            }
            if drop_reasoning && reasoning_fields.contains(&key) {
                let disabled = members
                    .get(key)
                    .is_some_and(|raw| raw.get().contains("\"disabled\"") || raw.get() == "null");
                if !disabled {
                    warnings.push(Warning::new(
                        key,
                        format!(
                            "{} takes no reasoning parameter (route capabilities); dropped",
                            target.model
                        ),
                    ));
                }
                return Edit::Remove;
            }
            if limit_fields.contains(&key)
                && let (Some(ceiling), Some(asked)) = (ceiling, as_u64(members.get(key)))
                && asked > ceiling
            {
                warnings.push(Warning::new(
                    key,
                    format!(
                        "{asked} is above {}'s output limit; lowered to {ceiling}",
                        target.model
                    ),
                ));
                return Edit::Replace(ceiling.to_string());
            }
            if key == "stream_options"
                && dialect == Dialect::OpenAiChat
                && streaming
                && let Some(options) = members
                    .get(key)
                    .and_then(|raw| Members::parse(raw.get().as_bytes()))
            {
                let has_usage = options.get("include_usage").is_some();
                let include_usage = [("include_usage", "true".to_owned())];
                let appended: &[(&str, String)] = if has_usage { &[] } else { &include_usage };
                let rewritten = options.write(
                    |option| {
                        if option == "include_usage" {
                            Edit::Replace("true".into())
                        } else {
                            Edit::Keep
                        }
                    },
                    appended,
                );
                let rewritten = String::from_utf8(rewritten).unwrap_or_default();
                return Edit::Replace(rewritten);
            }
            Edit::Keep
        },
        &added,
    );
    Ok(body)
}

/// A Gemini request for a Gemini upstream: the model is in the URL, so a `model` member is
/// removed; the reasoning and output limit live in `generationConfig`, rewritten there.
fn gemini_request(
    members: &Members<'_>,
    target: &Target<'_>,
    drop_reasoning: bool,
    ceiling: Option<u64>,
    warnings: &mut Vec<Warning>,
) -> Vec<u8> {
    members.write(
        |key| match key {
            "model" => Edit::Remove,
            "generationConfig" | "generation_config" => {
                let Some(config) = members
                    .get(key)
                    .and_then(|raw| Members::parse(raw.get().as_bytes()))
                else {
                    return Edit::Keep;
                };
                let mut changed = false;
                let rewritten = config.write(
                    |inner| match inner {
                        "thinkingConfig" | "thinking_config" if drop_reasoning => {
                            let off = config
                                .get(inner)
                                .and_then(|raw| serde_json::from_str::<serde_json::Value>(raw.get()).ok())
                                .is_some_and(|thinking| {
                                    thinking
                                        .get("thinkingBudget")
                                        .or_else(|| thinking.get("thinking_budget"))
                                        .and_then(serde_json::Value::as_i64)
                                        == Some(0)
                                });
                            if !off {
                                warnings.push(Warning::new(
                                    format!("{key}.{inner}"),
                                    format!(
                                        "{} takes no reasoning parameter (route capabilities); dropped",
                                        target.model
                                    ),
                                ));
                            }
                            changed = true;
                            Edit::Remove
                        }
                        "maxOutputTokens" | "max_output_tokens" => {
                            match (ceiling, as_u64(config.get(inner))) {
                                (Some(ceiling), Some(asked)) if asked > ceiling => {
                                    warnings.push(Warning::new(
                                        format!("{key}.{inner}"),
                                        format!(
                                            "{asked} is above {}'s output limit; lowered to {ceiling}",
                                            target.model
                                        ),
                                    ));
                                    changed = true;
                                    Edit::Replace(ceiling.to_string())
                                }
                                _ => Edit::Keep,
                            }
                        }
                        _ => Edit::Keep,
                    },
                    &[],
                );
                if changed {
                    Edit::Replace(String::from_utf8(rewritten).unwrap_or_default())
                } else {
                    Edit::Keep
                }
            }
            _ => Edit::Keep,
        },
        &[],
    )
}

/// An upstream answer for a client of the same dialect: as received, with the top-level `model`
/// (Gemini's `modelVersion`) set to the alias the client asked for. An answer that is not a
/// JSON object is returned as is.
#[must_use]
pub fn response(dialect: Dialect, body: &[u8], alias: &str) -> Vec<u8> {
    let member = if dialect == Dialect::Gemini {
        "modelVersion"
    } else {
        "model"
    };
    with_member(body, &[], member, alias).unwrap_or_else(|| body.to_vec())
}

/// `body` without its top-level member `name`, every other member's bytes untouched; `None`
/// when the body is not an object or has no such member.
#[must_use]
pub fn without_member(body: &[u8], name: &str) -> Option<Vec<u8>> {
    let members = Members::parse(body)?;
    members.get(name)?;
    Some(members.write(
        |key| {
            if key == name {
                Edit::Remove
            } else {
                Edit::Keep
            }
        },
        &[],
    ))
}

/// `body` with the string member `model` of the object at `path` (member names from the top)
/// set to `alias`, every other member's bytes untouched; `None` when there is no such member.
#[must_use]
pub fn with_model(body: &[u8], path: &[&str], alias: &str) -> Option<Vec<u8>> {
    with_member(body, path, "model", alias)
}

/// `body` with the string member `member` of the object at `path` set to `alias` (see
/// [`with_model`]).
#[must_use]
pub fn with_member(body: &[u8], path: &[&str], member: &str, alias: &str) -> Option<Vec<u8>> {
    let members = Members::parse(body)?;
    let (replacement, field) = match path.split_first() {
        None => {
            if !members.get(member)?.get().starts_with('"') {
                return None;
            }
            (serde_json::to_string(alias).ok()?, member)
        }
        Some((outer, rest)) => {
            let inner = with_member(members.get(outer)?.get().as_bytes(), rest, member, alias)?;
            (String::from_utf8(inner).ok()?, *outer)
        }
    };
    Some(members.write(
        |key| {
            if key == field {
                Edit::Replace(replacement.clone())
            } else {
                Edit::Keep
            }
        },
        &[],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(model: &str) -> Target<'_> {
        Target::named(Dialect::OpenAiChat, model)
    }

    #[test]
    fn values_keep_their_bytes_and_only_the_model_changes() {
        let body = br#"{"model":"alias","messages":[{"role":"user","content":"hi"}],"x_unknown":{"a":1.50,"b":[ 1, 2 ]},"temperature":0.70}"#;
        let out = request(Dialect::OpenAiChat, body, &target("gpt-4.1"), &mut vec![]).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"model":"gpt-4.1","messages":[{"role":"user","content":"hi"}],"x_unknown":{"a":1.50,"b":[ 1, 2 ]},"temperature":0.70}"#
        );
    }

    #[test]
    fn stream_usage_is_asked_for_in_place() {
        let mut warnings = vec![];
        let body = br#"{"model":"a","stream":true,"stream_options":{"x":1},"messages":[]}"#;
        let out = request(Dialect::OpenAiChat, body, &target("gpt-4.1"), &mut warnings).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"model":"gpt-4.1","stream":true,"stream_options":{"x":1,"include_usage":true},"messages":[]}"#
        );
        let body = br#"{"model":"a","stream":true,"stream_options":{"include_usage":false},"messages":[]}"#;
        let out = request(Dialect::OpenAiChat, body, &target("gpt-4.1"), &mut warnings).unwrap();
        assert!(
            String::from_utf8(out)
                .unwrap()
                .contains(r#""stream_options":{"include_usage":true}"#)
        );
        let body = br#"{"model":"a","stream":true,"stream_options":{},"messages":[]}"#;
        let out = request(Dialect::OpenAiChat, body, &target("gpt-4.1"), &mut warnings).unwrap();
        assert!(
            String::from_utf8(out)
                .unwrap()
                .contains(r#""stream_options":{"include_usage":true}"#)
        );
        assert!(warnings.is_empty());
    }

    #[test]
    fn routing_and_credential_fields_are_refused() {
        for field in REFUSED_FIELDS {
            let body = format!(r#"{{"model":"a","messages":[],"{field}":"x"}}"#);
            let error = request(
                Dialect::OpenAiChat,
                body.as_bytes(),
                &target("gpt-4.1"),
                &mut vec![],
            )
            .unwrap_err();
            assert!(
                matches!(&error, TranslateError::BadRequest { field: named, .. } if named == field),
                "{field}: {error:?}"
            );
        }
    }

    #[test]
    fn the_answer_names_the_alias() {
        let body = br#"{"id":"x","model":"gpt-4.1-2025-04-14","choices":[]}"#;
        assert_eq!(
            String::from_utf8(response(Dialect::OpenAiChat, body, "my-alias")).unwrap(),
            r#"{"id":"x","model":"my-alias","choices":[]}"#
        );
        assert_eq!(response(Dialect::Gemini, b"not json", "a"), b"not json");
    }

    #[test]
    fn a_nested_model_is_renamed_in_place_and_nothing_else_moves() {
        let event = br#"{"type":"response.created","response":{"id":"r","model":"gpt-4.1","tools":[{"type":"image_generation","model":"gpt-image-1"}],"x":1.50}}"#;
        assert_eq!(
            String::from_utf8(with_model(event, &["response"], "alias").unwrap()).unwrap(),
            r#"{"type":"response.created","response":{"id":"r","model":"alias","tools":[{"type":"image_generation","model":"gpt-image-1"}],"x":1.50}}"#
        );
        assert_eq!(with_model(br#"{"type":"ping"}"#, &["message"], "a"), None);
        assert_eq!(with_model(br#"{"model":null}"#, &[], "a"), None);
        assert_eq!(with_model(b"[DONE]", &[], "a"), None);
    }
}
