//! E-mail claims: one stream per normalised address, so uniqueness is an optimistic append.
//!
//! Registering a user first claims the address (`NoStream`), then writes the user's stream.
//! If the process dies between the two, the claim names a user whose stream does not exist;
//! the next registration for that address sees this and takes the claim over with
//! [`EmailClaimCommand::TakeOver`] (the caller checks the holder's stream is empty).

use serde::{Deserialize, Serialize};
use trellis_kernel::{Aggregate, DomainEvent, StreamId};
use uuid::Uuid;

use crate::values::Email;

/// Namespace for deriving claim stream ids from addresses (UUIDv5).
const NAMESPACE: Uuid = Uuid::from_u128(0x6d6f_6e2d_7472_656c_6c69_732d_656d_6c31);

/// The claim stream of an address.
pub fn stream_id(email: &Email) -> StreamId {
    let id = Uuid::new_v5(&NAMESPACE, email.as_str().as_bytes());
    // The kind is a constant valid name, so this cannot fail.
    StreamId::new(EmailClaim::KIND_NAME, id).unwrap_or_else(|_| unreachable!("valid kind"))
}

/// Commands.
#[derive(Debug, Clone)]
pub enum EmailClaimCommand {
    /// Claim a free address for `user_id`.
    Claim {
        /// The claiming user.
        user_id: Uuid,
    },
    /// Take over a claim whose holder was never registered.
    TakeOver {
        /// The new holder.
        user_id: Uuid,
        /// The orphaned holder the caller found missing.
        orphan: Uuid,
    },
}

/// Events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event_type", content = "payload")]
pub enum EmailClaimEvent {
    /// The address now belongs to `user_id`.
    EmailClaimed {
        /// The holder.
        user_id: Uuid,
    },
}

impl DomainEvent for EmailClaimEvent {
    fn event_type(&self) -> &'static str {
        "EmailClaimed"
    }
}

/// State: who holds the address.
#[derive(Debug, Default, Clone, Serialize)]
pub struct EmailClaimState {
    /// The holder, if claimed.
    pub holder: Option<Uuid>,
}

/// Rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmailClaimError {
    /// Someone else holds the address (409).
    #[error("the e-mail address is already registered")]
    Taken {
        /// The current holder.
        holder: Uuid,
    },
}

/// The aggregate.
pub struct EmailClaim;

impl EmailClaim {
    /// Stream kind.
    pub const KIND_NAME: &'static str = "email_claim";
}

impl Aggregate for EmailClaim {
    const KIND: &'static str = Self::KIND_NAME;
    type State = EmailClaimState;
    type Command = EmailClaimCommand;
    type Event = EmailClaimEvent;
    type Error = EmailClaimError;

    fn decide(
        state: &EmailClaimState,
        command: &EmailClaimCommand,
    ) -> Result<Vec<EmailClaimEvent>, EmailClaimError> {
        match (command, state.holder) {
            (EmailClaimCommand::Claim { user_id }, None) => {
                Ok(vec![EmailClaimEvent::EmailClaimed { user_id: *user_id }])
            }
            (EmailClaimCommand::Claim { user_id }, Some(holder)) if holder == *user_id => {
                Ok(Vec::new())
            }
            (EmailClaimCommand::TakeOver { user_id, orphan }, Some(holder))
                if holder == *orphan =>
            {
                Ok(vec![EmailClaimEvent::EmailClaimed { user_id: *user_id }])
            }
            (EmailClaimCommand::TakeOver { user_id, .. }, None) => {
                Ok(vec![EmailClaimEvent::EmailClaimed { user_id: *user_id }])
            }
            (_, Some(holder)) => Err(EmailClaimError::Taken { holder }),
        }
    }

    fn evolve(state: &mut EmailClaimState, event: &EmailClaimEvent) {
        match event {
            EmailClaimEvent::EmailClaimed { user_id } => state.holder = Some(*user_id),
        }
    }
}
