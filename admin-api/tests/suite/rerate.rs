//! Re-rating over real ClickHouse rows folded by a real projector, with prices from the config
//! stream: a model's price history; re-rating at the version that was charged gives back the
//! charge to the nano; at a later version or at given prices it gives what `Price::cost`
//! gives per request; by token, user and day; as CSV; and members see only their own.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "a test fails loudly"
)]

use crate::common;

use async_nats::jetstream::message::PublishMessage;
use common::Harness;
use kit::testing::wait_until;
use serde_json::{Value, json};
use shared::config::ClientProtocol;
use shared::money::{BillableTokens, Nanos, Price};
use shared::request::{Cost, Outcome, RequestEvent, RequestFinished, Usage};
use shared::{Envelope, EventBody as _};

fn price(version: u32, input: &str, output: &str, cache_read: &str) -> Price {
    Price {
        currency: "USD".into(),
        input_per_million: Nanos::parse_decimal(input).unwrap(),
        output_per_million: Nanos::parse_decimal(output).unwrap(),
        cache_read_per_million: Nanos::parse_decimal(cache_read).unwrap(),
        cache_write_per_million: Nanos(0),
        version,
    }
}

/// A request as ingress records it: usage, and the cost at `charged` computed by the same
/// function ingress uses.
fn request(index: u64, user_id: &str, token_id: &str, charged: &Price) -> Envelope<RequestEvent> {
    let usage = Usage {
        input_tokens: 1_000 + 137 * index,
        output_tokens: 50 + 13 * index,
        cache_read_tokens: 7 * index,
        cache_write_tokens: 0,
        estimated: false,
    };
    let cost = charged.cost(tokens(&usage));
    Envelope::by_node(
        RequestEvent::Finished(RequestFinished {
            request_id: format!("rerate-{index}"),
            token_id: Some(token_id.into()),
            user_id: Some(user_id.into()),
            model_alias: "gpt-4o".into(),
            provider_id: Some("openai".into()),
            upstream_model: Some("gpt-4o-2024-08-06".into()),
            provider_key_id: Some("key".into()),
            client_protocol: ClientProtocol::OpenaiChat,
            upstream_protocol: Some(shared::config::Protocol::OpenAi),
            stream: false,
            outcome: Outcome::Success,
            error_kind: None,
            http_status: 200,
            usage,
            cost: Some(Cost {
                amount: cost,
                currency: charged.currency.clone(),
                price_version: charged.version,
            }),
            started_at: time::OffsetDateTime::now_utc(),
            ttfb_us: Some(1_000),
            latency_us: 10_000,
            attempts: Vec::new(),
            warnings: Vec::new(),
            trace_id: None,
            config_seq: None,
            cache_hit: None,
            routing: None,
            team_id: None,
        }),
        "ingress-test",
    )
}

fn tokens(usage: &Usage) -> BillableTokens {
    BillableTokens {
        input: usage.input_tokens,
        output: usage.output_tokens,
        cache_read: usage.cache_read_tokens,
        cache_write: usage.cache_write_tokens,
    }
}

