//! A streamed answer: the first translated bytes before the response starts, then a task that
//! pumps the rest, coalescing what has arrived into one write, ending with the dialect's error
//! event on failure and recording cancellation when the client goes away.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use shared::request::{ErrorKind, Outcome};
use tokio::sync::mpsc;

use crate::routing::Candidate;
use crate::translate::{self, Dialect, ir};

use super::call::{Finish, broke_off};
use super::{AppState, Call, set_request_id};

/// The most bytes one coalesced write to a streaming client carries.
const COALESCE_LIMIT: usize = 64 * 1024;

/// Streams the answer: the first translated bytes are produced before the response starts
/// (so a failure up to there can still be reported as a plain error), then a task pumps the
/// rest, ending with the dialect's error event on failure and recording cancellation when the
/// client goes away. With `fill`, a complete answer is stored in the response cache as sent.
#[expect(
    clippy::too_many_arguments,
    reason = "the parts of one answer, handed over once"
)]
pub(super) async fn respond(
    state: Arc<AppState>,
    call: Call,
    upstream_response: reqwest::Response,
    upstream: Dialect,
    context: translate::Context,
    candidate: Candidate,
    permit: tokio::sync::OwnedSemaphorePermit,
    fill: Option<crate::cache::Fill>,
) -> Response {
    let (sender, mut receiver) = mpsc::channel::<Bytes>(32);
    let request_id = call.request_id.clone();
    let translator = translate::StreamTranslator::new(upstream, call.dialect, context);
    let timeouts = candidate.provider.provider.timeouts;
    tokio::spawn(pump(
        state,
        call,
        upstream_response,
        translator,
        sender,
        timeouts,
        permit,
        fill,
    ));
    let body = Body::from_stream(futures::stream::poll_fn(move |context| {
        receiver
            .poll_recv(context)
            .map(|item| item.map(Ok::<Bytes, std::convert::Infallible>))
    }));
    let mut response = event_stream(body);
    set_request_id(&mut response, &request_id);
    response
}

