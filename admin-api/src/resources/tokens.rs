//! `/api/v1/tokens`: user tokens (AxonGate API keys). The secret is generated here, shown
//! exactly once (at creation or rotation, recorded as a `token.revealed` audit event), and only
//! its keyed hash enters the event. Members manage their own tokens only, and may only tighten
//! the limits an operator set (see [`super::token_limits`]).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use shared::audit::{AuditEvent, TokenRevealed};
use shared::config::{Budget, BudgetPeriod, ConfigEntity, ConfigEvent, Deleted, UserToken};
use shared::token::PlainToken;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::crud::{self, ConfigResource, Ctx, Declare, ReadResource, Resource};
use super::token_limits::{Limits, TokenDefaults, require_only_tightened};
use super::{commit, new_id, read_back, render, take_version, validate};
use crate::auth::Caller;
use crate::authz::{self, require};
use crate::db::{self, Stored};
use crate::error::ApiError;
use crate::extract::{Body, parse};
use crate::permission::{Action, Kind};
use crate::routes::Api;
use crate::state::AppState;

const ENTITY: &str = "token";

#[derive(Debug, Clone, Deserialize, Serialize, ts_rs::TS)]
#[serde(deny_unknown_fields)]
#[ts(optional_fields)]
pub struct BudgetInput {
    #[ts(type = "string | number")]
    pub amount: Value,
    pub currency: String,
    pub period: BudgetPeriod,
}

#[derive(Debug, Clone, Deserialize, Serialize, ts_rs::TS)]
#[serde(deny_unknown_fields)]
#[ts(optional_fields)]
pub struct TokenInput {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub name: String,
    /// Defaults to the caller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_user_id: Option<String>,
    #[serde(default)]
    #[ts(as = "Option<Vec<String>>", optional)]
    pub allowed_models: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpm: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tpm: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<BudgetInput>,
    /// RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    #[serde(default = "super::providers::enabled_by_default")]
    #[ts(as = "Option<bool>", optional)]
    pub enabled: bool,
    /// The team the token is charged to; its owner must be a member.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team_id: Option<String>,
}

/// A stored budget as input.
#[must_use]
pub fn budget_input(budget: &Budget) -> BudgetInput {
    BudgetInput {
        amount: json!(budget.amount.to_decimal()),
        currency: budget.currency.clone(),
        period: budget.period,
    }
}

/// A budget from its input, validated.
///
/// # Errors
/// 400 naming `budget.currency` or `budget.amount`.
pub fn budget_from_input(input: Option<BudgetInput>) -> Result<Option<Budget>, ApiError> {
    let Some(budget) = input else {
        return Ok(None);
    };
    validate::currency("budget.currency", &budget.currency)?;
    Ok(Some(Budget {
        amount: validate::money("budget.amount", &budget.amount)?,
        currency: budget.currency,
        period: budget.period,
    }))
}

/// Checks a list of allowed-model patterns.
///
/// # Errors
/// 400 naming the first bad pattern.
pub fn check_models(field: &str, patterns: &[String]) -> Result<(), ApiError> {
    if patterns.len() > 200 {
        return Err(ApiError::invalid(field, "at most 200 patterns"));
    }
    for (index, pattern) in patterns.iter().enumerate() {
        validate::pattern(&format!("{field}[{index}]"), pattern)?;
    }
    Ok(())
}

/// Checks per-minute limits: each absent or positive.
///
/// # Errors
/// 400 naming `rpm` or `tpm`.
pub fn check_rates(rpm: Option<u32>, tpm: Option<u32>) -> Result<(), ApiError> {
    for (field, value) in [("rpm", rpm), ("tpm", tpm)] {
        if value == Some(0) {
            return Err(ApiError::invalid(
                field,
                format!("{field} must be positive (omit it for no limit)"),
            ));
        }
    }
    Ok(())
}

/// A stored token as input (no hash).
#[must_use]
pub fn token_input(token: &UserToken) -> TokenInput {
    TokenInput {
        id: Some(token.id.clone()),
        name: token.name.clone(),
        owner_user_id: Some(token.owner_user_id.clone()),
        allowed_models: token.allowed_models.clone(),
        rpm: token.rpm,
        tpm: token.tpm,
        budget: token.budget.as_ref().map(budget_input),
        expires_at: token.expires_at.and_then(|at| at.format(&Rfc3339).ok()),
        enabled: token.enabled,
        team_id: token.team_id.clone(),
    }
}

