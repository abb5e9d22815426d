//! `/api/v1/users`: operator accounts and their role (a `role_binding` per user). Admin only
//! for writes. Passwords are hashed with argon2id here; a password set by an admin must be
//! changed by its user at first login.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use shared::config::{ConfigEntity, ConfigEvent, Deleted, Role, RoleBinding, User};

use super::crud::{self, Declare, ReadResource, Resource};
use super::{delete_version, load, merge, new_id, read_back, render, take_version, validate};
use crate::auth::{Caller, check_new_password, hash_password};
use crate::authz::require_kind;
use crate::db::{self, Stored};
use crate::error::ApiError;
use crate::extract::{Body, parse};
use crate::permission::{Action, Kind};
use crate::read_your_writes::Projection;
use crate::routes::Api;
use crate::state::AppState;

const ENTITY: &str = "user";
const BINDING: &str = "role_binding";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserInput {
    #[serde(default)]
    id: Option<String>,
    username: String,
    #[serde(default)]
    display_name: String,
    /// Required at creation; in an update, a new password (which the user must change).
    #[serde(default)]
    password: Option<String>,
    #[serde(default = "member")]
    role: Role,
    #[serde(default = "super::providers::enabled_by_default")]
    enabled: bool,
    /// A budget over all the user's tokens together.
    #[serde(default)]
    budget: Option<super::tokens::BudgetInput>,
    /// Glob patterns over the model aliases the user's tokens may call; empty: all.
    #[serde(default)]
    allowed_models: Vec<String>,
}

fn member() -> Role {
    Role::Member
}

fn check_username(username: &str) -> Result<(), ApiError> {
    let ok = !username.is_empty()
        && username.len() <= 64
        && username
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b"._@-".contains(&byte));
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(
            "username",
            "username must have 1 to 64 characters among letters, digits and . _ @ -",
        ))
    }
}

async fn check_username_free(state: &AppState, username: &str, id: &str) -> Result<(), ApiError> {
    if let Some(other) = db::find_by_field(&state.pool, ENTITY, "username", username).await?
        && other.id != id
    {
        return Err(ApiError::Conflict {
            code: "username_taken",
            message: format!("the username {username:?} is taken"),
            field: Some("username".into()),
            current_version: None,
        });
    }
    Ok(())
}

async fn roles(state: &AppState) -> Result<HashMap<String, Role>, ApiError> {
    Ok(db::all(&state.pool, BINDING)
        .await?
        .into_iter()
        .filter_map(|stored| serde_json::from_value::<RoleBinding>(stored.data).ok())
        .map(|binding| (binding.user_id, binding.role))
        .collect())
}

fn render_user(stored: &Stored, roles: &HashMap<String, Role>) -> Value {
    let mut value = render(stored);
    if let Ok(user) = serde_json::from_value::<User>(stored.data.clone())
        && let Some(budget) = &user.budget
    {
        value["budget"]["amount"] = json!(budget.amount.to_decimal());
    }
    value["role"] = json!(
        roles
            .get(&stored.id)
            .copied()
            .unwrap_or(Role::Member)
            .as_str()
    );
    value
}

async fn hash_blocking(password: String) -> Result<String, ApiError> {
    tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(ApiError::internal)?
}

/// Publishes the role binding when it differs from the current one; returns the sequence.
async fn bind_role(
    state: &AppState,
    caller: &Caller,
    user_id: &str,
    role: Role,
) -> Result<Option<u64>, ApiError> {
    bind_role_as(state, &caller.actor(), user_id, role).await
}

