//! The config views: each config event carries its entity's full new state or its deletion,
//! and leaves one audit row with the state before and after, redacted.

use serde_json::Value;
use shared::Envelope;
use shared::config::{ConfigEntity, ConfigEvent};
use shared::streams::CONFIG_STREAM;

use super::audit::{AuditRow, redacted};
use super::{Decision, Effect};

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

/// The audit row for a config change, given the entity's state before it (both redacted).
#[must_use]
pub fn config_audit_row(
    envelope: &Envelope<ConfigEvent>,
    sequence: u64,
    before: Option<Value>,
    change: &ConfigChange,
) -> AuditRow {
    let after = match change {
        ConfigChange::Upsert { data, .. } => Some(data.clone()),
        ConfigChange::Delete { .. } => None,
    };
    AuditRow {
        entity: Some(envelope.body.entity().as_str().to_owned()),
        entity_id: Some(envelope.body.entity_id().to_owned()),
        before: redacted(before),
        after: redacted(after),
        ..AuditRow::of(CONFIG_STREAM, sequence, envelope)
    }
}

/// What a config event does, given its entity's state before it: the entity's new state (or
/// its removal) and the audit row. A change that cannot be represented as JSON is a dead
/// letter, never a deletion: the entity keeps the state it had.
#[must_use]
pub fn decide(envelope: &Envelope<ConfigEvent>, sequence: u64, before: Option<Value>) -> Decision {
    decide_change(envelope, sequence, before, config_change(&envelope.body))
}

/// [`decide`], given the change or the error that kept it from being JSON.
pub(crate) fn decide_change(
    envelope: &Envelope<ConfigEvent>,
    sequence: u64,
    before: Option<Value>,
    change: Result<ConfigChange, serde_json::Error>,
) -> Decision {
    let change = match change {
        Ok(change) => change,
        Err(error) => return Decision::unserialisable(&error),
    };
    let audit = config_audit_row(envelope, sequence, before, &change);
    let write = match change {
        ConfigChange::Upsert { entity, id, data } => Effect::PutEntity {
            entity,
            id,
            data,
            subject_sequence: sequence,
            at: envelope.occurred_at,
            by: envelope.actor.as_ref().map(|actor| actor.username.clone()),
        },
        ConfigChange::Delete { entity, id } => Effect::DeleteEntity { entity, id },
    };
    Decision::Apply(vec![write, Effect::Audit(audit)])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fold::testing::{given_config, setting_deleted, setting_put};
    use serde_json::json;

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

    fn audit(
        when: &Envelope<ConfigEvent>,
        sequence: u64,
        before: Option<Value>,
        after: Option<Value>,
    ) -> Effect {
        Effect::Audit(AuditRow {
            stream: CONFIG_STREAM,
            sequence,
            event_id: when.event_id,
            occurred_at: when.occurred_at,
            event_type: shared::EventBody::event_type(&when.body).to_owned(),
            actor_id: Some("u1".into()),
            actor_name: Some("admin".into()),
            entity: Some("setting".into()),
            entity_id: Some("motd".into()),
            before,
            after,
        })
    }

    fn put(when: &Envelope<ConfigEvent>, sequence: u64, data: Value) -> Effect {
        Effect::PutEntity {
            entity: ConfigEntity::Setting,
            id: "motd".into(),
            data,
            subject_sequence: sequence,
            at: when.occurred_at,
            by: Some("admin".into()),
        }
    }

    #[test]
    fn given_nothing_when_a_setting_is_put_then_it_is_stored_and_audited_with_no_before() {
        let when = setting_put("motd", json!("hi"));
        given_config([])
            .when(&when)
            .then_expect(Decision::Apply(vec![
                Effect::PutEntity {
                    entity: ConfigEntity::Setting,
                    id: "motd".into(),
                    data: json!({"key": "motd", "value": "hi"}),
                    subject_sequence: 1,
                    at: when.occurred_at,
                    by: Some("admin".into()),
                },
                audit(&when, 1, None, Some(json!({"key": "motd", "value": "hi"}))),
            ]));
    }

    #[test]
    fn given_a_setting_when_it_is_put_again_then_the_audit_row_shows_before_and_after() {
        let when = setting_put("motd", json!("bye"));
        given_config([setting_put("motd", json!("hi"))])
            .when(&when)
            .then_expect(Decision::Apply(vec![
                put(&when, 2, json!({"key": "motd", "value": "bye"})),
                audit(
                    &when,
                    2,
                    Some(json!({"key": "motd", "value": "hi"})),
                    Some(json!({"key": "motd", "value": "bye"})),
                ),
            ]));
    }

    #[test]
    fn given_a_setting_when_it_is_deleted_then_it_is_removed_and_audited_with_no_after() {
        let when = setting_deleted("motd");
        given_config([setting_put("motd", json!("hi"))])
            .when(&when)
            .then_expect(Decision::Apply(vec![
                Effect::DeleteEntity {
                    entity: ConfigEntity::Setting,
                    id: "motd".into(),
                },
                audit(&when, 2, Some(json!({"key": "motd", "value": "hi"})), None),
            ]));
    }

    #[test]
    fn given_secrets_in_a_state_when_it_changes_then_the_audit_row_redacts_before_and_after() {
        let when = setting_put("motd", json!({"password": "new"}));
        let then = given_config([setting_put("motd", json!({"password": "old"}))]).when(&when);
        let Decision::Apply(effects) = then.decision() else {
            panic!("a setting is never a dead letter");
        };
        assert!(matches!(&effects[0], Effect::PutEntity { data, .. }
            if data["value"]["password"] == "new"));
        assert_eq!(
            effects[1],
            audit(
                &when,
                2,
                Some(json!({"key": "motd", "value": {"password": "[redacted]"}})),
                Some(json!({"key": "motd", "value": {"password": "[redacted]"}})),
            )
        );
    }

    #[test]
    fn given_a_setting_when_its_change_cannot_be_json_then_a_dead_letter_and_no_delete() {
        let when = setting_put("motd", json!("bye"));
        let error = <serde_json::Error as serde::ser::Error>::custom("a map key is not a string");
        let then = decide_change(
            &when,
            2,
            Some(json!({"key": "motd", "value": "hi"})),
            Err(error),
        );
        assert_eq!(
            then,
            Decision::DeadLetter {
                reason: "cannot be represented as JSON: a map key is not a string".into()
            }
        );
    }
}
