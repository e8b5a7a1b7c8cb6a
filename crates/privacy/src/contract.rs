//! The contract every [`Keyring`] adapter keeps, written once and instantiated per adapter with
//! [`keyring_contract_tests!`](crate::keyring_contract_tests).

#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

use uuid::Uuid;

use crate::{KeyRecord, Keyring};

/// A subject without a record reads as absent.
pub async fn unknown_subjects_have_no_record(keyring: &dyn Keyring) {
    let subject = Uuid::new_v4();
    assert!(keyring.get(&[subject]).await.unwrap().is_empty());
}

/// A created key reads back; a second create keeps the first key.
pub async fn the_first_key_stands(keyring: &dyn Keyring) {
    let subject = Uuid::new_v4();
    let tenant = Some(Uuid::new_v4());
    let first = keyring.create(subject, tenant, vec![1; 60]).await.unwrap();
    assert_eq!(first, KeyRecord::Wrapped(vec![1; 60]));
    let second = keyring.create(subject, tenant, vec![2; 60]).await.unwrap();
    assert_eq!(second, KeyRecord::Wrapped(vec![1; 60]));
    let read = keyring.get(&[subject, Uuid::new_v4()]).await.unwrap();
    assert_eq!(read.len(), 1);
    assert_eq!(read[&subject], KeyRecord::Wrapped(vec![1; 60]));
}

/// Forgetting destroys the key for good: reads say forgotten, and no new key can be made.
pub async fn forgetting_is_permanent_and_idempotent(keyring: &dyn Keyring) {
    let subject = Uuid::new_v4();
    let other = Uuid::new_v4();
    keyring.create(subject, None, vec![3; 60]).await.unwrap();
    keyring.create(other, None, vec![4; 60]).await.unwrap();
    keyring.forget(subject).await.unwrap();
    keyring.forget(subject).await.unwrap();
    let read = keyring.get(&[subject, other]).await.unwrap();
    assert_eq!(read[&subject], KeyRecord::Forgotten);
    assert_eq!(
        read[&other],
        KeyRecord::Wrapped(vec![4; 60]),
        "others are untouched"
    );
    let again = keyring.create(subject, None, vec![5; 60]).await.unwrap();
    assert_eq!(again, KeyRecord::Forgotten);
}

/// A subject forgotten before any key was made stays forgotten.
pub async fn subjects_without_keys_can_be_forgotten(keyring: &dyn Keyring) {
    let subject = Uuid::new_v4();
    keyring.forget(subject).await.unwrap();
    assert_eq!(
        keyring.create(subject, None, vec![6; 60]).await.unwrap(),
        KeyRecord::Forgotten
    );
}

/// Live keys are listed page by page in subject order, without forgotten subjects.
pub async fn live_keys_come_in_subject_order_without_the_forgotten(keyring: &dyn Keyring) {
    let mut subjects: Vec<Uuid> = (0..5).map(|_| Uuid::new_v4()).collect();
    for (i, subject) in subjects.iter().enumerate() {
        keyring
            .create(*subject, None, vec![i as u8; 60])
            .await
            .unwrap();
    }
    keyring.forget(subjects[2]).await.unwrap();
    let forgotten = subjects.remove(2);
    let mut listed = Vec::new();
    let mut after = None;
    loop {
        let page = keyring.live_keys(after, 2).await.unwrap();
        assert!(page.len() <= 2);
        let Some((last, _)) = page.last() else { break };
        after = Some(*last);
        listed.extend(page);
    }
    let ids: Vec<Uuid> = listed.iter().map(|(s, _)| *s).collect();
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    assert_eq!(ids, sorted, "in subject order");
    assert!(!ids.contains(&forgotten));
    for subject in &subjects {
        let (_, wrapped) = listed.iter().find(|(s, _)| s == subject).unwrap();
        let read = keyring.get(&[*subject]).await.unwrap();
        assert_eq!(read[subject], KeyRecord::Wrapped(wrapped.clone()));
    }
}

/// A key is replaced only while it is the one read: never a forgotten or changed one.
pub async fn keys_are_replaced_only_as_read(keyring: &dyn Keyring) {
    let subject = Uuid::new_v4();
    keyring.create(subject, None, vec![7; 60]).await.unwrap();
    assert!(
        !keyring
            .replace(subject, &[8; 60], vec![9; 60])
            .await
            .unwrap()
    );
    assert!(
        keyring
            .replace(subject, &[7; 60], vec![9; 60])
            .await
            .unwrap()
    );
    assert_eq!(
        keyring.get(&[subject]).await.unwrap()[&subject],
        KeyRecord::Wrapped(vec![9; 60])
    );
    keyring.forget(subject).await.unwrap();
    assert!(
        !keyring
            .replace(subject, &[9; 60], vec![10; 60])
            .await
            .unwrap()
    );
    assert_eq!(
        keyring.get(&[subject]).await.unwrap()[&subject],
        KeyRecord::Forgotten,
        "an erasure stands"
    );
    assert!(
        !keyring
            .replace(Uuid::new_v4(), &[7; 60], vec![1; 60])
            .await
            .unwrap()
    );
}

/// Instantiates the keyring contract for an adapter: `$make` is an async expression
/// evaluating to something that derefs to a [`Keyring`].
#[macro_export]
macro_rules! keyring_contract_tests {
    ($make:expr) => {
        #[tokio::test]
        async fn unknown_subjects_have_no_record() {
            let keyring = $make;
            $crate::contract::unknown_subjects_have_no_record(&keyring).await;
        }
        #[tokio::test]
        async fn the_first_key_stands() {
            let keyring = $make;
            $crate::contract::the_first_key_stands(&keyring).await;
        }
        #[tokio::test]
        async fn forgetting_is_permanent_and_idempotent() {
            let keyring = $make;
            $crate::contract::forgetting_is_permanent_and_idempotent(&keyring).await;
        }
        #[tokio::test]
        async fn subjects_without_keys_can_be_forgotten() {
            let keyring = $make;
            $crate::contract::subjects_without_keys_can_be_forgotten(&keyring).await;
        }
        #[tokio::test]
        async fn live_keys_come_in_subject_order_without_the_forgotten() {
            let keyring = $make;
            $crate::contract::live_keys_come_in_subject_order_without_the_forgotten(&keyring).await;
        }
        #[tokio::test]
        async fn keys_are_replaced_only_as_read() {
            let keyring = $make;
            $crate::contract::keys_are_replaced_only_as_read(&keyring).await;
        }
    };
}
