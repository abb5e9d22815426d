//! Single sign-on with OpenID Connect: the authorization code flow with PKCE (S256), for the
//! admin UI and API. Local accounts keep signing in with their password (break-glass).
//!
//! 1. `GET /api/v1/auth/oidc/login` keeps a fresh `state`, nonce and PKCE verifier (hashed
//!    state, in `admin_oidc_logins`) and redirects the browser to the provider's authorization
//!    endpoint.
//! 2. The provider redirects back to `GET /api/v1/auth/oidc/callback?code&state`: the state is
//!    taken once (ten minutes at most), the code exchanged at the token endpoint with the
//!    verifier, and the ID token verified — signature (RS256 or ES256, against the provider's
//!    JWKS), issuer, audience, expiry and nonce.
//! 3. The account is the one bound to `<issuer>#<sub>`, created on first sign-in; its role and
//!    its memberships of the mapped teams follow the groups claim at every sign-in.
//! 4. The browser is redirected to `/login#sso=<one-time code>`, which the UI exchanges
//!    (`POST /api/v1/auth/oidc/session`, two minutes at most, once) for a session, so no session
//!    token ever sits in a URL. A failure redirects to `/login#sso_error=<message>`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore as _;
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use shared::audit::{AuditEvent, LoginFailed};
use shared::config::{ConfigEntity, ConfigEvent, Role, Team, TeamRole, User};
use tokio::sync::Mutex;

use crate::auth::ClientIp;
use crate::db;
use crate::error::ApiError;
use crate::extract::Body;
use crate::state::AppState;

/// The most groups taken from a token, and the longest group name kept.
const MAX_GROUPS: usize = 1_000;
const MAX_GROUP_BYTES: usize = 256;
/// Clock skew allowed on `exp` and `iat`.
const LEEWAY_SECS: i64 = 60;
/// How long discovery and the JWKS are kept before being fetched again.
const PROVIDER_TTL: Duration = Duration::from_secs(3600);
/// An unknown key id fetches the JWKS again at most this often.
const JWKS_REFRESH_MIN: Duration = Duration::from_secs(60);

/// The deployment's single sign-on settings (`oidc_*` in the config).
#[derive(Debug, Clone)]
pub struct OidcSettings {
    pub issuer: String,
    pub client_id: String,
    pub client_secret: Option<String>,
    pub redirect_url: String,
    pub scopes: String,
    pub groups_claim: String,
    /// Group → role; a user in several mapped groups gets the most privileged role.
    pub group_roles: Vec<(String, Role)>,
    /// Group → (team id, role in it).
    pub group_teams: Vec<(String, String, TeamRole)>,
    /// The role of a user in no group of `group_roles`; `None` refuses them.
    pub default_role: Option<Role>,
}

fn role_named(name: &str) -> Option<Role> {
    match name {
        "admin" => Some(Role::Admin),
        "operator" => Some(Role::Operator),
        "viewer" => Some(Role::Viewer),
        "member" => Some(Role::Member),
        _ => None,
    }
}

/// `group=value,group=value` (whitespace around items ignored).
fn pairs(text: &str) -> Result<Vec<(String, String)>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| {
            let (group, value) = item
                .rsplit_once('=')
                .ok_or_else(|| format!("{item:?} is not group=value"))?;
            let (group, value) = (group.trim(), value.trim());
            if group.is_empty() || value.is_empty() {
                return Err(format!("{item:?} is not group=value"));
            }
            Ok((group.to_owned(), value.to_owned()))
        })
        .collect()
}

/// Whether a URL is HTTPS, or HTTP to a loopback host (a provider on the same machine).
fn secure_enough(url: &url::Url) -> bool {
    match url.scheme() {
        "https" => true,
        "http" => match url.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            Some(url::Host::Domain(name)) => name == "localhost",
            None => false,
        },
        _ => false,
    }
}

