//! The audit view: one row per config or audit event, with every secret redacted, and the
//! key health an operator's key test reports.

use serde_json::Value;
use shared::audit::AuditEvent;
use shared::secret::SECRET_FIELD_NAMES;
use shared::streams::AUDIT_STREAM;
use shared::{Envelope, EventBody};
use time::Date;

use super::spend::SpendDelta;
use super::{Decision, Effect, KeyCheck};

const DAY: &[time::format_description::FormatItem<'static>] =
    time::macros::format_description!("[year]-[month]-[day]");

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
/// key's health; for a spend adjustment, each entry's amount added to its token's day.
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
    match &envelope.body {
        AuditEvent::ProviderKeyTested(tested) => {
            effects.push(Effect::KeyCheck(KeyCheck::from_test(
                tested,
                envelope.occurred_at,
            )));
        }
        AuditEvent::SpendAdjusted(adjusted) => {
            for entry in &adjusted.entries {
                let Ok(day) = Date::parse(&entry.day, DAY) else {
                    return Decision::DeadLetter {
                        reason: format!("spend adjustment day {:?} is not YYYY-MM-DD", entry.day),
                    };
                };
                // Only the amount: no request, no tokens, and a last use (midnight of the
                // day) that never moves the row's later one.
                effects.push(Effect::Spend(SpendDelta {
                    token_id: entry.token_id.clone(),
                    day,
                    currency: entry.currency.clone(),
                    requests: 0,
                    errors: 0,
                    input_tokens: 0,
                    output_tokens: 0,
                    cache_read_tokens: 0,
                    cache_write_tokens: 0,
                    cost_nanos: entry.amount.0,
                    last_used_at: day.midnight().assume_utc(),
                }));
            }
        }
        _ => {}
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
                method: None,
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

    fn adjustment(day: &str, amount: i64) -> Envelope<AuditEvent> {
        Envelope::by_actor(
            AuditEvent::SpendAdjusted(shared::audit::SpendAdjusted {
                adjustment_id: "a1".into(),
                reason: "v1 was wrong".into(),
                model_alias: Some("gpt-4o".into()),
                from: "2026-11-01T00:00:00Z".into(),
                to: "2026-11-02T00:00:00Z".into(),
                price: shared::money::Price {
                    currency: "USD".into(),
                    input_per_million: shared::money::Nanos(1),
                    output_per_million: shared::money::Nanos(2),
                    cache_read_per_million: shared::money::Nanos(0),
                    cache_write_per_million: shared::money::Nanos(0),
                    version: 2,
                },
                entries: vec![shared::audit::SpendAdjustmentEntry {
                    token_id: "t1".into(),
                    day: day.into(),
                    currency: "USD".into(),
                    amount: shared::money::Nanos(amount),
                }],
            }),
            admin(),
        )
    }

    #[test]
    fn when_spend_is_adjusted_then_an_audit_row_and_only_the_amount_added_to_the_day() {
        let Decision::Apply(effects) = decide(&adjustment("2026-11-01", -1_500), 11) else {
            panic!("a well-formed adjustment is applied");
        };
        assert!(matches!(&effects[0], Effect::Audit(row) if row.event_type == "spend.adjusted"));
        let [_, Effect::Spend(delta)] = effects.as_slice() else {
            panic!("one spend delta: {effects:?}");
        };
        let day = time::macros::date!(2026 - 11 - 01);
        assert_eq!(delta.token_id, "t1");
        assert_eq!(
            (delta.day, delta.cost_nanos, delta.requests),
            (day, -1_500, 0)
        );
        assert_eq!(delta.input_tokens + delta.output_tokens + delta.errors, 0);
        assert_eq!(delta.last_used_at, day.midnight().assume_utc());
    }

    #[test]
    fn when_an_adjustment_names_no_day_then_it_is_a_dead_letter() {
        assert!(matches!(
            decide(&adjustment("yesterday", 5), 12),
            Decision::DeadLetter { .. }
        ));
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
                method: None,
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
