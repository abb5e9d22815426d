//! A config resource declared once. A resource is a [`Resource`] (its permission kind, config
//! entity, path, filters, which fields are secret and which are operator-only, an example body)
//! and a [`ConfigResource`] implementation (its input and entity types and the decisions only it
//! knows: how an input becomes the entity's full state, how it renders, what a delete must
//! check). The generic handlers here are the skeleton every command shares — authorize, parse,
//! id and version, build, commit, read back, render — and [`Declare`] registers a resource's
//! endpoints, so adding a resource is one declaration and its handler logic.

use std::collections::HashMap;
use std::future::Future;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::handler::Handler;
use axum::http::StatusCode;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use shared::config::{ConfigEntity, ConfigEvent};

use super::{
    check_body_id, commit, delete_version, list_query, load, merge, new_id, page_json, read_back,
    render, take_version,
};
use crate::auth::Caller;
use crate::authz::{require, require_any_or_own, require_kind};
use crate::db::{self, Stored};
use crate::error::ApiError;
use crate::extract::{Body, parse};
use crate::permission::{Action, Kind};
use crate::routes::Api;
use crate::state::AppState;

/// What a config resource is.
#[derive(Debug, Clone, Copy)]
pub struct Resource {
    /// The kind its permissions name.
    pub kind: Kind,
    /// The entity its events change.
    pub entity: ConfigEntity,
    /// The collection's path, e.g. `/api/v1/providers`; an entity is at `{path}/{id}`.
    pub path: &'static str,
    /// The OpenAPI tag.
    pub tag: &'static str,
    /// The list's filters besides `q`, `limit` and `offset`.
    pub filters: &'static [&'static str],
    /// The field naming the owning user, for a resource a member may own; `None` when only
    /// roles decide.
    pub owner_field: Option<&'static str>,
    /// The field naming the team an owned entity is charged to, whose team admins act on it
    /// too.
    pub team_field: Option<&'static str>,
    /// Fields a client sends but the API never returns (each is in
    /// [`shared::secret::SECRET_FIELD_NAMES`], which [`render`] removes).
    pub secret_fields: &'static [&'static str],
    /// Fields a caller without the permission on every owner may only tighten.
    pub operator_only: &'static [&'static str],
    /// An example body of a create.
    pub example: fn() -> Value,
}

impl Resource {
    /// The path of one entity.
    #[must_use]
    pub fn item(&self) -> String {
        format!("{}/{{id}}", self.path)
    }
}

/// Who is acting, and on how much.
pub struct Ctx<'a> {
    pub state: &'a AppState,
    pub caller: &'a Caller,
    /// Whether the caller may act on every owner's entities (always, for an unowned resource).
    pub on_every_owner: bool,
}

/// A resource the generic reads serve: what it is and how it renders.
pub trait ReadResource: Send + Sync + 'static {
    const RESOURCE: Resource;

    /// Entities as the API shows them.
    fn render(
        state: &AppState,
        rows: &[Stored],
    ) -> impl Future<Output = Result<Vec<Value>, ApiError>> + Send {
        let _ = state;
        let rendered = rows.iter().map(render).collect();
        async move { Ok(rendered) }
    }
}

/// The decisions a resource's commands make; the generic handlers do the rest.
pub trait ConfigResource: ReadResource {
    /// What a client sends to create or update one (an update's body is laid over the current
    /// state as input, see [`ConfigResource::as_input`]).
    type Input: DeserializeOwned + Send;
    /// The entity's full state, as its `put` event carries it.
    type Entity: DeserializeOwned + Serialize + Send + Sync;

    /// The id an input asks for.
    fn requested_id(input: &Self::Input) -> Option<String>;

    /// The current state as the fields of an input.
    ///
    /// # Errors
    /// When the state does not serialize.
    fn as_input(current: &Self::Entity) -> Result<Value, ApiError>;

