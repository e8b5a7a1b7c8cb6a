//! The login-session store (`auth_sessions`): refresh-token families with their absolute
//! end, rotation, revocation; and the check every authenticated request makes
//! ([`IdentitySessions`], the edge kit's [`Sessions`]).

use sqlx::PgPool;
use trellis_edge::{Principal, Sessions};
use trellis_identity::Role;
use uuid::Uuid;

use crate::{SCHEMA, USER_COLUMNS, UserRow};

/// Stores refresh token `hash` of session `family` for `user`.
///
/// # Errors
/// Database failures.
pub async fn insert(
    pool: &PgPool,
    hash: &[u8],
    family: Uuid,
    user: &UserRow,
    expires: chrono::DateTime<chrono::Utc>,
    family_expires: chrono::DateTime<chrono::Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO auth_sessions \
           (token_hash, family_id, user_id, organization_id, expires_at, family_expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(hash)
    .bind(family)
    .bind(user.user_id)
    .bind(user.organization_id)
    .bind(expires)
    .bind(family_expires)
    .execute(pool)
    .await?;
    Ok(())
}

/// A refresh token exchanged by [`rotate`].
#[derive(Debug, Clone, Copy)]
pub struct Rotated {
    /// Its session.
    pub family: Uuid,
    /// Its user.
    pub user_id: Uuid,
    /// The session's absolute end.
    pub family_expires: chrono::DateTime<chrono::Utc>,
}

/// Marks refresh token `hash` used, atomically (exactly one concurrent refresh wins). A token
/// that was already used (a replay, e.g. by a thief) revokes its whole session and answers
/// `None`, like an unknown, expired or revoked one.
///
/// # Errors
/// Database failures.
pub async fn rotate(pool: &PgPool, hash: &[u8]) -> Result<Option<Rotated>, sqlx::Error> {
    let rotated: Option<(Uuid, Uuid, chrono::DateTime<chrono::Utc>)> = sqlx::query_as(
        "UPDATE auth_sessions SET rotated_at = now() \
         WHERE token_hash = $1 AND rotated_at IS NULL AND revoked_at IS NULL \
           AND expires_at > now() AND family_expires_at > now() \
         RETURNING family_id, user_id, family_expires_at",
    )
    .bind(hash)
    .fetch_optional(pool)
    .await?;
    if rotated.is_none() {
        // Reuse of a rotated token: revoke the family.
        sqlx::query(
            "UPDATE auth_sessions SET revoked_at = now() WHERE revoked_at IS NULL AND family_id = \
             (SELECT family_id FROM auth_sessions WHERE token_hash = $1 AND rotated_at IS NOT NULL)",
        )
        .bind(hash)
        .execute(pool)
        .await?;
    }
    Ok(rotated.map(|(family, user_id, family_expires)| Rotated {
        family,
        user_id,
        family_expires,
    }))
}

/// Revokes every session of `user_id` except `keep`.
///
/// # Errors
/// Database failures.
pub async fn revoke_all(
    pool: &PgPool,
    user_id: Uuid,
    keep: Option<Uuid>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE auth_sessions SET revoked_at = now() \
         WHERE user_id = $1 AND revoked_at IS NULL AND ($2::uuid IS NULL OR family_id <> $2)",
    )
    .bind(user_id)
    .bind(keep)
    .execute(pool)
    .await?;
    Ok(())
}

/// Revokes the session of refresh token `hash`, if any.
///
/// # Errors
/// Database failures.
pub async fn revoke_family_of(pool: &PgPool, hash: &[u8]) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE auth_sessions SET revoked_at = now() WHERE revoked_at IS NULL AND family_id = \
         (SELECT family_id FROM auth_sessions WHERE token_hash = $1)",
    )
    .bind(hash)
    .execute(pool)
    .await?;
    Ok(())
}

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

/// The edge's view of who is signed in, answered from this context's tables.
pub struct IdentitySessions {
    pool: PgPool,
}

impl IdentitySessions {
    /// Sessions over `pool`.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

#[async_trait::async_trait]
impl Sessions for IdentitySessions {
    async fn principal(
        &self,
        user_id: Uuid,
        organization_id: Uuid,
        session: Uuid,
    ) -> Result<Option<Principal>, sqlx::Error> {
        let user = authenticated_user(&self.pool, user_id, organization_id, session).await?;
        Ok(user.map(|user| Principal {
            user_id: user.user_id,
            organization_id: user.organization_id,
            roles: user
                .roles
                .iter()
                .filter_map(|r| Role::parse(r).ok())
                .collect(),
            manager_id: user.manager_id,
        }))
    }

    async fn display_names(
        &self,
        organization_id: Uuid,
        users: &[Uuid],
    ) -> Result<std::collections::HashMap<Uuid, String>, sqlx::Error> {
        let rows: Vec<(Uuid, String)> = sqlx::query_as(
            "SELECT user_id, display_name FROM rm_identity_users.users \
             WHERE organization_id = $1 AND user_id = ANY($2)",
        )
        .bind(organization_id)
        .bind(users)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().collect())
    }
}
