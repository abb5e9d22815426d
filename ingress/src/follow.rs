//! Loading the config at start and following it live.
//!
//! At start ingress reads the Postgres config views together with the stream sequence they
//! reflect (one consistent snapshot), then follows `AXONGATE_CONFIG` from the next sequence with
//! an ordered consumer, applying each event in memory within milliseconds of its publication.
//! If Postgres is unreachable at start, it replays the config stream from the beginning instead
//! (the stream keeps every config event forever), so Postgres is never required to serve.

use std::sync::Arc;

use async_nats::jetstream::{self, consumer::DeliverPolicy, consumer::pull};
use futures::StreamExt as _;
use shared::Envelope;
use shared::config::ConfigEvent;
use shared::streams::CONFIG_STREAM;

use crate::auth::Authenticator;
use crate::state::{ConfigStore, Secrets, Snapshot};

/// Reads the views and the sequence they reflect.
///
/// # Errors
/// When Postgres does not answer or a row does not decode.
pub async fn load_from_postgres(postgres_url: &str, secrets: &Secrets) -> anyhow::Result<Snapshot> {
    let (mut client, connection) =
        tokio_postgres::connect(postgres_url, tokio_postgres::NoTls).await?;
    let connection = tokio::spawn(connection);
    let transaction = client
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await?;
    let sequence: i64 = transaction
        .query_opt(
            "SELECT last_sequence FROM projection_offsets WHERE projection = 'config'",
            &[],
        )
        .await?
        .map_or(0, |row| row.get(0));
    let entities: Vec<&str> = Snapshot::view_entities().to_vec();
    let rows = transaction
        .query(
            "SELECT entity, data FROM config_entities WHERE entity = ANY($1) ORDER BY subject_sequence",
            &[&entities],
        )
        .await?;
    let mut snapshot = Snapshot::default();
    for row in rows {
        let entity: String = row.get(0);
        let data: serde_json::Value = row.get(1);
        if let Err(error) = snapshot.apply_view_row(&entity, data, secrets) {
            tracing::error!(%entity, %error, "config view row does not decode; skipped");
        }
    }
    snapshot.sequence = u64::try_from(sequence).unwrap_or(0);
    transaction.commit().await?;
    drop(client);
    let _ = connection.await;
    Ok(snapshot)
}

/// The views drop a deleted user's row, so a token whose owner has no row may belong to a
/// deleted user: for each such owner, the latest event on the user's subject in the config
/// stream says. Owners with no user event at all are left alone.
///
/// # Errors
/// When the stream cannot be read.
pub async fn mark_deleted_owners(
    jetstream: &jetstream::Context,
    snapshot: &mut Snapshot,
) -> anyhow::Result<usize> {
    let owners = snapshot.unknown_owners();
    if owners.is_empty() {
        return Ok(0);
    }
    let stream = jetstream.get_stream(CONFIG_STREAM).await?;
    let mut deleted = 0;
    for owner in owners {
        let subject = shared::streams::config_subject(shared::config::ConfigEntity::User, &owner);
        match stream.get_last_raw_message_by_subject(&subject).await {
            Ok(message) => {
                if let Ok(envelope) = Envelope::<ConfigEvent>::from_bytes(&message.payload)
                    && envelope.body.is_deletion()
                {
                    snapshot.mark_user_deleted(&owner);
                    deleted += 1;
                }
            }
            Err(error)
                if matches!(
                    error.kind(),
                    async_nats::jetstream::stream::LastRawMessageErrorKind::NoMessageFound
                        | async_nats::jetstream::stream::LastRawMessageErrorKind::InvalidSubject
                ) => {}
            Err(error) => return Err(error.into()),
        }
    }
    Ok(deleted)
}