    /// Validates an input into the entity's full new state; `current` is `None` on a create.
    fn build(
        ctx: &Ctx<'_>,
        input: Self::Input,
        id: String,
        current: Option<Self::Entity>,
    ) -> impl Future<Output = Result<Self::Entity, ApiError>> + Send;

    /// The event that puts the entity.
    fn put(entity: Self::Entity) -> ConfigEvent;

    /// The event that deletes it.
    fn deleted(id: String) -> ConfigEvent;

    /// What must hold before a delete (nothing else refers to the entity, say).
    fn before_delete(
        state: &AppState,
        stored: &Stored,
    ) -> impl Future<Output = Result<(), ApiError>> + Send {
        let _ = (state, stored);
        async { Ok(()) }
    }
}

fn team_of<R: ReadResource>(stored: &Stored) -> Option<&str> {
    R::RESOURCE
        .team_field
        .and_then(|field| stored.data.get(field).and_then(Value::as_str))
}

fn owner_of<R: ReadResource>(stored: &Stored) -> Option<&str> {
    R::RESOURCE.owner_field.map(|field| {
        stored
            .data
            .get(field)
            .and_then(Value::as_str)
            .unwrap_or_default()
    })
}

/// Checks `action` on the resource; for an owned resource, on every owner's or (failing that)
/// the caller's own, and then on `stored`'s owner. Returns whether the caller acts on every
/// owner's entities.
fn authorize<R: ReadResource>(
    state: &AppState,
    caller: &Caller,
    action: Action,
    stored: Option<&Stored>,
) -> Result<bool, ApiError> {
    let kind = R::RESOURCE.kind;
    if R::RESOURCE.owner_field.is_none() {
        require_kind(state, caller, action, kind)?;
        return Ok(true);
    }
    let on_every_owner = require_any_or_own(state, caller, action, kind)?;
    if let Some(stored) = stored
        && let Some(owner) = owner_of::<R>(stored)
    {
        require(
            state.authorizer.as_ref(),
            &caller.principal(),
            action,
            &crate::authz::Resource::owned(kind, owner).of_team(team_of::<R>(stored)),
        )?;
    }
    Ok(on_every_owner)
}

/// Loads an entity, checking `action` on it (and on its owner); also returns whether the caller
/// acts on every owner's entities.
///
/// # Errors
/// 403, 404, or a database error.
pub async fn authorized_load<R: ReadResource>(
    state: &AppState,
    caller: &Caller,
    action: Action,
    id: &str,
) -> Result<(Stored, bool), ApiError> {
    authorize::<R>(state, caller, action, None)?;
    let stored = load(state, R::RESOURCE.entity.as_str(), id).await?;
    let on_every_owner = authorize::<R>(state, caller, action, Some(&stored))?;
    Ok((stored, on_every_owner))
}

pub async fn render_one<R: ReadResource>(
    state: &AppState,
    stored: Stored,
) -> Result<Value, ApiError> {
    R::render(state, std::slice::from_ref(&stored))
        .await?
        .pop()
        .ok_or_else(|| ApiError::internal("rendering an entity produced nothing"))
}

/// `GET {path}`: a page of entities (a caller who may read only their own sees only those).
pub async fn list<R: ReadResource>(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let on_every_owner = authorize::<R>(&state, &caller, Action::Read, None)?;
    let mut query = list_query(params, R::RESOURCE.filters)?;
    let admin_teams = caller.admin_teams();
    match (
        on_every_owner,
        R::RESOURCE.owner_field,
        R::RESOURCE.team_field,
    ) {
        // A team admin: their own and their teams' entities (the filters narrow further).
        (false, Some(owner_field), Some(team_field)) if !admin_teams.is_empty() => {
            query.visible_to = Some(db::Visible {
                owner_field,
                owner: caller.user_id.clone(),
                team_field,
                teams: admin_teams,
            });
        }
        (false, Some(field), _) => {
            query.filters.retain(|(name, _)| name != field);
            query
                .filters
                .push((field.to_owned(), caller.user_id.clone()));
        }
        _ => {}
    }
    let (rows, total) = db::list(&state.pool, R::RESOURCE.entity.as_str(), &query).await?;
    Ok(Json(page_json(
        R::render(&state, &rows).await?,
        total,
        &query,
    )))
}

