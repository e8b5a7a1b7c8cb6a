//! The storage contract, against a real folder (object_store's local file system) and a
//! real S3-compatible server (moto, started by `scripts/setup`; `TRELLIS_S3_ENDPOINT`,
//! default `http://127.0.0.1:5055`): every test runs on both.

#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use futures::{StreamExt, stream};
use sha2::{Digest, Sha256};
use trellis_content_app::storage::{ContentStorage, StorageError};

fn folder() -> ContentStorage {
    let dir = std::env::temp_dir().join(format!("trellis-storage-{}", uuid::Uuid::now_v7()));
    let url = format!("file://{}", dir.display());
    ContentStorage::from_url(&url).unwrap()
}

/// A fresh bucket on the S3-compatible test server.
async fn bucket() -> ContentStorage {
    let endpoint =
        std::env::var("TRELLIS_S3_ENDPOINT").unwrap_or_else(|_| "http://127.0.0.1:5055".into());
    let bucket = format!("trellis-{}", uuid::Uuid::now_v7().simple());
    let created = reqwest::Client::new()
        .put(format!("{endpoint}/{bucket}"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("no S3 server at {endpoint} ({e}): scripts/setup starts moto"));
    assert!(
        created.status().is_success(),
        "create bucket: {}",
        created.status()
    );
    // Through the settings, as the service opens it (`TRELLIS_STORAGE_URL=s3://…` with
    // `TRELLIS_S3_ENDPOINT`).
    let settings = trellis_content_app::ContentSettings::from_lookup(|name| match name {
        "TRELLIS_STORAGE_URL" => Some(format!("s3://{bucket}")),
        "TRELLIS_S3_ENDPOINT" => Some(endpoint.clone()),
        "AWS_ACCESS_KEY_ID" | "AWS_SECRET_ACCESS_KEY" => Some("test".into()),
        _ => None,
    })
    .unwrap();
    ContentStorage::from_settings(&settings).unwrap()
}

async fn both() -> Vec<(&'static str, ContentStorage)> {
    vec![("folder", folder()), ("s3", bucket().await)]
}

fn chunks(
    parts: Vec<&'static [u8]>,
) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> + Unpin {
    stream::iter(parts.into_iter().map(|p| Ok(Bytes::from_static(p))))
}

#[tokio::test]
async fn a_file_is_stored_once_at_its_sha256_and_read_back() {
    for (_, storage) in both().await {
        let stored = storage
            .put(
                chunks(vec![b"# Ownership\n", b"Every value has one owner.\n"]),
                1_000,
            )
            .await
            .unwrap();
        let expected = format!(
            "{:x}",
            Sha256::digest(b"# Ownership\nEvery value has one owner.\n")
        );
        assert_eq!(stored.sha256, expected);
        assert_eq!(stored.key, format!("sha256/{expected}"));
        assert_eq!(
            stored.size,
            b"# Ownership\nEvery value has one owner.\n".len() as u64
        );
        // The same bytes again: the same address, one object, no temporary left.
        let again = storage
            .put(
                chunks(vec![b"# Ownership\nEvery value has one owner.\n"]),
                1_000,
            )
            .await
            .unwrap();
        assert_eq!(again, stored);
        assert_eq!(
            storage.keys("sha256").await.unwrap(),
            vec![stored.key.clone()]
        );
        assert!(storage.keys("tmp").await.unwrap().is_empty());
        let mut read = Vec::new();
        let mut body = storage.get(&stored.key).await.unwrap();
        while let Some(chunk) = body.next().await {
            read.extend_from_slice(&chunk.unwrap());
        }
        assert_eq!(read, b"# Ownership\nEvery value has one owner.\n");
        assert!(storage.exists(&stored.key).await.unwrap());
    }
}

#[tokio::test]
async fn too_large_empty_and_broken_uploads_leave_nothing() {
    for (_, storage) in both().await {
        let too_large = storage
            .put(chunks(vec![b"0123456789", b"0123456789"]), 15)
            .await
            .unwrap_err();
        assert!(
            matches!(too_large, StorageError::TooLarge { max: 15 }),
            "{too_large:?}"
        );
        let empty = storage.put(chunks(vec![]), 15).await.unwrap_err();
        assert!(matches!(empty, StorageError::Empty), "{empty:?}");
        let broken = stream::iter(vec![
            Ok(Bytes::from_static(b"start")),
            Err(std::io::Error::other("client went away")),
        ]);
        let failed = storage.put(broken, 1_000).await.unwrap_err();
        assert!(matches!(failed, StorageError::Source(_)), "{failed:?}");
        assert!(storage.keys("sha256").await.unwrap().is_empty());
        assert!(storage.keys("tmp").await.unwrap().is_empty());
        assert!(matches!(
            storage.get("sha256/nothing").await.err(),
            Some(StorageError::NotFound(_))
        ));
    }
}

#[tokio::test]
async fn the_sweep_deletes_only_old_unreferenced_objects() {
    for (name, storage) in both().await {
        let kept = storage.put(chunks(vec![b"referenced"]), 100).await.unwrap();
        let orphan = storage.put(chunks(vec![b"orphaned"]), 100).await.unwrap();
        let referenced: std::collections::HashSet<String> = [kept.key.clone()].into();
        // Everything is younger than an hour: nothing goes (an upload may be in flight).
        let an_hour_ago = chrono::Utc::now() - chrono::Duration::hours(1);
        assert_eq!(
            storage.sweep(&referenced, an_hour_ago).await.unwrap(),
            0,
            "{name}"
        );
        let later = chrono::Utc::now() + chrono::Duration::seconds(5);
        assert_eq!(
            storage.sweep(&referenced, later).await.unwrap(),
            1,
            "{name}"
        );
        assert!(storage.exists(&kept.key).await.unwrap(), "{name}");
        assert!(!storage.exists(&orphan.key).await.unwrap(), "{name}");
    }
}

#[test]
fn only_file_and_s3_urls_are_served() {
    for url in [
        "s3://a/b",
        "gs://bucket",
        "file://relative/path",
        "/no/scheme",
    ] {
        assert!(matches!(
            ContentStorage::from_url(url),
            Err(StorageError::UnsupportedUrl(_))
        ));
    }
}
