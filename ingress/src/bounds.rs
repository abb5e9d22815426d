//! Bounds on what a client names: one request must not be able to make an event, a log line or
//! a metric series larger than the gateway can carry.
//!
//! A model name is recorded in the request event and looked up in the config; a longer name than
//! any alias can be is refused with 400 before anything records it, and the error does not echo
//! it. The end-user id and metadata are only forwarded upstream, but are bounded too so that one
//! body cannot carry a megabyte "identifier" through the gateway. Request ids from
//! `x-request-id` are bounded where they are read (`proxy::request_id`).

use crate::error::IngressError;
use crate::translate::ir;

/// The longest model name, end-user id or other client-chosen identifier accepted, in bytes.
pub const MAX_IDENTIFIER_BYTES: usize = 256;

/// The most bytes of `metadata` (as JSON) a request may carry.
pub const MAX_METADATA_BYTES: usize = 16 * 1024;

/// The metric label for a model name that is not a configured alias: labels come only from
/// configuration, so clients cannot create series.
pub const UNKNOWN_LABEL: &str = "unknown";

/// `value` cut to at most [`MAX_IDENTIFIER_BYTES`] on a character boundary, for recording.
#[must_use]
pub fn for_record(value: &str) -> String {
    if value.len() <= MAX_IDENTIFIER_BYTES {
        return value.to_owned();
    }
    let mut end = MAX_IDENTIFIER_BYTES;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    value[..end].to_owned()
}

/// Refuses a model name longer than any alias may be.
///
/// # Errors
/// 400 naming the field and the bound, without the value.
pub fn check_model(model: &str) -> Result<(), IngressError> {
    check_identifier("model", model)
}

fn check_identifier(field: &str, value: &str) -> Result<(), IngressError> {
    if value.len() > MAX_IDENTIFIER_BYTES {
        return Err(IngressError::BadRequest {
            field: Some(field.into()),
            message: format!(
                "`{field}` is {} bytes long; at most {MAX_IDENTIFIER_BYTES} are accepted",
                value.len()
            ),
        });
    }
    Ok(())
}

/// Checks every client-chosen identifier of a decoded request.
///
/// # Errors
/// 400 for the first one out of bounds.
pub fn check_request(request: &ir::Request) -> Result<(), IngressError> {
    check_model(&request.model)?;
    if let Some(user) = &request.params.user {
        check_identifier("user", user)?;
    }
    if let Some(metadata) = &request.params.metadata {
        let size = serde_json::to_vec(metadata).map_or(usize::MAX, |bytes| bytes.len());
        if size > MAX_METADATA_BYTES {
            return Err(IngressError::BadRequest {
                field: Some("metadata".into()),
                message: format!(
                    "`metadata` is {size} bytes as JSON; at most {MAX_METADATA_BYTES} are accepted"
                ),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_cut_on_a_character_boundary() {
        assert_eq!(for_record("gpt"), "gpt");
        let long = "é".repeat(200); // 400 bytes
        let cut = for_record(&long);
        assert!(cut.len() <= MAX_IDENTIFIER_BYTES && cut.chars().all(|c| c == 'é'));
    }

    #[test]
    fn long_models_are_refused_without_echo() {
        let model = "m".repeat(MAX_IDENTIFIER_BYTES + 1);
        let error = check_model(&model).unwrap_err();
        assert_eq!(
            error.to_api_error().kind,
            crate::translate::ir::ErrorClass::InvalidRequest
        );
        assert!(!error.to_string().contains(&model));
        assert!(check_model(&"m".repeat(MAX_IDENTIFIER_BYTES)).is_ok());
    }
}
