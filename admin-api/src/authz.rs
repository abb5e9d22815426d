//! Authorization: who may do what. Decisions come from an Oso Polar policy
//! (`admin-api/policy.polar`, built in, or the file named by `policy_file`), behind the small
//! [`Authorizer`] trait so handlers never see Oso.

use oso::{Oso, PolarClass};
use shared::config::Role;

use crate::error::ApiError;
use crate::permission::{Action, Kind};

/// The signed-in user as the policy sees them.
#[derive(Debug, Clone, PolarClass)]
pub struct Principal {
    #[polar(attribute)]
    pub id: String,
    #[polar(attribute)]
    pub role: String,
    /// The teams the user is a team admin of.
    #[polar(attribute)]
    pub admin_teams: Vec<String>,
    /// Every team the user belongs to (as admin or member).
    #[polar(attribute)]
    pub member_teams: Vec<String>,
}

/// What an action is on (`AdminResource` in the policy: `Resource` is a Polar built-in).
#[derive(Debug, Clone, PolarClass)]
#[polar(class_name = "AdminResource")]
pub struct Resource {
    #[polar(attribute)]
    pub kind: String,
    /// The owning user id, `*` for "every owner", empty when the kind has no owner.
    #[polar(attribute)]
    pub owner: String,
    /// The team the entity belongs or is charged to; empty when none.
    #[polar(attribute)]
    pub team: String,
}

/// An `owner` that matches no user: asks whether the actor may act regardless of the owner.
pub const ANY_OWNER: &str = "*";

impl Resource {
    #[must_use]
    pub fn kind(kind: Kind) -> Self {
        Self {
            kind: kind.as_str().to_owned(),
            owner: String::new(),
            team: String::new(),
        }
    }

    #[must_use]
    pub fn owned(kind: Kind, owner: &str) -> Self {
        Self {
            kind: kind.as_str().to_owned(),
            owner: owner.to_owned(),
            team: String::new(),
        }
    }

    /// This resource as charged to `team` (none: unchanged).
    #[must_use]
    pub fn of_team(mut self, team: Option<&str>) -> Self {
        self.team = team.unwrap_or_default().to_owned();
        self
    }
}

impl Principal {
    #[must_use]
    pub fn new(id: &str, role: Role) -> Self {
        Self {
            id: id.to_owned(),
            role: role.as_str().to_owned(),
            admin_teams: Vec::new(),
            member_teams: Vec::new(),
        }
    }

    /// This principal with its team memberships.
    #[must_use]
    pub fn in_teams<'a>(
        mut self,
        teams: impl IntoIterator<Item = (&'a str, shared::config::TeamRole)>,
    ) -> Self {
        for (team, role) in teams {
            if role == shared::config::TeamRole::Admin {
                self.admin_teams.push(team.to_owned());
            }
            self.member_teams.push(team.to_owned());
        }
        self
    }
}

/// Decides whether `actor` may perform `action` on `resource`.
pub trait Authorizer: Send + Sync {
    fn is_allowed(&self, actor: &Principal, action: Action, resource: &Resource) -> bool;
}

/// The built-in policy.
pub const BUILT_IN_POLICY: &str = include_str!("../policy.polar");

/// An [`Authorizer`] backed by an Oso policy.
#[derive(Clone)]
pub struct OsoAuthorizer {
    oso: Oso,
}

impl OsoAuthorizer {
    /// Loads a policy from its source text.
    ///
    /// # Errors
    /// When the policy does not parse or a class cannot be registered.
    pub fn from_policy(source: &str) -> Result<Self, Box<oso::OsoError>> {
        let mut oso = Oso::new();
        oso.register_class(Principal::get_polar_class())
            .map_err(Box::new)?;
        oso.register_class(Resource::get_polar_class())
            .map_err(Box::new)?;
        oso.load_str(source).map_err(Box::new)?;
        Ok(Self { oso })
    }
}