fn sum(
    events: &[Envelope<RequestEvent>],
    at: &Price,
    keep: impl Fn(&RequestFinished) -> bool,
) -> String {
    let total: i64 = events
        .iter()
        .map(|event| {
            let RequestEvent::Finished(finished) = &event.body;
            finished
        })
        .filter(|finished| keep(finished))
        .map(|finished| at.cost(tokens(&finished.usage)).0)
        .sum();
    Nanos(total).to_decimal()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rerating_gives_back_the_charge_at_its_version_and_exact_costs_at_others() {
    let harness = Harness::start().await;
    let admin = harness.admin().await;
    let (member_id, member) = harness.user_session(&admin, "mia", "member").await;
    // The model and its price history, through the API.
    harness
        .post(
            "/api/v1/providers",
            &admin,
            json!({"id": "openai", "name": "OpenAI", "protocol": "openai", "base_url": "https://api.openai.com"}),
        )
        .await;
    let (_, key) = harness
        .post(
            "/api/v1/provider-keys",
            &admin,
            json!({"provider_id": "openai", "name": "main", "secret": "sk-live-abcdefgh1234"}),
        )
        .await;
    let (status, model) = harness
        .post(
            "/api/v1/models",
            &admin,
            json!({"id": "gpt", "alias": "gpt-4o",
                "routes": [{"provider_id": "openai", "upstream_model": "gpt-4o-2024-08-06", "key_ids": [key["id"]]}],
                "price": {"currency": "USD", "input_per_million": "2.5", "output_per_million": "10", "cache_read_per_million": "1.25"}}),
        )
        .await;
    assert_eq!(status, 201, "{model}");
    let (status, renamed) = harness
        .patch(
            "/api/v1/models/gpt",
            &admin,
            json!({"version": model["version"], "enabled": true}),
        )
        .await;
    assert_eq!(status, 200, "{renamed}");
    let (status, _) = harness
        .patch(
            "/api/v1/models/gpt",
            &admin,
            json!({"version": renamed["version"], "price": {"currency": "USD", "input_per_million": "3.1", "output_per_million": "12.7", "cache_read_per_million": "0.33"}}),
        )
        .await;
    assert_eq!(status, 200);
    let (status, history) = harness.get("/api/v1/models/gpt/prices", &admin).await;
    assert_eq!(status, 200, "{history}");
    let versions = history["versions"].as_array().unwrap();
    assert_eq!(
        versions.len(),
        2,
        "an edit that kept the price is no new version: {history}"
    );
    assert_eq!(versions[0]["version"], 1);
    assert_eq!(versions[0]["input_per_million"], "2.5");
    assert_eq!(versions[1]["version"], 2);
    assert_eq!(versions[1]["output_per_million"], "12.7");
    assert_eq!(versions[1]["by"], "admin");
    assert!(versions[0]["since_seq"].as_u64() < versions[1]["since_seq"].as_u64());

    // Traffic charged at version 1: six requests of the admin's token, three of the member's.
    let v1 = price(1, "2.5", "10", "1.25");
    let v2 = price(2, "3.1", "12.7", "0.33");
    let jetstream = harness.jetstream().await;
    let mut events = Vec::new();
    for index in 1..=9_u64 {
        let (user, token) = if index <= 6 {
            ("admin", "tok-admin")
        } else {
            (member_id.as_str(), "tok-member")
        };
        let event = request(index, user, token, &v1);
        jetstream
            .send_publish(
                event.body.subject(),
                PublishMessage::build()
                    .message_id(event.event_id.to_string())
                    .payload(event.to_bytes().unwrap().into()),
            )
            .await
            .unwrap()
            .await
            .unwrap();
        events.push(event);
    }
    let charged = sum(&events, &v1, |_| true);
    let at_v1 = wait_until(kit::testing::liveness(), "nine rows", || async {
        let (status, body) = harness
            .get("/api/v1/analytics/rerate?model=gpt-4o&version=1", &admin)
            .await;
        (status == 200 && body["total"]["requests"] == 9).then_some(body)
    })
    .await;
    assert_eq!(at_v1["total"]["charged"], charged, "{at_v1}");
    assert_eq!(at_v1["total"]["rerated"], charged, "{at_v1}");
    assert_eq!(at_v1["total"]["difference"], "0");
    assert_eq!(at_v1["price"]["version"], 1);

    // At version 2, by token: each token's requests at v2, exactly.
    let (status, at_v2) = harness
        .get(
            "/api/v1/analytics/rerate?model=gpt-4o&version=2&by=token",
            &admin,
        )
        .await;
    assert_eq!(status, 200, "{at_v2}");
    let rows = at_v2["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    let row = |key: &str| rows.iter().find(|row| row["key"] == key).unwrap();
    assert_eq!(
        row("tok-admin")["rerated"],
        sum(&events, &v2, |f| f.token_id.as_deref() == Some("tok-admin"))
    );
    assert_eq!(
        row("tok-member")["charged"],
        sum(&events, &v1, |f| f.token_id.as_deref()
            == Some("tok-member"))
    );
    assert_eq!(row("tok-member")["charged_currency"], "USD");
    assert_eq!(at_v2["total"]["rerated"], sum(&events, &v2, |_| true));
    assert_ne!(at_v2["total"]["difference"], "0");

    // Given prices, by user and by day.
    let (status, given) = harness
        .get(
            "/api/v1/analytics/rerate?by=user&input_per_million=1&output_per_million=2",
            &admin,
        )
        .await;
    assert_eq!(status, 200, "{given}");
    let free_cache = price(0, "1", "2", "0");
    assert_eq!(
        given["total"]["rerated"],
        sum(&events, &free_cache, |_| true)
    );
    assert_eq!(given["rows"].as_array().unwrap().len(), 2);
    let (_, by_day) = harness
        .get(
            "/api/v1/analytics/rerate?model=gpt-4o&version=2&by=day",
            &admin,
        )
        .await;
    assert_eq!(by_day["rows"].as_array().unwrap().len(), 1, "{by_day}");

    // The CSV: a header and one line per token, the same figures.
    let response = harness
        .http
        .get(format!(
            "{}/api/v1/analytics/rerate.csv?model=gpt-4o&version=2&by=token",
            harness.base
        ))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let csv = response.text().await.unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert!(lines[0].starts_with("token,requests,"), "{csv}");
    assert_eq!(lines.len(), 3, "{csv}");
    let admin_line = lines
        .iter()
        .find(|line| line.starts_with("tok-admin,"))
        .unwrap();
    let admin_rerated = row("tok-admin")["rerated"].as_str().unwrap().to_owned();
    assert!(
        admin_line.contains(&format!(",{admin_rerated},USD,")),
        "{admin_line}"
    );

    // A member re-rates only their own requests.
    let (status, own) = harness
        .get("/api/v1/analytics/rerate?model=gpt-4o&version=2", &member)
        .await;
    assert_eq!(status, 200, "{own}");
    assert_eq!(own["total"]["requests"], 3);

    // Refusals name the field.
    for (query, field) in [
        ("version=2", "model"),
        ("model=gpt-4o&version=9", "version"),
        ("model=gpt-4o", "input_per_million"),
        (
            "input_per_million=x&output_per_million=1",
            "input_per_million",
        ),
        ("input_per_million=1&output_per_million=1&by=provider", "by"),
    ] {
        let (status, body): (u16, Value) = harness
            .get(&format!("/api/v1/analytics/rerate?{query}"), &admin)
            .await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(body["error"]["field"], field, "{query}: {body}");
    }
    let (status, _) = harness.get("/api/v1/models/gpt/prices", &member).await;
    assert_eq!(status, 403, "members do not read models");

    // ---- Applying the correction: an audited adjustment the spend view folds.
    let (pg, connection) = tokio_postgres::connect(&harness.postgres_url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let spend = |token: &'static str| {
        let pg = &pg;
        async move {
            let row = pg
                .query_one(
                    "SELECT coalesce(sum(cost_nanos), 0)::bigint FROM token_spend_daily WHERE token_id = $1",
                    &[&token],
                )
                .await
                .unwrap();
            Nanos(row.get::<_, i64>(0)).to_decimal()
        }
    };
    let admin_charged = sum(&events, &v1, |f| f.token_id.as_deref() == Some("tok-admin"));
    wait_until(kit::testing::liveness(), "spend folded", || async {
        (spend("tok-admin").await == admin_charged).then_some(())
    })
    .await;
    let days: Vec<time::Date> = events
        .iter()
        .map(|event| event.occurred_at.date())
        .collect();
    let from = days.iter().min().unwrap().midnight().assume_utc();
    let to = (*days.iter().max().unwrap() + time::Duration::days(1))
        .midnight()
        .assume_utc();
    let rfc = |at: time::OffsetDateTime| {
        at.format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    let body = |version: u32, reason: &str| json!({"model": "gpt-4o", "version": version, "from": rfc(from), "to": rfc(to), "reason": reason});
    let (_, operator) = harness.user_session(&admin, "olga", "operator").await;
    let (status, _) = harness
        .post("/api/v1/adjustments", &operator, body(2, "v1 was wrong"))
        .await;
    assert_eq!(status, 403, "only admins correct what was charged");
    for (bad, field) in [
        (body(2, " "), "reason"),
        (
            json!({"version": 2, "from": rfc(from), "to": rfc(to), "reason": "x"}),
            "model",
        ),
        (
            json!({"model": "gpt-4o", "version": 2, "from": rfc(from + time::Duration::hours(1)), "to": rfc(to), "reason": "x"}),
            "from",
        ),
    ] {
        let (status, answer) = harness.post("/api/v1/adjustments", &admin, bad).await;
        assert_eq!(status, 400, "{answer}");
        assert_eq!(answer["error"]["field"], field, "{answer}");
    }
    let (status, adjusted) = harness
        .post(
            "/api/v1/adjustments",
            &admin,
            body(2, "price version 1 was entered wrong"),
        )
        .await;
    assert_eq!(status, 201, "{adjusted}");
    let difference = Nanos(
        Nanos::parse_decimal(&sum(&events, &v2, |_| true))
            .unwrap()
            .0
            - Nanos::parse_decimal(&sum(&events, &v1, |_| true))
                .unwrap()
                .0,
    )
    .to_decimal();
    assert_eq!(adjusted["total"], difference, "{adjusted}");
    assert_eq!(
        adjusted["entries"],
        2 * days.iter().collect::<std::collections::BTreeSet<_>>().len()
    );
    // The spend view now holds what v2 charges, to the nano; the request rows are unchanged.
    assert_eq!(
        spend("tok-admin").await,
        sum(&events, &v2, |f| f.token_id.as_deref() == Some("tok-admin"))
    );
    assert_eq!(
        spend("tok-member").await,
        sum(&events, &v2, |f| f.token_id.as_deref()
            == Some("tok-member"))
    );
    let (_, unchanged) = harness
        .get("/api/v1/analytics/rerate?model=gpt-4o&version=1", &admin)
        .await;
    assert_eq!(unchanged["total"]["charged"], charged);
    // The same correction again corrects nothing; going back to v1 undoes it exactly.
    let (status, again) = harness
        .post(
            "/api/v1/adjustments",
            &admin,
            body(2, "applied twice by mistake"),
        )
        .await;
    assert_eq!(status, 400, "{again}");
    assert_eq!(again["error"]["code"], "nothing_to_adjust");
    let (status, back) = harness
        .post(
            "/api/v1/adjustments",
            &admin,
            body(1, "v1 was right after all"),
        )
        .await;
    assert_eq!(status, 201, "{back}");
    assert_eq!(spend("tok-admin").await, admin_charged);
    // Both in the audit log, with who and why.
    let (_, audit) = harness
        .get("/api/v1/audit?type=spend.adjusted", &admin)
        .await;
    let items = audit["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{audit}");
    assert_eq!(items[0]["after"]["reason"], "v1 was right after all");
    assert_eq!(items[1]["actor"], "admin");
    assert_eq!(items[1]["after"]["price"]["version"], 2);
}
