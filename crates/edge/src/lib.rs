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
pub mod search;

use std::sync::Arc;

use sqlx::PgPool;
use trellis_identity::Role;
use trellis_runtime::Commands;
use uuid::Uuid;

pub use config::ApiConfig;
pub use error::ApiError;
pub use ratelimit::RateLimiter;

/// Something a context lets `GET /v1/search` find beside atoms and contents (the development
/// context's skills and resources): registered once on the context's module, answered from
/// the context's own read model, so the search owns no other context's tables.
#[async_trait::async_trait]
pub trait Searchable: Send + Sync + 'static {
    /// Its `kind` in the API (`skill`, `resource`).
    fn kind(&self) -> &'static str;

    /// The organization's matches for `q` as one or more lexical rankings, each best first
    /// and at most `limit` long (fused by reciprocal rank with the meaning ranking).
    ///
    /// # Errors
    /// Database failures.
    async fn rankings(
        &self,
        organization_id: Uuid,
        q: &str,
        limit: usize,
    ) -> Result<Vec<Vec<Uuid>>, sqlx::Error>;

    /// Up to `limit` of the organization's texts to embed for meaning search, after `position`
    /// in position order: `(id, text, position)`. Entries are only ever added.
    ///
    /// # Errors
    /// Database failures.
    async fn texts_after(
        &self,
        organization_id: Uuid,
        position: i64,
        limit: usize,
    ) -> Result<Vec<(Uuid, String, i64)>, sqlx::Error>;

    /// Title and highlight (matched terms in `<mark>…</mark>`, the rest HTML-escaped) of those
    /// of `ids` that the organization still holds.
    ///
    /// # Errors
    /// Database failures.
    async fn shown(
        &self,
        organization_id: Uuid,
        ids: &[Uuid],
        q: &str,
    ) -> Result<Vec<(Uuid, String, String)>, sqlx::Error>;
}

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

    /// The display names of those of `users` who belong to `organization_id` (others are
    /// absent): what other contexts show beside a user id.
    ///
    /// # Errors
    /// Database failures.
    async fn display_names(
        &self,
        organization_id: Uuid,
        users: &[Uuid],
    ) -> Result<std::collections::HashMap<Uuid, String>, sqlx::Error>;
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
    /// What other contexts let search find.
    pub searchables: Arc<[Arc<dyn Searchable>]>,
}
