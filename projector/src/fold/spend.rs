//! Spend per token per day, and key health from real traffic, folded from request events.

use shared::Envelope;
use shared::request::{Outcome, RequestEvent};
use time::{Date, OffsetDateTime};

use super::{Effect, KeyCheck, KeyHealth};

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

impl SpendDelta {
    /// Adds a later request of the same token and day: sums, the latest use, and the latest
    /// known currency (an empty one never replaces a known one).
    pub fn then(&mut self, later: &Self) {
        if !later.currency.is_empty() {
            self.currency.clone_from(&later.currency);
        }
        self.requests += later.requests;
        self.errors += later.errors;
        self.input_tokens += later.input_tokens;
        self.output_tokens += later.output_tokens;
        self.cache_read_tokens += later.cache_read_tokens;
        self.cache_write_tokens += later.cache_write_tokens;
        self.cost_nanos = self.cost_nanos.saturating_add(later.cost_nanos);
        self.last_used_at = self.last_used_at.max(later.last_used_at);
    }
}

/// The effects of a batch of request events, merged into one key-health write per key and one
/// spend write per token and day (in the order each was first seen). Applied to the stored rows
/// by the writers' upserts, they leave the same rows as every event's effects applied in turn,
/// with a few writes per batch instead of two or more per request.
#[must_use]
pub fn merged(effects: impl IntoIterator<Item = Effect>) -> Vec<Effect> {
    let mut merged: Vec<Effect> = Vec::new();
    let mut keys: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    let mut days: std::collections::HashMap<(String, Date), usize> =
        std::collections::HashMap::new();
    for effect in effects {
        match effect {
            Effect::KeyCheck(check) => match keys.get(&check.provider_key_id) {
                Some(&index) => {
                    if let Effect::KeyHealth(health) = &mut merged[index] {
                        health.then(&check);
                    }
                }
                None => {
                    keys.insert(check.provider_key_id.clone(), merged.len());
                    merged.push(Effect::KeyHealth(KeyHealth::from(&check)));
                }
            },
            Effect::Spend(delta) => match days.get(&(delta.token_id.clone(), delta.day)) {
                Some(&index) => {
                    if let Effect::Spend(total) = &mut merged[index] {
                        total.then(&delta);
                    }
                }
                None => {
                    days.insert((delta.token_id.clone(), delta.day), merged.len());
                    merged.push(Effect::Spend(delta));
                }
            },
            other => merged.push(other),
        }
    }
    merged
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
            trace_id: None,
            config_seq: None,
            cache_hit: None,
            routing: None,
            team_id: None,
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

    /// The rows the writers' upserts leave, modelled: `upsert` is the SQL's merge of one
    /// effect into a stored row (GREATEST of times, COALESCE of the error, sums of spend).
    #[derive(Default, Debug, PartialEq)]
    struct Rows {
        keys: std::collections::BTreeMap<String, KeyHealth>,
        days: std::collections::BTreeMap<(String, Date), SpendDelta>,
    }

    impl Rows {
        fn upsert(&mut self, effect: &Effect) {
            match effect {
                Effect::KeyCheck(check) => self.upsert(&Effect::KeyHealth(KeyHealth::from(check))),
                Effect::KeyHealth(new) => {
                    let row = self
                        .keys
                        .entry(new.provider_key_id.clone())
                        .or_insert_with(|| new.clone());
                    row.last_success_at = row.last_success_at.max(new.last_success_at);
                    row.last_error_at = row.last_error_at.max(new.last_error_at);
                    row.last_error = new.last_error.clone().or(row.last_error.take());
                    row.last_status = new.last_status;
                    row.last_latency_ms = new.last_latency_ms;
                    row.updated_at = new.updated_at;
                }
                Effect::Spend(delta) => {
                    match self.days.get_mut(&(delta.token_id.clone(), delta.day)) {
                        Some(row) => row.then(delta),
                        None => {
                            self.days
                                .insert((delta.token_id.clone(), delta.day), delta.clone());
                        }
                    }
                }
                _ => unreachable!("not a request effect"),
            }
        }
    }

    #[test]
    fn a_merged_batch_leaves_the_same_rows_as_each_event_in_turn() {
        // A small deterministic generator: tokens, days, keys, failures, costs without a
        // currency and times out of order (events of several nodes in one batch).
        let mut state = 0x2545_f491_u64;
        let mut next = move |below: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % below
        };
        for _ in 0..50 {
            let mut stored = Rows::default();
            // Rows already there from an earlier batch.
            let earlier = (0..3).map(|_| random_event(&mut next)).collect::<Vec<_>>();
            for event in &earlier {
                effects(event)
                    .iter()
                    .for_each(|effect| stored.upsert(effect));
            }
            let batch: Vec<_> = (0..1 + next(40)).map(|_| random_event(&mut next)).collect();
            let mut one_by_one = Rows {
                keys: stored.keys.clone(),
                days: stored.days.clone(),
            };
            for event in &batch {
                effects(event)
                    .iter()
                    .for_each(|effect| one_by_one.upsert(effect));
            }
            let merged_effects = merged(batch.iter().flat_map(effects));
            let keys = merged_effects
                .iter()
                .filter(|e| matches!(e, Effect::KeyHealth(_)))
                .count();
            let days = merged_effects
                .iter()
                .filter(|e| matches!(e, Effect::Spend(_)))
                .count();
            assert!(
                keys <= 3 && days <= 6,
                "{keys} key writes, {days} spend writes"
            );
            merged_effects
                .iter()
                .for_each(|effect| stored.upsert(effect));
            assert_eq!(stored, one_by_one);
        }
    }

    fn random_event(next: &mut impl FnMut(u64) -> u64) -> Envelope<RequestEvent> {
        let mut request = finished(if next(4) == 0 {
            Outcome::Error
        } else {
            Outcome::Success
        });
        request.token_id = (next(5) != 0).then(|| format!("t{}", next(3)));
        request.usage.input_tokens = next(1_000);
        request.cost = (next(3) != 0).then(|| Cost {
            amount: Nanos(i64::try_from(next(10_000)).unwrap()),
            currency: ["USD", "EUR"][usize::try_from(next(2)).unwrap()].into(),
            price_version: 1,
        });
        request.attempts = (0..next(3))
            .map(|_| {
                let fails = next(3) == 0;
                Attempt {
                    provider_id: format!("p{}", next(2)),
                    provider_key_id: format!("k{}", next(3)),
                    upstream_model: "m1".into(),
                    status: Some(if fails { 503 } else { 200 }),
                    error_kind: fails.then_some(ErrorKind::UpstreamServerError),
                    latency_us: next(50_000),
                }
            })
            .collect();
        let mut event = Envelope::by_node(RequestEvent::Finished(request), "n1");
        event.occurred_at = OffsetDateTime::UNIX_EPOCH
            + time::Duration::days(i64::try_from(next(2)).unwrap())
            + time::Duration::seconds(i64::try_from(next(1_000)).unwrap());
        event
    }
}
