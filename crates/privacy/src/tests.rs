#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use serde_json::json;
use trellis_kernel::personal::{ERASED, PersonalCipher};
use trellis_kernel::{
    GlobalPosition, Metadata, NewEvent, PersonalData, RecordedEvent, StoreError, StreamId, Subject,
    TenantId,
};
use uuid::Uuid;

use super::{
    FieldCipher, KeyRecord, Keyring, KeyringError, MasterKey, MasterKeyError, MemoryKeyring,
    RotationReport, is_ciphertext, rotate, rotate_paged,
};

crate::keyring_contract_tests!(MemoryKeyring::new());

const DECLARED: [PersonalData; 2] = [
    PersonalData {
        event_type: "UserRegistered",
        subject: Subject::Stream,
        fields: &["email", "display_name"],
    },
    PersonalData {
        event_type: "MatchQueueJoined",
        subject: Subject::Field("learner_id"),
        fields: &["profile.goals", "profile.answers", "profile.tags"],
    },
];

fn cipher_with(master: MasterKey, keyring: Arc<MemoryKeyring>) -> FieldCipher {
    FieldCipher::new(master, keyring, DECLARED)
}

fn master() -> MasterKey {
    MasterKey::from_bytes([7; 32])
}

fn metadata(tenant: TenantId) -> Metadata {
    Metadata {
        tenant_id: Some(tenant),
        ..Metadata::default()
    }
}

fn registered(user: Uuid, tenant: TenantId, email: &str) -> (StreamId, NewEvent) {
    let stream = StreamId::new("user", user).unwrap();
    let event = NewEvent::new(
        "UserRegistered",
        1,
        json!({"email": email, "display_name": "Ada Lovelace", "roles": ["learner"]}),
        metadata(tenant),
    )
    .unwrap();
    (stream, event)
}

fn joined(learner: Uuid, tenant: TenantId) -> (StreamId, NewEvent) {
    let stream = StreamId::new("pool", Uuid::new_v4()).unwrap();
    let event = NewEvent::new(
        "MatchQueueJoined",
        1,
        json!({"learner_id": learner.to_string(), "profile": {
            "goals": "become a data engineer", "answers": {"why": "because"},
            "tags": ["x"], "timezone": "UTC"}}),
        metadata(tenant),
    )
    .unwrap();
    (stream, event)
}

fn recorded(stream: &StreamId, event: NewEvent) -> RecordedEvent {
    RecordedEvent {
        event_id: event.event_id,
        stream_id: stream.clone(),
        stream_version: 1,
        global_position: GlobalPosition(1),
        event_type: event.event_type,
        schema_version: event.schema_version,
        payload: event.payload,
        metadata: event.metadata,
        recorded_at: chrono::Utc::now(),
    }
}

async fn stored(cipher: &FieldCipher, stream: &StreamId, event: NewEvent) -> RecordedEvent {
    let mut events = vec![event];
    cipher.encrypt(stream, &mut events).await.unwrap();
    recorded(stream, events.remove(0))
}

#[tokio::test]
async fn declared_fields_are_stored_as_ciphertext_and_read_back_as_written() {
    let cipher = cipher_with(master(), Arc::new(MemoryKeyring::new()));
    let tenant = TenantId::new();
    let (stream, event) = registered(Uuid::new_v4(), tenant, "ada@example.com");
    let original = event.payload.clone();
    let event = stored(&cipher, &stream, event).await;
    let text = event.payload.to_string();
    assert!(
        !text.contains("ada@example.com") && !text.contains("Lovelace"),
        "{text}"
    );
    assert!(is_ciphertext(&event.payload["email"]));
    assert!(is_ciphertext(&event.payload["display_name"]));
    assert_eq!(
        event.payload["roles"],
        json!(["learner"]),
        "undeclared fields stay plain"
    );
    let mut events = vec![event];
    cipher.decrypt(&mut events).await.unwrap();
    assert_eq!(events[0].payload, original);

    let (stream, event) = joined(Uuid::new_v4(), tenant);
    let original = event.payload.clone();
    let event = stored(&cipher, &stream, event).await;
    assert!(
        is_ciphertext(&event.payload["profile"]["answers"]),
        "objects too"
    );
    assert_eq!(event.payload["profile"]["timezone"], "UTC");
    let mut events = vec![event];
    cipher.decrypt(&mut events).await.unwrap();
    assert_eq!(events[0].payload, original);
}