/// The token's fields from an input; the hash and last four come from the caller.
///
/// # Errors
/// 400 naming the first invalid field.
pub async fn build(
    state: &AppState,
    input: TokenInput,
    id: String,
    owner_user_id: String,
    hash: shared::token::TokenHash,
    last_four: String,
) -> Result<UserToken, ApiError> {
    validate::name("name", &input.name)?;
    validate::id("owner_user_id", &owner_user_id)?;
    if db::get(&state.pool, ConfigEntity::User.as_str(), &owner_user_id)
        .await?
        .is_none()
    {
        return Err(ApiError::invalid("owner_user_id", "no user has this id"));
    }
    check_models("allowed_models", &input.allowed_models)?;
    check_rates(input.rpm, input.tpm)?;
    let budget = budget_from_input(input.budget)?;
    if let Some(team_id) = &input.team_id {
        validate::id("team_id", team_id)?;
        let team: shared::config::Team =
            match db::get(&state.pool, ConfigEntity::Team.as_str(), team_id).await? {
                Some(stored) => serde_json::from_value(stored.data)?,
                None => return Err(ApiError::invalid("team_id", "no team has this id")),
            };
        if team.role_of(&owner_user_id).is_none() {
            return Err(ApiError::invalid(
                "team_id",
                "the token's owner is not a member of this team",
            ));
        }
    }
    let expires_at =
        match input.expires_at.as_deref() {
            Some(text) => Some(OffsetDateTime::parse(text, &Rfc3339).map_err(|_| {
                ApiError::invalid("expires_at", "expires_at must be an RFC 3339 time")
            })?),
            None => None,
        };
    Ok(UserToken {
        id,
        name: input.name.trim().to_owned(),
        owner_user_id,
        hash,
        last_four,
        allowed_models: input.allowed_models,
        rpm: input.rpm,
        tpm: input.tpm,
        budget,
        expires_at,
        enabled: input.enabled,
        team_id: input.team_id,
    })
}

/// A token as the API shows it: no hash, the budget as a decimal string.
#[must_use]
pub fn render_token(stored: &Stored) -> Value {
    let mut value = render(stored);
    if let Ok(token) = serde_json::from_value::<UserToken>(stored.data.clone())
        && let Some(budget) = &token.budget
    {
        value["budget"]["amount"] = json!(budget.amount.to_decimal());
    }
    value
}

/// Renders tokens with their last use and today's requests and spend.
async fn with_usage(state: &AppState, rows: &[Stored]) -> Result<Vec<Value>, ApiError> {
    let ids: Vec<String> = rows.iter().map(|row| row.id.clone()).collect();
    let usage = db::token_usage(&state.pool, &ids).await?;
    Ok(rows
        .iter()
        .map(|row| {
            let mut value = render_token(row);
            value["usage"] = usage.get(&row.id).cloned().unwrap_or_else(|| {
                json!({"last_used_at": null, "requests_today": 0, "spend_today": {"amount": "0", "currency": "USD"}})
            });
            value
        })
        .collect())
}

async fn reveal(
    state: &AppState,
    caller: &Caller,
    token_id: &str,
    moment: &str,
) -> Result<(), ApiError> {
    let event = AuditEvent::TokenRevealed(TokenRevealed {
        token_id: token_id.to_owned(),
        moment: moment.to_owned(),
    });
    state
        .bus
        .publish_audit(event, Some(&caller.actor()), &state.node_id)
        .await?;
    Ok(())
}

/// Whether the caller may set any token's limits (`update` on every owner's tokens).
fn sets_limits(state: &AppState, caller: &Caller) -> bool {
    state.authorizer.is_allowed(
        &caller.principal(),
        Action::Update,
        &authz::Resource::owned(Kind::Token, authz::ANY_OWNER),
    )
}

pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Body(mut body): Body<Value>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let owner = body
        .get("owner_user_id")
        .and_then(Value::as_str)
        .unwrap_or(&caller.user_id)
        .to_owned();
    let team = body.get("team_id").and_then(Value::as_str);
    require(
        state.authorizer.as_ref(),
        &caller.principal(),
        Action::Create,
        &authz::Resource::owned(Kind::Token, &owner).of_team(team),
    )?;
    // Someone who may not set limits gets the operator's defaults, and may only tighten them.
    let baseline = if sets_limits(&state, &caller) {
        None
    } else {
        let defaults = TokenDefaults::load(&state).await?;
        defaults.fill(&mut body)?;
        Some(defaults.limits()?)
    };
    let input: TokenInput = parse(body)?;
    let id = new_id(input.id.clone())?;
    let secret = PlainToken::generate();
    let token = build(
        &state,
        input,
        id.clone(),
        owner,
        state.token_hasher.hash(&secret),
        secret.last_four(),
    )
    .await?;
    if let Some(baseline) = &baseline {
        require_only_tightened(baseline, &Limits::of(&token))?;
    }
    let sequence = commit(&state, ConfigEvent::TokenPut(token), &caller.actor(), 0).await?;
    let stored = read_back(&state, ENTITY, &id, sequence).await?;
    reveal(&state, &caller, &id, "created").await?;
    let mut value = render_token(&stored);
    value["secret"] = json!(secret.expose());
    Ok((StatusCode::CREATED, Json(value)))
}

