//! The development context's application side: its read models (catalog, plans) and their
//! queries, its use cases ([`idps`], the ESCO import), the bundled ESCO occupations, and its
//! HTTP slice ([`http`]). The recommender service is its own crate
//! (`trellis-recommender-service`), so nothing else compiles its model runtime.

pub mod catalog;
mod esco_import;
pub mod http;
pub mod idps;
pub mod occupations;
pub mod plans;

use std::sync::Arc;

use sqlx::PgPool;
use trellis_development::esco::Occupations;
use trellis_runtime::Commands;

pub use esco_import::{ImportError, ImportReport, import_esco_skills};

/// What the development use cases run with.
#[derive(Clone)]
pub struct Development {
    /// Commands and read-your-writes waits.
    pub commands: Commands,
    /// ESCO occupations: the target roles of IDPs.
    pub occupations: Arc<Occupations>,
}

impl Development {
    /// Use cases over `commands`, with `occupations` as target roles.
    pub fn new(commands: Commands, occupations: Arc<Occupations>) -> Self {
        Self {
            commands,
            occupations,
        }
    }

    /// The read models' pool.
    pub fn pool(&self) -> &PgPool {
        self.commands.pool()
    }
}

/// The users a development event concerns beyond its actor (live updates): the employee of a
/// plan's creation and of a review. Decoded through the event enums, so no event type is
/// named here.
pub fn concerned_users(event: &trellis_kernel::RecordedEvent) -> Vec<uuid::Uuid> {
    use trellis_development::idp::IdpEvent;
    use trellis_development::review::ReviewEvent;
    use trellis_kernel::DomainEvent;
    if let Ok(IdpEvent::IdpCreated { employee_id, .. }) =
        IdpEvent::from_payload(&event.event_type, event.payload.clone())
    {
        return vec![employee_id];
    }
    if let Ok(ReviewEvent::ReviewSubmitted { employee_id, .. }) =
        ReviewEvent::from_payload(&event.event_type, event.payload.clone())
    {
        return vec![employee_id];
    }
    Vec::new()
}
