//! Personal data in events, encrypted per data subject (ADR 0017).
//!
//! Each subject (a user) has a random 256-bit data key, stored wrapped (AES-256-GCM) by the
//! master key from configuration (`TRELLIS_MASTER_KEY`) in a [`Keyring`]. Every field a
//! context module declares personal ([`trellis_kernel::PersonalData`]) is replaced, before the
//! append, by
//!
//! ```text
//! enc:v1:<subject uuid>:<type>:<base64url(nonce ‖ AES-256-GCM ciphertext ‖ tag)>
//! ```
//!
//! where the plaintext is the field's JSON value, `<type>` says what an erased value looks like
//! (`s` text, `a` array, `o` object, `j` anything else) and the associated data binds the
//! ciphertext to its organization, subject, event and field (`tenant|subject|event_id|path`), so
//! it cannot be moved to another record. [`FieldCipher`] implements the kernel's
//! [`PersonalCipher`] seam; installed process-wide, it runs on every append and every read path.
//!
//! Erasure destroys the key ([`Keyring::forget`] leaves a tombstone): every copy of the
//! ciphertext, in the store, on Kafka, in dead letters and backups, becomes unreadable at once,
//! and reads show [`trellis_kernel::personal::ERASED`] (or an empty array or object).

pub mod contract;
mod keyring;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rand::RngCore as _;
use trellis_kernel::personal::{ERASED, PersonalCipher, field_mut};
use trellis_kernel::{NewEvent, PersonalData, RecordedEvent, StoreError, StreamId};
use uuid::Uuid;

pub use keyring::{KeyRecord, Keyring, KeyringError, MemoryKeyring};

/// The prefix of an encrypted field.
pub const PREFIX: &str = "enc:v1:";

const NONCE_LEN: usize = 12;

/// The key that wraps every data key: 32 bytes, configured as base64 in `TRELLIS_MASTER_KEY`.
///
/// During a rotation ([`rotate`], docs/security.md) it also holds the key it replaces
/// (`TRELLIS_PREVIOUS_MASTER_KEY`): data keys are wrapped with the current key only and
/// unwrapped with whichever of the two opens them.
#[derive(Clone)]
pub struct MasterKey {
    current: Aes256Gcm,
    previous: Option<Aes256Gcm>,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

/// `TRELLIS_MASTER_KEY` is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MasterKeyError {
    /// Not set.
    #[error(
        "TRELLIS_MASTER_KEY is not set: 32 random bytes, base64 (scripts/setup makes a \
         development key into .trellis/; set your own in production)"
    )]
    Missing,
    /// Not base64.
    #[error("TRELLIS_MASTER_KEY is not base64")]
    Encoding,
    /// Not 32 bytes.
    #[error("TRELLIS_MASTER_KEY must decode to 32 bytes, not {0}")]
    Length(usize),
    /// `TRELLIS_PREVIOUS_MASTER_KEY` is set but unusable.
    #[error("TRELLIS_PREVIOUS_MASTER_KEY: {0}")]
    Previous(Box<MasterKeyError>),
}

impl MasterKeyError {
    fn previous(self) -> Self {
        Self::Previous(Box::new(self))
    }
}

impl MasterKey {
    /// Parses the base64 (standard alphabet, padded) of 32 bytes.
    ///
    /// # Errors
    /// [`MasterKeyError`].
    pub fn from_base64(text: &str) -> Result<Self, MasterKeyError> {
        let bytes = STANDARD
            .decode(text.trim())
            .map_err(|_| MasterKeyError::Encoding)?;
        let bytes: [u8; 32] = bytes
            .try_into()
            .map_err(|b: Vec<u8>| MasterKeyError::Length(b.len()))?;
        Ok(Self::from_bytes(bytes))
    }

    /// The key configured as `TRELLIS_MASTER_KEY` (`value` is the setting, if any).
    ///
    /// # Errors
    /// [`MasterKeyError`], [`MasterKeyError::Missing`] when unset or blank.
    pub fn from_setting(value: Option<String>) -> Result<Self, MasterKeyError> {
        match value.filter(|v| !v.trim().is_empty()) {
            Some(text) => Self::from_base64(&text),
            None => Err(MasterKeyError::Missing),
        }
    }

