//! Identifiers. Every id AxonGate generates is a UUIDv7: time-ordered, so ids sort by creation
//! and index well, and unique without coordination between nodes.

use uuid::Uuid;

/// A new event id (UUIDv7). Also used as `Nats-Msg-Id`, so a retried publish is stored once.
#[must_use]
pub fn new_event_id() -> Uuid {
    Uuid::now_v7()
}

/// A new entity id as text, e.g. for a provider, key, model, token or user.
#[must_use]
pub fn new_entity_id() -> String {
    Uuid::now_v7().simple().to_string()
}

/// Whether `id` is acceptable as an entity id: it becomes the last token of a NATS subject, so it
/// must not contain subject separators, wildcards or whitespace.
#[must_use]
pub fn is_valid_entity_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_valid_and_ordered() {
        let first = new_entity_id();
        let second = new_entity_id();
        assert!(is_valid_entity_id(&first));
        assert!(first < second, "UUIDv7 ids sort by creation time");
    }

    #[test]
    fn subject_breaking_ids_are_rejected() {
        for bad in ["", "a.b", "a*", "a>", "a b", &"x".repeat(129)] {
            assert!(!is_valid_entity_id(bad), "{bad:?} must be rejected");
        }
    }
}