#[tokio::test]
async fn a_ciphertext_moved_to_another_event_or_field_does_not_decrypt() {
    let cipher = cipher_with(master(), Arc::new(MemoryKeyring::new()));
    let tenant = TenantId::new();
    let user = Uuid::new_v4();
    let (stream, first) = registered(user, tenant, "a@example.com");
    let first = stored(&cipher, &stream, first).await;
    let (_, second) = registered(user, tenant, "b@example.com");
    let mut second = stored(&cipher, &stream, second).await;
    second.payload["email"] = first.payload["email"].clone();
    let error = cipher.decrypt(&mut [second]).await.unwrap_err();
    assert!(matches!(error, StoreError::Corrupt { .. }), "{error:?}");

    let mut swapped = first.clone();
    swapped.payload["display_name"] = first.payload["email"].clone();
    assert!(cipher.decrypt(&mut [swapped]).await.is_err());
}

#[tokio::test]
async fn forgetting_a_subject_erases_their_fields_everywhere_and_no_one_elses() {
    let keyring = Arc::new(MemoryKeyring::new());
    let cipher = cipher_with(master(), Arc::clone(&keyring));
    let tenant = TenantId::new();
    let (ada, other) = (Uuid::new_v4(), Uuid::new_v4());
    let (stream, event) = registered(ada, tenant, "ada@example.com");
    let ada_event = stored(&cipher, &stream, event).await;
    let (stream, event) = joined(ada, tenant);
    let ada_joined = stored(&cipher, &stream, event).await;
    let (stream, event) = registered(other, tenant, "grace@example.com");
    let other_event = stored(&cipher, &stream, event).await;

    cipher.forget(ada).await.unwrap();
    cipher.forget(ada).await.unwrap();
    let mut events = vec![ada_event, ada_joined, other_event];
    cipher.decrypt(&mut events).await.unwrap();
    assert_eq!(events[0].payload["email"], ERASED);
    assert_eq!(events[0].payload["display_name"], ERASED);
    assert_eq!(events[1].payload["profile"]["goals"], ERASED);
    assert_eq!(events[1].payload["profile"]["answers"], json!({}));
    assert_eq!(events[1].payload["profile"]["tags"], json!([]));
    assert_eq!(events[2].payload["email"], "grace@example.com");

    // Another process (a second cipher over the same keys) sees the erasure too.
    let fresh = cipher_with(master(), keyring);
    let (stream, event) = registered(ada, tenant, "ada@example.com");
    let later = stored(&fresh, &stream, event).await;
    assert_eq!(
        later.payload["email"], ERASED,
        "a forgotten subject's new data is not kept"
    );
}

#[tokio::test]
async fn plain_values_of_events_from_before_encryption_and_undeclared_fields_pass_through() {
    let cipher = cipher_with(master(), Arc::new(MemoryKeyring::new()));
    let tenant = TenantId::new();
    let (stream, event) = registered(Uuid::new_v4(), tenant, "old@example.com");
    let mut old = recorded(&stream, event);
    old.payload["roles"] = json!("enc:v1:not-really");
    let before = old.payload.clone();
    let mut events = vec![old.clone()];
    cipher.decrypt(&mut events).await.unwrap();
    assert_eq!(events[0].payload, before);

    // Once their subject is forgotten, plain values from before encryption read erased too.
    cipher.forget(stream.id()).await.unwrap();
    let mut events = vec![old];
    cipher.decrypt(&mut events).await.unwrap();
    assert_eq!(events[0].payload["email"], ERASED);
    assert_eq!(
        events[0].payload["roles"], "enc:v1:not-really",
        "undeclared: untouched"
    );
}

