//! Migrations with owners (ADR 0011): the event store's tables are migrated here, every other
//! table by the crate that owns it (the consumer runtime's checkpoints, identity's sessions,
//! the HTTP edge's idempotency keys, each context's own tables), each from its own
//! `migrations/` folder. Versions are unique across owners (checked), so all of them share
//! sqlx's `_sqlx_migrations` table; each owner's set runs with `ignore_missing`, since the
//! others' versions are in that table too.

use sqlx::PgPool;
use sqlx::migrate::Migrator;
use trellis_kernel::StoreError;

use crate::error::{migrate_error, store_error};

/// The migrations one crate owns.
pub struct Owned {
    /// The owning crate, for messages.
    pub owner: &'static str,
    /// Its migrations (from `sqlx::migrate!("./migrations")`).
    pub migrator: Migrator,
}

impl Owned {
    /// `owner`'s migrations.
    pub fn new(owner: &'static str, migrator: Migrator) -> Self {
        Self { owner, migrator }
    }
}

/// The event store's own migrations: events, idempotency keys, the relay's checkpoint and
/// parked records (the relay reads the store's log: its outbox).
pub fn event_store() -> Owned {
    Owned::new("trellis-store-postgres", sqlx::migrate!("./migrations"))
}

/// Files that were split between owners when migrations got owners (ADR 0011): the version,
/// the SHA-384 of the file a database may have applied before, and the version's owner now.
/// A database that applied the old file gets the new file's checksum (the split-off parts
/// were re-created `IF NOT EXISTS` under new versions, so nothing is lost or applied twice).
const SPLIT_FILES: [(i64, &str); 2] = [
    (
        2,
        "fcb7dfcaa245145ddd19581d05e044a674ad24a3fdfb9b921df9fa9b46a5ecb043ee2545fe5084c27683de96580a9ad5",
    ),
    (
        6,
        "edcb955ece5bf191786a431c003f8cbffa1ff44b21c6eb5f21df8df84398ab53c7705316d6345f3ae6d9c956415e1080",
    ),
];

/// Two owners claim one version.
#[derive(Debug, thiserror::Error)]
#[error("migration version {version} belongs to both {first} and {second}")]
pub struct DuplicateVersion {
    /// The version.
    pub version: i64,
    /// One owner.
    pub first: &'static str,
    /// The other.
    pub second: &'static str,
}

/// Checks that no version belongs to two owners.
///
/// # Errors
/// [`DuplicateVersion`] naming the clash.
pub fn check(sets: &[Owned]) -> Result<(), DuplicateVersion> {
    let mut seen = std::collections::HashMap::new();
    for set in sets {
        for migration in set.migrator.iter() {
            if let Some(first) = seen.insert(migration.version, set.owner) {
                return Err(DuplicateVersion {
                    version: migration.version,
                    first,
                    second: set.owner,
                });
            }
        }
    }
    Ok(())
}

/// Applies every owner's pending migrations: the event store's first, then `others` in order.
///
/// # Errors
/// [`StoreError::Unavailable`] when the database cannot be reached; [`StoreError::Backend`]
/// when a migration fails or two owners claim one version.
pub async fn run(pool: &PgPool, others: Vec<Owned>) -> Result<(), StoreError> {
    let mut sets = vec![event_store()];
    sets.extend(others);
    check(&sets).map_err(|e| StoreError::Backend(Box::new(e)))?;
    adopt_split_files(pool, &sets).await?;
    for mut set in sets {
        set.migrator.set_ignore_missing(true);
        set.migrator.run(pool).await.map_err(migrate_error)?;
    }
    Ok(())
}

/// Gives a version that was split (see [`SPLIT_FILES`]) its new file's checksum in a
/// database that applied the old file.
async fn adopt_split_files(pool: &PgPool, sets: &[Owned]) -> Result<(), StoreError> {
    let exists: Option<String> = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations')::text")
        .fetch_one(pool)
        .await
        .map_err(store_error)?;
    if exists.is_none() {
        return Ok(());
    }
    for (version, old) in SPLIT_FILES {
        let Some(new) = sets
            .iter()
            .flat_map(|s| s.migrator.iter())
            .find(|m| m.version == version)
        else {
            continue;
        };
        sqlx::query(
            "UPDATE _sqlx_migrations SET checksum = $2, description = $3 \
             WHERE version = $1 AND checksum = decode($4, 'hex')",
        )
        .bind(version)
        .bind(new.checksum.as_ref())
        .bind(new.description.as_ref())
        .bind(old)
        .execute(pool)
        .await
        .map_err(store_error)?;
    }
    Ok(())
}
