//! Who acts: the signed-in user as every context's use cases see them.

use trellis_kernel::Metadata;
use uuid::Uuid;

use crate::Role;

/// The user a use case runs for, and the metadata its events carry.
#[derive(Debug, Clone)]
pub struct Actor {
    /// User id.
    pub user_id: Uuid,
    /// Their organization: everything a use case reads or writes is scoped by it.
    pub organization_id: Uuid,
    /// Current roles.
    pub roles: Vec<Role>,
    /// Their manager.
    pub manager_id: Option<Uuid>,
    /// Correlation, actor and tenant of the events the use case appends.
    pub metadata: Metadata,
}

impl Actor {
    /// Whether the actor holds `role`.
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }
}
