//! The tamper-evident chain of the config and audit streams.
//!
//! Every event admin-api publishes on `AXONGATE_CONFIG` or `AXONGATE_AUDIT` carries two
//! headers: [`PREV_HEADER`], the link of the event before it in the same stream, and
//! [`LINK_HEADER`], its own link:
//!
//! ```text
//! link = hex(HMAC-SHA256(chain key, "axongate-chain-v1\n" ‖ prev ‖ "\n" ‖ subject ‖ "\n" ‖ body))
//! ```
//!
//! The body is the message's stored bytes, so a rewritten event no longer matches its link,
//! and a removed, inserted or reordered one no longer matches the `prev` of the event after it.
//! Without the key (a secret of admin-api's, never in an event) a reader who can rewrite the
//! stream cannot compute links that verify. Dropping the newest events leaves a shorter chain
//! that is whole; the periodic checkpoint (the head's sequence and link, an
//! [`crate::audit::ChainCheckpoint`] audit event and a log line) is what catches that, compared
//! with the stream or with an external copy. The stream sequence is not in the link, so a
//! chain survives a copy of its stream to a new one.
//!
//! A stream that held events before the chain was introduced starts its chain at the first
//! event with a link; that event's `prev` is [`anchor`] of the last event without one (or
//! [`GENESIS`] on an empty stream). [`Verifier`] walks a stream in order and names the first
//! broken link.

use std::fmt;

use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The header with the link of the previous event of the stream.
pub const PREV_HEADER: &str = "Axongate-Chain-Prev";
/// The header with this event's own link.
pub const LINK_HEADER: &str = "Axongate-Chain-Link";
/// The `prev` of the first event of an empty stream.
pub const GENESIS: &str = "genesis";

const DOMAIN: &[u8] = b"axongate-chain-v1\n";
const KEY_LABEL: &[u8] = b"axongate audit chain key v1";

/// The chain's HMAC key. No `Debug` of the bytes.
#[derive(Clone)]
pub struct ChainKey([u8; 32]);

impl fmt::Debug for ChainKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ChainKey([redacted])")
    }
}

impl ChainKey {
    /// The key derived from a deployment secret (the configured chain key, or the token
    /// pepper when none is configured), with a label of its own so it is never the secret
    /// itself.
    #[must_use]
    pub fn derive(secret: &[u8]) -> Self {
        let mut hash = Sha256::new();
        hash.update(KEY_LABEL);
        hash.update([0]);
        hash.update(secret);
        Self(hash.finalize().into())
    }

    /// HMAC pads a key to the hash's block (64 bytes) with zeros: the same key, typed.
    fn mac(&self) -> Hmac<Sha256> {
        let mut block = [0u8; 64];
        block[..32].copy_from_slice(&self.0);
        <Hmac<Sha256> as KeyInit>::new((&block).into())
    }

    fn keyed(&self, prev: &str, subject: &str, body: &[u8]) -> Hmac<Sha256> {
        let mut mac = self.mac();
        mac.update(DOMAIN);
        mac.update(prev.as_bytes());
        mac.update(b"\n");
        mac.update(subject.as_bytes());
        mac.update(b"\n");
        mac.update(body);
        mac
    }

    /// The link of an event on `subject` with stored bytes `body` after an event whose link
    /// is `prev`.
    #[must_use]
    pub fn link(&self, prev: &str, subject: &str, body: &[u8]) -> String {
        hex::encode(self.keyed(prev, subject, body).finalize().into_bytes())
    }

    /// Whether `link` is the link of this event (constant time).
    #[must_use]
    pub fn verifies(&self, link: &str, prev: &str, subject: &str, body: &[u8]) -> bool {
        hex::decode(link)
            .is_ok_and(|given| self.keyed(prev, subject, body).verify_slice(&given).is_ok())
    }
}

/// What the first chained event names as its predecessor when the stream already held
/// unchained events: the SHA-256 of the last one's subject and body.
#[must_use]
pub fn anchor(subject: &str, body: &[u8]) -> String {
    let mut hash = Sha256::new();
    hash.update(subject.as_bytes());
    hash.update(b"\n");
    hash.update(body);
    format!("unchained:{}", hex::encode(hash.finalize()))
}

/// The predecessor value for the next event, given the stream's last event (`None`: empty).
#[must_use]
pub fn next_prev(last: Option<StoredLink<'_>>) -> String {
    match last {
        None => GENESIS.to_owned(),
        Some(StoredLink {
            link: Some(link), ..
        }) => link.to_owned(),
        Some(StoredLink { subject, body, .. }) => anchor(subject, body),
    }
}

