//! An organization: the tenant everything else belongs to.

use serde::{Deserialize, Serialize};
use trellis_kernel::{Aggregate, DomainEvent};
use uuid::Uuid;

use crate::values::OrganizationName;

/// Commands.
#[derive(Debug, Clone)]
pub enum OrganizationCommand {
    /// Sign-up: create the organization; its first admin is created beside it.
    Create {
        /// Its name.
        name: OrganizationName,
        /// The first admin's user id.
        admin_user_id: Uuid,
    },
}

/// Events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, strum::VariantNames)]
#[serde(tag = "event_type", content = "payload")]
pub enum OrganizationEvent {
    /// The organization exists.
    OrganizationCreated {
        /// Its name.
        name: String,
        /// Its first admin.
        admin_user_id: Uuid,
    },
}

impl DomainEvent for OrganizationEvent {
    fn event_type(&self) -> &'static str {
        match self {
            Self::OrganizationCreated { .. } => "OrganizationCreated",
        }
    }
}

/// State.
#[derive(Debug, Default, Clone, Serialize)]
pub struct OrganizationState {
    /// Created.
    pub exists: bool,
    /// Name.
    pub name: String,
}

/// Rules. Each becomes 409 at the edge.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrganizationError {
    /// Create on an existing organization (409).
    #[error("the organization already exists")]
    AlreadyExists,
}

/// The aggregate.
pub struct Organization;

impl Organization {
    /// Stream kind.
    pub const KIND_NAME: &'static str = "organization";
}

impl Aggregate for Organization {
    const KIND: &'static str = Self::KIND_NAME;
    type State = OrganizationState;
    type Command = OrganizationCommand;
    type Event = OrganizationEvent;
    type Error = OrganizationError;

    fn decide(
        state: &OrganizationState,
        command: &OrganizationCommand,
    ) -> Result<Vec<OrganizationEvent>, OrganizationError> {
        match command {
            OrganizationCommand::Create {
                name,
                admin_user_id,
            } => {
                if state.exists {
                    return Err(OrganizationError::AlreadyExists);
                }
                Ok(vec![OrganizationEvent::OrganizationCreated {
                    name: name.as_str().to_owned(),
                    admin_user_id: *admin_user_id,
                }])
            }
        }
    }

    fn evolve(state: &mut OrganizationState, event: &OrganizationEvent) {
        match event {
            OrganizationEvent::OrganizationCreated { name, .. } => {
                state.exists = true;
                state.name.clone_from(name);
            }
        }
    }
}