/// `GET {path}/{id}`.
pub async fn get<R: ReadResource>(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let (stored, _) = authorized_load::<R>(&state, &caller, Action::Read, &id).await?;
    Ok(Json(render_one::<R>(&state, stored).await?))
}

/// `POST {path}`: 201 with the new entity.
pub async fn create<R: ConfigResource>(
    State(state): State<AppState>,
    caller: Caller,
    Body(body): Body<Value>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let on_every_owner = authorize::<R>(&state, &caller, Action::Create, None)?;
    let input: R::Input = parse(body)?;
    let id = new_id(R::requested_id(&input))?;
    let ctx = Ctx {
        state: &state,
        caller: &caller,
        on_every_owner,
    };
    let entity = R::build(&ctx, input, id.clone(), None).await?;
    let sequence = commit(&state, R::put(entity), &caller.actor(), 0).await?;
    let stored = read_back(&state, R::RESOURCE.entity.as_str(), &id, sequence).await?;
    Ok((
        StatusCode::CREATED,
        Json(render_one::<R>(&state, stored).await?),
    ))
}

/// `PATCH {path}/{id}` with the version read and the fields that change.
pub async fn update<R: ConfigResource>(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Body(mut body): Body<Value>,
) -> Result<Json<Value>, ApiError> {
    let (stored, on_every_owner) =
        authorized_load::<R>(&state, &caller, Action::Update, &id).await?;
    let version = take_version(&mut body)?;
    check_body_id(&mut body, &id, "id")?;
    let current: R::Entity = serde_json::from_value(stored.data)?;
    let input: R::Input = parse(merge(R::as_input(&current)?, body))?;
    let ctx = Ctx {
        state: &state,
        caller: &caller,
        on_every_owner,
    };
    let entity = R::build(&ctx, input, id.clone(), Some(current)).await?;
    let sequence = commit(&state, R::put(entity), &caller.actor(), version).await?;
    let stored = read_back(&state, R::RESOURCE.entity.as_str(), &id, sequence).await?;
    Ok(Json(render_one::<R>(&state, stored).await?))
}