/// How often a node checks the stream for config events it may have missed (republished
/// messages are not kept for a subscriber that was disconnected).
const RECONCILE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// Follows the config stream from `snapshot.sequence + 1` forever: every stored event arrives
/// at once through JetStream's republish subject (with its stream sequence), a gap in the
/// sequence is filled by fetching the missing messages by number, and once a second the
/// stream's last sequence is compared with ours in case a republished message was missed
/// while disconnected. No consumer lives on a single server, so losing any one NATS server
/// delays nothing.
///
/// # Errors
/// When the subscription cannot be made.
pub async fn follow(
    client: async_nats::Client,
    jetstream: jetstream::Context,
    store: Arc<ConfigStore>,
    secrets: Arc<Secrets>,
    authenticator: Arc<Authenticator>,
) -> anyhow::Result<()> {
    let mut live = client
        .subscribe(format!("{}.>", shared::streams::CONFIG_LIVE_PREFIX))
        .await?;
    let follower = Follower {
        jetstream,
        store,
        secrets,
        authenticator,
    };
    follower.catch_up(None).await;
    tracing::info!(
        sequence = follower.store.load().sequence,
        "following the config stream"
    );
    let mut reconcile = tokio::time::interval(RECONCILE_INTERVAL);
    reconcile.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            message = live.next() => {
                let Some(message) = message else { anyhow::bail!("config subscription ended") };
                // A live message is only a hint that something new is in the stream: anything
                // that can publish on the live subject could send one. What is applied is
                // fetched from the stream by sequence, up to the stream's own last sequence,
                // so a forged message (or a forged `Nats-Sequence`) changes nothing.
                let sequence = message
                    .headers
                    .as_ref()
                    .and_then(|headers| headers.get("Nats-Sequence"))
                    .and_then(|value| value.as_str().parse::<u64>().ok());
                let Some(sequence) = sequence else { continue };
                if sequence <= follower.store.load().sequence {
                    continue;
                }
                follower.catch_up(None).await;
            }
            _ = reconcile.tick() => follower.catch_up(None).await,
        }
    }
}

struct Follower {
    jetstream: jetstream::Context,
    store: Arc<ConfigStore>,
    secrets: Arc<Secrets>,
    authenticator: Arc<Authenticator>,
}

impl Follower {
    fn apply(&self, sequence: u64, payload: &[u8]) {
        // Only called with what the stream returned for `sequence`.
        match Envelope::<ConfigEvent>::from_bytes(payload) {
            Ok(envelope) => {
                let invalidation = self.store.apply(&envelope.body, sequence, &self.secrets);
                self.authenticator.invalidate(&invalidation.token_hashes);
            }
            Err(error) => {
                // Keep the sequence moving: an event this build cannot read must not stall
                // every later change.
                tracing::error!(sequence, %error, "undecodable config event skipped");
                metrics::counter!("ingress_config_events_undecodable_total").increment(1);
                self.store.skip(sequence);
            }
        }
    }

    /// Fetches and applies every stored event after ours, up to `until` (or the stream's last).
    async fn catch_up(&self, until: Option<u64>) {
        let mut stream = match self.jetstream.get_stream(CONFIG_STREAM).await {
            Ok(stream) => stream,
            Err(error) => {
                tracing::debug!(%error, "config stream unavailable for catch-up");
                return;
            }
        };
        let last = match until {
            Some(until) => until,
            None => match stream.info().await {
                Ok(info) => info.state.last_sequence,
                Err(error) => {
                    tracing::debug!(%error, "config stream info unavailable");
                    return;
                }
            },
        };
        while self.store.load().sequence < last {
            let sequence = self.store.load().sequence + 1;
            match stream.get_raw_message(sequence).await {
                Ok(message) => self.apply(sequence, &message.payload),
                Err(error)
                    if error.kind()
                        == async_nats::jetstream::stream::RawMessageErrorKind::NoMessageFound =>
                {
                    // Deleted (never happens on the config stream, which keeps everything).
                    self.store.skip(sequence);
                }
                Err(error) => {
                    tracing::warn!(sequence, %error, "could not fetch a config event; will retry");
                    return;
                }
            }
        }
    }
}

/// Replays the whole config stream into a fresh snapshot (used when Postgres is unreachable
/// at start).
///
/// # Errors
/// When the stream cannot be read.
pub async fn load_from_stream(
    jetstream: &jetstream::Context,
    secrets: &Secrets,
) -> anyhow::Result<Snapshot> {
    let mut stream = jetstream.get_stream(CONFIG_STREAM).await?;
    let last = stream.info().await?.state.last_sequence;
    let mut snapshot = Snapshot::default();
    if last == 0 {
        return Ok(snapshot);
    }
    let consumer = stream
        .create_consumer(pull::OrderedConfig {
            deliver_policy: DeliverPolicy::All,
            ..Default::default()
        })
        .await?;
    let mut messages = consumer.messages().await?;
    while let Some(message) = messages.next().await {
        let message = message?;
        let sequence = message
            .info()
            .map_err(|error| anyhow::anyhow!("{error}"))?
            .stream_sequence;
        if let Ok(envelope) = Envelope::<ConfigEvent>::from_bytes(&message.payload) {
            snapshot.apply(&envelope.body, sequence, secrets);
        }
        if sequence >= last {
            break;
        }
    }
    Ok(snapshot)
}

