//! A non-streamed answer: the upstream's body read within the total timeout, decoded, sent back
//! as it came (same dialect) or translated, and recorded.

use std::sync::Arc;
use std::time::Duration;

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use shared::request::ErrorKind;

use crate::error::IngressError;
use crate::routing::Candidate;
use crate::translate::{self, Dialect, ir};

use super::call::{Finish, broke_off};
use super::{AppState, Call, set_request_id};

/// Reads, translates and records a non-streamed answer.
#[expect(
    clippy::too_many_arguments,
    reason = "the parts of one answer, handed over once"
)]
pub(super) async fn respond(
    state: Arc<AppState>,
    mut call: Call,
    response: reqwest::Response,
    upstream: Dialect,
    dialect: Dialect,
    context: translate::Context,
    candidate: Candidate,
    permit: tokio::sync::OwnedSemaphorePermit,
    fill: Option<crate::cache::Fill>,
) -> Response {
    let total = Duration::from_millis(u64::from(candidate.provider.provider.timeouts.total_ms));
    let body = match tokio::time::timeout(
        total.saturating_sub(call.started.elapsed()),
        response.bytes(),
    )
    .await
    {
        Ok(Ok(body)) => body,
        Ok(Err(error)) => {
            return call.fail(
                &state,
                &IngressError::Upstream {
                    error: broke_off(error),
                    kind: ErrorKind::UpstreamStreamError,
                },
            );
        }
        Err(_) => {
            let api_error = ir::ApiError::new(
                ir::ErrorClass::Timeout,
                "the upstream response took longer than the total timeout",
            );
            return call.fail(
                &state,
                &IngressError::Upstream {
                    error: api_error,
                    kind: ErrorKind::UpstreamTimeout,
                },
            );
        }
    };
    let decoded = match translate::decode_response(upstream, &body) {
        Ok(decoded) => decoded,
        Err(error) => {
            let api_error = ir::ApiError::new(ir::ErrorClass::Api, error.to_string());
            return call.fail(
                &state,
                &IngressError::Upstream {
                    error: api_error,
                    kind: ErrorKind::UpstreamInvalidResponse,
                },
            );
        }
    };
    let out = if upstream == dialect {
        translate::passthrough::response(dialect, &body, &context.model)
    } else {
        translate::encode_response(dialect, &decoded, &context)
    };
    call.trace.answered(&decoded.id, Some(&decoded.stop_reason));
    let (usage, cost) = call.usage_and_cost(&decoded.usage, true);
    let ttfb = call.started.elapsed();
    let request_id = call.request_id.clone();
    if let Some(fill) = fill {
        let meta = crate::cache::Meta {
            stored_at_ms: crate::cache::now_ms(),
            request_id: request_id.clone(),
            stream: false,
            usage,
            cost: cost.clone(),
        };
        state.cache.store(fill, meta, &out);
    }
    call.take_slot(&state).await;
    call.finish(&state, Finish::success(usage, cost, ttfb));
    drop(permit);
    let mut response = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        out,
    )
        .into_response();
    set_request_id(&mut response, &request_id);
    response
}
