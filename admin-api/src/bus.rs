//! Publishing to JetStream: config events with optimistic concurrency, and audit events.

use async_nats::jetstream::{self, context::PublishErrorKind, message::PublishMessage};
use shared::audit::AuditEvent;
use shared::config::ConfigEvent;
use shared::streams::CONFIG_STREAM;
use shared::{Actor, Envelope};

use crate::error::ApiError;

#[derive(Clone)]
pub struct Bus {
    jetstream: jetstream::Context,
}

impl Bus {
    #[must_use]
    pub fn new(jetstream: jetstream::Context) -> Self {
        Self { jetstream }
    }

    #[must_use]
    pub fn jetstream(&self) -> &jetstream::Context {
        &self.jetstream
    }

    /// Publishes a config event that JetStream stores only if the entity's subject is still at
    /// `expected_version` (0: the subject has never had an event). Returns the stream sequence.
    ///
    /// # Errors
    /// 409 `version_conflict` with the current version when the subject moved on; 503 when the
    /// bus does not answer.
    pub async fn publish_config(
        &self,
        event: ConfigEvent,
        actor: &Actor,
        expected_version: u64,
    ) -> Result<u64, ApiError> {
        let envelope = Envelope::by_actor(event, actor.clone());
        let subject = envelope.subject();
        let payload = envelope.to_bytes()?;
        let message = PublishMessage::build()
            .message_id(envelope.event_id.to_string())
            .expected_last_subject_sequence(expected_version)
            .payload(payload.into());
        let result = match self.jetstream.send_publish(subject.clone(), message).await {
            Ok(ack) => ack.await,
            Err(error) => Err(error),
        };
        match result {
            Ok(ack) => Ok(ack.sequence),
            Err(error) if error.kind() == PublishErrorKind::WrongLastSequence => {
                let current = self.current_version(&subject).await.ok();
                Err(ApiError::Conflict {
                    code: "version_conflict",
                    message: match (expected_version, current) {
                        (0, _) => "an entity with this id already exists (or existed)".to_owned(),
                        (_, Some(current)) => format!(
                            "the entity changed since version {expected_version}; it is now at version {current}"
                        ),
                        (_, None) => format!("the entity changed since version {expected_version}"),
                    },
                    field: Some("version".into()),
                    current_version: current,
                })
            }
            Err(error) => Err(ApiError::Unavailable {
                code: "bus_unavailable",
                message: format!("the event bus did not accept the change: {error}"),
            }),
        }
    }

    /// The subject sequence of the latest event on `subject` (0 when there is none).
    ///
    /// # Errors
    /// When the stream cannot be asked.
    pub async fn current_version(&self, subject: &str) -> Result<u64, ApiError> {
        let stream = self
            .jetstream
            .get_stream(CONFIG_STREAM)
            .await
            .map_err(|error| ApiError::internal(format!("stream {CONFIG_STREAM}: {error}")))?;
        match stream.get_last_raw_message_by_subject(subject).await {
            Ok(message) => Ok(message.sequence),
            Err(error)
                if error.kind()
                    == async_nats::jetstream::stream::LastRawMessageErrorKind::NoMessageFound =>
            {
                Ok(0)
            }
            Err(error) => Err(ApiError::internal(format!(
                "last message of {subject}: {error}"
            ))),
        }
    }

    /// Publishes an audit event; returns its stream sequence.
    ///
    /// # Errors
    /// 503 when the bus does not answer.
    pub async fn publish_audit(
        &self,
        event: AuditEvent,
        actor: Option<&Actor>,
        node: &str,
    ) -> Result<u64, ApiError> {
        let envelope = match actor {
            Some(actor) => Envelope::by_actor(event, actor.clone()),
            None => Envelope::by_node(event, node),
        };
        let message = PublishMessage::build()
            .message_id(envelope.event_id.to_string())
            .payload(envelope.to_bytes()?.into());
        let result = match self
            .jetstream
            .send_publish(envelope.subject(), message)
            .await
        {
            Ok(ack) => ack.await,
            Err(error) => Err(error),
        };
        result
            .map(|ack| ack.sequence)
            .map_err(|error| ApiError::Unavailable {
                code: "bus_unavailable",
                message: format!("the audit event was not accepted: {error}"),
            })
    }
}
