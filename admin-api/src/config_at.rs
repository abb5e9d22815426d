//! `GET /api/v1/config/at?seq=N`: the config in force at config stream sequence `N` — every
//! provider, key, model (routes, prices, limits), token (limits, budget), user, role binding
//! and setting as the latest event on its subject at or before `N` left it, rendered as the
//! entity endpoints render them (its `version` being that event's sequence) — rebuilt from
//! `AXONGATE_CONFIG` itself, not from the views (which hold only the present). A request event's
//! `config_seq` names the sequence its node served it under.

use std::collections::{BTreeMap, HashMap};

use async_nats::jetstream::{
    self,
    consumer::{DeliverPolicy, pull},
};
use axum::Json;
use axum::extract::{Query, State};
use futures::StreamExt;
use serde_json::{Map, Value, json};
use shared::config::{ConfigEntity, ConfigEvent};
use shared::secret::SECRET_FIELD_NAMES;
use shared::streams::CONFIG_STREAM;
use shared::{Envelope, EventBody};
use time::format_description::well_known::Rfc3339;

use crate::auth::Caller;
use crate::authz::{Resource, require};
use crate::db::Stored;
use crate::error::ApiError;
use crate::permission::{Action, Kind};
use crate::state::AppState;

/// The state of every entity at `seq`, by entity kind and id, as the views would have held it
/// then (its version is the stream sequence of the event that set it), and the event at `seq`
/// itself.
///
/// # Errors
/// When the stream cannot be read.
async fn fold_to(
    jetstream: &jetstream::Context,
    seq: u64,
) -> Result<(HashMap<ConfigEntity, BTreeMap<String, Stored>>, Value), ApiError> {
    let unavailable = |error: String| ApiError::Unavailable {
        code: "bus_unavailable",
        message: format!("{CONFIG_STREAM}: {error}"),
    };
    let stream = jetstream
        .get_stream(CONFIG_STREAM)
        .await
        .map_err(|error| unavailable(error.to_string()))?;
    let consumer = stream
        .create_consumer(pull::OrderedConfig {
            deliver_policy: DeliverPolicy::All,
            ..Default::default()
        })
        .await
        .map_err(|error| unavailable(error.to_string()))?;
    let mut messages = consumer
        .messages()
        .await
        .map_err(|error| unavailable(error.to_string()))?;
    let mut state: HashMap<(ConfigEntity, String), Stored> = HashMap::new();
    let mut at = Value::Null;
    while let Some(message) = messages.next().await {
        let message = message.map_err(|error| unavailable(error.to_string()))?;
        let info = message
            .info()
            .map_err(|error| unavailable(error.to_string()))?;
        let (sequence, pending) = (info.stream_sequence, info.pending);
        if sequence > seq {
            break;
        }
        // An event that does not decode changed nothing for ingress either (it skips it).
        if let Ok(envelope) = Envelope::<ConfigEvent>::from_bytes(&message.payload) {
            let key = (envelope.body.entity(), envelope.body.entity_id().to_owned());
            let updated_by = envelope.actor.as_ref().map(|actor| actor.username.clone());
            if sequence == seq {
                at = json!({
                    "seq": sequence,
                    "type": envelope.body.event_type(),
                    "entity": key.0.as_str(),
                    "entity_id": key.1,
                    "occurred_at": envelope.occurred_at.format(&Rfc3339).unwrap_or_default(),
                    "actor": updated_by,
                });
            }
            match payload_of(&envelope.body) {
                Some(data) => {
                    let created_at = state
                        .get(&key)
                        .map_or(envelope.occurred_at, |stored| stored.created_at);
                    let id = key.1.clone();
                    state.insert(
                        key,
                        Stored {
                            id,
                            data,
                            version: sequence,
                            created_at,
                            updated_at: envelope.occurred_at,
                            updated_by,
                        },
                    );
                }
                None => {
                    state.remove(&key);
                }
            }
        }
        if sequence >= seq || pending == 0 {
            break;
        }
    }
    let mut grouped: HashMap<ConfigEntity, BTreeMap<String, Stored>> = HashMap::new();
    for ((entity, id), stored) in state {
        grouped.entry(entity).or_default().insert(id, stored);
    }
    Ok((grouped, at))
}

/// The state a put event carries (what the projector stores as the entity's data); `None`
/// for a delete.
fn payload_of(event: &ConfigEvent) -> Option<Value> {
    if event.event_type().ends_with(".deleted") {
        return None;
    }
    serde_json::to_value(event).ok()?.get("payload").cloned()
}

/// An entity as the API shows it now: prices and budgets as decimals, no secret field.
fn rendered(entity: ConfigEntity, stored: &Stored) -> Value {
    let mut value = match entity {
        ConfigEntity::Model => crate::resources::models::render_model(stored),
        ConfigEntity::Token => crate::resources::tokens::render_token(stored),
        _ => crate::resources::render(stored),
    };
    // Every renderer drops the secret fields at the top; nothing nested may hold one either.
    strip_secrets(&mut value);
    value
}

fn strip_secrets(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|key, _| !SECRET_FIELD_NAMES.contains(&key.as_str()));
            map.values_mut().for_each(strip_secrets);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_secrets),
        _ => {}
    }
}

/// `GET /api/v1/config/at?seq=N`.
pub async fn config_at(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    require(
        state.authorizer.as_ref(),
        &caller.principal(),
        Action::Read,
        &Resource::kind(Kind::Config),
    )?;
    if let Some(unknown) = params.keys().find(|name| name.as_str() != "seq") {
        return Err(ApiError::invalid(
            unknown.clone(),
            format!("unknown parameter {unknown:?}; the one parameter is seq"),
        ));
    }
    let seq: u64 = params
        .get("seq")
        .ok_or_else(|| ApiError::invalid("seq", "seq is required: a config stream sequence"))?
        .parse()
        .ok()
        .filter(|seq| *seq > 0)
        .ok_or_else(|| ApiError::invalid("seq", "seq must be a positive whole number"))?;
    let jetstream = state.bus.jetstream();
    let mut stream =
        jetstream
            .get_stream(CONFIG_STREAM)
            .await
            .map_err(|error| ApiError::Unavailable {
                code: "bus_unavailable",
                message: format!("{CONFIG_STREAM}: {error}"),
            })?;
    let stream_state = stream
        .info()
        .await
        .map_err(|error| ApiError::Unavailable {
            code: "bus_unavailable",
            message: format!("{CONFIG_STREAM}: {error}"),
        })?
        .state
        .clone();
    let last = stream_state.last_sequence;
    if seq > last {
        return Err(ApiError::invalid(
            "seq",
            format!("the config stream ends at sequence {last}"),
        ));
    }
    // An emptied stream delivers nothing to wait for.
    let (grouped, at) = if stream_state.messages == 0 {
        (HashMap::new(), Value::Null)
    } else {
        fold_to(jetstream, seq).await?
    };
    let mut entities = Map::new();
    for entity in ConfigEntity::ALL {
        let items: Vec<Value> = grouped
            .get(&entity)
            .into_iter()
            .flat_map(BTreeMap::values)
            .map(|stored| rendered(entity, stored))
            .collect();
        entities.insert(entity.as_str().to_owned(), Value::Array(items));
    }
    Ok(Json(json!({
        "seq": seq,
        "last_seq": last,
        "event": at,
        "entities": entities,
    })))
}