/// Seeds the limiter with the spend already recorded this period for every budget (each
/// token's own, each team's and each user's: the sum of their tokens'), from the projector's
/// `token_spend_daily` view. Spend after this comes from this node's own requests and the other
/// nodes' usage reports. Returns how many budgets were seeded.
///
/// # Errors
/// When Postgres does not answer.
pub async fn load_spend_baseline(
    postgres_url: &str,
    snapshot: &Snapshot,
    limiter: &crate::limits::Limiter,
) -> anyhow::Result<usize> {
    load_baselines(postgres_url, &snapshot.budget_holders(), limiter).await
}

/// Seeds the limiter with the spend `token_spend_daily` holds for these budgets' current
/// periods (never lowering what the limiter already counts). Returns how many were seeded.
///
/// # Errors
/// When Postgres does not answer.
pub async fn load_baselines(
    postgres_url: &str,
    holders: &[crate::state::BudgetHolder],
    limiter: &crate::limits::Limiter,
) -> anyhow::Result<usize> {
    if holders.is_empty() {
        return Ok(0);
    }
    let (client, connection) = tokio_postgres::connect(postgres_url, tokio_postgres::NoTls).await?;
    let connection = tokio::spawn(connection);
    let mut ids: Vec<&str> = holders
        .iter()
        .flat_map(|holder| holder.token_ids.iter().map(String::as_str))
        .collect();
    ids.sort_unstable();
    ids.dedup();
    let rows = client
        .query(
            "SELECT token_id, day, cost_nanos FROM token_spend_daily WHERE token_id = ANY($1)",
            &[&ids],
        )
        .await?;
    let mut by_token: std::collections::HashMap<String, Vec<(time::Date, i64)>> =
        std::collections::HashMap::new();
    for row in &rows {
        by_token
            .entry(row.get(0))
            .or_default()
            .push((row.get(1), row.get(2)));
    }
    let now = time::OffsetDateTime::now_utc();
    for holder in holders {
        let current = crate::limits::period_key(holder.budget.period, now);
        let spent: i64 = holder
            .token_ids
            .iter()
            .filter_map(|id| by_token.get(id))
            .flatten()
            .filter(|(day, _)| {
                crate::limits::period_key(holder.budget.period, day.midnight().assume_utc())
                    == current
            })
            .map(|(_, cost)| *cost)
            .sum();
        limiter.set_baseline(&holder.key, current, spent);
    }
    drop(client);
    let _ = connection.await;
    Ok(holders.len())
}

/// What a budget counts: its period and its tokens.
type BudgetShape = (shared::config::BudgetPeriod, Vec<String>);

/// Watches the config for budgets that are new or count other tokens than before (a budget set
/// on a team that already spent this month, a token moved into a team) and seeds each from
/// `token_spend_daily`, so a budget set on a running cluster counts the period's spend at once
/// rather than from the moment it was set. Runs until the process ends.
pub async fn watch_budgets(
    postgres_url: String,
    store: Arc<ConfigStore>,
    limiter: Arc<crate::limits::Limiter>,
) {
    let shape =
        |holders: &[crate::state::BudgetHolder]| -> std::collections::HashMap<String, BudgetShape> {
            holders
                .iter()
                .map(|holder| {
                    (
                        holder.key.clone(),
                        (holder.budget.period, holder.token_ids.clone()),
                    )
                })
                .collect()
        };
    let snapshot = store.load();
    let mut known = shape(&snapshot.budget_holders());
    let mut seen = snapshot.sequence;
    let mut failing = false;
    let mut ticker = tokio::time::interval(std::time::Duration::from_secs(1));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let snapshot = store.load();
        if snapshot.sequence == seen {
            continue;
        }
        let holders = snapshot.budget_holders();
        let changed: Vec<crate::state::BudgetHolder> = holders
            .iter()
            .filter(|holder| {
                known.get(&holder.key) != Some(&(holder.budget.period, holder.token_ids.clone()))
            })
            .cloned()
            .collect();
        if changed.is_empty() {
            seen = snapshot.sequence;
            known = shape(&holders);
            continue;
        }
        match load_baselines(&postgres_url, &changed, &limiter).await {
            Ok(count) => {
                tracing::info!(budgets = count, "spend of new or changed budgets loaded");
                metrics::counter!("ingress_budget_baselines_loaded_total")
                    .increment(u64::try_from(count).unwrap_or(u64::MAX));
                seen = snapshot.sequence;
                known = shape(&holders);
                failing = false;
            }
            // Tried again at the next tick (said once per outage).
            Err(error) => {
                if !failing {
                    tracing::warn!(error = %format!("{error:#}"), "spend view unavailable; a new budget counts from now until it answers");
                }
                failing = true;
            }
        }
    }
}

