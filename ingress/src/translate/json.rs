//! Small JSON helpers shared by the dialects: path-aware parsing and unknown-field capture.

use std::collections::BTreeMap;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::TranslateError;

/// Parses a client body, naming the offending field on failure (`messages[2].content`).
pub fn parse_request<T: DeserializeOwned>(body: &[u8]) -> Result<T, TranslateError> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let message = error.inner().to_string();
        // serde names a missing field only in its message; the client should see it as `param`.
        let missing = message
            .strip_prefix("missing field `")
            .and_then(|rest| rest.split('`').next())
            .map(str::to_owned);
        // `.` is the root and `?` an unknown position (a syntax error): no field to name.
        let field = match (path.as_str(), missing) {
            ("." | "?", Some(missing)) => missing,
            ("." | "?", None) => String::new(),
            (_, Some(missing)) => format!("{path}.{missing}"),
            (_, None) => path,
        };
        TranslateError::BadRequest { field, message }
    })?;
    deserializer
        .end()
        .map_err(|error| TranslateError::BadRequest {
            field: String::new(),
            message: error.to_string(),
        })?;
    Ok(value)
}

/// Parses an upstream body; a failure is the upstream's fault, not the client's.
pub fn parse_upstream<T: DeserializeOwned>(body: &[u8]) -> Result<T, TranslateError> {
    serde_json::from_slice(body).map_err(|error| TranslateError::BadUpstream(error.to_string()))
}

/// Parses one stream event's data.
pub fn parse_event<T: DeserializeOwned>(data: &str) -> Result<T, TranslateError> {
    serde_json::from_str(data).map_err(|error| TranslateError::BadUpstream(error.to_string()))
}

/// The top-level fields of `body` that are not in `known`, kept verbatim.
pub fn unknown_fields(body: &[u8], known: &[&str]) -> Result<Map<String, Value>, TranslateError> {
    let all: BTreeMap<String, &RawValue> =
        serde_json::from_slice(body).map_err(|error| TranslateError::BadRequest {
            field: String::new(),
            message: error.to_string(),
        })?;
    let mut unknown = Map::new();
    for (key, raw) in all {
        if !known.contains(&key.as_str()) {
            let value: Value =
                serde_json::from_str(raw.get()).map_err(|error| TranslateError::BadRequest {
                    field: key.clone(),
                    message: error.to_string(),
                })?;
            unknown.insert(key, value);
        }
    }
    Ok(unknown)
}

/// The named top-level fields of `body`, kept verbatim.
pub fn raw_fields(body: &[u8], names: &[&str]) -> Result<Map<String, Value>, TranslateError> {
    let all: BTreeMap<String, &RawValue> =
        serde_json::from_slice(body).map_err(|error| TranslateError::BadRequest {
            field: String::new(),
            message: error.to_string(),
        })?;
    let mut fields = Map::new();
    for name in names {
        if let Some(raw) = all.get(*name) {
            let value: Value =
                serde_json::from_str(raw.get()).map_err(|error| TranslateError::BadRequest {
                    field: (*name).to_owned(),
                    message: error.to_string(),
                })?;
            fields.insert((*name).to_owned(), value);
        }
    }
    Ok(fields)
}

/// Serializes a wire value. Our wire types only have string keys, so this cannot fail in practice.
pub fn to_vec<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_default()
}

pub fn to_string<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// Dispatches a `"type"`-tagged object to a typed variant, keeping unknown types raw. The
/// known-type branch reports its own errors, so a malformed known block is never taken for an
/// unknown one.
pub fn type_tag(value: &Value) -> &str {
    value.get("type").and_then(Value::as_str).unwrap_or("")
}

pub fn from_value<T: DeserializeOwned, E: serde::de::Error>(value: Value) -> Result<T, E> {
    serde_json::from_value(value).map_err(E::custom)
}
