//! The mock upstream provider: start it, point the gateway at [`MockUpstream::base_url`], change
//! its [`Behavior`] while a test runs, and read back what it received.
//!
//! ```no_run
//! # async fn example() -> std::io::Result<()> {
//! use loadtest::mock::{Behavior, MockConfig, MockUpstream};
//!
//! let upstream = MockUpstream::start(MockConfig::default()).await?;
//! // … configure the gateway with upstream.base_url() and send requests through it …
//! upstream.set_behavior(Behavior::failing(503));
//! // … the gateway now sees 503s with OpenAI, Anthropic or Gemini error bodies …
//! upstream.set_behavior(Behavior::default());
//! let seen = upstream.requests();
//! upstream.shutdown().await;
//! # Ok(()) }
//! ```

mod anthropic;
mod behavior;
mod embeddings;
mod errors;
mod gemini;
mod openai_chat;
mod openai_responses;
mod plan;
mod prompt;
mod server;
mod stream;
mod text;

use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use behavior::{Behavior, FailWhen, Failure};
pub use text::MAX_OUTPUT_TOKENS;

use server::Shared;

/// How to start a mock.
#[derive(Clone, Debug)]
pub struct MockConfig {
    /// Where to listen; port 0 picks a free port.
    pub listen: SocketAddr,
    /// The behavior until [`MockUpstream::set_behavior`] changes it.
    pub behavior: Behavior,
    /// Keep every request for [`MockUpstream::requests`]; switch off for benchmarks.
    pub record_requests: bool,
    /// When set, only these API keys are accepted (others get the dialect's 401); when `None`,
    /// any non-empty key is.
    pub valid_keys: Option<Vec<String>>,
}

impl Default for MockConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            behavior: Behavior::default(),
            record_requests: true,
            valid_keys: None,
        }
    }
}

impl MockConfig {
    pub fn with_behavior(mut self, behavior: Behavior) -> Self {
        self.behavior = behavior;
        self
    }

    pub fn with_valid_keys<I, K>(mut self, keys: I) -> Self
    where
        I: IntoIterator<Item = K>,
        K: Into<String>,
    {
        self.valid_keys = Some(keys.into_iter().map(Into::into).collect());
        self
    }

    pub fn without_recording(mut self) -> Self {
        self.record_requests = false;
        self
    }
}

/// One request as the mock received it.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordedRequest {
    pub method: String,
    /// Path and query, as sent.
    pub path: String,
    /// Header names in lower case, in the order received.
    pub headers: Vec<(String, String)>,
    /// The JSON body; `Value::Null` when empty, a string holding the raw text when not JSON.
    pub body: Value,
}

impl RecordedRequest {
    /// The first value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// The API key used: the bearer token of `Authorization`, else `x-api-key`, else Gemini's
    /// `x-goog-api-key` header or `key` query parameter.
    pub fn api_key(&self) -> Option<&str> {
        self.header("authorization")
            .and_then(|value| value.strip_prefix("Bearer "))
            .or_else(|| self.header("x-api-key"))
            .or_else(|| self.header("x-goog-api-key"))
            .or_else(|| {
                self.path.split_once('?').and_then(|(_, query)| {
                    query.split('&').find_map(|pair| pair.strip_prefix("key="))
                })
            })
    }

    /// The requested model: the body's `model`, or for Gemini the one named in the path.
    pub fn model(&self) -> Option<&str> {
        self.body.get("model").and_then(Value::as_str).or_else(|| {
            let path = self
                .path
                .split_once('?')
                .map_or(self.path.as_str(), |(path, _)| path);
            gemini::route(path).map(|(model, _)| model)
        })
    }

    /// Whether the body asked for a stream, or the path is Gemini's `:streamGenerateContent`.
    pub fn is_stream(&self) -> bool {
        self.body.get("stream").and_then(Value::as_bool) == Some(true)
            || self.path.contains(":streamGenerateContent")
    }
}

/// Waiting for requests timed out; holds what had arrived by then.
#[derive(Debug)]
pub struct WaitTimedOut {
    pub received: Vec<RecordedRequest>,
}

impl std::fmt::Display for WaitTimedOut {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            formatter,
            "timed out waiting for requests; {} received",
            self.received.len()
        )
    }
}

impl std::error::Error for WaitTimedOut {}

/// A running mock. Dropping it stops it without waiting; [`MockUpstream::shutdown`] waits.
pub struct MockUpstream {
    local_addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
    server: Option<JoinHandle<std::io::Result<()>>>,
}

impl MockUpstream {
    /// Binds `config.listen` and starts serving on the current tokio runtime.
    pub async fn start(config: MockConfig) -> std::io::Result<MockUpstream> {
        let listener = TcpListener::bind(config.listen).await?;
        let local_addr = listener.local_addr()?;
        let (shutdown, shutdown_receiver) = watch::channel(false);
        let shared = Arc::new(Shared::new(
            config.behavior,
            config.record_requests,
            config
                .valid_keys
                .map(|keys| keys.into_iter().collect::<HashSet<_>>()),
            shutdown_receiver.clone(),
        ));
        let server = tokio::spawn(server::serve(
            listener,
            Arc::clone(&shared),
            shutdown_receiver,
        ));
        Ok(MockUpstream {
            local_addr,
            shared,
            shutdown,
            server: Some(server),
        })
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash or `/v1`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.local_addr)
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Every request recorded since start or the last [`MockUpstream::clear`], oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.recorded()
    }

    /// Requests received since start, recorded or not (rejected ones included).
    pub fn request_count(&self) -> u64 {
        self.shared.received_count()
    }

    /// Waits until at least `count` requests are recorded, then returns them all.
    pub async fn wait_for_requests(
        &self,
        count: usize,
        timeout: Duration,
    ) -> Result<Vec<RecordedRequest>, WaitTimedOut> {
        let mut recorded = self.shared.subscribe_recorded();
        let reached = tokio::time::timeout(timeout, recorded.wait_for(|&seen| seen >= count)).await;
        match reached {
            Ok(Ok(_)) => Ok(self.requests()),
            _ => Err(WaitTimedOut {
                received: self.requests(),
            }),
        }
    }

    /// Forgets recorded requests, the per-model "fail first N" counters and the prompt cache;
    /// the behavior stays.
    pub fn clear(&self) {
        self.shared.clear();
    }

    /// Replaces the behavior for requests that arrive from now on, and restarts the counting of
    /// [`FailWhen::FirstRequests`] and [`FailWhen::Rate`].
    pub fn set_behavior(&self, behavior: Behavior) {
        self.shared.set_behavior(behavior);
    }

    pub fn behavior(&self) -> Behavior {
        self.shared.behavior().0
    }

    /// Switches request recording on or off.
    pub fn set_recording(&self, record: bool) {
        self.shared.set_recording(record);
    }

    /// Stops accepting connections, drops hanging and stalled requests, lets other in-flight
    /// responses finish (for at most five seconds) and waits for the server to stop.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        if let Some(mut server) = self.server.take()
            && tokio::time::timeout(Duration::from_secs(5), &mut server)
                .await
                .is_err()
        {
            server.abort();
        }
    }
}

impl Drop for MockUpstream {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}
