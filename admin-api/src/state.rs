//! What every handler shares.

use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::Pool;
use shared::secret::MasterKeys;
use shared::token::TokenHasher;

use crate::authz::Authorizer;
use crate::bus::Bus;
use crate::login_guard::LoginGuard;
use crate::read_your_writes::Projections;

pub type AppState = Arc<Inner>;

pub struct Inner {
    pub pool: Pool,
    pub bus: Bus,
    pub projections: Projections,
    pub authorizer: Arc<dyn Authorizer>,
    pub master_keys: MasterKeys,
    pub token_hasher: TokenHasher,
    pub session_ttl: Duration,
    pub read_your_writes_timeout: Duration,
    pub node_id: String,
    pub login_guard: LoginGuard,
    /// Request analytics (usage).
    pub clickhouse: clickhouse::Client,
    /// Single sign-on, when `oidc_issuer_url` is set.
    pub oidc: Option<Arc<crate::oidc::Oidc>>,
}