/// Seeds budget spend from the request events of each budget's current period still in
/// `AXONGATE_REQUESTS` (used when the spend view in Postgres is unreachable). Returns how many
/// budgets were seeded.
///
/// # Errors
/// When the stream cannot be read.
pub async fn seed_spend_from_stream(
    jetstream: &jetstream::Context,
    snapshot: &Snapshot,
    limiter: &crate::limits::Limiter,
) -> anyhow::Result<usize> {
    let now = time::OffsetDateTime::now_utc();
    let holders = snapshot.budget_holders();
    if holders.is_empty() {
        return Ok(0);
    }
    // Each token's budgets, by index into `holders`.
    let mut of_token: std::collections::HashMap<&str, Vec<usize>> =
        std::collections::HashMap::new();
    for (index, holder) in holders.iter().enumerate() {
        for id in &holder.token_ids {
            of_token.entry(id.as_str()).or_default().push(index);
        }
    }
    // From the earliest period start any budget needs (everything, for a total budget).
    let earliest = holders
        .iter()
        .map(|holder| crate::limits::period_start(holder.budget.period, now))
        .min()
        .flatten();
    let mut stream = jetstream
        .get_stream(shared::streams::REQUESTS_STREAM)
        .await?;
    let state = stream.info().await?.state.clone();
    let mut totals = vec![0_i64; holders.len()];
    if state.last_sequence > 0 && state.messages > 0 {
        if earliest.is_none_or(|start| state.first_timestamp > start) {
            tracing::warn!(
                first_kept = %state.first_timestamp,
                "the request stream begins after the start of a budget period; spend before its first event (if any) is not counted"
            );
        }
        let deliver_policy = match earliest {
            Some(start_time) => DeliverPolicy::ByStartTime { start_time },
            None => DeliverPolicy::All,
        };
        let consumer = stream
            .create_consumer(pull::OrderedConfig {
                deliver_policy,
                ..Default::default()
            })
            .await?;
        let mut messages = consumer.messages().await?;
        loop {
            let next =
                tokio::time::timeout(std::time::Duration::from_secs(2), messages.next()).await;
            let Ok(Some(Ok(message))) = next else { break };
            let sequence = message
                .info()
                .map_or(state.last_sequence, |info| info.stream_sequence);
            for envelope in
                Envelope::<shared::request::RequestEvent>::all_from_bytes(&message.payload)
                    .into_iter()
                    .flatten()
            {
                let shared::request::RequestEvent::Finished(finished) = &envelope.body;
                let (Some(token_id), Some(cost)) = (&finished.token_id, &finished.cost) else {
                    continue;
                };
                for &index in of_token.get(token_id.as_str()).into_iter().flatten() {
                    let period = holders[index].budget.period;
                    if crate::limits::period_key(period, envelope.occurred_at)
                        == crate::limits::period_key(period, now)
                    {
                        totals[index] += cost.amount.0;
                    }
                }
            }
            if sequence >= state.last_sequence {
                break;
            }
        }
    }
    for (holder, spent) in holders.iter().zip(totals) {
        limiter.set_baseline(
            &holder.key,
            crate::limits::period_key(holder.budget.period, now),
            spent,
        );
    }
    Ok(holders.len())
}

