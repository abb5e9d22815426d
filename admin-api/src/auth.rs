//! Login, sessions and passwords.
//!
//! A session is a random opaque bearer token (`axs-…`); only its SHA-256 hash is stored, in the
//! admin-only `admin_sessions` table, with an expiry. Logout and password changes revoke rows
//! there, so a revoked token stops working at once on every admin-api process. Failed logins
//! are bounded, throttled across processes and audited as [`crate::login_guard`] describes.

use std::net::SocketAddr;
use std::sync::OnceLock;

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use rand::RngCore as _;
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use shared::Actor;
use shared::audit::{AuditEvent, LoginFailed, LoginSucceeded, SessionEnded};
use shared::config::{ConfigEntity, ConfigEvent, Role, RoleBinding, User};
use time::OffsetDateTime;

use crate::authz::{Principal, Resource, require};
use crate::db;
use crate::error::ApiError;
use crate::extract::Body;
use crate::permission::{Action, Kind};
use crate::read_your_writes::Projection;
use crate::state::AppState;

/// The fixed id of the first admin account: its subject `axongate.config.user.admin` is
/// written with expected-last-subject-sequence 0, so only one process can ever create it.
pub const FIRST_ADMIN_ID: &str = "admin";

pub const MIN_PASSWORD_LENGTH: usize = 8;
const MAX_PASSWORD_LENGTH: usize = 1024;

/// Hashes a password with argon2id (default parameters, random salt) into a PHC string.
///
/// # Errors
/// Only if argon2 refuses the input (it never should for a bounded password).
pub fn hash_password(password: &str) -> Result<String, ApiError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|error| ApiError::internal(format!("argon2: {error}")))
}

/// Whether `password` matches the PHC string `hash`.
#[must_use]
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

async fn hash_blocking(password: String) -> Result<String, ApiError> {
    tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(ApiError::internal)?
}

async fn verify_blocking(password: String, hash: String) -> bool {
    tokio::task::spawn_blocking(move || verify_password(&password, &hash))
        .await
        .unwrap_or(false)
}

/// A hash to verify against when the username does not exist, so the answer takes as long
/// as for a wrong password and does not reveal which usernames exist.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| hash_password("not a password anyone has").unwrap_or_default())
}

/// Checks the rules every new password must meet.
///
/// # Errors
/// 400 naming `field`.
pub fn check_new_password(field: &str, password: &str) -> Result<(), ApiError> {
    let length = password.chars().count();
    if length < MIN_PASSWORD_LENGTH || password.len() > MAX_PASSWORD_LENGTH {
        return Err(ApiError::invalid(
            field,
            format!(
                "a password must have {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters"
            ),
        ));
    }
    Ok(())
}

fn hash_session_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn new_session_token() -> String {
    let mut bytes = [0_u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("axs-{}", hex::encode(bytes))
}

// ---- the caller -----------------------------------------------------------------------------

/// The signed-in user of a request, from a live session.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user_id: String,
    pub username: String,
    pub display_name: String,
    pub role: Role,
    pub must_change_password: bool,
    pub session_expires_at: OffsetDateTime,
    token_hash: String,
    /// The user's version, for the password change.
    user_version: u64,
    user: User,
    /// The teams the user belongs to: (id, name, role).
    pub teams: Vec<(String, String, shared::config::TeamRole)>,
}

impl Caller {
    #[must_use]
    pub fn principal(&self) -> Principal {
        Principal::new(&self.user_id, self.role)
            .in_teams(self.teams.iter().map(|(id, _, role)| (id.as_str(), *role)))
    }

    /// The teams the caller is an admin of.
    #[must_use]
    pub fn admin_teams(&self) -> Vec<String> {
        self.teams
            .iter()
            .filter(|(_, _, role)| *role == shared::config::TeamRole::Admin)
            .map(|(id, _, _)| id.clone())
            .collect()
    }

    #[must_use]
    pub fn actor(&self) -> Actor {
        Actor {
            user_id: self.user_id.clone(),
            username: self.username.clone(),
        }
    }
}

/// Paths a session that must change its password may still use.
const ALLOWED_BEFORE_PASSWORD_CHANGE: &[&str] = &[
    "/api/v1/auth/me",
    "/api/v1/auth/password",
    "/api/v1/auth/logout",
];

fn unauthenticated(message: &str) -> ApiError {
    ApiError::Unauthorized {
        code: "unauthenticated",
        message: message.to_owned(),
    }
}

