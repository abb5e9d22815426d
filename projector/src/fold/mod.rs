//! Pure folds: what an event changes, with no I/O, no clock and no driver. Every decision of
//! the projector lives here (what a config event stores and audits, what a request adds to a
//! token's spend, whether an attempt shows a key healthy, what an analytics row says, when an
//! event must become a dead letter); the writers in `store` only carry out the [`Effect`]s
//! decided here, together with the stream sequence they came from.
//!
//! The tests are given/when/then, after serverlesstechnology/cqrs's `TestFramework`: given the
//! events already folded (or the view they left), when one more event arrives, then the
//! expected effects or dead letter.
//!
//! The merges that combine an effect with a row already stored (sums of spend, the latest
//! error of a key) stay in the writers' upserts: two projections (audit and spend) update key
//! health under different offset locks, and only an upsert merges their writes without a lost
//! update. Within one batch, [`spend::merged`] combines the request events' effects first (one
//! write per key and per token and day), which the upserts then merge the same way.

pub mod audit;
pub mod config;
pub mod key_health;
pub mod requests;
pub mod spend;
#[cfg(test)]
pub(crate) mod testing;

use serde_json::Value;
use shared::config::ConfigEntity;
use time::OffsetDateTime;

pub use audit::{AuditRow, redact};
pub use config::{ConfigChange, config_change};
pub use key_health::{KeyCheck, KeyHealth};
pub use requests::RequestRow;
pub use spend::SpendDelta;

/// One write a fold asks of the Postgres store.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Store an entity's new state, replacing what was there.
    PutEntity {
        entity: ConfigEntity,
        id: String,
        data: Value,
        /// The stream sequence of the event that set this state.
        subject_sequence: u64,
        at: OffsetDateTime,
        /// The operator who changed it, by name.
        by: Option<String>,
    },
    /// Remove an entity from the views.
    DeleteEntity { entity: ConfigEntity, id: String },
    /// One row of the audit view.
    Audit(AuditRow),
    /// One observation of a provider key's health.
    KeyCheck(KeyCheck),
    /// Several observations of one key, merged ([`spend::merged`]).
    KeyHealth(KeyHealth),
    /// What one request adds to its token's spend on its day.
    Spend(SpendDelta),
}

/// What to do with one event that could be decoded.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Carry out these writes, in order.
    Apply(Vec<Effect>),
    /// The event cannot be folded however often it is retried: keep it as a dead letter (with
    /// this reason) and write nothing else for it. The views keep what they had.
    DeadLetter { reason: String },
}

impl Decision {
    /// The dead letter for an event whose change cannot be represented as JSON.
    fn unserialisable(error: &serde_json::Error) -> Self {
        Self::DeadLetter {
            reason: format!("cannot be represented as JSON: {error}"),
        }
    }
}
