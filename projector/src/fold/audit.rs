//! The audit view: one row per config or audit event, with every secret redacted, and the
//! key health an operator's key test reports.

use serde_json::Value;
use shared::audit::AuditEvent;
use shared::secret::SECRET_FIELD_NAMES;
use shared::streams::AUDIT_STREAM;
use shared::{Envelope, EventBody};

use super::{Decision, Effect, KeyCheck};

/// Replaces every secret-bearing field ([`SECRET_FIELD_NAMES`]) with `"[redacted]"`, however
/// deep.
pub fn redact(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, field) in map.iter_mut() {
                if SECRET_FIELD_NAMES.contains(&key.as_str()) {
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

/// A value as the audit view may show it.
pub(crate) fn redacted(value: Option<Value>) -> Option<Value> {
    value.map(|mut value| {
        redact(&mut value);
        value
    })
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

impl AuditRow {
    /// The row's envelope part (who, when, what type), with no entity and no states.
    pub(crate) fn of<B: EventBody>(
        stream: &'static str,
        sequence: u64,
        envelope: &Envelope<B>,
    ) -> Self {
        Self {
            stream,
            sequence,
            event_id: envelope.event_id,
            occurred_at: envelope.occurred_at,
            event_type: envelope.body.event_type().to_owned(),
            actor_id: envelope.actor.as_ref().map(|actor| actor.user_id.clone()),
            actor_name: envelope.actor.as_ref().map(|actor| actor.username.clone()),
            entity: None,
            entity_id: None,
            before: None,
            after: None,
        }
    }
}

/// What an audit event does: its audit row (the payload, redacted) and, for a key test, the
/// key's health.
#[must_use]
pub fn decide(envelope: &Envelope<AuditEvent>, sequence: u64) -> Decision {
    decide_tagged(envelope, sequence, serde_json::to_value(&envelope.body))
}

/// [`decide`], given the event's body as JSON or the error that kept it from being JSON.
fn decide_tagged(
    envelope: &Envelope<AuditEvent>,
    sequence: u64,
    tagged: Result<Value, serde_json::Error>,
) -> Decision {
    let tagged = match tagged {
        Ok(tagged) => tagged,
        Err(error) => return Decision::unserialisable(&error),
    };
    let row = AuditRow {
        after: redacted(tagged.get("payload").cloned()),
        ..AuditRow::of(AUDIT_STREAM, sequence, envelope)
    };
    let mut effects = vec![Effect::Audit(row)];
    if let AuditEvent::ProviderKeyTested(tested) = &envelope.body {
        effects.push(Effect::KeyCheck(KeyCheck::from_test(
            tested,
            envelope.occurred_at,
        )));
    }
    Decision::Apply(effects)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fold::testing::admin;
    use serde_json::json;
    use shared::audit::{LoginSucceeded, ProviderKeyTested};

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
    fn when_a_login_succeeds_then_one_audit_row_without_an_entity() {
        let when = Envelope::by_actor(
            AuditEvent::LoginSucceeded(LoginSucceeded {
                user_id: "u1".into(),
                username: "admin".into(),
                client_ip: Some("10.0.0.1".into()),
            }),
            admin(),
        );
        let then = decide(&when, 5);
        assert_eq!(
            then,
            Decision::Apply(vec![Effect::Audit(AuditRow {
                stream: AUDIT_STREAM,
                sequence: 5,
                event_id: when.event_id,
                occurred_at: when.occurred_at,
                event_type: "login.succeeded".into(),
                actor_id: Some("u1".into()),
                actor_name: Some("admin".into()),
                entity: None,
                entity_id: None,
                before: None,
                after: Some(json!({"user_id": "u1", "username": "admin", "client_ip": "10.0.0.1"})),
            })])
        );
    }

    #[test]
    fn when_a_key_test_fails_then_an_audit_row_and_an_unhealthy_key_check() {
        let tested = ProviderKeyTested {
            provider_key_id: "k1".into(),
            provider_id: "p1".into(),
            ok: false,
            status: Some(401),
            latency_ms: 120,
            error: Some("upstream_auth".into()),
        };
        let when = Envelope::by_actor(AuditEvent::ProviderKeyTested(tested), admin());
        let Decision::Apply(effects) = decide(&when, 9) else {
            panic!("a key test is never a dead letter");
        };
        assert!(matches!(&effects[0], Effect::Audit(row)
            if row.event_type == "provider_key.tested" && row.sequence == 9));
        let Effect::KeyCheck(check) = &effects[1] else {
            panic!("then the key's health: {effects:?}");
        };
        assert_eq!(
            (
                check.provider_key_id.as_str(),
                check.provider_id.as_str(),
                check.ok,
                check.status,
                check.latency_ms,
                check.error.as_deref(),
                check.at,
            ),
            (
                "k1",
                "p1",
                false,
                Some(401),
                120,
                Some("upstream_auth"),
                when.occurred_at
            )
        );
        assert_eq!(effects.len(), 2);
    }

    #[test]
    fn when_an_audit_event_cannot_be_json_then_it_is_a_dead_letter() {
        let when = Envelope::by_actor(
            AuditEvent::LoginSucceeded(LoginSucceeded {
                user_id: "u1".into(),
                username: "admin".into(),
                client_ip: None,
            }),
            admin(),
        );
        let error = <serde_json::Error as serde::ser::Error>::custom("a map key is not a string");
        assert_eq!(
            decide_tagged(&when, 3, Err(error)),
            Decision::DeadLetter {
                reason: "cannot be represented as JSON: a map key is not a string".into()
            }
        );
    }
}
