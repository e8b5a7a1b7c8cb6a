//! The identity context's application side: the `identity_users` read model (organizations
//! and users for login, authorization and profiles) with its queries, the login-session store
//! ([`sessions`]), the use cases ([`use_cases`]), the login guard and the HTTP slice
//! ([`http`]).

pub mod http;
pub mod login_guard;
pub mod sessions;
pub mod use_cases;

pub use use_cases::{Identity, IdentityError, NewUser, Refusal, TokenPair};

/// The identity context's own tables (login sessions), migrated by their owner (ADR 0011).
pub fn migrations() -> trellis_store_postgres::migrations::Owned {
    trellis_store_postgres::migrations::Owned::new(
        "trellis-identity-app",
        sqlx::migrate!("./migrations"),
    )
}

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use trellis_identity::organization::OrganizationEvent;
use trellis_identity::user::UserEvent;
use trellis_kernel::{DomainEvent, RecordedEvent, VariantNames};
use trellis_runtime::projection::{Projection, ProjectionError};
use uuid::Uuid;

/// The projection.
pub struct IdentityUsers;

/// Commands on a user are visible once this read model applied them.
impl trellis_runtime::Shows<trellis_identity::user::User> for IdentityUsers {
    const TABLE: &'static str = "rm_identity_users.users";
    const ID_COLUMN: &'static str = "user_id";
}

/// Schema of the live read model.
pub const SCHEMA: &str = "rm_identity_users";

#[async_trait]
impl Projection for IdentityUsers {
    fn name(&self) -> &'static str {
        "identity_users"
    }

    fn version(&self) -> i32 {
        // v2: addresses are unique per organization (ADR 0009), not across Trellis.
        2
    }

    fn event_types(&self) -> &'static [&'static str] {
        static TYPES: std::sync::LazyLock<Vec<&'static str>> = std::sync::LazyLock::new(|| {
            [OrganizationEvent::VARIANTS, UserEvent::VARIANTS].concat()
        });
        &TYPES
    }

    fn schema_sql(&self) -> &'static str {
        include_str!("../../../projections/identity_users/schema.sql")
    }

    async fn apply(
        &self,
        conn: &mut PgConnection,
        events: &[RecordedEvent],
    ) -> Result<(), ProjectionError> {
        // Identity changes are rare: one statement per event keeps this simple.
        for event in events {
            let id = event.stream_id.id();
            let version = event.stream_version as i64;
            if event.stream_id.kind() == trellis_identity::organization::Organization::KIND_NAME {
                let OrganizationEvent::OrganizationCreated { name, .. } =
                    OrganizationEvent::from_payload(&event.event_type, event.payload.clone())
                        .map_err(|e| ProjectionError::apply(event, e.to_string()))?;
                sqlx::query(
                    "INSERT INTO organizations (organization_id, name, version, created_at) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT (organization_id) DO NOTHING",
                )
                .bind(id)
                .bind(name)
                .bind(version)
                .bind(event.recorded_at)
                .execute(&mut *conn)
                .await?;
                continue;
            }
            let user = UserEvent::from_payload(&event.event_type, event.payload.clone())
                .map_err(|e| ProjectionError::apply(event, e.to_string()))?;
            apply_user(conn, id, version, event.recorded_at, user).await?;
        }
        Ok(())
    }
}

async fn apply_user(
    conn: &mut PgConnection,
    id: Uuid,
    version: i64,
    at: DateTime<Utc>,
    event: UserEvent,
) -> Result<(), sqlx::Error> {
    let query = match event {
        UserEvent::UserRegistered {
            organization_id,
            email,
            display_name,
            password_hash,
            roles,
            manager_id,
        } => sqlx::query(
            "INSERT INTO users (user_id, organization_id, email, display_name, password_hash, \
                                roles, manager_id, active, version, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, true, $8, $9) ON CONFLICT (user_id) DO NOTHING",
        )
        .bind(id)
        .bind(organization_id)
        .bind(email)
        .bind(display_name)
        .bind(password_hash)
        .bind(roles.iter().map(|r| r.as_str()).collect::<Vec<_>>())
        .bind(manager_id)
        .bind(version)
        .bind(at),
        UserEvent::RolesAssigned { roles } => {
            sqlx::query("UPDATE users SET roles = $2, version = $3 WHERE user_id = $1")
                .bind(id)
                .bind(roles.iter().map(|r| r.as_str()).collect::<Vec<_>>())
                .bind(version)
        }
        UserEvent::ManagerAssigned { manager_id } => {
            sqlx::query("UPDATE users SET manager_id = $2, version = $3 WHERE user_id = $1")
                .bind(id)
                .bind(manager_id)
                .bind(version)
        }
        UserEvent::PasswordChanged { password_hash } => {
            sqlx::query("UPDATE users SET password_hash = $2, version = $3 WHERE user_id = $1")
                .bind(id)
                .bind(password_hash)
                .bind(version)
        }
        UserEvent::UserDeactivated {} => {
            sqlx::query("UPDATE users SET active = false, version = $2 WHERE user_id = $1")
                .bind(id)
                .bind(version)
        }
        // Erased (ADR 0017): nothing of theirs stays, and they cannot log in. A rebuild gets
        // here too, from events whose fields already read as erased.
        UserEvent::SubjectForgotten {} => sqlx::query(
            "UPDATE users SET email = $3, display_name = $3, password_hash = '', \
                              active = false, version = $2 WHERE user_id = $1",
        )
        .bind(id)
        .bind(version)
        .bind(trellis_kernel::personal::ERASED),
    };
    query.execute(conn).await?;
    Ok(())
}

