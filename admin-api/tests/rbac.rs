//! The whole role × endpoint matrix over real HTTP: every endpoint of `routes::ENDPOINTS`,
//! called by an admin, an operator, a viewer and a member, is allowed or denied (403) exactly
//! as the roles are specified — independently of the policy file, which this test checks.

mod common;

use admin_api::routes::ENDPOINTS;
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
            matches!(kind, "provider" | "provider_key" | "model" | "token")
                || (action == "read"
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
                )
        }
        // Members: their own tokens only. The `{id}` endpoints here name the admin's token.
        "member" => (kind == "token" && !path.contains("{id}")) || kind == "usage",
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

    let sessions = [
        ("admin", &admin),
        ("operator", &operator),
        ("viewer", &viewer),
        ("member", &member),
    ];
    let mut walked = 0;
    let mut failures = Vec::new();
    for endpoint in ENDPOINTS {
        let Some((action, kind)) = endpoint.permission else {
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
            let expect_allowed = allowed(role, action, kind, endpoint.path);
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
    assert!(walked >= 4 * 35, "walked only {walked}");

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
