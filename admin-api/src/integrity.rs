//! The config and audit streams' tamper-evident chain, as operators use it: `GET
//! /api/v1/audit/verify` and `admin-api audit verify` walk both streams and name the first
//! broken link; the checkpoint task publishes each stream's head as a `chain.checkpoint` audit
//! event (and a log line, the copy kept outside NATS) whenever it moved.

use std::time::Duration;

use async_nats::jetstream;
use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};
use shared::audit::{AuditEvent, ChainCheckpoint};
use shared::chain::{ChainKey, ChainReport};
use shared::streams::{AUDIT_STREAM, CONFIG_STREAM};

use crate::auth::Caller;
use crate::authz::{Resource, require};
use crate::bus::Bus;
use crate::error::ApiError;
use crate::permission::{Action, Kind};
use crate::state::AppState;

/// Both streams' reports, config first.
///
/// # Errors
/// When a stream cannot be read.
pub async fn verify_all(
    jetstream: &jetstream::Context,
    key: &ChainKey,
    mut progress: impl FnMut(&str, u64, u64),
) -> Result<Vec<ChainReport>, kit::chain::ChainError> {
    let mut checkpoints = kit::chain::checkpoints(jetstream).await?;
    let mut reports = Vec::new();
    for stream in [CONFIG_STREAM, AUDIT_STREAM] {
        let report = kit::chain::verify(
            jetstream,
            stream,
            key,
            checkpoints.remove(stream).unwrap_or_default(),
            |read, last| progress(stream, read, last),
        )
        .await?;
        reports.push(report);
    }
    Ok(reports)
}

/// The JSON both the API and the command print.
#[must_use]
pub fn summary(reports: &[ChainReport]) -> Value {
    json!({
        "ok": reports.iter().all(ChainReport::ok),
        "streams": reports,
    })
}

/// `GET /api/v1/audit/verify`.
pub async fn verify(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    require(
        state.authorizer.as_ref(),
        &caller.principal(),
        Action::Read,
        &Resource::kind(Kind::Audit),
    )?;
    let reports = verify_all(state.bus.jetstream(), state.bus.chain_key(), |_, _, _| {})
        .await
        .map_err(|error| ApiError::Unavailable {
            code: "bus_unavailable",
            message: format!("the streams could not be read: {error}"),
        })?;
    Ok(Json(summary(&reports)))
}

/// Publishes a checkpoint for each chained stream whose head moved since the last one this
/// process published, every `interval`, until the process ends.
pub async fn checkpoint_loop(bus: Bus, node_id: String, interval: Duration) {
    let mut last: [Option<u64>; 2] = [None, None];
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        if let Err(error) = checkpoint_once(&bus, &node_id, &mut last).await {
            tracing::warn!(%error, "chain checkpoint not published; trying again at the next interval");
        }
    }
}

/// One round of [`checkpoint_loop`]: returns the checkpoints published. Both heads are read
/// before either checkpoint is published; an audit stream whose newest event is itself a
/// checkpoint has nothing new (so two admin-api processes never answer each other's).
///
/// # Errors
/// When a head cannot be read or the checkpoint is not stored.
pub async fn checkpoint_once(
    bus: &Bus,
    node_id: &str,
    last: &mut [Option<u64>; 2],
) -> Result<usize, ApiError> {
    let mut heads = Vec::new();
    for stream in bus.chained_streams() {
        let head = stream
            .read_head()
            .await
            .map_err(|error| ApiError::Unavailable {
                code: "bus_unavailable",
                message: error.to_string(),
            })?;
        heads.push((stream.stream(), head));
    }
    let mut published = 0;
    for (index, (stream, head)) in heads.into_iter().enumerate() {
        let Some(link) = head.link else { continue };
        if last[index] == Some(head.link_seq) || head.subject == kit::chain::checkpoint_subject() {
            continue;
        }
        tracing::info!(stream, seq = head.link_seq, link = %link, "chain checkpoint");
        let event = AuditEvent::ChainCheckpoint(ChainCheckpoint {
            stream: stream.to_owned(),
            seq: head.link_seq,
            link,
        });
        bus.publish_audit(event, None, node_id).await?;
        published += 1;
        last[index] = Some(head.link_seq);
    }
    Ok(published)
}
