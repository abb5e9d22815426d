//! Spend per token per day, and key health from real traffic, folded from request events.

use shared::Envelope;
use shared::request::{Outcome, RequestEvent};
use time::{Date, OffsetDateTime};

use super::{Effect, KeyCheck};

/// What one request adds to its token's row for its day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpendDelta {
    pub token_id: String,
    pub day: Date,
    /// Empty when the request had no cost; an empty currency never replaces a known one.
    pub currency: String,
    pub requests: u64,
    pub errors: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_read_tokens: u64,
    pub cache_write_tokens: u64,
    pub cost_nanos: i64,
    pub last_used_at: OffsetDateTime,
}

/// What a request event does: one key check per upstream attempt, in order (the latest wins),
/// then the request's spend, if it was made with a token.
#[must_use]
pub fn effects(envelope: &Envelope<RequestEvent>) -> Vec<Effect> {
    let RequestEvent::Finished(finished) = &envelope.body;
    let at = envelope.occurred_at;
    let mut effects: Vec<Effect> = finished
        .attempts
        .iter()
        .map(|attempt| Effect::KeyCheck(KeyCheck::from_attempt(attempt, at)))
        .collect();
    if let Some(token_id) = &finished.token_id {
        let usage = &finished.usage;
        let (cost_nanos, currency) = finished.cost.as_ref().map_or((0, String::new()), |cost| {
            (cost.amount.0, cost.currency.clone())
        });
        effects.push(Effect::Spend(SpendDelta {
            token_id: token_id.clone(),
            day: at.date(),
            currency,
            requests: 1,
            errors: u64::from(finished.outcome == Outcome::Error),
            input_tokens: usage.input_tokens,
            output_tokens: usage.output_tokens,
            cache_read_tokens: usage.cache_read_tokens,
            cache_write_tokens: usage.cache_write_tokens,
            cost_nanos,
            last_used_at: at,
        }));
    }
    effects
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use shared::config::ClientProtocol;
    use shared::money::Nanos;
    use shared::request::{Attempt, Cost, ErrorKind, RequestFinished, Usage};

    /// A finished request by token `t1`: 100 tokens in, 20 out, 5 cached, costing 1500 USD
    /// nanos, with no attempts.
    pub(crate) fn finished(outcome: Outcome) -> RequestFinished {
        RequestFinished {
            request_id: "r1".into(),
            token_id: Some("t1".into()),
            user_id: Some("u1".into()),
            model_alias: "fast".into(),
            provider_id: Some("p1".into()),
            upstream_model: Some("m1".into()),
            provider_key_id: Some("k1".into()),
            client_protocol: ClientProtocol::OpenaiChat,
            upstream_protocol: None,
            stream: false,
            outcome,
            error_kind: None,
            http_status: 200,
            usage: Usage {
                input_tokens: 100,
                output_tokens: 20,
                cache_read_tokens: 5,
                cache_write_tokens: 0,
                estimated: false,
            },
            cost: Some(Cost {
                amount: Nanos(1_500),
                currency: "USD".into(),
                price_version: 3,
            }),
            started_at: OffsetDateTime::UNIX_EPOCH,
            ttfb_us: None,
            latency_us: 42_000,
            attempts: Vec::new(),
            warnings: Vec::new(),
        }
    }

    #[test]
    fn when_a_token_makes_a_request_then_its_day_gains_one_request_its_tokens_and_cost() {
        let when = Envelope::by_node(RequestEvent::Finished(finished(Outcome::Success)), "n1");
        assert_eq!(
            effects(&when),
            vec![Effect::Spend(SpendDelta {
                token_id: "t1".into(),
                day: when.occurred_at.date(),
                currency: "USD".into(),
                requests: 1,
                errors: 0,
                input_tokens: 100,
                output_tokens: 20,
                cache_read_tokens: 5,
                cache_write_tokens: 0,
                cost_nanos: 1_500,
                last_used_at: when.occurred_at,
            })]
        );
    }

    #[test]
    fn when_a_request_fails_without_a_cost_then_it_counts_an_error_and_no_currency() {
        let mut failed = finished(Outcome::Error);
        failed.cost = None;
        let when = Envelope::by_node(RequestEvent::Finished(failed), "n1");
        let then = effects(&when);
        let [Effect::Spend(delta)] = then.as_slice() else {
            panic!("one spend effect");
        };
        assert_eq!(
            (delta.errors, delta.cost_nanos, delta.currency.as_str()),
            (1, 0, "")
        );
    }

    #[test]
    fn when_a_request_has_no_token_then_only_its_attempts_reach_key_health() {
        let mut anonymous = finished(Outcome::Success);
        anonymous.token_id = None;
        anonymous.attempts = vec![
            Attempt {
                provider_id: "p1".into(),
                provider_key_id: "k1".into(),
                upstream_model: "m1".into(),
                status: Some(503),
                error_kind: Some(ErrorKind::UpstreamServerError),
                latency_us: 3_000,
            },
            Attempt {
                provider_id: "p2".into(),
                provider_key_id: "k2".into(),
                upstream_model: "m1".into(),
                status: Some(200),
                error_kind: None,
                latency_us: 9_000,
            },
        ];
        let when = Envelope::by_node(RequestEvent::Finished(anonymous.clone()), "n1");
        assert_eq!(
            effects(&when),
            anonymous
                .attempts
                .iter()
                .map(|attempt| Effect::KeyCheck(KeyCheck::from_attempt(attempt, when.occurred_at)))
                .collect::<Vec<_>>()
        );
    }
}
