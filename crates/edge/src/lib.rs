//! The edge kit (ADR 0011): what every context's HTTP slice shares.
//!
//! A context's router is parse, call, map: it parses input into domain values with the
//! extractors here ([`Caller`](extract::Caller), [`ApiJson`](extract::ApiJson), …), checks
//! [`policy`], calls one of its context's use cases, and maps the use case's own error type to
//! an [`ApiError`], the only type that knows HTTP statuses. [`Edge`] is the state every slice
//! reaches through axum's `FromRef`: the command side, the read-model pool, the settings and
//! the per-process budgets.

pub mod auth;
pub mod config;
pub mod consistency;
pub mod error;
pub mod extract;
pub mod policy;
pub mod ratelimit;
pub mod schema;

use std::sync::Arc;

use sqlx::PgPool;
use trellis_identity::Role;
use trellis_runtime::Commands;
use uuid::Uuid;

pub use config::ApiConfig;
pub use error::ApiError;
pub use ratelimit::RateLimiter;

/// The active user behind a valid session: what the [`Caller`](extract::Caller) extractor
/// learns from the identity context on every request.
#[derive(Debug, Clone)]
pub struct Principal {
    /// User id.
    pub user_id: Uuid,
    /// Their organization.
    pub organization_id: Uuid,
    /// Current roles.
    pub roles: Vec<Role>,
    /// Their manager.
    pub manager_id: Option<Uuid>,
}

/// Who is signed in: the identity context answers (its read model and session store), so the
/// edge kit depends on no context's tables.
#[async_trait::async_trait]
pub trait Sessions: Send + Sync + 'static {
    /// The active user `user_id` of `organization_id` if session `session` is live
    /// (neither revoked nor past its absolute lifetime).
    ///
    /// # Errors
    /// Database failures.
    async fn principal(
        &self,
        user_id: Uuid,
        organization_id: Uuid,
        session: Uuid,
    ) -> Result<Option<Principal>, sqlx::Error>;
}

/// The state every context's HTTP slice reaches (through `FromRef`).
#[derive(Clone)]
pub struct Edge {
    /// Command side, with read-your-writes waits.
    pub commands: Commands,
    /// Read models.
    pub pool: PgPool,
    /// Settings.
    pub config: Arc<ApiConfig>,
    /// Budgets of this process.
    pub limits: Arc<RateLimiter>,
    /// Who is signed in.
    pub sessions: Arc<dyn Sessions>,
}