impl Authorizer for OsoAuthorizer {
    fn is_allowed(&self, actor: &Principal, action: Action, resource: &Resource) -> bool {
        match self
            .oso
            .is_allowed(actor.clone(), action.as_str().to_owned(), resource.clone())
        {
            Ok(allowed) => allowed,
            Err(error) => {
                // A policy error denies: failing closed is the only safe default.
                tracing::error!(%error, "policy evaluation failed; denying");
                false
            }
        }
    }
}

/// Requires `action` on every entity of `kind` (no owner involved).
///
/// # Errors
/// 403 when the caller's role may not.
pub fn require_kind(
    state: &crate::state::Inner,
    caller: &crate::auth::Caller,
    action: Action,
    kind: Kind,
) -> Result<(), ApiError> {
    require(
        state.authorizer.as_ref(),
        &caller.principal(),
        action,
        &Resource::kind(kind),
    )
}

/// Requires `action` on `kind` either for every owner or, failing that, for the caller's own;
/// returns whether the caller may act on every owner's entities.
///
/// # Errors
/// 403 when the caller may do neither.
pub fn require_any_or_own(
    state: &crate::state::Inner,
    caller: &crate::auth::Caller,
    action: Action,
    kind: Kind,
) -> Result<bool, ApiError> {
    let principal = caller.principal();
    if state
        .authorizer
        .is_allowed(&principal, action, &Resource::owned(kind, ANY_OWNER))
    {
        return Ok(true);
    }
    require(
        state.authorizer.as_ref(),
        &principal,
        action,
        &Resource::owned(kind, &caller.user_id),
    )?;
    Ok(false)
}

/// Requires `action` on the entity of `kind` that `owner` owns.
///
/// # Errors
/// 403 when the caller may not.
pub fn require_owner(
    state: &crate::state::Inner,
    caller: &crate::auth::Caller,
    action: Action,
    kind: Kind,
    owner: &str,
) -> Result<(), ApiError> {
    require(
        state.authorizer.as_ref(),
        &caller.principal(),
        action,
        &Resource::owned(kind, owner),
    )
}

/// Checks a permission, turning a denial into 403.
///
/// # Errors
/// 403 `forbidden` naming the action and the kind.
pub fn require(
    authorizer: &dyn Authorizer,
    actor: &Principal,
    action: Action,
    resource: &Resource,
) -> Result<(), ApiError> {
    if authorizer.is_allowed(actor, action, resource) {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!(
            "role {} may not {action} {}",
            actor.role, resource.kind
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_policy_decides_by_role_and_owner() {
        let authorizer = OsoAuthorizer::from_policy(BUILT_IN_POLICY).unwrap();
        let admin = Principal::new("a", Role::Admin);
        let operator = Principal::new("o", Role::Operator);
        let viewer = Principal::new("v", Role::Viewer);
        let member = Principal::new("m", Role::Member);
        let check = |actor: &Principal, action: Action, resource: Resource| {
            authorizer.is_allowed(actor, action, &resource)
        };
        assert!(check(&admin, Action::Update, Resource::kind(Kind::User)));
        assert!(check(
            &operator,
            Action::Create,
            Resource::kind(Kind::Provider)
        ));
        assert!(!check(
            &operator,
            Action::Create,
            Resource::kind(Kind::User)
        ));
        assert!(check(&operator, Action::Read, Resource::kind(Kind::User)));
        assert!(check(
            &viewer,
            Action::Read,
            Resource::kind(Kind::ProviderKey)
        ));
        assert!(!check(
            &viewer,
            Action::Create,
            Resource::kind(Kind::Provider)
        ));
        assert!(check(
            &member,
            Action::Create,
            Resource::owned(Kind::Token, "m")
        ));
        assert!(!check(
            &member,
            Action::Read,
            Resource::owned(Kind::Token, "x")
        ));
        assert!(!check(
            &member,
            Action::Read,
            Resource::owned(Kind::Token, ANY_OWNER)
        ));
        assert!(!check(&member, Action::Read, Resource::kind(Kind::Model)));
        assert!(check(&member, Action::Read, Resource::kind(Kind::Session)));
    }
}
