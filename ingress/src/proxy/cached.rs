//! An answer from the response cache: the stored bytes sent again (a stream event by event),
//! recorded with no upstream attempt, zero usage and zero cost, and what the hit saved.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use shared::money::Nanos;
use shared::request::{CacheHit, Cost, Usage};

use crate::cache::Entry;

use super::call::Finish;
use super::{AppState, Call, set_request_id};

/// The response header that says whether the cache answered (`hit`) or will keep the answer
/// (`miss`); absent when the request is not cacheable.
pub(crate) const CACHE_HEADER: &str = "x-axongate-cache";

pub(super) async fn respond(
    state: Arc<AppState>,
    mut call: Call,
    entry: Entry,
    permit: tokio::sync::OwnedSemaphorePermit,
) -> Response {
    let Entry { meta, body } = entry;
    call.cache_hit = Some(CacheHit {
        source_request_id: meta.request_id,
        saved: meta.usage,
        saved_cost: meta.cost,
    });
    // Priced models record a cost of zero (not "unpriced") for what the cache answered.
    let cost = call
        .model
        .as_ref()
        .and_then(|model| model.price.as_ref())
        .map(|price| Cost {
            amount: Nanos(0),
            currency: price.currency.clone(),
            price_version: price.version,
        });
    let ttfb = call.started.elapsed();
    let request_id = call.request_id.clone();
    call.trace.answered("", None);
    call.take_slot(&state).await;
    call.finish(&state, Finish::success(Usage::default(), cost, ttfb));
    drop(permit);
    let mut response = if meta.stream {
        let events = crate::cache::sse_events(&body);
        super::stream::event_stream(Body::from_stream(futures::stream::iter(
            events
                .into_iter()
                .map(Ok::<Bytes, std::convert::Infallible>),
        )))
    } else {
        (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response()
    };
    set_request_id(&mut response, &request_id);
    response
        .headers_mut()
        .insert(CACHE_HEADER, HeaderValue::from_static("hit"));
    response
}
