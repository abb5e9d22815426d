//! What a hostile or careless client, user or neighbour on the bus can do to ingress (issue 13):
//! each test fails on a gateway without the guard it names.

mod support;

use kit::testing::{liveness, wait_until};
use serde_json::{Value, json};
use shared::config::Protocol;
use support::{Gateway, Node, http};

fn chat(model: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "hello"}]})
}

fn anthropic(model: &str) -> Value {
    json!({"model": model, "max_tokens": 5, "messages": [{"role": "user", "content": "hello"}]})
}

/// The status and JSON body of a chat completion with `token`.
async fn chat_status(node: &Node, token: &str, model: &str) -> (u16, Value) {
    let response = http()
        .post(format!("{}/v1/chat/completions", node.base))
        .bearer_auth(token)
        .json(&chat(model))
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The status and JSON body of an Anthropic message with `token`.
async fn messages_status(node: &Node, token: &str, model: &str) -> (u16, Value) {
    let response = http()
        .post(format!("{}/v1/messages", node.base))
        .header("x-api-key", token)
        .json(&anthropic(model))
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Waits until every node answers `token` with `status`.
async fn wait_all(nodes: &[&Node], token: &str, status: u16, what: &str) {
    for node in nodes {
        wait_until(liveness(), what, || async {
            (chat_status(node, token, "gpt").await.0 == status).then_some(())
        })
        .await;
    }
}

async fn gateway_with_model() -> Gateway {
    let gateway = Gateway::start().await;
    gateway.add_provider("openai-mock", Protocol::OpenAi).await;
    gateway
        .add_model("gpt", vec![("openai-mock", "gpt-mock-1", 0)])
        .await;
    gateway
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn disabled_or_deleted_users_tokens_are_refused_everywhere_and_after_restart() {
    let gateway = gateway_with_model().await;
    gateway.put_user("alice", true).await;
    let token = gateway
        .add_token("alice-token", |token| token.owner_user_id = "alice".into())
        .await;
    let other = gateway.add_token("bob-token", |_| {}).await;
    let (a, b) = (
        gateway.start_node("a").await,
        gateway.start_node("b").await,
    );
    wait_all(&[&a, &b], &token, 200, "alice's token to work").await;

    // Disabled: refused on both nodes, in each caller's dialect; other users are unaffected.
    gateway.put_user("alice", false).await;
    wait_all(&[&a, &b], &token, 401, "a disabled user's token to be refused").await;
    let (_, body) = chat_status(&b, &token, "gpt").await;
    assert_eq!(body["error"]["type"], "authentication_error", "{body}");
    let (status, body) = messages_status(&a, &token, "gpt").await;
    assert_eq!(status, 401);
    assert_eq!(body["type"], "error", "Anthropic shape: {body}");
    assert_eq!(body["error"]["type"], "authentication_error", "{body}");
    assert_eq!(chat_status(&a, &other, "gpt").await.0, 200);

    // Enabled again, then deleted.
    gateway.put_user("alice", true).await;
    wait_all(&[&a, &b], &token, 200, "a re-enabled user's token to work").await;
    let deleted_at = gateway.delete_user("alice").await;
    wait_all(&[&a, &b], &token, 401, "a deleted user's token to be refused").await;

    // A node starting now, from the Postgres views (which drop the deleted user's row) or from
    // the stream, refuses it from its first request.
    gateway.wait_projected(deleted_at).await;
    let from_views = gateway.start_node("c").await;
    assert_eq!(chat_status(&from_views, &token, "gpt").await.0, 401);
    assert_eq!(chat_status(&from_views, &other, "gpt").await.0, 200);
    let from_stream = gateway.start_node_without_postgres("d", &[]).await;
    assert_eq!(chat_status(&from_stream, &token, "gpt").await.0, 401);
    assert_eq!(chat_status(&from_stream, &other, "gpt").await.0, 200);
}
