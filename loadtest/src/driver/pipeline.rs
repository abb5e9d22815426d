//! The event pipeline: requests through the gateway until their rows are visible in ClickHouse.
//!
//! ClickHouse rows carry whole-second times, so lag is measured from outside: the driver notes
//! when each answer ended, a poller notes when the row count grew, and the k-th answer's lag is
//! the time from its end until the count first covered k rows. Rows become visible roughly in
//! the order requests finish, so this matches each row with a request of the same rank.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::Serialize;

use super::histogram::{LatencyHistogram, LatencySummary};
use super::http::simple_request;

/// A ClickHouse `requests` table reached over HTTP.
#[derive(Clone, Debug)]
pub struct RequestsTable {
    pub addr: SocketAddr,
    pub database: String,
}

impl RequestsTable {
    pub async fn count(&self) -> Option<u64> {
        let query = format!("SELECT count() FROM {}.requests", self.database);
        let (status, body) = simple_request(
            self.addr,
            hyper::Method::POST,
            "/",
            Bytes::from(query),
            Duration::from_secs(5),
        )
        .await
        .ok()?;
        if status != 200 {
            return None;
        }
        std::str::from_utf8(&body).ok()?.trim().parse().ok()
    }

    /// Waits until the count has not changed for `quiet` (the pipeline is idle), up to `limit`;
    /// returns the count.
    pub async fn settled_count(&self, quiet: Duration, limit: Duration) -> Option<u64> {
        let started = Instant::now();
        let mut last = self.count().await?;
        let mut unchanged_since = Instant::now();
        while started.elapsed() < limit {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let now = self.count().await?;
            if now != last {
                last = now;
                unchanged_since = Instant::now();
            } else if unchanged_since.elapsed() >= quiet {
                break;
            }
        }
        Some(last)
    }
}

/// Row counts seen over time, relative to a baseline.
pub struct Poller {
    stop: Arc<AtomicBool>,
    latest: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<Vec<(Duration, u64)>>,
}

impl Poller {
    /// Polls every `interval`; each sample is (time since `origin`, rows above `baseline`).
    pub fn start(table: RequestsTable, baseline: u64, origin: Instant, interval: Duration) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let latest = Arc::new(AtomicU64::new(0));
        let task = tokio::spawn({
            let (stop, latest) = (stop.clone(), latest.clone());
            async move {
                let mut samples = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    if let Some(count) = table.count().await {
                        let rows = count.saturating_sub(baseline);
                        latest.store(rows, Ordering::Relaxed);
                        samples.push((origin.elapsed(), rows));
                    }
                    tokio::time::sleep(interval).await;
                }
                samples
            }
        });
        Self { stop, latest, task }
    }

    /// Waits until at least `rows` are visible or `limit` has passed.
    pub async fn wait_for(&self, rows: u64, limit: Duration) -> bool {
        let started = Instant::now();
        while started.elapsed() < limit {
            if self.latest.load(Ordering::Relaxed) >= rows {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        false
    }

    pub async fn finish(self) -> Vec<(Duration, u64)> {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.unwrap_or_default()
    }
}

/// Lags matched by rank, and what could not be matched.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LagFigures {
    pub lag: LatencySummary,
    /// Requests whose row never became visible while polling.
    pub unmatched: u64,
    /// When the last row became visible, relative to the origin.
    pub last_visible_s: Option<f64>,
}

/// `completions` (sorted) are when each answer ended; `samples` (in time order) are row counts.
pub fn match_lags(completions: &[Duration], samples: &[(Duration, u64)]) -> LagFigures {
    let mut histogram = LatencyHistogram::new();
    let mut sample = 0;
    let mut unmatched = 0;
    let mut last_visible = None;
    for (index, completed) in completions.iter().enumerate() {
        let rank = index as u64 + 1;
        while sample < samples.len() && samples[sample].1 < rank {
            sample += 1;
        }
        match samples.get(sample) {
            Some((visible, _)) => {
                histogram.record(visible.saturating_sub(*completed));
                last_visible = Some(*visible);
            }
            None => unmatched += 1,
        }
    }
    LagFigures {
        lag: histogram.summary(),
        unmatched,
        last_visible_s: last_visible.map(|time| time.as_secs_f64()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(value: u64) -> Duration {
        Duration::from_millis(value)
    }

    #[test]
    fn each_answer_is_matched_with_the_poll_that_first_covers_its_rank() {
        let completions = [ms(10), ms(20), ms(30), ms(40)];
        let samples = [(ms(15), 0), (ms(100), 2), (ms(200), 3), (ms(300), 4)];
        let figures = match_lags(&completions, &samples);
        assert_eq!(figures.unmatched, 0);
        assert_eq!(figures.lag.count, 4);
        // Lags: 90, 80, 170, 260 ms.
        assert!(
            (figures.lag.max_us - 260_000.0).abs() < 300.0,
            "{figures:?}"
        );
        assert!((figures.lag.p50_us - 90_000.0).abs() < 100.0, "{figures:?}");
        assert_eq!(figures.last_visible_s, Some(0.3));
    }

    #[test]
    fn rows_never_seen_are_counted_as_unmatched() {
        let figures = match_lags(&[ms(1), ms(2), ms(3)], &[(ms(50), 1)]);
        assert_eq!(figures.unmatched, 2);
        assert_eq!(figures.lag.count, 1);
    }

    #[test]
    fn a_row_seen_before_its_rank_completed_counts_as_no_lag() {
        // Rows from earlier traffic can make the count run ahead; that is clamped to zero.
        let figures = match_lags(&[ms(100)], &[(ms(50), 5)]);
        assert_eq!(figures.lag.max_us, 0.0);
    }
}
