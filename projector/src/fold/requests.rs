//! Request analytics: one row per finished request, idempotent by stream sequence.

use shared::Envelope;
use shared::request::{RequestEvent, RequestFinished};
use time::OffsetDateTime;

/// One row of the `requests` table, as the analytics read it. An absent value is the column's
/// empty value (`""`, `0`), since ClickHouse 18.16's columns here are not nullable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRow {
    pub event_id: uuid::Uuid,
    pub stream_seq: u64,
    pub date: time::Date,
    pub occurred_at: OffsetDateTime,
    pub started_at: OffsetDateTime,
    pub node: String,
    pub request_id: String,
    pub token_id: String,
    pub user_id: String,
    pub model_alias: String,
    pub provider_id: String,
    pub upstream_model: String,
    pub provider_key_id: String,
    pub client_protocol: String,
    pub upstream_protocol: String,
    pub stream: u8,
    pub outcome: String,
    pub error_kind: String,
    pub http_status: u16,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_read_tokens: u64,
    pub cache_write_tokens: u64,
    pub usage_estimated: u8,
    pub cost_nanos: i64,
    pub currency: String,
    pub price_version: u32,
    pub has_ttfb: u8,
    pub ttfb_us: u64,
    pub latency_us: u64,
    pub attempts: u16,
    /// The request's W3C trace id, `""` when it had none.
    pub trace_id: String,
    /// The config sequence the serving node had applied, 0 when the event does not say.
    pub config_seq: u64,
    /// 1 when the response cache answered; the `saved_` fields are then what it saved.
    pub cache_hit: u8,
    pub saved_input_tokens: u64,
    pub saved_output_tokens: u64,
    pub saved_cost_nanos: i64,
    /// The routing strategy of the model, `""` for the default weighted order.
    pub routing_strategy: String,
    /// The cache-affinity session's fingerprint, `""` when none.
    pub routing_session: String,
    /// The team the token was charged to, `""` when none.
    pub team_id: String,
}

