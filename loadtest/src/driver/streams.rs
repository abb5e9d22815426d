//! Many streams open at once: how much resident memory each one costs the server.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::http::{Connection, exchange_observed};
use super::procfs;
use super::run::Endpoint;

/// What holding `streams` streams open did to the server.
#[derive(Clone, Debug, Default, Serialize)]
pub struct OpenStreamsOutcome {
    pub requested: usize,
    /// Streams that had sent their first bytes when memory was sampled.
    pub opened: usize,
    pub failed: usize,
    pub seconds_to_open: f64,
    pub rss_before_kb: Option<u64>,
    pub rss_open_kb: Option<u64>,
    /// Two seconds after every stream was dropped by the client.
    pub rss_after_kb: Option<u64>,
    pub kb_per_stream: Option<f64>,
}

/// Opens streams in batches (so no listen backlog overflows), samples the server's memory once
/// all are open, then drops them all.
pub async fn hold_open(
    endpoint: &Endpoint,
    streams: usize,
    batch: usize,
    open_timeout: Duration,
    pid: Option<u32>,
) -> OpenStreamsOutcome {
    let rss_before_kb = pid.and_then(procfs::resident_kb);
    let opened = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let deadline = started + open_timeout;
    let mut tasks = Vec::with_capacity(streams);
    while tasks.len() < streams && Instant::now() < deadline {
        let this_batch = batch.min(streams - tasks.len());
        for _ in 0..this_batch {
            let (endpoint, opened, failed) = (endpoint.clone(), opened.clone(), failed.clone());
            tasks.push(tokio::spawn(async move {
                let mut connection = match Connection::open(endpoint.addr).await {
                    Ok(connection) => connection,
                    Err(_) => {
                        failed.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                };
                // A stream counts as open once its first bytes arrive; it then runs until the
                // server ends it or the task is aborted.
                let seen_first_byte = Arc::new(std::sync::atomic::AtomicBool::new(false));
                let on_first_byte = {
                    let seen_first_byte = seen_first_byte.clone();
                    move || {
                        seen_first_byte.store(true, Ordering::Relaxed);
                        opened.fetch_add(1, Ordering::Relaxed);
                    }
                };
                let result = exchange_observed(
                    &mut connection,
                    &endpoint.template,
                    None,
                    Some(&on_first_byte),
                )
                .await;
                if result.is_err() && !seen_first_byte.load(Ordering::Relaxed) {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }));
        }
        let launched = tasks.len();
        while opened.load(Ordering::Relaxed) + failed.load(Ordering::Relaxed) < launched
            && Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let seconds_to_open = started.elapsed().as_secs_f64();
    // Let the server settle its buffers for the open streams before sampling.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rss_open_kb = pid.and_then(procfs::resident_kb);
    let open_count = opened.load(Ordering::Relaxed);
    for task in &tasks {
        task.abort();
    }
    for task in tasks {
        let _ = task.await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_after_kb = pid.and_then(procfs::resident_kb);
    let kb_per_stream = match (rss_before_kb, rss_open_kb) {
        (Some(before), Some(open)) if open_count > 0 => {
            Some((open as f64 - before as f64) / open_count as f64)
        }
        _ => None,
    };
    OpenStreamsOutcome {
        requested: streams,
        opened: open_count,
        failed: failed.load(Ordering::Relaxed),
        seconds_to_open,
        rss_before_kb,
        rss_open_kb,
        rss_after_kb,
        kb_per_stream,
    }
}