/// Follows the audited spend corrections (`spend.adjusted`) published from now on and adds each
/// entry to the budget period of its day, so a running node enforces an adjusted budget at once
/// (a starting node reads corrections already folded into the spend view). An adjustment made
/// while a node is between reading the spend view and starting this consumer reaches that node
/// only at its next start.
///
/// # Errors
/// When the audit stream cannot be read; a malformed event is skipped.
pub async fn follow_adjustments(
    jetstream: jetstream::Context,
    store: Arc<ConfigStore>,
    limiter: Arc<crate::limits::Limiter>,
) -> anyhow::Result<()> {
    use shared::audit::AuditEvent;
    let stream = jetstream.get_stream(shared::streams::AUDIT_STREAM).await?;
    let consumer = stream
        .create_consumer(pull::OrderedConfig {
            deliver_policy: DeliverPolicy::New,
            // The subject names the kind (`AuditEvent::kind`), not the event type.
            filter_subject: format!("{}.spend_adjusted", shared::streams::AUDIT_SUBJECT_PREFIX),
            ..Default::default()
        })
        .await?;
    let mut messages = consumer.messages().await?;
    tracing::info!("following spend adjustments");
    let day_format = time::macros::format_description!("[year]-[month]-[day]");
    while let Some(message) = messages.next().await {
        let message = match message {
            Ok(message) => message,
            Err(error) => {
                tracing::warn!(error = %error, "reading spend adjustments");
                continue;
            }
        };
        let envelope = match Envelope::<AuditEvent>::from_bytes(&message.payload) {
            Ok(envelope) => envelope,
            Err(error) => {
                tracing::warn!(error = %error, "a spend adjustment that cannot be read was skipped");
                continue;
            }
        };
        let AuditEvent::SpendAdjusted(adjusted) = &envelope.body else {
            continue;
        };
        let holders = store.load().budget_holders();
        let mut applied = 0;
        for entry in &adjusted.entries {
            let Ok(day) = time::Date::parse(&entry.day, day_format) else {
                continue;
            };
            // The token's own budget, its team's and its owner's, in the entry's currency.
            for holder in holders.iter().filter(|holder| {
                holder.budget.currency == entry.currency
                    && holder.token_ids.contains(&entry.token_id)
            }) {
                let key =
                    crate::limits::period_key(holder.budget.period, day.midnight().assume_utc());
                limiter.adjust(&holder.key, key, entry.amount.0);
                applied += 1;
            }
        }
        tracing::info!(
            adjustment = %adjusted.adjustment_id,
            budgets = applied,
            "spend adjustment applied to budgets"
        );
    }
    anyhow::bail!("the spend adjustment consumer ended")
}

/// Seeds the limiter with the last minute of finished requests from `AXONGATE_REQUESTS`, so a
/// node that joins (or restarts) enforces per-minute limits with the cluster's recent usage.
/// Returns how many events were counted.
///
/// # Errors
/// When the stream cannot be read.
pub async fn seed_limits(
    jetstream: &jetstream::Context,
    limiter: &crate::limits::Limiter,
) -> anyhow::Result<u64> {
    let mut stream = jetstream
        .get_stream(shared::streams::REQUESTS_STREAM)
        .await?;
    let last = stream.info().await?.state.last_sequence;
    let start_time = time::OffsetDateTime::now_utc() - time::Duration::seconds(61);
    let consumer = stream
        .create_consumer(pull::OrderedConfig {
            deliver_policy: DeliverPolicy::ByStartTime { start_time },
            ..Default::default()
        })
        .await?;
    let mut counted = 0;
    if last == 0 {
        return Ok(0);
    }
    let mut messages = consumer.messages().await?;
    loop {
        let next = tokio::time::timeout(std::time::Duration::from_secs(2), messages.next()).await;
        let Ok(Some(Ok(message))) = next else { break };
        let sequence = message.info().map_or(last, |info| info.stream_sequence);
        for envelope in Envelope::<shared::request::RequestEvent>::all_from_bytes(&message.payload)
            .into_iter()
            .flatten()
        {
            let shared::request::RequestEvent::Finished(finished) = &envelope.body;
            if let Some(token_id) = &finished.token_id {
                let usage = &finished.usage;
                let tokens = usage.input_tokens
                    + usage.output_tokens
                    + usage.cache_read_tokens
                    + usage.cache_write_tokens;
                let (admitted, ended) = (
                    finished.started_at.unix_timestamp(),
                    envelope.occurred_at.unix_timestamp(),
                );
                limiter.seed(token_id, admitted, ended, tokens);
                // The limits by dimension that events can name (an address is not in them).
                if let Some(user_id) = &finished.user_id {
                    limiter.seed(&format!("user:{user_id}"), admitted, ended, tokens);
                }
                if let Some(team_id) = &finished.team_id {
                    limiter.seed(&format!("team:{team_id}"), admitted, ended, tokens);
                }
                limiter.seed(
                    &format!("model:{}", finished.model_alias),
                    admitted,
                    ended,
                    tokens,
                );
                counted += 1;
            }
        }
        if sequence >= last {
            break;
        }
    }
    Ok(counted)
}