/// [`bind_role`] by any actor (single sign-on binds the role its groups give).
///
/// # Errors
/// On a stale version or a bus error.
pub async fn bind_role_as(
    state: &AppState,
    actor: &shared::Actor,
    user_id: &str,
    role: Role,
) -> Result<Option<u64>, ApiError> {
    let current = db::get(&state.pool, BINDING, user_id).await?;
    let current_role = current
        .as_ref()
        .and_then(|stored| serde_json::from_value::<RoleBinding>(stored.data.clone()).ok())
        .map(|binding| binding.role);
    if current_role == Some(role) {
        return Ok(None);
    }
    let expected = match current {
        Some(stored) => stored.version,
        None => {
            state
                .bus
                .current_version(&shared::streams::config_subject(
                    ConfigEntity::RoleBinding,
                    user_id,
                ))
                .await?
        }
    };
    let binding = RoleBinding {
        user_id: user_id.to_owned(),
        role,
    };
    Ok(Some(
        state
            .bus
            .publish_config(ConfigEvent::RoleBindingPut(binding), actor, expected)
            .await?,
    ))
}

/// Users, declared. A user's role is its own entity (a role binding), so the commands are the
/// resource's own; the reads are the generic ones.
pub struct Users;

impl ReadResource for Users {
    const RESOURCE: Resource = Resource {
        kind: Kind::User,
        entity: ConfigEntity::User,
        path: "/api/v1/users",
        tag: "users",
        filters: &["username", "enabled"],
        owner_field: None,
        team_field: None,
        secret_fields: &["password"],
        operator_only: &[],
        example: || json!({"username": "olga", "password": "…", "role": "operator", "display_name": "Olga"}),
    };

    async fn render(state: &AppState, rows: &[Stored]) -> Result<Vec<Value>, ApiError> {
        let roles = roles(state).await?;
        Ok(rows.iter().map(|row| render_user(row, &roles)).collect())
    }
}

/// The endpoints of users and their roles.
pub fn declare(api: Api) -> Api {
    Declare::new(api, &Users::RESOURCE)
        .list("List users with their roles", crud::list::<Users>)
        .create(
            "Create a user (must change the password at first login)",
            create,
        )
        .get("Get a user", crud::get::<Users>)
        .update("Update a user, its role, or reset its password", update)
        .delete("Delete a user and its role binding", delete)
        .read_at(
            "/api/v1/role-bindings",
            "Every user's role",
            list_role_bindings,
        )
        .done()
}

pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Body(body): Body<Value>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    require_kind(&state, &caller, Action::Create, Kind::User)?;
    let input: UserInput = parse(body)?;
    let id = new_id(input.id.clone())?;
    check_username(&input.username)?;
    validate_display_name(&input.display_name)?;
    check_username_free(&state, &input.username, &id).await?;
    let password = input
        .password
        .ok_or_else(|| ApiError::invalid("password", "a new user needs a password"))?;
    check_new_password("password", &password)?;
    super::tokens::check_models("allowed_models", &input.allowed_models)?;
    let budget = super::tokens::budget_from_input(input.budget)?;
    let user = User {
        id: id.clone(),
        username: input.username,
        display_name: input.display_name,
        password_hash: hash_blocking(password).await?,
        must_change_password: true,
        enabled: input.enabled,
        budget,
        allowed_models: input.allowed_models,
        sso_subject: None,
    };
    let sequence = state
        .bus
        .publish_config(ConfigEvent::UserPut(user), &caller.actor(), 0)
        .await?;
    let last = bind_role(&state, &caller, &id, input.role)
        .await?
        .unwrap_or(sequence)
        .max(sequence);
    state
        .projections
        .wait_for(Projection::Config, last, state.read_your_writes_timeout)
        .await?;
    let stored = read_back(&state, ENTITY, &id, sequence).await?;
    Ok((
        StatusCode::CREATED,
        Json(render_user(&stored, &roles(&state).await?)),
    ))
}

fn validate_display_name(display_name: &str) -> Result<(), ApiError> {
    if display_name.is_empty() {
        Ok(())
    } else {
        validate::name("display_name", display_name)
    }
}

pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Body(mut body): Body<Value>,
) -> Result<Json<Value>, ApiError> {
    require_kind(&state, &caller, Action::Update, Kind::User)?;
    let version = take_version(&mut body)?;
    super::check_body_id(&mut body, &id, "id")?;
    let stored = load(&state, ENTITY, &id).await?;
    let existing: User = serde_json::from_value(stored.data)?;
    let current_role = crate::auth::role_of(&state, &id).await?;
    let base = json!({"id": existing.id, "username": existing.username, "display_name": existing.display_name,
        "role": current_role, "enabled": existing.enabled,
        "budget": existing.budget.as_ref().map(super::tokens::budget_input),
        "allowed_models": existing.allowed_models});
    let input: UserInput = parse(merge(base, body))?;
    check_username(&input.username)?;
    validate_display_name(&input.display_name)?;
    check_username_free(&state, &input.username, &id).await?;
    if id == caller.user_id && (!input.enabled || input.role != Role::Admin) {
        return Err(ApiError::invalid(
            "role",
            "you cannot disable or demote yourself; ask another admin",
        ));
    }
    super::tokens::check_models("allowed_models", &input.allowed_models)?;
    let mut user = existing.clone();
    user.budget = super::tokens::budget_from_input(input.budget)?;
    user.allowed_models = input.allowed_models;
    user.username = input.username;
    user.display_name = input.display_name;
    user.enabled = input.enabled;
    if let Some(password) = input.password {
        check_new_password("password", &password)?;
        user.password_hash = hash_blocking(password).await?;
        user.must_change_password = true;
    }
    let mut last = None;
    if user != existing {
        last = Some(
            state
                .bus
                .publish_config(ConfigEvent::UserPut(user.clone()), &caller.actor(), version)
                .await?,
        );
    } else if version != stored.version {
        return Err(ApiError::Conflict {
            code: "version_conflict",
            message: format!(
                "the user changed since version {version}; it is now at version {}",
                stored.version
            ),
            field: Some("version".into()),
            current_version: Some(stored.version),
        });
    }
    if let Some(sequence) = bind_role(&state, &caller, &id, input.role).await? {
        last = Some(last.unwrap_or(0).max(sequence));
    }
    if let Some(last) = last {
        state
            .projections
            .wait_for(Projection::Config, last, state.read_your_writes_timeout)
            .await?;
    }
    if !user.enabled || user.password_hash != existing.password_hash {
        db::revoke_user_sessions(&state.pool, &id, None).await?;
    }
    let stored = load(&state, ENTITY, &id).await?;
    Ok(Json(render_user(&stored, &roles(&state).await?)))
}

pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<StatusCode, ApiError> {
    require_kind(&state, &caller, Action::Delete, Kind::User)?;
    if id == caller.user_id {
        return Err(ApiError::invalid(
            "id",
            "you cannot delete yourself; ask another admin",
        ));
    }
    let stored = load(&state, ENTITY, &id).await?;
    let version = delete_version(&params, &stored)?;
    let mut last = state
        .bus
        .publish_config(
            ConfigEvent::UserDeleted(Deleted { id: id.clone() }),
            &caller.actor(),
            version,
        )
        .await?;
    if let Some(binding) = db::get(&state.pool, BINDING, &id).await? {
        let event = ConfigEvent::RoleBindingDeleted(Deleted { id: id.clone() });
        last = last.max(
            state
                .bus
                .publish_config(event, &caller.actor(), binding.version)
                .await?,
        );
    }
    db::revoke_user_sessions(&state.pool, &id, None).await?;
    state
        .projections
        .wait_for(Projection::Config, last, state.read_your_writes_timeout)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/role-bindings`: every user's role.
pub async fn list_role_bindings(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    require_kind(&state, &caller, Action::Read, Kind::User)?;
    let rows = db::all(&state.pool, BINDING).await?;
    let total = i64::try_from(rows.len()).unwrap_or(i64::MAX);
    Ok(Json(
        json!({"items": rows.iter().map(render).collect::<Vec<_>>(), "total": total}),
    ))
}