#[tokio::test]
async fn another_process_erasure_is_seen_by_the_next_read_at_once() {
    let keyring = Arc::new(MemoryKeyring::new());
    let reader = cipher_with(master(), Arc::clone(&keyring));
    let eraser = cipher_with(master(), Arc::clone(&keyring));
    let user = Uuid::new_v4();
    let (stream, event) = registered(user, TenantId::new(), "ada@example.com");
    let event = stored(&reader, &stream, event).await;
    let mut read = vec![event.clone()];
    reader.decrypt(&mut read).await.unwrap();
    assert_eq!(
        read[0].payload["email"], "ada@example.com",
        "the reader caches the key"
    );
    eraser.forget(user).await.unwrap();
    let mut read = vec![event];
    reader.decrypt(&mut read).await.unwrap();
    assert_eq!(read[0].payload["email"], ERASED);
}

#[tokio::test]
async fn a_different_master_key_fails_loudly_instead_of_erasing() {
    let keyring = Arc::new(MemoryKeyring::new());
    let cipher = cipher_with(master(), Arc::clone(&keyring));
    let (stream, event) = registered(Uuid::new_v4(), TenantId::new(), "ada@example.com");
    let event = stored(&cipher, &stream, event).await;
    let wrong = cipher_with(MasterKey::from_bytes([8; 32]), keyring);
    let error = wrong.decrypt(&mut [event]).await.unwrap_err();
    assert!(matches!(error, StoreError::Backend(_)), "{error:?}");
}

#[tokio::test]
async fn a_rotated_master_key_reads_everything_the_old_one_wrapped_and_erasures_stand() {
    let keyring = Arc::new(MemoryKeyring::new());
    let old = cipher_with(master(), Arc::clone(&keyring));
    let tenant = TenantId::new();
    let (kept, forgotten) = (Uuid::new_v4(), Uuid::new_v4());
    let (stream, event) = registered(kept, tenant, "ada@example.com");
    let kept_event = stored(&old, &stream, event).await;
    let (stream, event) = registered(forgotten, tenant, "bob@example.com");
    let forgotten_event = stored(&old, &stream, event).await;
    old.forget(forgotten).await.unwrap();
    // A data key wrapped by a key that is neither the new nor the previous one.
    let (stranger, stranger_key) = (Uuid::new_v4(), MasterKey::from_bytes([9; 32]));
    let (stream, event) = registered(stranger, tenant, "eve@example.com");
    stored(
        &cipher_with(stranger_key, Arc::clone(&keyring)),
        &stream,
        event,
    )
    .await;

    let new = MasterKey::from_bytes([8; 32]);
    // During the rotation, a process configured with both keys reads what the old one wrapped.
    let both = cipher_with(new.clone().with_previous(master()), Arc::clone(&keyring));
    let mut read = [kept_event.clone()];
    both.decrypt(&mut read).await.unwrap();
    assert_eq!(read[0].payload["email"], "ada@example.com");

    let report = rotate(&new.clone().with_previous(master()), &*keyring)
        .await
        .unwrap();
    assert_eq!(
        report,
        RotationReport {
            rewrapped: 1,
            current: 0,
            unreadable: 1,
            skipped: 0
        }
    );
    let only_new = cipher_with(new.clone(), Arc::clone(&keyring));
    let mut read = [kept_event.clone(), forgotten_event];
    only_new.decrypt(&mut read).await.unwrap();
    assert_eq!(read[0].payload["email"], "ada@example.com");
    assert_eq!(read[1].payload["email"], ERASED, "an erasure stands");
    let error = cipher_with(master(), Arc::clone(&keyring))
        .decrypt(&mut [kept_event])
        .await
        .unwrap_err();
    assert!(
        matches!(error, StoreError::Backend(_)),
        "the old key no longer opens it: {error:?}"
    );
    let again = rotate(&new.with_previous(master()), &*keyring)
        .await
        .unwrap();
    assert_eq!(
        (again.rewrapped, again.current, again.unreadable),
        (0, 1, 1)
    );
    assert_eq!(keyring.live_keys(None, 10).await.unwrap().len(), 2);
}

/// A keyring on which every key is erased just before the rotation replaces it.
struct ErasedMeanwhile(MemoryKeyring);

