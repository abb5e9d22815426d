//! The two load shapes.
//!
//! *Open loop*: requests are due at a fixed rate whatever the server does, and each latency is
//! measured from the moment the request was due, not from when a connection was free to send
//! it; a stalled server therefore shows up in the figures instead of quietly slowing the driver
//! down (coordinated omission). A plain OS thread keeps the schedule, since its sleeps are far
//! finer than the async timer's millisecond.
//!
//! *Closed loop*: a fixed number of connections each send the next request as soon as the last
//! answer has ended; the number of answers per second is the throughput.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{Mutex, mpsc};

use super::histogram::LatencyHistogram;
use super::http::{Connection, Exchange, ExchangeError, exchange};
use super::request::RequestTemplate;

/// Where and what to send.
#[derive(Clone, Debug)]
pub struct Endpoint {
    pub addr: SocketAddr,
    pub template: Arc<RequestTemplate>,
}

/// What one worker measured; merged across workers at the end of a run.
#[derive(Clone, Debug, Default)]
pub struct Recorder {
    /// Open loop: from the due time to the end of the answer; closed loop: from sending.
    pub latency: LatencyHistogram,
    /// From actually sending to the end of the answer.
    pub service: LatencyHistogram,
    /// To the first body bytes (open loop: from the due time).
    pub first_byte: LatencyHistogram,
    /// Between consecutive server-sent events of one stream.
    pub gaps: LatencyHistogram,
    pub ok: u64,
    pub errors: BTreeMap<String, u64>,
    /// When each answer ended, relative to the run's origin (only when asked for).
    pub completions: Vec<Duration>,
}

impl Recorder {
    fn record(
        &mut self,
        result: &Result<Exchange, ExchangeError>,
        due: Instant,
        origin: Instant,
        track: bool,
    ) {
        match result {
            Ok(exchange) => {
                self.ok += 1;
                self.latency
                    .record(exchange.end.saturating_duration_since(due));
                self.service
                    .record(exchange.end.saturating_duration_since(exchange.sent));
                if let Some(first_byte) = exchange.first_byte {
                    self.first_byte
                        .record(first_byte.saturating_duration_since(due));
                }
                if track {
                    self.completions
                        .push(exchange.end.saturating_duration_since(origin));
                }
            }
            Err(error) => {
                *self.errors.entry(error.to_string()).or_default() += 1;
                // An answer with a status was a finished request to the server too.
                if track && matches!(error, ExchangeError::Status(_)) {
                    self.completions
                        .push(Instant::now().saturating_duration_since(origin));
                }
            }
        }
    }

    pub fn merge(&mut self, other: Self) {
        self.latency.merge(&other.latency);
        self.service.merge(&other.service);
        self.first_byte.merge(&other.first_byte);
        self.gaps.merge(&other.gaps);
        self.ok += other.ok;
        for (error, count) in other.errors {
            *self.errors.entry(error).or_default() += count;
        }
        self.completions.extend(other.completions);
    }

    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }
}

/// A finished run.
#[derive(Debug)]
pub struct RunOutcome {
    pub recorder: Recorder,
    /// The measured interval (warm-up excluded).
    pub measured: Duration,
}

impl RunOutcome {
    pub fn throughput(&self) -> f64 {
        let seconds = self.measured.as_secs_f64();
        if seconds <= 0.0 {
            0.0
        } else {
            (self.recorder.ok + self.recorder.error_count()) as f64 / seconds
        }
    }
}

/// Options both shapes share.
#[derive(Clone, Copy, Debug)]
pub struct RunOptions {
    pub warmup: Duration,
    pub measure: Duration,
    /// Keep every completion time (for the event pipeline's lag).
    pub track_completions: bool,
    /// The instant completion times are measured from.
    pub origin: Instant,
}

async fn one_request(
    connection: &mut Option<Connection>,
    endpoint: &Endpoint,
    gaps: Option<&mut LatencyHistogram>,
) -> Result<Exchange, ExchangeError> {
    if connection.as_ref().is_none_or(Connection::is_closed) {
        *connection = Some(Connection::open(endpoint.addr).await?);
    }
    let Some(open) = connection.as_mut() else {
        return Err(ExchangeError::Connect);
    };
    let result = exchange(open, &endpoint.template, gaps).await;
    if result.is_err() {
        // The connection's state is unknown after a failure: start afresh.
        *connection = None;
    }
    result
}

/// One request on a fresh or kept connection, for readiness checks.
pub async fn probe(
    connection: &mut Option<Connection>,
    endpoint: &Endpoint,
) -> Result<(), ExchangeError> {
    one_request(connection, endpoint, None).await.map(|_| ())
}

