//! Ingress errors, named for who is at fault, rendered in the caller's dialect.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use shared::request::ErrorKind;

use crate::translate::{self, Dialect, ir};

#[derive(Debug, Clone, thiserror::Error)]
pub enum IngressError {
    #[error("{message}")]
    BadRequest {
        field: Option<String>,
        message: String,
    },
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("the model `{0}` does not exist or you do not have access to it")]
    ModelNotFound(String),
    #[error("request body is larger than the limit of {0} bytes")]
    PayloadTooLarge(usize),
    #[error("{method} is not allowed on {path}; use {allowed}")]
    MethodNotAllowed {
        method: String,
        path: String,
        allowed: &'static str,
    },
    #[error("rate limit reached: {what}; retry after {retry_after_secs}s")]
    RateLimited { what: String, retry_after_secs: u64 },
    #[error("budget exhausted for {whose} ({period} budget)")]
    BudgetExceeded {
        whose: String,
        period: String,
        retry_after_secs: u64,
    },
    #[error("no upstream is available for model `{0}` right now")]
    NoRoute(String),
    #[error("{0}")]
    Overloaded(String),
    #[error("{0}")]
    NotSupported(String),
    /// An upstream error, already in neutral form, passed to the client.
    #[error("{}", .error.message)]
    Upstream {
        error: ir::ApiError,
        kind: ErrorKind,
    },
    #[error("internal error: {0}")]
    Internal(String),
}

impl IngressError {
    /// The kind recorded in the request event.
    #[must_use]
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::BadRequest { .. } | Self::NotSupported(_) => ErrorKind::BadRequest,
            Self::Unauthorized(_) => ErrorKind::Unauthorized,
            Self::Forbidden(_) => ErrorKind::Forbidden,
            Self::ModelNotFound(_) => ErrorKind::ModelNotFound,
            Self::PayloadTooLarge(_) => ErrorKind::PayloadTooLarge,
            Self::MethodNotAllowed { .. } => ErrorKind::BadRequest,
            Self::RateLimited { .. } => ErrorKind::RateLimited,
            Self::BudgetExceeded { .. } => ErrorKind::BudgetExceeded,
            Self::NoRoute(_) => ErrorKind::NoRouteAvailable,
            Self::Overloaded(_) => ErrorKind::Overloaded,
            Self::Upstream { kind, .. } => *kind,
            Self::Internal(_) => ErrorKind::Internal,
        }
    }

    /// The neutral error shown to the client.
    #[must_use]
    pub fn to_api_error(&self) -> ir::ApiError {
        let kind = match self {
            Self::BadRequest { .. } | Self::NotSupported(_) => ir::ErrorClass::InvalidRequest,
            Self::Unauthorized(_) => ir::ErrorClass::Authentication,
            Self::Forbidden(_) => ir::ErrorClass::Permission,
            Self::ModelNotFound(_) => ir::ErrorClass::NotFound,
            Self::PayloadTooLarge(_) => ir::ErrorClass::RequestTooLarge,
            Self::MethodNotAllowed { .. } => ir::ErrorClass::MethodNotAllowed,
            Self::RateLimited { .. } | Self::BudgetExceeded { .. } => ir::ErrorClass::RateLimit,
            Self::NoRoute(_) | Self::Overloaded(_) => ir::ErrorClass::Unavailable,
            Self::Upstream { error, .. } => return error.clone(),
            Self::Internal(_) => ir::ErrorClass::Api,
        };
        let mut error = ir::ApiError::new(kind, self.to_string());
        match self {
            Self::BadRequest { field, .. } => error.param.clone_from(field),
            Self::RateLimited {
                retry_after_secs, ..
            }
            | Self::BudgetExceeded {
                retry_after_secs, ..
            } => {
                error.retry_after = Some(*retry_after_secs);
            }
            Self::ModelNotFound(_) => error.code = Some("model_not_found".into()),
            _ => {}
        }
        if let Self::BudgetExceeded { .. } = self {
            error.code = Some("insufficient_quota".into());
        }
        error
    }

    /// Renders the error in the caller's dialect, with `Retry-After` where it applies.
    #[must_use]
    pub fn render(&self, dialect: Dialect) -> Response {
        render_api_error(dialect, &self.to_api_error())
    }
}

/// A request the translation refused is the client's 400, naming the field.
impl From<translate::TranslateError> for IngressError {
    fn from(error: translate::TranslateError) -> Self {
        Self::BadRequest {
            field: error.to_api_error().param,
            message: error.to_string(),
        }
    }
}

/// Renders a neutral error as an HTTP response in `dialect`.
#[must_use]
pub fn render_api_error(dialect: Dialect, error: &ir::ApiError) -> Response {
    let (status, body) = translate::encode_error(dialect, error);
    let mut response = (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response();
    if let Some(seconds) = error.retry_after
        && let Ok(value) = HeaderValue::from_str(&seconds.to_string())
    {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}
