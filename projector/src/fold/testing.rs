//! given/when/then for the folds, after serverlesstechnology/cqrs's `TestFramework`: given the
//! config events already folded, when one more arrives, then the decision it yields. The
//! fixture keeps the entities' states the way the writer does, so "given" means "the view
//! these events left".

use std::collections::BTreeMap;

use serde_json::Value;
use shared::config::{ConfigEvent, Deleted, Setting};
use shared::{Actor, Envelope};

use super::{Decision, Effect, config};

pub(crate) fn admin() -> Actor {
    Actor {
        user_id: "u1".into(),
        username: "admin".into(),
    }
}

pub(crate) fn setting_put(key: &str, value: Value) -> Envelope<ConfigEvent> {
    Envelope::by_actor(
        ConfigEvent::SettingPut(Setting {
            key: key.into(),
            value,
        }),
        admin(),
    )
}

pub(crate) fn setting_deleted(key: &str) -> Envelope<ConfigEvent> {
    Envelope::by_actor(
        ConfigEvent::SettingDeleted(Deleted { id: key.into() }),
        admin(),
    )
}

/// The config views as the given events left them; the events take sequences 1, 2, …
pub(crate) struct ConfigGiven {
    entities: BTreeMap<(&'static str, String), Value>,
    last_sequence: u64,
}

/// Folds `events` into an empty view.
pub(crate) fn given_config(events: impl IntoIterator<Item = Envelope<ConfigEvent>>) -> ConfigGiven {
    let mut given = ConfigGiven {
        entities: BTreeMap::new(),
        last_sequence: 0,
    };
    for event in events {
        let decision = given.decide(&event);
        let Decision::Apply(effects) = decision else {
            panic!("a given event was dead-lettered: {decision:?}");
        };
        for effect in effects {
            match effect {
                Effect::PutEntity {
                    entity, id, data, ..
                } => {
                    given.entities.insert((entity.as_str(), id), data);
                }
                Effect::DeleteEntity { entity, id } => {
                    given.entities.remove(&(entity.as_str(), id));
                }
                _ => {}
            }
        }
    }
    given
}

impl ConfigGiven {
    fn decide(&mut self, event: &Envelope<ConfigEvent>) -> Decision {
        self.last_sequence += 1;
        let key = (
            event.body.entity().as_str(),
            event.body.entity_id().to_owned(),
        );
        config::decide(event, self.last_sequence, self.entities.get(&key).cloned())
    }

    /// Folds one more event, at the next sequence.
    pub(crate) fn when(mut self, event: &Envelope<ConfigEvent>) -> Then {
        Then(self.decide(event))
    }
}

/// What the event under test decided.
pub(crate) struct Then(Decision);

impl Then {
    pub(crate) fn then_expect(self, expected: Decision) {
        assert_eq!(self.0, expected);
    }

    pub(crate) fn decision(self) -> Decision {
        self.0
    }
}
