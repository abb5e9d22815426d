//! Publishing to JetStream: config events with optimistic concurrency, and audit events, each
//! linked into its stream's tamper-evident chain (`kit::chain`, `shared::chain`).

use async_nats::jetstream;
use kit::chain::{ChainError, ChainedStream};
use shared::audit::AuditEvent;
use shared::chain::ChainKey;
use shared::config::ConfigEvent;
use shared::streams::{AUDIT_STREAM, CONFIG_STREAM};
use shared::{Actor, Envelope};

use crate::error::ApiError;

#[derive(Clone)]
pub struct Bus {
    jetstream: jetstream::Context,
    config: std::sync::Arc<ChainedStream>,
    audit: std::sync::Arc<ChainedStream>,
    key: ChainKey,
}

impl Bus {
    #[must_use]
    pub fn new(jetstream: jetstream::Context, key: ChainKey) -> Self {
        Self {
            config: std::sync::Arc::new(ChainedStream::new(
                jetstream.clone(),
                CONFIG_STREAM,
                key.clone(),
            )),
            audit: std::sync::Arc::new(ChainedStream::new(
                jetstream.clone(),
                AUDIT_STREAM,
                key.clone(),
            )),
            jetstream,
            key,
        }
    }

    #[must_use]
    pub fn jetstream(&self) -> &jetstream::Context {
        &self.jetstream
    }

    /// The chain's key, for verifying.
    #[must_use]
    pub fn chain_key(&self) -> &ChainKey {
        &self.key
    }

    /// The two chained streams: config and audit.
    #[must_use]
    pub fn chained_streams(&self) -> [&ChainedStream; 2] {
        [&self.config, &self.audit]
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
        match self
            .config
            .publish_envelope(&envelope, Some(expected_version))
            .await
        {
            Ok(sequence) => Ok(sequence),
            Err(ChainError::SubjectMoved) => {
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
        self.audit
            .publish_envelope(&envelope, None)
            .await
            .map_err(|error| ApiError::Unavailable {
                code: "bus_unavailable",
                message: format!("the audit event was not accepted: {error}"),
            })
    }
}
