//! Building response bodies: SSE frames written into one buffer, then sent with the configured
//! pacing, stalls and dropped connections.

use std::convert::Infallible;
use std::io;
use std::time::Duration;

use axum::body::Body;
use bytes::{BufMut, Bytes, BytesMut};
use futures::stream;
use serde::Serialize;
use tokio::sync::watch;

/// One SSE event, serialized. `content` marks the deltas that pacing and chunk counts refer to.
#[derive(Debug, Clone)]
pub struct Frame {
    pub bytes: Bytes,
    pub content: bool,
}

/// Writes SSE events into one growing buffer and cuts a [`Frame`] per event; all frames share
/// the buffer's allocation.
pub struct SseWriter {
    buffer: BytesMut,
    frames: Vec<Frame>,
    /// What ends an event: a blank line, `\n\n`, or Google's `\r\n\r\n`.
    event_end: &'static [u8],
}

impl SseWriter {
    pub fn with_capacity(events: usize, bytes_per_event: usize) -> Self {
        Self {
            buffer: BytesMut::with_capacity(events * bytes_per_event),
            frames: Vec::with_capacity(events),
            event_end: b"\n\n",
        }
    }

    /// Ends every event with `\r\n\r\n`, as Google's front end frames Gemini's stream.
    pub fn with_crlf(mut self) -> Self {
        self.event_end = b"\r\n\r\n";
        self
    }

    /// `event: <name>` (when given) and `data: <json>`, then the blank line.
    pub fn event<T: Serialize>(&mut self, name: Option<&str>, data: &T, content: bool) {
        if let Some(name) = name {
            self.buffer.extend_from_slice(b"event: ");
            self.buffer.extend_from_slice(name.as_bytes());
            self.buffer.extend_from_slice(b"\n");
        }
        self.buffer.extend_from_slice(b"data: ");
        // Serializing our own plain structs cannot fail; a failure would only truncate this one
        // event, which the tests would catch.
        let _ = serde_json::to_writer((&mut self.buffer).writer(), data);
        self.buffer.extend_from_slice(self.event_end);
        self.cut(content);
    }

    /// Not SSE: `prefix`, the JSON of `data`, `suffix` as one frame (a streamed JSON array).
    pub fn json_piece<T: Serialize>(
        &mut self,
        prefix: &str,
        data: &T,
        suffix: &str,
        content: bool,
    ) {
        self.buffer.extend_from_slice(prefix.as_bytes());
        let _ = serde_json::to_writer((&mut self.buffer).writer(), data);
        self.buffer.extend_from_slice(suffix.as_bytes());
        self.cut(content);
    }

    /// A literal `data:` payload such as `[DONE]`.
    pub fn data_line(&mut self, payload: &str) {
        self.buffer.extend_from_slice(b"data: ");
        self.buffer.extend_from_slice(payload.as_bytes());
        self.buffer.extend_from_slice(self.event_end);
        self.cut(false);
    }

    fn cut(&mut self, content: bool) {
        self.frames.push(Frame {
            bytes: self.buffer.split().freeze(),
            content,
        });
    }

    pub fn finish(self) -> Vec<Frame> {
        self.frames
    }
}

/// How frames are sent.
#[derive(Debug, Clone, Copy, Default)]
pub struct Pacing {
    /// Before each content frame but the first.
    pub chunk_delay: Duration,
    /// Abort the connection once this many content frames were sent.
    pub disconnect_after: Option<u32>,
    /// Stop sending, keeping the connection open until shutdown, once this many content frames
    /// were sent.
    pub stall_after: Option<u32>,
    /// After the last frame, keep the connection open until shutdown.
    pub linger: bool,
}

impl Pacing {
    fn is_immediate(&self) -> bool {
        self.chunk_delay.is_zero()
            && self.disconnect_after.is_none()
            && self.stall_after.is_none()
            && !self.linger
    }
}

struct Sender {
    frames: std::vec::IntoIter<Frame>,
    pacing: Pacing,
    content_sent: u32,
    shutdown: watch::Receiver<bool>,
    failed: bool,
}

fn dropped(reason: &str) -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionAborted, reason.to_owned())
}

impl Sender {
    async fn next(&mut self) -> Option<Result<Bytes, io::Error>> {
        if self.failed {
            return None;
        }
        let Some(frame) = self.frames.as_slice().first() else {
            if self.pacing.linger {
                self.pacing.linger = false;
                let _ = self.shutdown.wait_for(|&stopping| stopping).await;
                self.failed = true;
                return Some(Err(dropped("mock upstream shut down while lingering")));
            }
            return None;
        };
        if self
            .pacing
            .disconnect_after
            .is_some_and(|limit| self.content_sent >= limit)
        {
            // Returning pending once lets the server flush what it buffered; an error straight
            // away would abort the connection with the last frames (or even the headers) unsent.
            tokio::task::yield_now().await;
            self.failed = true;
            return Some(Err(dropped("mock upstream dropped the connection")));
        }
        if self
            .pacing
            .stall_after
            .is_some_and(|limit| self.content_sent >= limit)
        {
            let _ = self.shutdown.wait_for(|&stopping| stopping).await;
            self.failed = true;
            return Some(Err(dropped("mock upstream shut down during a stall")));
        }
        if frame.content && self.content_sent > 0 && !self.pacing.chunk_delay.is_zero() {
            tokio::select! {
                () = tokio::time::sleep(self.pacing.chunk_delay) => {}
                _ = self.shutdown.wait_for(|&stopping| stopping) => {
                    self.failed = true;
                    return Some(Err(dropped("mock upstream shut down mid-stream")));
                }
            }
        }
        let frame = self.frames.next()?;
        if frame.content {
            self.content_sent += 1;
        }
        Some(Ok(frame.bytes))
    }
}

/// A chunked body sending `frames` with `pacing`; a dropped connection is a body error, which
/// makes the server abort the connection without the terminating chunk.
pub fn paced_body(frames: Vec<Frame>, pacing: Pacing, shutdown: watch::Receiver<bool>) -> Body {
    if pacing.is_immediate() {
        return Body::from_stream(stream::iter(
            frames
                .into_iter()
                .map(|frame| Ok::<_, Infallible>(frame.bytes)),
        ));
    }
    let sender = Sender {
        frames: frames.into_iter(),
        pacing,
        content_sent: 0,
        shutdown,
        failed: false,
    };
    Body::from_stream(stream::unfold(sender, |mut sender| async move {
        let item = sender.next().await?;
        Some((item, sender))
    }))
}

/// A body that ends in a dropped connection as soon as it is polled: used to close the
/// connection of a hanging request at shutdown.
pub fn aborted_body() -> Body {
    Body::from_stream(stream::once(async {
        Err::<Bytes, io::Error>(dropped("mock upstream shut down"))
    }))
}
