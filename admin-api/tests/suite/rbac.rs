//! The whole role × endpoint matrix over real HTTP: every endpoint of `routes::ENDPOINTS`,
//! called by an admin, an operator, a viewer, a member and a team admin (walked as a member: on
//! what is not their team's they may do no more), is allowed or denied (403) exactly
//! as the roles are specified — independently of the policy file, which this test checks.

use crate::common;

use admin_api::routes::endpoints;
use common::Harness;
use reqwest::Method;
use serde_json::json;

/// The specification of the roles, written out independently of `policy.polar`.
fn allowed(role: &str, action: &str, kind: &str, path: &str) -> bool {
    if kind == "session" {
        return true;
    }
    match role {
        "admin" => true,
        "operator" => {
            matches!(
                kind,
                "provider" | "provider_key" | "model" | "token" | "team"
            ) || (action == "read"
                && matches!(kind, "usage" | "audit" | "user" | "setting" | "config"))
        }
        "viewer" => {
            action == "read"
                && matches!(
                    kind,
                    "provider"
                        | "provider_key"
                        | "model"
                        | "token"
                        | "usage"
                        | "audit"
                        | "user"
                        | "setting"
                        | "team"
                )
        }
        // Members: their own tokens only. The `{id}` endpoints here name the admin's token.
        // The teams they belong to (none here): the list, answered with none.
        "member" => {
            (kind == "token" && !path.contains("{id}"))
                || kind == "usage"
                || (kind == "team" && action == "read" && !path.contains("{id}"))
        }
        _ => false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_role_on_every_endpoint() {
    let harness = Harness::start().await;
    let admin = harness.admin().await;
    let (_, operator) = harness.user_session(&admin, "olivia", "operator").await;
    let (_, viewer) = harness.user_session(&admin, "victor", "viewer").await;
    let (member_id, member) = harness.user_session(&admin, "mia", "member").await;
    let (status, admins_token) = harness
        .post("/api/v1/tokens", &admin, json!({"name": "admin's"}))
        .await;
    assert_eq!(status, 201);
    let admins_token_id = admins_token["id"].as_str().unwrap().to_owned();

    // A team admin (a member who administers a team) gains nothing on what is not their team's:
    // walked like a member.
    let (tia_id, team_admin) = harness.user_session(&admin, "tia", "member").await;
    let (status, squad) = harness
        .post(
            "/api/v1/teams",
            &admin,
            json!({"id": "squad", "name": "Squad", "members": [{"user_id": tia_id, "role": "admin"}]}),
        )
        .await;
    assert_eq!(status, 201, "{squad}");
    let sessions = [
        ("admin", &admin),
        ("operator", &operator),
        ("viewer", &viewer),
        ("member", &member),
        ("team_admin", &team_admin),
    ];
    let mut walked = 0;
    let mut failures = Vec::new();
    for endpoint in endpoints() {
        let Some(admin_api::permission::Permission { action, kind }) = endpoint.permission else {
            continue;
        };
        if endpoint.path == "/api/v1/auth/logout" {
            continue; // would end the session the rest of the walk needs; tests/auth.rs covers it
        }
        let id = if endpoint.path.starts_with("/api/v1/tokens/") {
            admins_token_id.as_str()
        } else {
            "nope"
        };
        let mut path = endpoint.path.replace("{id}", id);
        if endpoint.method == "DELETE" {
            path.push_str("?version=1"); // stale: an allowed delete answers 409 and changes nothing
        }
        for (role, token) in sessions {
            let method = Method::from_bytes(endpoint.method.as_bytes()).unwrap();
            let body = endpoint.body.then(|| json!({}));
            let (status, body) = harness.call(method, &path, Some(token), body).await;
            let as_role = if role == "team_admin" { "member" } else { role };
            let expect_allowed = allowed(as_role, action.as_str(), kind.as_str(), &endpoint.path);
            let ok = if expect_allowed {
                status != 403 && status != 401 && status != 405 && status < 500
            } else {
                status == 403 && body["error"]["code"] == "forbidden"
            };
            if !ok {
                failures.push(format!(
                    "{role} {} {path}: expected {}, got {status} {body}",
                    endpoint.method,
                    if expect_allowed { "allowed" } else { "403" }
                ));
            }
            walked += 1;
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {walked} checks failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(walked >= 5 * 35, "walked only {walked}");

    // What the admin's token endpoints deny a member, the member's own token allows.
    let (status, own) = harness
        .post("/api/v1/tokens", &member, json!({"name": "mine"}))
        .await;
    assert_eq!(status, 201, "{own}");
    assert_eq!(own["owner_user_id"], member_id);
    let own_id = own["id"].as_str().unwrap();
    let (status, _) = harness
        .get(&format!("/api/v1/tokens/{own_id}"), &member)
        .await;
    assert_eq!(status, 200);
    let (status, page) = harness.get("/api/v1/tokens", &member).await;
    assert_eq!(status, 200);
    assert_eq!(
        page["total"], 1,
        "a member lists only their own tokens: {page}"
    );
    let (status, page) = harness
        .get("/api/v1/tokens?owner_user_id=admin", &member)
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        page["total"], 1,
        "and cannot filter their way to others': {page}"
    );
    let (status, _) = harness
        .post(
            "/api/v1/tokens",
            &member,
            json!({"name": "for admin", "owner_user_id": "admin"}),
        )
        .await;
    assert_eq!(
        status, 403,
        "a member cannot create a token for someone else"
    );
    let (status, rotated) = harness
        .post(
            &format!("/api/v1/tokens/{own_id}/rotate"),
            &member,
            json!({"version": own["version"]}),
        )
        .await;
    assert_eq!(status, 200, "{rotated}");
    let (status, _) = harness
        .patch(
            &format!("/api/v1/tokens/{own_id}"),
            &member,
            json!({"version": rotated["version"], "owner_user_id": "admin"}),
        )
        .await;
    assert_eq!(status, 403, "nor give their token away");
    let (status, _) = harness
        .delete(&format!("/api/v1/tokens/{own_id}"), &member)
        .await;
    assert_eq!(status, 204);
    let (status, page) = harness.get("/api/v1/tokens", &operator).await;
    assert_eq!(status, 200);
    assert_eq!(
        page["total"], 1,
        "operators see every owner's tokens: {page}"
    );
}

// ---- limits are the operator's: one test per role ------------------------------------------

/// A token an operator set limits on, owned by `owner`.
async fn limited_token(harness: &Harness, operator: &str, owner: &str) -> serde_json::Value {
    let (status, token) = harness
        .post(
            "/api/v1/tokens",
            operator,
            json!({
                "name": "limited", "owner_user_id": owner, "rpm": 10, "tpm": 1000,
                "budget": {"amount": "5", "currency": "USD", "period": "monthly"},
                "allowed_models": ["gpt-*", "claude-3-haiku"],
                "expires_at": "2027-01-01T00:00:00Z"
            }),
        )
        .await;
    assert_eq!(status, 201, "{token}");
    token
}

/// Every way of lifting a limit, as PATCH bodies (without `version`).
fn widenings() -> Vec<serde_json::Value> {
    vec![
        json!({"rpm": null}),
        json!({"rpm": 11}),
        json!({"tpm": null}),
        json!({"tpm": 5000}),
        json!({"budget": null}),
        json!({"budget": {"amount": "50", "currency": "USD", "period": "monthly"}}),
        json!({"budget": {"amount": "5", "currency": "USD", "period": "total"}}),
        json!({"allowed_models": []}),
        json!({"allowed_models": ["*"]}),
        json!({"allowed_models": ["gpt-*", "o1"]}),
        json!({"expires_at": null}),
        json!({"expires_at": "2030-01-01T00:00:00Z"}),
    ]
}

fn with_version(body: &serde_json::Value, version: &serde_json::Value) -> serde_json::Value {
    let mut body = body.clone();
    body["version"] = version.clone();
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_may_only_tighten_limits_and_gets_the_operators_defaults() {
    let harness = Harness::start().await;
    let admin = harness.admin().await;
    let (_, operator) = harness.user_session(&admin, "olivia", "operator").await;
    let (member_id, member) = harness.user_session(&admin, "mia", "member").await;
    let token = limited_token(&harness, &operator, &member_id).await;
    let path = format!("/api/v1/tokens/{}", token["id"].as_str().unwrap());
    for widening in widenings() {
        let (status, body) = harness
            .patch(&path, &member, with_version(&widening, &token["version"]))
            .await;
        assert_eq!(status, 403, "{widening}: {body}");
        assert_eq!(body["error"]["code"], "limits_are_operators", "{widening}");
    }
    // Tightening is theirs.
    let (status, tightened) = harness
        .patch(
            &path,
            &member,
            json!({"version": token["version"], "rpm": 5, "tpm": 500,
                   "budget": {"amount": "2.5", "currency": "USD", "period": "monthly"},
                   "allowed_models": ["gpt-4o"], "expires_at": "2026-12-31T00:00:00Z", "name": "mine"}),
        )
        .await;
    assert_eq!(status, 200, "{tightened}");
    assert_eq!(tightened["rpm"], 5);
    // What an operator disabled, a member cannot enable again.
    let (status, disabled) = harness
        .patch(
            &path,
            &operator,
            json!({"version": tightened["version"], "enabled": false}),
        )
        .await;
    assert_eq!(status, 200, "{disabled}");
    let (status, body) = harness
        .patch(
            &path,
            &member,
            json!({"version": disabled["version"], "enabled": true}),
        )
        .await;
    assert_eq!(status, 403, "{body}");

    // A new token of a member starts from the built-in defaults, then from the operator's.
    let (status, created) = harness
        .post("/api/v1/tokens", &member, json!({"name": "free"}))
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["rpm"], 60, "{created}");
    assert_eq!(created["budget"]["amount"], "10", "{created}");
    let (status, body) = harness
        .put(
            "/api/v1/settings/member_token_defaults",
            &operator,
            json!({"value": {"rpm": 7, "tpm": 700, "budget": {"amount": "1", "currency": "USD", "period": "daily"},
                             "allowed_models": ["claude-*"], "expires_in_days": 30}}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, created) = harness
        .post("/api/v1/tokens", &member, json!({"name": "free again"}))
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["rpm"], 7);
    assert_eq!(created["tpm"], 700);
    assert_eq!(created["budget"]["period"], "daily");
    assert_eq!(created["allowed_models"], json!(["claude-*"]));
    assert!(created["expires_at"].is_string(), "{created}");
    // A limit above the default is refused; a field sent empty (as the UI's form sends every
    // field) means "not set" and gets the default, never "no limit".
    let wider = json!({"name": "x", "rpm": 100});
    let (status, body) = harness.post("/api/v1/tokens", &member, wider.clone()).await;
    assert_eq!(status, 403, "{wider}: {body}");
    let (status, created) = harness
        .post(
            "/api/v1/tokens",
            &member,
            json!({"name": "from-the-form", "rpm": null, "tpm": null, "budget": null, "allowed_models": [], "expires_at": null}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["rpm"], 7);
    assert_eq!(created["tpm"], 700);
    assert_eq!(created["budget"]["period"], "daily");
    assert_eq!(created["allowed_models"], json!(["claude-*"]));
    assert!(created["expires_at"].is_string(), "{created}");
    let (status, body) = harness
        .post(
            "/api/v1/tokens",
            &member,
            json!({"name": "tighter", "rpm": 3}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    // Nor may a member change the defaults, or lift the limits by dimension.
    let (status, _) = harness
        .put(
            "/api/v1/settings/member_token_defaults",
            &member,
            json!({"value": {}, "version": 1}),
        )
        .await;
    assert_eq!(status, 403);
    let (status, _) = harness
        .put(
            "/api/v1/settings/rate_limits",
            &member,
            json!({"value": {}}),
        )
        .await;
    assert_eq!(status, 403, "a member may not set the limits by dimension");
}

/// An admin or an operator may widen and remove any limit and re-enable a token, and set the
/// defaults of members' tokens (checked for their shape).
#[expect(clippy::unwrap_used, reason = "a test helper fails loudly")]
async fn widening_is_allowed_for(role: &str) {
    let harness = Harness::start().await;
    let admin = harness.admin().await;
    let (_, session) = if role == "admin" {
        (String::new(), admin.clone())
    } else {
        harness.user_session(&admin, "olivia", role).await
    };
    let (member_id, _) = harness.user_session(&admin, "mia", "member").await;
    let mut token = limited_token(&harness, &session, &member_id).await;
    let path = format!("/api/v1/tokens/{}", token["id"].as_str().unwrap());
    for widening in widenings()
        .into_iter()
        .chain([json!({"enabled": false}), json!({"enabled": true})])
    {
        let (status, body) = harness
            .patch(&path, &session, with_version(&widening, &token["version"]))
            .await;
        assert_eq!(status, 200, "{role} {widening}: {body}");
        token = body;
    }
    let (status, body) = harness
        .put(
            "/api/v1/settings/member_token_defaults",
            &session,
            json!({"value": {"rpm": 0}}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = harness
        .put(
            "/api/v1/settings/member_token_defaults",
            &session,
            json!({"value": {"rpm": 30}}),
        )
        .await;
    assert_eq!(status, 201, "{role}: {body}");
    // And the limits by dimension (checked for their shape).
    for (bad, field) in [
        (json!({"per_user": {"rpm": 0}}), "value.per_user"),
        (json!({"per_minute": 3}), "value"),
        (
            json!({"models": {"not an alias!": {"rpm": 3}}}),
            "value.models",
        ),
    ] {
        let (status, body) = harness
            .put(
                "/api/v1/settings/rate_limits",
                &session,
                json!({"value": bad}),
            )
            .await;
        assert_eq!(status, 400, "{role} {bad}: {body}");
        assert_eq!(body["error"]["field"], field, "{body}");
    }
    let (status, body) = harness
        .put(
            "/api/v1/settings/rate_limits",
            &session,
            json!({"value": {"per_user": {"rpm": 600}, "users": {"mia": {"rpm": 5}},
                             "models": {"gpt-4.1": {"tpm": 1000000}}, "per_address": {"rpm": 120}}}),
        )
        .await;
    assert_eq!(status, 201, "{role}: {body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_may_set_and_lift_limits_and_member_defaults() {
    widening_is_allowed_for("operator").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_may_set_and_lift_limits_and_member_defaults() {
    widening_is_allowed_for("admin").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewer_may_change_no_limit_and_no_default() {
    let harness = Harness::start().await;
    let admin = harness.admin().await;
    let (_, viewer) = harness.user_session(&admin, "victor", "viewer").await;
    let (member_id, _) = harness.user_session(&admin, "mia", "member").await;
    let token = limited_token(&harness, &admin, &member_id).await;
    let path = format!("/api/v1/tokens/{}", token["id"].as_str().unwrap());
    for change in widenings().into_iter().chain([json!({"rpm": 1})]) {
        let (status, body) = harness
            .patch(&path, &viewer, with_version(&change, &token["version"]))
            .await;
        assert_eq!(status, 403, "{change}: {body}");
    }
    let (status, _) = harness
        .put(
            "/api/v1/settings/member_token_defaults",
            &viewer,
            json!({"value": {"rpm": 30}}),
        )
        .await;
    assert_eq!(status, 403);
    let (status, _) = harness
        .put(
            "/api/v1/settings/rate_limits",
            &viewer,
            json!({"value": {"per_user": {"rpm": 30}}}),
        )
        .await;
    assert_eq!(status, 403, "a viewer may not set the limits by dimension");
}
