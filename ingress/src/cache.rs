//! The response cache: answers of the models that opt in (`Model::response_cache`), kept in a
//! JetStream key-value bucket every ingress node of a deployment shares, and served again to an
//! identical request at no cost.
//!
//! The key is a hash of the caller's scope (its token, unless the model shares entries across
//! tokens), the dialect, the model and the request body in a canonical form (object keys sorted,
//! whitespace gone, the fields that only attribute a request — `user`, `metadata`,
//! `safety_identifier`, `prompt_cache_key` — left out). A streamed and a plain request never
//! share an entry: each stores what its client received, and a cached stream is replayed as a
//! stream, event by event.
//!
//! The bucket is a stream of the KV layout with `discard: old`, so the size bound evicts the
//! oldest entries rather than refusing new ones (a plain KV bucket refuses); its `max_age` is
//! the deployment's longest TTL, and each model's own TTL is checked against the time an entry
//! was stored. A lookup that fails or takes longer than `response_cache_lookup_ms` is a miss:
//! the cache never fails a request.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_nats::jetstream::{self, kv, stream};
use axum::body::Bytes;
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use shared::config::{Model, ResponseCache as Policy, UserToken};
use shared::request::{Cost, Usage};

use crate::translate::{Dialect, ir};

/// The bucket's name (its stream is `KV_<bucket>`).
pub const BUCKET: &str = "axongate-responses";

/// The fields that attribute a request to someone without changing its answer.
const ATTRIBUTION_FIELDS: [&str; 4] = ["user", "metadata", "safety_identifier", "prompt_cache_key"];

/// Marks an entry's layout: this magic, the length of its metadata (u32, big-endian), the
/// metadata (JSON), then the bytes the client received.
const MAGIC: &[u8; 4] = b"AXC1";

/// Deployment-wide settings (`response_cache_*` in the ingress config).
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// The longest any entry lives (the bucket's `max_age`).
    pub max_age: Duration,
    /// The bucket's size bound; the oldest entries go first.
    pub max_bytes: i64,
    /// The largest answer stored (NATS refuses messages above its `max_payload`, 1 MiB by
    /// default).
    pub max_entry_bytes: usize,
    /// How long a lookup may take before it counts as a miss.
    pub lookup: Duration,
    pub replicas: usize,
}

/// What an entry says besides the answer's bytes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Meta {
    /// When it was stored (Unix milliseconds).
    pub stored_at_ms: u64,
    /// The request whose answer this is.
    pub request_id: String,
    pub stream: bool,
    /// What that request used and cost: what a hit saves.
    pub usage: Usage,
    #[serde(default)]
    pub cost: Option<Cost>,
}

/// A cached answer.
#[derive(Debug, Clone)]
pub struct Entry {
    pub meta: Meta,
    pub body: Bytes,
}

/// Where a cacheable request's answer goes once it is complete.
#[derive(Debug, Clone)]
pub struct Fill {
    key: String,
}

/// What a request may do with the cache.
#[derive(Debug, Clone)]
pub struct Plan {
    key: String,
    ttl: Duration,
    /// Look the request up (`Cache-Control: no-cache` asks for a fresh answer).
    pub lookup: bool,
    /// Store its answer (`Cache-Control: no-store` forbids it).
    pub store: bool,
}

impl Plan {
    /// Where to store the answer, if it may be stored.
    #[must_use]
    pub fn fill(&self) -> Option<Fill> {
        self.store.then(|| Fill {
            key: self.key.clone(),
        })
    }
}

/// The shared response cache of a deployment.
pub struct ResponseCache {
    store: kv::Store,
    settings: Settings,
}

