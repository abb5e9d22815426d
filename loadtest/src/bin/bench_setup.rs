//! `bench-setup`: configures a fresh gateway for the benchmark the way the admin API would, by
//! publishing config events: one OpenAI-protocol provider pointing at the mock, its key, the
//! model aliases the plan uses, and a token with rate limits and a budget (high enough never to
//! bite, so they are checked on every request without refusing any). Prints shell assignments
//! for the master keys and the token.

use anyhow::Context as _;
use async_nats::jetstream::{self, message::PublishMessage};
use clap::Parser;
use shared::config::{
    Budget, BudgetPeriod, ConfigEvent, Model, Protocol, Provider, ProviderKey, Route, Timeouts,
    UserToken,
};
use shared::money::{Nanos, Price};
use shared::secret::{MasterKeys, SecretString};
use shared::token::{PlainToken, TokenHasher};
use shared::{Actor, Envelope, EventBody};

#[derive(Debug, Parser)]
#[command(name = "bench-setup", version)]
struct Args {
    #[arg(long, env = "AXONGATE_NATS_URL")]
    nats_url: String,
    /// The mock's base URL, without `/v1`.
    #[arg(long)]
    mock_url: String,
    /// The gateway's token pepper (at least 32 characters).
    #[arg(long, env = "AXONGATE_TOKEN_PEPPER")]
    token_pepper: String,
}

/// Alias → upstream model on the mock, as in `loadtest/plans/bench.toml`.
const MODELS: [(&str, &str); 4] = [
    ("bench", "mock-bench"),
    ("bench-stream", "mock-chunks-50"),
    ("bench-paced", "mock-chunks-50-chunk-delay-2"),
    ("bench-hold", "mock-chunks-20-chunk-delay-500"),
];
const PROVIDER: &str = "bench-openai";
const PROVIDER_KEY: &str = "bench-openai-key";
const PROVIDER_SECRET: &str = "sk-bench-provider-secret-0000";

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let (_client, jetstream) = kit::nats::connect_and_ensure(
        &args.nats_url,
        "axongate-bench-setup",
        kit::nats::StreamSettings::default(),
    )
    .await
    .context("cannot reach NATS")?;
    let master_keys_text = MasterKeys::generate_entry(1);
    let master_keys = MasterKeys::parse(&master_keys_text)?;
    let hasher = TokenHasher::new(args.token_pepper.as_bytes())?;

    publish(
        &jetstream,
        ConfigEvent::ProviderPut(Provider {
            id: PROVIDER.into(),
            name: "Benchmark mock (OpenAI protocol)".into(),
            protocol: Protocol::OpenAi,
            base_url: format!("{}/v1", args.mock_url.trim_end_matches('/')),
            extra_headers: Default::default(),
            timeouts: Timeouts {
                connect_ms: 2_000,
                first_byte_ms: 30_000,
                idle_ms: 30_000,
                total_ms: 120_000,
            },
            enabled: true,
            allow_private_network: true,
        }),
    )
    .await?;
    let sealed = master_keys.encrypt(
        &SecretString::new(PROVIDER_SECRET.into()),
        shared::secret::KeyBinding {
            key_id: PROVIDER_KEY,
            provider_id: PROVIDER,
        },
    )?;
    publish(
        &jetstream,
        ConfigEvent::ProviderKeyPut(ProviderKey {
            id: PROVIDER_KEY.into(),
            provider_id: PROVIDER.into(),
            name: PROVIDER_KEY.into(),
            secret: sealed,
            last_four: PROVIDER_SECRET[PROVIDER_SECRET.len() - 4..].into(),
            enabled: true,
        }),
    )
    .await?;
    for (alias, upstream_model) in MODELS {
        publish(
            &jetstream,
            ConfigEvent::ModelPut(Model {
                id: alias.replace('-', "_"),
                alias: alias.into(),
                enabled: true,
                routes: vec![Route {
                    provider_id: PROVIDER.into(),
                    upstream_model: upstream_model.into(),
                    key_ids: vec![],
                    priority: 1,
                    weight: 1,
                }],
                price: Some(Price {
                    currency: "USD".into(),
                    input_per_million: Nanos(3_000_000_000),
                    output_per_million: Nanos(15_000_000_000),
                    cache_read_per_million: Nanos(300_000_000),
                    cache_write_per_million: Nanos(3_750_000_000),
                    version: 1,
                }),
                context_window: None,
            }),
        )
        .await?;
    }
    let plain = PlainToken::generate();
    publish(
        &jetstream,
        ConfigEvent::TokenPut(UserToken {
            id: "bench-token".into(),
            name: "benchmark".into(),
            owner_user_id: "bench-user".into(),
            hash: hasher.hash(&plain),
            last_four: plain.last_four(),
            allowed_models: vec!["bench*".into()],
            rpm: Some(1_000_000_000),
            tpm: Some(4_000_000_000),
            budget: Some(Budget {
                amount: Nanos(1_000_000_000_000_000),
                currency: "USD".into(),
                period: BudgetPeriod::Monthly,
            }),
            expires_at: None,
            enabled: true,
        }),
    )
    .await?;
    println!("AXONGATE_MASTER_KEYS='{master_keys_text}'");
    println!("BENCH_TOKEN='{}'", plain.expose());
    Ok(())
}

async fn publish(jetstream: &jetstream::Context, event: ConfigEvent) -> anyhow::Result<u64> {
    let envelope = Envelope::by_actor(event, Actor::system());
    publish_envelope(jetstream, &envelope).await
}

async fn publish_envelope<B: EventBody>(
    jetstream: &jetstream::Context,
    envelope: &Envelope<B>,
) -> anyhow::Result<u64> {
    let acknowledgement = jetstream
        .send_publish(
            envelope.subject(),
            PublishMessage::build()
                .message_id(envelope.event_id.to_string())
                .payload(envelope.to_bytes()?.into()),
        )
        .await
        .context("publish")?
        .await
        .context("publish acknowledgement")?;
    Ok(acknowledgement.sequence)
}