/// One stored event as the chain sees it.
#[derive(Debug, Clone, Copy)]
pub struct StoredLink<'a> {
    pub subject: &'a str,
    pub body: &'a [u8],
    pub prev: Option<&'a str>,
    pub link: Option<&'a str>,
}

/// Where the chain first breaks, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokenLink {
    /// The stream sequence of the first event that does not verify.
    pub seq: u64,
    /// `rewritten` (the event's bytes or link do not match), `missing_predecessor` (its
    /// predecessor is not the event before it: removed, inserted or reordered), `unchained`
    /// (no link after the chain began), `checkpoint_mismatch` (a checkpoint's head is not in
    /// the stream) or `truncated` (the same, and its sequence is past the stream's end).
    pub reason: String,
    /// The same in words.
    pub detail: String,
}

/// A checkpoint to hold a stream against: its head at `seq` was `link`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub seq: u64,
    pub link: String,
}

/// The result of walking one stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainReport {
    pub stream: String,
    /// Events read.
    pub events: u64,
    /// Events before the first chained one (from before the chain existed).
    pub unchained_before: u64,
    /// The stream sequence of the first chained event.
    pub chained_from: Option<u64>,
    /// The last event read and its link (the head an external copy is compared with).
    pub head_seq: u64,
    pub head_link: Option<String>,
    /// Sequences missing from the stream (deleted messages) as `from..=to` pairs.
    pub gaps: Vec<(u64, u64)>,
    /// Checkpoints compared with the stream.
    pub checkpoints_checked: u64,
    pub first_broken: Option<BrokenLink>,
}

impl ChainReport {
    #[must_use]
    pub fn ok(&self) -> bool {
        self.first_broken.is_none()
    }
}

/// Walks a stream's events in order of sequence and keeps the first broken link.
pub struct Verifier<'k> {
    key: &'k ChainKey,
    report: ChainReport,
    /// The value the next event's `prev` must have.
    expected_prev: String,
    last_seq: u64,
    chain_started: bool,
    /// Checkpoints not yet met in the walk: link → the sequence it was recorded at. They are
    /// matched by link, not by sequence, so they hold for a copy of the stream too.
    checkpoints: std::collections::HashMap<String, u64>,
}

impl<'k> Verifier<'k> {
    #[must_use]
    pub fn new(key: &'k ChainKey, stream: &str, checkpoints: Vec<Checkpoint>) -> Self {
        Self {
            key,
            report: ChainReport {
                stream: stream.to_owned(),
                events: 0,
                unchained_before: 0,
                chained_from: None,
                head_seq: 0,
                head_link: None,
                gaps: Vec::new(),
                checkpoints_checked: 0,
                first_broken: None,
            },
            expected_prev: GENESIS.to_owned(),
            last_seq: 0,
            chain_started: false,
            checkpoints: checkpoints
                .into_iter()
                .map(|checkpoint| (checkpoint.link, checkpoint.seq))
                .collect(),
        }
    }

    fn broken(&mut self, seq: u64, reason: &str, detail: String) {
        if self.report.first_broken.is_none() {
            self.report.first_broken = Some(BrokenLink {
                seq,
                reason: reason.to_owned(),
                detail,
            });
        }
    }

    /// Takes the next stored event (sequences ascending).
    pub fn push(&mut self, seq: u64, event: StoredLink<'_>) {
        self.report.events += 1;
        if seq > self.last_seq + 1 {
            self.report.gaps.push((self.last_seq + 1, seq - 1));
        }
        self.last_seq = seq;
        self.report.head_seq = seq;
        match (event.prev, event.link) {
            (Some(prev), Some(link)) => {
                if !self.chain_started {
                    self.chain_started = true;
                    self.report.chained_from = Some(seq);
                }
                if !self.key.verifies(link, prev, event.subject, event.body) {
                    self.broken(
                        seq,
                        "rewritten",
                        format!(
                            "event {seq} does not match its link: its bytes, subject or link were changed, or it was not written with this key"
                        ),
                    );
                } else if prev != self.expected_prev {
                    self.broken(
                        seq,
                        "missing_predecessor",
                        format!(
                            "event {seq} follows an event that is not the one before it in the stream: an event was removed, inserted or reordered before it"
                        ),
                    );
                }
                self.expected_prev = link.to_owned();
                self.report.head_link = Some(link.to_owned());
            }
            _ if self.chain_started => {
                self.broken(
                    seq,
                    "unchained",
                    format!("event {seq} carries no chain link, after the chain began"),
                );
                self.expected_prev = anchor(event.subject, event.body);
                self.report.head_link = None;
            }
            _ => {
                self.report.unchained_before += 1;
                self.expected_prev = anchor(event.subject, event.body);
            }
        }
        if let Some(link) = event.link
            && self.checkpoints.remove(link).is_some()
        {
            self.report.checkpoints_checked += 1;
        }
    }