    /// A key from its bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self {
            current: Aes256Gcm::new(&Key::<Aes256Gcm>::from(bytes)),
            previous: None,
        }
    }

    /// This key, also unwrapping what `previous`'s current key wrapped (a rotation in
    /// progress; `previous`'s own previous key, if any, is not kept: one rotation at a time).
    #[must_use]
    pub fn with_previous(self, previous: Self) -> Self {
        Self {
            previous: Some(previous.current),
            ..self
        }
    }

    /// The keys configured as `TRELLIS_MASTER_KEY` and, during a rotation,
    /// `TRELLIS_PREVIOUS_MASTER_KEY` (`current` and `previous` are the settings, if any).
    ///
    /// # Errors
    /// [`MasterKeyError`] for either (the previous key's errors name it).
    pub fn from_settings(
        current: Option<String>,
        previous: Option<String>,
    ) -> Result<Self, MasterKeyError> {
        let key = Self::from_setting(current)?;
        match previous.filter(|v| !v.trim().is_empty()) {
            None => Ok(key),
            Some(text) => {
                Ok(key.with_previous(Self::from_base64(&text).map_err(MasterKeyError::previous)?))
            }
        }
    }

    /// Whether a rotation is in progress (a previous key is configured).
    pub fn rotating(&self) -> bool {
        self.previous.is_some()
    }

    /// A fresh random key, as base64 (what setup writes for development).
    pub fn generate_base64() -> String {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        STANDARD.encode(bytes)
    }

    fn wrap(&self, subject: Uuid, data_key: &[u8; 32]) -> Vec<u8> {
        seal(&self.current, subject.as_bytes(), data_key)
    }

    /// The data key `wrapped` holds, and whether the current key wrapped it.
    fn open_data_key(&self, subject: Uuid, wrapped: &[u8]) -> Option<([u8; 32], bool)> {
        let with = |key: &Aes256Gcm| -> Option<[u8; 32]> {
            open(key, subject.as_bytes(), wrapped)?.try_into().ok()
        };
        with(&self.current)
            .map(|k| (k, true))
            .or_else(|| self.previous.as_ref().and_then(with).map(|k| (k, false)))
    }

    fn unwrap(&self, subject: Uuid, wrapped: &[u8]) -> Option<Aes256Gcm> {
        let (bytes, _) = self.open_data_key(subject, wrapped)?;
        Some(Aes256Gcm::new(&Key::<Aes256Gcm>::from(bytes)))
    }

    /// What becomes of a wrapped data key in a rotation.
    fn rewrap(&self, subject: Uuid, wrapped: &[u8]) -> Rewrap {
        match self.open_data_key(subject, wrapped) {
            Some((_, true)) => Rewrap::Current,
            Some((data_key, false)) => Rewrap::To(self.wrap(subject, &data_key)),
            None => Rewrap::Unreadable,
        }
    }
}

/// One data key in a rotation.
enum Rewrap {
    /// Already wrapped by the current key.
    Current,
    /// Wrapped by the previous key: this is it wrapped by the current one.
    To(Vec<u8>),
    /// Neither key opens it.
    Unreadable,
}

/// What [`rotate`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RotationReport {
    /// Data keys re-wrapped from the previous master key to the current one.
    pub rewrapped: u64,
    /// Data keys already wrapped by the current master key.
    pub current: u64,
    /// Data keys neither key opens (left as they are; their subjects' data cannot be read
    /// until the key that wrapped them is configured).
    pub unreadable: u64,
    /// Keys forgotten or changed by someone else during the rotation (left to them).
    pub skipped: u64,
}

/// Re-wraps every live data key in `keyring` that `master`'s previous key wrapped with its
/// current key (docs/security.md, "Rotating the master key"). Keys are replaced one by one,
/// each only if it is still the one read, so an erasure during the rotation stands. Running
/// it again re-wraps nothing. The data keys themselves, and so every ciphertext, are
/// unchanged.
///
/// # Errors
/// [`KeyringError`].
pub async fn rotate(
    master: &MasterKey,
    keyring: &dyn Keyring,
) -> Result<RotationReport, KeyringError> {
    rotate_paged(master, keyring, 1_000).await
}

