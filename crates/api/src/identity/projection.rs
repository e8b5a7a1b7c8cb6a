//! The identity read model as the edge uses it: the projection and its queries live in
//! `trellis-identity-app`; sessions (not a read model) and read-your-writes waits live here.

use sqlx::PgPool;
use uuid::Uuid;

pub use trellis_identity_app::*;

/// Whether a session (refresh-token family) of `user_id` is still alive: not revoked, within
/// its absolute lifetime.
///
/// # Errors
/// Database failures.
pub async fn session_alive(
    pool: &PgPool,
    session: Uuid,
    user_id: Uuid,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM auth_sessions WHERE family_id = $1 AND user_id = $2 \
         AND revoked_at IS NULL AND family_expires_at > now())",
    )
    .bind(session)
    .bind(user_id)
    .fetch_one(pool)
    .await
}

/// Waits (bounded) until the read model shows user `id` at `version` or later.
///
/// # Errors
/// Database failures; `Ok(false)` on timeout.
pub async fn wait_for_user(
    pool: &PgPool,
    id: Uuid,
    version: u64,
    timeout: std::time::Duration,
) -> Result<bool, sqlx::Error> {
    crate::consistency::wait_for_version(
        pool,
        "rm_identity_users.users",
        "user_id",
        id,
        version,
        timeout,
    )
    .await
}
