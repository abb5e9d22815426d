//! A server-sent-events decoder that never assumes a network chunk is one event: bytes go in as
//! they arrive, whole events come out.
//!
//! It follows the parts of the HTML living standard's event-stream format that LLM providers
//! use: `event:` and `data:` fields (several `data:` lines join with `\n`), comments starting with
//! `:`, line ends `\n` or `\r\n`, and dispatch on a blank line. `id:` and `retry:` are ignored.

/// One dispatched event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field, if any.
    pub event: Option<String>,
    pub data: String,
}

/// Incremental decoder; feed it with [`SseDecoder::push`].
#[derive(Debug, Default)]
pub struct SseDecoder {
    pending: Vec<u8>,
    event: Option<String>,
    data: String,
    has_data: bool,
}

impl SseDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds bytes and returns the events they complete.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<SseEvent> {
        let mut events = Vec::new();
        self.pending.extend_from_slice(bytes);
        let mut consumed = 0;
        while let Some(offset) = self.pending[consumed..]
            .iter()
            .position(|&byte| byte == b'\n')
        {
            let end = consumed + offset;
            let line_bytes = &self.pending[consumed..end];
            let line_bytes = line_bytes.strip_suffix(b"\r").unwrap_or(line_bytes);
            let line = String::from_utf8_lossy(line_bytes).into_owned();
            consumed = end + 1;
            if let Some(event) = self.line(&line) {
                events.push(event);
            }
        }
        self.pending.drain(..consumed);
        events
    }

    /// Bytes received after the last complete line; non-empty at the end of a stream means it
    /// was cut short.
    pub fn pending_bytes(&self) -> usize {
        self.pending.len()
    }

    fn line(&mut self, line: &str) -> Option<SseEvent> {
        if line.is_empty() {
            let event = self.event.take();
            if !self.has_data {
                return None;
            }
            self.has_data = false;
            return Some(SseEvent {
                event,
                data: std::mem::take(&mut self.data),
            });
        }
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => self.event = Some(value.to_owned()),
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            _ => {}
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRANSCRIPT: &str = "event: message_start\ndata: {\"a\":\"é\"}\n\n: keep-alive\n\ndata: one\r\ndata: two\r\n\r\nevent: ping\ndata: {}\n\ndata: [DONE]\n\n";

    fn expected() -> Vec<SseEvent> {
        vec![
            SseEvent {
                event: Some("message_start".into()),
                data: "{\"a\":\"é\"}".into(),
            },
            SseEvent {
                event: None,
                data: "one\ntwo".into(),
            },
            SseEvent {
                event: Some("ping".into()),
                data: "{}".into(),
            },
            SseEvent {
                event: None,
                data: "[DONE]".into(),
            },
        ]
    }

    #[test]
    fn every_two_way_and_three_way_split_decodes_the_same() {
        let bytes = TRANSCRIPT.as_bytes();
        for first in 0..=bytes.len() {
            for second in first..=bytes.len() {
                let mut decoder = SseDecoder::new();
                let mut events = decoder.push(&bytes[..first]);
                events.extend(decoder.push(&bytes[first..second]));
                events.extend(decoder.push(&bytes[second..]));
                assert_eq!(events, expected(), "split at {first} and {second}");
                assert_eq!(decoder.pending_bytes(), 0);
            }
        }
    }

    #[test]
    fn byte_by_byte_decodes_the_same() {
        let mut decoder = SseDecoder::new();
        let events: Vec<_> = TRANSCRIPT
            .as_bytes()
            .iter()
            .flat_map(|byte| decoder.push(std::slice::from_ref(byte)))
            .collect();
        assert_eq!(events, expected());
    }
}
