//! The HTTP server: hyper with HTTP/1.1 and h2c (or, given a certificate, HTTPS with HTTP/1.1
//! and h2 by ALPN), and a graceful shutdown that lets in-flight requests and streams finish up
//! to a deadline.
//!
//! No connection may hold the node by doing nothing: hyper cuts request headers that take
//! longer than [`HEADER_READ_TIMEOUT`]; a watchdog per connection closes one with no request in
//! flight and no byte moved for the idle timeout (a socket that never sends a byte, or a
//! keep-alive connection left open, which hyper's header timer does not cover before the
//! protocol is detected), and one whose writes have been blocked for the write timeout (a
//! client that stopped reading). Request bodies are read within the body-read timeout by the
//! handlers. Past the connection cap, new connections are closed at once and counted.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// How long a client may take to send its request headers.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// What bounds connections.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Open connections at most; more are closed on accept.
    pub max_connections: usize,
    /// A connection with no request in flight and no traffic for this long is closed.
    pub idle_timeout: Duration,
    /// A connection whose writes have been blocked this long is closed.
    pub write_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            max_connections: 10_000,
            idle_timeout: Duration::from_secs(30),
            write_timeout: Duration::from_secs(60),
        }
    }
}

/// What the watchdog of one connection reads: milliseconds since `epoch` of the last byte
/// moved, since when writes are blocked (0: not blocked), and requests in flight.
struct Activity {
    epoch: Instant,
    last_moved_ms: AtomicU64,
    write_blocked_since_ms: AtomicU64,
    in_flight: AtomicUsize,
}

impl Activity {
    fn new() -> Self {
        Self {
            epoch: Instant::now(),
            last_moved_ms: AtomicU64::new(0),
            write_blocked_since_ms: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn moved(&self) {
        self.last_moved_ms.store(self.now_ms(), Ordering::Relaxed);
    }

    /// Why the connection should be closed now, if it should.
    fn verdict(&self, limits: &ConnectionLimits) -> Option<&'static str> {
        let now = self.now_ms();
        let blocked_since = self.write_blocked_since_ms.load(Ordering::Relaxed);
        if blocked_since > 0 && now.saturating_sub(blocked_since) >= millis(limits.write_timeout) {
            return Some("write");
        }
        let idle_for = now.saturating_sub(self.last_moved_ms.load(Ordering::Relaxed));
        (self.in_flight.load(Ordering::Relaxed) == 0 && idle_for >= millis(limits.idle_timeout))
            .then_some("idle")
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// A socket that records when bytes move and when writes block.
struct TrackedIo<T> {
    inner: T,
    activity: Arc<Activity>,
}

impl<T: AsyncRead + Unpin> AsyncRead for TrackedIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffer: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buffer.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(context, buffer);
        if matches!(result, Poll::Ready(Ok(()))) && buffer.filled().len() > before {
            self.activity.moved();
        }
        result
    }
}

impl<T: AsyncWrite + Unpin> TrackedIo<T> {
    fn note_write<R>(&self, result: &Poll<std::io::Result<R>>) {
        match result {
            Poll::Pending => {
                let now = self.activity.now_ms().max(1);
                let _ = self.activity.write_blocked_since_ms.compare_exchange(
                    0,
                    now,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                );
            }
            Poll::Ready(_) => {
                self.activity
                    .write_blocked_since_ms
                    .store(0, Ordering::Relaxed);
                self.activity.moved();
            }
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for TrackedIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffer: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(context, buffer);
        self.note_write(&result);
        result
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffers: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write_vectored(context, buffers);
        self.note_write(&result);
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        let result = Pin::new(&mut self.inner).poll_flush(context);
        self.note_write(&result);
        result
    }

    fn poll_shutdown(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(context)
    }
}

/// Counts a request in flight from its arrival until its response body is dropped (the end of
/// a stream included).
struct InFlight(Arc<Activity>);

impl InFlight {
    fn start(activity: &Arc<Activity>) -> Self {
        activity.in_flight.fetch_add(1, Ordering::Relaxed);
        Self(activity.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.0.moved();
    }
}

/// A response body that holds its request's [`InFlight`] until it is dropped.
struct TrackedBody {
    inner: Body,
    _in_flight: InFlight,
}

impl http_body::Body for TrackedBody {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(context)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// Serves `app` on `listener` until `shutdown` resolves, then waits up to `drain_deadline` for
/// open connections (in-flight streams included) to finish. With `tls`, every connection is
/// HTTPS: its handshake runs in the connection's own task, holding a connection slot for at
/// most [`HEADER_READ_TIMEOUT`], so a client that never finishes one delays nobody else.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: impl std::future::Future<Output = ()>,
    drain_deadline: Duration,
    limits: ConnectionLimits,
    tls: Option<Arc<kit::tls::ServerConfig>>,
) {
    let open = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    let acceptor = kit::tls::Acceptor::new(tls, HEADER_READ_TIMEOUT);
    if acceptor.is_tls() {
        let listen = listener.local_addr().map(|address| address.to_string());
        tracing::info!(
            listen = listen.as_deref().unwrap_or("?"),
            "serving HTTPS (TLS with ALPN h2 and http/1.1)"
        );
    }
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(Duration::from_secs(30)));
    let builder = Arc::new(builder);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: back off briefly, keep serving.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(slot) = open.clone().try_acquire_owned() else {
            metrics::counter!("ingress_connections_refused_total").increment(1);
            tracing::warn!(
                max = limits.max_connections,
                "connection cap reached; closing a new connection"
            );
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (builder, app, acceptor) = (builder.clone(), app.clone(), acceptor.clone());
        // Taken now, so a shutdown that starts during the handshake still waits for this
        // connection and then closes it gracefully.
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let _slot = slot;
            metrics::gauge!("ingress_connections_open").increment(1.0);
            match acceptor.accept(stream).await {
                Ok(stream) => {
                    serve_connection(&builder, app, stream, watcher, limits, remote.ip()).await;
                }
                Err(error) => {
                    metrics::counter!("ingress_tls_handshakes_failed_total").increment(1);
                    tracing::debug!(%error, "TLS handshake failed");
                }
            }
            metrics::gauge!("ingress_connections_open").decrement(1.0);
        });
    }
    tracing::info!(
        deadline_secs = drain_deadline.as_secs(),
        "shutting down: draining open connections"
    );
    if tokio::time::timeout(drain_deadline, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("drain deadline passed; closing the remaining connections");
    }
}

