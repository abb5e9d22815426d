//! Stream and subject names, and the retention each stream needs.
//!
//! The services create or update their streams at start from [`StreamSpec`]s; this crate only
//! describes them, since it has no bus driver.

use std::time::Duration;

use crate::config::ConfigEntity;
use crate::request::Outcome;

pub const CONFIG_STREAM: &str = "AXONGATE_CONFIG";
pub const REQUESTS_STREAM: &str = "AXONGATE_REQUESTS";
pub const AUDIT_STREAM: &str = "AXONGATE_AUDIT";

pub const CONFIG_SUBJECT_PREFIX: &str = "axongate.config";
pub const REQUESTS_SUBJECT_PREFIX: &str = "axongate.requests";
pub const AUDIT_SUBJECT_PREFIX: &str = "axongate.audit";

/// Where JetStream republishes every stored config event (with its `Nats-Sequence` header), so
/// ingress nodes learn of a change the moment it is stored, over a plain subscription that
/// survives the loss of any one server.
pub const CONFIG_LIVE_PREFIX: &str = "axongate.live.config";

/// `axongate.config.<entity>.<id>`.
#[must_use]
pub fn config_subject(entity: ConfigEntity, id: &str) -> String {
    format!("{CONFIG_SUBJECT_PREFIX}.{}.{id}", entity.as_str())
}

/// `axongate.requests.<outcome>`.
#[must_use]
pub fn request_subject(outcome: Outcome) -> String {
    format!("{REQUESTS_SUBJECT_PREFIX}.{}", outcome.as_str())
}

/// Where ingress publishes several request events as one message (a JSON array; see
/// [`crate::envelope::batch_payload`]): its group commit under load.
pub const REQUESTS_BATCH_SUBJECT: &str = "axongate.requests.batch";

/// What a stream keeps and how. `max_age` of `None` keeps events forever.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSpec {
    pub name: &'static str,
    pub subjects: Vec<String>,
    pub max_age: Option<Duration>,
    /// How long JetStream remembers a `Nats-Msg-Id` to drop a duplicate publish.
    pub duplicate_window: Duration,
    /// Republish stored messages: (source subjects, destination subjects).
    pub republish: Option<(String, String)>,
}

/// Default age of request events in the stream; ClickHouse keeps the history.
pub const DEFAULT_REQUESTS_MAX_AGE: Duration = Duration::from_secs(30 * 24 * 3600);

/// Default duplicate window: long enough to cover an ingress spool replay after an outage of
/// the bus of up to this long.
pub const DEFAULT_DUPLICATE_WINDOW: Duration = Duration::from_secs(2 * 3600);

/// The three streams of the design with their default retention.
#[must_use]
pub fn all_streams(requests_max_age: Duration, duplicate_window: Duration) -> Vec<StreamSpec> {
    vec![
        StreamSpec {
            name: CONFIG_STREAM,
            subjects: vec![format!("{CONFIG_SUBJECT_PREFIX}.>")],
            max_age: None,
            duplicate_window,
            republish: Some((
                format!("{CONFIG_SUBJECT_PREFIX}.>"),
                format!("{CONFIG_LIVE_PREFIX}.>"),
            )),
        },
        StreamSpec {
            name: REQUESTS_STREAM,
            subjects: vec![format!("{REQUESTS_SUBJECT_PREFIX}.>")],
            max_age: Some(requests_max_age),
            duplicate_window,
            republish: None,
        },
        StreamSpec {
            name: AUDIT_STREAM,
            subjects: vec![format!("{AUDIT_SUBJECT_PREFIX}.>")],
            max_age: None,
            duplicate_window,
            republish: None,
        },
    ]
}