/// The role bound to a user; a user without a binding is a `member`.
///
/// # Errors
/// On a database error.
pub async fn role_of(state: &AppState, user_id: &str) -> Result<Role, ApiError> {
    let binding = db::get(&state.pool, ConfigEntity::RoleBinding.as_str(), user_id).await?;
    Ok(binding
        .and_then(|stored| serde_json::from_value::<RoleBinding>(stored.data).ok())
        .map_or(Role::Member, |binding| binding.role))
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or_else(|| {
                unauthenticated("sign in and send the session as `Authorization: Bearer …`")
            })?;
        let token_hash = hash_session_token(token);
        let session = db::live_session(&state.pool, &token_hash)
            .await?
            .ok_or_else(|| unauthenticated("the session is unknown, expired or signed out"))?;
        let stored = db::get(&state.pool, ConfigEntity::User.as_str(), &session.user_id)
            .await?
            .ok_or_else(|| unauthenticated("the session's user no longer exists"))?;
        let user: User = serde_json::from_value(stored.data)?;
        if !user.enabled {
            return Err(unauthenticated("the account is disabled"));
        }
        let role = role_of(state, &user.id).await?;
        let teams = db::teams_of(&state.pool, &user.id).await?;
        let caller = Self {
            user_id: user.id.clone(),
            username: user.username.clone(),
            display_name: user.display_name.clone(),
            role,
            must_change_password: user.must_change_password,
            session_expires_at: session.expires_at,
            token_hash,
            user_version: stored.version,
            user,
            teams,
        };
        if caller.must_change_password
            && !ALLOWED_BEFORE_PASSWORD_CHANGE.contains(&parts.uri.path())
        {
            return Err(ApiError::Forbidden {
                code: "password_change_required",
                message: "change the password first (POST /api/v1/auth/password)".into(),
            });
        }
        Ok(caller)
    }
}

/// The client's address, when the server knows it.
pub struct ClientIp(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|info| info.0.ip().to_string()),
        ))
    }
}

// ---- handlers -------------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginRequest {
    username: String,
    password: String,
}

fn rfc3339(at: OffsetDateTime) -> Option<String> {
    at.format(&time::format_description::well_known::Rfc3339)
        .ok()
}

fn me_json(caller: &Caller) -> Value {
    json!({
        "id": caller.user_id,
        "username": caller.username,
        "display_name": caller.display_name,
        "role": caller.role.as_str(),
        "must_change_password": caller.must_change_password,
        "session_expires_at": rfc3339(caller.session_expires_at),
        "teams": caller.teams.iter().map(|(id, name, role)| json!({"id": id, "name": name, "role": role.as_str()})).collect::<Vec<_>>(),
        // Signs in with single sign-on: no password of its own unless an admin set one.
        "sso": caller.user.sso_subject.is_some(),
    })
}

