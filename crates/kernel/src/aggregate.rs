//! The decider shape every aggregate follows.
//!
//! `decide` is pure and synchronous: anything external (a lookup, the clock, a generated id)
//! is fetched by the caller and put in the command. `evolve` folds one event into the state.
//! Keeping both pure is what makes given/when/then tests and audit replays trivial.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// A domain event enum that knows its stored name and schema version.
///
/// The default methods assume the enum is adjacently tagged as
/// `#[serde(tag = "event_type", content = "payload")]` with variants named like the event
/// types, which keeps the stored payload free of Rust-specific wrapping. Deriving
/// `strum::VariantNames` gives the list of event types (`Self::VARIANTS`) that context
/// modules declare, so no list of event-type strings is kept by hand.
pub trait DomainEvent: Sized + Serialize + DeserializeOwned + strum::VariantNames {
    /// Past-tense event type, e.g. `IdpCreated`.
    fn event_type(&self) -> &'static str;

    /// Current schema version of this variant's payload. Bump it (and add an upcaster and a
    /// schema file) whenever the payload changes incompatibly.
    fn schema_version(&self) -> u32 {
        1
    }

    /// The payload as stored.
    ///
    /// # Errors
    /// When serialization fails (non-string map keys, for instance).
    fn to_payload(&self) -> Result<serde_json::Value, EventDecodeError> {
        let mut tagged = serde_json::to_value(self).map_err(EventDecodeError::Serde)?;
        Ok(tagged
            .get_mut("payload")
            .map(serde_json::Value::take)
            .unwrap_or_else(|| serde_json::json!({})))
    }

    /// Decodes a stored payload already upcast to the current schema version.
    ///
    /// # Errors
    /// [`EventDecodeError`] for unknown types or payloads of the wrong shape.
    fn from_payload(
        event_type: &str,
        payload: serde_json::Value,
    ) -> Result<Self, EventDecodeError> {
        serde_json::from_value(serde_json::json!({"event_type": event_type, "payload": payload}))
            .map_err(EventDecodeError::Serde)
    }
}

/// A stored event could not be turned into (or from) a domain event.
#[derive(Debug, thiserror::Error)]
pub enum EventDecodeError {
    /// The JSON did not match the Rust type.
    #[error("event payload does not match its type")]
    Serde(#[source] serde_json::Error),
}

/// An event-sourced aggregate: its state, commands, events and the two pure functions.
pub trait Aggregate: Send + Sync + 'static {
    /// Stream prefix, e.g. `idp` for streams `idp-<uuid>`.
    const KIND: &'static str;
    /// State folded from events; `Default` is the state of a stream that does not exist.
    type State: Default + Send + Sync;
    /// What callers ask for.
    type Command: Send + Sync;
    /// What happened.
    type Event: DomainEvent + Send + Sync;
    /// Business-rule violations only; never infrastructure.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Decides which events a command causes in a given state, or why it is refused.
    ///
    /// # Errors
    /// The domain rule the command breaks.
    fn decide(
        state: &Self::State,
        command: &Self::Command,
    ) -> Result<Vec<Self::Event>, Self::Error>;

    /// Applies one event to the state.
    fn evolve(state: &mut Self::State, event: &Self::Event);

    /// Folds a sequence of events from the empty state.
    fn fold<'a>(events: impl IntoIterator<Item = &'a Self::Event>) -> Self::State
    where
        Self::Event: 'a,
    {
        let mut state = Self::State::default();
        for event in events {
            Self::evolve(&mut state, event);
        }
        state
    }
}
