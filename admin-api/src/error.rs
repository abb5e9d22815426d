//! The one error type of the admin API and its JSON shape:
//! `{"error":{"code":"…","message":"…","field":"…"}}` (`field` is null when no single input
//! field is at fault; a 409 adds `current_version`).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Who is at fault, and the machine code the client can branch on.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The input is invalid; `field` names the offending field.
    #[error("{message}")]
    BadRequest {
        code: &'static str,
        message: String,
        field: Option<String>,
    },
    #[error("{message}")]
    Unauthorized { code: &'static str, message: String },
    #[error("{message}")]
    Forbidden { code: &'static str, message: String },
    #[error("{entity} {id:?} does not exist")]
    NotFound { entity: &'static str, id: String },
    /// A stale version (or an id or unique name already taken).
    #[error("{message}")]
    Conflict {
        code: &'static str,
        message: String,
        field: Option<String>,
        current_version: Option<u64>,
    },
    #[error("too many failed attempts; retry in {retry_after_seconds} s")]
    TooManyRequests { retry_after_seconds: u64 },
    #[error("the request body is larger than {limit_bytes} bytes")]
    PayloadTooLarge { limit_bytes: usize },
    /// A dependency did not answer in time (the bus, or the projector for read-your-writes).
    #[error("{message}")]
    Unavailable { code: &'static str, message: String },
    /// Our fault. The detail is logged, never sent.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// A validation error naming `field`.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::BadRequest {
            code: "invalid_field",
            message: message.into(),
            field: Some(field.into()),
        }
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::Forbidden {
            code: "forbidden",
            message: message.into(),
        }
    }

    pub fn internal(error: impl std::fmt::Display) -> Self {
        Self::Internal(error.to_string())
    }

    #[must_use]
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            Self::Forbidden { .. } => StatusCode::FORBIDDEN,
            Self::NotFound { .. } => StatusCode::NOT_FOUND,
            Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadRequest { code, .. }
            | Self::Unauthorized { code, .. }
            | Self::Forbidden { code, .. }
            | Self::Conflict { code, .. }
            | Self::Unavailable { code, .. } => code,
            Self::NotFound { .. } => "not_found",
            Self::TooManyRequests { .. } => "too_many_attempts",
            Self::PayloadTooLarge { .. } => "payload_too_large",
            Self::Internal(_) => "internal",
        }
    }
}

impl From<tokio_postgres::Error> for ApiError {
    fn from(error: tokio_postgres::Error) -> Self {
        Self::Internal(format!("postgres: {error}"))
    }
}

impl From<deadpool_postgres::PoolError> for ApiError {
    fn from(error: deadpool_postgres::PoolError) -> Self {
        Self::Unavailable {
            code: "database_unavailable",
            message: format!("the database does not answer: {error}"),
        }
    }
}

impl From<serde_json::Error> for ApiError {
    fn from(error: serde_json::Error) -> Self {
        Self::Internal(format!("json: {error}"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = match &self {
            Self::Internal(detail) => {
                tracing::error!(error = %detail, "internal error");
                "internal error; see the admin API's log".to_owned()
            }
            other => other.to_string(),
        };
        let field = match &self {
            Self::BadRequest { field, .. } | Self::Conflict { field, .. } => field.clone(),
            _ => None,
        };
        let mut error = json!({"code": self.code(), "message": message, "field": field});
        if let Self::Conflict {
            current_version: Some(version),
            ..
        } = &self
        {
            error["current_version"] = json!(version);
        }
        let mut response = (status, axum::Json(json!({ "error": error }))).into_response();
        if let Self::TooManyRequests {
            retry_after_seconds,
        } = &self
            && let Ok(value) = HeaderValue::from_str(&retry_after_seconds.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }
}

/// Turns axum's JSON and query rejections into our error shape.
pub fn rejection(error: impl std::fmt::Display) -> ApiError {
    ApiError::BadRequest {
        code: "invalid_body",
        message: error.to_string(),
        field: None,
    }
}