impl OidcSettings {
    /// The settings from the config; `None` when `oidc_issuer_url` is unset.
    ///
    /// # Errors
    /// A one-line message naming the field at fault.
    pub fn from_config(config: &crate::config::AdminConfig) -> Result<Option<Self>, String> {
        let Some(issuer) = config
            .oidc_issuer_url
            .as_deref()
            .map(str::trim)
            .filter(|issuer| !issuer.is_empty())
        else {
            return Ok(None);
        };
        let parsed = url::Url::parse(issuer)
            .map_err(|error| format!("oidc_issuer_url: not a URL ({error})"))?;
        if !secure_enough(&parsed) {
            return Err("oidc_issuer_url must be https (or http on loopback)".into());
        }
        let client_id = config
            .oidc_client_id
            .clone()
            .filter(|id| !id.trim().is_empty())
            .ok_or("oidc_client_id is required with oidc_issuer_url")?;
        let redirect_url = config
            .oidc_redirect_url
            .clone()
            .filter(|url| !url.trim().is_empty())
            .ok_or(
                "oidc_redirect_url is required with oidc_issuer_url (…/api/v1/auth/oidc/callback)",
            )?;
        let redirect = url::Url::parse(&redirect_url)
            .map_err(|error| format!("oidc_redirect_url: not a URL ({error})"))?;
        if !redirect.path().ends_with("/api/v1/auth/oidc/callback") {
            return Err("oidc_redirect_url must end with /api/v1/auth/oidc/callback".into());
        }
        let group_roles = pairs(&config.oidc_group_roles)
            .map_err(|error| format!("oidc_group_roles: {error}"))?
            .into_iter()
            .map(|(group, role)| {
                role_named(&role).map(|role| (group, role)).ok_or_else(|| {
                    format!("oidc_group_roles: {role:?} is not admin, operator, viewer or member")
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let group_teams = pairs(&config.oidc_group_teams)
            .map_err(|error| format!("oidc_group_teams: {error}"))?
            .into_iter()
            .map(|(group, target)| {
                let (team, role) = match target.split_once(':') {
                    Some((team, "admin")) => (team, TeamRole::Admin),
                    Some((team, "member")) => (team, TeamRole::Member),
                    Some((_, other)) => {
                        return Err(format!(
                            "oidc_group_teams: {other:?} is not a team role (admin or member)"
                        ));
                    }
                    None => (target.as_str(), TeamRole::Member),
                };
                if !shared::ids::is_valid_entity_id(team) {
                    return Err(format!("oidc_group_teams: {team:?} is not a team id"));
                }
                Ok((group, team.to_owned(), role))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let default_role = match config.oidc_default_role.trim() {
            "none" => None,
            name => Some(role_named(name).ok_or_else(|| {
                format!(
                    "oidc_default_role: {name:?} is not admin, operator, viewer, member or none"
                )
            })?),
        };
        Ok(Some(Self {
            issuer: issuer.trim_end_matches('/').to_owned(),
            client_id,
            client_secret: config
                .oidc_client_secret
                .clone()
                .filter(|secret| !secret.is_empty()),
            redirect_url,
            scopes: config.oidc_scopes.clone(),
            groups_claim: config.oidc_groups_claim.clone(),
            group_roles,
            group_teams,
            default_role,
        }))
    }
}

/// What discovery says, and the provider's keys.
#[derive(Debug, Clone)]
struct Provider {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
    keys: Vec<Jwk>,
    fetched: Instant,
    keys_fetched: Instant,
}

#[derive(Debug, Clone, Deserialize)]
struct Jwk {
    kty: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    alg: Option<String>,
    #[serde(rename = "use", default)]
    usage: Option<String>,
    #[serde(default)]
    n: Option<String>,
    #[serde(default)]
    e: Option<String>,
    #[serde(default)]
    crv: Option<String>,
    #[serde(default)]
    x: Option<String>,
    #[serde(default)]
    y: Option<String>,
}

/// Single sign-on, when configured.
pub struct Oidc {
    pub settings: OidcSettings,
    http: reqwest::Client,
    provider: Mutex<Option<Provider>>,
}

/// Why a sign-in failed: what the user is shown, and the reason recorded.
#[derive(Debug)]
pub struct SsoError {
    reason: &'static str,
    message: String,
}

impl SsoError {
    fn new(reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            reason,
            message: message.into(),
        }
    }
}

impl From<ApiError> for SsoError {
    fn from(error: ApiError) -> Self {
        tracing::warn!(error = %error, "single sign-on failed on a store");
        Self::new("unavailable", "sign-in is unavailable right now; try again")
    }
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn random_b64() -> String {
    let mut bytes = [0_u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    b64(&bytes)
}

fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

impl Oidc {
    #[must_use]
    pub fn new(settings: OidcSettings) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(15))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        Self {
            settings,
            http,
            provider: Mutex::new(None),
        }
    }

    async fn get_json(&self, url: &str) -> Result<Value, SsoError> {
        let response = self.http.get(url).send().await.map_err(|error| {
            tracing::warn!(%url, error = %error, "identity provider unreachable");
            SsoError::new(
                "provider_unreachable",
                "the identity provider cannot be reached",
            )
        })?;
        if !response.status().is_success() {
            tracing::warn!(%url, status = %response.status(), "identity provider answered an error");
            return Err(SsoError::new(
                "provider_error",
                format!("the identity provider answered {}", response.status()),
            ));
        }
        response.json().await.map_err(|_| {
            SsoError::new(
                "provider_error",
                "the identity provider's answer is not JSON",
            )
        })
    }

    async fn fetch_keys(&self, jwks_uri: &str) -> Result<Vec<Jwk>, SsoError> {
        let jwks = self.get_json(jwks_uri).await?;
        let keys: Vec<Jwk> = serde_json::from_value(jwks["keys"].clone()).map_err(|_| {
            SsoError::new("provider_error", "the identity provider's JWKS has no keys")
        })?;
        Ok(keys)
    }

    /// Discovery and keys, fetched when missing or older than [`PROVIDER_TTL`]; with
    /// `refresh_keys`, the keys again when older than [`JWKS_REFRESH_MIN`].
    async fn provider(&self, refresh_keys: bool) -> Result<Provider, SsoError> {
        let mut cached = self.provider.lock().await;
        if let Some(provider) = cached.as_mut()
            && provider.fetched.elapsed() < PROVIDER_TTL
        {
            if refresh_keys && provider.keys_fetched.elapsed() >= JWKS_REFRESH_MIN {
                provider.keys = self.fetch_keys(&provider.jwks_uri).await?;
                provider.keys_fetched = Instant::now();
            }
            return Ok(provider.clone());
        }
        let discovery = self
            .get_json(&format!(
                "{}/.well-known/openid-configuration",
                self.settings.issuer
            ))
            .await?;
        let field = |name: &str| {
            discovery[name].as_str().map(str::to_owned).ok_or_else(|| {
                SsoError::new(
                    "provider_error",
                    format!("the identity provider's discovery document has no {name}"),
                )
            })
        };
        let issuer = field("issuer")?;
        if issuer.trim_end_matches('/') != self.settings.issuer {
            return Err(SsoError::new(
                "provider_error",
                format!(
                    "the identity provider calls itself {issuer:?}, not {:?} (oidc_issuer_url)",
                    self.settings.issuer
                ),
            ));
        }
        let jwks_uri = field("jwks_uri")?;
        let provider = Provider {
            issuer,
            authorization_endpoint: field("authorization_endpoint")?,
            token_endpoint: field("token_endpoint")?,
            keys: self.fetch_keys(&jwks_uri).await?,
            jwks_uri,
            fetched: Instant::now(),
            keys_fetched: Instant::now(),
        };
        *cached = Some(provider.clone());
        Ok(provider)
    }
}

// ---- ID token verification -------------------------------------------------------------------

/// The claims of a verified ID token that sign-in uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub subject: String,
    pub username: Option<String>,
    pub email: Option<String>,
    pub name: Option<String>,
    pub groups: Vec<String>,
}

fn decode_part(part: &str) -> Result<Vec<u8>, SsoError> {
    URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .map_err(|_| SsoError::new("invalid_token", "the ID token is not a JWT"))
}

/// Checks a signature with a JWK: RS256 (RSA PKCS#1 v1.5, SHA-256) or ES256 (P-256, SHA-256).
fn signature_ok(key: &Jwk, alg: &str, message: &[u8], signature: &[u8]) -> bool {
    let part = |value: &Option<String>| value.as_deref().and_then(|text| decode_part(text).ok());
    match (alg, key.kty.as_str()) {
        ("RS256", "RSA") => {
            let (Some(n), Some(e)) = (part(&key.n), part(&key.e)) else {
                return false;
            };
            ring::signature::RsaPublicKeyComponents { n: &n, e: &e }
                .verify(
                    &ring::signature::RSA_PKCS1_2048_8192_SHA256,
                    message,
                    signature,
                )
                .is_ok()
        }
        ("ES256", "EC") if key.crv.as_deref() == Some("P-256") => {
            let (Some(x), Some(y)) = (part(&key.x), part(&key.y)) else {
                return false;
            };
            let mut point = Vec::with_capacity(65);
            point.push(0x04);
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            ring::signature::UnparsedPublicKey::new(
                &ring::signature::ECDSA_P256_SHA256_FIXED,
                point,
            )
            .verify(message, signature)
            .is_ok()
        }
        _ => false,
    }
}

/// The claim `name` as a string bounded to `max` bytes (longer is refused: `None`).
fn bounded_claim(claims: &Value, name: &str, max: usize) -> Option<String> {
    claims[name]
        .as_str()
        .filter(|value| !value.is_empty() && value.len() <= max)
        .map(str::to_owned)
}

/// Verifies an ID token's signature (with one of `keys`) and claims; returns its identity.
///
/// # Errors
/// `unknown_key` when no key has the token's key id (the JWKS may need fetching again),
/// `invalid_token` for anything else wrong.
fn verify_id_token(
    token: &str,
    keys: &[Jwk],
    issuer: &str,
    client_id: &str,
    nonce: &str,
    groups_claim: &str,
    now: i64,
) -> Result<Identity, SsoError> {
    let invalid = |message: &str| SsoError::new("invalid_token", message.to_owned());
    if token.len() > 64 * 1024 {
        return Err(invalid("the ID token is too large"));
    }
    let mut parts = token.split('.');
    let (Some(header_part), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid("the ID token is not a JWT"));
    };
    let header: Value = serde_json::from_slice(&decode_part(header_part)?)
        .map_err(|_| invalid("the ID token's header is not JSON"))?;
    let alg = header["alg"].as_str().unwrap_or_default();
    if alg != "RS256" && alg != "ES256" {
        return Err(invalid(&format!(
            "the ID token is signed with {alg:?}; RS256 and ES256 are accepted"
        )));
    }
    let kid = header["kid"].as_str();
    let candidates: Vec<&Jwk> = keys
        .iter()
        .filter(|key| key.usage.as_deref().is_none_or(|usage| usage == "sig"))
        .filter(|key| key.alg.as_deref().is_none_or(|key_alg| key_alg == alg))
        .filter(|key| kid.is_none_or(|kid| key.kid.as_deref() == Some(kid)))
        .collect();
    if candidates.is_empty() {
        return Err(SsoError::new(
            "unknown_key",
            "the ID token is signed with a key the identity provider does not publish",
        ));
    }
    let message = format!("{header_part}.{payload}");
    let signature = decode_part(signature)?;
    if !candidates
        .iter()
        .any(|key| signature_ok(key, alg, message.as_bytes(), &signature))
    {
        return Err(invalid("the ID token's signature does not verify"));
    }
    let claims: Value = serde_json::from_slice(&decode_part(payload)?)
        .map_err(|_| invalid("the ID token's claims are not JSON"))?;
    if claims["iss"].as_str().map(|iss| iss.trim_end_matches('/'))
        != Some(issuer.trim_end_matches('/'))
    {
        return Err(invalid("the ID token is from another issuer"));
    }
    let audience_ok = match &claims["aud"] {
        Value::String(aud) => aud == client_id,
        Value::Array(auds) => {
            auds.iter().any(|aud| aud.as_str() == Some(client_id))
                && (auds.len() == 1 || claims["azp"].as_str() == Some(client_id))
        }
        _ => false,
    };
    if !audience_ok {
        return Err(invalid("the ID token is for another client"));
    }
    let exp = claims["exp"]
        .as_i64()
        .ok_or_else(|| invalid("the ID token has no exp"))?;
    if exp + LEEWAY_SECS < now {
        return Err(invalid("the ID token has expired"));
    }
    if claims["iat"]
        .as_i64()
        .is_some_and(|iat| iat > now + LEEWAY_SECS)
    {
        return Err(invalid("the ID token is issued in the future"));
    }
    if claims["nonce"].as_str() != Some(nonce) {
        return Err(invalid("the ID token's nonce does not match this sign-in"));
    }
    let subject = bounded_claim(&claims, "sub", 255)
        .ok_or_else(|| invalid("the ID token has no usable sub"))?;
    let groups = match &claims[groups_claim] {
        Value::Array(items) => items
            .iter()
            .filter_map(Value::as_str)
            .filter(|group| group.len() <= MAX_GROUP_BYTES)
            .take(MAX_GROUPS)
            .map(str::to_owned)
            .collect(),
        Value::String(group) if group.len() <= MAX_GROUP_BYTES => vec![group.clone()],
        _ => Vec::new(),
    };
    Ok(Identity {
        subject,
        username: bounded_claim(&claims, "preferred_username", 256),
        email: bounded_claim(&claims, "email", 256),
        name: bounded_claim(&claims, "name", 256),
        groups,
    })
}

// ---- the account ----------------------------------------------------------------------------

/// A username from the identity: `preferred_username`, else the email, else `sso-user`, kept to
/// the characters usernames may have.
fn username_from(identity: &Identity) -> String {
    let given = identity
        .username
        .as_deref()
        .or(identity.email.as_deref())
        .unwrap_or("sso-user");
    let kept: String = given
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "._@-".contains(*c))
        .take(48)
        .collect();
    if kept.is_empty() {
        "sso-user".into()
    } else {
        kept
    }
}

/// The role the groups give (the most privileged mapped), or the default.
fn role_for(settings: &OidcSettings, groups: &[String]) -> Option<Role> {
    settings
        .group_roles
        .iter()
        .filter(|(group, _)| groups.contains(group))
        .map(|(_, role)| *role)
        .min()
        .or(settings.default_role)
}

/// The mapped teams and the role the groups give in each (`None`: not a member).
fn teams_for(settings: &OidcSettings, groups: &[String]) -> BTreeMap<String, Option<TeamRole>> {
    let mut teams: BTreeMap<String, Option<TeamRole>> = BTreeMap::new();
    for (group, team, role) in &settings.group_teams {
        let entry = teams.entry(team.clone()).or_insert(None);
        if groups.contains(group) {
            *entry = Some(match *entry {
                Some(TeamRole::Admin) => TeamRole::Admin,
                _ => *role,
            });
        }
    }
    teams
}

/// The account of `identity`, created on first sign-in; its role and mapped teams brought to
/// what its groups say.
async fn account(state: &AppState, oidc: &Oidc, identity: &Identity) -> Result<User, SsoError> {
    let subject = format!("{}#{}", oidc.settings.issuer, identity.subject);
    let actor = shared::Actor::system();
    let role = role_for(&oidc.settings, &identity.groups).ok_or_else(|| {
        SsoError::new(
            "no_mapped_group",
            "your account is in no group this gateway admits; ask an administrator",
        )
    })?;
    let existing = db::find_by_field(
        &state.pool,
        ConfigEntity::User.as_str(),
        "sso_subject",
        &subject,
    )
    .await?;
    let user = match existing {
        Some(stored) => {
            let user: User = serde_json::from_value(stored.data)
                .map_err(|error| ApiError::internal(format!("a stored user: {error}")))?;
            if !user.enabled {
                return Err(SsoError::new("disabled", "your account is disabled"));
            }
            user
        }
        None => {
            let mut username = username_from(identity);
            let taken = |name: String| {
                let pool = state.pool.clone();
                async move {
                    db::find_by_field(&pool, ConfigEntity::User.as_str(), "username", &name)
                        .await
                        .map(|found| found.is_some())
                }
            };
            // Never the account of a local user with the same name: a distinct one.
            if taken(username.clone()).await? {
                username = format!("{username}-{}", &sha256_hex(&subject)[..6]);
                if taken(username.clone()).await? {
                    return Err(SsoError::new(
                        "username_taken",
                        "no free username for your account; ask an administrator",
                    ));
                }
            }
            // One id per subject, so two first sign-ins at once make one account.
            let id = format!("sso-{}", &sha256_hex(&subject)[..32]);
            let user = User {
                id: id.clone(),
                username,
                display_name: identity.name.clone().unwrap_or_default(),
                password_hash: String::new(),
                must_change_password: false,
                enabled: true,
                budget: None,
                allowed_models: Vec::new(),
                sso_subject: Some(subject),
            };
            // After the subject's last event (a deleted account is made again: disable an
            // account to keep its owner out).
            let expected = state
                .bus
                .current_version(&shared::streams::config_subject(ConfigEntity::User, &id))
                .await?;
            match crate::resources::commit(
                state,
                ConfigEvent::UserPut(user.clone()),
                &actor,
                expected,
            )
            .await
            {
                Ok(_) => {
                    tracing::info!(username = %user.username, "single sign-on created an account");
                    user
                }
                // Another sign-in of the same subject made it a moment ago.
                Err(ApiError::Conflict { .. }) => {
                    let stored = db::get(&state.pool, ConfigEntity::User.as_str(), &id)
                        .await?
                        .ok_or_else(|| {
                            SsoError::new(
                                "unavailable",
                                "sign-in is unavailable right now; try again",
                            )
                        })?;
                    serde_json::from_value(stored.data)
                        .map_err(|error| ApiError::internal(format!("a stored user: {error}")))?
                }
                Err(error) => return Err(error.into()),
            }
        }
    };
    if let Some(sequence) =
        crate::resources::users::bind_role_as(state, &actor, &user.id, role).await?
    {
        state
            .projections
            .wait_for(
                crate::read_your_writes::Projection::Config,
                sequence,
                state.read_your_writes_timeout,
            )
            .await?;
    }
    for (team_id, desired) in teams_for(&oidc.settings, &identity.groups) {
        let Some(stored) = db::get(&state.pool, ConfigEntity::Team.as_str(), &team_id).await?
        else {
            tracing::warn!(team = %team_id, "oidc_group_teams names a team that does not exist");
            continue;
        };
        let mut team: Team = serde_json::from_value(stored.data)
            .map_err(|error| ApiError::internal(format!("a stored team: {error}")))?;
        if team.role_of(&user.id) == desired {
            continue;
        }
        team.members.retain(|member| member.user_id != user.id);
        if let Some(role) = desired {
            team.members.push(shared::config::TeamMember {
                user_id: user.id.clone(),
                role,
            });
        }
        crate::resources::commit(state, ConfigEvent::TeamPut(team), &actor, stored.version).await?;
    }
    Ok(user)
}

// ---- handlers -------------------------------------------------------------------------------

fn redirect(location: &str) -> Response {
    (
        StatusCode::FOUND,
        [
            (header::LOCATION, location.to_owned()),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
    )
        .into_response()
}

fn configured(state: &AppState) -> Result<&Oidc, ApiError> {
    state.oidc.as_deref().ok_or_else(|| ApiError::NotFound {
        entity: "single sign-on",
        id: "oidc".into(),
    })
}

/// `GET /api/v1/auth/oidc`: whether single sign-on is on (public: the login page asks).
pub async fn info(State(state): State<AppState>) -> Json<Value> {
    Json(match &state.oidc {
        Some(_) => json!({"enabled": true, "login_url": "/api/v1/auth/oidc/login"}),
        None => json!({"enabled": false}),
    })
}

/// `GET /api/v1/auth/oidc/login`: to the identity provider.
pub async fn login(State(state): State<AppState>) -> Result<Response, ApiError> {
    let oidc = configured(&state)?;
    let provider = match oidc.provider(false).await {
        Ok(provider) => provider,
        Err(error) => return Ok(failed_redirect(&error)),
    };
    let (sign_in, verifier, nonce) = (random_b64(), random_b64(), random_b64());
    let challenge = b64(&Sha256::digest(verifier.as_bytes()));
    // A browser navigation: a failure goes back to the login page, said there.
    match db::insert_oidc_login(&state.pool, &sha256_hex(&sign_in), &verifier, &nonce).await {
        Ok(()) => {}
        Err(ApiError::Unavailable { message, .. }) => {
            return Ok(failed_redirect(&SsoError::new("busy", message)));
        }
        Err(error) => return Ok(failed_redirect(&SsoError::from(error))),
    }
    let mut url = url::Url::parse(&provider.authorization_endpoint).map_err(|error| {
        ApiError::internal(format!("the authorization endpoint is not a URL: {error}"))
    })?;
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &oidc.settings.client_id)
        .append_pair("redirect_uri", &oidc.settings.redirect_url)
        .append_pair("scope", &oidc.settings.scopes)
        .append_pair("state", &sign_in)
        .append_pair("nonce", &nonce)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    Ok(redirect(url.as_str()))
}

fn failed_redirect(error: &SsoError) -> Response {
    let message: String = url::form_urlencoded::byte_serialize(error.message.as_bytes()).collect();
    redirect(&format!("/login#sso_error={message}"))
}

#[derive(Deserialize)]
pub struct CallbackParams {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    error_description: Option<String>,
}

/// Exchanges the code for tokens and verifies the ID token.
async fn identity(
    oidc: &Oidc,
    code: &str,
    verifier: &str,
    nonce: &str,
) -> Result<Identity, SsoError> {
    let provider = oidc.provider(false).await?;
    let public_client = oidc.settings.client_secret.is_none();
    // Built apart: the serializer is not `Send`, so it must not live across an await.
    let body = {
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        form.append_pair("grant_type", "authorization_code")
            .append_pair("code", code)
            .append_pair("redirect_uri", &oidc.settings.redirect_url)
            .append_pair("code_verifier", verifier);
        if public_client {
            form.append_pair("client_id", &oidc.settings.client_id);
        }
        form.finish()
    };
    let mut request = oidc
        .http
        .post(&provider.token_endpoint)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::ACCEPT, "application/json");
    // client_secret_basic: both parts form-encoded (RFC 6749 §2.3.1).
    if let Some(secret) = &oidc.settings.client_secret {
        let encode = |text: &str| -> String {
            url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
        };
        request = request.basic_auth(encode(&oidc.settings.client_id), Some(encode(secret)));
    }
    let response = request.body(body).send().await.map_err(|error| {
        tracing::warn!(error = %error, "token endpoint unreachable");
        SsoError::new(
            "provider_unreachable",
            "the identity provider cannot be reached",
        )
    })?;
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        // The provider's error code only (its description may echo what was sent).
        let code = body["error"]
            .as_str()
            .unwrap_or("unknown")
            .chars()
            .take(64)
            .collect::<String>();
        tracing::warn!(%status, error = %code, "the token endpoint refused the code");
        return Err(SsoError::new(
            "code_refused",
            format!("the identity provider refused the sign-in ({code})"),
        ));
    }
    let id_token = body["id_token"]
        .as_str()
        .ok_or_else(|| SsoError::new("invalid_token", "the identity provider sent no ID token"))?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let verify = |keys: &[Jwk]| {
        verify_id_token(
            id_token,
            keys,
            &provider.issuer,
            &oidc.settings.client_id,
            nonce,
            &oidc.settings.groups_claim,
            now,
        )
    };
    match verify(&provider.keys) {
        Err(error) if error.reason == "unknown_key" => {
            // Keys rotate: fetch them again (at most once a minute) and try once more.
            let provider = oidc.provider(true).await?;
            verify(&provider.keys)
        }
        other => other,
    }
}