impl ResponseCache {
    /// Creates the bucket if missing (updating its limits if they drifted) and opens it.
    ///
    /// # Errors
    /// When JetStream refuses the stream.
    pub async fn open(context: &jetstream::Context, settings: Settings) -> anyhow::Result<Self> {
        let wanted = stream::Config {
            name: format!("KV_{BUCKET}"),
            description: Some("AxonGate response cache".into()),
            subjects: vec![format!("$KV.{BUCKET}.>")],
            max_messages_per_subject: 1,
            max_bytes: settings.max_bytes,
            max_age: settings.max_age,
            max_message_size: i32::try_from(settings.max_entry_bytes + 4096).unwrap_or(i32::MAX),
            storage: stream::StorageType::File,
            num_replicas: settings.replicas,
            allow_rollup: true,
            deny_delete: true,
            allow_direct: true,
            // The size bound evicts the oldest entries (a KV bucket's default refuses new ones).
            discard: stream::DiscardPolicy::Old,
            ..Default::default()
        };
        let mut existing = context
            .get_or_create_stream(wanted.clone())
            .await
            .map_err(|error| anyhow::anyhow!("response cache bucket: {error}"))?;
        let current = existing
            .info()
            .await
            .map_err(|error| anyhow::anyhow!("response cache bucket: {error}"))?
            .config
            .clone();
        if current.max_bytes != wanted.max_bytes
            || current.max_age != wanted.max_age
            || current.max_message_size != wanted.max_message_size
            || current.discard != wanted.discard
        {
            context
                .update_stream(wanted)
                .await
                .map_err(|error| anyhow::anyhow!("response cache bucket: {error}"))?;
        }
        let store = context
            .get_key_value(BUCKET)
            .await
            .map_err(|error| anyhow::anyhow!("response cache bucket: {error}"))?;
        Ok(Self { store, settings })
    }

    /// What `request` may do with the cache, or `None` when its model does not cache it.
    #[must_use]
    pub fn plan(
        &self,
        model: &Model,
        token: &UserToken,
        dialect: Dialect,
        request: &ir::Request,
        body: &[u8],
        headers: &HeaderMap,
    ) -> Option<Plan> {
        let policy = model.response_cache.as_ref()?;
        if !cacheable(policy, request) {
            return None;
        }
        let directives = cache_control(headers);
        let scope = if policy.across_tokens {
            "*"
        } else {
            token.id.as_str()
        };
        let key = key(scope, dialect, &model.id, request, body)?;
        let ttl = Duration::from_secs(u64::from(policy.ttl_secs)).min(self.settings.max_age);
        Some(Plan {
            key,
            ttl,
            lookup: !directives.no_cache && !directives.no_store,
            store: !directives.no_store,
        })
    }

    /// The fresh entry of `plan`, if there is one. A failed or slow lookup is a miss.
    pub async fn lookup(&self, plan: &Plan) -> Option<Entry> {
        if !plan.lookup {
            return None;
        }
        let found = tokio::time::timeout(self.settings.lookup, self.store.get(plan.key.clone()));
        let value = match found.await {
            Ok(Ok(value)) => value?,
            Ok(Err(error)) => {
                metrics::counter!("ingress_response_cache_errors_total", "op" => "get")
                    .increment(1);
                tracing::warn!(error = %error, "response cache lookup failed; answering upstream");
                return None;
            }
            Err(_) => {
                metrics::counter!("ingress_response_cache_errors_total", "op" => "get")
                    .increment(1);
                return None;
            }
        };
        let entry = decode(&value)?;
        let age = now_ms().saturating_sub(entry.meta.stored_at_ms);
        let fresh = Duration::from_millis(age) < plan.ttl;
        metrics::counter!(
            "ingress_response_cache_lookups_total",
            "result" => if fresh { "hit" } else { "miss" }
        )
        .increment(1);
        fresh.then_some(entry)
    }

    /// Stores a complete answer in the background (an answer too large for an entry is not
    /// stored).
    pub fn store(&self, fill: Fill, meta: Meta, body: &[u8]) {
        if body.len() > self.settings.max_entry_bytes {
            metrics::counter!("ingress_response_cache_skipped_total", "reason" => "too_large")
                .increment(1);
            return;
        }
        let value = encode(&meta, body);
        let store = self.store.clone();
        tokio::spawn(async move {
            if let Err(error) = store.put(fill.key, value).await {
                metrics::counter!("ingress_response_cache_errors_total", "op" => "put")
                    .increment(1);
                tracing::warn!(error = %error, "could not store an answer in the response cache");
            }
        });
    }

