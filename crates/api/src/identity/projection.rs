//! The identity read model as the edge uses it: the projection and its queries live in
//! `trellis-identity-app`; sessions (not a read model) and read-your-writes waits live here.

use sqlx::PgPool;
use uuid::Uuid;

pub use trellis_identity_app::*;

/// The active user `user_id` of `organization_id`, if `session` (their refresh-token family)
/// is still alive: not revoked, within its absolute lifetime. One query for what every
/// authenticated request checks (the user and the session together).
///
/// # Errors
/// Database failures.
pub async fn authenticated_user(
    pool: &PgPool,
    user_id: Uuid,
    organization_id: Uuid,
    session: Uuid,
) -> Result<Option<UserRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {USER_COLUMNS} FROM {SCHEMA}.users u \
         WHERE u.user_id = $1 AND u.organization_id = $2 AND u.active \
           AND EXISTS (SELECT 1 FROM auth_sessions s WHERE s.family_id = $3 \
                       AND s.user_id = $1 AND s.revoked_at IS NULL \
                       AND s.family_expires_at > now())"
    ))
    .bind(user_id)
    .bind(organization_id)
    .bind(session)
    .fetch_optional(pool)
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
