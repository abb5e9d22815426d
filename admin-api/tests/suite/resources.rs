//! Each resource's life cycle over HTTP, read-your-writes, validation errors, and 409 on a
//! concurrent edit.

use crate::common;

use common::Harness;
use serde_json::{Value, json};

fn version(value: &Value) -> u64 {
    value["version"]
        .as_u64()
        .unwrap_or_else(|| panic!("no version in {value}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn life_cycle_of_every_resource() {
    let harness = Harness::start().await;
    let admin = harness.admin().await;

    // ---- providers
    let (status, body) = harness
        .post(
            "/api/v1/providers",
            &admin,
            json!({"name": "bad", "protocol": "openai", "base_url": "ftp://x"}),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["field"], "base_url");
    let (status, body) = harness
        .post(
            "/api/v1/providers",
            &admin,
            json!({"name": "bad", "protocol": "openai", "base_url": "https://x.example", "extra_headers": {"Authorization": "Bearer x"}}),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["field"], "extra_headers.Authorization");
    let (status, body) = harness
        .post(
            "/api/v1/providers",
            &admin,
            json!({"name": "x", "protocol": "grpc", "base_url": "https://x"}),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["field"], "protocol", "{body}");
    let (status, body) = harness
        .post(
            "/api/v1/providers",
            &admin,
            json!({"protocol": "openai", "base_url": "https://x"}),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["field"], "name", "{body}");

    let (status, provider) = harness
        .post(
            "/api/v1/providers",
            &admin,
            json!({"id": "openai", "name": "OpenAI", "protocol": "openai", "base_url": "https://api.openai.com/v1/"}),
        )
        .await;
    assert_eq!(status, 201, "{provider}");
    assert_eq!(provider["base_url"], "https://api.openai.com/v1");
    assert_eq!(provider["updated_by"], "admin");
    // Read your writes: the view already has it.
    let (status, fetched) = harness.get("/api/v1/providers/openai", &admin).await;
    assert_eq!(status, 200);
    assert_eq!(version(&fetched), version(&provider));
    let (status, body) = harness
        .post("/api/v1/providers", &admin, json!({"id": "openai", "name": "again", "protocol": "openai", "base_url": "https://x.example"}))
        .await;
    assert_eq!(status, 409, "{body}");

    let (status, updated) = harness
        .patch(
            "/api/v1/providers/openai",
            &admin,
            json!({"version": version(&provider), "name": "OpenAI EU"}),
        )
        .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["name"], "OpenAI EU");
    assert_eq!(
        updated["protocol"], "openai",
        "fields not named keep their value"
    );
    assert!(version(&updated) > version(&provider));
    let (status, stale) = harness
        .patch(
            "/api/v1/providers/openai",
            &admin,
            json!({"version": version(&provider), "name": "stale"}),
        )
        .await;
    assert_eq!(status, 409, "{stale}");
    assert_eq!(stale["error"]["code"], "version_conflict");
    assert_eq!(stale["error"]["current_version"], version(&updated));
    let (status, body) = harness
        .patch(
            "/api/v1/providers/openai",
            &admin,
            json!({"name": "no version"}),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["field"], "version");

    let (status, _) = harness
        .post("/api/v1/providers", &admin, json!({"id": "claude", "name": "Anthropic", "protocol": "anthropic", "base_url": "https://api.anthropic.com/v1"}))
        .await;
    assert_eq!(status, 201);
    let (_, page) = harness
        .get("/api/v1/providers?protocol=anthropic", &admin)
        .await;
    assert_eq!(page["total"], 1);
    assert_eq!(page["items"][0]["id"], "claude");
    let (_, page) = harness
        .get("/api/v1/providers?limit=1&offset=1", &admin)
        .await;
    assert_eq!(page["total"], 2);
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    let (_, page) = harness.get("/api/v1/providers?q=EU", &admin).await;
    assert_eq!(page["total"], 1);
    let (status, body) = harness.get("/api/v1/providers?colour=red", &admin).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["field"], "colour");

    // ---- provider keys
    let (status, body) = harness
        .post(
            "/api/v1/provider-keys",
            &admin,
            json!({"provider_id": "nope", "name": "k", "secret": "sk-x"}),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["field"], "provider_id");
    let (status, key) = harness
        .post(
            "/api/v1/provider-keys",
            &admin,
            json!({"provider_id": "openai", "name": "main", "secret": "sk-live-abcdefgh1234"}),
        )
        .await;
    assert_eq!(status, 201, "{key}");
    assert!(key.get("secret").is_none(), "{key}");
    assert_eq!(key["last_four"], "1234");
    assert_eq!(key["health"], Value::Null);
    let key_id = key["id"].as_str().unwrap().to_owned();
    let (status, key2) = harness
        .patch(
            &format!("/api/v1/provider-keys/{key_id}"),
            &admin,
            json!({"version": version(&key), "secret": "sk-live-rotated9876"}),
        )
        .await;
    assert_eq!(status, 200, "{key2}");
    assert_eq!(key2["last_four"], "9876");
    assert_eq!(key2["name"], "main");
    let (_, page) = harness
        .get("/api/v1/provider-keys?provider_id=openai", &admin)
        .await;
    assert_eq!(page["total"], 1);

    // ---- models
    let model_body = json!({
        "id": "gpt", "alias": "gpt-4o",
        "routes": [{"provider_id": "openai", "upstream_model": "gpt-4o-2024-08-06", "key_ids": [key_id], "weight": 2}],
        "price": {"currency": "USD", "input_per_million": "2.5", "output_per_million": "10"},
        "context_window": 128000
    });
    let mut bad = model_body.clone();
    bad["price"]["input_per_million"] = json!("two");
    let (status, body) = harness.post("/api/v1/models", &admin, bad).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["field"], "price.input_per_million");
    let mut bad = model_body.clone();
    bad["routes"][0]["provider_id"] = json!("missing");
    let (status, body) = harness.post("/api/v1/models", &admin, bad).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["field"], "routes[0].provider_id");
    let (status, model) = harness
        .post("/api/v1/models", &admin, model_body.clone())
        .await;
    assert_eq!(status, 201, "{model}");
    assert_eq!(model["price"]["input_per_million"], "2.5");
    assert_eq!(model["price"]["version"], 1);
    assert_eq!(model["routes"][0]["weight"], 2);
    let mut taken = model_body.clone();
    taken["id"] = json!("other");
    let (status, body) = harness.post("/api/v1/models", &admin, taken).await;
    assert_eq!(status, 409);
    assert_eq!(body["error"]["code"], "alias_taken");
    let (status, model2) = harness
        .patch(
            "/api/v1/models/gpt",
            &admin,
            json!({"version": version(&model), "price": {"currency": "USD", "input_per_million": "2.5", "output_per_million": "12"}}),
        )
        .await;
    assert_eq!(status, 200, "{model2}");
    assert_eq!(model2["price"]["output_per_million"], "12");
    assert_eq!(
        model2["price"]["version"], 2,
        "a changed price gets a new price version"
    );
    let (status, model3) = harness
        .patch(
            "/api/v1/models/gpt",
            &admin,
            json!({"version": version(&model2), "enabled": false}),
        )
        .await;
    assert_eq!(status, 200, "{model3}");
    assert_eq!(
        model3["price"]["version"], 2,
        "an unchanged price keeps its version"
    );
    assert_eq!(model3["enabled"], false);
    // A retry policy: bounded, kept as given, and shown back.
    for (retry, field) in [
        (json!({"max_attempts": 0}), "retry.max_attempts"),
        (json!({"retry_on": [200]}), "retry.retry_on"),
        (
            json!({"breaker_cooldown_secs": 86_400}),
            "retry.breaker_cooldown_secs",
        ),
    ] {
        let (status, body) = harness
            .patch(
                "/api/v1/models/gpt",
                &admin,
                json!({"version": version(&model3), "retry": retry}),
            )
            .await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["error"]["field"], field, "{body}");
    }
    let (status, body) = harness
        .patch(
            "/api/v1/models/gpt",
            &admin,
            json!({"version": version(&model3), "retry": {"retries": 3}}),
        )
        .await;
    assert_eq!(status, 400, "an unknown policy field is refused: {body}");
    let policy = json!({"max_attempts": 2, "retry_on": [429, 503], "breaker_failures": 3,
                        "breaker_cooldown_secs": 10, "bench_when_all_open": true});
    let (status, model4) = harness
        .patch(
            "/api/v1/models/gpt",
            &admin,
            json!({"version": version(&model3), "retry": policy}),
        )
        .await;
    assert_eq!(status, 200, "{model4}");
    assert_eq!(model4["retry"], policy);
    // A response cache: a TTL of 1 s to 30 days, no unknown field, kept as given.
    for cache in [json!({"ttl_secs": 0}), json!({"ttl_secs": 2_592_001})] {
        let (status, body) = harness
            .patch(
                "/api/v1/models/gpt",
                &admin,
                json!({"version": version(&model4), "response_cache": cache}),
            )
            .await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["error"]["field"], "response_cache.ttl_secs", "{body}");
    }
    let (status, body) = harness
        .patch(
            "/api/v1/models/gpt",
            &admin,
            json!({"version": version(&model4), "response_cache": {"ttl_secs": 60, "shared": true}}),
        )
        .await;
    assert_eq!(status, 400, "an unknown cache field is refused: {body}");
    let cache = json!({"ttl_secs": 600, "across_tokens": true});
    let (status, model5) = harness
        .patch(
            "/api/v1/models/gpt",
            &admin,
            json!({"version": version(&model4), "response_cache": cache}),
        )
        .await;
    assert_eq!(status, 200, "{model5}");
    assert_eq!(model5["response_cache"], cache);
    // A routing strategy: a session header only for cache affinity, a header name, never a
    // credential header; the default strategy is not stored.
    for (routing, why) in [
        (
            json!({"strategy": "latency", "session_header": "x-session-id"}),
            "header without affinity",
        ),
        (
            json!({"strategy": "cache_affinity", "session_header": "bad header"}),
            "not a header name",
        ),
        (
            json!({"strategy": "cache_affinity", "session_header": "Authorization"}),
            "a credential header",
        ),
    ] {
        let (status, body) = harness
            .patch(
                "/api/v1/models/gpt",
                &admin,
                json!({"version": version(&model5), "routing": routing}),
            )
            .await;
        assert_eq!(status, 400, "{why}: {body}");
        assert_eq!(body["error"]["field"], "routing.session_header", "{body}");
    }
    let (status, body) = harness
        .patch(
            "/api/v1/models/gpt",
            &admin,
            json!({"version": version(&model5), "routing": {"strategy": "round_robin"}}),
        )
        .await;
    assert_eq!(status, 400, "an unknown strategy is refused: {body}");
    let routing = json!({"strategy": "cache_affinity", "session_header": "x-session-id"});
    let (status, model6) = harness
        .patch(
            "/api/v1/models/gpt",
            &admin,
            json!({"version": version(&model5), "routing": routing}),
        )
        .await;
    assert_eq!(status, 200, "{model6}");
    assert_eq!(model6["routing"], routing);
    let (status, model7) = harness
        .patch(
            "/api/v1/models/gpt",
            &admin,
            json!({"version": version(&model6), "routing": {"strategy": "weighted"}}),
        )
        .await;
    assert_eq!(status, 200, "{model7}");
    assert!(model7.get("routing").is_none_or(Value::is_null), "{model7}");

    // ---- tokens
    let (status, body) = harness
        .post(
            "/api/v1/tokens",
            &admin,
            json!({"name": "t", "allowed_models": ["gpt 4"]}),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["field"], "allowed_models[0]");
    let (status, token) = harness
        .post(
            "/api/v1/tokens",
            &admin,
            json!({"name": "ci", "allowed_models": ["gpt-*"], "rpm": 60, "tpm": 100000,
                   "budget": {"amount": "10.5", "currency": "USD", "period": "monthly"},
                   "expires_at": "2030-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(status, 201, "{token}");
    let secret = token["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("axg-"));
    assert_eq!(token["last_four"], secret[secret.len() - 4..]);
    assert!(token.get("hash").is_none());
    assert_eq!(token["owner_user_id"], "admin");
    assert_eq!(token["budget"]["amount"], "10.5");
    let token_id = token["id"].as_str().unwrap().to_owned();
    let (_, fetched) = harness
        .get(&format!("/api/v1/tokens/{token_id}"), &admin)
        .await;
    assert!(fetched.get("secret").is_none(), "shown once only");
    let (status, rotated) = harness
        .post(
            &format!("/api/v1/tokens/{token_id}/rotate"),
            &admin,
            json!({"version": version(&token)}),
        )
        .await;
    assert_eq!(status, 200, "{rotated}");
    assert_ne!(rotated["secret"], json!(secret));
    let (status, disabled) = harness
        .patch(
            &format!("/api/v1/tokens/{token_id}"),
            &admin,
            json!({"version": version(&rotated), "enabled": false}),
        )
        .await;
    assert_eq!(status, 200, "{disabled}");
    assert_eq!(disabled["enabled"], false);
    assert_eq!(disabled["last_four"], rotated["last_four"]);

    // ---- settings
    let (status, setting) = harness
        .call(
            reqwest::Method::PUT,
            "/api/v1/settings/motd",
            Some(&admin),
            Some(json!({"value": "hello"})),
        )
        .await;
    assert_eq!(status, 201, "{setting}");
    let (status, _) = harness
        .call(
            reqwest::Method::PUT,
            "/api/v1/settings/motd",
            Some(&admin),
            Some(json!({"value": "again"})),
        )
        .await;
    assert_eq!(status, 409);
    let (status, setting2) = harness
        .call(
            reqwest::Method::PUT,
            "/api/v1/settings/motd",
            Some(&admin),
            Some(json!({"value": {"text": "hi"}, "version": version(&setting)})),
        )
        .await;
    assert_eq!(status, 200, "{setting2}");
    assert_eq!(setting2["value"]["text"], "hi");

    // ---- users
    let (status, user) = harness
        .post(
            "/api/v1/users",
            &admin,
            json!({"username": "olga", "password": "initial-password", "role": "operator"}),
        )
        .await;
    assert_eq!(status, 201, "{user}");
    assert_eq!(user["role"], "operator");
    assert_eq!(user["must_change_password"], true);
    assert!(user.get("password_hash").is_none());
    let (status, body) = harness
        .post(
            "/api/v1/users",
            &admin,
            json!({"username": "olga", "password": "initial-password"}),
        )
        .await;
    assert_eq!(status, 409);
    assert_eq!(body["error"]["code"], "username_taken");
    let user_id = user["id"].as_str().unwrap().to_owned();
    let (status, user2) = harness
        .patch(
            &format!("/api/v1/users/{user_id}"),
            &admin,
            json!({"version": version(&user), "role": "viewer"}),
        )
        .await;
    assert_eq!(status, 200, "{user2}");
    assert_eq!(user2["role"], "viewer");
    let (status, body) = harness
        .patch(
            "/api/v1/users/admin",
            &admin,
            json!({"version": 999, "role": "viewer"}),
        )
        .await;
    assert_eq!(status, 400, "an admin cannot demote themself: {body}");
    let (_, bindings) = harness.get("/api/v1/role-bindings", &admin).await;
    assert_eq!(bindings["total"], 2);

    // ---- deletes
    let (status, body) = harness
        .delete(&format!("/api/v1/provider-keys/{key_id}"), &admin)
        .await;
    assert_eq!(status, 409, "a key a model routes to stays: {body}");
    assert_eq!(body["error"]["code"], "in_use");
    let (status, body) = harness.delete("/api/v1/providers/claude", &admin).await;
    assert_eq!(status, 204, "an unused provider goes: {body}");
    let (status, body) = harness.delete("/api/v1/providers/openai", &admin).await;
    assert_eq!(status, 409, "a provider with keys stays: {body}");
    assert_eq!(body["error"]["code"], "in_use");
    let (status, _) = harness
        .delete(
            &format!("/api/v1/tokens/{token_id}?version={}", version(&token)),
            &admin,
        )
        .await;
    assert_eq!(status, 409, "a stale delete is refused");
    for path in [
        format!("/api/v1/tokens/{token_id}"),
        "/api/v1/models/gpt".to_owned(),
        format!("/api/v1/provider-keys/{key_id}"),
        "/api/v1/providers/openai".to_owned(),
        "/api/v1/settings/motd".to_owned(),
        format!("/api/v1/users/{user_id}"),
    ] {
        let (status, body) = harness.delete(&path, &admin).await;
        assert_eq!(status, 204, "{path}: {body}");
        let (status, body) = harness.get(&path, &admin).await;
        assert_eq!(status, 404, "{path}: {body}");
        assert_eq!(body["error"]["code"], "not_found");
    }

    // ---- audit: who changed what, with redacted before/after
    let (status, audit) = harness
        .get("/api/v1/audit?entity=provider&entity_id=openai", &admin)
        .await;
    assert_eq!(status, 200, "{audit}");
    let items = audit["items"].as_array().unwrap();
    assert_eq!(items.len(), 3, "created, updated, deleted: {audit}");
    assert_eq!(items[0]["type"], "provider.deleted", "newest first");
    assert_eq!(items[1]["before"]["name"], "OpenAI");
    assert_eq!(items[1]["after"]["name"], "OpenAI EU");
    assert_eq!(items[1]["actor"], "admin");
    let (_, audit) = harness
        .get(
            &format!("/api/v1/audit?entity=provider_key&entity_id={key_id}&limit=1&offset=1"),
            &admin,
        )
        .await;
    assert_eq!(audit["total"], 3);
    assert_eq!(audit["items"][0]["after"]["secret"], "[redacted]");
    let (_, audit) = harness
        .get("/api/v1/audit?type=token.revealed", &admin)
        .await;
    assert_eq!(audit["total"], 2, "created and rotated");
    let (_, audit) = harness
        .get(
            "/api/v1/audit?from=2000-01-01T00:00:00Z&to=2001-01-01T00:00:00Z",
            &admin,
        )
        .await;
    assert_eq!(audit["total"], 0);
    let (status, body) = harness.get("/api/v1/audit?from=yesterday", &admin).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["field"], "from");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_edits_of_one_version_get_one_conflict() {
    let harness = Harness::start().await;
    let admin = harness.admin().await;
    let (status, provider) = harness
        .post(
            "/api/v1/providers",
            &admin,
            json!({"id": "p", "name": "P", "protocol": "openai", "base_url": "https://p.example"}),
        )
        .await;
    assert_eq!(status, 201);
    let read = version(&provider);
    let first = harness.patch(
        "/api/v1/providers/p",
        &admin,
        json!({"version": read, "name": "first"}),
    );
    let second = harness.patch(
        "/api/v1/providers/p",
        &admin,
        json!({"version": read, "name": "second"}),
    );
    let ((status_a, body_a), (status_b, body_b)) = tokio::join!(first, second);
    let mut statuses = [status_a, status_b];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 409], "{body_a} {body_b}");
    let (winner, loser) = if status_a == 200 {
        (body_a, body_b)
    } else {
        (body_b, body_a)
    };
    assert_eq!(loser["error"]["current_version"], winner["version"]);
    let (_, now) = harness.get("/api/v1/providers/p", &admin).await;
    assert_eq!(now["name"], winner["name"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_lists_every_endpoint_and_unknown_routes_get_the_error_shape() {
    let harness = Harness::start().await;
    let (status, document) = harness
        .call(reqwest::Method::GET, "/api/v1/openapi.json", None, None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(document["openapi"], "3.1.0");
    for endpoint in admin_api::routes::endpoints() {
        let operation = &document["paths"][&endpoint.path][endpoint.method.to_ascii_lowercase()];
        assert!(
            operation.is_object(),
            "{} {} missing",
            endpoint.method,
            endpoint.path
        );
    }
    let example = &document["paths"]["/api/v1/models"]["post"]["requestBody"]["content"]["application/json"]
        ["example"];
    assert_eq!(example["price"]["input_per_million"], "2", "{example}");
    // The resource declarations' secret and operator-only fields reach the document.
    assert_eq!(
        document["paths"]["/api/v1/provider-keys"]["post"]["x-secret-fields"],
        serde_json::json!(["secret"])
    );
    let operator_only =
        &document["paths"]["/api/v1/tokens/{id}"]["patch"]["x-operator-only-fields"];
    assert!(
        operator_only
            .as_array()
            .is_some_and(|fields| fields.contains(&serde_json::json!("budget"))),
        "{operator_only}"
    );
    // Every endpoint the router serves is declared once: no path and method twice.
    let mut seen = std::collections::HashSet::new();
    for endpoint in admin_api::routes::endpoints() {
        assert!(
            seen.insert((endpoint.method, endpoint.path.clone())),
            "{} {} declared twice",
            endpoint.method,
            endpoint.path
        );
    }
    let (status, body) = harness
        .call(reqwest::Method::GET, "/api/v1/nothing-here", None, None)
        .await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "not_found");
    let (status, _) = harness
        .call(reqwest::Method::GET, "/api/v1/docs", None, None)
        .await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ui_is_served_with_a_spa_fallback() {
    let ui = std::env::temp_dir().join(kit::testing::unique_name("axongate-ui"));
    std::fs::create_dir_all(ui.join("assets")).unwrap();
    std::fs::write(ui.join("index.html"), "<html>AxonGate UI</html>").unwrap();
    std::fs::write(ui.join("assets/app.js"), "console.log('ui')").unwrap();
    let ui_dir = ui.to_str().unwrap().to_owned();
    let harness = Harness::start_with(|config| config.ui_dir = ui_dir).await;
    let get = |path: &str| {
        let url = format!("{}{path}", harness.base);
        let http = harness.http.clone();
        async move {
            let response = http.get(url).send().await.unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        }
    };
    assert_eq!(get("/").await, (200, "<html>AxonGate UI</html>".to_owned()));
    assert_eq!(
        get("/providers/openai").await,
        (200, "<html>AxonGate UI</html>".to_owned()),
        "client-side routes get index.html"
    );
    assert_eq!(
        get("/assets/app.js").await,
        (200, "console.log('ui')".to_owned())
    );
    let (status, body) = get("/api/v1/nothing").await;
    assert_eq!(status, 404, "API paths never fall back to the UI");
    assert!(body.contains("not_found"));
    assert_eq!(get("/health").await.0, 200);
    std::fs::remove_dir_all(&ui).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_the_projector_has_not_applied_in_time_gets_503_then_appears() {
    let mut harness =
        Harness::start_with(|config| config.read_your_writes_timeout_ms = 1_000).await;
    let admin = harness.admin().await;
    harness.stop_projector();
    let (status, body) = harness
        .post("/api/v1/providers", &admin, json!({"id": "late", "name": "Late", "protocol": "openai", "base_url": "https://late.example"}))
        .await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "projection_timeout");
    let (status, _) = harness.get("/api/v1/providers/late", &admin).await;
    assert_eq!(status, 404, "not in the view yet");
    harness.start_projector();
    // A batch the stopped projector had fetched comes back after the consumer's ack wait.
    kit::testing::wait_until(
        kit::testing::liveness(),
        "the change to reach the view",
        || async {
            let (status, _) = harness.get("/api/v1/providers/late", &admin).await;
            (status == 200).then_some(())
        },
    )
    .await;
}