    #[must_use]
    pub fn max_entry_bytes(&self) -> usize {
        self.settings.max_entry_bytes
    }
}

/// Whether the policy caches this request: deterministic ones always, sampled ones only when
/// the model says so.
fn cacheable(policy: &Policy, request: &ir::Request) -> bool {
    policy.sampled || request.params.temperature == Some(0.0)
}

#[derive(Default)]
struct Directives {
    no_cache: bool,
    no_store: bool,
}

fn cache_control(headers: &HeaderMap) -> Directives {
    let mut directives = Directives::default();
    for value in headers.get_all(axum::http::header::CACHE_CONTROL) {
        let Ok(value) = value.to_str() else { continue };
        for directive in value.split(',').map(str::trim) {
            if directive.eq_ignore_ascii_case("no-cache") {
                directives.no_cache = true;
            } else if directive.eq_ignore_ascii_case("no-store") {
                directives.no_store = true;
            }
        }
    }
    directives
}

/// The entry key: SHA-256 over the scope, dialect, model, stream flag and the canonical body.
fn key(
    scope: &str,
    dialect: Dialect,
    model_id: &str,
    request: &ir::Request,
    body: &[u8],
) -> Option<String> {
    let mut value: Value = serde_json::from_slice(body).ok()?;
    if let Value::Object(fields) = &mut value {
        for field in ATTRIBUTION_FIELDS {
            fields.remove(field);
        }
    }
    let mut hasher = Sha256::new();
    for part in [
        "axongate-response-cache-v1",
        scope,
        dialect_name(dialect),
        model_id,
        &request.model,
        if request.stream { "stream" } else { "plain" },
    ] {
        hasher.update(part.as_bytes());
        hasher.update([0]);
    }
    canonical(&value, &mut hasher);
    Some(hex::encode(hasher.finalize()))
}

fn dialect_name(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::OpenAiChat => "openai_chat",
        Dialect::OpenAiResponses => "openai_responses",
        Dialect::Anthropic => "anthropic",
        Dialect::Gemini => "gemini",
    }
}

/// Feeds `value` to the hasher with object keys in order, so key order and whitespace do not
/// change the key.
fn canonical(value: &Value, hasher: &mut Sha256) {
    match value {
        Value::Object(fields) => {
            let mut names: Vec<&String> = fields.keys().collect();
            names.sort();
            hasher.update(b"{");
            for name in names {
                hasher.update(serde_json::to_string(name).unwrap_or_default().as_bytes());
                hasher.update(b":");
                canonical(&fields[name], hasher);
                hasher.update(b",");
            }
            hasher.update(b"}");
        }
        Value::Array(items) => {
            hasher.update(b"[");
            for item in items {
                canonical(item, hasher);
                hasher.update(b",");
            }
            hasher.update(b"]");
        }
        scalar => hasher.update(scalar.to_string().as_bytes()),
    }
}

/// Milliseconds since the Unix epoch.
#[must_use]
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
        })
}

fn encode(meta: &Meta, body: &[u8]) -> Bytes {
    let meta = serde_json::to_vec(meta).unwrap_or_default();
    let mut out = Vec::with_capacity(8 + meta.len() + body.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&u32::try_from(meta.len()).unwrap_or(0).to_be_bytes());
    out.extend_from_slice(&meta);
    out.extend_from_slice(body);
    Bytes::from(out)
}

fn decode(value: &Bytes) -> Option<Entry> {
    let rest = value.strip_prefix(MAGIC.as_slice())?;
    let (length, rest) = rest.split_first_chunk::<4>()?;
    let length = usize::try_from(u32::from_be_bytes(*length)).ok()?;
    let meta = serde_json::from_slice(rest.get(..length)?).ok()?;
    let start = MAGIC.len() + 4 + length;
    Some(Entry {
        meta,
        body: value.slice(start..),
    })
}

