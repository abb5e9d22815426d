//! Server-sent events framing: bytes in, whole events out, whatever the chunking.
//!
//! Follows the WHATWG event-stream rules that matter here: lines end with `\n`, `\r\n` or `\r`
//! (even when a chunk boundary falls between `\r` and `\n`), `data:` lines of one event are joined
//! with `\n`, a single space after the colon is removed, lines starting with `:` are comments, and
//! a blank line dispatches the event. `id:` and `retry:` are ignored: the gateway never reconnects.

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SseEvent {
    /// The `event:` field, if any.
    pub event: Option<String>,
    pub data: String,
}

/// Largest amount of undelimited input held before giving up; a real event is far smaller.
pub const MAX_BUFFERED_BYTES: usize = 16 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an upstream server-sent event exceeded {MAX_BUFFERED_BYTES} bytes")]
pub struct SseOverflow;

#[derive(Debug, Default)]
pub struct SseDecoder {
    buffer: Vec<u8>,
    /// The previous chunk ended with `\r`: a leading `\n` in the next one belongs to it.
    skip_leading_newline: bool,
    event: Option<String>,
    data: String,
    has_data: bool,
}

impl SseDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds bytes and returns every event they complete.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<SseEvent>, SseOverflow> {
        let mut events = Vec::new();
        let mut bytes = bytes;
        if self.skip_leading_newline && !bytes.is_empty() {
            if bytes[0] == b'\n' {
                bytes = &bytes[1..];
            }
            self.skip_leading_newline = false;
        }
        let mut start = 0;
        let mut position = 0;
        while position < bytes.len() {
            let byte = bytes[position];
            if byte == b'\n' || byte == b'\r' {
                let line_end = position;
                if byte == b'\r' {
                    if position + 1 < bytes.len() {
                        if bytes[position + 1] == b'\n' {
                            position += 1;
                        }
                    } else {
                        self.skip_leading_newline = true;
                    }
                }
                if self.buffer.is_empty() {
                    self.process_line(&bytes[start..line_end], &mut events);
                } else {
                    let mut line = std::mem::take(&mut self.buffer);
                    line.extend_from_slice(&bytes[start..line_end]);
                    self.process_line(&line, &mut events);
                }
                start = position + 1;
            }
            position += 1;
        }
        if start < bytes.len() {
            self.buffer.extend_from_slice(&bytes[start..]);
            if self.buffer.len() + self.data.len() > MAX_BUFFERED_BYTES {
                return Err(SseOverflow);
            }
        }
        if self.data.len() > MAX_BUFFERED_BYTES {
            return Err(SseOverflow);
        }
        Ok(events)
    }

    /// Ends the stream: a last event without its blank line is still dispatched, since some
    /// upstreams close right after their final `data:` line.
    pub fn finish(&mut self) -> Vec<SseEvent> {
        let mut events = Vec::new();
        if !self.buffer.is_empty() {
            let line = std::mem::take(&mut self.buffer);
            self.process_line(&line, &mut events);
        }
        self.process_line(b"", &mut events);
        self.skip_leading_newline = false;
        events
    }

    fn process_line(&mut self, line: &[u8], events: &mut Vec<SseEvent>) {
        if line.is_empty() {
            if self.has_data || self.event.is_some() {
                events.push(SseEvent {
                    event: self.event.take(),
                    data: std::mem::take(&mut self.data),
                });
            }
            self.has_data = false;
            self.event = None;
            self.data.clear();
            return;
        }
        if line[0] == b':' {
            return;
        }
        let (name, value) = match line.iter().position(|&byte| byte == b':') {
            Some(colon) => {
                let value = &line[colon + 1..];
                let value = value.strip_prefix(b" ").unwrap_or(value);
                (&line[..colon], value)
            }
            None => (line, &b""[..]),
        };
        match name {
            b"data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(&String::from_utf8_lossy(value));
                self.has_data = true;
            }
            b"event" => self.event = Some(String::from_utf8_lossy(value).into_owned()),
            _ => {}
        }
    }
}

/// Appends one event in canonical framing.
pub fn write_event(out: &mut Vec<u8>, event: Option<&str>, data: &str) {
    if let Some(event) = event {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(event.as_bytes());
        out.push(b'\n');
    }
    for line in data.split('\n') {
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
    }
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(input: &[u8]) -> Vec<SseEvent> {
        let mut decoder = SseDecoder::new();
        let mut events = decoder.push(input).unwrap();
        events.extend(decoder.finish());
        events
    }

    #[test]
    fn joins_multi_line_data_and_skips_comments() {
        let events = all(b": ping\r\nevent: x\r\ndata: a\r\ndata:b\r\n\r\ndata: [DONE]\n\n");
        assert_eq!(
            events,
            vec![
                SseEvent {
                    event: Some("x".into()),
                    data: "a\nb".into()
                },
                SseEvent {
                    event: None,
                    data: "[DONE]".into()
                },
            ]
        );
    }

    #[test]
    fn carriage_return_split_across_chunks() {
        let mut decoder = SseDecoder::new();
        let mut events = decoder.push(b"data: a\r").unwrap();
        events.extend(decoder.push(b"\n\r").unwrap());
        events.extend(decoder.push(b"\ndata: b\r\r").unwrap());
        assert_eq!(events.len(), 2);
        assert_eq!(events[1].data, "b");
    }

    #[test]
    fn unterminated_last_event_is_dispatched_on_finish() {
        assert_eq!(all(b"data: {}").len(), 1);
    }
}