impl RequestRow {
    /// Maps a request event to its row.
    #[must_use]
    pub fn from_event(sequence: u64, envelope: &Envelope<RequestEvent>) -> Self {
        let RequestEvent::Finished(finished) = &envelope.body;
        let RequestFinished { usage, cost, .. } = finished;
        Self {
            event_id: envelope.event_id,
            stream_seq: sequence,
            date: envelope.occurred_at.date(),
            occurred_at: envelope.occurred_at,
            started_at: finished.started_at,
            node: envelope.node.clone().unwrap_or_default(),
            request_id: finished.request_id.clone(),
            token_id: finished.token_id.clone().unwrap_or_default(),
            user_id: finished.user_id.clone().unwrap_or_default(),
            model_alias: finished.model_alias.clone(),
            provider_id: finished.provider_id.clone().unwrap_or_default(),
            upstream_model: finished.upstream_model.clone().unwrap_or_default(),
            provider_key_id: finished.provider_key_id.clone().unwrap_or_default(),
            client_protocol: finished.client_protocol.as_str().to_owned(),
            upstream_protocol: finished
                .upstream_protocol
                .map(|p| p.as_str().to_owned())
                .unwrap_or_default(),
            stream: u8::from(finished.stream),
            outcome: finished.outcome.as_str().to_owned(),
            error_kind: finished
                .error_kind
                .map(|kind| kind.as_str().to_owned())
                .unwrap_or_default(),
            http_status: finished.http_status,
            input_tokens: usage.input_tokens,
            output_tokens: usage.output_tokens,
            cache_read_tokens: usage.cache_read_tokens,
            cache_write_tokens: usage.cache_write_tokens,
            usage_estimated: u8::from(usage.estimated),
            cost_nanos: cost.as_ref().map_or(0, |cost| cost.amount.0),
            currency: cost
                .as_ref()
                .map(|cost| cost.currency.clone())
                .unwrap_or_default(),
            price_version: cost.as_ref().map_or(0, |cost| cost.price_version),
            has_ttfb: u8::from(finished.ttfb_us.is_some()),
            ttfb_us: finished.ttfb_us.unwrap_or(0),
            latency_us: finished.latency_us,
            attempts: u16::try_from(finished.attempts.len()).unwrap_or(u16::MAX),
            trace_id: finished.trace_id.clone().unwrap_or_default(),
            config_seq: finished.config_seq.unwrap_or(0),
            cache_hit: u8::from(finished.cache_hit.is_some()),
            saved_input_tokens: finished.cache_hit.as_ref().map_or(0, |hit| {
                hit.saved.input_tokens + hit.saved.cache_read_tokens + hit.saved.cache_write_tokens
            }),
            saved_output_tokens: finished
                .cache_hit
                .as_ref()
                .map_or(0, |hit| hit.saved.output_tokens),
            saved_cost_nanos: finished
                .cache_hit
                .as_ref()
                .and_then(|hit| hit.saved_cost.as_ref())
                .map_or(0, |cost| cost.amount.0),
            routing_strategy: finished
                .routing
                .as_ref()
                .map(|routing| routing.strategy.as_str().to_owned())
                .unwrap_or_default(),
            routing_session: finished
                .routing
                .as_ref()
                .and_then(|routing| routing.session.clone())
                .unwrap_or_default(),
            team_id: finished.team_id.clone().unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fold::spend::tests::finished;
    use shared::request::{Attempt, ErrorKind, Outcome};

    #[test]
    fn when_a_request_finishes_then_its_row_carries_usage_cost_and_timings() {
        let mut request = finished(Outcome::Success);
        request.ttfb_us = Some(7_000);
        request.trace_id = Some("4bf92f3577b34da6a3ce929d0e0e4736".into());
        request.config_seq = Some(17);
        request.attempts = vec![Attempt {
            provider_id: "p1".into(),
            provider_key_id: "k1".into(),
            upstream_model: "m1".into(),
            status: Some(200),
            error_kind: None,
            latency_us: 40_000,
        }];
        let when = Envelope::by_node(RequestEvent::Finished(request), "n1");
        let then = RequestRow::from_event(11, &when);
        assert_eq!(
            then,
            RequestRow {
                event_id: when.event_id,
                stream_seq: 11,
                date: when.occurred_at.date(),
                occurred_at: when.occurred_at,
                started_at: OffsetDateTime::UNIX_EPOCH,
                node: "n1".into(),
                request_id: "r1".into(),
                token_id: "t1".into(),
                user_id: "u1".into(),
                model_alias: "fast".into(),
                provider_id: "p1".into(),
                upstream_model: "m1".into(),
                provider_key_id: "k1".into(),
                client_protocol: "openai_chat".into(),
                upstream_protocol: String::new(),
                stream: 0,
                outcome: "success".into(),
                error_kind: String::new(),
                http_status: 200,
                input_tokens: 100,
                output_tokens: 20,
                cache_read_tokens: 5,
                cache_write_tokens: 0,
                usage_estimated: 0,
                cost_nanos: 1_500,
                currency: "USD".into(),
                price_version: 3,
                has_ttfb: 1,
                ttfb_us: 7_000,
                latency_us: 42_000,
                attempts: 1,
                trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
                config_seq: 17,
                cache_hit: 0,
                saved_input_tokens: 0,
                saved_output_tokens: 0,
                saved_cost_nanos: 0,
                routing_strategy: String::new(),
                routing_session: String::new(),
                team_id: String::new(),
            }
        );
    }

    #[test]
    fn when_a_strategy_routed_the_request_then_the_row_names_it_and_the_session() {
        let mut request = finished(Outcome::Success);
        request.routing = Some(shared::request::RoutingDecision {
            strategy: shared::config::RoutingStrategy::CacheAffinity,
            candidates: 3,
            session_source: Some("prompt_cache_key".into()),
            session: Some("0123456789abcdef".into()),
            in_flight: None,
            ewma_ttfb_us: None,
            explored: false,
        });
        let then = RequestRow::from_event(
            14,
            &Envelope::by_node(RequestEvent::Finished(request), "n1"),
        );
        assert_eq!(
            (
                then.routing_strategy.as_str(),
                then.routing_session.as_str()
            ),
            ("cache_affinity", "0123456789abcdef")
        );
    }

    #[test]
    fn when_the_cache_answers_then_the_row_has_no_usage_and_says_what_was_saved() {
        let mut request = finished(Outcome::Success);
        let saved = request.usage;
        let saved_cost = request.cost.clone();
        request.usage = shared::request::Usage::default();
        request.cost = saved_cost.clone().map(|cost| shared::request::Cost {
            amount: shared::money::Nanos(0),
            ..cost
        });
        request.cache_hit = Some(shared::request::CacheHit {
            source_request_id: "r0".into(),
            saved,
            saved_cost,
        });
        let then = RequestRow::from_event(
            13,
            &Envelope::by_node(RequestEvent::Finished(request), "n1"),
        );
        assert_eq!(
            (
                then.cache_hit,
                then.input_tokens,
                then.cost_nanos,
                then.saved_input_tokens,
                then.saved_output_tokens,
                then.saved_cost_nanos,
            ),
            (1, 0, 0, 105, 20, 1_500)
        );
    }

    #[test]
    fn when_a_request_fails_before_any_upstream_then_absent_values_are_empty() {
        let mut request = finished(Outcome::Error);
        request.token_id = None;
        request.provider_id = None;
        request.cost = None;
        request.error_kind = Some(ErrorKind::NoRouteAvailable);
        let when = Envelope::by_node(RequestEvent::Finished(request), "n1");
        let then = RequestRow::from_event(12, &when);
        assert_eq!(
            (
                then.token_id.as_str(),
                then.provider_id.as_str(),
                then.currency.as_str(),
                then.cost_nanos,
                then.price_version,
                then.has_ttfb,
                then.outcome.as_str(),
                then.error_kind.as_str(),
            ),
            (
                "",
                "",
                "",
                0,
                0,
                0,
                "error",
                ErrorKind::NoRouteAvailable.as_str()
            )
        );
    }
}
