//! Limits are the operator's. A caller without `update` on every owner's tokens (a member on
//! their own token) may only tighten a token's rpm, tpm, budget, allowed models and expiry —
//! never remove one or widen it — and may not enable a token that is disabled. A token such a
//! caller creates starts from the operator's defaults (the `member_token_defaults` setting,
//! or [`TokenDefaults::built_in`] while none is set) and may only be tighter than them.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use shared::config::{Budget, BudgetPeriod, UserToken};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::tokens::BudgetInput;
use super::validate;
use crate::db;
use crate::error::ApiError;
use crate::state::AppState;

/// The setting holding the defaults of a member's new token.
pub const MEMBER_TOKEN_DEFAULTS: &str = "member_token_defaults";

/// What a new token of a member gets (the value of `member_token_defaults`). A `null` limit
/// means none: the operator's choice.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TokenDefaults {
    #[serde(default)]
    pub rpm: Option<u32>,
    #[serde(default)]
    pub tpm: Option<u32>,
    #[serde(default)]
    pub budget: Option<BudgetInput>,
    /// Empty: every model.
    #[serde(default)]
    pub allowed_models: Vec<String>,
    /// The new token expires this many days after creation; `null`: never.
    #[serde(default)]
    pub expires_in_days: Option<u32>,
}

impl TokenDefaults {
    /// The defaults while no operator has set `member_token_defaults`: 60 requests and 100,000
    /// tokens a minute, 10 USD a month, every model, no expiry.
    #[must_use]
    pub fn built_in() -> Self {
        Self {
            rpm: Some(60),
            tpm: Some(100_000),
            budget: Some(BudgetInput {
                amount: json!("10"),
                currency: "USD".into(),
                period: BudgetPeriod::Monthly,
            }),
            allowed_models: Vec::new(),
            expires_in_days: None,
        }
    }

    /// Parses and validates a setting value.
    ///
    /// # Errors
    /// 400 naming the offending field.
    pub fn parse(value: Value) -> Result<Self, ApiError> {
        let defaults: Self = crate::extract::parse(value)?;
        defaults.limits()?;
        Ok(defaults)
    }

    /// The current defaults: the setting, or the built-in ones.
    ///
    /// # Errors
    /// On a database error, or a stored setting that no longer validates.
    pub async fn load(state: &AppState) -> Result<Self, ApiError> {
        match db::get(&state.pool, "setting", MEMBER_TOKEN_DEFAULTS).await? {
            Some(stored) => {
                let value = stored.data.get("value").cloned().unwrap_or(Value::Null);
                Self::parse(value).map_err(|error| {
                    ApiError::internal(format!("{MEMBER_TOKEN_DEFAULTS}: {error}"))
                })
            }
            None => Ok(Self::built_in()),
        }
    }

    /// The limits a token created now with these defaults has.
    ///
    /// # Errors
    /// 400 naming an invalid field.
    pub fn limits(&self) -> Result<Limits, ApiError> {
        for (field, value) in [("rpm", self.rpm), ("tpm", self.tpm)] {
            if value == Some(0) {
                return Err(ApiError::invalid(
                    field,
                    format!("{field} must be positive (null for no limit)"),
                ));
            }
        }
        for (index, pattern) in self.allowed_models.iter().enumerate() {
            validate::pattern(&format!("allowed_models[{index}]"), pattern)?;
        }
        let budget = match &self.budget {
            Some(budget) => {
                validate::currency("budget.currency", &budget.currency)?;
                Some(Budget {
                    amount: validate::money("budget.amount", &budget.amount)?,
                    currency: budget.currency.clone(),
                    period: budget.period,
                })
            }
            None => None,
        };
        Ok(Limits {
            rpm: self.rpm,
            tpm: self.tpm,
            budget,
            allowed_models: self.allowed_models.clone(),
            expires_at: self
                .expires_in_days
                .map(|days| OffsetDateTime::now_utc() + time::Duration::days(i64::from(days))),
        })
    }

    /// Fills the limits a create body leaves out with these defaults (a field given as `null`
    /// stays `null`, and is then refused as a widening).
    ///
    /// # Errors
    /// Only if a default cannot be rendered.
    pub fn fill(&self, body: &mut Value) -> Result<(), ApiError> {
        let limits = self.limits()?;
        let Some(object) = body.as_object_mut() else {
            return Ok(());
        };
        let defaults = [
            ("rpm", json!(self.rpm)),
            ("tpm", json!(self.tpm)),
            ("budget", serde_json::to_value(&self.budget)?),
            ("allowed_models", json!(self.allowed_models)),
            (
                "expires_at",
                json!(limits.expires_at.and_then(|at| at.format(&Rfc3339).ok())),
            ),
        ];
        for (field, value) in defaults {
            // A form sends every field; `null` (and no model list) means "not set", so the
            // default applies, as it does to a field left out.
            let unset = object.get(field).is_none_or(|given| {
                given.is_null()
                    || (field == "allowed_models" && given.as_array().is_some_and(Vec::is_empty))
            });
            if unset && !value.is_null() {
                object.insert(field.to_owned(), value);
            }
        }
        Ok(())
    }
}