tokio::task_local! {
    /// The connection's remote address, while its request's handler runs.
    static PEER: std::net::IpAddr;
}

/// The address of the connection whose request is being handled (`None` outside a served
/// connection, as when the router is called directly).
#[must_use]
pub fn peer() -> Option<std::net::IpAddr> {
    PEER.try_with(|peer| *peer).ok()
}

/// Serves one accepted (and, with TLS, handshaken) connection until it ends or its watchdog
/// finds it idle or stalled.
async fn serve_connection<S>(
    builder: &Builder<TokioExecutor>,
    app: Router,
    stream: S,
    watcher: hyper_util::server::graceful::Watcher,
    limits: ConnectionLimits,
    peer: std::net::IpAddr,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Arc::new(Activity::new());
    let service = {
        let activity = activity.clone();
        hyper::service::service_fn(move |request: axum::http::Request<hyper::body::Incoming>| {
            let in_flight = InFlight::start(&activity);
            let mut app = app.clone();
            async move {
                let response = PEER
                    .scope(peer, tower::Service::call(&mut app, request.map(Body::new)))
                    .await?;
                Ok::<_, std::convert::Infallible>(response.map(|inner| {
                    Body::new(TrackedBody {
                        inner,
                        _in_flight: in_flight,
                    })
                }))
            }
        })
    };
    let io = TrackedIo {
        inner: stream,
        activity: activity.clone(),
    };
    let connection = builder
        .serve_connection_with_upgrades(TokioIo::new(io), service)
        .into_owned();
    let connection = watcher.watch(connection);
    tokio::pin!(connection);
    let check_every = (limits.idle_timeout.min(limits.write_timeout) / 4)
        .clamp(Duration::from_millis(100), Duration::from_secs(1));
    let mut watchdog = tokio::time::interval(check_every);
    watchdog.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            result = &mut connection => {
                if let Err(error) = result {
                    tracing::debug!(error = %error, "connection ended with an error");
                }
                break;
            }
            _ = watchdog.tick() => {
                if let Some(reason) = activity.verdict(&limits) {
                    metrics::counter!("ingress_connections_closed_total", "reason" => reason).increment(1);
                    tracing::debug!(reason, "closing a stalled connection");
                    break;
                }
            }
        }
    }
}