/// Closed loop: `concurrency` connections back to back.
pub async fn closed_loop(
    endpoint: &Endpoint,
    concurrency: usize,
    options: RunOptions,
) -> RunOutcome {
    let start = Instant::now();
    let measure_from = start + options.warmup;
    let end = measure_from + options.measure;
    let mut workers = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let endpoint = endpoint.clone();
        workers.push(tokio::spawn(async move {
            let mut recorder = Recorder::default();
            let mut connection = None;
            loop {
                let now = Instant::now();
                if now >= end {
                    break;
                }
                let measuring = now >= measure_from;
                let gaps = measuring.then_some(&mut recorder.gaps);
                let result = one_request(&mut connection, &endpoint, gaps).await;
                if measuring {
                    let due = result.as_ref().map_or(now, |exchange| exchange.sent);
                    recorder.record(&result, due, options.origin, options.track_completions);
                }
            }
            recorder
        }));
    }
    collect(workers, options.measure).await
}

/// Open loop: `rate` requests per second, spread evenly, over `connections` connections.
pub async fn open_loop(
    endpoint: &Endpoint,
    rate: u32,
    connections: usize,
    options: RunOptions,
) -> RunOutcome {
    let (sender, receiver) = mpsc::unbounded_channel::<(Instant, bool)>();
    let receiver = Arc::new(Mutex::new(receiver));
    let mut workers = Vec::with_capacity(connections);
    let mut opened = Vec::with_capacity(connections);
    for _ in 0..connections {
        opened.push(Connection::open(endpoint.addr).await.ok());
    }
    for mut connection in opened {
        let endpoint = endpoint.clone();
        let receiver = receiver.clone();
        workers.push(tokio::spawn(async move {
            let mut recorder = Recorder::default();
            loop {
                let next = receiver.lock().await.recv().await;
                let Some((due, measuring)) = next else {
                    break;
                };
                let gaps = measuring.then_some(&mut recorder.gaps);
                let result = one_request(&mut connection, &endpoint, gaps).await;
                if measuring {
                    recorder.record(&result, due, options.origin, options.track_completions);
                }
            }
            recorder
        }));
    }
    let start = Instant::now() + Duration::from_millis(5);
    let schedule = Schedule {
        start,
        rate,
        warmup: options.warmup,
        measure: options.measure,
    };
    let pacer = std::thread::spawn(move || schedule.run(&sender));
    let outcome = collect(workers, options.measure).await;
    let _ = pacer.join();
    outcome
}

/// When each open-loop request is due.
#[derive(Clone, Copy, Debug)]
pub struct Schedule {
    pub start: Instant,
    pub rate: u32,
    pub warmup: Duration,
    pub measure: Duration,
}

impl Schedule {
    /// The due time of request `index` and whether it is measured (after the warm-up).
    pub fn due(&self, index: u64) -> Option<(Instant, bool)> {
        let offset = Duration::from_secs_f64(index as f64 / f64::from(self.rate.max(1)));
        if offset >= self.warmup + self.measure {
            return None;
        }
        Some((self.start + offset, offset >= self.warmup))
    }

    fn run(&self, sender: &mpsc::UnboundedSender<(Instant, bool)>) {
        let mut index = 0;
        while let Some((due, measuring)) = self.due(index) {
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
            if sender.send((due, measuring)).is_err() {
                return;
            }
            index += 1;
        }
    }
}

async fn collect(
    workers: Vec<tokio::task::JoinHandle<Recorder>>,
    measured: Duration,
) -> RunOutcome {
    let mut recorder = Recorder::default();
    for worker in workers {
        if let Ok(part) = worker.await {
            recorder.merge(part);
        }
    }
    recorder.completions.sort_unstable();
    RunOutcome { recorder, measured }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_spreads_requests_evenly_and_marks_the_warmup() {
        let start = Instant::now();
        let schedule = Schedule {
            start,
            rate: 1_000,
            warmup: Duration::from_millis(10),
            measure: Duration::from_millis(20),
        };
        let due: Vec<_> = (0..).map_while(|index| schedule.due(index)).collect();
        assert_eq!(due.len(), 30);
        assert_eq!(due.iter().filter(|(_, measuring)| *measuring).count(), 20);
        assert_eq!(due[0].0, start);
        assert_eq!(due[15].0 - start, Duration::from_millis(15));
    }

    #[test]
    fn recorder_counts_errors_by_kind_and_merges() {
        let origin = Instant::now();
        let mut left = Recorder::default();
        left.record(&Err(ExchangeError::Status(503)), origin, origin, true);
        left.record(&Err(ExchangeError::Connect), origin, origin, true);
        let mut right = Recorder::default();
        let exchange = Exchange {
            sent: origin,
            first_byte: Some(origin + Duration::from_micros(50)),
            end: origin + Duration::from_micros(100),
        };
        right.record(&Ok(exchange), origin, origin, true);
        right.record(&Err(ExchangeError::Status(503)), origin, origin, false);
        left.merge(right);
        assert_eq!(left.ok, 1);
        assert_eq!(left.errors.get("status 503"), Some(&2));
        assert_eq!(left.errors.get("connect"), Some(&1));
        assert_eq!(left.error_count(), 3);
        // A refused connection is not a finished request; a 503 is.
        assert_eq!(left.completions.len(), 2);
        assert_eq!(left.latency.count(), 1);
    }
}
