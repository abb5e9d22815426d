//! Config loading: a TOML file (optional) and `AXONGATE_*` environment variables, in that order
//! of precedence (environment wins). The file rejects unknown keys. The environment is shared by
//! every process of a deployment, so each service reads only the variables named after its own
//! fields (`AXONGATE_NATS_URL` for `nats_url`) and leaves the others to their owners.

use std::path::Path;

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use serde::de::DeserializeOwned;

/// A service's config: the field names double as the environment variable names.
pub trait ServiceConfig: DeserializeOwned {
    /// The field names of the config (lower case), used to pick environment variables.
    const FIELDS: &'static [&'static str];

    /// Checks values that types cannot (URLs, ranges) so a bad config fails before any port is
    /// bound. Returns a message naming the offending field.
    ///
    /// # Errors
    /// A one-line description of the first invalid field.
    fn validate(&self) -> Result<(), String> {
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {path}: {message}")]
    File { path: String, message: String },
    #[error("invalid config: {0}")]
    Invalid(String),
}

/// Loads a config from `file` (when given) overlaid with the environment.
///
/// # Errors
/// When the file is missing or malformed, a key is unknown, a value has the wrong type, or
/// validation fails.
pub fn load<C: ServiceConfig>(file: Option<&Path>) -> Result<C, ConfigError> {
    let mut figment = Figment::new();
    if let Some(path) = file {
        if !path.exists() {
            return Err(ConfigError::File {
                path: path.display().to_string(),
                message: "not found".into(),
            });
        }
        figment = figment.merge(Toml::file(path));
    }
    let fields: Vec<&str> = C::FIELDS.to_vec();
    figment = figment.merge(Env::prefixed("AXONGATE_").only(&fields));
    let config: C = figment.extract().map_err(|error| {
        // figment's message names the key and the source (file or environment variable).
        ConfigError::Invalid(error.to_string().replace('\n', "; "))
    })?;
    config.validate().map_err(ConfigError::Invalid)?;
    Ok(config)
}

/// Checks that `value` is a URL with one of the `schemes`, for `validate` implementations.
///
/// # Errors
/// A message naming `field`.
pub fn require_url(field: &str, value: &str, schemes: &[&str]) -> Result<(), String> {
    let scheme_ok = schemes.iter().any(|scheme| {
        value
            .strip_prefix(scheme)
            .and_then(|rest| rest.strip_prefix("://"))
            .is_some_and(|rest| !rest.is_empty())
    });
    if scheme_ok {
        Ok(())
    } else {
        Err(format!(
            "{field} must be a {} URL, got {value:?}",
            schemes.join(" or ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Sample {
        nats_url: String,
        #[serde(default)]
        port: u16,
    }

    impl ServiceConfig for Sample {
        const FIELDS: &'static [&'static str] = &["nats_url", "port"];
        fn validate(&self) -> Result<(), String> {
            require_url("nats_url", &self.nats_url, &["nats"])
        }
    }

    #[test]
    #[expect(
        clippy::result_large_err,
        reason = "figment's Jail API fixes the error type"
    )]
    fn file_then_environment_unknown_file_keys_rejected() {
        figment::Jail::expect_with(|jail| {
            // The test runner's own AXONGATE_* variables must not leak in.
            jail.clear_env();
            jail.create_file("a.toml", "nats_url = \"nats://file:4222\"\nport = 1\n")?;
            jail.set_env("AXONGATE_PORT", "2");
            jail.set_env(
                "AXONGATE_SOMETHING_ELSE",
                "ignored: another service's variable",
            );
            let config: Sample = load(Some(Path::new("a.toml"))).map_err(|e| e.to_string())?;
            assert_eq!(config.nats_url, "nats://file:4222");
            assert_eq!(config.port, 2);

            jail.create_file("b.toml", "nats_url = \"nats://x:1\"\nprot = 1\n")?;
            let error = load::<Sample>(Some(Path::new("b.toml")))
                .err()
                .map(|e| e.to_string());
            assert!(
                error.is_some_and(|e| e.contains("prot")),
                "unknown key is named"
            );

            jail.create_file("c.toml", "nats_url = \"http://x\"\n")?;
            let error = load::<Sample>(Some(Path::new("c.toml")))
                .err()
                .map(|e| e.to_string());
            assert!(error.is_some_and(|e| e.contains("nats_url must be a nats URL")));

            let error = load::<Sample>(Some(Path::new("missing.toml")))
                .err()
                .map(|e| e.to_string());
            assert!(error.is_some_and(|e| e.contains("not found")));
            Ok(())
        });
    }
}
