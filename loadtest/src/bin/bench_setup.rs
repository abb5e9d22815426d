//! `bench-setup`: configures a fresh gateway for the benchmark the way the admin API would, by
//! publishing config events: one OpenAI-protocol provider pointing at the mock, its key, the
//! model aliases the plan uses, and a token with rate limits and a budget (high enough never to
//! bite, so they are checked on every request without refusing any). Prints shell assignments
//! for the master keys and the token.
//!
//! `bench-setup propagation --ingress-url …` measures how long a config change takes to reach a
//! running ingress: it publishes a probe token, then disables and re-enables it `--rounds` times,
//! each time timing JetStream's acknowledgement and then, from the acknowledgement, how long
//! until ingress answers as the change requires (401, then 200). The tests only assert that a
//! change arrives; this is where the figure is measured. Prints a Markdown section.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use loadtest::driver::http::{Connection, authority, socket_address};
use shared::config::{
    Budget, BudgetPeriod, ConfigEvent, Model, Protocol, Provider, ProviderKey, Route, Timeouts,
    UserToken,
};
use shared::money::{Nanos, Price};
use shared::secret::{MasterKeys, SecretString};
use shared::token::{PlainToken, TokenHasher};
use shared::{Actor, Envelope};

#[derive(Debug, Parser)]
#[command(name = "bench-setup", version)]
struct Args {
    #[arg(long, env = "AXONGATE_NATS_URL")]
    nats_url: String,
    /// The mock's base URL, without `/v1` (for the set-up).
    #[arg(long)]
    mock_url: Option<String>,
    /// The gateway's token pepper (at least 32 characters).
    #[arg(long, env = "AXONGATE_TOKEN_PEPPER")]
    token_pepper: String,
    /// admin-api's `audit_chain_key`, when it has one: the config events are linked into the
    /// stream's chain with it (unset: the key derived from the pepper, as admin-api does).
    #[arg(long, env = "AXONGATE_AUDIT_CHAIN_KEY", hide_env_values = true)]
    audit_chain_key: Option<String>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Measure config propagation to a running ingress (see the crate docs above).
    Propagation {
        /// The ingress's base URL, without `/v1`.
        #[arg(long)]
        ingress_url: String,
        /// How many disable/enable pairs to time.
        #[arg(long, default_value_t = 20)]
        rounds: u32,
    },
}

/// Alias → upstream model on the mock, as in `loadtest/plans/bench.toml`.
const MODELS: [(&str, &str); 5] = [
    ("bench", "mock-bench"),
    ("bench-stream", "mock-chunks-50"),
    ("bench-paced", "mock-chunks-50-chunk-delay-2"),
    ("bench-hold", "mock-chunks-20-chunk-delay-500"),
    ("bench-hold-long", "mock-chunks-90-chunk-delay-500"),
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
    let key = shared::chain::ChainKey::derive(
        args.audit_chain_key
            .as_deref()
            .unwrap_or(&args.token_pepper)
            .as_bytes(),
    );
    let config =
        kit::chain::ChainedStream::new(jetstream.clone(), shared::streams::CONFIG_STREAM, key);
    if let Some(Command::Propagation {
        ingress_url,
        rounds,
    }) = &args.command
    {
        let hasher = TokenHasher::new(args.token_pepper.as_bytes())?;
        return propagation(&config, &hasher, ingress_url, *rounds).await;
    }
    let mock_url = args
        .mock_url
        .as_deref()
        .context("--mock-url is required for the set-up")?;
    let master_keys_text = MasterKeys::generate_entry(1);
    let master_keys = MasterKeys::parse(&master_keys_text)?;
    let hasher = TokenHasher::new(args.token_pepper.as_bytes())?;

    publish(
        &config,
        ConfigEvent::ProviderPut(Provider {
            id: PROVIDER.into(),
            name: "Benchmark mock (OpenAI protocol)".into(),
            protocol: Protocol::OpenAi,
            base_url: format!("{}/v1", mock_url.trim_end_matches('/')),
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
        &config,
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
            &config,
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
                    capabilities: Default::default(),
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
                retry: None,
                response_cache: None,
                routing: None,
            }),
        )
        .await?;
    }
    let plain = PlainToken::generate();
    publish(
        &config,
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
            team_id: None,
        }),
    )
    .await?;
    println!("AXONGATE_MASTER_KEYS='{master_keys_text}'");
    println!("BENCH_TOKEN='{}'", plain.expose());
    Ok(())
}