#[async_trait::async_trait]
impl Keyring for ErasedMeanwhile {
    async fn get(
        &self,
        subjects: &[Uuid],
    ) -> Result<std::collections::HashMap<Uuid, KeyRecord>, KeyringError> {
        self.0.get(subjects).await
    }
    async fn create(
        &self,
        subject: Uuid,
        tenant: Option<Uuid>,
        wrapped: Vec<u8>,
    ) -> Result<KeyRecord, KeyringError> {
        self.0.create(subject, tenant, wrapped).await
    }
    async fn forget(&self, subject: Uuid) -> Result<(), KeyringError> {
        self.0.forget(subject).await
    }
    async fn live_keys(
        &self,
        after: Option<Uuid>,
        limit: usize,
    ) -> Result<Vec<(Uuid, Vec<u8>)>, KeyringError> {
        self.0.live_keys(after, limit).await
    }
    async fn replace(&self, subject: Uuid, old: &[u8], new: Vec<u8>) -> Result<bool, KeyringError> {
        self.0.forget(subject).await?;
        self.0.replace(subject, old, new).await
    }
}

#[tokio::test]
async fn a_rotation_pages_through_every_key_and_leaves_keys_erased_meanwhile_erased() {
    let keyring = Arc::new(MemoryKeyring::new());
    let old = cipher_with(master(), Arc::clone(&keyring));
    let tenant = TenantId::new();
    let mut events = Vec::new();
    for n in 0..7 {
        let (stream, event) = registered(Uuid::new_v4(), tenant, &format!("{n}@example.com"));
        events.push(stored(&old, &stream, event).await);
    }
    let rotating = MasterKey::from_bytes([8; 32]).with_previous(master());
    let report = rotate_paged(&rotating, &*keyring, 2).await.unwrap();
    assert_eq!(report.rewrapped, 7, "{report:?}");
    let mut read = events.clone();
    cipher_with(MasterKey::from_bytes([8; 32]), Arc::clone(&keyring))
        .decrypt(&mut read)
        .await
        .unwrap();
    for (n, event) in read.iter().enumerate() {
        assert_eq!(event.payload["email"], format!("{n}@example.com"));
    }

    let racing = ErasedMeanwhile(MemoryKeyring::new());
    let subject = Uuid::new_v4();
    racing
        .create(subject, None, master().wrap(subject, &[3; 32]))
        .await
        .unwrap();
    let report = rotate(&rotating, &racing).await.unwrap();
    assert_eq!((report.rewrapped, report.skipped), (0, 1));
    assert_eq!(
        racing.get(&[subject]).await.unwrap()[&subject],
        KeyRecord::Forgotten
    );
}

#[test]
fn a_malformed_previous_master_key_is_named() {
    let current = Some(MasterKey::generate_base64());
    assert!(
        !MasterKey::from_settings(current.clone(), None)
            .unwrap()
            .rotating()
    );
    assert!(
        !MasterKey::from_settings(current.clone(), Some(" ".into()))
            .unwrap()
            .rotating()
    );
    assert!(
        MasterKey::from_settings(current.clone(), Some(MasterKey::generate_base64()))
            .unwrap()
            .rotating()
    );
    let error = MasterKey::from_settings(current, Some("c2hvcnQ=".into())).unwrap_err();
    assert_eq!(
        error,
        MasterKeyError::Previous(Box::new(MasterKeyError::Length(5)))
    );
    assert!(
        error.to_string().starts_with("TRELLIS_PREVIOUS_MASTER_KEY"),
        "{error}"
    );
}

#[tokio::test]
async fn an_event_without_its_declared_subject_is_refused() {
    let cipher = cipher_with(master(), Arc::new(MemoryKeyring::new()));
    let (stream, mut event) = joined(Uuid::new_v4(), TenantId::new());
    event.payload["learner_id"] = json!(null);
    let error = cipher.encrypt(&stream, &mut [event]).await.unwrap_err();
    assert!(matches!(error, StoreError::Backend(_)), "{error:?}");
}

#[test]
fn master_keys_are_32_bytes_of_base64() {
    let generated = MasterKey::generate_base64();
    assert!(MasterKey::from_base64(&generated).is_ok());
    assert_eq!(
        MasterKey::from_base64("not base64!").unwrap_err(),
        MasterKeyError::Encoding
    );
    assert_eq!(
        MasterKey::from_base64("c2hvcnQ=").unwrap_err(),
        MasterKeyError::Length(5)
    );
    assert_eq!(
        format!("{:?}", MasterKey::from_bytes([1; 32])),
        "MasterKey(..)"
    );
}