/// `POST /api/v1/auth/login`.
pub async fn login(
    State(state): State<AppState>,
    ClientIp(client_ip): ClientIp,
    Body(body): Body<Value>,
) -> Result<Response, ApiError> {
    use crate::login_guard::{MAX_PASSWORD_BYTES, MAX_USERNAME_BYTES};
    let request: LoginRequest = crate::extract::parse(body)?;
    let username = request.username.trim().to_owned();
    // Bounded before anything looks at it: never looked up, logged or recorded.
    if username.len() > MAX_USERNAME_BYTES {
        return Err(ApiError::invalid(
            "username",
            format!("a username has at most {MAX_USERNAME_BYTES} bytes"),
        ));
    }
    if request.password.len() > MAX_PASSWORD_BYTES {
        return Err(ApiError::invalid(
            "password",
            format!("a password has at most {MAX_PASSWORD_BYTES} bytes"),
        ));
    }
    let guard = &state.login_guard;
    let stored = if username.chars().any(char::is_control) {
        None // no user has such a name, and Postgres text cannot hold NUL
    } else {
        db::find_by_field(
            &state.pool,
            ConfigEntity::User.as_str(),
            "username",
            &username,
        )
        .await?
    };
    let user: Option<User> = stored.and_then(|stored| serde_json::from_value(stored.data).ok());
    // A typed username that names no user might be a password typed into the wrong field:
    // only its keyed hash is ever logged or recorded.
    let recorded_username = match &user {
        Some(user) => user.username.clone(),
        None => guard.unknown_user_label(&username),
    };
    let address = client_ip.clone().unwrap_or_else(|| "unknown".into());
    let keys = guard.keys(&address, &username);
    let failed = |reason: &str, throttled_attempts: i64| {
        AuditEvent::LoginFailed(LoginFailed {
            username: recorded_username.clone(),
            reason: reason.to_owned(),
            client_ip: client_ip.clone(),
            throttled_attempts: u64::try_from(throttled_attempts)
                .ok()
                .filter(|count| *count > 0),
        })
    };
    if let Some(throttled) = guard.check(&state.pool, &keys).await? {
        metrics::counter!("admin_api_logins_total", "outcome" => "throttled").increment(1);
        if throttled.first {
            // One event per throttle window; the rest are counted and reported later.
            state
                .bus
                .publish_audit(failed("throttled", 0), None, &state.node_id)
                .await?;
        }
        return Err(ApiError::TooManyRequests {
            retry_after_seconds: throttled.retry_after_seconds,
        });
    }
    let permit = guard.try_password_check()?;
    let hash = user.as_ref().map_or_else(
        || dummy_hash().to_owned(),
        |user| user.password_hash.clone(),
    );
    let password_ok = verify_blocking(request.password, hash).await;
    drop(permit);
    let user = match user {
        Some(user) if password_ok && user.enabled => user,
        other => {
            let reason = match other {
                Some(user) if password_ok && !user.enabled => "disabled",
                Some(_) => "wrong_password",
                None => "unknown_user",
            };
            let throttled_attempts = guard.fail(&state.pool, &keys).await?;
            metrics::counter!("admin_api_logins_total", "outcome" => "failed").increment(1);
            tracing::info!(username = %recorded_username, reason, throttled_attempts, "login failed");
            state
                .bus
                .publish_audit(failed(reason, throttled_attempts), None, &state.node_id)
                .await?;
            return Err(ApiError::Unauthorized {
                code: "invalid_credentials",
                message: "wrong username or password, or the account is disabled".into(),
            });
        }
    };
    let throttled_attempts = guard.succeed(&state.pool, &keys).await?;
    if throttled_attempts > 0 {
        tracing::info!(username = %user.username, throttled_attempts, "throttled attempts before this sign-in");
    }
    start_session(&state, &user, client_ip, "password").await
}

/// Opens a session for `user` (signed in by `method`: `password` or `oidc`), audits it, and
/// answers with the session token and the user.
///
/// # Errors
/// On a database or bus error.
pub async fn start_session(
    state: &AppState,
    user: &User,
    client_ip: Option<String>,
    method: &str,
) -> Result<Response, ApiError> {
    metrics::counter!("admin_api_logins_total", "outcome" => "succeeded").increment(1);
    let token = new_session_token();
    let expires_at = OffsetDateTime::now_utc() + state.session_ttl;
    db::insert_session(
        &state.pool,
        &hash_session_token(&token),
        &user.id,
        expires_at,
        client_ip.as_deref(),
    )
    .await?;
    let actor = Actor {
        user_id: user.id.clone(),
        username: user.username.clone(),
    };
    let event = AuditEvent::LoginSucceeded(LoginSucceeded {
        user_id: user.id.clone(),
        username: user.username.clone(),
        client_ip,
        method: Some(method.to_owned()),
    });
    state
        .bus
        .publish_audit(event, Some(&actor), &state.node_id)
        .await?;
    tracing::info!(username = %user.username, method, "login succeeded");
    let role = role_of(state, &user.id).await?;
    Ok(axum::Json(json!({
        "token": token,
        "expires_at": rfc3339(expires_at),
        "user": {
            "id": user.id,
            "username": user.username,
            "display_name": user.display_name,
            "role": role.as_str(),
            "must_change_password": user.must_change_password,
        },
    }))
    .into_response())
}

