//! E-mail claims: one stream per organization and normalised address, so uniqueness within
//! an organization is an optimistic append (ADR 0009: addresses are unique per organization,
//! so no sign-up can squat or probe another organization's addresses).
//!
//! Registering a user first claims the address, then writes the user's stream. If the process
//! dies between the two, the claim names a user whose stream does not exist; a later
//! registration takes the claim over with [`EmailClaimCommand::TakeOver`] once the claim is
//! old enough that its registration cannot still be running (the caller checks both).
//! Deactivating a user releases the address ([`EmailClaimCommand::Release`]).

use serde::{Deserialize, Serialize};
use trellis_kernel::{Aggregate, DomainEvent, StreamId};
use uuid::Uuid;

use crate::values::Email;

/// Namespace for deriving claim stream ids from organization and address (UUIDv5). (The
/// first scheme, `…656d_6c31`, keyed by address alone; its streams are history only.)
const NAMESPACE: Uuid = Uuid::from_u128(0x6d6f_6e2d_7472_656c_6c69_732d_656d_6c32);

/// The claim stream of an address within an organization.
pub fn stream_id(organization_id: Uuid, email: &Email) -> StreamId {
    let mut name = organization_id.as_bytes().to_vec();
    name.extend_from_slice(email.as_str().as_bytes());
    let id = Uuid::new_v5(&NAMESPACE, &name);
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
    /// Free the address (its holder was deactivated). A no-op unless `user_id` holds it.
    Release {
        /// The holder being deactivated.
        user_id: Uuid,
    },
}

/// Events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, strum::VariantNames)]
#[serde(tag = "event_type", content = "payload")]
pub enum EmailClaimEvent {
    /// The address now belongs to `user_id`.
    EmailClaimed {
        /// The holder.
        user_id: Uuid,
    },
    /// The address is free again (its holder was deactivated).
    EmailReleased {
        /// The former holder.
        user_id: Uuid,
    },
}

impl DomainEvent for EmailClaimEvent {
    fn event_type(&self) -> &'static str {
        match self {
            Self::EmailClaimed { .. } => "EmailClaimed",
            Self::EmailReleased { .. } => "EmailReleased",
        }
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
            (EmailClaimCommand::Release { user_id }, Some(holder)) if holder == *user_id => {
                Ok(vec![EmailClaimEvent::EmailReleased { user_id: *user_id }])
            }
            (EmailClaimCommand::Release { .. }, _) => Ok(Vec::new()),
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
            EmailClaimEvent::EmailReleased { .. } => state.holder = None,
        }
    }
}
