//! Personal data in events (ADR 0017): which fields hold it, and the process-wide cipher that
//! encrypts them on append and decrypts them on every read path.
//!
//! A context declares, per event type, the fields that hold personal data and whose data they
//! are (the *subject*). Stores encrypt those fields before they write ([`encrypt`]), so the
//! store, every Kafka copy and every rebuild carry only ciphertext; every path that decodes
//! stored events decrypts them first ([`decrypt`]), beside upcasting. When a subject's key is
//! destroyed ([`forget`]), their fields read as [`ERASED`] (or an empty value of the field's
//! type) everywhere, for good.
//!
//! The kernel only defines the seam; `trellis-privacy` implements it (AES-256-GCM with a data
//! key per subject). Like the upcasters, the cipher is installed once per process, so no read
//! path can forget it; with none installed, events pass through unchanged.

use std::borrow::Cow;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;

use crate::envelope::{NewEvent, RecordedEvent};
use crate::ids::StreamId;
use crate::store::StoreError;

/// What an erased text field reads as.
pub const ERASED: &str = "[erased]";

/// Whose personal data an event's declared fields are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    /// The subject is the stream's entity (a user's own stream).
    Stream,
    /// The subject is the user whose id is at this dotted payload path.
    Field(&'static str),
}

/// The personal-data fields of one event type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PersonalData {
    /// The event type.
    pub event_type: &'static str,
    /// Whose data the fields are.
    pub subject: Subject,
    /// Dotted paths of the fields in the payload.
    pub fields: &'static [&'static str],
}

impl PersonalData {
    /// The subject of an event of this type: the stream's id, or the id at the declared path.
    pub fn subject_of(&self, stream: &StreamId, payload: &serde_json::Value) -> Option<uuid::Uuid> {
        match self.subject {
            Subject::Stream => Some(stream.id()),
            Subject::Field(path) => field(payload, path)
                .and_then(serde_json::Value::as_str)
                .and_then(|s| uuid::Uuid::parse_str(s).ok()),
        }
    }
}

/// The value at a dotted path of a payload.
pub fn field<'a>(payload: &'a serde_json::Value, path: &str) -> Option<&'a serde_json::Value> {
    path.split('.')
        .try_fold(payload, |value, key| value.get(key))
}

/// The value at a dotted path of a payload, mutably.
pub fn field_mut<'a>(
    payload: &'a mut serde_json::Value,
    path: &str,
) -> Option<&'a mut serde_json::Value> {
    path.split('.')
        .try_fold(payload, |value, key| value.get_mut(key))
}

/// Encrypts and decrypts the personal fields of events.
#[async_trait]
pub trait PersonalCipher: Send + Sync {
    /// Whether events of this type have declared personal fields.
    fn declares(&self, event_type: &str) -> bool;

    /// Replaces the declared fields of `events` (about to be appended to `stream`) with
    /// ciphertext; fields of a forgotten subject are stored erased.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the key store cannot be reached; [`StoreError::Backend`]
    /// when an event names no subject where its declaration says it does.
    async fn encrypt(&self, stream: &StreamId, events: &mut [NewEvent]) -> Result<(), StoreError>;

    /// Replaces ciphertext in the declared fields of `events` with the plain values, or with
    /// erased values for forgotten subjects.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] when a ciphertext does not authenticate or its key is missing;
    /// [`StoreError::Unavailable`] when the key store cannot be reached.
    async fn decrypt(&self, events: &mut [RecordedEvent]) -> Result<(), StoreError>;

    /// Destroys `subject`'s data key: their fields read as erased from now on, everywhere.
    /// Idempotent.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the key store cannot be reached.
    async fn forget(&self, subject: uuid::Uuid) -> Result<(), StoreError>;
}

static GLOBAL: RwLock<Option<Arc<dyn PersonalCipher>>> = RwLock::new(None);

/// Installs the process-wide cipher. A later call replaces it: one process serves one
/// database (each test is its own process under nextest, which `scripts/test` runs).
pub fn install(cipher: Arc<dyn PersonalCipher>) {
    *GLOBAL
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(cipher);
}

/// The process-wide cipher, if one is installed.
pub fn installed() -> Option<Arc<dyn PersonalCipher>> {
    GLOBAL
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone()
}

