//! `/api/v1/teams`: teams, their members, budget, allowed models and per-minute limits.
//! Operators and admins manage every field; a team admin (a member whose role in the team is
//! `admin`) changes only the team's members; every member reads the teams they belong to.
//! A team is shown with its members' usernames and its spend in the current budget period
//! (the sum of the spend of the tokens charged to it).

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use shared::config::{
    BudgetPeriod, ConfigEntity, ConfigEvent, Deleted, Team, TeamMember, TeamRole,
};

use super::crud::{self, ConfigResource, Ctx, Declare, ReadResource, Resource};
use super::tokens::{BudgetInput, budget_from_input, budget_input, check_models, check_rates};
use super::{
    check_body_id, commit, list_query, load, merge, page_json, read_back, render, take_version,
    validate,
};
use crate::auth::Caller;
use crate::authz::{self, require};
use crate::db::{self, Stored};
use crate::error::ApiError;
use crate::extract::{Body, parse};
use crate::permission::{Action, Kind};
use crate::routes::Api;
use crate::state::AppState;

const ENTITY: &str = "team";
/// The most members a team has.
pub const MAX_MEMBERS: usize = 1000;

/// A member as given: by user id or by username.
#[derive(Debug, Clone, Deserialize, Serialize, ts_rs::TS)]
#[serde(deny_unknown_fields)]
#[ts(optional_fields)]
pub struct TeamMemberInput {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// Instead of `user_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default = "member")]
    #[ts(as = "Option<TeamRole>", optional)]
    pub role: TeamRole,
}

fn member() -> TeamRole {
    TeamRole::Member
}

#[derive(Debug, Clone, Deserialize, Serialize, ts_rs::TS)]
#[serde(deny_unknown_fields)]
#[ts(optional_fields)]
pub struct TeamInput {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub name: String,
    #[serde(default)]
    #[ts(as = "Option<Vec<TeamMemberInput>>", optional)]
    pub members: Vec<TeamMemberInput>,
    /// Glob patterns over model aliases; empty allows all.
    #[serde(default)]
    #[ts(as = "Option<Vec<String>>", optional)]
    pub allowed_models: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<BudgetInput>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpm: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tpm: Option<u32>,
}

/// A stored team as input.
#[must_use]
pub fn team_input(team: &Team) -> TeamInput {
    TeamInput {
        id: Some(team.id.clone()),
        name: team.name.clone(),
        members: team
            .members
            .iter()
            .map(|member| TeamMemberInput {
                user_id: Some(member.user_id.clone()),
                username: None,
                role: member.role,
            })
            .collect(),
        allowed_models: team.allowed_models.clone(),
        budget: team.budget.as_ref().map(budget_input),
        rpm: team.rpm,
        tpm: team.tpm,
    }
}

/// The team's full state from an input: members resolved to user ids (each must exist, once).
///
/// # Errors
/// 400 naming the first invalid field.
pub async fn build(state: &AppState, input: TeamInput, id: String) -> Result<Team, ApiError> {
    validate::name("name", &input.name)?;
    if input.members.len() > MAX_MEMBERS {
        return Err(ApiError::invalid(
            "members",
            format!("a team has at most {MAX_MEMBERS} members"),
        ));
    }
    let mut members: Vec<TeamMember> = Vec::with_capacity(input.members.len());
    for (index, given) in input.members.into_iter().enumerate() {
        let field = format!("members[{index}]");
        let stored = match (&given.user_id, &given.username) {
            (Some(user_id), None) => {
                validate::id(&format!("{field}.user_id"), user_id)?;
                db::get(&state.pool, ConfigEntity::User.as_str(), user_id).await?
            }
            (None, Some(username)) => {
                validate::name(&format!("{field}.username"), username)?;
                db::find_by_field(
                    &state.pool,
                    ConfigEntity::User.as_str(),
                    "username",
                    username,
                )
                .await?
            }
            _ => {
                return Err(ApiError::invalid(
                    field,
                    "a member is named by user_id or by username (one of them)",
                ));
            }
        };
        let user_id = stored
            .map(|stored| stored.id)
            .ok_or_else(|| ApiError::invalid(field.clone(), "no user has this id or username"))?;
        if members.iter().any(|member| member.user_id == user_id) {
            return Err(ApiError::invalid(field, "this user is already a member"));
        }
        members.push(TeamMember {
            user_id,
            role: given.role,
        });
    }
    check_models("allowed_models", &input.allowed_models)?;
    check_rates(input.rpm, input.tpm)?;
    Ok(Team {
        id,
        name: input.name.trim().to_owned(),
        members,
        allowed_models: input.allowed_models,
        budget: budget_from_input(input.budget)?,
        rpm: input.rpm,
        tpm: input.tpm,
    })
}

