//! The analytics API over real ClickHouse rows folded by a real projector: summary, time
//! series, breakdown, request log, CSV export, dashboard; members see only their own requests.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "a test fails loudly"
)]

use crate::common;

use async_nats::jetstream::message::PublishMessage;
use common::Harness;
use kit::testing::wait_until;
use serde_json::Value;
use shared::config::ClientProtocol;
use shared::money::Nanos;
use shared::request::{CacheHit, Cost, ErrorKind, Outcome, RequestEvent, RequestFinished, Usage};
use shared::{Envelope, EventBody as _};

fn request(
    index: u64,
    user_id: &str,
    token_id: &str,
    model: &str,
    outcome: Outcome,
) -> Envelope<RequestEvent> {
    let mut finished = RequestFinished {
        request_id: format!("req-{index}"),
        token_id: Some(token_id.to_owned()),
        user_id: Some(user_id.to_owned()),
        // The first three were charged to a team.
        team_id: (index <= 3).then(|| "eng".to_owned()),
        model_alias: model.to_owned(),
        provider_id: Some("prov".into()),
        upstream_model: Some(format!("{model}-upstream")),
        provider_key_id: Some("key, with comma".into()),
        client_protocol: ClientProtocol::Anthropic,
        upstream_protocol: None,
        stream: index.is_multiple_of(2),
        outcome,
        error_kind: (outcome == Outcome::Error).then_some(ErrorKind::UpstreamServerError),
        http_status: if outcome == Outcome::Error { 502 } else { 200 },
        usage: Usage {
            input_tokens: 100 * index,
            output_tokens: 10 * index,
            cache_read_tokens: index,
            ..Usage::default()
        },
        cost: Some(Cost {
            amount: Nanos(1_000_000 * i64::try_from(index).unwrap()),
            currency: "USD".into(),
            price_version: 1,
        }),
        started_at: time::OffsetDateTime::now_utc(),
        ttfb_us: Some(1_000 * index),
        latency_us: 10_000 * index,
        attempts: vec![],
        warnings: vec![],
        trace_id: Some(format!("{index:032x}")),
        config_seq: Some(40 + index),
        cache_hit: None,
        // Even requests were routed by a strategy (cache affinity on a session).
        routing: index
            .is_multiple_of(2)
            .then(|| shared::request::RoutingDecision {
                strategy: shared::config::RoutingStrategy::CacheAffinity,
                candidates: 2,
                session_source: Some("prompt_cache_key".into()),
                session: Some(format!("{index:016x}")),
                in_flight: None,
                ewma_ttfb_us: None,
                explored: false,
            }),
    };
    if index == CACHED {
        // Answered by the response cache: no usage, no cost, and what it saved.
        finished.cache_hit = Some(CacheHit {
            source_request_id: "req-1".into(),
            saved: finished.usage,
            saved_cost: finished.cost.clone(),
        });
        finished.usage = Usage::default();
        finished.cost = Some(Cost {
            amount: Nanos(0),
            currency: "USD".into(),
            price_version: 1,
        });
    }
    Envelope::by_node(RequestEvent::Finished(finished), "ingress-test")
}

