//! Pure folds: what an event changes, with no I/O. The writers in `store` apply these changes
//! together with the stream sequence they came from.

use serde_json::Value;
use shared::Envelope;
use shared::config::{ConfigEntity, ConfigEvent};
use shared::streams::CONFIG_STREAM;

/// What one config event does to the views.
#[derive(Debug, Clone, PartialEq)]
pub enum ConfigChange {
    Upsert {
        entity: ConfigEntity,
        id: String,
        data: Value,
    },
    Delete {
        entity: ConfigEntity,
        id: String,
    },
}

/// The change a config event makes.
///
/// # Errors
/// Only if the payload cannot be represented as JSON (never for a decoded event).
pub fn config_change(event: &ConfigEvent) -> Result<ConfigChange, serde_json::Error> {
    let entity = event.entity();
    let id = event.entity_id().to_owned();
    if event.is_deletion() {
        return Ok(ConfigChange::Delete { entity, id });
    }
    let tagged = serde_json::to_value(event)?;
    let data = tagged.get("payload").cloned().unwrap_or(Value::Null);
    Ok(ConfigChange::Upsert { entity, id, data })
}

/// Field names whose values never appear in the audit view, however deep.
const SECRET_FIELDS: &[&str] = &[
    "secret",
    "password_hash",
    "hash",
    "ciphertext",
    "nonce",
    "password",
];

/// Replaces every secret-bearing field with `"[redacted]"`.
pub fn redact(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, field) in map.iter_mut() {
                if SECRET_FIELDS.contains(&key.as_str()) {
                    *field = Value::String("[redacted]".into());
                } else {
                    redact(field);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact),
        _ => {}
    }
}

/// One row of the audit view.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRow {
    pub stream: &'static str,
    pub sequence: u64,
    pub event_id: uuid::Uuid,
    pub occurred_at: time::OffsetDateTime,
    pub event_type: String,
    pub actor_id: Option<String>,
    pub actor_name: Option<String>,
    pub entity: Option<String>,
    pub entity_id: Option<String>,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

/// The audit row for a config change, given the entity's state before it (both redacted).
#[must_use]
pub fn config_audit_row(
    envelope: &Envelope<ConfigEvent>,
    sequence: u64,
    before: Option<Value>,
    change: &ConfigChange,
) -> AuditRow {
    let redacted = |value: Option<Value>| {
        value.map(|mut value| {
            redact(&mut value);
            value
        })
    };
    let after = match change {
        ConfigChange::Upsert { data, .. } => Some(data.clone()),
        ConfigChange::Delete { .. } => None,
    };
    AuditRow {
        stream: CONFIG_STREAM,
        sequence,
        event_id: envelope.event_id,
        occurred_at: envelope.occurred_at,
        event_type: shared::EventBody::event_type(&envelope.body).to_owned(),
        actor_id: envelope.actor.as_ref().map(|actor| actor.user_id.clone()),
        actor_name: envelope.actor.as_ref().map(|actor| actor.username.clone()),
        entity: Some(envelope.body.entity().as_str().to_owned()),
        entity_id: Some(envelope.body.entity_id().to_owned()),
        before: redacted(before),
        after: redacted(after),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn redaction_reaches_nested_secrets() {
        let mut value = json!({"name": "k", "secret": {"key_id": 1, "ciphertext": "abc"},
            "items": [{"password_hash": "$argon2id$…"}], "hash": "deadbeef"});
        redact(&mut value);
        assert_eq!(value["secret"], "[redacted]");
        assert_eq!(value["items"][0]["password_hash"], "[redacted]");
        assert_eq!(value["hash"], "[redacted]");
        assert_eq!(value["name"], "k");
    }

    #[test]
    fn deletion_and_upsert_changes() -> Result<(), serde_json::Error> {
        use shared::config::{Deleted, Setting};
        let put = ConfigEvent::SettingPut(Setting {
            key: "motd".into(),
            value: json!("hi"),
        });
        assert_eq!(
            config_change(&put)?,
            ConfigChange::Upsert {
                entity: ConfigEntity::Setting,
                id: "motd".into(),
                data: json!({"key": "motd", "value": "hi"})
            }
        );
        let deleted = ConfigEvent::SettingDeleted(Deleted { id: "motd".into() });
        assert_eq!(
            config_change(&deleted)?,
            ConfigChange::Delete {
                entity: ConfigEntity::Setting,
                id: "motd".into()
            }
        );
        Ok(())
    }
}
