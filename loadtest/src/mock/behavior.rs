//! What the mock does with a request: delays, sizes, failures and broken connections.
//!
//! A [`Behavior`] comes from the mock's configuration (changeable at run time with
//! `MockUpstream::set_behavior`), and the requested model name can override any of its fields.
//! Model names are the only per-request channel because the gateway must not forward client
//! headers upstream; see `loadtest/README.md` for the conventions.

use std::time::Duration;

/// How the mock answers. `Behavior::default()` answers promptly and successfully with eight
/// chunks of one token each.
#[derive(Clone, Debug, PartialEq)]
pub struct Behavior {
    /// Waited before anything is sent, headers included.
    pub first_byte_delay: Duration,
    /// Waited before each streamed content delta but the first.
    pub chunk_delay: Duration,
    /// Content deltas in a stream (at most one per output token).
    pub chunks: u32,
    /// Output tokens (words) generated; `None` means one per chunk.
    pub output_tokens: Option<u32>,
    /// An injected failure, answered with the dialect's real error body.
    pub failure: Option<Failure>,
    /// Drop the connection after this many content deltas (for a plain response: after half of
    /// the body).
    pub disconnect_after_chunks: Option<u32>,
    /// Stop sending, but keep the connection open, after this many content deltas.
    pub stall_after_chunks: Option<u32>,
    /// Keep a stream's connection open after its last event, until the mock shuts down (a
    /// provider slow to end the body after its final event).
    pub linger: bool,
    /// Never answer; the connection is dropped when the mock shuts down.
    pub hang: bool,
    /// Top-level request fields the "model" refuses with the provider's 400 for an unsupported
    /// parameter (OpenAI's `unsupported_parameter`, Anthropic's "Extra inputs are not
    /// permitted", Gemini's "Unknown name … Cannot find field", which also looks inside
    /// `generationConfig`), as a model without reasoning refuses `reasoning_effort`.
    pub refuses: Vec<String>,
}

impl Default for Behavior {
    fn default() -> Self {
        Self {
            first_byte_delay: Duration::ZERO,
            chunk_delay: Duration::ZERO,
            chunks: 8,
            output_tokens: None,
            failure: None,
            disconnect_after_chunks: None,
            stall_after_chunks: None,
            linger: false,
            hang: false,
            refuses: Vec::new(),
        }
    }
}

impl Behavior {
    /// Every request fails with `status`.
    pub fn failing(status: u16) -> Self {
        Self {
            failure: Some(Failure::always(status)),
            ..Self::default()
        }
    }

    /// Output tokens this behavior generates for a text answer.
    pub fn output_token_count(&self) -> u32 {
        self.output_tokens
            .unwrap_or(self.chunks)
            .min(super::text::MAX_OUTPUT_TOKENS)
    }

    /// Applies the directives of a `mock-…` model name on top of this behavior, and returns the
    /// per-model "fail the first N requests" count if the name carries one.
    pub(crate) fn apply_model_name(&mut self, model: &str) -> Option<u32> {
        let directives = model.strip_prefix("mock-")?;
        let mut fail_first = None;
        let mut status = None;
        let mut retry_after = None;
        let mut words = directives.split('-').peekable();
        while let Some(word) = words.next() {
            match word {
                "fail" => {
                    if words.next_if_eq(&"first").is_some() {
                        fail_first = number(&mut words).map(saturate_u32);
                    }
                    status = number(&mut words)
                        .map(saturate_u16)
                        .or(status)
                        .or(Some(500));
                }
                "retry" if words.next_if_eq(&"after").is_some() => {
                    retry_after = number(&mut words);
                }
                "slow" if words.next_if_eq(&"first").is_some() => {
                    if words.next_if_eq(&"byte").is_some()
                        && let Some(millis) = number(&mut words)
                    {
                        self.first_byte_delay = Duration::from_millis(millis);
                    }
                }
                "chunk" if words.next_if_eq(&"delay").is_some() => {
                    if let Some(millis) = number(&mut words) {
                        self.chunk_delay = Duration::from_millis(millis);
                    }
                }
                "chunks" => {
                    if let Some(count) = number(&mut words) {
                        self.chunks = saturate_u32(count).max(1);
                    }
                }
                "tokens" => {
                    if let Some(count) = number(&mut words) {
                        self.output_tokens = Some(saturate_u32(count).max(1));
                    }
                }
                "disconnect" if words.next_if_eq(&"after").is_some() => {
                    self.disconnect_after_chunks = number(&mut words).map(saturate_u32);
                }
                "stall" if words.next_if_eq(&"after").is_some() => {
                    self.stall_after_chunks = number(&mut words).map(saturate_u32);
                }
                "hang" => self.hang = true,
                "linger" => self.linger = true,
                "refuses" => {
                    if let Some(field) = words.next() {
                        self.refuses.push(field.to_owned());
                    }
                }
                other => {
                    if let Ok(code @ 400..=599) = other.parse::<u16>() {
                        status = Some(code);
                    }
                }
            }
        }
        if let Some(status) = status {
            self.failure = Some(Failure {
                status,
                retry_after_seconds: retry_after,
                // The per-model counter decides; the name's failure applies to the requests it
                // lets through.
                when: FailWhen::Always,
            });
        } else if let (Some(seconds), Some(failure)) = (retry_after, self.failure.as_mut()) {
            failure.retry_after_seconds = Some(seconds);
        }
        fail_first
    }
}

type Words<'a> = std::iter::Peekable<std::str::Split<'a, char>>;