/// A 200 `text/event-stream` response that proxies must not buffer.
pub(super) fn event_stream(body: Body) -> Response {
    let mut response = (
        StatusCode::OK,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/event-stream"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        body,
    )
        .into_response();
    response
        .headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

#[expect(
    clippy::too_many_arguments,
    reason = "the parts of one answer, handed over once"
)]
async fn pump(
    state: Arc<AppState>,
    mut call: Call,
    mut upstream_response: reqwest::Response,
    mut translator: translate::StreamTranslator,
    sender: mpsc::Sender<Bytes>,
    timeouts: shared::config::Timeouts,
    permit: tokio::sync::OwnedSemaphorePermit,
    fill: Option<crate::cache::Fill>,
) {
    // What the client received, kept for the cache while it fits an entry.
    let mut sent: Option<Vec<u8>> = fill.as_ref().map(|_| Vec::new());
    let idle = Duration::from_millis(u64::from(timeouts.idle_ms));
    let deadline = tokio::time::Instant::from_std(call.started)
        + Duration::from_millis(u64::from(timeouts.total_ms));
    let mut ttfb = None;
    let mut failure: Option<(ErrorKind, ir::ApiError)> = None;
    let mut cancelled = false;
    // The bytes carrying the upstream's stop went to the client.
    let mut end_delivered = false;
    loop {
        let next = tokio::select! {
            () = sender.closed() => { cancelled = true; break; }
            next = tokio::time::timeout_at(deadline.min(tokio::time::Instant::now() + idle), upstream_response.chunk()) => next,
        };
        let mut ended = false;
        let out = match next {
            Err(_) => {
                let error = ir::ApiError::new(
                    ir::ErrorClass::Timeout,
                    "the upstream stream stalled past its timeout",
                );
                failure = Some((ErrorKind::UpstreamTimeout, error.clone()));
                translator.fail(&error)
            }
            Ok(Err(error)) => {
                let api_error = broke_off(error);
                failure = Some((ErrorKind::UpstreamStreamError, api_error.clone()));
                translator.fail(&api_error)
            }
            Ok(Ok(None)) => {
                ended = true;
                translator.finish()
            }
            Ok(Ok(Some(chunk))) => {
                // Coalesce: translate every chunk that is already here into one write, so a
                // burst of upstream events costs one syscall, not one per event.
                let mut out = Vec::new();
                let mut next_chunk = Some(chunk);
                while let Some(chunk) = next_chunk.take() {
                    match translator.push(&chunk) {
                        Ok(translated) => out.extend_from_slice(&translated),
                        Err(error) => {
                            let api_error = error.to_api_error();
                            failure = Some((ErrorKind::UpstreamInvalidResponse, api_error.clone()));
                            out.extend_from_slice(&translator.fail(&api_error));
                            break;
                        }
                    }
                    if out.len() >= COALESCE_LIMIT {
                        break;
                    }
                    match futures::FutureExt::now_or_never(upstream_response.chunk()) {
                        Some(Ok(Some(more))) => next_chunk = Some(more),
                        Some(Ok(None)) => {
                            ended = true;
                            out.extend_from_slice(&translator.finish());
                        }
                        Some(Err(error)) => {
                            let api_error = broke_off(error);
                            failure = Some((ErrorKind::UpstreamStreamError, api_error.clone()));
                            out.extend_from_slice(&translator.fail(&api_error));
                        }
                        None => {}
                    }
                }
                out
            }
        };
        if !out.is_empty() {
            if ttfb.is_none() {
                ttfb = Some(call.started.elapsed());
            }
            if ended || failure.is_some() {
                // The last bytes complete the answer: its event takes its place first.
                call.take_slot(&state).await;
            }
            if let Some(kept) = &mut sent {
                if kept.len() + out.len() > state.cache.max_entry_bytes() {
                    sent = None;
                } else {
                    kept.extend_from_slice(&out);
                }
            }
            if sender.send(Bytes::from(out)).await.is_err() {
                cancelled = true;
                break;
            }
            end_delivered = translator.stop_reason().is_some();
        }
        if ended || failure.is_some() {
            break;
        }
    }
    if cancelled && failure.is_none() && end_delivered {
        // The client left after the answer's end had reached it (Codex closes the connection on
        // `response.completed`, before the upstream's own end of stream): a complete answer,
        // not a cancellation.
        cancelled = false;
    }
    if failure.is_none() && !cancelled && translator.failed() {
        failure = Some((
            ErrorKind::UpstreamStreamError,
            ir::ApiError::new(ir::ErrorClass::Api, "the upstream stream ended early"),
        ));
    }
    // Dropping the upstream response here cancels the upstream call promptly.
    drop(upstream_response);
    call.take_slot(&state).await;
    call.trace.answered("", translator.stop_reason());
    let observed = translator.usage();
    let (mut usage, cost) = call.usage_and_cost(&observed, observed != ir::Usage::default());
    let (outcome, error_kind) = if cancelled {
        if usage.output_tokens == 0 && translator.saw_first_content() {
            // Output was streamed but the upstream never counted it before the client left.
            usage.estimated = true;
        }
        (Outcome::Cancelled, Some(ErrorKind::ClientDisconnected))
    } else if let Some((kind, _)) = &failure {
        (Outcome::Error, Some(*kind))
    } else {
        (Outcome::Success, None)
    };
    if outcome == Outcome::Success
        && let (Some(fill), Some(sent)) = (fill, sent)
    {
        let meta = crate::cache::Meta {
            stored_at_ms: crate::cache::now_ms(),
            request_id: call.request_id.clone(),
            stream: true,
            usage,
            cost: cost.clone(),
        };
        state.cache.store(fill, meta, &sent);
    }
    call.finish(
        &state,
        Finish {
            outcome,
            error_kind,
            http_status: 200,
            usage,
            cost,
            ttfb,
        },
    );
    drop(permit);
}