/// `GET /api/v1/auth/oidc/callback`: back from the identity provider.
pub async fn callback(
    State(state): State<AppState>,
    ClientIp(client_ip): ClientIp,
    Query(params): Query<CallbackParams>,
) -> Result<Response, ApiError> {
    let oidc = configured(&state)?;
    let outcome = async {
        // The sign-in this callback ends, taken once; a callback naming none we started is
        // answered but not audited, since anyone can send one.
        let Some(sign_in) = params.state.as_ref().filter(|state| state.len() <= 256) else {
            return Err(SsoError::new(
                "bad_callback",
                "the sign-in came back without its state",
            ));
        };
        let (verifier, nonce) = db::take_oidc_login(&state.pool, &sha256_hex(sign_in))
            .await?
            .ok_or_else(|| {
                SsoError::new(
                    "unknown_state",
                    "this sign-in is unknown, expired or already used; start again",
                )
            })?;
        if let Some(error) = &params.error {
            let code: String = error.chars().take(64).collect();
            let description: String = params
                .error_description
                .as_deref()
                .unwrap_or_default()
                .chars()
                .filter(|c| !c.is_control())
                .take(200)
                .collect();
            return Err(SsoError::new(
                "provider_refused",
                format!("the identity provider did not sign you in ({code}) {description}")
                    .trim_end()
                    .to_owned(),
            ));
        }
        let Some(code) = params.code.as_ref().filter(|code| code.len() <= 4096) else {
            return Err(SsoError::new(
                "bad_callback",
                "the sign-in came back without its code",
            ));
        };
        let identity = identity(oidc, code, &verifier, &nonce).await?;
        let user = account(&state, oidc, &identity).await?;
        Ok(user)
    }
    .await;
    match outcome {
        Ok(user) => {
            let code = random_b64();
            db::insert_sso_code(&state.pool, &sha256_hex(&code), &user.id).await?;
            Ok(redirect(&format!("/login#sso={code}")))
        }
        Err(error) => {
            metrics::counter!("admin_api_logins_total", "outcome" => "failed").increment(1);
            tracing::info!(reason = error.reason, "single sign-on failed");
            // Only the failures of a sign-in the gateway started are audited: a stray or
            // forged callback costs the audit stream nothing.
            if !matches!(error.reason, "unknown_state" | "bad_callback") {
                let event = AuditEvent::LoginFailed(LoginFailed {
                    username: "sso".into(),
                    reason: format!("sso_{}", error.reason),
                    client_ip,
                    throttled_attempts: None,
                });
                state.bus.publish_audit(event, None, &state.node_id).await?;
            }
            Ok(failed_redirect(&error))
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SessionRequest {
    code: String,
}

/// `POST /api/v1/auth/oidc/session` with `{"code": …}`: the session of a finished sign-in,
/// answered as `/api/v1/auth/login` answers.
pub async fn session(
    State(state): State<AppState>,
    ClientIp(client_ip): ClientIp,
    Body(body): Body<Value>,
) -> Result<Response, ApiError> {
    configured(&state)?;
    let request: SessionRequest = crate::extract::parse(body)?;
    let refused = || ApiError::Unauthorized {
        code: "invalid_credentials",
        message: "this sign-in code is unknown, expired or already used; sign in again".into(),
    };
    if request.code.len() > 256 {
        return Err(refused());
    }
    let user_id = db::take_sso_code(&state.pool, &sha256_hex(&request.code))
        .await?
        .ok_or_else(refused)?;
    let user: User = match db::get(&state.pool, ConfigEntity::User.as_str(), &user_id).await? {
        Some(stored) => serde_json::from_value(stored.data)?,
        None => return Err(refused()),
    };
    if !user.enabled {
        return Err(refused());
    }
    crate::auth::start_session(&state, &user, client_ip, "oidc").await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(roles: &str, teams: &str, default_role: Option<Role>) -> OidcSettings {
        OidcSettings {
            issuer: "https://idp.example".into(),
            client_id: "axongate".into(),
            client_secret: None,
            redirect_url: "https://gw.example/api/v1/auth/oidc/callback".into(),
            scopes: "openid".into(),
            groups_claim: "groups".into(),
            group_roles: pairs(roles)
                .unwrap()
                .into_iter()
                .map(|(group, role)| (group, role_named(&role).unwrap()))
                .collect(),
            group_teams: pairs(teams)
                .unwrap()
                .into_iter()
                .map(|(group, team)| match team.split_once(':') {
                    Some((team, _)) => (group, team.to_owned(), TeamRole::Admin),
                    None => (group, team, TeamRole::Member),
                })
                .collect(),
            default_role,
        }
    }

    #[test]
    fn groups_map_to_the_most_privileged_role_and_to_teams() {
        let settings = settings(
            "gw-ops=operator, gw-admins=admin,gw-view=viewer",
            "eng=eng,eng-leads=eng:admin,ops=ops",
            Some(Role::Member),
        );
        let groups = |names: &[&str]| {
            names
                .iter()
                .map(|name| (*name).to_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            role_for(&settings, &groups(&["gw-view", "gw-ops"])),
            Some(Role::Operator)
        );
        assert_eq!(
            role_for(&settings, &groups(&["gw-admins", "gw-view"])),
            Some(Role::Admin)
        );
        assert_eq!(role_for(&settings, &groups(&["other"])), Some(Role::Member));
        let strict = OidcSettings {
            default_role: None,
            ..settings.clone()
        };
        assert_eq!(role_for(&strict, &groups(&["other"])), None);
        let teams = teams_for(&settings, &groups(&["eng-leads", "eng"]));
        assert_eq!(teams["eng"], Some(TeamRole::Admin));
        assert_eq!(teams["ops"], None, "a mapped team the user is not in");
    }

    #[test]
    fn usernames_keep_only_allowed_characters() {
        let identity = Identity {
            subject: "s".into(),
            username: Some("Ann Lee (IT)".into()),
            email: None,
            name: None,
            groups: Vec::new(),
        };
        assert_eq!(username_from(&identity), "AnnLeeIT");
        let identity = Identity {
            username: Some("  ".into()),
            ..identity
        };
        assert_eq!(username_from(&identity), "sso-user");
    }

    #[test]
    fn mappings_are_checked() {
        assert!(pairs("a=b, c = d").is_ok());
        assert!(pairs("nothing").is_err());
        assert!(pairs("=x").is_err());
    }
}
