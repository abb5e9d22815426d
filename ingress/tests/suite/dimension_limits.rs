//! Limits by dimension (the `rate_limits` setting) across two ingress nodes: a user's limit
//! holds over all their tokens, a model's over every caller, an address's over every token from
//! it (the client address from a trusted proxy's `X-Forwarded-For` only); each refusal is a 429
//! in the caller's dialect naming whose limit it was, with `Retry-After`. A team's budget,
//! allowed models and per-minute limits hold over all the tokens charged to it, on every node.

#![allow(
    clippy::expect_used,
    clippy::too_many_lines,
    reason = "a test fails loudly and reads top to bottom"
)]

use crate::support;

use kit::testing::{liveness, wait_until};
use serde_json::{Value, json};
use shared::config::{
    Budget, BudgetPeriod, ConfigEvent, Protocol, RATE_LIMITS_SETTING, Setting, Team, TeamMember,
    TeamRole,
};
use support::{Gateway, Node, http};

/// A value of the node's `/metrics`.
async fn metric(node: &Node, name: &str) -> Option<f64> {
    let text = http()
        .get(format!("{}/metrics", node.base))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    text.lines().find_map(|line| {
        line.strip_prefix(name)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

/// Waits until every node has applied the config up to `sequence`.
async fn applied(nodes: &[&Node], sequence: u64) {
    for node in nodes {
        wait_until(liveness(), "the config to reach the node", || async {
            #[expect(clippy::cast_precision_loss, reason = "small sequences")]
            let wanted = sequence as f64;
            (metric(node, "ingress_config_sequence").await? >= wanted).then_some(())
        })
        .await;
    }
}

/// Waits until each of `nodes` (name, node) has merged a usage report the other ones took after
/// now (a report, or the heartbeat a quiet node sends every second): from then on, each counts
/// everything the others admitted before this call.
async fn gossiped(nodes: &[(&str, &Node)]) {
    let now = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
    #[expect(clippy::cast_precision_loss, reason = "milliseconds since 1970 fit")]
    let now = now as f64;
    for (_, node) in nodes {
        for (other, _) in nodes.iter().filter(|(_, other)| other.base != node.base) {
            let name = format!("ingress_limit_report_taken_at_ms{{node=\"{other}\"}}");
            wait_until(liveness(), "the other node's usage report", || async {
                (metric(node, &name).await? > now).then_some(())
            })
            .await;
        }
    }
}

/// Waits until every node has applied everything published so far (the events a test
/// published without waiting, such as tokens), by publishing one more and waiting for it.
async fn settled(gateway: &Gateway, nodes: &[&Node]) {
    let sequence = gateway
        .publish_config(ConfigEvent::SettingPut(Setting {
            key: "unrelated".into(),
            value: json!(true),
        }))
        .await;
    applied(nodes, sequence).await;
}

async fn set_limits(gateway: &Gateway, nodes: &[&Node], value: Value) {
    let sequence = gateway
        .publish_config(ConfigEvent::SettingPut(Setting {
            key: RATE_LIMITS_SETTING.into(),
            value,
        }))
        .await;
    applied(nodes, sequence).await;
}

struct Answer {
    status: u16,
    retry_after: Option<String>,
    body: Value,
}

async fn chat(node: &Node, token: &str, model: &str, forwarded_for: Option<&str>) -> Answer {
    let mut request = http()
        .post(format!("{}/v1/chat/completions", node.base))
        .bearer_auth(token)
        .json(&json!({"model": model, "messages": [{"role": "user", "content": "hi"}]}));
    if let Some(address) = forwarded_for {
        request = request.header("x-forwarded-for", address);
    }
    answer(request).await
}

async fn message(node: &Node, token: &str, model: &str) -> Answer {
    answer(
        http()
            .post(format!("{}/v1/messages", node.base))
            .header("x-api-key", token)
            .header("anthropic-version", "2023-06-01")
            .json(&json!({"model": model, "max_tokens": 16,
                          "messages": [{"role": "user", "content": "hi"}]})),
    )
    .await
}

async fn answer(request: reqwest::RequestBuilder) -> Answer {
    let response = request.send().await.expect("send");
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|value| value.to_str().expect("ascii").to_owned());
    let body = response.json().await.unwrap_or(Value::Null);
    Answer {
        status,
        retry_after,
        body,
    }
}

fn assert_ok(answer: &Answer, what: &str) {
    assert_eq!(answer.status, 200, "{what}: {}", answer.body);
}

/// A 429 in OpenAI's shape naming `whose` limit, with Retry-After.
fn assert_limited_openai(answer: &Answer, whose: &str) {
    assert_eq!(answer.status, 429, "{}", answer.body);
    assert_eq!(
        answer.body["error"]["type"], "rate_limit_error",
        "{}",
        answer.body
    );
    let message = answer.body["error"]["message"].as_str().expect("message");
    assert!(message.contains(whose), "{message:?} names {whose:?}");
    let after: u64 = answer
        .retry_after
        .as_deref()
        .expect("Retry-After")
        .parse()
        .expect("seconds");
    assert!((1..=60).contains(&after), "Retry-After {after}");
}

/// A gateway with one mock provider and two models on it, `everyday` and `scarce`.
async fn two_models() -> Gateway {
    let gateway = Gateway::start().await;
    gateway.add_provider("openai-mock", Protocol::OpenAi).await;
    for alias in ["everyday", "scarce"] {
        gateway
            .add_model(alias, vec![("openai-mock", "gpt-mock-1", 0)])
            .await;
    }
    gateway
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn users_models_and_addresses_are_limited_across_nodes() {
    let gateway = two_models().await;
    let owned = |user: &'static str| {
        move |token: &mut shared::config::UserToken| {
            token.owner_user_id = user.into();
        }
    };
    let ann_laptop = gateway.add_token("ann-laptop", owned("ann")).await;
    let ann_ci = gateway.add_token("ann-ci", owned("ann")).await;
    let bob = gateway.add_token("bob", owned("bob")).await;
    let cat = gateway.add_token("cat", owned("cat")).await;
    // a and b sit behind a load balancer on this host; c faces clients directly.
    let proxied = [("AXONGATE_TRUSTED_PROXIES", "127.0.0.1/32,::1/128")];
    let a = gateway.start_node_with("dim-a", &proxied, None).await;
    let b = gateway.start_node_with("dim-b", &proxied, None).await;
    let nodes = [&a, &b];

    // 1. A user's limit holds over all their tokens on both nodes: ann has 6 a minute.
    set_limits(
        &gateway,
        &nodes,
        json!({"users": {"ann": {"rpm": 6}}, "models": {"scarce": {"rpm": 4}}}),
    )
    .await;
    for _ in 0..3 {
        assert_ok(&chat(&a, &ann_laptop, "everyday", None).await, "ann on a");
        assert_ok(&chat(&b, &ann_ci, "everyday", None).await, "ann on b");
    }
    gossiped(&[("dim-a", &a), ("dim-b", &b)]).await;
    // Each node admitted three of ann's requests itself: the refusals count the other's.
    assert_limited_openai(
        &chat(&a, &ann_laptop, "everyday", None).await,
        "6 requests per minute for user ann",
    );
    assert_limited_openai(&chat(&b, &ann_ci, "everyday", None).await, "for user ann");
    assert_ok(
        &chat(&a, &bob, "everyday", None).await,
        "another user is not held by ann's limit",
    );

    // 2. A model's limit holds over every caller: scarce has 4 a minute, whoever calls.
    assert_ok(&chat(&a, &bob, "scarce", None).await, "bob on a");
    assert_ok(&chat(&b, &cat, "scarce", None).await, "cat on b");
    assert_ok(&message(&a, &cat, "scarce").await, "cat on a (Anthropic)");
    assert_ok(&message(&b, &bob, "scarce").await, "bob on b (Anthropic)");
    gossiped(&[("dim-a", &a), ("dim-b", &b)]).await;
    let refused = message(&a, &bob, "scarce").await;
    assert_eq!(refused.status, 429, "{}", refused.body);
    assert_eq!(
        refused.body["type"], "error",
        "Anthropic's shape: {}",
        refused.body
    );
    assert_eq!(
        refused.body["error"]["type"], "rate_limit_error",
        "{}",
        refused.body
    );
    let text = refused.body["error"]["message"].as_str().expect("message");
    assert!(
        text.contains("model scarce (all callers together)"),
        "{text}"
    );
    assert!(
        refused.retry_after.is_some(),
        "Retry-After on the Anthropic 429"
    );
    assert_limited_openai(&chat(&b, &cat, "scarce", None).await, "model scarce");
    assert_ok(
        &chat(&b, &cat, "everyday", None).await,
        "other models are free",
    );

    // 3. An address's limit holds over every token from it; the address is the right-most
    //    X-Forwarded-For hop that is not a trusted proxy, on a node that trusts its peer.
    let c = gateway.start_node("dim-c").await;
    let all = [&a, &b, &c];
    set_limits(&gateway, &all, json!({"per_address": {"rpm": 2}})).await;
    let client = "203.0.113.10";
    assert_ok(
        &chat(&a, &bob, "everyday", Some(client)).await,
        "bob from the client on a",
    );
    assert_ok(
        &chat(&b, &cat, "everyday", Some(&format!("{client}, 127.0.0.1"))).await,
        "cat from the client on b (through a second local proxy)",
    );
    gossiped(&[("dim-a", &a), ("dim-b", &b)]).await;
    assert_limited_openai(
        &chat(&a, &ann_laptop, "everyday", Some(client)).await,
        "for this client address",
    );
    assert_limited_openai(
        &chat(&b, &bob, "everyday", Some(client)).await,
        "for this client address",
    );
    assert_ok(
        &chat(&a, &bob, "everyday", Some("203.0.113.11")).await,
        "another address has its own count",
    );
    // A node that does not trust its peer ignores the header: every request here comes from
    // 127.0.0.1, whatever it claims.
    assert_ok(
        &chat(&c, &bob, "everyday", Some("198.51.100.1")).await,
        "first from c",
    );
    assert_ok(
        &chat(&c, &cat, "everyday", Some("198.51.100.2")).await,
        "second from c",
    );
    assert_limited_openai(
        &chat(&c, &bob, "everyday", Some("198.51.100.3")).await,
        "for this client address",
    );

    // Lifting the limits frees everyone at once.
    gateway
        .publish_config(ConfigEvent::SettingDeleted(shared::config::Deleted {
            id: RATE_LIMITS_SETTING.into(),
        }))
        .await;
    settled(&gateway, &all).await;
    assert_ok(
        &chat(&a, &ann_laptop, "scarce", Some(client)).await,
        "no limit by dimension left",
    );
    assert_ok(&chat(&c, &bob, "everyday", None).await, "nor on c");
}

fn team(id: &str, name: &str, members: &[(&str, TeamRole)]) -> Team {
    Team {
        id: id.into(),
        name: name.into(),
        members: members
            .iter()
            .map(|(user_id, role)| TeamMember {
                user_id: (*user_id).into(),
                role: *role,
            })
            .collect(),
        allowed_models: Vec::new(),
        budget: None,
        rpm: None,
        tpm: None,
    }
}

async fn put_team(gateway: &Gateway, nodes: &[&Node], team: Team) {
    let sequence = gateway.publish_config(ConfigEvent::TeamPut(team)).await;
    applied(nodes, sequence).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_team_budget_models_and_limits_hold_across_nodes() {
    let gateway = two_models().await;
    let charged = |user: &'static str, team: &'static str| {
        move |token: &mut shared::config::UserToken| {
            token.owner_user_id = user.into();
            token.team_id = Some(team.into());
        }
    };
    let ann = gateway.add_token("ann-eng", charged("ann", "eng")).await;
    let bob = gateway.add_token("bob-eng", charged("bob", "eng")).await;
    let cat = gateway
        .add_token("cat-own", |token| token.owner_user_id = "cat".into())
        .await;
    let a = gateway.start_node("team-a").await;
    let b = gateway.start_node("team-b").await;
    let nodes = [&a, &b];
    let mut eng = team(
        "eng",
        "Engineering",
        &[("ann", TeamRole::Admin), ("bob", TeamRole::Member)],
    );
    eng.allowed_models = vec!["every*".into()];
    // Less than one request costs: the first request of the team spends it.
    eng.budget = Some(Budget {
        amount: shared::money::Nanos(1),
        currency: "USD".into(),
        period: BudgetPeriod::Monthly,
    });
    put_team(&gateway, &nodes, eng.clone()).await;

    // 1. The team's allowed models hold for every token charged to it.
    let refused = chat(&b, &bob, "scarce", None).await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    let text = refused.body["error"]["message"].as_str().expect("message");
    assert!(
        text.contains("the team `Engineering` may not use the model `scarce`"),
        "{text}"
    );

    // 2. The team's budget: ann spends it on node a; bob, whose own token never spent
    //    anything, is refused on node b once b has a's report.
    let spent = chat(&a, &ann, "everyday", None).await;
    assert_ok(&spent, "ann on a");
    eprintln!(
        "team Engineering (budget 1 nano-USD a month): ann-eng on node team-a -> {} ({} input + {} output tokens)",
        spent.status,
        spent.body["usage"]["prompt_tokens"],
        spent.body["usage"]["completion_tokens"]
    );
    gossiped(&[("team-a", &a), ("team-b", &b)]).await;
    for (node, token, who) in [
        (&b, &bob, "bob-eng on node team-b"),
        (&a, &ann, "ann-eng on node team-a"),
    ] {
        let refused = chat(node, token, "everyday", None).await;
        eprintln!(
            "{who} -> {} Retry-After {} {}",
            refused.status,
            refused.retry_after.as_deref().unwrap_or("-"),
            refused.body["error"]
        );
        assert_eq!(refused.status, 429, "{who}: {}", refused.body);
        assert_eq!(
            refused.body["error"]["code"], "insufficient_quota",
            "{who}: {}",
            refused.body
        );
        let text = refused.body["error"]["message"].as_str().expect("message");
        assert!(
            text.contains("budget exhausted for team Engineering (monthly budget)"),
            "{who}: {text}"
        );
        assert!(refused.retry_after.is_some(), "{who}: Retry-After");
    }
    let outside = chat(&b, &cat, "everyday", None).await;
    eprintln!("cat-own (no team) on node team-b -> {}", outside.status);
    assert_ok(
        &outside,
        "a token outside the team is not held by its budget",
    );

    // 2b. A budget worth a few requests, spent by two members on two nodes in turn: served
    //     until the team's spend (counted on both nodes) reaches it, then refused on both.
    let mut research = team(
        "research",
        "Research",
        &[("ann", TeamRole::Member), ("bob", TeamRole::Member)],
    );
    let budget_nanos = 400_000;
    research.budget = Some(Budget {
        amount: shared::money::Nanos(budget_nanos),
        currency: "USD".into(),
        period: BudgetPeriod::Daily,
    });
    put_team(&gateway, &nodes, research).await;
    let ann_research = gateway
        .add_token("ann-research", charged("ann", "research"))
        .await;
    let bob_research = gateway
        .add_token("bob-research", charged("bob", "research"))
        .await;
    settled(&gateway, &nodes).await;
    let mut served = 0_i64;
    let mut spent_nanos = 0_i64;
    let refusal = loop {
        let (node, name, token) = if served % 2 == 0 {
            (&a, "team-a", &ann_research)
        } else {
            (&b, "team-b", &bob_research)
        };
        let answer = chat(node, token, "everyday", None).await;
        if answer.status != 200 {
            break (name, answer);
        }
        // The model's price: 3 USD per million input tokens, 15 per million output.
        let usage = &answer.body["usage"];
        spent_nanos += usage["prompt_tokens"].as_i64().expect("usage") * 3_000
            + usage["completion_tokens"].as_i64().expect("usage") * 15_000;
        served += 1;
        assert!(served <= 20, "the budget never stopped the team");
        gossiped(&[("team-a", &a), ("team-b", &b)]).await;
    };
    let (node, refused) = refusal;
    eprintln!(
        "team Research (budget {budget_nanos} nano-USD a day), requests alternating between two nodes: {served} served ({spent_nanos} nano-USD), then {} on node {node}: {}",
        refused.status, refused.body["error"]["message"]
    );
    assert_eq!(refused.status, 429, "{}", refused.body);
    assert!(
        spent_nanos >= budget_nanos && spent_nanos - budget_nanos < spent_nanos / served,
        "served until the spend reached the budget, not one request more: {served} served, {spent_nanos} spent"
    );
    let other_node = if node == "team-a" {
        (&b, &bob_research)
    } else {
        (&a, &ann_research)
    };
    assert_eq!(
        chat(other_node.0, other_node.1, "everyday", None)
            .await
            .status,
        429,
        "refused on the other node too"
    );

    // 2c. A budget set on a team that already spent this period counts that spend at once,
    //     on a node that never served the team.
    put_team(
        &gateway,
        &nodes,
        team("late", "Late", &[("ann", TeamRole::Member)]),
    )
    .await;
    let ann_late = gateway.add_token("ann-late", charged("ann", "late")).await;
    settled(&gateway, &nodes).await;
    for _ in 0..2 {
        assert_ok(
            &chat(&a, &ann_late, "everyday", None).await,
            "ann late on a",
        );
    }
    let pg = gateway.postgres_url.clone();
    wait_until(liveness(), "the team's spend in the view", || {
        let pg = pg.clone();
        async move {
            let (client, connection) = tokio_postgres::connect(&pg, tokio_postgres::NoTls)
                .await
                .ok()?;
            tokio::spawn(connection);
            let row = client
                .query_opt(
                    "SELECT requests FROM token_spend_daily WHERE token_id = 'ann-late'",
                    &[],
                )
                .await
                .ok()??;
            (row.get::<_, i64>(0) >= 2).then_some(())
        }
    })
    .await;
    let mut late = team("late", "Late", &[("ann", TeamRole::Member)]);
    late.budget = Some(Budget {
        amount: shared::money::Nanos(100_000),
        currency: "USD".into(),
        period: BudgetPeriod::Daily,
    });
    let loaded = metric(&b, "ingress_budget_baselines_loaded_total")
        .await
        .unwrap_or(0.0);
    put_team(&gateway, &nodes, late).await;
    wait_until(
        liveness(),
        "node b to load the new budget's spend",
        || async {
            (metric(&b, "ingress_budget_baselines_loaded_total").await? > loaded).then_some(())
        },
    )
    .await;
    // The first request after it: b has counted nothing of the team itself.
    let refused = chat(&b, &ann_late, "everyday", None).await;
    assert_eq!(refused.status, 429, "{}", refused.body);
    let text = refused.body["error"]["message"].as_str().expect("message");
    assert!(text.contains("budget exhausted for team Late"), "{text}");
    eprintln!(
        "team Late: spent 2 requests before it had a budget; a budget below that, set later -> node team-b answers {}: {text}",
        refused.status
    );

    // 3. The request event names the team the spend was charged to.
    let events = support::finished_events(&gateway, 1).await;
    let spent = events
        .iter()
        .find(|event| event.token_id.as_deref() == Some("ann-eng") && event.cost.is_some())
        .expect("ann's priced request");
    assert_eq!(spent.team_id.as_deref(), Some("eng"));

    // 4. A team's requests per minute hold over its tokens on both nodes; removing a member
    //    stops their team token at once.
    let mut ops = team(
        "ops",
        "Ops",
        &[("ann", TeamRole::Member), ("bob", TeamRole::Member)],
    );
    ops.rpm = Some(3);
    put_team(&gateway, &nodes, ops.clone()).await;
    let ann_ops = gateway.add_token("ann-ops", charged("ann", "ops")).await;
    let bob_ops = gateway.add_token("bob-ops", charged("bob", "ops")).await;
    settled(&gateway, &nodes).await;
    assert_ok(&chat(&a, &ann_ops, "everyday", None).await, "ann ops on a");
    assert_ok(&chat(&a, &ann_ops, "everyday", None).await, "ann ops on a");
    assert_ok(&chat(&b, &bob_ops, "everyday", None).await, "bob ops on b");
    gossiped(&[("team-a", &a), ("team-b", &b)]).await;
    assert_limited_openai(
        &chat(&b, &bob_ops, "everyday", None).await,
        "3 requests per minute for team Ops",
    );
    assert_limited_openai(&chat(&a, &ann_ops, "everyday", None).await, "for team Ops");
    ops.members.retain(|member| member.user_id != "bob");
    ops.rpm = None;
    put_team(&gateway, &nodes, ops).await;
    assert_ok(
        &chat(&a, &ann_ops, "everyday", None).await,
        "ann is still in Ops",
    );
    let removed = chat(&b, &bob_ops, "everyday", None).await;
    assert_eq!(removed.status, 403, "{}", removed.body);
    let text = removed.body["error"]["message"].as_str().expect("message");
    assert!(
        text.contains("no longer a member of the team `Ops`"),
        "{text}"
    );
}
