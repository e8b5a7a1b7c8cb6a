//! Where wrapped data keys live: one record per data subject.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use uuid::Uuid;

/// A subject's key record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyRecord {
    /// The data key, wrapped by the master key (nonce, then ciphertext and tag).
    Wrapped(Vec<u8>),
    /// The key was destroyed: the subject's data is erased, and no new key is ever made.
    Forgotten,
}

/// The key store failed (unreachable, or a query failed).
#[derive(Debug, thiserror::Error)]
#[error("the key store failed")]
pub struct KeyringError(#[source] pub Box<dyn std::error::Error + Send + Sync>);

/// Stores wrapped data keys. Adapters: [`MemoryKeyring`] (unit tests) and
/// `trellis_store_postgres::keys::PgKeyring`, both held to [`crate::contract`].
#[async_trait]
pub trait Keyring: Send + Sync {
    /// The records of those `subjects` that have one.
    ///
    /// # Errors
    /// [`KeyringError`].
    async fn get(&self, subjects: &[Uuid]) -> Result<HashMap<Uuid, KeyRecord>, KeyringError>;

    /// Stores `wrapped` as `subject`'s key unless the subject already has a record; returns the
    /// record that stands (the first writer wins a race, and a forgotten subject stays
    /// forgotten).
    ///
    /// # Errors
    /// [`KeyringError`].
    async fn create(
        &self,
        subject: Uuid,
        tenant: Option<Uuid>,
        wrapped: Vec<u8>,
    ) -> Result<KeyRecord, KeyringError>;

    /// Destroys `subject`'s key, leaving a tombstone (also for a subject that never had a
    /// key). Idempotent.
    ///
    /// # Errors
    /// [`KeyringError`].
    async fn forget(&self, subject: Uuid) -> Result<(), KeyringError>;

    /// Up to `limit` live (not forgotten) keys of subjects after `after`, in subject order:
    /// what a master-key rotation walks.
    ///
    /// # Errors
    /// [`KeyringError`].
    async fn live_keys(
        &self,
        after: Option<Uuid>,
        limit: usize,
    ) -> Result<Vec<(Uuid, Vec<u8>)>, KeyringError>;

    /// Replaces `subject`'s wrapped key by `new` if it is still `old` (not forgotten, not
    /// replaced meanwhile); whether it did.
    ///
    /// # Errors
    /// [`KeyringError`].
    async fn replace(&self, subject: Uuid, old: &[u8], new: Vec<u8>) -> Result<bool, KeyringError>;
}

/// Keys in memory, for unit tests.
#[derive(Debug, Default)]
pub struct MemoryKeyring {
    records: Mutex<HashMap<Uuid, KeyRecord>>,
}

impl MemoryKeyring {
    /// An empty keyring.
    pub fn new() -> Self {
        Self::default()
    }

    fn records(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, KeyRecord>> {
        self.records
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait]
impl Keyring for MemoryKeyring {
    async fn get(&self, subjects: &[Uuid]) -> Result<HashMap<Uuid, KeyRecord>, KeyringError> {
        let records = self.records();
        Ok(subjects
            .iter()
            .filter_map(|s| records.get(s).map(|r| (*s, r.clone())))
            .collect())
    }

    async fn create(
        &self,
        subject: Uuid,
        _tenant: Option<Uuid>,
        wrapped: Vec<u8>,
    ) -> Result<KeyRecord, KeyringError> {
        Ok(self
            .records()
            .entry(subject)
            .or_insert(KeyRecord::Wrapped(wrapped))
            .clone())
    }

    async fn forget(&self, subject: Uuid) -> Result<(), KeyringError> {
        self.records().insert(subject, KeyRecord::Forgotten);
        Ok(())
    }

    async fn live_keys(
        &self,
        after: Option<Uuid>,
        limit: usize,
    ) -> Result<Vec<(Uuid, Vec<u8>)>, KeyringError> {
        let mut live: Vec<(Uuid, Vec<u8>)> = self
            .records()
            .iter()
            .filter(|(s, _)| after.is_none_or(|a| **s > a))
            .filter_map(|(s, r)| match r {
                KeyRecord::Wrapped(w) => Some((*s, w.clone())),
                KeyRecord::Forgotten => None,
            })
            .collect();
        live.sort_unstable_by_key(|(s, _)| *s);
        live.truncate(limit);
        Ok(live)
    }

    async fn replace(&self, subject: Uuid, old: &[u8], new: Vec<u8>) -> Result<bool, KeyringError> {
        let mut records = self.records();
        match records.get_mut(&subject) {
            Some(KeyRecord::Wrapped(w)) if w == old => {
                *w = new;
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}