/// `POST /api/v1/auth/logout`: revokes this session.
pub async fn logout(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    require(
        state.authorizer.as_ref(),
        &caller.principal(),
        Action::Delete,
        &Resource::kind(Kind::Session),
    )?;
    db::revoke_session(&state.pool, &caller.token_hash).await?;
    let event = AuditEvent::Logout(SessionEnded {
        user_id: caller.user_id.clone(),
    });
    state
        .bus
        .publish_audit(event, Some(&caller.actor()), &state.node_id)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /api/v1/auth/me`.
pub async fn me(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<axum::Json<Value>, ApiError> {
    require(
        state.authorizer.as_ref(),
        &caller.principal(),
        Action::Read,
        &Resource::kind(Kind::Session),
    )?;
    Ok(axum::Json(me_json(&caller)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordChange {
    current_password: String,
    new_password: String,
}

/// `POST /api/v1/auth/password`: changes the caller's own password, clears
/// `must_change_password` and signs out every other session of the user.
pub async fn change_password(
    State(state): State<AppState>,
    caller: Caller,
    Body(body): Body<Value>,
) -> Result<axum::Json<Value>, ApiError> {
    require(
        state.authorizer.as_ref(),
        &caller.principal(),
        Action::Update,
        &Resource::kind(Kind::Session),
    )?;
    let request: PasswordChange = crate::extract::parse(body)?;
    check_new_password("new_password", &request.new_password)?;
    if request.new_password == request.current_password {
        return Err(ApiError::invalid(
            "new_password",
            "the new password must differ from the current one",
        ));
    }
    // Signed-in password work shares the bound with sign-ins, waiting for a slot.
    let permit = state.login_guard.password_check().await?;
    if !verify_blocking(request.current_password, caller.user.password_hash.clone()).await {
        return Err(ApiError::invalid(
            "current_password",
            "the current password is wrong",
        ));
    }
    let mut user = caller.user.clone();
    user.password_hash = hash_blocking(request.new_password).await?;
    drop(permit);
    user.must_change_password = false;
    let sequence = state
        .bus
        .publish_config(
            ConfigEvent::UserPut(user),
            &caller.actor(),
            caller.user_version,
        )
        .await?;
    state
        .projections
        .wait_for(Projection::Config, sequence, state.read_your_writes_timeout)
        .await?;
    db::revoke_user_sessions(&state.pool, &caller.user_id, Some(&caller.token_hash)).await?;
    let event = AuditEvent::PasswordChanged(SessionEnded {
        user_id: caller.user_id.clone(),
    });
    state
        .bus
        .publish_audit(event, Some(&caller.actor()), &state.node_id)
        .await?;
    let mut body = me_json(&caller);
    body["must_change_password"] = json!(false);
    Ok(axum::Json(body))
}

/// Creates the first `admin` account (and its role binding) unless it was ever created.
/// Safe to run from several processes at once: each event is published with
/// expected-last-subject-sequence 0 on a fixed subject, so JetStream stores at most one.
///
/// # Errors
/// When the bus does not answer.
pub async fn ensure_first_admin(state: &AppState, initial_password: &str) -> Result<(), ApiError> {
    if db::any_user(&state.pool).await == Some(true) {
        return Ok(());
    }
    let actor = Actor::system();
    let user_subject = shared::streams::config_subject(ConfigEntity::User, FIRST_ADMIN_ID);
    if state.bus.current_version(&user_subject).await? == 0 {
        let user = User {
            id: FIRST_ADMIN_ID.into(),
            username: "admin".into(),
            display_name: "Administrator".into(),
            password_hash: hash_blocking(initial_password.to_owned()).await?,
            must_change_password: true,
            enabled: true,
            budget: None,
            allowed_models: Vec::new(),
            sso_subject: None,
        };
        match state
            .bus
            .publish_config(ConfigEvent::UserPut(user), &actor, 0)
            .await
        {
            Ok(_) => tracing::info!(
                "created the first admin account `admin`; it must change its password at first login"
            ),
            Err(ApiError::Conflict { .. }) => {}
            Err(error) => return Err(error),
        }
    }
    let binding_subject =
        shared::streams::config_subject(ConfigEntity::RoleBinding, FIRST_ADMIN_ID);
    if state.bus.current_version(&binding_subject).await? == 0 {
        let binding = RoleBinding {
            user_id: FIRST_ADMIN_ID.into(),
            role: Role::Admin,
        };
        match state
            .bus
            .publish_config(ConfigEvent::RoleBindingPut(binding), &actor, 0)
            .await
        {
            Ok(_) | Err(ApiError::Conflict { .. }) => {}
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_tokens_are_random_and_hashed() {
        let token = new_session_token();
        assert!(token.starts_with("axs-"));
        assert_ne!(token, new_session_token());
        assert_eq!(hash_session_token(&token).len(), 64);
        assert!(!hash_session_token(&token).contains(&token[4..]));
    }
}