/// [`rotate`], reading `page` keys at a time.
async fn rotate_paged(
    master: &MasterKey,
    keyring: &dyn Keyring,
    page_size: usize,
) -> Result<RotationReport, KeyringError> {
    let mut report = RotationReport::default();
    let mut after = None;
    loop {
        let page = keyring.live_keys(after, page_size).await?;
        let Some((last, _)) = page.last() else {
            break;
        };
        after = Some(*last);
        let full = page.len() == page_size;
        for (subject, wrapped) in page {
            match master.rewrap(subject, &wrapped) {
                Rewrap::Current => report.current += 1,
                Rewrap::Unreadable => report.unreadable += 1,
                Rewrap::To(new) => {
                    if keyring.replace(subject, &wrapped, new).await? {
                        report.rewrapped += 1;
                    } else {
                        report.skipped += 1;
                    }
                }
            }
        }
        if !full {
            break;
        }
    }
    Ok(report)
}

/// Nonce, then ciphertext and tag.
fn seal(cipher: &Aes256Gcm, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let mut nonce = [0u8; NONCE_LEN];
    rand::rng().fill_bytes(&mut nonce);
    let sealed = cipher
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        // AES-GCM encryption fails only for messages over 64 GiB.
        .unwrap_or_else(|_| unreachable!("AES-GCM encrypts any event-sized message"));
    let mut out = nonce.to_vec();
    out.extend_from_slice(&sealed);
    out
}

fn open(cipher: &Aes256Gcm, aad: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
    if sealed.len() < NONCE_LEN {
        return None;
    }
    let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
    cipher
        .decrypt(
            Nonce::from_slice(nonce),
            Payload {
                msg: ciphertext,
                aad,
            },
        )
        .ok()
}

/// How long a process writes with a data key it read before reading it again. Reads always
/// ask the key store whether the subject was forgotten (an erasure is seen at once); a write
/// in this time after another process's erasure uses the destroyed key, so it reads erased.
pub const KEY_TTL: Duration = Duration::from_secs(60);

/// Unwrapped keys kept at most (expired ones are dropped past this).
const CACHE_MAX: usize = 10_000;

/// A subject's key state as a read sees it.
enum ReadKey {
    Usable(Arc<Aes256Gcm>),
    Forgotten,
}

/// The [`PersonalCipher`] of ADR 0017: declared fields, a master key and a [`Keyring`].
pub struct FieldCipher {
    master: MasterKey,
    keyring: Arc<dyn Keyring>,
    fields: HashMap<&'static str, PersonalData>,
    cache: Mutex<HashMap<Uuid, (Arc<Aes256Gcm>, Instant)>>,
}

impl std::fmt::Debug for FieldCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FieldCipher")
            .field("fields", &self.fields)
            .finish_non_exhaustive()
    }
}

/// One parsed ciphertext field.
struct Sealed<'a> {
    subject: Uuid,
    kind: char,
    data: &'a str,
}

fn parse(text: &str) -> Option<Sealed<'_>> {
    let rest = text.strip_prefix(PREFIX)?;
    let (subject, rest) = rest.split_once(':')?;
    let (kind, data) = rest.split_once(':')?;
    let mut kinds = kind.chars();
    let (Some(kind), None) = (kinds.next(), kinds.next()) else {
        return None;
    };
    Some(Sealed {
        subject: Uuid::parse_str(subject).ok()?,
        kind,
        data,
    })
}

fn kind_of(value: &serde_json::Value) -> char {
    match value {
        serde_json::Value::String(_) => 's',
        serde_json::Value::Array(_) => 'a',
        serde_json::Value::Object(_) => 'o',
        _ => 'j',
    }
}

/// What an erased field of this kind reads as.
fn erased(kind: char) -> serde_json::Value {
    match kind {
        's' => serde_json::Value::String(ERASED.to_owned()),
        'a' => serde_json::Value::Array(Vec::new()),
        'o' => serde_json::Value::Object(serde_json::Map::new()),
        _ => serde_json::Value::Null,
    }
}

fn aad(tenant: Option<trellis_kernel::TenantId>, subject: Uuid, event: &str, path: &str) -> String {
    let tenant = tenant.map_or_else(|| "-".to_owned(), |t| t.to_string());
    format!("{tenant}|{subject}|{event}|{path}")
}

/// Whether a JSON value is a field this module encrypted.
pub fn is_ciphertext(value: &serde_json::Value) -> bool {
    value.as_str().is_some_and(|s| parse(s).is_some())
}

fn corrupt(event: &RecordedEvent, why: String) -> StoreError {
    StoreError::Corrupt {
        event_id: event.event_id.to_string(),
        source: why.into(),
    }
}

fn unavailable(error: KeyringError) -> StoreError {
    StoreError::Unavailable(Box::new(error))
}

