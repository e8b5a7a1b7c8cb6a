//! Command handling: load, decide, append, retry on conflict.
//!
//! The handler is the one place where the pure decider meets the store. It loads a stream
//! (upcasting old events), folds the state, asks the aggregate to decide and appends with the
//! version it loaded. Another writer winning the race is normal under load, so a conflict is
//! retried a bounded number of times against fresh state; only a caller-supplied expected
//! version (an HTTP `If-Match`, say) turns a conflict straight into an error.

use std::sync::Arc;

use crate::aggregate::{Aggregate, DomainEvent, EventDecodeError};
use crate::envelope::{Metadata, NewEvent};
use crate::ids::{EventId, StreamId, StreamVersion};
use crate::store::{
    AppendOptions, AppendResult, EventStore, ExpectedVersion, IdempotencyKey, StoreError,
    read_whole_stream,
};
use crate::upcast::{UpcastError, Upcasters};

/// Per-command information that is not part of the command itself.
#[derive(Debug, Clone, Default)]
pub struct CommandContext {
    /// Copied onto every event the command produces.
    pub metadata: Metadata,
    /// Makes the command apply at most once.
    pub idempotency_key: Option<IdempotencyKey>,
    /// When set, the caller's own expectation: a conflict is returned, not retried.
    pub expected_version: Option<ExpectedVersion>,
}

impl CommandContext {
    /// The context of a reaction's answer to `trigger`: correlation flows from the trigger,
    /// the trigger is the causation, and the idempotency key `<reaction>/<trigger event id>`
    /// makes a redelivered or restarted reaction answer at most once.
    ///
    /// # Errors
    /// [`StoreError::InvalidIdempotencyKey`] for a reaction name that makes no valid key.
    pub fn reacting_to(
        trigger: &crate::envelope::RecordedEvent,
        reaction: &str,
    ) -> Result<Self, StoreError> {
        Ok(Self {
            metadata: Metadata::caused_by(trigger, None),
            idempotency_key: Some(IdempotencyKey::parse(&format!(
                "{reaction}/{}",
                trigger.event_id
            ))?),
            expected_version: None,
        })
    }
}

/// What a handled command did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandOutcome {
    /// The stream the command addressed.
    pub stream_id: StreamId,
    /// Stream version after the command; clients pass it as `min_version`.
    pub version: StreamVersion,
    /// Events appended (empty when the decision was "nothing to do", or for a duplicate).
    pub event_ids: Vec<EventId>,
    /// True when an earlier command with the same idempotency key already applied.
    pub duplicate: bool,
}

impl CommandOutcome {
    fn from_append(result: AppendResult) -> Self {
        Self {
            stream_id: result.stream_id,
            version: result.last_version,
            event_ids: result.event_ids,
            duplicate: result.duplicate,
        }
    }
}

