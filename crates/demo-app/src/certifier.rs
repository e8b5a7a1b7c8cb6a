//! The certifier: a reactive service. When a tally closes it certifies the total by sending
//! a command, whose event lands in the store and flows out again like any other.
//!
//! Idempotent by construction: the command's idempotency key is derived from the triggering
//! event, so a redelivered `TallyClosed` appends nothing new; and certifying twice is a no-op
//! in the aggregate anyway.

use std::sync::Arc;

use async_trait::async_trait;
use trellis_demo::{Tally, TallyCommand};
use trellis_kernel::{CommandContext, CommandHandler, EventStore, RecordedEvent};
use trellis_runtime::{EventHandler, HandlerError};

/// The reaction.
pub struct Certifier<S: ?Sized> {
    commands: CommandHandler<S>,
}

impl<S: EventStore + ?Sized> Certifier<S> {
    /// A certifier appending through `store`.
    pub fn new(store: Arc<S>) -> Self {
        Self {
            commands: CommandHandler::new(store, Arc::new(trellis_demo::upcasters())),
        }
    }
}

#[async_trait]
impl<S: EventStore + ?Sized + 'static> EventHandler for Certifier<S> {
    fn name(&self) -> &str {
        "reaction.certifier"
    }

    fn wants(&self, event_type: &str) -> bool {
        event_type == "TallyClosed"
    }

    async fn handle(&self, events: &[RecordedEvent]) -> Result<(), HandlerError> {
        for event in events {
            let context = CommandContext::reacting_to(event, "certifier")
                .map_err(|e| HandlerError::from_error("idempotency key", e))?;
            self.commands
                .handle::<Tally>(event.stream_id.id(), &TallyCommand::Certify, &context)
                .await
                .map_err(|e| HandlerError::from_error("certify", e))?;
        }
        Ok(())
    }
}
