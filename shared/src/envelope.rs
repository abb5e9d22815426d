//! The event envelope that every message on every stream is wrapped in.
//!
//! On the wire an event is one JSON object:
//!
//! ```json
//! {"event_id":"0190…","type":"provider.put","version":1,"occurred_at":"2026-11-26T06:00:00Z",
//!  "actor":{"user_id":"…","username":"admin"},"payload":{…}}
//! ```
//!
//! `type` and `payload` come from the body enum (adjacently tagged), so one stream's events
//! deserialize into one Rust enum. A message may also hold several events as a JSON array of
//! such objects — ingress's group commit of request events ([`batch_payload`], read with
//! [`Envelope::all_from_bytes`]): the stream then stores and fsyncs them once, and every one of
//! them has the message's stream sequence. Events are never rewritten: a new optional field is added with
//! `#[serde(default)]`; a changed shape gets a new `version` and an upcaster in [`upcast`] that
//! turns the old JSON into the new before it is deserialized.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

/// Who caused an event: an operator (config and audit events) or nobody in particular.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub user_id: String,
    pub username: String,
}

impl Actor {
    /// The actor for changes made by the system itself (bootstrap, migrations).
    #[must_use]
    pub fn system() -> Self {
        Self {
            user_id: "system".into(),
            username: "system".into(),
        }
    }
}

/// The typed body of an event: knows its type name, schema version and subject.
pub trait EventBody: Serialize + DeserializeOwned {
    /// The `type` field, e.g. `provider.put`.
    fn event_type(&self) -> &'static str;
    /// The current schema version of this type.
    fn version(&self) -> u32 {
        1
    }
    /// The NATS subject this event is published on.
    fn subject(&self) -> String;
}

/// One event: id, time, origin and a typed body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope<B> {
    pub event_id: Uuid,
    #[serde(flatten)]
    pub body: B,
    pub version: u32,
    #[serde(with = "time::serde::rfc3339")]
    pub occurred_at: OffsetDateTime,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<Actor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("event is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("event has no string field `type`")]
    MissingType,
    #[error("event type {event_type:?} version {version} is newer than this build understands")]
    FutureVersion { event_type: String, version: u64 },
}

impl<B: EventBody> Envelope<B> {
    /// A new event caused by an operator.
    #[must_use]
    pub fn by_actor(body: B, actor: Actor) -> Self {
        Self::new(body, Some(actor), None)
    }

    /// A new event emitted by a node (ingress, projector) rather than a person.
    #[must_use]
    pub fn by_node(body: B, node: impl Into<String>) -> Self {
        Self::new(body, None, Some(node.into()))
    }

    fn new(body: B, actor: Option<Actor>, node: Option<String>) -> Self {
        Self {
            event_id: crate::ids::new_event_id(),
            version: body.version(),
            body,
            occurred_at: OffsetDateTime::now_utc(),
            actor,
            node,
        }
    }

    /// The subject to publish this event on.
    #[must_use]
    pub fn subject(&self) -> String {
        self.body.subject()
    }

    /// Serializes to the JSON bytes that go on the bus.
    ///
    /// # Errors
    /// Only if a payload holds something serde_json cannot represent (it never should).
    pub fn to_bytes(&self) -> Result<Vec<u8>, serde_json::Error> {
        serde_json::to_vec(self)
    }

    /// Deserializes an event from the bus, upcasting older versions first.
    ///
    /// # Errors
    /// When the bytes are not an event this build understands.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        // An event that needs no upcaster is decoded straight from its bytes: the JSON tree the
        // upcasters work on was half of the projector's CPU in a profile (docs/performance.md).
        // Anything the fast path does not take goes the general way, errors included.
        if needs_no_upcaster(bytes)
            && let Ok(event) = serde_json::from_slice(bytes)
        {
            return Ok(event);
        }
        let value: serde_json::Value = serde_json::from_slice(bytes)?;
        Self::from_value(value)
    }

    fn from_value(value: serde_json::Value) -> Result<Self, DecodeError> {
        let value = upcast(value)?;
        Ok(serde_json::from_value(value)?)
    }

    /// Every event of a bus message: one for a single event, each element of a batch in order.
    /// An element this build cannot read is an error in its place (the others still decode);
    /// bytes that are not JSON are one error.
    #[must_use]
    pub fn all_from_bytes(bytes: &[u8]) -> Vec<Result<Self, DecodeError>> {
        if !is_batch(bytes) {
            return vec![Self::from_bytes(bytes)];
        }
        match serde_json::from_slice::<Vec<&serde_json::value::RawValue>>(bytes) {
            Ok(events) => events
                .into_iter()
                .map(|event| Self::from_bytes(event.get().as_bytes()))
                .collect(),
            Err(error) => vec![Err(error.into())],
        }
    }
}

/// The members of an event that decide whether it needs upcasting; the rest is skipped unread.
#[derive(Deserialize)]
struct Head<'a> {
    #[serde(rename = "type", borrow)]
    event_type: Option<&'a str>,
    version: Option<u64>,
}

/// Whether an event is at the version this build reads without an upcaster (today every known
/// version). An event whose head does not parse this way is left to the general path.
fn needs_no_upcaster(bytes: &[u8]) -> bool {
    serde_json::from_slice::<Head<'_>>(bytes).is_ok_and(|head| {
        head.event_type.is_some() && head.version.unwrap_or(1) == MAX_KNOWN_VERSION
    })
}

/// Whether a bus message holds a batch of events (a JSON array) rather than one.
#[must_use]
pub fn is_batch(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .find(|byte| !byte.is_ascii_whitespace())
        .is_some_and(|byte| *byte == b'[')
}

/// The payload of one bus message holding several serialized events, in order.
#[must_use]
pub fn batch_payload<'a>(events: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut payload = vec![b'['];
    for (index, event) in events.into_iter().enumerate() {
        if index > 0 {
            payload.push(b',');
        }
        payload.extend_from_slice(event);
    }
    payload.push(b']');
    payload
}

/// The highest version of any event type this build knows. An event with a higher version was
/// written by a newer build; refusing it (rather than guessing) keeps a projection correct.
pub const MAX_KNOWN_VERSION: u64 = 1;

/// Turns an event of an older schema version into the current one. Every type is at version 1
/// today, so this only checks the version; the match below is where future upcasters go.
///
/// # Errors
/// When the event has no type or a version newer than this build.
pub fn upcast(value: serde_json::Value) -> Result<serde_json::Value, DecodeError> {
    let event_type = value
        .get("type")
        .and_then(serde_json::Value::as_str)
        .ok_or(DecodeError::MissingType)?;
    let version = value
        .get("version")
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(1);
    if version > MAX_KNOWN_VERSION {
        return Err(DecodeError::FutureVersion {
            event_type: event_type.to_owned(),
            version,
        });
    }
    Ok(value)
}
