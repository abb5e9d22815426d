//! Teams over real HTTP: operators manage every field; a team admin manages only the team's
//! members and the tokens charged to it (for its members, within the operator's defaults);
//! members read the teams they belong to; a team's spend is the sum of its tokens'; teams are
//! applied and exported declaratively.

#![allow(
    clippy::unwrap_used,
    clippy::too_many_lines,
    reason = "a test fails loudly and reads top to bottom"
)]

use crate::common;

use common::Harness;
use serde_json::{Value, json};

async fn apply(harness: &Harness, admin: &str, document: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{}/api/v1/apply", harness.base))
        .bearer_auth(admin)
        .header("content-type", "application/yaml")
        .body(document.to_owned())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn team_admins_manage_members_and_team_tokens_only() {
    let harness = Harness::start().await;
    let admin = harness.admin().await;
    let (_, operator) = harness.user_session(&admin, "olivia", "operator").await;
    let (_, viewer) = harness.user_session(&admin, "victor", "viewer").await;
    let (ann_id, ann) = harness.user_session(&admin, "ann", "member").await;
    let (bob_id, bob) = harness.user_session(&admin, "bob", "member").await;
    let (_, cat) = harness.user_session(&admin, "cat", "member").await;

    // An operator creates the team, naming members by username, with a budget.
    let (status, team) = harness
        .post(
            "/api/v1/teams",
            &operator,
            json!({"id": "eng", "name": "Engineering",
                   "members": [{"username": "ann", "role": "admin"}, {"user_id": bob_id}],
                   "allowed_models": ["gpt-*"],
                   "budget": {"amount": "25.50", "currency": "USD", "period": "monthly"},
                   "rpm": 600}),
        )
        .await;
    assert_eq!(status, 201, "{team}");
    assert_eq!(
        team["members"],
        json!([{"user_id": ann_id, "role": "admin", "username": "ann"},
               {"user_id": bob_id, "role": "member", "username": "bob"}])
    );
    assert_eq!(team["budget"]["amount"], "25.5");
    assert_eq!(team["spend"]["amount"], "0");
    assert_eq!(team["spend"]["period"], "monthly");
    let (status, other) = harness
        .post("/api/v1/teams", &admin, json!({"id": "ops", "name": "Ops"}))
        .await;
    assert_eq!(status, 201, "{other}");
    let (status, body) = harness
        .post(
            "/api/v1/teams",
            &operator,
            json!({"name": "Ghosts", "members": [{"username": "nobody"}]}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["field"], "members[0]");
    let (status, _) = harness
        .post("/api/v1/teams", &ann, json!({"name": "Mine"}))
        .await;
    assert_eq!(status, 403, "a member cannot create a team");

    // Who sees which teams; /auth/me names the caller's.
    let (_, page) = harness.get("/api/v1/teams", &viewer).await;
    assert_eq!(page["total"], 2, "{page}");
    let (_, page) = harness.get("/api/v1/teams", &bob).await;
    assert_eq!(page["total"], 1, "{page}");
    assert_eq!(page["items"][0]["id"], "eng");
    let (_, page) = harness.get("/api/v1/teams", &cat).await;
    assert_eq!(page["total"], 0, "{page}");
    let (status, _) = harness.get("/api/v1/teams/eng", &cat).await;
    assert_eq!(status, 403, "a non-member cannot read the team");
    let (status, _) = harness.get("/api/v1/teams/ops", &ann).await;
    assert_eq!(status, 403, "nor can the admin of another team");
    let (_, me) = harness.get("/api/v1/auth/me", &ann).await;
    assert_eq!(
        me["teams"],
        json!([{"id": "eng", "name": "Engineering", "role": "admin"}])
    );

    // The team admin changes members; not the budget, the models, the limits or the name.
    let version = team["version"].clone();
    for (field, value) in [
        (
            "budget",
            json!({"amount": "1000", "currency": "USD", "period": "monthly"}),
        ),
        ("budget", Value::Null),
        ("allowed_models", json!([])),
        ("rpm", Value::Null),
        ("name", json!("Renamed")),
    ] {
        let (status, body) = harness
            .patch(
                "/api/v1/teams/eng",
                &ann,
                json!({"version": version, field: value}),
            )
            .await;
        assert_eq!(status, 403, "{field}: {body}");
        assert_eq!(body["error"]["code"], "forbidden", "{field}: {body}");
    }
    let (status, body) = harness
        .patch(
            "/api/v1/teams/eng",
            &bob,
            json!({"version": version, "members": []}),
        )
        .await;
    assert_eq!(status, 403, "a plain member cannot change members: {body}");
    let (status, team) = harness
        .patch(
            "/api/v1/teams/eng",
            &ann,
            json!({"version": version, "members": [
                {"user_id": ann_id, "role": "admin"}, {"user_id": bob_id}, {"username": "cat"}]}),
        )
        .await;
    assert_eq!(status, 200, "{team}");
    assert_eq!(team["members"].as_array().unwrap().len(), 3);
    assert_eq!(team["budget"]["amount"], "25.5", "the budget is untouched");
    let (status, _) = harness
        .patch(
            "/api/v1/teams/ops",
            &ann,
            json!({"version": other["version"], "members": [{"user_id": ann_id}]}),
        )
        .await;
    assert_eq!(status, 403, "nor another team's members");

    // Tokens: the team admin creates one for a member, charged to the team.
    let (status, bobs) = harness
        .post(
            "/api/v1/tokens",
            &ann,
            json!({"name": "bob's CI", "owner_user_id": bob_id, "team_id": "eng"}),
        )
        .await;
    assert_eq!(status, 201, "{bobs}");
    assert_eq!(bobs["team_id"], "eng");
    assert_eq!(bobs["owner_user_id"], bob_id);
    assert_eq!(
        bobs["rpm"], 60,
        "a team admin's token gets the operator's member defaults"
    );
    let (status, body) = harness
        .post(
            "/api/v1/tokens",
            &ann,
            json!({"name": "bob's own", "owner_user_id": bob_id}),
        )
        .await;
    assert_eq!(
        status, 403,
        "not a token of a member outside the team: {body}"
    );
    let (status, body) = harness
        .post(
            "/api/v1/tokens",
            &ann,
            json!({"name": "for the admin", "owner_user_id": "admin", "team_id": "eng"}),
        )
        .await;
    assert_eq!(status, 400, "not for someone outside the team: {body}");
    assert_eq!(body["error"]["field"], "team_id");
    let (status, body) = harness
        .post(
            "/api/v1/tokens",
            &ann,
            json!({"name": "ops", "owner_user_id": bob_id, "team_id": "ops"}),
        )
        .await;
    assert_eq!(status, 403, "not charged to another team: {body}");
    let (status, body) = harness
        .post(
            "/api/v1/tokens",
            &cat,
            json!({"name": "cat's", "team_id": "ops"}),
        )
        .await;
    assert_eq!(
        status, 400,
        "a member charges only a team they are in: {body}"
    );
    let (status, cats) = harness
        .post(
            "/api/v1/tokens",
            &cat,
            json!({"name": "cat's", "team_id": "eng"}),
        )
        .await;
    assert_eq!(
        status, 201,
        "a member charges their own token to their team: {cats}"
    );
    let (status, private) = harness
        .post("/api/v1/tokens", &bob, json!({"name": "bob's private"}))
        .await;
    assert_eq!(status, 201, "{private}");

    // The team admin lists their own and the team's tokens, not a member's private one.
    let (_, page) = harness.get("/api/v1/tokens", &ann).await;
    let mut names: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|token| token["name"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["bob's CI", "cat's"], "{page}");
    let (status, _) = harness
        .get(
            &format!("/api/v1/tokens/{}", private["id"].as_str().unwrap()),
            &ann,
        )
        .await;
    assert_eq!(status, 403);

    // Within the limits above them: tighten yes, widen or take off the team no.
    let path = format!("/api/v1/tokens/{}", bobs["id"].as_str().unwrap());
    let (status, tightened) = harness
        .patch(&path, &ann, json!({"version": bobs["version"], "rpm": 10}))
        .await;
    assert_eq!(status, 200, "{tightened}");
    let (status, body) = harness
        .patch(
            &path,
            &ann,
            json!({"version": tightened["version"], "rpm": 1000}),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = harness
        .patch(
            &path,
            &ann,
            json!({"version": tightened["version"], "team_id": null}),
        )
        .await;
    assert_eq!(status, 403, "taking the token off the team: {body}");
    let (status, rotated) = harness
        .post(
            &format!("{path}/rotate"),
            &ann,
            json!({"version": tightened["version"]}),
        )
        .await;
    assert_eq!(status, 200, "{rotated}");
    assert!(rotated["secret"].is_string());

    // A team with tokens charged to it is not deleted; without them it is.
    let (status, body) = harness.delete("/api/v1/teams/eng", &operator).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "team_in_use");
    let (status, _) = harness.delete(&path, &ann).await;
    assert_eq!(status, 204, "the team admin deletes a team token");
    let (status, _) = harness
        .delete(
            &format!("/api/v1/tokens/{}", cats["id"].as_str().unwrap()),
            &operator,
        )
        .await;
    assert_eq!(status, 204);
    let (status, _) = harness.delete("/api/v1/teams/eng", &ann).await;
    assert_eq!(status, 403, "a team admin does not delete the team");
    let (status, _) = harness.delete("/api/v1/teams/eng", &operator).await;
    assert_eq!(status, 204);
    let (_, me) = harness.get("/api/v1/auth/me", &ann).await;
    assert_eq!(me["teams"], json!([]), "{me}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn teams_and_user_limits_apply_and_export() {
    let harness = Harness::start().await;
    let admin = harness.admin().await;
    let (ann_id, _) = harness.user_session(&admin, "ann", "member").await;
    // A user's own budget and allowed models (admins set them).
    let (_, user) = harness
        .get(&format!("/api/v1/users/{ann_id}"), &admin)
        .await;
    let (status, user) = harness
        .patch(
            &format!("/api/v1/users/{ann_id}"),
            &admin,
            json!({"version": user["version"], "allowed_models": ["claude-*"],
                   "budget": {"amount": "5", "currency": "USD", "period": "daily"}}),
        )
        .await;
    assert_eq!(status, 200, "{user}");
    assert_eq!(user["budget"]["amount"], "5");
    assert_eq!(user["allowed_models"], json!(["claude-*"]));

    let document = "teams:\n  - id: research\n    name: Research\n    members:\n      - {username: ann, role: admin}\n    budget: {amount: '100', currency: USD, period: weekly}\n    tpm: 50000\n";
    let (status, report) = apply(&harness, &admin, document).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(
        report["changes"],
        json!([{"entity": "team", "id": "research", "action": "created"}])
    );
    let (status, report) = apply(&harness, &admin, document).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(
        report["changes"],
        json!([]),
        "applying again changes nothing"
    );
    let (status, exported) = harness.get("/api/v1/export?format=json", &admin).await;
    assert_eq!(status, 200, "{exported}");
    assert_eq!(
        exported["teams"],
        json!([{"id": "research", "name": "Research",
                "members": [{"user_id": ann_id, "role": "admin"}], "allowed_models": [],
                "budget": {"amount": "100", "currency": "USD", "period": "weekly"}, "tpm": 50000}])
    );
    // The export applies back to the same state.
    let (status, report) = apply(&harness, &admin, &exported.to_string()).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["changes"], json!([]), "{report}");
    let (status, report) = apply(&harness, &admin, "prune: true\n").await;
    assert_eq!(status, 200, "{report}");
    assert!(
        report["changes"]
            .as_array()
            .unwrap()
            .contains(&json!({"entity": "team", "id": "research", "action": "deleted"})),
        "{report}"
    );
}
