//! Login, the first admin, must-change-password, logout, throttling and auditing.

use crate::common;

use common::{ADMIN_PASSWORD, Harness};
use kit::testing::wait_until;
use reqwest::Method;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_admin_must_change_password_and_logout_revokes() {
    let harness = Harness::start().await;
    // The first admin appears once the projector folded the bootstrap events.
    harness.wait_for_user_in_view("admin").await;
    let http = harness.http.clone();
    let url = format!("{}/api/v1/auth/login", harness.base);
    let session = wait_until(kit::testing::liveness(), "first admin", || {
        let (http, url) = (http.clone(), url.clone());
        async move {
            let response = http
                .post(&url)
                .json(&json!({"username": "admin", "password": "admin123"}))
                .send()
                .await
                .ok()?;
            (response.status().as_u16() == 200).then_some(())?;
            response.json::<serde_json::Value>().await.ok()
        }
    })
    .await;
    assert_eq!(session["user"]["must_change_password"], true);
    assert_eq!(session["user"]["role"], "admin");
    let token = session["token"].as_str().unwrap().to_owned();

    // Everything but me, password and logout is refused until the password changes.
    let (status, body) = harness.get("/api/v1/providers", &token).await;
    assert_eq!(status, 403);
    assert_eq!(body["error"]["code"], "password_change_required");
    let (status, me) = harness.get("/api/v1/auth/me", &token).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["username"], "admin");

    let (status, body) = harness
        .post(
            "/api/v1/auth/password",
            &token,
            json!({"current_password": "wrong-one", "new_password": ADMIN_PASSWORD}),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["field"], "current_password");
    let (status, body) = harness
        .post(
            "/api/v1/auth/password",
            &token,
            json!({"current_password": "admin123", "new_password": "short"}),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["field"], "new_password");
    // Another session opened before the change ends with it.
    let other = harness.login("admin", "admin123").await;
    let other_token = other["token"].as_str().unwrap();
    let (status, body) = harness
        .post(
            "/api/v1/auth/password",
            &token,
            json!({"current_password": "admin123", "new_password": ADMIN_PASSWORD}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["must_change_password"], false);

    let (status, _) = harness.get("/api/v1/auth/me", other_token).await;
    assert_eq!(
        status, 401,
        "a password change signs out the other sessions"
    );

    // The same session may now do everything.
    let (status, body) = harness.get("/api/v1/providers", &token).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["total"], 0);

    // The old password no longer works; the new one does.
    let (status, _) = harness
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"username": "admin", "password": "admin123"})),
        )
        .await;
    assert_eq!(status, 401);
    let second = harness.login("admin", ADMIN_PASSWORD).await;
    assert_eq!(second["user"]["must_change_password"], false);

    // Logout really revokes.
    let (status, _) = harness
        .call(Method::POST, "/api/v1/auth/logout", Some(&token), None)
        .await;
    assert_eq!(status, 204);
    let (status, body) = harness.get("/api/v1/auth/me", &token).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], "unauthenticated");
    let (status, _) = harness
        .get("/api/v1/auth/me", second["token"].as_str().unwrap())
        .await;
    assert_eq!(status, 200, "another session stays valid");

    // No session, or a made-up one: 401.
    let (status, _) = harness
        .call(Method::GET, "/api/v1/providers", None, None)
        .await;
    assert_eq!(status, 401);
    let (status, _) = harness.get("/api/v1/providers", "axs-made-up").await;
    assert_eq!(status, 401);

    // The audit stream has the logins, the failure, the password change and the logout.
    let messages = harness.stream_messages("AXONGATE_AUDIT").await;
    let types: Vec<String> = messages
        .iter()
        .map(|(_, payload)| {
            serde_json::from_str::<serde_json::Value>(payload).unwrap()["type"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    for wanted in [
        "login.succeeded",
        "login.failed",
        "password.changed",
        "logout",
    ] {
        assert!(
            types.iter().any(|kind| kind == wanted),
            "{wanted} missing from {types:?}"
        );
    }
    // And the audit view shows them (the projector folds AXONGATE_AUDIT too).
    let second_token = second["token"].as_str().unwrap();
    wait_until(
        kit::testing::liveness(),
        "the logout in the audit view",
        || async {
            let (status, audit) = harness.get("/api/v1/audit?type=logout", second_token).await;
            assert_eq!(status, 200, "{audit}");
            (audit["total"].as_i64().unwrap() >= 1).then_some(())
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_failures_slow_down_and_are_audited() {
    let harness = Harness::start().await;
    harness.admin().await;
    let wrong = json!({"username": "admin", "password": "not-the-password"});
    for _ in 0..3 {
        let (status, body) = harness
            .call(
                Method::POST,
                "/api/v1/auth/login",
                None,
                Some(wrong.clone()),
            )
            .await;
        assert_eq!(status, 401, "{body}");
        assert_eq!(body["error"]["code"], "invalid_credentials");
    }
    // Now even the right password must wait.
    let right = json!({"username": "admin", "password": ADMIN_PASSWORD});
    let (status, body) = harness
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(right.clone()),
        )
        .await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["code"], "too_many_attempts");
    // Another username is not affected.
    let (status, _) = harness
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"username": "nobody", "password": "x"})),
        )
        .await;
    assert_eq!(status, 401);

    let failures = harness
        .stream_messages("AXONGATE_AUDIT")
        .await
        .into_iter()
        .filter(|(subject, _)| subject == "axongate.audit.login_failed")
        .count();
    assert!(
        failures >= 5,
        "every failure is audited, throttled ones too: {failures}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_processes_starting_at_once_create_one_admin() {
    let nats = kit::testing::NatsServer::start().await;
    let postgres_url = kit::testing::fresh_postgres_database().await;
    let mut config = common::test_config(&nats.url, &postgres_url);
    config.clickhouse_database = kit::testing::unique_name("axg_admin_test");
    let projector = common::spawn_projector(&nats.url, &postgres_url, &config.clickhouse_database);
    // Three admin-api processes start at once against an empty bus and database.
    let started =
        futures::future::join_all((0..3).map(|_| common::spawn_admin_api(config.clone()))).await;
    let http = reqwest::Client::new();
    let (base, _) = &started[0];
    let url = format!("{base}/api/v1/auth/login");
    common::wait_for_user_in_view(&postgres_url, "admin").await;
    wait_until(kit::testing::liveness(), "the first admin", || {
        let (http, url) = (http.clone(), url.clone());
        async move {
            let response = http
                .post(&url)
                .json(&json!({"username": "admin", "password": "admin123"}))
                .send()
                .await
                .ok()?;
            (response.status().as_u16() == 200).then_some(())
        }
    })
    .await;
    for (base, _) in &started {
        let url = format!("{base}/health");
        wait_until(kit::testing::liveness(), "every admin-api", || {
            let (http, url) = (http.clone(), url.clone());
            async move {
                http.get(&url)
                    .send()
                    .await
                    .ok()
                    .filter(|r| r.status().is_success())
                    .map(|_| ())
            }
        })
        .await;
    }
    let messages = common::stream_messages(&nats.url, "AXONGATE_CONFIG").await;
    let count = |subject: &str| messages.iter().filter(|(s, _)| s == subject).count();
    assert_eq!(
        count("axongate.config.user.admin"),
        1,
        "exactly one admin: {messages:?}"
    );
    assert_eq!(count("axongate.config.role_binding.admin"), 1);
    assert_eq!(messages.len(), 2);
    for (_, task) in started {
        task.abort();
    }
    projector.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_password_can_come_from_the_environment() {
    let harness = Harness::start_with(|config| {
        config.admin_initial_password = Some("from-the-environment".into())
    })
    .await;
    harness.wait_for_user_in_view("admin").await;
    let http = harness.http.clone();
    let url = format!("{}/api/v1/auth/login", harness.base);
    let session = wait_until(kit::testing::liveness(), "first admin", || {
        let (http, url) = (http.clone(), url.clone());
        async move {
            let response = http
                .post(&url)
                .json(&json!({"username": "admin", "password": "from-the-environment"}))
                .send()
                .await
                .ok()?;
            (response.status().as_u16() == 200).then_some(())?;
            response.json::<serde_json::Value>().await.ok()
        }
    })
    .await;
    assert_eq!(
        session["user"]["must_change_password"], true,
        "it must still be changed"
    );
    let (status, _) = harness
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"username": "admin", "password": "admin123"})),
        )
        .await;
    assert_eq!(status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabling_or_deleting_a_user_ends_their_sessions() {
    let harness = Harness::start().await;
    let admin = harness.admin().await;
    let (user_id, session) = harness.user_session(&admin, "dora", "viewer").await;
    let (status, user) = harness
        .get(&format!("/api/v1/users/{user_id}"), &admin)
        .await;
    assert_eq!(status, 200);
    let (status, _) = harness.get("/api/v1/providers", &session).await;
    assert_eq!(status, 200);
    let (status, body) = harness
        .patch(
            &format!("/api/v1/users/{user_id}"),
            &admin,
            json!({"version": user["version"], "enabled": false}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = harness.get("/api/v1/providers", &session).await;
    assert_eq!(status, 401);
    let (status, _) = harness
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"username": "dora", "password": "changed-password"})),
        )
        .await;
    assert_eq!(status, 401, "a disabled user cannot sign in");
    let (status, _) = harness
        .delete(&format!("/api/v1/users/{user_id}"), &admin)
        .await;
    assert_eq!(status, 204);
    let (status, bindings) = harness.get("/api/v1/role-bindings", &admin).await;
    assert_eq!(status, 200);
    assert_eq!(
        bindings["total"], 1,
        "the role binding went with the user: {bindings}"
    );
}
