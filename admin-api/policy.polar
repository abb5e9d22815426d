# AxonGate admin API authorization policy (Oso Polar), loaded at start.
#
# Actors are `Principal { id, role }`; resources are `AdminResource { kind, owner }` where `kind` is
# one of: provider, provider_key, model, token, user, setting, usage, audit, config, session,
# key_destination (changing where a provider's keys are sent without entering them again:
# a provider's base_url or allow_private_network, a key's provider), token_defaults (the
# `member_token_defaults` setting: the limits a member's new token gets), rate_limits (the
# `rate_limits` setting: requests and tokens per minute per user, per model, per client
# address), billing (corrections
# of past spend: admins only, as no rule below names it), team (a team's name, budget, allowed
# models and limits), team_members (a team's members);
# `owner` is the owning user id (tokens, usage) or "*" when the request concerns every owner
# (a list without an owner filter); `team` is the team a token is charged to, or the team
# itself, or "" when none. Principals carry `admin_teams` (the teams they are a team admin of)
# and `member_teams` (every team they belong to). Actions: read, create, update, delete, test (provider keys),
# rotate (tokens), apply (declarative config).
#
# Nothing is allowed unless a rule below allows it.

# admin: everything.
allow(actor: Principal, _action: String, _resource: AdminResource) if
    actor.role = "admin";

# operator: providers, keys, models and tokens (any owner, limits included), the defaults of
# members' tokens, the limits by dimension, and reading everything else. Not key_destination: an operator who repoints a
# provider or moves a key must enter its secret again, so a key cannot be sent to a host of
# their choosing without them already knowing it.
allow(actor: Principal, _action: String, resource: AdminResource) if
    actor.role = "operator" and
    resource.kind in ["provider", "provider_key", "model", "token", "token_defaults", "rate_limits", "team", "team_members"];

allow(actor: Principal, "read", resource: AdminResource) if
    actor.role = "operator" and
    resource.kind in ["usage", "audit", "user", "setting", "config"];

# viewer: read-only. Secrets are never readable by anyone after creation, so "no secrets" holds
# by construction; a viewer also cannot create or rotate a token, the only moments one is shown.
allow(actor: Principal, "read", resource: AdminResource) if
    actor.role = "viewer" and
    resource.kind in ["provider", "provider_key", "model", "token", "usage", "audit", "user", "setting", "team", "team_members"];

# member: their own tokens and their own usage, nothing else. Without `update` on every owner's
# tokens, the handlers let a member only tighten a token's limits (rpm, tpm, budget, models,
# expiry), never enable a disabled token, and give a new token the operator's
# `member_token_defaults`.
allow(actor: Principal, _action: String, resource: AdminResource) if
    actor.role = "member" and
    resource.kind = "token" and
    resource.owner = actor.id;

allow(actor: Principal, "read", resource: AdminResource) if
    actor.role = "member" and
    resource.kind = "usage" and
    resource.owner = actor.id;

# team admin: their team's members, and the tokens charged to their team (for any member of
# it; the handlers give such a token the operator's `member_token_defaults` and let a team admin
# only tighten its limits, as a member does); reading the team and its usage. Not the team's
# budget, allowed models or limits: those are set above them.
allow(actor: Principal, _action: String, resource: AdminResource) if
    resource.kind in ["team_members", "token"] and
    resource.team != "" and
    resource.team in actor.admin_teams;

allow(actor: Principal, "read", resource: AdminResource) if
    resource.kind in ["team", "usage"] and
    resource.team != "" and
    resource.team in actor.admin_teams;

# A team's members see the team (its budget and spend).
allow(actor: Principal, "read", resource: AdminResource) if
    resource.kind = "team" and
    resource.team != "" and
    resource.team in actor.member_teams;

# Every signed-in user may see and end their own session and change their own password.
allow(_actor: Principal, _action: String, resource: AdminResource) if
    resource.kind = "session";
