//! The Postgres pool, and a readiness check over it.

use std::sync::Arc;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::NoTls;

use crate::health::{Check, CheckFuture};

#[derive(Debug, thiserror::Error)]
pub enum PgError {
    #[error("postgres_url is not a valid connection string: {0}")]
    BadUrl(String),
    #[error("could not build the Postgres pool: {0}")]
    Pool(String),
    #[error("Postgres at {target} does not answer: {message}")]
    Unreachable { target: String, message: String },
}

/// Describes where a URL points without its password, for error messages and logs.
#[must_use]
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            format!("{}://…@{}", &url[..scheme_end], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

/// Builds a pool and checks that the server answers, so start-up fails with a clear message.
///
/// # Errors
/// On a malformed URL or an unreachable server.
pub async fn connect(url: &str, max_size: usize) -> Result<Pool, PgError> {
    let config: tokio_postgres::Config = url
        .parse()
        .map_err(|error: tokio_postgres::Error| PgError::BadUrl(error.to_string()))?;
    let manager = Manager::from_config(
        config,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    let pool = Pool::builder(manager)
        .max_size(max_size)
        .wait_timeout(Some(std::time::Duration::from_secs(5)))
        .create_timeout(Some(std::time::Duration::from_secs(5)))
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .build()
        .map_err(|error| PgError::Pool(error.to_string()))?;
    ping(&pool).await.map_err(|message| PgError::Unreachable {
        target: redact_url(url),
        message,
    })?;
    Ok(pool)
}

async fn ping(pool: &Pool) -> Result<(), String> {
    let client = pool.get().await.map_err(|error| error.to_string())?;
    client
        .simple_query("SELECT 1")
        .await
        .map_err(|error| error.to_string())?;
    Ok(())
}

/// A `/ready` check that runs `SELECT 1`.
#[must_use]
pub fn ready_check(pool: Pool) -> Check {
    Arc::new(move || -> CheckFuture {
        let pool = pool.clone();
        Box::pin(async move { ping(&pool).await })
    })
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn passwords_never_appear() {
        assert_eq!(
            redact_url("postgres://user:pw@host:5/db"),
            "postgres://…@host:5/db"
        );
        assert_eq!(redact_url("postgres://host/db"), "postgres://host/db");
    }
}