impl FieldCipher {
    /// A cipher for the `declared` fields, wrapping keys with `master`, storing them in
    /// `keyring`.
    pub fn new(
        master: MasterKey,
        keyring: Arc<dyn Keyring>,
        declared: impl IntoIterator<Item = PersonalData>,
    ) -> Self {
        Self {
            master,
            keyring,
            fields: declared.into_iter().map(|d| (d.event_type, d)).collect(),
            cache: Mutex::new(HashMap::new()),
        }
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, (Arc<Aes256Gcm>, Instant)>> {
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The subject's key, unwrapped (from the cache when it holds one).
    fn usable(&self, subject: Uuid, wrapped: &[u8]) -> Result<Arc<Aes256Gcm>, StoreError> {
        if let Some((key, _)) = self.cache().get(&subject) {
            return Ok(Arc::clone(key));
        }
        let key = Arc::new(self.master.unwrap(subject, wrapped).ok_or_else(|| {
            StoreError::Backend(
                format!(
                    "the data key of subject {subject} does not unwrap: is TRELLIS_MASTER_KEY \
                     (or, during a rotation, TRELLIS_PREVIOUS_MASTER_KEY) the key it was \
                     wrapped with?"
                )
                .into(),
            )
        })?);
        let mut cache = self.cache();
        if cache.len() >= CACHE_MAX {
            cache.retain(|_, (_, read)| read.elapsed() <= KEY_TTL);
        }
        cache.insert(subject, (Arc::clone(&key), Instant::now()));
        Ok(key)
    }

    /// The subject's key for writing (made on first use), or `None` when forgotten.
    async fn key_for_write(
        &self,
        subject: Uuid,
        tenant: Option<Uuid>,
    ) -> Result<Option<Arc<Aes256Gcm>>, StoreError> {
        let fresh = self
            .cache()
            .get(&subject)
            .filter(|(_, read)| read.elapsed() <= KEY_TTL)
            .map(|(key, _)| Arc::clone(key));
        if let Some(key) = fresh {
            return Ok(Some(key));
        }
        let found = self
            .keyring
            .get(&[subject])
            .await
            .map_err(unavailable)?
            .remove(&subject);
        let record = match found {
            Some(record) => record,
            None => {
                let mut data_key = [0u8; 32];
                rand::rng().fill_bytes(&mut data_key);
                let wrapped = self.master.wrap(subject, &data_key);
                self.keyring
                    .create(subject, tenant, wrapped)
                    .await
                    .map_err(unavailable)?
            }
        };
        match record {
            KeyRecord::Forgotten => {
                self.cache().remove(&subject);
                Ok(None)
            }
            KeyRecord::Wrapped(wrapped) => {
                // A subject's data key never changes: a cached one only needs its time
                // refreshed, not unwrapping again.
                if let Some((key, read)) = self.cache().get_mut(&subject) {
                    *read = Instant::now();
                    return Ok(Some(Arc::clone(key)));
                }
                self.usable(subject, &wrapped).map(Some)
            }
        }
    }

    /// Keys for reading: whether each subject is forgotten is always asked of the key store
    /// (one query per call), so an erasure by any process is seen at once. Subjects without a
    /// record are absent.
    async fn keys_for_read(
        &self,
        subjects: Vec<Uuid>,
    ) -> Result<HashMap<Uuid, ReadKey>, StoreError> {
        let records = self.keyring.get(&subjects).await.map_err(unavailable)?;
        let mut keys = HashMap::with_capacity(records.len());
        for (subject, record) in records {
            let key = match record {
                KeyRecord::Forgotten => {
                    self.cache().remove(&subject);
                    ReadKey::Forgotten
                }
                KeyRecord::Wrapped(wrapped) => ReadKey::Usable(self.usable(subject, &wrapped)?),
            };
            keys.insert(subject, key);
        }
        Ok(keys)
    }
}

#[async_trait]
impl PersonalCipher for FieldCipher {
    fn declares(&self, event_type: &str) -> bool {
        self.fields.contains_key(event_type)
    }

    async fn encrypt(&self, stream: &StreamId, events: &mut [NewEvent]) -> Result<(), StoreError> {
        for event in events.iter_mut() {
            let Some(declared) = self.fields.get(event.event_type.as_str()) else {
                continue;
            };
            let subject = declared.subject_of(stream, &event.payload).ok_or_else(|| {
                StoreError::Backend(
                    format!(
                        "{} names no subject where its personal-data declaration says",
                        event.event_type
                    )
                    .into(),
                )
            })?;
            let tenant = event.metadata.tenant_id;
            let key = self
                .key_for_write(subject, tenant.map(|t| t.as_uuid()))
                .await?;
            let event_id = event.event_id.to_string();
            for path in declared.fields {
                let Some(value) = field_mut(&mut event.payload, path) else {
                    continue;
                };
                if value.is_null() {
                    continue;
                }
                let kind = kind_of(value);
                *value = match &key {
                    None => erased(kind),
                    Some(key) => {
                        let plaintext = serde_json::to_vec(value)
                            .unwrap_or_else(|_| unreachable!("a JSON value serializes"));
                        let sealed = seal(
                            key,
                            aad(tenant, subject, &event_id, path).as_bytes(),
                            &plaintext,
                        );
                        serde_json::Value::String(format!(
                            "{PREFIX}{subject}:{kind}:{}",
                            URL_SAFE_NO_PAD.encode(sealed)
                        ))
                    }
                };
            }
        }
        Ok(())
    }

    async fn decrypt(&self, events: &mut [RecordedEvent]) -> Result<(), StoreError> {
        // The subjects of every declared field: of each ciphertext, and (by the declaration)
        // of plain values left from before encryption, which read erased once their subject
        // is forgotten too.
        let mut subjects = Vec::new();
        for event in events.iter() {
            let Some(declared) = self.fields.get(event.event_type.as_str()) else {
                continue;
            };
            let mut plain = false;
            for path in declared.fields {
                match trellis_kernel::personal::field(&event.payload, path) {
                    Some(serde_json::Value::String(text)) if text.starts_with(PREFIX) => {
                        if let Some(sealed) = parse(text) {
                            subjects.push(sealed.subject);
                        }
                    }
                    Some(value) if !value.is_null() => plain = true,
                    _ => {}
                }
            }
            if plain && let Some(subject) = declared.subject_of(&event.stream_id, &event.payload) {
                subjects.push(subject);
            }
        }
        if subjects.is_empty() {
            return Ok(());
        }
        subjects.sort_unstable();
        subjects.dedup();
        let keys = self.keys_for_read(subjects).await?;
        for event in events.iter_mut() {
            let Some(declared) = self.fields.get(event.event_type.as_str()) else {
                continue;
            };
            let tenant = event.metadata.tenant_id;
            let event_id = event.event_id.to_string();
            let subject = declared.subject_of(&event.stream_id, &event.payload);
            for path in declared.fields {
                let plain = match trellis_kernel::personal::field(&event.payload, path) {
                    None | Some(serde_json::Value::Null) => continue,
                    Some(serde_json::Value::String(text)) if text.starts_with(PREFIX) => {
                        let sealed = parse(text)
                            .ok_or_else(|| corrupt(event, format!("{path}: bad ciphertext")))?;
                        match keys.get(&sealed.subject) {
                            None => {
                                return Err(corrupt(
                                    event,
                                    format!("{path}: no data key for subject {}", sealed.subject),
                                ));
                            }
                            Some(ReadKey::Forgotten) => erased(sealed.kind),
                            Some(ReadKey::Usable(key)) => {
                                let bytes = URL_SAFE_NO_PAD
                                    .decode(sealed.data)
                                    .ok()
                                    .and_then(|b| {
                                        open(
                                            key,
                                            aad(tenant, sealed.subject, &event_id, path).as_bytes(),
                                            &b,
                                        )
                                    })
                                    .ok_or_else(|| {
                                        corrupt(
                                            event,
                                            format!("{path}: ciphertext does not authenticate"),
                                        )
                                    })?;
                                serde_json::from_slice(&bytes)
                                    .map_err(|e| corrupt(event, format!("{path}: {e}")))?
                            }
                        }
                    }
                    // Plain text from before encryption: erased with its subject.
                    Some(value) => match subject.and_then(|s| keys.get(&s)) {
                        Some(ReadKey::Forgotten) => erased(kind_of(value)),
                        _ => continue,
                    },
                };
                if let Some(slot) = field_mut(&mut event.payload, path) {
                    *slot = plain;
                }
            }
        }
        Ok(())
    }

    async fn forget(&self, subject: Uuid) -> Result<(), StoreError> {
        self.keyring.forget(subject).await.map_err(unavailable)?;
        self.cache().remove(&subject);
        Ok(())
    }
}

#[cfg(test)]
mod tests;
