//! Request extractors that fail with the admin API's error shape.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// A JSON body. Handlers take `Body<serde_json::Value>` and [`parse`] it into their input type
/// after authorization, so a caller without permission learns nothing from validation errors.
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let RawBody(bytes) = RawBody::from_request(request, state).await?;
        let bytes: &[u8] = if bytes.is_empty() { b"{}" } else { &bytes };
        let deserializer = &mut serde_json::Deserializer::from_slice(bytes);
        serde_path_to_error::deserialize(deserializer)
            .map(Body)
            .map_err(|error| ApiError::BadRequest {
                code: "invalid_body",
                message: format!("the body is not valid JSON: {}", error.inner()),
                field: None,
            })
    }
}

/// The body's bytes, at most [`crate::MAX_BODY_BYTES`]: a larger body is 413, any other
/// failure to read it 400.
pub struct RawBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        Bytes::from_request(request, state)
            .await
            .map(RawBody)
            .map_err(|rejection| {
                if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::PayloadTooLarge {
                        limit_bytes: crate::MAX_BODY_BYTES,
                    }
                } else {
                    crate::error::rejection(rejection)
                }
            })
    }
}

/// Deserializes a JSON value into an input type, naming the offending field on failure.
///
/// # Errors
/// 400 `invalid_field` with the path of the field.
pub fn parse<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(value).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner().to_string();
        // A missing or unknown field is named in serde's message, not in the path.
        let field = if path == "." {
            field_from_message(&inner)
        } else {
            Some(path)
        };
        ApiError::BadRequest {
            code: "invalid_field",
            message: inner,
            field,
        }
    })
}

fn field_from_message(message: &str) -> Option<String> {
    let start = message.find('`')? + 1;
    let end = start + message[start..].find('`')?;
    Some(message[start..end].to_owned())
}
