//! The config resources. Each command builds the entity's full new state, publishes it as a
//! config event naming the version the client read, waits for the projector to apply it
//! (read your writes) and answers with the new state read back from the view, secrets masked.

pub mod crud;
pub mod models;
pub mod provider_keys;
pub mod providers;
pub mod settings;
pub mod teams;
pub mod token_limits;
pub mod tokens;
pub mod users;
pub mod validate;

use std::collections::HashMap;

use serde_json::{Map, Value, json};
use shared::Actor;
use shared::config::ConfigEvent;
use shared::secret::SECRET_FIELD_NAMES;

use crate::db::{self, ListQuery, Stored};
use crate::error::ApiError;
use crate::read_your_writes::Projection;
use crate::resources::crud::{ReadResource as _, Resource};
use crate::state::AppState;

/// Every config resource, declared.
pub const RESOURCES: &[&Resource] = &[
    &providers::Providers::RESOURCE,
    &provider_keys::ProviderKeys::RESOURCE,
    &models::Models::RESOURCE,
    &tokens::Tokens::RESOURCE,
    &users::Users::RESOURCE,
    &settings::Settings::RESOURCE,
    &teams::Teams::RESOURCE,
];

/// Builds a list query from the query string; only `allowed` fields filter.
///
/// # Errors
/// 400 naming an unknown parameter or a bad page value.
pub fn list_query(
    params: HashMap<String, String>,
    allowed: &[&str],
) -> Result<ListQuery, ApiError> {
    let mut query = ListQuery::default();
    let mut limit = None;
    let mut offset = None;
    for (name, value) in params {
        match name.as_str() {
            "limit" => {
                limit = Some(
                    value
                        .parse::<i64>()
                        .map_err(|_| ApiError::invalid("limit", "limit must be a number"))?,
                );
            }
            "offset" => {
                offset = Some(
                    value
                        .parse::<i64>()
                        .map_err(|_| ApiError::invalid("offset", "offset must be a number"))?,
                );
            }
            "q" => query.search = Some(value),
            field if allowed.contains(&field) => query.filters.push((name, value)),
            _ => {
                return Err(ApiError::invalid(
                    name.clone(),
                    format!(
                        "unknown parameter {name:?}; filters here: q, limit, offset, {}",
                        allowed.join(", ")
                    ),
                ));
            }
        }
    }
    query.filters.sort();
    (query.limit, query.offset) = db::page(limit, offset);
    Ok(query)
}

/// The JSON of a page.
#[must_use]
pub fn page_json(items: Vec<Value>, total: i64, query: &ListQuery) -> Value {
    json!({"items": items, "total": total, "limit": query.limit, "offset": query.offset})
}

/// An entity's state as the API shows it: its data without secret fields, plus its version
/// and bookkeeping.
#[must_use]
pub fn render(stored: &Stored) -> Value {
    let mut data = match &stored.data {
        Value::Object(map) => map.clone(),
        _ => Map::new(),
    };
    for field in SECRET_FIELD_NAMES {
        data.remove(*field);
    }
    let time = |at: time::OffsetDateTime| {
        at.format(&time::format_description::well_known::Rfc3339)
            .ok()
    };
    data.insert("version".into(), json!(stored.version));
    data.insert("created_at".into(), json!(time(stored.created_at)));
    data.insert("updated_at".into(), json!(time(stored.updated_at)));
    data.insert("updated_by".into(), json!(stored.updated_by));
    Value::Object(data)
}

/// Loads an entity or answers 404.
///
/// # Errors
/// 404, or a database error.
pub async fn load(state: &AppState, entity: &'static str, id: &str) -> Result<Stored, ApiError> {
    db::get(&state.pool, entity, id)
        .await?
        .ok_or_else(|| ApiError::NotFound {
            entity,
            id: id.to_owned(),
        })
}

/// Publishes a config event and waits until the projector has applied it.
///
/// # Errors
/// 409 on a stale version, 503 when the bus or the projector does not answer in time.
pub async fn commit(
    state: &AppState,
    event: ConfigEvent,
    actor: &Actor,
    expected_version: u64,
) -> Result<u64, ApiError> {
    let entity = event.entity().as_str();
    let sequence = state
        .bus
        .publish_config(event, actor, expected_version)
        .await?;
    metrics::counter!("admin_api_config_events_total", "entity" => entity).increment(1);
    state
        .projections
        .wait_for(Projection::Config, sequence, state.read_your_writes_timeout)
        .await?;
    Ok(sequence)
}

/// Reads an entity back after `commit`; the view must hold `sequence` or a later version.
///
/// # Errors
/// 409 `rejected_by_view` when the projector refused the event (a unique name taken meanwhile).
pub async fn read_back(
    state: &AppState,
    entity: &'static str,
    id: &str,
    sequence: u64,
) -> Result<Stored, ApiError> {
    match db::get(&state.pool, entity, id).await? {
        Some(stored) if stored.version >= sequence => Ok(stored),
        _ => Err(ApiError::Conflict {
            code: "rejected_by_view",
            message:
                "the change was published but the projector refused it (a unique name was taken \
                      concurrently); see the dead letters"
                    .into(),
            field: None,
            current_version: None,
        }),
    }
}

/// Overlays the fields of `patch` on `base` (both objects; a shallow merge).
#[must_use]
pub fn merge(base: Value, patch: Value) -> Value {
    match (base, patch) {
        (Value::Object(mut base), Value::Object(patch)) => {
            for (key, value) in patch {
                base.insert(key, value);
            }
            Value::Object(base)
        }
        (base, _) => base,
    }
}

/// Takes `version` out of an update body.
///
/// # Errors
/// 400 when it is missing or not a number.
pub fn take_version(body: &mut Value) -> Result<u64, ApiError> {
    let version = body
        .as_object_mut()
        .and_then(|object| object.remove("version"))
        .ok_or_else(|| {
            ApiError::invalid(
                "version",
                "an update must name the version it read (`version`)",
            )
        })?;
    version
        .as_u64()
        .ok_or_else(|| ApiError::invalid("version", "version must be a positive integer"))
}

/// Refuses an `id` in an update body that differs from the path.
///
/// # Errors
/// 400 naming `id`.
pub fn check_body_id(body: &mut Value, id: &str, id_field: &str) -> Result<(), ApiError> {
    if let Some(given) = body
        .as_object_mut()
        .and_then(|object| object.remove(id_field))
        && given.as_str() != Some(id)
    {
        return Err(ApiError::invalid(
            id_field,
            format!("{id_field} cannot change"),
        ));
    }
    Ok(())
}

/// The new entity's id: the one given (validated) or a fresh UUIDv7.
///
/// # Errors
/// 400 naming `id` when it cannot be a subject token.
pub fn new_id(given: Option<String>) -> Result<String, ApiError> {
    match given {
        Some(id) if shared::ids::is_valid_entity_id(&id) => Ok(id),
        Some(_) => Err(ApiError::invalid(
            "id",
            "an id has 1 to 128 characters among letters, digits, - and _",
        )),
        None => Ok(shared::ids::new_entity_id()),
    }
}

/// `?version=` of a delete: the version the client read, or the view's current one.
pub fn delete_version(params: &HashMap<String, String>, stored: &Stored) -> Result<u64, ApiError> {
    match params.get("version") {
        Some(version) => version
            .parse()
            .map_err(|_| ApiError::invalid("version", "version must be a positive integer")),
        None => Ok(stored.version),
    }
}
