//! Connecting to NATS and creating or updating the JetStream streams.
//!
//! Every service creates the streams it uses at start, idempotently: a missing stream is
//! created, one whose settings drifted from the spec is updated, one that matches is left
//! alone. Streams use file storage and a de-duplication window (`Nats-Msg-Id`).

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, stream};
use shared::streams::StreamSpec;

use crate::health::{Check, CheckFuture};

#[derive(Debug, thiserror::Error)]
pub enum NatsError {
    #[error("NATS credentials: {0}")]
    Credentials(String),
    #[error("NATS at {url} does not answer: {message}")]
    Unreachable { url: String, message: String },
    #[error("JetStream stream {stream}: {message}")]
    Stream { stream: String, message: String },
}

/// Durability settings for the streams (see docs/configuration.md).
#[derive(Debug, Clone, Copy)]
pub struct StreamSettings {
    /// Replicas per stream: 1 on a single server, 3 on a three-node cluster.
    pub replicas: usize,
    pub requests_max_age: Duration,
    pub duplicate_window: Duration,
}

impl Default for StreamSettings {
    fn default() -> Self {
        Self {
            replicas: 1,
            requests_max_age: shared::streams::DEFAULT_REQUESTS_MAX_AGE,
            duplicate_window: shared::streams::DEFAULT_DUPLICATE_WINDOW,
        }
    }
}

/// How a service proves who it is to NATS, read from the environment only so the secret never
/// sits in a config file: `AXONGATE_NATS_USER` with `AXONGATE_NATS_PASSWORD`,
/// `AXONGATE_NATS_TOKEN`, `AXONGATE_NATS_CREDS_FILE` (a `.creds` file: user JWT and nkey seed)
/// or `AXONGATE_NATS_NKEY_SEED_FILE` (a file holding an nkey seed). At most one of them; none
/// connects without credentials. No `Debug`: this holds secrets.
#[derive(Default, serde::Deserialize)]
pub struct NatsCredentials {
    #[serde(default)]
    nats_user: Option<String>,
    #[serde(default)]
    nats_password: Option<String>,
    #[serde(default)]
    nats_token: Option<String>,
    #[serde(default)]
    nats_creds_file: Option<String>,
    #[serde(default)]
    nats_nkey_seed_file: Option<String>,
}

impl NatsCredentials {
    /// The environment variable names, lower case, as config fields.
    pub const FIELDS: &'static [&'static str] = &[
        "nats_user",
        "nats_password",
        "nats_token",
        "nats_creds_file",
        "nats_nkey_seed_file",
    ];

    /// Reads the credentials from `AXONGATE_NATS_*`.
    ///
    /// # Errors
    /// When more than one method is given, or a user without a password.
    pub fn from_env() -> Result<Self, NatsError> {
        let credentials: Self = figment::Figment::new()
            .merge(figment::providers::Env::prefixed("AXONGATE_").only(Self::FIELDS))
            .extract()
            .map_err(|error| NatsError::Credentials(error.to_string()))?;
        credentials.validate()?;
        Ok(credentials)
    }

    fn validate(&self) -> Result<(), NatsError> {
        let methods = [
            self.nats_user.is_some() || self.nats_password.is_some(),
            self.nats_token.is_some(),
            self.nats_creds_file.is_some(),
            self.nats_nkey_seed_file.is_some(),
        ];
        if methods.iter().filter(|given| **given).count() > 1 {
            return Err(NatsError::Credentials(
                "give one of nats_user/nats_password, nats_token, nats_creds_file, nats_nkey_seed_file".into(),
            ));
        }
        if self.nats_user.is_some() != self.nats_password.is_some() {
            return Err(NatsError::Credentials(
                "nats_user and nats_password go together".into(),
            ));
        }
        Ok(())
    }

    /// `options` with these credentials.
    ///
    /// # Errors
    /// When a creds or seed file cannot be read.
    pub async fn apply(
        &self,
        options: async_nats::ConnectOptions,
    ) -> Result<async_nats::ConnectOptions, NatsError> {
        if let (Some(user), Some(password)) = (&self.nats_user, &self.nats_password) {
            return Ok(options.user_and_password(user.clone(), password.clone()));
        }
        if let Some(token) = &self.nats_token {
            return Ok(options.token(token.clone()));
        }
        if let Some(path) = &self.nats_creds_file {
            return options.credentials_file(path).await.map_err(|error| {
                NatsError::Credentials(format!("nats_creds_file {path}: {error}"))
            });
        }
        if let Some(path) = &self.nats_nkey_seed_file {
            let seed = std::fs::read_to_string(path).map_err(|error| {
                NatsError::Credentials(format!("nats_nkey_seed_file {path}: {error}"))
            })?;
            return Ok(options.nkey(seed.trim().to_owned()));
        }
        Ok(options)
    }
}