/// `POST /api/v1/tokens/{id}/rotate` with `{"version": n}`: a new secret, shown once.
pub async fn rotate(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Body(mut body): Body<Value>,
) -> Result<Json<Value>, ApiError> {
    let (stored, _) = crud::authorized_load::<Tokens>(&state, &caller, Action::Rotate, &id).await?;
    let version = take_version(&mut body)?;
    let mut token: UserToken = serde_json::from_value(stored.data)?;
    let secret = PlainToken::generate();
    token.hash = state.token_hasher.hash(&secret);
    token.last_four = secret.last_four();
    let sequence = commit(
        &state,
        ConfigEvent::TokenPut(token),
        &caller.actor(),
        version,
    )
    .await?;
    let stored = read_back(&state, ENTITY, &id, sequence).await?;
    reveal(&state, &caller, &id, "rotated").await?;
    let mut value = render_token(&stored);
    value["secret"] = json!(secret.expose());
    Ok(Json(value))
}

/// Tokens, declared. A member owns tokens: they see and change only their own, and only
/// tighten the operator-owned limits.
pub struct Tokens;

impl ReadResource for Tokens {
    const RESOURCE: Resource = Resource {
        kind: Kind::Token,
        entity: ConfigEntity::Token,
        path: "/api/v1/tokens",
        tag: "tokens",
        filters: &["owner_user_id", "enabled", "team_id"],
        owner_field: Some("owner_user_id"),
        team_field: Some("team_id"),
        secret_fields: &[],
        operator_only: OPERATOR_ONLY,
        example,
    };

    async fn render(state: &AppState, rows: &[Stored]) -> Result<Vec<Value>, ApiError> {
        with_usage(state, rows).await
    }
}

/// The limits only a caller with `update` on every owner's tokens may widen (the fields of
/// [`Limits`]), and `enabled`, which such a caller alone turns back on.
pub const OPERATOR_ONLY: &[&str] = &[
    "rpm",
    "tpm",
    "budget",
    "allowed_models",
    "expires_at",
    "enabled",
];

impl ConfigResource for Tokens {
    type Input = TokenInput;
    type Entity = UserToken;

    fn requested_id(input: &TokenInput) -> Option<String> {
        input.id.clone()
    }

    fn as_input(current: &UserToken) -> Result<Value, ApiError> {
        Ok(serde_json::to_value(token_input(current))?)
    }

    /// An update (a create makes a secret, see [`create`]).
    async fn build(
        ctx: &Ctx<'_>,
        input: TokenInput,
        id: String,
        current: Option<UserToken>,
    ) -> Result<UserToken, ApiError> {
        let existing = current.ok_or_else(|| {
            ApiError::internal("a token is created with its secret by tokens::create")
        })?;
        let owner = input
            .owner_user_id
            .clone()
            .unwrap_or_else(|| existing.owner_user_id.clone());
        // The token's new owner and team, as well as its current ones (checked on loading it).
        require(
            ctx.state.authorizer.as_ref(),
            &ctx.caller.principal(),
            Action::Update,
            &authz::Resource::owned(Kind::Token, &owner).of_team(input.team_id.as_deref()),
        )?;
        let before = Limits::of(&existing);
        let was_enabled = existing.enabled;
        let token = build(
            ctx.state,
            input,
            id,
            owner,
            existing.hash,
            existing.last_four,
        )
        .await?;
        if !ctx.on_every_owner {
            require_only_tightened(&before, &Limits::of(&token))?;
            if token.enabled && !was_enabled {
                return Err(ApiError::Forbidden {
                    code: "limits_are_operators",
                    message: "enabled: a disabled token is enabled again by an operator".into(),
                });
            }
        }
        Ok(token)
    }

    fn put(entity: UserToken) -> ConfigEvent {
        ConfigEvent::TokenPut(entity)
    }

    fn deleted(id: String) -> ConfigEvent {
        ConfigEvent::TokenDeleted(Deleted { id })
    }
}

fn example() -> Value {
    serde_json::to_value(TokenInput {
        id: None,
        name: "CI pipeline".into(),
        owner_user_id: None,
        allowed_models: vec!["gpt-*".into()],
        rpm: Some(120),
        tpm: None,
        budget: None,
        expires_at: Some("2027-01-01T00:00:00Z".into()),
        enabled: true,
        team_id: None,
    })
    .unwrap_or_default()
}

/// The endpoints of tokens.
pub fn declare(api: Api) -> Api {
    Declare::new(api, &Tokens::RESOURCE)
        .list(
            "List user tokens (members: their own)",
            crud::list::<Tokens>,
        )
        .create(
            "Create a user token; the secret is in this response only",
            create,
        )
        .get("Get a user token (never its secret)", crud::get::<Tokens>)
        .update("Update a user token", crud::update::<Tokens>)
        .delete("Delete a user token", crud::delete::<Tokens>)
        .action(
            "rotate",
            Action::Rotate,
            "Replace the token's secret; the new one is in this response only",
            || json!({"version": 42}),
            rotate,
        )
        .done()
}
