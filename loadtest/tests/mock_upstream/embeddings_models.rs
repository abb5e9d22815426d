use serde_json::{Value, json};

use crate::common::{client, post_openai, start};

#[tokio::test]
async fn embeddings_are_deterministic_unit_vectors() {
    let mock = start().await;
    let request = json!({"model": "text-embedding-3-small", "input": ["hello world", "other text"], "dimensions": 16});
    let first: Value = post_openai(&mock, "/v1/embeddings", request.clone())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(first["object"], "list");
    assert_eq!(first["model"], "text-embedding-3-small");
    let data = first["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    for (index, item) in data.iter().enumerate() {
        assert_eq!(item["object"], "embedding");
        assert_eq!(item["index"], index);
        let vector: Vec<f64> = item["embedding"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert_eq!(vector.len(), 16);
        let norm: f64 = vector.iter().map(|v| v * v).sum::<f64>().sqrt();
        assert!((norm - 1.0).abs() < 1e-3, "norm {norm}");
    }
    assert_ne!(data[0]["embedding"], data[1]["embedding"]);
    // "hello world" (11 bytes) → 3 tokens, "other text" (10 bytes) → 3 tokens.
    assert_eq!(
        first["usage"],
        json!({"prompt_tokens": 6, "total_tokens": 6})
    );
    let second: Value = post_openai(&mock, "/v1/embeddings", request)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(first["data"], second["data"]);
}

#[tokio::test]
async fn embeddings_default_to_1536_dimensions_and_support_base64() {
    let mock = start().await;
    let plain: Value = post_openai(&mock, "/v1/embeddings", json!({"model": "m", "input": "x"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        plain["data"][0]["embedding"].as_array().unwrap().len(),
        1536
    );
    let encoded: Value = post_openai(
        &mock,
        "/v1/embeddings",
        json!({"model": "m", "input": "x", "encoding_format": "base64"}),
    )
    .await
    .json()
    .await
    .unwrap();
    let text = encoded["data"][0]["embedding"].as_str().unwrap();
    // 1536 f32 values = 6144 bytes = 8192 base64 characters.
    assert_eq!(text.len(), 8192);
}

#[tokio::test]
async fn model_lists_speak_both_dialects() {
    let mock = start().await;
    let openai: Value = client()
        .get(format!("{}/v1/models", mock.base_url()))
        .bearer_auth("sk")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(openai["object"], "list");
    assert_eq!(openai["data"][0]["object"], "model");
    assert!(openai["data"][0]["id"].is_string());
    let anthropic: Value = client()
        .get(format!("{}/v1/models", mock.base_url()))
        .header("x-api-key", "k")
        .header("anthropic-version", "2023-06-01")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(anthropic["data"][0]["type"], "model");
    assert_eq!(anthropic["has_more"], false);
}
