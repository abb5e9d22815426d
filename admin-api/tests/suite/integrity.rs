//! The tamper-evident chain of the config and audit streams, end to end: two admin-api
//! processes publishing at once keep one whole chain; a removed, rewritten, reordered or
//! forged event, and a stream that lost its newest events after a checkpoint, are each named
//! by `GET /api/v1/audit/verify` and by `admin-api audit verify`.

use crate::common;

use async_nats::HeaderMap;
use async_nats::jetstream;
use common::{Harness, spawn_admin_api};
use serde_json::{Value, json};
use shared::streams::{AUDIT_STREAM, CONFIG_STREAM};

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn verify(harness: &Harness, admin: &str) -> Value {
    let (status, report) = harness.get("/api/v1/audit/verify", admin).await;
    assert_eq!(status, 200, "{report}");
    report
}

#[expect(clippy::unwrap_used, reason = "a test helper fails loudly")]
fn stream<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|stream| stream["stream"] == name)
        .unwrap()
}

/// Every message of a stream with its headers (the `Nats-*` ones left out), in order.
#[expect(clippy::unwrap_used, reason = "a test helper fails loudly")]
async fn messages(jetstream: &jetstream::Context, name: &str) -> Vec<(String, HeaderMap, Vec<u8>)> {
    let mut stream = jetstream.get_stream(name).await.unwrap();
    let state = stream.info().await.unwrap().state.clone();
    let mut out = Vec::new();
    for sequence in state.first_sequence..=state.last_sequence {
        if let Ok(message) = stream.get_raw_message(sequence).await {
            let mut headers = HeaderMap::new();
            for (header, values) in message.headers.iter() {
                let header: &str = header.as_ref();
                if header.starts_with("Nats-") {
                    continue;
                }
                for value in values {
                    headers.insert(header, value.as_str());
                }
            }
            out.push((
                message.subject.to_string(),
                headers,
                message.payload.to_vec(),
            ));
        }
    }
    out
}

/// Replaces a stream's content with `messages` (what restoring a doctored backup does);
/// returns the sequence of the first one.
#[expect(clippy::unwrap_used, reason = "a test helper fails loudly")]
async fn restore(
    jetstream: &jetstream::Context,
    name: &str,
    messages: Vec<(String, HeaderMap, Vec<u8>)>,
) -> u64 {
    let stream = jetstream.get_stream(name).await.unwrap();
    stream.purge().await.unwrap();
    let mut first = None;
    for (subject, headers, body) in messages {
        let ack = jetstream
            .publish_with_headers(subject, headers, body.into())
            .await
            .unwrap()
            .await
            .unwrap();
        first.get_or_insert(ack.sequence);
    }
    first.unwrap()
}

