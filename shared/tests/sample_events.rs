//! Every sample event under `tests/data/events/` must still deserialize with today's types.
//! These files are frozen: an incompatible change to an event type fails this test, and the
//! fix is an upcaster (see `envelope::upcast`), never an edit of the samples.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "a test fails loudly"
)]

use std::path::{Path, PathBuf};

use shared::audit::AuditEvent;
use shared::config::ConfigEvent;
use shared::request::RequestEvent;
use shared::{Envelope, EventBody};

fn samples(folder: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/events")
        .join(folder);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|error| panic!("{}: {error}", dir.display()))
        .map(|entry| entry.expect("dir entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no samples in {}", dir.display());
    files
}

/// Decodes each sample, checks its type matches the file name, and that re-encoding keeps
/// every field (no silent loss).
fn check_all<B: EventBody + std::fmt::Debug>(folder: &str) -> usize {
    let files = samples(folder);
    for path in &files {
        let bytes = std::fs::read(path).expect("read sample");
        let envelope = Envelope::<B>::from_bytes(&bytes)
            .unwrap_or_else(|error| panic!("{} no longer deserializes: {error}", path.display()));
        let stem = path
            .file_stem()
            .and_then(|stem| stem.to_str())
            .unwrap_or_default();
        let type_from_name = stem.split('-').next().unwrap_or_default();
        assert_eq!(
            envelope.body.event_type(),
            type_from_name,
            "{}",
            path.display()
        );
        let original: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
        let reencoded: serde_json::Value =
            serde_json::from_slice(&envelope.to_bytes().expect("encode")).expect("json");
        assert_fields_kept(&original, &reencoded, &path.display().to_string());
        // The fast path (straight from the bytes) reads exactly what the general one (a JSON
        // tree through the upcasters) reads.
        let general: Envelope<B> =
            serde_json::from_value(shared::envelope::upcast(original.clone()).expect("upcast"))
                .expect("general path");
        let general: serde_json::Value =
            serde_json::from_slice(&general.to_bytes().expect("encode")).expect("json");
        assert_eq!(general, reencoded, "{}", path.display());
    }
    files.len()
}

/// Every field of `original` is present with the same value in `reencoded` (defaults may add
/// fields, never drop or change them).
fn assert_fields_kept(original: &serde_json::Value, reencoded: &serde_json::Value, at: &str) {
    match (original, reencoded) {
        (serde_json::Value::Object(left), serde_json::Value::Object(right)) => {
            for (key, value) in left {
                let other = right
                    .get(key)
                    .unwrap_or_else(|| panic!("{at}: field {key} dropped"));
                assert_fields_kept(value, other, &format!("{at}.{key}"));
            }
        }
        (serde_json::Value::Array(left), serde_json::Value::Array(right)) => {
            assert_eq!(left.len(), right.len(), "{at}: array length changed");
            for (index, (value, other)) in left.iter().zip(right).enumerate() {
                assert_fields_kept(value, other, &format!("{at}[{index}]"));
            }
        }
        _ => assert_eq!(original, reencoded, "{at}"),
    }
}

#[test]
fn config_samples_deserialize() {
    let count = check_all::<ConfigEvent>("config");
    assert!(count >= 14, "a sample per config event type, found {count}");
}

#[test]
fn request_samples_deserialize() {
    assert!(check_all::<RequestEvent>("requests") >= 3);
}

#[test]
fn audit_samples_deserialize() {
    assert!(check_all::<AuditEvent>("audit") >= 6);
}

#[test]
fn subjects_follow_the_design() {
    let bytes = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/events/config/model.put.json"),
    )
    .expect("read");
    let envelope = Envelope::<ConfigEvent>::from_bytes(&bytes).expect("decode");
    assert_eq!(envelope.subject(), "axongate.config.model.claude-sonnet");
    let bytes = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/events/requests/request.finished-error.json"),
    )
    .expect("read");
    let envelope = Envelope::<RequestEvent>::from_bytes(&bytes).expect("decode");
    assert_eq!(envelope.subject(), "axongate.requests.error");
}

#[test]
fn a_future_version_is_refused_not_guessed() {
    let bytes = br#"{"event_id":"0193a1b2-0000-7000-8000-000000000001","type":"provider.deleted","version":9,
        "occurred_at":"2026-11-26T06:00:00Z","payload":{"id":"x"}}"#;
    let error = Envelope::<ConfigEvent>::from_bytes(bytes).expect_err("must refuse");
    assert!(error.to_string().contains("newer"), "{error}");
}

#[test]
fn a_batch_message_holds_each_event_in_order_and_a_bad_one_does_not_hide_the_rest() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/events/requests");
    let singles: Vec<Vec<u8>> = samples("requests")
        .iter()
        .map(|path| std::fs::read(path).expect("read"))
        .collect();
    assert!(singles.len() >= 2, "{}", dir.display());
    // A single event is a batch of one, read the same way.
    let one = Envelope::<RequestEvent>::all_from_bytes(&singles[0]);
    assert_eq!(one.len(), 1);
    assert!(!shared::envelope::is_batch(&singles[0]));
    let expected: Vec<Envelope<RequestEvent>> = singles
        .iter()
        .map(|bytes| Envelope::from_bytes(bytes).expect("decode"))
        .collect();
    let payload = shared::envelope::batch_payload(singles.iter().map(Vec::as_slice));
    assert!(shared::envelope::is_batch(&payload));
    let decoded: Vec<Envelope<RequestEvent>> = Envelope::<RequestEvent>::all_from_bytes(&payload)
        .into_iter()
        .map(|event| event.expect("decode"))
        .collect();
    assert_eq!(decoded, expected);
    // One element of a future version: an error in its place, the others still read.
    let future = br#"{"event_id":"0193a1b2-0000-7000-8000-000000000001","type":"request.finished","version":9,
        "occurred_at":"2026-11-26T06:00:00Z","payload":{}}"#;
    let mixed =
        shared::envelope::batch_payload([singles[0].as_slice(), future, singles[1].as_slice()]);
    let results = Envelope::<RequestEvent>::all_from_bytes(&mixed);
    assert_eq!(results.len(), 3);
    assert!(results[0].is_ok() && results[1].is_err() && results[2].is_ok());
    // Not JSON at all: one error.
    assert_eq!(
        Envelope::<RequestEvent>::all_from_bytes(b"[not json").len(),
        1
    );
}
