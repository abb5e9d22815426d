//! `GET /api/v1/config/at?seq=N`: the config in force at any config stream sequence, rebuilt
//! from the stream — a model's price before and after a change, a deleted entity still there
//! before its deletion, no secret anywhere, and who may ask.

use crate::common;

use common::Harness;
use serde_json::{Value, json};

/// The stream sequence of the newest audit row of an entity (the audit view's `sequence` is
/// the config stream's).
#[expect(clippy::unwrap_used, reason = "a test helper fails loudly")]
async fn last_seq(harness: &Harness, admin: &str, entity: &str, id: &str) -> u64 {
    let (status, page) = harness
        .get(
            &format!("/api/v1/audit?entity={entity}&entity_id={id}&limit=1"),
            admin,
        )
        .await;
    assert_eq!(status, 200, "{page}");
    page["items"][0]["sequence"].as_u64().unwrap()
}

#[expect(clippy::unwrap_used, reason = "a test helper fails loudly")]
fn entity<'a>(config: &'a Value, kind: &str, id: &str) -> Option<&'a Value> {
    config["entities"][kind]
        .as_array()
        .unwrap()
        .iter()
        .find(|item| item["id"] == id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_config_at_a_sequence_is_what_was_in_force_then() {
    let harness = Harness::start().await;
    let admin = harness.admin().await;
    let (status, _) = harness
        .post(
            "/api/v1/providers",
            &admin,
            json!({"id": "openai", "name": "OpenAI", "protocol": "openai", "base_url": "https://api.openai.com"}),
        )
        .await;
    assert_eq!(status, 201);
    let (status, _) = harness
        .post(
            "/api/v1/providers",
            &admin,
            json!({"id": "spare", "name": "Spare", "protocol": "anthropic", "base_url": "https://api.anthropic.com"}),
        )
        .await;
    assert_eq!(status, 201);
    let (status, key) = harness
        .post(
            "/api/v1/provider-keys",
            &admin,
            json!({"provider_id": "openai", "name": "main", "secret": "sk-live-abcdefgh1234"}),
        )
        .await;
    assert_eq!(status, 201, "{key}");
    let key_id = key["id"].as_str().unwrap().to_owned();
    let (status, model) = harness
        .post(
            "/api/v1/models",
            &admin,
            json!({"id": "gpt", "alias": "gpt-4o",
                "routes": [{"provider_id": "openai", "upstream_model": "gpt-4o-2024-08-06", "key_ids": [key_id]}],
                "price": {"currency": "USD", "input_per_million": "2.5", "output_per_million": "10"}}),
        )
        .await;
    assert_eq!(status, 201, "{model}");
    let before = last_seq(&harness, &admin, "model", "gpt").await;
    let (status, _) = harness
        .patch(
            "/api/v1/models/gpt",
            &admin,
            json!({"version": model["version"], "price": {"currency": "USD", "input_per_million": "3", "output_per_million": "12"}}),
        )
        .await;
    assert_eq!(status, 200);
    let after = last_seq(&harness, &admin, "model", "gpt").await;
    let (status, _) = harness.delete("/api/v1/providers/spare", &admin).await;
    assert!(status == 200 || status == 204, "{status}");
    let deleted = last_seq(&harness, &admin, "provider", "spare").await;
    assert!(before < after && after < deleted);

    let (status, then) = harness
        .get(&format!("/api/v1/config/at?seq={before}"), &admin)
        .await;
    assert_eq!(status, 200, "{then}");
    assert_eq!(then["seq"], before);
    assert_eq!(then["event"]["type"], "model.put");
    assert_eq!(then["event"]["entity_id"], "gpt");
    let gpt = entity(&then, "model", "gpt").unwrap();
    assert_eq!(gpt["price"]["input_per_million"], "2.5", "{then}");
    assert_eq!(gpt["routes"][0]["upstream_model"], "gpt-4o-2024-08-06");
    assert_eq!(gpt["version"], before);
    assert!(entity(&then, "provider_key", &key_id).is_some());
    assert!(entity(&then, "provider", "openai").is_some());
    assert!(entity(&then, "provider", "spare").is_some());

    let (_, later) = harness
        .get(&format!("/api/v1/config/at?seq={after}"), &admin)
        .await;
    let gpt = entity(&later, "model", "gpt").unwrap();
    assert_eq!(gpt["price"]["input_per_million"], "3");
    assert_eq!(gpt["price"]["version"], 2);
    assert!(entity(&later, "provider", "spare").is_some());

    let (_, now) = harness
        .get(&format!("/api/v1/config/at?seq={deleted}"), &admin)
        .await;
    assert!(entity(&now, "provider", "spare").is_none(), "{now}");
    assert!(entity(&now, "provider_key", &key_id).is_some(), "{now}");
    // Nothing secret at any point: not the key's sealed secret, not the admin's password hash.
    for config in [&then, &later, &now] {
        let text = config.to_string();
        for field in shared::secret::SECRET_FIELD_NAMES {
            assert!(!text.contains(&format!("\"{field}\"")), "{field} in {text}");
        }
        assert!(!text.contains("abcdefgh1234"));
        assert!(
            config["entities"]["user"]
                .as_array()
                .is_some_and(|users| users.iter().any(|user| user["username"] == "admin")),
            "{text}"
        );
    }

    // Out of range, malformed, unknown parameters: 400 naming the field.
    for query in [
        "seq=0",
        "seq=x",
        "",
        "seq=1&at=2",
        &format!("seq={}", deleted + 1_000),
    ] {
        let (status, body) = harness
            .get(&format!("/api/v1/config/at?{query}"), &admin)
            .await;
        assert_eq!(status, 400, "{query}: {body}");
        assert!(body["error"]["field"].is_string(), "{query}: {body}");
    }
    // A member may not read the config of everyone.
    let (_, member) = harness.user_session(&admin, "mallory", "member").await;
    let (status, _) = harness
        .get(&format!("/api/v1/config/at?seq={before}"), &member)
        .await;
    assert_eq!(status, 403);
}