/// A user as the edge needs it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserRow {
    /// Id.
    pub user_id: Uuid,
    /// Organization.
    pub organization_id: Uuid,
    /// Login address.
    pub email: String,
    /// Display name.
    pub display_name: String,
    /// argon2id hash.
    pub password_hash: String,
    /// Role names.
    pub roles: Vec<String>,
    /// Manager.
    pub manager_id: Option<Uuid>,
    /// Not deactivated.
    pub active: bool,
    /// Stream version applied.
    pub version: i64,
}

/// The columns of [`UserRow`], for queries that join the users table.
pub const USER_COLUMNS: &str = "user_id, organization_id, email, display_name, password_hash, roles, \
                            manager_id, active, version";

/// A user by id.
///
/// # Errors
/// Database failures.
pub async fn user_by_id(pool: &PgPool, id: Uuid) -> Result<Option<UserRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {USER_COLUMNS} FROM {SCHEMA}.users WHERE user_id = $1"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await
}

/// Most accounts one address may log in to without naming the organization: bounds the
/// password checks of one login.
pub const MAX_LOGIN_CANDIDATES: i64 = 8;

/// The active users with a normalised e-mail, in any organization or in `organization`
/// (addresses are unique per organization, ADR 0009), oldest first, at most
/// [`MAX_LOGIN_CANDIDATES`].
///
/// # Errors
/// Database failures.
pub async fn active_users_by_email(
    pool: &PgPool,
    email: &str,
    organization: Option<Uuid>,
) -> Result<Vec<UserRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {USER_COLUMNS} FROM {SCHEMA}.users \
         WHERE email = $1 AND active AND ($2::uuid IS NULL OR organization_id = $2) \
         ORDER BY created_at LIMIT $3"
    ))
    .bind(email)
    .bind(organization)
    .bind(MAX_LOGIN_CANDIDATES)
    .fetch_all(pool)
    .await
}

/// Admins of an organization that are active.
///
/// # Errors
/// Database failures.
async fn active_admins(pool: &PgPool, organization_id: Uuid) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(&format!(
        "SELECT count(*) FROM {SCHEMA}.users \
         WHERE organization_id = $1 AND active AND 'admin' = ANY(roles)"
    ))
    .bind(organization_id)
    .fetch_one(pool)
    .await
}

/// Whether `user` is their organization's last active admin: the one an organization cannot
/// lose (by giving up the role or by erasure).
///
/// # Errors
/// Database failures.
pub(crate) async fn is_last_admin(pool: &PgPool, user: &UserRow) -> Result<bool, sqlx::Error> {
    Ok(user.active
        && user
            .roles
            .iter()
            .any(|r| r == trellis_identity::Role::Admin.as_str())
        && active_admins(pool, user.organization_id).await? <= 1)
}

/// Runs `work` holding the organization's admin lock (a PostgreSQL advisory lock, shared by
/// every process): role changes, deactivations and erasures that could take an
/// organization's last admin away run one at a time, each checking [`is_last_admin`] on rows
/// read under the lock and waiting for the read model before releasing it. Without it, two
/// admins giving up the role (or deactivating each other) at the same moment both saw the
/// other and both succeeded. A holder that is dropped midway closes its connection, which
/// releases the lock.
///
/// # Errors
/// The lock's database failures (as `E`), or `work`'s.
pub(crate) async fn with_admins_locked<T, E: From<sqlx::Error>>(
    pool: &PgPool,
    organization_id: Uuid,
    work: impl AsyncFnOnce() -> Result<T, E>,
) -> Result<T, E> {
    const LOCK: &str = "hashtextextended('trellis:admins:' || $1::text, 0)";
    let mut conn = trellis_store_postgres::GuardedConnection::acquire(pool).await?;
    sqlx::query(&format!("SELECT pg_advisory_lock({LOCK})"))
        .bind(organization_id)
        .execute(&mut *conn)
        .await?;
    let result = work().await;
    match sqlx::query(&format!("SELECT pg_advisory_unlock({LOCK})"))
        .bind(organization_id)
        .execute(&mut *conn)
        .await
    {
        Ok(_) => conn.finish(),
        // Dropped unfinished, the connection is closed: the lock goes with it.
        Err(e) => tracing::warn!(error = %e, "releasing an organization's admin lock"),
    }
    result
}

/// An organization's name.
///
/// # Errors
/// Database failures.
pub async fn organization_name(pool: &PgPool, id: Uuid) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar(&format!(
        "SELECT name FROM {SCHEMA}.organizations WHERE organization_id = $1"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await
}