/// Encrypts through the installed cipher (stores call it before writing); a no-op without one.
///
/// # Errors
/// As [`PersonalCipher::encrypt`].
pub async fn encrypt(stream: &StreamId, events: &mut [NewEvent]) -> Result<(), StoreError> {
    match installed() {
        Some(cipher) => cipher.encrypt(stream, events).await,
        None => Ok(()),
    }
}

/// Decrypts through the installed cipher (every path that decodes stored events calls it,
/// before upcasting); a no-op without one.
///
/// # Errors
/// As [`PersonalCipher::decrypt`].
pub async fn decrypt(events: &mut [RecordedEvent]) -> Result<(), StoreError> {
    match installed() {
        Some(cipher) => cipher.decrypt(events).await,
        None => Ok(()),
    }
}

/// Decrypts, then upcasts through the process-wide upcasters: what every read path that
/// decodes stored events does.
///
/// # Errors
/// [`ReadError`] from either step.
pub async fn prepare(events: Vec<RecordedEvent>) -> Result<Vec<RecordedEvent>, ReadError> {
    prepare_with(&crate::upcast::global(), events).await
}

/// As [`prepare`], with these upcasters (a command handler's own).
///
/// # Errors
/// [`ReadError`] from either step.
pub async fn prepare_with(
    upcasters: &crate::upcast::Upcasters,
    mut events: Vec<RecordedEvent>,
) -> Result<Vec<RecordedEvent>, ReadError> {
    decrypt(&mut events).await?;
    if upcasters.is_empty() {
        return Ok(events);
    }
    Ok(events
        .into_iter()
        .map(|e| upcasters.upcast(e))
        .collect::<Result<_, _>>()?)
}

/// As [`prepare`], borrowing: a batch no step changes (no declared personal field, no
/// upcaster) is handed back as it is, without a copy (the consumers' hot path).
///
/// # Errors
/// [`ReadError`] from either step.
pub async fn prepare_slice(
    events: &[RecordedEvent],
) -> Result<Cow<'_, [RecordedEvent]>, ReadError> {
    let upcasters = crate::upcast::global();
    let cipher = installed();
    let changes = events.iter().any(|e| {
        upcasters.applies(e) || cipher.as_ref().is_some_and(|c| c.declares(&e.event_type))
    });
    if !changes {
        return Ok(Cow::Borrowed(events));
    }
    Ok(Cow::Owned(prepare(events.to_vec()).await?))
}

/// Why stored events could not be prepared for decoding.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Decryption failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An upcast step failed.
    #[error(transparent)]
    Upcast(#[from] crate::upcast::UpcastError),
}

/// Destroys `subject`'s data key through the installed cipher.
///
/// # Errors
/// As [`PersonalCipher::forget`]; [`StoreError::Backend`] when no cipher is installed (an
/// erasure that erases nothing must not look like success).
pub async fn forget(subject: uuid::Uuid) -> Result<(), StoreError> {
    match installed() {
        Some(cipher) => cipher.forget(subject).await,
        None => Err(StoreError::Backend(
            "no personal-data cipher is installed: nothing to erase with".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotted_paths_reach_nested_fields() {
        let mut payload = serde_json::json!({"metadata": {"author": "Ada"}, "user_id": "x"});
        assert_eq!(field(&payload, "metadata.author"), Some(&"Ada".into()));
        assert_eq!(field(&payload, "metadata.missing"), None);
        *field_mut(&mut payload, "metadata.author").unwrap() = "B".into();
        assert_eq!(payload["metadata"]["author"], "B");
    }

    #[test]
    fn the_subject_is_the_stream_or_the_declared_field() {
        let user = uuid::Uuid::new_v4();
        let stream = StreamId::new("user", user).unwrap();
        let by_stream = PersonalData {
            event_type: "UserRegistered",
            subject: Subject::Stream,
            fields: &["email"],
        };
        assert_eq!(
            by_stream.subject_of(&stream, &serde_json::json!({})),
            Some(user)
        );
        let other = uuid::Uuid::new_v4();
        let by_field = PersonalData {
            event_type: "ReviewSubmitted",
            subject: Subject::Field("employee_id"),
            fields: &["feedback"],
        };
        let payload = serde_json::json!({"employee_id": other.to_string()});
        assert_eq!(by_field.subject_of(&stream, &payload), Some(other));
        assert_eq!(by_field.subject_of(&stream, &serde_json::json!({})), None);
    }
}