/// The operator-owned limits of a token.
#[derive(Debug, Clone)]
pub struct Limits {
    pub rpm: Option<u32>,
    pub tpm: Option<u32>,
    pub budget: Option<Budget>,
    pub allowed_models: Vec<String>,
    pub expires_at: Option<OffsetDateTime>,
}

impl Limits {
    #[must_use]
    pub fn of(token: &UserToken) -> Self {
        Self {
            rpm: token.rpm,
            tpm: token.tpm,
            budget: token.budget.clone(),
            allowed_models: token.allowed_models.clone(),
            expires_at: token.expires_at,
        }
    }
}

fn widened(field: &str, what: &str) -> ApiError {
    ApiError::Forbidden {
        code: "limits_are_operators",
        message: format!(
            "{field}: {what}; limits are set by an operator, and you may only tighten them"
        ),
    }
}

/// Refuses `after` unless each limit is at least as tight as in `before`.
///
/// # Errors
/// 403 `limits_are_operators` naming the first widened limit.
pub fn require_only_tightened(before: &Limits, after: &Limits) -> Result<(), ApiError> {
    for (field, was, now) in [
        ("rpm", before.rpm, after.rpm),
        ("tpm", before.tpm, after.tpm),
    ] {
        if let Some(was) = was {
            match now {
                None => return Err(widened(field, "cannot be removed")),
                Some(now) if now > was => {
                    return Err(widened(field, &format!("cannot exceed {was}")));
                }
                Some(_) => {}
            }
        }
    }
    if let Some(was) = &before.budget {
        match &after.budget {
            None => return Err(widened("budget", "cannot be removed")),
            Some(now) if now.currency != was.currency || now.period != was.period => {
                return Err(widened("budget", "its currency and period cannot change"));
            }
            Some(now) if now.amount > was.amount => {
                return Err(widened(
                    "budget.amount",
                    &format!("cannot exceed {}", was.amount.to_decimal()),
                ));
            }
            Some(_) => {}
        }
    }
    if !before.allowed_models.is_empty() {
        if after.allowed_models.is_empty() {
            return Err(widened(
                "allowed_models",
                "cannot be emptied (that allows every model)",
            ));
        }
        for pattern in &after.allowed_models {
            let covered = before.allowed_models.contains(pattern)
                || (!pattern.contains('*')
                    && before
                        .allowed_models
                        .iter()
                        .any(|allowed| glob_match(allowed, pattern)));
            if !covered {
                return Err(widened(
                    "allowed_models",
                    &format!("{pattern:?} is not among the models already allowed"),
                ));
            }
        }
    }
    if let Some(was) = before.expires_at {
        match after.expires_at {
            None => return Err(widened("expires_at", "cannot be removed")),
            Some(now) if now > was => return Err(widened("expires_at", "cannot be later")),
            Some(_) => {}
        }
    }
    Ok(())
}

use shared::glob::glob_match;

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(rpm: Option<u32>, models: &[&str]) -> Limits {
        Limits {
            rpm,
            tpm: None,
            budget: None,
            allowed_models: models.iter().map(|m| (*m).to_owned()).collect(),
            expires_at: None,
        }
    }

    #[test]
    fn only_tighter_limits_pass() {
        let before = limits(Some(10), &["gpt-*", "claude-3"]);
        assert!(require_only_tightened(&before, &limits(Some(5), &["gpt-4o"])).is_ok());
        assert!(require_only_tightened(&before, &limits(Some(10), &["claude-3"])).is_ok());
        assert!(require_only_tightened(&before, &limits(None, &["gpt-4o"])).is_err());
        assert!(require_only_tightened(&before, &limits(Some(11), &["gpt-4o"])).is_err());
        assert!(require_only_tightened(&before, &limits(Some(1), &[])).is_err());
        assert!(require_only_tightened(&before, &limits(Some(1), &["*"])).is_err());
        assert!(require_only_tightened(&before, &limits(Some(1), &["claude-*"])).is_err());
        assert!(require_only_tightened(&limits(None, &[]), &limits(Some(3), &["x"])).is_ok());
        assert!(glob_match("gpt-*", "gpt-4o") && !glob_match("gpt-*", "o1"));
    }
}
