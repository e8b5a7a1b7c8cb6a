//! A user: member of one organization.
//!
//! Password hashes are computed by the caller (argon2id is deliberately slow and salted with
//! randomness, which `decide` must not do) and stored in the event; audit reads redact them.

use serde::{Deserialize, Serialize};
use trellis_kernel::{Aggregate, DomainEvent};
use uuid::Uuid;

use crate::values::{DisplayName, Email, Role};

/// Commands.
#[derive(Debug, Clone)]
pub enum UserCommand {
    /// Create the user (at sign-up, or by an admin).
    Register {
        /// Their organization.
        organization_id: Uuid,
        /// Login address (already claimed).
        email: Email,
        /// How they are shown.
        display_name: DisplayName,
        /// argon2id PHC string.
        password_hash: String,
        /// At least one role.
        roles: Vec<Role>,
        /// Their manager, already checked to be an active user of the same organization.
        manager_id: Option<Uuid>,
    },
    /// Replace the roles.
    AssignRoles {
        /// At least one role.
        roles: Vec<Role>,
    },
    /// Set or clear the manager (checked by the caller as for `Register`).
    AssignManager {
        /// The manager, or none.
        manager_id: Option<Uuid>,
    },
    /// Replace the password hash.
    ChangePassword {
        /// argon2id PHC string.
        password_hash: String,
    },
    /// Deactivate: no more logins, sessions end.
    Deactivate,
    /// Forget the user (GDPR erasure, ADR 0017): their data key is destroyed, so every
    /// personal field of theirs reads as erased; no more logins. Idempotent.
    Forget,
}

/// Events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, strum::VariantNames)]
#[serde(tag = "event_type", content = "payload")]
pub enum UserEvent {
    /// The user exists.
    UserRegistered {
        /// Their organization.
        organization_id: Uuid,
        /// Login address.
        email: String,
        /// Display name.
        display_name: String,
        /// argon2id PHC string (redacted in audits).
        password_hash: String,
        /// Roles.
        roles: Vec<Role>,
        /// Manager.
        manager_id: Option<Uuid>,
    },
    /// Roles replaced.
    RolesAssigned {
        /// The new roles.
        roles: Vec<Role>,
    },
    /// Manager set or cleared.
    ManagerAssigned {
        /// The manager.
        manager_id: Option<Uuid>,
    },
    /// Password replaced.
    PasswordChanged {
        /// argon2id PHC string (redacted in audits).
        password_hash: String,
    },
    /// Deactivated.
    UserDeactivated {},
    /// The user's personal data was erased (their data key destroyed). Carries none itself:
    /// the subject is the stream's user. Read models blank what they hold of them.
    SubjectForgotten {},
}

impl DomainEvent for UserEvent {
    fn event_type(&self) -> &'static str {
        match self {
            Self::UserRegistered { .. } => "UserRegistered",
            Self::RolesAssigned { .. } => "RolesAssigned",
            Self::ManagerAssigned { .. } => "ManagerAssigned",
            Self::PasswordChanged { .. } => "PasswordChanged",
            Self::UserDeactivated {} => "UserDeactivated",
            Self::SubjectForgotten {} => "SubjectForgotten",
        }
    }
}

/// State.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct UserState {
    /// Registered.
    pub exists: bool,
    /// Not deactivated.
    pub active: bool,
    /// Organization.
    pub organization_id: Option<Uuid>,
    /// Roles, sorted.
    pub roles: Vec<Role>,
    /// Manager.
    pub manager_id: Option<Uuid>,
    /// Erased (and so inactive for good).
    pub forgotten: bool,
}

/// Rules; the edge maps each as noted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserError {
    /// Register on an existing user (409).
    #[error("the user already exists")]
    AlreadyRegistered,
    /// Any command on a user that was never registered (404).
    #[error("no such user")]
    NotFound,
    /// A change to a deactivated user (409).
    #[error("the user is deactivated")]
    Deactivated,
    /// An empty role list (422, field `roles`).
    #[error("a user needs at least one role")]
    NoRoles,
}

/// The aggregate.
pub struct User;

impl User {
    /// Stream kind.
    pub const KIND_NAME: &'static str = "user";
}

fn normalised(roles: &[Role]) -> Result<Vec<Role>, UserError> {
    let mut roles = roles.to_vec();
    roles.sort();
    roles.dedup();
    if roles.is_empty() {
        return Err(UserError::NoRoles);
    }
    Ok(roles)
}

impl Aggregate for User {
    const KIND: &'static str = Self::KIND_NAME;
    type State = UserState;
    type Command = UserCommand;
    type Event = UserEvent;
    type Error = UserError;

    fn decide(state: &UserState, command: &UserCommand) -> Result<Vec<UserEvent>, UserError> {
        if let UserCommand::Register {
            organization_id,
            email,
            display_name,
            password_hash,
            roles,
            manager_id,
        } = command
        {
            if state.exists {
                return Err(UserError::AlreadyRegistered);
            }
            return Ok(vec![UserEvent::UserRegistered {
                organization_id: *organization_id,
                email: email.as_str().to_owned(),
                display_name: display_name.as_str().to_owned(),
                password_hash: password_hash.clone(),
                roles: normalised(roles)?,
                manager_id: *manager_id,
            }]);
        }
        if !state.exists {
            return Err(UserError::NotFound);
        }
        if !state.active {
            return match command {
                UserCommand::Deactivate => Ok(Vec::new()),
                UserCommand::Forget if state.forgotten => Ok(Vec::new()),
                UserCommand::Forget => Ok(vec![UserEvent::SubjectForgotten {}]),
                _ => Err(UserError::Deactivated),
            };
        }
        match command {
            UserCommand::Register { .. } => Err(UserError::AlreadyRegistered),
            UserCommand::AssignRoles { roles } => {
                let roles = normalised(roles)?;
                if roles == state.roles {
                    return Ok(Vec::new());
                }
                Ok(vec![UserEvent::RolesAssigned { roles }])
            }
            UserCommand::AssignManager { manager_id } => {
                if *manager_id == state.manager_id {
                    return Ok(Vec::new());
                }
                Ok(vec![UserEvent::ManagerAssigned {
                    manager_id: *manager_id,
                }])
            }
            UserCommand::ChangePassword { password_hash } => Ok(vec![UserEvent::PasswordChanged {
                password_hash: password_hash.clone(),
            }]),
            UserCommand::Deactivate => Ok(vec![UserEvent::UserDeactivated {}]),
            UserCommand::Forget => Ok(vec![UserEvent::SubjectForgotten {}]),
        }
    }

    fn evolve(state: &mut UserState, event: &UserEvent) {
        match event {
            UserEvent::UserRegistered {
                organization_id,
                roles,
                manager_id,
                ..
            } => {
                state.exists = true;
                state.active = true;
                state.organization_id = Some(*organization_id);
                state.roles.clone_from(roles);
                state.manager_id = *manager_id;
            }
            UserEvent::RolesAssigned { roles } => state.roles.clone_from(roles),
            UserEvent::ManagerAssigned { manager_id } => state.manager_id = *manager_id,
            UserEvent::PasswordChanged { .. } => {}
            UserEvent::UserDeactivated {} => state.active = false,
            UserEvent::SubjectForgotten {} => {
                state.active = false;
                state.forgotten = true;
            }
        }
    }
}