#[expect(clippy::unwrap_used, reason = "a test helper fails loudly")]
fn broken(report: &Value, name: &str) -> (u64, String) {
    let broken = &stream(report, name)["first_broken"];
    assert!(broken.is_object(), "{name} should be broken: {report}");
    (
        broken["seq"].as_u64().unwrap(),
        broken["reason"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_keep_one_chain_and_every_kind_of_tamper_is_named() {
    let mut harness = Harness::start_with(|config| config.audit_checkpoint_interval_secs = 0).await;
    let admin = harness.admin().await;
    // A second admin-api on the same bus: both publish config and audit events at once.
    let (second_base, second) = spawn_admin_api(harness.config.clone()).await;
    let first_base = std::mem::replace(&mut harness.base, second_base.clone());
    kit::testing::wait_until(kit::testing::liveness(), "second admin-api", || async {
        harness
            .get("/api/v1/auth/me", &admin)
            .await
            .0
            .eq(&200)
            .then_some(())
    })
    .await;
    let mut writes = Vec::new();
    for index in 0..12 {
        let base = if index % 2 == 0 {
            &first_base
        } else {
            &second_base
        };
        let http = harness.http.clone();
        let (base, admin) = (base.clone(), admin.clone());
        writes.push(tokio::spawn(async move {
            http.post(format!("{base}/api/v1/providers"))
                .bearer_auth(&admin)
                .json(
                    &json!({"id": format!("p{index}"), "name": "P", "protocol": "openai",
                    "base_url": "https://p.example"}),
                )
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
        // Audit events from both processes too: failed sign-ins (no such user).
        let http = harness.http.clone();
        let base = if index % 2 == 0 {
            &first_base
        } else {
            &second_base
        }
        .clone();
        writes.push(tokio::spawn(async move {
            http.post(format!("{base}/api/v1/auth/login"))
                .json(&json!({"username": format!("nobody{index}"), "password": "wrong"}))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for write in writes {
        statuses.push(write.await.unwrap());
    }
    assert_eq!(
        statuses.iter().filter(|status| **status == 201).count(),
        12,
        "{statuses:?}"
    );
    let _second = AbortOnDrop(second);

    let report = verify(&harness, &admin).await;
    assert_eq!(report["ok"], true, "{report}");
    let config_events = harness.stream_count(CONFIG_STREAM).await;
    let config = stream(&report, CONFIG_STREAM);
    assert_eq!(config["events"], config_events, "{report}");
    assert_eq!(config["chained_from"], 1);
    assert!(config_events >= 13, "{report}");
    let audit = stream(&report, AUDIT_STREAM);
    assert!(audit["events"].as_u64().unwrap() >= 3, "{report}");
    assert_eq!(audit["unchained_before"], 0);

    let jetstream = harness.jetstream().await;
    let bus = admin_api::bus::Bus::new(jetstream.clone(), harness.config.chain_key());
    let mut last = [None, None];
    // Both heads checkpointed; a second round has nothing new.
    assert_eq!(
        admin_api::integrity::checkpoint_once(&bus, "test", &mut last)
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        admin_api::integrity::checkpoint_once(&bus, "test", &mut [None, None])
            .await
            .unwrap(),
        1,
        "a fresh process checkpoints the config head again, but not an audit head that is a checkpoint"
    );
    let report = verify(&harness, &admin).await;
    assert_eq!(report["ok"], true, "{report}");
    assert!(
        stream(&report, CONFIG_STREAM)["checkpoints_checked"]
            .as_u64()
            .unwrap()
            >= 1
    );

    // Truncated after the checkpoint: the newest config event is deleted.
    let mut config_stream = jetstream.get_stream(CONFIG_STREAM).await.unwrap();
    let last_config = config_stream.info().await.unwrap().state.last_sequence;
    assert!(config_stream.delete_message(last_config).await.unwrap());
    let report = verify(&harness, &admin).await;
    assert_eq!(report["ok"], false);
    assert_eq!(
        broken(&report, CONFIG_STREAM),
        (last_config, "truncated".into())
    );
    assert!(
        stream(&report, AUDIT_STREAM)["first_broken"].is_null(),
        "{report}"
    );

    // Removed: a config event in the middle is deleted; the first break is now there.
    let removed = last_config / 2;
    assert!(config_stream.delete_message(removed).await.unwrap());
    let report = verify(&harness, &admin).await;
    assert_eq!(
        broken(&report, CONFIG_STREAM),
        (removed + 1, "missing_predecessor".into())
    );
    assert_eq!(
        stream(&report, CONFIG_STREAM)["gaps"],
        json!([[removed, removed]])
    );

    // Rewritten: the audit stream restored with a failed sign-in attributed to `admin`.
    let original_audit = messages(&jetstream, AUDIT_STREAM).await;
    let target = original_audit
        .iter()
        .position(|(_, _, body)| String::from_utf8_lossy(body).contains("unknown-user#"))
        .unwrap();
    assert!(target + 1 < original_audit.len());
    let mut doctored = original_audit.clone();
    doctored[target].2 = String::from_utf8(doctored[target].2.clone())
        .unwrap()
        .replacen("unknown-user#", "admin#", 1)
        .into_bytes();
    let first = restore(&jetstream, AUDIT_STREAM, doctored).await;
    let report = verify(&harness, &admin).await;
    assert_eq!(
        broken(&report, AUDIT_STREAM),
        (first + target as u64, "rewritten".into())
    );

    // Reordered: two adjacent events swapped.
    let mut reordered = original_audit.clone();
    reordered.swap(target, target + 1);
    let first = restore(&jetstream, AUDIT_STREAM, reordered).await;
    let report = verify(&harness, &admin).await;
    assert_eq!(
        broken(&report, AUDIT_STREAM),
        (first + target as u64, "missing_predecessor".into())
    );

    // Forged: an event inserted by someone without the key, with a made-up link.
    let mut forged = original_audit.clone();
    let (subject, mut headers, body) = forged[target].clone();
    headers.insert(shared::chain::LINK_HEADER, "ab".repeat(32).as_str());
    forged.insert(target + 1, (subject, headers, body));
    let first = restore(&jetstream, AUDIT_STREAM, forged).await;
    let report = verify(&harness, &admin).await;
    assert_eq!(
        broken(&report, AUDIT_STREAM),
        (first + target as u64 + 1, "rewritten".into())
    );

    // The audit stream as it was (under new sequences: a copy keeps its chain); the command
    // names the config stream's first break and exits 1.
    let first = restore(&jetstream, AUDIT_STREAM, original_audit).await;
    let report = verify(&harness, &admin).await;
    let audit = stream(&report, AUDIT_STREAM);
    assert!(audit["first_broken"].is_null(), "{report}");
    assert_eq!(audit["gaps"], json!([[1, first - 1]]));

    let output = std::process::Command::new(env!("CARGO_BIN_EXE_admin-api"))
        .args(["audit", "verify"])
        .env("AXONGATE_NATS_URL", &harness.nats.url)
        .env("AXONGATE_POSTGRES_URL", &harness.postgres_url)
        .env("AXONGATE_CLICKHOUSE_URL", &harness.config.clickhouse_url)
        .env("AXONGATE_MASTER_KEYS", &harness.config.master_keys)
        .env("AXONGATE_TOKEN_PEPPER", &harness.config.token_pepper)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let printed: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        broken(&printed, CONFIG_STREAM),
        (removed + 1, "missing_predecessor".into())
    );
    assert!(String::from_utf8_lossy(&output.stderr).contains("the chain is broken"));
}