/// The request the response cache answered.
const CACHED: u64 = 5;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn analytics_numbers_are_exact_and_members_see_their_own() {
    let harness = Harness::start().await;
    let admin = harness.admin().await;
    let (member_id, member) = harness.user_session(&admin, "mia", "member").await;
    let (_, viewer) = harness.user_session(&admin, "vic", "viewer").await;
    let jetstream = harness.jetstream().await;
    // A real token of the member's, to see its use on the token itself.
    let (status, created) = harness
        .post(
            "/api/v1/tokens",
            &member,
            serde_json::json!({"name": "mine"}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let token_id = created["id"].as_str().unwrap().to_owned();
    // Ten requests: 1..=8 by admin (gpt, every fourth an error), 9..=10 by the member (claude).
    let mut last_started = time::OffsetDateTime::UNIX_EPOCH;
    for index in 1..=10_u64 {
        let (user, model) = if index <= 8 {
            ("admin-user", "gpt")
        } else {
            (member_id.as_str(), "claude")
        };
        let outcome = if index.is_multiple_of(4) {
            Outcome::Error
        } else {
            Outcome::Success
        };
        let token = if index <= 8 {
            "tok-admin"
        } else {
            token_id.as_str()
        };
        let event = request(index, user, token, model, outcome);
        let RequestEvent::Finished(finished) = &event.body;
        last_started = last_started.max(finished.started_at);
        let message = PublishMessage::build()
            .message_id(event.event_id.to_string())
            .payload(event.to_bytes().unwrap().into());
        jetstream
            .send_publish(event.body.subject(), message)
            .await
            .unwrap()
            .await
            .unwrap();
    }
    let summary = wait_until(kit::testing::liveness(), "ten rows", || async {
        let (status, body) = harness.get("/api/v1/analytics/summary", &viewer).await;
        (status == 200 && body["requests"] == 10).then_some(body)
    })
    .await;
    assert_eq!(summary["success"], 8);
    assert_eq!(summary["error"], 2);
    // Request 5 came from the cache: its 500 + 5 input, 50 output tokens and 0.005 USD are
    // saved, not spent.
    assert_eq!(summary["input_tokens"], 5_000);
    assert_eq!(summary["output_tokens"], 500);
    assert_eq!(summary["cache_read_tokens"], 50);
    assert_eq!(summary["cost"]["amount"], "0.05");
    assert_eq!(summary["cache"]["hits"], 1);
    assert_eq!(summary["cache"]["saved_input_tokens"], 505);
    assert_eq!(summary["cache"]["saved_output_tokens"], 50);
    assert_eq!(summary["cache"]["saved_cost"]["amount"], "0.005");
    assert_eq!(summary["cost"]["currency"], "USD");
    assert!((summary["error_rate"].as_f64().unwrap() - 0.2).abs() < 1e-9);
    assert!(summary["latency_ms"]["p50"].as_f64().unwrap() > 0.0);
    // A range that ends a microsecond after the last request, in the same second: rows keep
    // whole seconds, and the last second's rows are in the range.
    let range = |at: time::OffsetDateTime| {
        at.format(&time::format_description::well_known::Rfc3339)
            .unwrap()
            .replace('+', "%2B")
    };
    let (status, to_now) = harness
        .get(
            &format!(
                "/api/v1/analytics/summary?from={}&to={}",
                range(last_started - time::Duration::hours(1)),
                range(last_started + time::Duration::microseconds(1))
            ),
            &viewer,
        )
        .await;
    assert_eq!(status, 200, "{to_now}");
    assert_eq!(
        to_now["requests"], 10,
        "a range ending within the requests' last second"
    );

    let (status, filtered) = harness
        .get("/api/v1/analytics/summary?model=claude", &viewer)
        .await;
    assert_eq!(status, 200);
    assert_eq!(filtered["requests"], 2);

    // A member sees only their own, and may not ask for someone else's.
    let (_, own) = harness.get("/api/v1/analytics/summary", &member).await;
    assert_eq!(own["requests"], 2);
    assert_eq!(own["cost"]["amount"], "0.019");
    let (status, _) = harness
        .get("/api/v1/analytics/summary?user=admin-user", &member)
        .await;
    assert_eq!(status, 403);

    let (_series_status, series) = harness
        .get("/api/v1/analytics/timeseries?bucket=minute", &viewer)
        .await;
    assert_eq!(_series_status, 200, "{series}");
    let total: u64 = series["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|point| point["requests"].as_u64().unwrap())
        .sum();
    assert_eq!(total, 10);

    let (_, breakdown) = harness
        .get("/api/v1/analytics/breakdown?by=model&top=5", &viewer)
        .await;
    let rows = breakdown["rows"].as_array().unwrap();
    assert_eq!(rows[0]["key"], "gpt");
    assert_eq!(rows[0]["requests"], 8);
    assert_eq!(rows[0]["errors"], 2);
    assert_eq!(rows[0]["cache_hits"], 1);
    assert_eq!(rows[1]["cache_hits"], 0);
    assert_eq!(rows[1]["key"], "claude");
    assert_eq!(rows[1]["cost"], "0.019");
    let (_, by_team) = harness
        .get("/api/v1/analytics/breakdown?by=team", &viewer)
        .await;
    let rows = by_team["rows"].as_array().unwrap();
    assert_eq!(
        (&rows[0]["key"], &rows[0]["requests"]),
        (&serde_json::json!(""), &serde_json::json!(7)),
        "{by_team}"
    );
    assert_eq!(
        (&rows[1]["key"], &rows[1]["requests"], &rows[1]["cost"]),
        (
            &serde_json::json!("eng"),
            &serde_json::json!(3),
            &serde_json::json!("0.006")
        ),
        "{by_team}"
    );
    let (_, team_page) = harness
        .get("/api/v1/analytics/requests?team=eng", &viewer)
        .await;
    assert_eq!(team_page["total"], 3, "{team_page}");
    assert_eq!(team_page["rows"][0]["team_id"], "eng");

    let (_, page) = harness
        .get("/api/v1/analytics/requests?limit=4&offset=0", &viewer)
        .await;
    assert_eq!(page["total"], 10);
    assert_eq!(page["rows"].as_array().unwrap().len(), 4);
    assert!(page["rows"][0].get("request_id").is_some());
    let (_, rest) = harness
        .get("/api/v1/analytics/requests?limit=4&offset=8", &viewer)
        .await;
    assert_eq!(rest["rows"].as_array().unwrap().len(), 2);

    let response = harness
        .http
        .get(format!(
            "{}/api/v1/analytics/requests.csv?model=gpt",
            harness.base
        ))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let csv = response.text().await.unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert!(lines[0].starts_with("occurred_at,request_id"));
    assert_eq!(lines.len(), 9, "header plus eight gpt rows");
    assert!(
        lines[1].contains("\"key, with comma\""),
        "CSV quoting: {}",
        lines[1]
    );
    // The trace id, the price version and the config sequence: the last CSV columns, fields
    // of each row, and (the trace id) a filter.
    assert!(
        lines[0].ends_with(
            ",attempts,trace_id,price_version,config_seq,cache_hit,saved_input_tokens,saved_output_tokens,saved_cost,routing_strategy,routing_session,team_id"
        ),
        "{}",
        lines[0]
    );
    assert!(
        lines[1..].iter().all(|line| {
            let all: Vec<&str> = line.rsplitn(11, ',').collect();
            let (team, last) = (all[0], &all[1..]);
            let index = u64::from_str_radix(last[8], 16).unwrap_or(0);
            let routing = if index.is_multiple_of(2) {
                [format!("{index:016x}"), "cache_affinity".to_owned()]
            } else {
                [String::new(), String::new()]
            };
            last[8].len() == 32
                && team == if index <= 3 { "eng" } else { "" }
                && last[7] == "1"
                && last[6].parse::<u64>().is_ok_and(|seq| seq == 40 + index)
                && last[0] == routing[0]
                && last[1] == routing[1]
                && if index == CACHED {
                    last[2..6] == ["0.005", "50", "505", "true"]
                } else {
                    last[2..6] == ["0", "0", "0", "false"]
                }
        }),
        "{csv}"
    );
    let (status, traced) = harness
        .get(
            &format!("/api/v1/analytics/requests?trace_id={:032x}", 3),
            &viewer,
        )
        .await;
    assert_eq!(status, 200, "{traced}");
    assert_eq!(traced["total"], 1, "{traced}");
    assert_eq!(traced["rows"][0]["request_id"], "req-3");
    assert_eq!(traced["rows"][0]["trace_id"], format!("{:032x}", 3));
    assert_eq!(traced["rows"][0]["config_seq"], 43);
    assert_eq!(traced["rows"][0]["price_version"], 1);
    assert_eq!(traced["rows"][0]["cache_hit"], false);
    assert_eq!(traced["rows"][0]["saved"], Value::Null);
    assert_eq!(
        traced["rows"][0]["routing_strategy"],
        Value::Null,
        "req-3 had no strategy"
    );
    let (_, routed) = harness
        .get(
            &format!("/api/v1/analytics/requests?trace_id={:032x}", 4),
            &viewer,
        )
        .await;
    assert_eq!(
        routed["rows"][0]["routing_strategy"], "cache_affinity",
        "{routed}"
    );
    assert_eq!(routed["rows"][0]["routing_session"], format!("{:016x}", 4));
    let (_, cached) = harness
        .get(
            &format!("/api/v1/analytics/requests?trace_id={CACHED:032x}"),
            &viewer,
        )
        .await;
    assert_eq!(cached["rows"][0]["cache_hit"], true, "{cached}");
    assert_eq!(cached["rows"][0]["cost"], "0");
    assert_eq!(
        cached["rows"][0]["saved"],
        serde_json::json!({"input_tokens": 505, "output_tokens": 50, "cost": "0.005"})
    );

    let (status, dashboard) = harness.get("/api/v1/dashboard", &viewer).await;
    assert_eq!(status, 200, "{dashboard}");
    assert_eq!(dashboard["requests_today"], 10);
    assert_eq!(dashboard["spend_today"]["amount"], "0.05");
    assert!(dashboard["requests_last_minute"].as_u64().unwrap() >= 10);

    // The member's token shows its use (from the projector's spend view).
    let usage = wait_until(kit::testing::liveness(), "token usage", || async {
        let (_, token) = harness
            .get(&format!("/api/v1/tokens/{token_id}"), &member)
            .await;
        (token["usage"]["requests_today"] == 2).then_some(token["usage"].clone())
    })
    .await;
    assert_eq!(usage["spend_today"]["amount"], "0.019");
    assert!(usage["last_used_at"].is_string());

    // Bad input is a 400 naming the field; no SQL is built from it.
    let ten_days_ago = (time::OffsetDateTime::now_utc() - time::Duration::days(10))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let too_many_buckets =
        format!("/api/v1/analytics/timeseries?bucket=minute&from={ten_days_ago}");
    for (path, field) in [
        ("/api/v1/analytics/summary?from=yesterday", "from"),
        (
            "/api/v1/analytics/summary?model=x'%20OR%201=1--&nonsense=1",
            "nonsense",
        ),
        ("/api/v1/analytics/breakdown?by=password_hash", "by"),
        (too_many_buckets.as_str(), "bucket"),
        (
            "/api/v1/analytics/summary?from=2020-01-01T00:00:00Z",
            "from",
        ),
    ] {
        let (status, body) = harness.get(path, &viewer).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert_eq!(body["error"]["field"], field, "{path}: {body}");
    }
    let (status, body) = harness
        .get("/api/v1/analytics/summary?model=x'%20OR%201=1--", &viewer)
        .await;
    assert_eq!(
        (status, &body["requests"]),
        (200, &Value::from(0)),
        "a quote is just a value"
    );
}