/// Takes the next word if it is a number.
fn number(words: &mut Words<'_>) -> Option<u64> {
    words
        .next_if(|word| word.parse::<u64>().is_ok())
        .and_then(|word| word.parse::<u64>().ok())
}

fn saturate_u32(value: u64) -> u32 {
    u32::try_from(value).unwrap_or(u32::MAX)
}

fn saturate_u16(value: u64) -> u16 {
    u16::try_from(value).unwrap_or(u16::MAX)
}

/// An injected failure.
#[derive(Clone, Debug, PartialEq)]
pub struct Failure {
    /// HTTP status, answered with the error body the dialect really uses for it.
    pub status: u16,
    /// Sent as the `Retry-After` header, in seconds.
    pub retry_after_seconds: Option<u64>,
    /// Which requests fail.
    pub when: FailWhen,
}

impl Failure {
    /// Every request fails.
    pub fn always(status: u16) -> Self {
        Self {
            status,
            retry_after_seconds: None,
            when: FailWhen::Always,
        }
    }

    /// The first `count` requests after the behavior is set fail; later ones succeed.
    pub fn first_requests(count: u32, status: u16) -> Self {
        Self {
            status,
            retry_after_seconds: None,
            when: FailWhen::FirstRequests(count),
        }
    }

    /// A fraction of requests fails, spread evenly and deterministically (request `n`, counted
    /// from 0 since the behavior was set, fails when `floor((n + 1) * rate) > floor(n * rate)`).
    pub fn rate(rate: f64, status: u16) -> Self {
        Self {
            status,
            retry_after_seconds: None,
            when: FailWhen::Rate(rate.clamp(0.0, 1.0)),
        }
    }

    /// Adds a `Retry-After` header to the failure.
    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after_seconds = Some(seconds);
        self
    }

    /// Whether request number `ordinal` (from 0, counted since the behavior was set) fails.
    pub(crate) fn applies_to(&self, ordinal: u64) -> bool {
        match self.when {
            FailWhen::Always => true,
            FailWhen::FirstRequests(count) => ordinal < u64::from(count),
            FailWhen::Rate(rate) => {
                #[expect(
                    clippy::cast_precision_loss,
                    reason = "request ordinals stay far below 2^52"
                )]
                let position = ordinal as f64;
                ((position + 1.0) * rate).floor() > (position * rate).floor()
            }
        }
    }
}

/// Which requests an injected [`Failure`] applies to.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum FailWhen {
    /// Every request.
    Always,
    /// The first N requests.
    FirstRequests(u32),
    /// An evenly spread fraction of the requests, in `[0, 1]`.
    Rate(f64),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from_name(model: &str) -> (Behavior, Option<u32>) {
        let mut behavior = Behavior::default();
        let fail_first = behavior.apply_model_name(model);
        (behavior, fail_first)
    }

    #[test]
    fn names_without_the_prefix_change_nothing() {
        assert_eq!(from_name("gpt-4o-500"), (Behavior::default(), None));
    }

    #[test]
    fn documented_names_parse() {
        assert_eq!(from_name("mock-fail-500").0, Behavior::failing(500));
        assert_eq!(from_name("mock-529").0, Behavior::failing(529));
        let (behavior, _) = from_name("mock-429-retry-after-2");
        assert_eq!(
            behavior.failure,
            Some(Failure::always(429).with_retry_after(2))
        );
        assert_eq!(
            from_name("mock-slow-first-byte-3000").0.first_byte_delay,
            Duration::from_millis(3000)
        );
        assert_eq!(from_name("mock-chunks-50").0.chunks, 50);
        assert_eq!(from_name("mock-tokens-200").0.output_token_count(), 200);
        assert_eq!(
            from_name("mock-disconnect-after-5")
                .0
                .disconnect_after_chunks,
            Some(5)
        );
        assert_eq!(
            from_name("mock-stall-after-2").0.stall_after_chunks,
            Some(2)
        );
        assert!(from_name("mock-hang").0.hang);
        assert!(from_name("mock-linger").0.linger);
        assert_eq!(
            from_name("mock-chunk-delay-20").0.chunk_delay,
            Duration::from_millis(20)
        );
        let (behavior, fail_first) = from_name("mock-fail-first-2-503");
        assert_eq!(fail_first, Some(2));
        assert_eq!(behavior.failure.map(|failure| failure.status), Some(503));
    }

    #[test]
    fn refused_parameters_are_named_in_the_model() {
        assert_eq!(
            from_name("mock-refuses-reasoning_effort-refuses-top_k")
                .0
                .refuses,
            vec!["reasoning_effort".to_owned(), "top_k".to_owned()]
        );
    }

    #[test]
    fn directives_combine_and_unknown_words_are_ignored() {
        let (behavior, _) = from_name("mock-gpt-4o-chunks-50-chunk-delay-10-tokens-100");
        assert_eq!(behavior.chunks, 50);
        assert_eq!(behavior.chunk_delay, Duration::from_millis(10));
        assert_eq!(behavior.output_token_count(), 100);
        assert_eq!(behavior.failure, None);
    }

    #[test]
    fn rate_is_spread_evenly() {
        let failure = Failure::rate(0.25, 500);
        let failed = (0..100).filter(|&n| failure.applies_to(n)).count();
        assert_eq!(failed, 25);
        assert!(!Failure::rate(0.0, 500).applies_to(0));
        assert!((0..10).all(|n| Failure::rate(1.0, 500).applies_to(n)));
        let first = Failure::first_requests(2, 500);
        assert!(first.applies_to(0) && first.applies_to(1) && !first.applies_to(2));
    }
}