/// Connects to NATS, failing fast (no endless retry) if the server does not answer at start.
/// Credentials come from [`NatsCredentials::from_env`]. After a successful start the client
/// reconnects by itself forever. `url` may list several
/// servers of a cluster, comma-separated; the client fails over between them.
///
/// # Errors
/// When the server cannot be reached within a few seconds.
pub async fn connect(url: &str, client_name: &str) -> Result<async_nats::Client, NatsError> {
    let options = NatsCredentials::from_env()?
        .apply(async_nats::ConnectOptions::new())
        .await?;
    options
        .name(client_name)
        .connection_timeout(Duration::from_secs(5))
        .request_timeout(Some(Duration::from_secs(5)))
        // Reconnect forever with a short, bounded delay; services keep their state meanwhile.
        .reconnect_delay_callback(|attempts| {
            Duration::from_millis((100 * attempts as u64).min(2_000))
        })
        .connect(
            url.split(',')
                .map(str::trim)
                .filter(|part| !part.is_empty())
                .collect::<Vec<_>>(),
        )
        .await
        .map_err(|error| NatsError::Unreachable {
            url: url.to_owned(),
            message: error.to_string(),
        })
}

fn stream_config(spec: &StreamSpec, settings: StreamSettings) -> stream::Config {
    stream::Config {
        name: spec.name.to_owned(),
        subjects: spec.subjects.clone(),
        max_age: spec.max_age.unwrap_or(Duration::ZERO),
        duplicate_window: spec.duplicate_window,
        storage: stream::StorageType::File,
        num_replicas: settings.replicas,
        retention: stream::RetentionPolicy::Limits,
        discard: stream::DiscardPolicy::Old,
        republish: spec
            .republish
            .as_ref()
            .map(|(source, destination)| stream::Republish {
                source: source.clone(),
                destination: destination.clone(),
                headers_only: false,
            }),
        ..Default::default()
    }
}

/// Creates each stream if missing and updates it if its settings drifted.
///
/// # Errors
/// When JetStream refuses a create or update (for instance, more replicas than servers).
pub async fn ensure_streams(
    context: &jetstream::Context,
    specs: &[StreamSpec],
    settings: StreamSettings,
) -> Result<(), NatsError> {
    for spec in specs {
        let wanted = stream_config(spec, settings);
        let stream_error = |message: String| NatsError::Stream {
            stream: spec.name.to_owned(),
            message,
        };
        let mut existing = context
            .get_or_create_stream(wanted.clone())
            .await
            .map_err(|error| stream_error(error.to_string()))?;
        let info = existing
            .info()
            .await
            .map_err(|error| stream_error(error.to_string()))?;
        let current = &info.config;
        let drifted = current.subjects != wanted.subjects
            || current.max_age != wanted.max_age
            || current.duplicate_window != wanted.duplicate_window
            || current.num_replicas != wanted.num_replicas
            || current.republish != wanted.republish;
        if drifted {
            tracing::info!(stream = spec.name, "updating stream settings");
            context
                .update_stream(wanted)
                .await
                .map_err(|error| stream_error(error.to_string()))?;
        }
    }
    Ok(())
}

/// Connects and ensures the three streams with the given settings.
///
/// # Errors
/// As [`connect`] and [`ensure_streams`].
pub async fn connect_and_ensure(
    url: &str,
    client_name: &str,
    settings: StreamSettings,
) -> Result<(async_nats::Client, jetstream::Context), NatsError> {
    let client = connect(url, client_name).await?;
    let context = jetstream::new(client.clone());
    let specs = shared::streams::all_streams(settings.requests_max_age, settings.duplicate_window);
    ensure_streams(&context, &specs, settings).await?;
    Ok((client, context))
}

/// A `/ready` check that asks JetStream for the account info, so it fails when the server or
/// JetStream is down, not only when the socket is closed.
#[must_use]
pub fn ready_check(context: jetstream::Context) -> Check {
    Arc::new(move || -> CheckFuture {
        let context = context.clone();
        Box::pin(async move {
            context
                .query_account()
                .await
                .map(|_| ())
                .map_err(|error| error.to_string())
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[expect(
        clippy::result_large_err,
        reason = "figment's Jail API fixes the error type"
    )]
    fn credentials_come_from_the_environment_one_method_at_a_time() {
        figment::Jail::expect_with(|jail| {
            jail.clear_env();
            let none = NatsCredentials::from_env().map_err(|e| e.to_string())?;
            assert!(none.nats_user.is_none() && none.nats_token.is_none());

            jail.set_env("AXONGATE_NATS_USER", "ingress");
            jail.set_env("AXONGATE_NATS_PASSWORD", "secret");
            let user = NatsCredentials::from_env().map_err(|e| e.to_string())?;
            assert_eq!(user.nats_user.as_deref(), Some("ingress"));

            jail.set_env("AXONGATE_NATS_TOKEN", "t");
            let error = NatsCredentials::from_env().err().map(|e| e.to_string());
            assert!(
                error.is_some_and(|e| e.contains("give one of")),
                "two methods"
            );

            jail.clear_env();
            jail.set_env("AXONGATE_NATS_USER", "ingress");
            let error = NatsCredentials::from_env().err().map(|e| e.to_string());
            assert!(
                error.is_some_and(|e| e.contains("go together")),
                "user alone"
            );
            Ok(())
        });
    }
}
