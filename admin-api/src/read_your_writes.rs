//! Read your writes: a config command answers only after the projector has applied its event.
//! [`Projections`] follows the last stream sequence each Postgres projection has committed, and
//! [`Projections::wait_for`] waits for a given one.

use std::time::Duration;

use deadpool_postgres::Pool;
use tokio::sync::watch;

use crate::db::to_u64;
use crate::error::ApiError;

/// The last stream sequence each Postgres projection has committed, kept current by a
/// `LISTEN axongate_projection` connection (the projector notifies `config:<seq>` and
/// `audit:<seq>` on commit) with a periodic poll of `projection_offsets` as a safety net.
#[derive(Clone)]
pub struct Projections {
    config: watch::Receiver<u64>,
    audit: watch::Receiver<u64>,
    pool: Pool,
    senders: std::sync::Arc<(watch::Sender<u64>, watch::Sender<u64>)>,
}

/// Which projection a command waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Projection {
    Config,
    Audit,
}

impl Projections {
    /// Starts following the projector's notifications.
    #[must_use]
    pub fn start(pool: Pool, postgres_url: String) -> Self {
        let (config_sender, config) = watch::channel(0);
        let (audit_sender, audit) = watch::channel(0);
        let senders = std::sync::Arc::new((config_sender, audit_sender));
        let listener_senders = senders.clone();
        tokio::spawn(async move {
            let mut backoff = Duration::from_millis(100);
            loop {
                let started = tokio::time::Instant::now();
                if let Err(error) = listen(&postgres_url, &listener_senders).await {
                    tracing::warn!(%error, "projection listener lost its connection; reconnecting");
                }
                // A connection that held for a while was healthy: start backing off afresh.
                if started.elapsed() > Duration::from_secs(30) {
                    backoff = Duration::from_millis(100);
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        });
        Self {
            config,
            audit,
            pool,
            senders,
        }
    }

    async fn poll(&self) {
        let Ok(client) = self.pool.get().await else {
            return;
        };
        let Ok(rows) = client
            .query(
                "SELECT projection, last_sequence FROM projection_offsets",
                &[],
            )
            .await
        else {
            return;
        };
        for row in rows {
            let name: String = row.get(0);
            let sequence = to_u64(row.get(1));
            if let Some(sender) = self.sender(&name) {
                advance(sender, sequence)
            }
        }
    }

    fn sender(&self, name: &str) -> Option<&watch::Sender<u64>> {
        match name {
            "config" => Some(&self.senders.0),
            "audit" => Some(&self.senders.1),
            _ => None,
        }
    }

    /// Waits until `projection` has applied stream sequence `sequence`, up to `limit`.
    ///
    /// # Errors
    /// 503 `projection_timeout` when the projector has not caught up in time.
    pub async fn wait_for(
        &self,
        projection: Projection,
        sequence: u64,
        limit: Duration,
    ) -> Result<(), ApiError> {
        let mut receiver = match projection {
            Projection::Config => self.config.clone(),
            Projection::Audit => self.audit.clone(),
        };
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if *receiver.borrow_and_update() >= sequence {
                return Ok(());
            }
            let poll_at = tokio::time::Instant::now() + Duration::from_millis(250);
            tokio::select! {
                _ = receiver.changed() => {}
                () = tokio::time::sleep_until(poll_at.min(deadline)) => self.poll().await,
            }
            if tokio::time::Instant::now() >= deadline && *receiver.borrow() < sequence {
                return Err(ApiError::Unavailable {
                    code: "projection_timeout",
                    message: format!(
                        "the change was accepted (stream sequence {sequence}) but the projector has \
                         not applied it within {} ms; it will appear once the projector catches up",
                        limit.as_millis()
                    ),
                });
            }
        }
    }
}

fn advance(sender: &watch::Sender<u64>, sequence: u64) {
    sender.send_if_modified(|current| {
        if sequence > *current {
            *current = sequence;
            true
        } else {
            false
        }
    });
}

async fn listen(
    url: &str,
    senders: &(watch::Sender<u64>, watch::Sender<u64>),
) -> Result<(), tokio_postgres::Error> {
    use futures::StreamExt as _;
    let (client, mut connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    let (notification_sender, mut notifications) = futures::channel::mpsc::unbounded();
    let messages = futures::stream::poll_fn(move |context| connection.poll_message(context));
    let driver = tokio::spawn(messages.map(Ok).forward(notification_sender));
    client.batch_execute("LISTEN axongate_projection").await?;
    // Read the offsets only after LISTEN, so no commit can fall between the two.
    if let Ok(rows) = client
        .query(
            "SELECT projection, last_sequence FROM projection_offsets",
            &[],
        )
        .await
    {
        for row in rows {
            let name: String = row.get(0);
            let sequence = to_u64(row.get(1));
            match name.as_str() {
                "config" => advance(&senders.0, sequence),
                "audit" => advance(&senders.1, sequence),
                _ => {}
            }
        }
    }
    while let Some(message) = notifications.next().await {
        match message {
            Ok(tokio_postgres::AsyncMessage::Notification(notification)) => {
                if let Some((name, sequence)) = notification.payload().split_once(':') {
                    let Ok(sequence) = sequence.parse::<u64>() else {
                        continue;
                    };
                    match name {
                        "config" => advance(&senders.0, sequence),
                        "audit" => advance(&senders.1, sequence),
                        _ => {}
                    }
                }
            }
            Ok(_) => {}
            Err(error) => {
                driver.abort();
                return Err(error);
            }
        }
    }
    driver.abort();
    Ok(())
}