/// Teams as the API shows them: members with their usernames, the budget as a decimal, and the
/// spend of the current period (the budget's, or the month's when there is no budget).
async fn render_teams(state: &AppState, rows: &[Stored]) -> Result<Vec<Value>, ApiError> {
    let now = time::OffsetDateTime::now_utc();
    let teams: Vec<Option<Team>> = rows
        .iter()
        .map(|row| serde_json::from_value(row.data.clone()).ok())
        .collect();
    let period = |team: &Team| {
        team.budget
            .as_ref()
            .map_or(BudgetPeriod::Monthly, |budget| budget.period)
    };
    let starts: Vec<(String, Option<time::Date>)> = teams
        .iter()
        .flatten()
        .map(|team| (team.id.clone(), period(team).start(now)))
        .collect();
    let spend = db::team_spend(&state.pool, &starts).await?;
    let member_ids: Vec<String> = teams
        .iter()
        .flatten()
        .flat_map(|team| team.members.iter().map(|member| member.user_id.clone()))
        .collect();
    let usernames = db::usernames(&state.pool, &member_ids).await?;
    Ok(rows
        .iter()
        .zip(&teams)
        .map(|(row, team)| {
            let mut value = render(row);
            let Some(team) = team else { return value };
            if let Some(budget) = &team.budget {
                value["budget"]["amount"] = json!(budget.amount.to_decimal());
            }
            value["members"] = team
                .members
                .iter()
                .map(|member| {
                    json!({"user_id": member.user_id, "role": member.role.as_str(),
                        "username": usernames.get(&member.user_id)})
                })
                .collect();
            let (currency, nanos) = spend.get(&team.id).cloned().unwrap_or_default();
            let currency = if currency.is_empty() {
                team.budget
                    .as_ref()
                    .map_or_else(|| "USD".to_owned(), |budget| budget.currency.clone())
            } else {
                currency
            };
            let period = period(team);
            value["spend"] = json!({
                "amount": shared::money::Nanos(nanos).to_decimal(),
                "currency": currency,
                "period": period.as_str(),
                "since": period.start(now).map(|day| day.to_string()),
            });
            value
        })
        .collect())
}

/// Teams, declared.
pub struct Teams;

impl ReadResource for Teams {
    const RESOURCE: Resource = Resource {
        kind: Kind::Team,
        entity: ConfigEntity::Team,
        path: "/api/v1/teams",
        tag: "teams",
        filters: &[],
        owner_field: None,
        team_field: None,
        secret_fields: &[],
        operator_only: &[],
        example,
    };

    async fn render(state: &AppState, rows: &[Stored]) -> Result<Vec<Value>, ApiError> {
        render_teams(state, rows).await
    }
}

impl ConfigResource for Teams {
    type Input = TeamInput;
    type Entity = Team;

    fn requested_id(input: &TeamInput) -> Option<String> {
        input.id.clone()
    }

    fn as_input(current: &Team) -> Result<Value, ApiError> {
        Ok(serde_json::to_value(team_input(current))?)
    }

    async fn build(
        ctx: &Ctx<'_>,
        input: TeamInput,
        id: String,
        _current: Option<Team>,
    ) -> Result<Team, ApiError> {
        build(ctx.state, input, id).await
    }

    fn put(entity: Team) -> ConfigEvent {
        ConfigEvent::TeamPut(entity)
    }

    fn deleted(id: String) -> ConfigEvent {
        ConfigEvent::TeamDeleted(Deleted { id })
    }

    async fn before_delete(state: &AppState, stored: &Stored) -> Result<(), ApiError> {
        let charged = db::tokens_charged_to(&state.pool, &stored.id).await?;
        if charged > 0 {
            return Err(ApiError::Conflict {
                code: "team_in_use",
                message: format!(
                    "{charged} token(s) are charged to this team; move or delete them first"
                ),
                field: None,
                current_version: None,
            });
        }
        Ok(())
    }
}

