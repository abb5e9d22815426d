//! A lean HTTP/1.1 client: one keep-alive connection per worker, no pool, so the driver spends
//! as little of its core as possible per request.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::histogram::LatencyHistogram;
use super::request::{EventKind, RequestTemplate, classify_event};
use crate::sse::SseDecoder;

/// How one exchange failed; the text is the error's bucket in the report.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    #[error("connect")]
    Connect,
    #[error("send")]
    Send,
    #[error("status {0}")]
    Status(u16),
    #[error("body")]
    Body,
    #[error("stream error event")]
    StreamError,
    #[error("stream cut short")]
    Incomplete,
    #[error("timeout")]
    Timeout,
}

/// One keep-alive connection.
pub struct Connection {
    sender: SendRequest<Full<Bytes>>,
}

impl Connection {
    pub async fn open(addr: SocketAddr) -> Result<Self, ExchangeError> {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|_| ExchangeError::Connect)?;
        stream
            .set_nodelay(true)
            .map_err(|_| ExchangeError::Connect)?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|_| ExchangeError::Connect)?;
        tokio::spawn(async move {
            // The connection ends when the server closes it or the sender is dropped; either
            // way the worker notices on its next request.
            let _ = connection.await;
        });
        Ok(Self { sender })
    }

    pub fn is_closed(&self) -> bool {
        self.sender.is_closed()
    }

    /// The status of a `GET path` with a bearer token on this connection (the body is read
    /// and dropped), for polling a gateway until it reflects a config change.
    pub async fn get_status(
        &mut self,
        authority: &str,
        path: &str,
        bearer: &str,
    ) -> Result<u16, ExchangeError> {
        let request = hyper::Request::builder()
            .method(hyper::Method::GET)
            .uri(path)
            .header(hyper::header::HOST, authority)
            .header(hyper::header::AUTHORIZATION, format!("Bearer {bearer}"))
            .body(Full::new(Bytes::new()))
            .map_err(|_| ExchangeError::Send)?;
        let response = self
            .sender
            .send_request(request)
            .await
            .map_err(|_| ExchangeError::Send)?;
        let status = response.status().as_u16();
        response
            .into_body()
            .collect()
            .await
            .map_err(|_| ExchangeError::Body)?;
        Ok(status)
    }
}

/// What a finished exchange measured.
#[derive(Clone, Copy, Debug)]
pub struct Exchange {
    /// When the request was handed to the connection.
    pub sent: Instant,
    /// When the first body bytes arrived.
    pub first_byte: Option<Instant>,
    /// When the body (or stream) ended.
    pub end: Instant,
}

/// Sends one request and reads the whole answer. For streams, each event's arrival is compared
/// with the previous one's and the gap recorded in `gaps`.
pub async fn exchange(
    connection: &mut Connection,
    template: &RequestTemplate,
    gaps: Option<&mut LatencyHistogram>,
) -> Result<Exchange, ExchangeError> {
    exchange_observed(connection, template, gaps, None).await
}

/// [`exchange`], calling `on_first_byte` as soon as the first body bytes arrive (to count open
/// streams while they are still open).
pub async fn exchange_observed(
    connection: &mut Connection,
    template: &RequestTemplate,
    mut gaps: Option<&mut LatencyHistogram>,
    on_first_byte: Option<&(dyn Fn() + Send + Sync)>,
) -> Result<Exchange, ExchangeError> {
    connection
        .sender
        .ready()
        .await
        .map_err(|_| ExchangeError::Send)?;
    let mut request = hyper::Request::builder()
        .method(hyper::Method::POST)
        .uri(template.path);
    for (name, value) in &template.headers {
        request = request.header(name, value);
    }
    let request = request
        .body(Full::new(template.body.clone()))
        .map_err(|_| ExchangeError::Send)?;
    let sent = Instant::now();
    let response = connection
        .sender
        .send_request(request)
        .await
        .map_err(|_| ExchangeError::Send)?;
    let status = response.status().as_u16();
    let mut body = response.into_body();
    let mut first_byte = None;
    let mut decoder = (template.stream && status == 200).then(SseDecoder::new);
    let mut last_event: Option<Instant> = None;
    let mut ended = false;
    let mut stream_error = false;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| ExchangeError::Body)?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        let now = Instant::now();
        if first_byte.is_none() {
            first_byte = Some(now);
            if let Some(on_first_byte) = on_first_byte {
                on_first_byte();
            }
        }
        if let Some(decoder) = decoder.as_mut() {
            for event in decoder.push(&data) {
                if let (Some(previous), Some(gaps)) = (last_event, gaps.as_deref_mut()) {
                    gaps.record(now.saturating_duration_since(previous));
                }
                last_event = Some(now);
                match classify_event(template.dialect, &event) {
                    EventKind::End => ended = true,
                    EventKind::Error => stream_error = true,
                    EventKind::Other => {}
                }
            }
        }
    }
    let end = Instant::now();
    if status != 200 {
        return Err(ExchangeError::Status(status));
    }
    if stream_error {
        return Err(ExchangeError::StreamError);
    }
    if decoder.is_some() && !ended {
        return Err(ExchangeError::Incomplete);
    }
    Ok(Exchange {
        sent,
        first_byte,
        end,
    })
}

/// A one-off request for set-up and polling (ClickHouse queries, readiness): returns the status
/// and the whole body.
pub async fn simple_request(
    addr: SocketAddr,
    method: hyper::Method,
    path_and_query: &str,
    body: Bytes,
    timeout: Duration,
) -> Result<(u16, Bytes), ExchangeError> {
    let attempt = async {
        let mut connection = Connection::open(addr).await?;
        let request = hyper::Request::builder()
            .method(method)
            .uri(path_and_query)
            .header(hyper::header::HOST, addr.to_string())
            .body(Full::new(body))
            .map_err(|_| ExchangeError::Send)?;
        let response = connection
            .sender
            .send_request(request)
            .await
            .map_err(|_| ExchangeError::Send)?;
        let status = response.status().as_u16();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|_| ExchangeError::Body)?
            .to_bytes();
        Ok((status, bytes))
    };
    tokio::time::timeout(timeout, attempt)
        .await
        .map_err(|_| ExchangeError::Timeout)?
}

/// Resolves `http://host:port` to a socket address (loopback names included).
pub fn socket_address(url: &str) -> Result<SocketAddr, String> {
    let authority = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("{url:?} is not an http:// URL"))?
        .split('/')
        .next()
        .unwrap_or_default();
    use std::net::ToSocketAddrs as _;
    authority
        .to_socket_addrs()
        .map_err(|error| format!("{url:?}: {error}"))?
        .next()
        .ok_or_else(|| format!("{url:?} resolves to nothing"))
}

/// The `host:port` part of an `http://` URL, for the Host header.
pub fn authority(url: &str) -> &str {
    url.strip_prefix("http://")
        .unwrap_or(url)
        .split('/')
        .next()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_authorities_of_urls() {
        assert_eq!(
            socket_address("http://127.0.0.1:9100/v1").unwrap(),
            "127.0.0.1:9100".parse().unwrap()
        );
        assert!(socket_address("https://127.0.0.1:1").is_err());
        assert_eq!(authority("http://127.0.0.1:8080/v1"), "127.0.0.1:8080");
    }
}