    /// The report. A checkpoint whose head never came up in the walk means the stream lost
    /// its newest events (the checkpoint's sequence is past the end) or had them replaced.
    #[must_use]
    pub fn finish(mut self) -> ChainReport {
        let mut missed: Vec<(u64, String)> = self
            .checkpoints
            .drain()
            .map(|(link, seq)| (seq, link))
            .collect();
        missed.sort_unstable();
        for (seq, _) in missed {
            self.report.checkpoints_checked += 1;
            if seq > self.last_seq {
                self.broken(
                    seq,
                    "truncated",
                    format!(
                        "a checkpoint names event {seq} as the head, and the stream ends at {}: its newest events were removed",
                        self.last_seq
                    ),
                );
            } else {
                self.broken(
                    seq,
                    "checkpoint_mismatch",
                    format!(
                        "the head a checkpoint recorded at event {seq} is not in the stream: the events up to it were replaced"
                    ),
                );
            }
        }
        self.report
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Event {
        subject: String,
        body: Vec<u8>,
        prev: Option<String>,
        link: Option<String>,
    }

    fn chain(key: &ChainKey, unchained: usize, chained: usize) -> Vec<Event> {
        let mut events: Vec<Event> = Vec::new();
        for i in 0..unchained + chained {
            let subject = format!("axongate.audit.kind{}", i % 3);
            let body = format!("{{\"n\":{i}}}").into_bytes();
            if i < unchained {
                events.push(Event {
                    subject,
                    body,
                    prev: None,
                    link: None,
                });
                continue;
            }
            let prev = next_prev(events.last().map(|event| StoredLink {
                subject: &event.subject,
                body: &event.body,
                prev: event.prev.as_deref(),
                link: event.link.as_deref(),
            }));
            let link = key.link(&prev, &subject, &body);
            events.push(Event {
                subject,
                body,
                prev: Some(prev),
                link: Some(link),
            });
        }
        events
    }

    fn verify(
        key: &ChainKey,
        events: &[(u64, &Event)],
        checkpoints: Vec<Checkpoint>,
    ) -> ChainReport {
        let mut verifier = Verifier::new(key, "S", checkpoints);
        for (seq, event) in events {
            verifier.push(
                *seq,
                StoredLink {
                    subject: &event.subject,
                    body: &event.body,
                    prev: event.prev.as_deref(),
                    link: event.link.as_deref(),
                },
            );
        }
        verifier.finish()
    }

    fn numbered(events: &[Event]) -> Vec<(u64, &Event)> {
        events
            .iter()
            .enumerate()
            .map(|(i, e)| (i as u64 + 1, e))
            .collect()
    }

    fn key() -> ChainKey {
        ChainKey::derive(b"a deployment secret of at least 32 bytes!")
    }

    #[test]
    fn a_whole_chain_verifies_also_after_unchained_history() {
        let key = key();
        for unchained in [0, 2] {
            let events = chain(&key, unchained, 5);
            let report = verify(&key, &numbered(&events), Vec::new());
            assert!(report.ok(), "{report:?}");
            assert_eq!(report.events, 5 + unchained as u64);
            assert_eq!(report.unchained_before, unchained as u64);
            assert_eq!(report.chained_from, Some(unchained as u64 + 1));
            assert_eq!(report.head_link, events.last().unwrap().link);
        }
    }

    #[test]
    fn a_rewritten_event_is_named() {
        let key = key();
        let mut events = chain(&key, 0, 5);
        events[2].body = b"{\"n\":99}".to_vec();
        let report = verify(&key, &numbered(&events), Vec::new());
        let broken = report.first_broken.unwrap();
        assert_eq!((broken.seq, broken.reason.as_str()), (3, "rewritten"));
    }

    #[test]
    fn a_moved_subject_or_a_link_made_with_another_key_is_a_rewrite() {
        let key = key();
        let mut events = chain(&key, 0, 3);
        events[1].subject = "axongate.audit.other".into();
        let broken = verify(&key, &numbered(&events), Vec::new())
            .first_broken
            .unwrap();
        assert_eq!((broken.seq, broken.reason.as_str()), (2, "rewritten"));

        let other = ChainKey::derive(b"somebody else's secret of 32 bytes......");
        let events = chain(&other, 0, 3);
        let broken = verify(&key, &numbered(&events), Vec::new())
            .first_broken
            .unwrap();
        assert_eq!((broken.seq, broken.reason.as_str()), (1, "rewritten"));
    }

    #[test]
    fn a_removed_event_breaks_the_link_after_it_and_leaves_a_gap() {
        let key = key();
        let events = chain(&key, 0, 5);
        let mut stored = numbered(&events);
        stored.remove(2);
        let report = verify(&key, &stored, Vec::new());
        let broken = report.first_broken.clone().unwrap();
        assert_eq!(
            (broken.seq, broken.reason.as_str()),
            (4, "missing_predecessor")
        );
        assert_eq!(report.gaps, vec![(3, 3)]);
    }

    #[test]
    fn reordered_events_are_named_at_the_first_out_of_place() {
        let key = key();
        let events = chain(&key, 0, 5);
        // Restored with events 2 and 3 swapped, under fresh sequences.
        let order = [0usize, 2, 1, 3, 4];
        let stored: Vec<(u64, &Event)> = order
            .iter()
            .enumerate()
            .map(|(i, &index)| (i as u64 + 1, &events[index]))
            .collect();
        let broken = verify(&key, &stored, Vec::new()).first_broken.unwrap();
        assert_eq!(
            (broken.seq, broken.reason.as_str()),
            (2, "missing_predecessor")
        );
    }

    #[test]
    fn an_inserted_forgery_and_an_unchained_event_are_named() {
        let key = key();
        let mut events = chain(&key, 0, 3);
        events.insert(
            2,
            Event {
                subject: "axongate.audit.kind0".into(),
                body: b"{}".to_vec(),
                prev: events[1].link.clone(),
                link: Some("00".repeat(32)),
            },
        );
        let broken = verify(&key, &numbered(&events), Vec::new())
            .first_broken
            .unwrap();
        assert_eq!((broken.seq, broken.reason.as_str()), (3, "rewritten"));

        let mut events = chain(&key, 0, 3);
        events[1].prev = None;
        events[1].link = None;
        let broken = verify(&key, &numbered(&events), Vec::new())
            .first_broken
            .unwrap();
        assert_eq!((broken.seq, broken.reason.as_str()), (2, "unchained"));
    }

    #[test]
    fn checkpoints_catch_a_removed_tail_and_a_replaced_head() {
        let key = key();
        let events = chain(&key, 0, 5);
        let head = |i: usize| Checkpoint {
            seq: i as u64 + 1,
            link: events[i].link.clone().unwrap(),
        };
        let report = verify(&key, &numbered(&events), vec![head(2), head(4)]);
        assert!(report.ok(), "{report:?}");
        assert_eq!(report.checkpoints_checked, 2);

        // A copy of the stream under new sequences keeps its chain and its checkpoints.
        let copied: Vec<(u64, &Event)> = events.iter().zip(101..).map(|(e, s)| (s, e)).collect();
        let report = verify(&key, &copied, vec![head(2), head(4)]);
        assert!(report.ok(), "{report:?}");
        assert_eq!(report.gaps, vec![(1, 100)]);

        // The newest two events removed: the chain is whole, the checkpoint is past its end.
        let stored = numbered(&events[..3]);
        let broken = verify(&key, &stored, vec![head(4)]).first_broken.unwrap();
        assert_eq!((broken.seq, broken.reason.as_str()), (5, "truncated"));

        // The tail replaced by a chain the key holder did not write is caught by the links;
        // one rebuilt from the checkpoint's sequence on with the same key differs from it.
        let rebuilt = chain(&key, 0, 6);
        let mut forged = chain(&key, 0, 4);
        forged[3].body = b"{\"n\":\"other\"}".to_vec();
        forged[3].link = Some(key.link(
            forged[3].prev.as_deref().unwrap(),
            &forged[3].subject,
            &forged[3].body,
        ));
        let broken = verify(&key, &numbered(&forged), vec![head(3)])
            .first_broken
            .unwrap();
        assert_eq!(
            (broken.seq, broken.reason.as_str()),
            (4, "checkpoint_mismatch")
        );
        assert!(verify(&key, &numbered(&rebuilt), vec![head(3)]).ok());
    }

    #[test]
    fn the_key_is_not_the_secret_and_does_not_print() {
        let key = ChainKey::derive(b"secret");
        assert_eq!(format!("{key:?}"), "ChainKey([redacted])");
        assert_ne!(&key.0[..6], b"secret");
        assert!(!key.verifies("not hex", GENESIS, "s", b""));
    }
}