/// `DELETE {path}/{id}` (`?version=` the version read; default the current one).
pub async fn delete<R: ConfigResource>(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<StatusCode, ApiError> {
    let (stored, _) = authorized_load::<R>(&state, &caller, Action::Delete, &id).await?;
    let version = delete_version(&params, &stored)?;
    R::before_delete(&state, &stored).await?;
    commit(&state, R::deleted(id), &caller.actor(), version).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// An update's example: the version read and only the fields that change.
fn update_example() -> Value {
    json!({"version": 42, "enabled": false})
}

/// Registers a resource's endpoints.
pub struct Declare {
    api: Api,
    resource: &'static Resource,
}

/// How one endpoint of a resource is registered.
struct Shape {
    method: &'static str,
    path: String,
    action: Action,
    body: Option<fn() -> Value>,
    creates: bool,
}

impl Declare {
    #[must_use]
    pub fn new(api: Api, resource: &'static Resource) -> Self {
        Self { api, resource }
    }

    fn add<H: Handler<T, AppState>, T: 'static>(
        self,
        shape: Shape,
        summary: &'static str,
        handler: H,
    ) -> Self {
        let resource = self.resource;
        let mut pending = self
            .api
            .at(shape.method, shape.path, resource.tag)
            .summary(summary)
            .of(resource)
            .allow(shape.action, resource.kind);
        if let Some(example) = shape.body {
            pending = pending.body(Some(example));
        }
        if shape.creates {
            pending = pending.creates();
        }
        Self {
            api: pending.to(handler),
            resource,
        }
    }

    fn shape(&self, method: &'static str, item: bool, action: Action) -> Shape {
        Shape {
            method,
            path: if item {
                self.resource.item()
            } else {
                self.resource.path.to_owned()
            },
            action,
            body: None,
            creates: false,
        }
    }

    /// `GET {path}`.
    #[must_use]
    pub fn list<H: Handler<T, AppState>, T: 'static>(
        self,
        summary: &'static str,
        handler: H,
    ) -> Self {
        let shape = self.shape("GET", false, Action::Read);
        self.add(shape, summary, handler)
    }

    /// `POST {path}`, answering 201.
    #[must_use]
    pub fn create<H: Handler<T, AppState>, T: 'static>(
        self,
        summary: &'static str,
        handler: H,
    ) -> Self {
        let shape = Shape {
            body: Some(self.resource.example),
            creates: true,
            ..self.shape("POST", false, Action::Create)
        };
        self.add(shape, summary, handler)
    }

    /// `GET {path}/{id}`.
    #[must_use]
    pub fn get<H: Handler<T, AppState>, T: 'static>(
        self,
        summary: &'static str,
        handler: H,
    ) -> Self {
        let shape = self.shape("GET", true, Action::Read);
        self.add(shape, summary, handler)
    }

    /// `PATCH {path}/{id}`.
    #[must_use]
    pub fn update<H: Handler<T, AppState>, T: 'static>(
        self,
        summary: &'static str,
        handler: H,
    ) -> Self {
        let shape = Shape {
            body: Some(update_example),
            ..self.shape("PATCH", true, Action::Update)
        };
        self.add(shape, summary, handler)
    }

    /// `PUT {path}/{id}`: create or update, with an example body.
    #[must_use]
    pub fn put<H: Handler<T, AppState>, T: 'static>(
        self,
        summary: &'static str,
        handler: H,
    ) -> Self {
        let shape = Shape {
            body: Some(self.resource.example),
            ..self.shape("PUT", true, Action::Update)
        };
        self.add(shape, summary, handler)
    }

    /// `DELETE {path}/{id}`.
    #[must_use]
    pub fn delete<H: Handler<T, AppState>, T: 'static>(
        self,
        summary: &'static str,
        handler: H,
    ) -> Self {
        let shape = self.shape("DELETE", true, Action::Delete);
        self.add(shape, summary, handler)
    }

    /// `POST {path}/{id}/{name}`: an action on one entity, with a JSON body.
    #[must_use]
    pub fn action<H: Handler<T, AppState>, T: 'static>(
        self,
        name: &'static str,
        action: Action,
        summary: &'static str,
        example: fn() -> Value,
        handler: H,
    ) -> Self {
        let shape = Shape {
            path: format!("{}/{name}", self.resource.item()),
            body: Some(example),
            ..self.shape("POST", true, action)
        };
        self.add(shape, summary, handler)
    }

    /// `GET {other path}` reading this resource (a view of it elsewhere).
    #[must_use]
    pub fn read_at<H: Handler<T, AppState>, T: 'static>(
        self,
        path: &'static str,
        summary: &'static str,
        handler: H,
    ) -> Self {
        let shape = Shape {
            path: path.to_owned(),
            ..self.shape("GET", false, Action::Read)
        };
        self.add(shape, summary, handler)
    }

    /// The API with the resource's endpoints.
    #[must_use]
    pub fn done(self) -> Api {
        self.api
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_declared_secret_field_is_one_render_removes() {
        for resource in crate::resources::RESOURCES {
            for field in resource.secret_fields {
                assert!(
                    shared::secret::SECRET_FIELD_NAMES.contains(field),
                    "{}: secret field {field} is not in SECRET_FIELD_NAMES, so it would be shown",
                    resource.path
                );
            }
        }
    }
}