fn probe_token(hasher: &TokenHasher, plain: &PlainToken, enabled: bool) -> UserToken {
    UserToken {
        id: "bench-propagation-probe".into(),
        name: "propagation probe".into(),
        owner_user_id: "bench-user".into(),
        hash: hasher.hash(plain),
        last_four: plain.last_four(),
        allowed_models: vec![],
        rpm: None,
        tpm: None,
        budget: None,
        expires_at: None,
        enabled,
        team_id: None,
    }
}

/// Polls `GET /v1/models` with `plain` on one keep-alive connection until it answers `want`;
/// the time since `since`. Gives up (with an error) after a minute.
async fn until_status(
    ingress_url: &str,
    connection: &mut Connection,
    plain: &str,
    want: u16,
    since: Instant,
) -> anyhow::Result<Duration> {
    let host = authority(ingress_url);
    loop {
        let status = connection.get_status(host, "/v1/models", plain).await;
        match status {
            Ok(status) if status == want => return Ok(since.elapsed()),
            Ok(_) => {}
            Err(_) => {
                *connection =
                    Connection::open(socket_address(ingress_url).map_err(anyhow::Error::msg)?)
                        .await
                        .map_err(|error| anyhow::anyhow!("ingress at {ingress_url}: {error}"))?;
            }
        }
        anyhow::ensure!(
            since.elapsed() < Duration::from_secs(60),
            "ingress did not answer {want} within a minute of the change"
        );
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
}

fn percentiles(mut samples: Vec<Duration>) -> String {
    samples.sort_unstable();
    let at = |quantile: f64| {
        let index = ((samples.len() as f64 - 1.0) * quantile).round() as usize;
        samples
            .get(index)
            .map_or(f64::NAN, |sample| sample.as_secs_f64() * 1000.0)
    };
    format!(
        "{:.2} | {:.2} | {:.2}",
        at(0.5),
        at(0.9),
        samples
            .last()
            .map_or(f64::NAN, |max| max.as_secs_f64() * 1000.0)
    )
}

async fn propagation(
    config: &kit::chain::ChainedStream,
    hasher: &TokenHasher,
    ingress_url: &str,
    rounds: u32,
) -> anyhow::Result<()> {
    let plain = PlainToken::generate();
    let address = socket_address(ingress_url).map_err(anyhow::Error::msg)?;
    let mut connection = Connection::open(address)
        .await
        .map_err(|error| anyhow::anyhow!("ingress at {ingress_url}: {error}"))?;
    publish(
        config,
        ConfigEvent::TokenPut(probe_token(hasher, &plain, true)),
    )
    .await?;
    until_status(
        ingress_url,
        &mut connection,
        plain.expose(),
        200,
        Instant::now(),
    )
    .await?;
    let (mut acknowledgements, mut disables, mut enables) = (vec![], vec![], vec![]);
    for _ in 0..rounds {
        for enabled in [false, true] {
            let attempted = Instant::now();
            publish(
                config,
                ConfigEvent::TokenPut(probe_token(hasher, &plain, enabled)),
            )
            .await?;
            acknowledgements.push(attempted.elapsed());
            let acknowledged = Instant::now();
            let want = if enabled { 200 } else { 401 };
            let seen = until_status(
                ingress_url,
                &mut connection,
                plain.expose(),
                want,
                acknowledged,
            )
            .await?;
            if enabled {
                enables.push(seen);
            } else {
                disables.push(seen);
            }
        }
    }
    println!("## Config propagation\n");
    println!(
        "A probe token disabled and re-enabled {rounds} times by config events published to \
         NATS, polled on one keep-alive connection (`bench-setup propagation`). Publish to \
         acknowledgement, then acknowledgement to the first answer that reflects the change.\n"
    );
    println!("| step | p50 ms | p90 ms | max ms |\n| --- | --- | --- | --- |");
    println!(
        "| publish → acknowledged | {} |",
        percentiles(acknowledgements)
    );
    println!(
        "| acknowledged → token refused (401) | {} |",
        percentiles(disables)
    );
    println!(
        "| acknowledged → token served again (200) | {} |",
        percentiles(enables)
    );
    Ok(())
}

/// Publishes a config event linked into the stream's chain (`kit::chain`), as admin-api does.
async fn publish(config: &kit::chain::ChainedStream, event: ConfigEvent) -> anyhow::Result<u64> {
    let envelope = Envelope::by_actor(event, Actor::system());
    config
        .publish_envelope(&envelope, None)
        .await
        .context("publish")
}