/// Whether the caller may `action` every team (operators, admins; viewers read).
fn on_every_team(state: &AppState, caller: &Caller, action: Action) -> bool {
    state.authorizer.is_allowed(
        &caller.principal(),
        action,
        &authz::Resource::kind(Kind::Team),
    )
}

fn team_resource(kind: Kind, team: &str) -> authz::Resource {
    authz::Resource::kind(kind).of_team(Some(team))
}

/// `GET /api/v1/teams`: every team, or (for a caller who may not read every team) the teams
/// the caller belongs to.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let query = list_query(params, Teams::RESOURCE.filters)?;
    if on_every_team(&state, &caller, Action::Read) {
        let (rows, total) = db::list(&state.pool, ENTITY, &query).await?;
        return Ok(Json(page_json(
            render_teams(&state, &rows).await?,
            total,
            &query,
        )));
    }
    let principal = caller.principal();
    let mut rows = Vec::new();
    for (team_id, _, _) in &caller.teams {
        if state.authorizer.is_allowed(
            &principal,
            Action::Read,
            &team_resource(Kind::Team, team_id),
        ) && let Some(stored) = db::get(&state.pool, ENTITY, team_id).await?
        {
            rows.push(stored);
        }
    }
    let total = i64::try_from(rows.len()).unwrap_or(i64::MAX);
    Ok(Json(page_json(
        render_teams(&state, &rows).await?,
        total,
        &query,
    )))
}

/// `GET /api/v1/teams/{id}`.
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    require(
        state.authorizer.as_ref(),
        &caller.principal(),
        Action::Read,
        &team_resource(Kind::Team, &id),
    )?;
    let stored = load(&state, ENTITY, &id).await?;
    Ok(Json(crud::render_one::<Teams>(&state, stored).await?))
}

/// `PATCH /api/v1/teams/{id}`: every field for operators and admins; only `members` for the
/// team's admins.
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Body(mut body): Body<Value>,
) -> Result<Json<Value>, ApiError> {
    let everything = on_every_team(&state, &caller, Action::Update);
    if !everything {
        require(
            state.authorizer.as_ref(),
            &caller.principal(),
            Action::Update,
            &team_resource(Kind::TeamMembers, &id),
        )?;
    }
    let stored = load(&state, ENTITY, &id).await?;
    let version = take_version(&mut body)?;
    check_body_id(&mut body, &id, "id")?;
    let current: Team = serde_json::from_value(stored.data)?;
    let input: TeamInput = parse(merge(Teams::as_input(&current)?, body))?;
    let team = build(&state, input, id.clone()).await?;
    if !everything {
        let only_members = Team {
            members: team.members.clone(),
            ..current.clone()
        };
        if team != only_members {
            return Err(ApiError::Forbidden {
                code: "forbidden",
                message: "a team admin changes only the team's members; its name, budget, \
                          allowed models and limits are set by an operator"
                    .into(),
            });
        }
    }
    let sequence = commit(&state, ConfigEvent::TeamPut(team), &caller.actor(), version).await?;
    let stored = read_back(&state, ENTITY, &id, sequence).await?;
    Ok(Json(crud::render_one::<Teams>(&state, stored).await?))
}

fn example() -> Value {
    serde_json::to_value(TeamInput {
        id: Some("platform".into()),
        name: "Platform".into(),
        members: vec![TeamMemberInput {
            user_id: None,
            username: Some("ann".into()),
            role: TeamRole::Admin,
        }],
        allowed_models: vec!["gpt-*".into()],
        budget: Some(BudgetInput {
            amount: json!("250"),
            currency: "USD".into(),
            period: BudgetPeriod::Monthly,
        }),
        rpm: Some(600),
        tpm: None,
    })
    .unwrap_or_default()
}

/// The endpoints of teams.
pub fn declare(api: Api) -> Api {
    Declare::new(api, &Teams::RESOURCE)
        .list("List teams (members: their own teams)", list)
        .create("Create a team", crud::create::<Teams>)
        .get("Get a team with its spend this period", get)
        .update("Update a team (its admins: only its members)", update)
        .delete(
            "Delete a team no token is charged to",
            crud::delete::<Teams>,
        )
        .done()
}