/// The events of a stored SSE answer, each ending with its blank line, to replay one by one.
pub fn sse_events(body: &Bytes) -> Vec<Bytes> {
    let mut events = Vec::new();
    let mut start = 0;
    let bytes = body.as_ref();
    let mut index = 0;
    while index + 1 < bytes.len() {
        if bytes[index] == b'\n' && bytes[index + 1] == b'\n' {
            events.push(body.slice(start..index + 2));
            start = index + 2;
            index += 2;
        } else {
            index += 1;
        }
    }
    if start < bytes.len() {
        events.push(body.slice(start..));
    }
    events
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(stream: bool, temperature: Option<f64>) -> ir::Request {
        let mut request = crate::translate::decode_request(
            Dialect::OpenAiChat,
            br#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#,
        )
        .expect("decode");
        request.stream = stream;
        request.params.temperature = temperature;
        request
    }

    #[test]
    fn the_key_ignores_key_order_whitespace_and_attribution_but_not_content() {
        let plain = request(false, Some(0.0));
        let a = br#"{"model":"m","temperature":0,"messages":[{"role":"user","content":"hi"}]}"#;
        let b = br#"{ "messages" : [ {"content":"hi","role":"user"} ], "temperature":0, "model":"m", "user":"u-1", "metadata":{"a":"b"} }"#;
        let other =
            br#"{"model":"m","temperature":0,"messages":[{"role":"user","content":"hi!"}]}"#;
        let key_of = |scope: &str, dialect: Dialect, body: &[u8], request: &ir::Request| {
            key(scope, dialect, "m", request, body).expect("key")
        };
        let base = key_of("t1", Dialect::OpenAiChat, a, &plain);
        assert_eq!(base, key_of("t1", Dialect::OpenAiChat, b, &plain));
        assert_ne!(base, key_of("t1", Dialect::OpenAiChat, other, &plain));
        assert_ne!(
            base,
            key_of("t2", Dialect::OpenAiChat, a, &plain),
            "per token"
        );
        assert_ne!(
            base,
            key_of("t1", Dialect::Anthropic, a, &plain),
            "per dialect"
        );
        assert_ne!(
            base,
            key_of("t1", Dialect::OpenAiChat, a, &request(true, Some(0.0))),
            "a stream and a plain answer are stored apart"
        );
        assert_eq!(base.len(), 64);
    }

    #[test]
    fn only_deterministic_requests_are_cached_unless_the_model_caches_sampled_ones() {
        let strict = Policy {
            ttl_secs: 60,
            ..Policy::default()
        };
        let sampled = Policy {
            sampled: true,
            ..strict.clone()
        };
        assert!(cacheable(&strict, &request(false, Some(0.0))));
        assert!(!cacheable(&strict, &request(false, Some(0.7))));
        assert!(
            !cacheable(&strict, &request(false, None)),
            "the provider's default samples"
        );
        assert!(cacheable(&sampled, &request(false, Some(0.7))));
        assert!(cacheable(&sampled, &request(false, None)));
    }

    #[test]
    fn an_entry_round_trips_and_garbage_is_a_miss() {
        let meta = Meta {
            stored_at_ms: 5,
            request_id: "r1".into(),
            stream: true,
            usage: Usage {
                input_tokens: 3,
                output_tokens: 4,
                ..Usage::default()
            },
            cost: None,
        };
        let value = encode(&meta, b"data: 1\n\ndata: 2\n\n");
        let entry = decode(&value).expect("decodes");
        assert_eq!(entry.meta.request_id, "r1");
        assert_eq!(entry.meta.usage.output_tokens, 4);
        assert_eq!(
            sse_events(&entry.body),
            vec![
                Bytes::from_static(b"data: 1\n\n"),
                Bytes::from_static(b"data: 2\n\n")
            ]
        );
        assert!(decode(&Bytes::from_static(b"AXC1\0\0\0\x09{")).is_none());
        assert!(decode(&Bytes::from_static(b"not an entry")).is_none());
    }

    #[test]
    fn cache_control_directives_are_read_case_insensitively() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "cache-control",
            "max-age=0, No-Cache".parse().expect("value"),
        );
        let directives = cache_control(&headers);
        assert!(directives.no_cache && !directives.no_store);
        headers.insert("cache-control", "no-store".parse().expect("value"));
        assert!(cache_control(&headers).no_store);
    }
}
