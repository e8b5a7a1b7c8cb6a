//! The PostgreSQL [`Keyring`]: wrapped data keys in `subject_keys` (ADR 0017).

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use sqlx::PgPool;
use trellis_privacy::{KeyRecord, Keyring, KeyringError};
use uuid::Uuid;

/// Installs the process-wide personal-data cipher (ADR 0017) for the `declared` fields, its
/// data keys in `pool`'s `subject_keys`, wrapped by `master`: every append then encrypts, and
/// every read path decrypts, through it.
pub fn install_cipher(
    pool: PgPool,
    master: trellis_privacy::MasterKey,
    declared: impl IntoIterator<Item = trellis_kernel::PersonalData>,
) {
    trellis_kernel::personal::install(Arc::new(trellis_privacy::FieldCipher::new(
        master,
        Arc::new(PgKeyring::new(pool)),
        declared,
    )));
}

/// Data keys in the `subject_keys` table of the event store's database.
#[derive(Debug, Clone)]
pub struct PgKeyring {
    pool: PgPool,
}

impl PgKeyring {
    /// A keyring over `pool` (migrated with the event store).
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

fn failed(error: sqlx::Error) -> KeyringError {
    KeyringError(Box::new(error))
}

fn record(wrapped: Option<Vec<u8>>) -> KeyRecord {
    wrapped.map_or(KeyRecord::Forgotten, KeyRecord::Wrapped)
}

#[async_trait]
impl Keyring for PgKeyring {
    async fn get(&self, subjects: &[Uuid]) -> Result<HashMap<Uuid, KeyRecord>, KeyringError> {
        let rows: Vec<(Uuid, Option<Vec<u8>>)> = sqlx::query_as(
            "SELECT subject_id, wrapped FROM subject_keys WHERE subject_id = ANY($1)",
        )
        .bind(subjects)
        .fetch_all(&self.pool)
        .await
        .map_err(failed)?;
        Ok(rows
            .into_iter()
            .map(|(subject, wrapped)| (subject, record(wrapped)))
            .collect())
    }

    async fn create(
        &self,
        subject: Uuid,
        tenant: Option<Uuid>,
        wrapped: Vec<u8>,
    ) -> Result<KeyRecord, KeyringError> {
        // The first writer wins; everyone reads the row that stands. The read is its own
        // statement: after a conflict with a concurrent insert, only a new snapshot sees it.
        let made: Option<Option<Vec<u8>>> = sqlx::query_scalar(
            "INSERT INTO subject_keys (subject_id, tenant_id, wrapped) VALUES ($1, $2, $3) \
             ON CONFLICT (subject_id) DO NOTHING RETURNING wrapped",
        )
        .bind(subject)
        .bind(tenant)
        .bind(&wrapped)
        .fetch_optional(&self.pool)
        .await
        .map_err(failed)?;
        let standing = match made {
            Some(made) => made,
            None => sqlx::query_scalar("SELECT wrapped FROM subject_keys WHERE subject_id = $1")
                .bind(subject)
                .fetch_one(&self.pool)
                .await
                .map_err(failed)?,
        };
        Ok(record(standing))
    }

    async fn forget(&self, subject: Uuid) -> Result<(), KeyringError> {
        sqlx::query(
            "INSERT INTO subject_keys (subject_id, wrapped, forgotten_at) VALUES ($1, NULL, now()) \
             ON CONFLICT (subject_id) DO UPDATE SET wrapped = NULL, \
                 forgotten_at = coalesce(subject_keys.forgotten_at, now())",
        )
        .bind(subject)
        .execute(&self.pool)
        .await
        .map_err(failed)?;
        Ok(())
    }

    async fn live_keys(
        &self,
        after: Option<Uuid>,
        limit: usize,
    ) -> Result<Vec<(Uuid, Vec<u8>)>, KeyringError> {
        // Two statements, not `($1 IS NULL OR subject_id > $1)`: a cached generic plan of that
        // would walk the keys from the first one for every page.
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let page = match after {
            None => sqlx::query_as(
                "SELECT subject_id, wrapped FROM subject_keys WHERE wrapped IS NOT NULL \
                 ORDER BY subject_id LIMIT $1",
            )
            .bind(limit),
            Some(after) => sqlx::query_as(
                "SELECT subject_id, wrapped FROM subject_keys \
                 WHERE wrapped IS NOT NULL AND subject_id > $2 ORDER BY subject_id LIMIT $1",
            )
            .bind(limit)
            .bind(after),
        };
        page.fetch_all(&self.pool).await.map_err(failed)
    }

    async fn replace(&self, subject: Uuid, old: &[u8], new: Vec<u8>) -> Result<bool, KeyringError> {
        let replaced = sqlx::query(
            "UPDATE subject_keys SET wrapped = $3 WHERE subject_id = $1 AND wrapped = $2",
        )
        .bind(subject)
        .bind(old)
        .bind(new)
        .execute(&self.pool)
        .await
        .map_err(failed)?;
        Ok(replaced.rows_affected() == 1)
    }
}