/// Why a command was not applied.
#[derive(Debug, thiserror::Error)]
pub enum HandleError<E: std::error::Error + 'static> {
    /// The aggregate refused the command (a business rule). Becomes 409 or 422 at the edge.
    #[error("command refused")]
    Domain(#[source] E),
    /// The store failed, or the conflict persisted after all retries.
    #[error("event store error")]
    Store(#[from] StoreError),
    /// A stored event could not be upcast.
    #[error("stored event cannot be upcast")]
    Upcast(#[from] UpcastError),
    /// A stored event could not be decoded into the aggregate's event type.
    #[error("stored event cannot be decoded")]
    Decode(#[from] EventDecodeError),
    /// The aggregate's stream kind is not declared by any context module this handler was
    /// given (a registration bug, never silently written).
    #[error("no context module declares the stream kind `{0}`")]
    UnknownKind(&'static str),
}

impl<E: std::error::Error + 'static> From<crate::personal::ReadError> for HandleError<E> {
    fn from(error: crate::personal::ReadError) -> Self {
        match error {
            crate::personal::ReadError::Store(e) => Self::Store(e),
            crate::personal::ReadError::Upcast(e) => Self::Upcast(e),
        }
    }
}

/// Runs commands for any aggregate against one store.
pub struct CommandHandler<S: ?Sized> {
    store: Arc<S>,
    upcasters: Arc<Upcasters>,
    max_attempts: u32,
    /// Stream kinds the context modules declare; `None` accepts any (unit tests).
    kinds: Option<Arc<std::collections::HashSet<&'static str>>>,
}

impl<S: ?Sized> Clone for CommandHandler<S> {
    fn clone(&self) -> Self {
        Self {
            store: Arc::clone(&self.store),
            upcasters: Arc::clone(&self.upcasters),
            max_attempts: self.max_attempts,
            kinds: self.kinds.clone(),
        }
    }
}

impl<S: EventStore + ?Sized> CommandHandler<S> {
    /// Attempts per command before a conflict is reported: enough to ride out bursts on one
    /// hot stream, few enough that a pathological stream fails fast.
    pub const DEFAULT_MAX_ATTEMPTS: u32 = 5;

    /// A handler over `store` with the given upcasters.
    pub fn new(store: Arc<S>, upcasters: Arc<Upcasters>) -> Self {
        Self {
            store,
            upcasters,
            max_attempts: Self::DEFAULT_MAX_ATTEMPTS,
            kinds: None,
        }
    }

    /// Refuses commands to aggregates whose stream kind is not among `kinds` (those the
    /// context modules declare): an undeclared kind would be written but never routed.
    #[must_use]
    pub fn with_kinds(mut self, kinds: impl IntoIterator<Item = &'static str>) -> Self {
        self.kinds = Some(Arc::new(kinds.into_iter().collect()));
        self
    }

    /// The stream of aggregate `A` with entity id `id`: `<A::KIND>-<id>`.
    ///
    /// # Errors
    /// [`HandleError::UnknownKind`] when the kind is not declared (or not a valid name).
    pub fn stream_of<A: Aggregate>(
        &self,
        id: uuid::Uuid,
    ) -> Result<StreamId, HandleError<A::Error>> {
        if let Some(kinds) = &self.kinds
            && !kinds.contains(A::KIND)
        {
            return Err(HandleError::UnknownKind(A::KIND));
        }
        StreamId::new(A::KIND, id).map_err(|_| HandleError::UnknownKind(A::KIND))
    }

    /// Changes how many times a conflicting command is attempted.
    #[must_use]
    pub fn with_max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// The store behind the handler.
    pub fn store(&self) -> &Arc<S> {
        &self.store
    }

    /// Loads an aggregate's state and version, upcasting stored events.
    ///
    /// # Errors
    /// Store, upcast or decode failures.
    pub async fn load<A: Aggregate>(
        &self,
        id: uuid::Uuid,
    ) -> Result<(A::State, StreamVersion), HandleError<A::Error>> {
        let stream = self.stream_of::<A>(id)?;
        self.load_stream::<A>(&stream).await
    }

    async fn load_stream<A: Aggregate>(
        &self,
        stream: &StreamId,
    ) -> Result<(A::State, StreamVersion), HandleError<A::Error>> {
        let recorded = read_whole_stream(&*self.store, stream).await?;
        let version = recorded.last().map_or(0, |e| e.stream_version);
        let mut state = A::State::default();
        for event in crate::personal::prepare_with(&self.upcasters, recorded).await? {
            let event = A::Event::from_payload(&event.event_type, event.payload)?;
            A::evolve(&mut state, &event);
        }
        Ok((state, version))
    }

    /// Handles one command on the stream of aggregate `A` with entity id `id`.
    ///
    /// # Errors
    /// [`HandleError::Domain`] when refused; [`HandleError::Store`] with
    /// [`StoreError::Concurrency`] when the conflict outlasts the retries or the caller's own
    /// expected version does not hold.
    pub async fn handle<A: Aggregate>(
        &self,
        id: uuid::Uuid,
        command: &A::Command,
        context: &CommandContext,
    ) -> Result<CommandOutcome, HandleError<A::Error>> {
        let stream = &self.stream_of::<A>(id)?;
        if let Some(key) = &context.idempotency_key
            && let Some(first) = self.store.idempotent_result(key).await?
        {
            return Ok(CommandOutcome::from_append(first));
        }
        let mut attempt = 0;
        loop {
            attempt += 1;
            let (state, version) = self.load_stream::<A>(stream).await?;
            if let Some(expected) = context.expected_version
                && !expected.admits(version)
            {
                return Err(StoreError::Concurrency {
                    stream_id: stream.clone(),
                    expected,
                    actual: version,
                }
                .into());
            }
            let decided = A::decide(&state, command).map_err(HandleError::Domain)?;
            if decided.is_empty() {
                return Ok(CommandOutcome {
                    stream_id: stream.clone(),
                    version,
                    event_ids: Vec::new(),
                    duplicate: false,
                });
            }
            let events = to_new_events(&decided, &context.metadata)?;
            let options = AppendOptions {
                idempotency_key: context.idempotency_key.clone(),
            };
            let expected = ExpectedVersion::Exact(version);
            match self.store.append(stream, expected, events, options).await {
                Ok(result) => return Ok(CommandOutcome::from_append(result)),
                Err(StoreError::Concurrency { .. })
                    if context.expected_version.is_none() && attempt < self.max_attempts =>
                {
                    tracing::debug!(%stream, attempt, "concurrency conflict, retrying");
                }
                Err(other) => return Err(other.into()),
            }
        }
    }
}

/// Wraps domain events in envelopes sharing one metadata; a command without a correlation id
/// starts a new chain correlated by its first event.
fn to_new_events<E: DomainEvent>(
    decided: &[E],
    metadata: &Metadata,
) -> Result<Vec<NewEvent>, StoreError> {
    let mut metadata = metadata.clone();
    let mut events = Vec::with_capacity(decided.len());
    for event in decided {
        let event_id = EventId::new();
        if metadata.correlation_id.is_none() {
            metadata.correlation_id = Some(event_id);
        }
        let payload = event.to_payload().map_err(|e| StoreError::Corrupt {
            event_id: event_id.to_string(),
            source: Box::new(e),
        })?;
        let new = NewEvent {
            event_id,
            event_type: event.event_type().to_owned(),
            schema_version: event.schema_version(),
            payload,
            metadata: metadata.clone(),
        };
        new.validate()?;
        events.push(new);
    }
    Ok(events)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::envelope::RecordedEvent;
    use crate::ids::{GlobalPosition, TenantId};

    #[test]
    fn a_reaction_answers_under_the_triggers_correlation_with_one_key_per_trigger() {
        let trigger = RecordedEvent {
            event_id: EventId::new(),
            stream_id: StreamId::new("tally", uuid::Uuid::now_v7()).unwrap(),
            stream_version: 1,
            global_position: GlobalPosition(7),
            event_type: "TallyClosed".into(),
            schema_version: 1,
            payload: serde_json::json!({}),
            metadata: Metadata {
                correlation_id: Some(EventId::new()),
                tenant_id: Some(TenantId::new()),
                ..Metadata::default()
            },
            recorded_at: chrono::Utc::now(),
        };
        let context = CommandContext::reacting_to(&trigger, "certifier").unwrap();
        assert_eq!(
            context.metadata.correlation_id,
            trigger.metadata.correlation_id
        );
        assert_eq!(context.metadata.causation_id, Some(trigger.event_id));
        assert_eq!(context.metadata.tenant_id, trigger.metadata.tenant_id);
        assert_eq!(
            context.idempotency_key,
            Some(IdempotencyKey::parse(&format!("certifier/{}", trigger.event_id)).unwrap())
        );
        assert!(context.expected_version.is_none());
        assert!(CommandContext::reacting_to(&trigger, "no spaces allowed").is_err());
    }
}
