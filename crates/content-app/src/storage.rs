//! File storage for uploads (ADR 0012): object storage through `object_store`,
//! content-addressed by SHA-256 (`sha256/<hex>`), written as a stream with a size cap so a
//! file is never held whole in memory.
//!
//! A put streams into a temporary object (`tmp/<uuid>`) while hashing, then copies it to its
//! content address if no object is there yet (the same bytes uploaded twice are stored once)
//! and deletes the temporary one. A stream over the cap, or one that fails, aborts the
//! multipart write: nothing is left behind at a content address.

use std::sync::Arc;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, WriteMultipart};
use sha2::{Digest, Sha256};
use trellis_content::StoredFile;

/// Why a put or get failed.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The stream passed the size cap (a 413 at the edge).
    #[error("the file is larger than {max} bytes")]
    TooLarge {
        /// The cap.
        max: u64,
    },
    /// The stream had no bytes (a 422 naming `file` at the edge).
    #[error("the file is empty")]
    Empty,
    /// The upload's own stream failed (the client went away, say).
    #[error("reading the upload failed")]
    Source(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// No object at this key.
    #[error("no stored file {0}")]
    NotFound(String),
    /// A storage URL this build does not serve.
    #[error("unsupported storage URL `{0}`: use file:///absolute/path or s3://bucket")]
    UnsupportedUrl(String),
    /// The object store failed.
    #[error("object storage failed")]
    Store(#[from] object_store::Error),
}

/// What a put stored: the address, hash and size (the media type is the caller's sniffing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// `sha256/<hex>`.
    pub key: String,
    /// 64 lowercase hex digits.
    pub sha256: String,
    /// Bytes.
    pub size: u64,
}

/// Content-addressed file storage.
#[derive(Clone)]
pub struct ContentStorage {
    store: Arc<dyn ObjectStore>,
}

impl std::fmt::Debug for ContentStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContentStorage")
            .field("store", &self.store.to_string())
            .finish()
    }
}

impl ContentStorage {
    /// Storage over any object store.
    pub fn new(store: Arc<dyn ObjectStore>) -> Self {
        Self { store }
    }

    /// Storage in S3 bucket `bucket` (or an S3-compatible server at `endpoint`), with
    /// credentials from the environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
    /// `AWS_REGION`, default `us-east-1`) unless given.
    ///
    /// # Errors
    /// The builder's refusal (a bad endpoint, say).
    pub fn s3(
        bucket: &str,
        endpoint: Option<&str>,
        credentials: Option<(&str, &str)>,
    ) -> Result<Self, StorageError> {
        use object_store::aws::AmazonS3Builder;
        // HTTPS to S3 goes through rustls with ring's primitives; a provider installed
        // already (by this or another component) is as good.
        // (`default_provider` is deprecated for lacking post-quantum key exchange, which is
        // only in aws-lc-rs: the C build this avoids.)
        #[allow(deprecated)]
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
        if std::env::var("AWS_REGION").is_err() && std::env::var("AWS_DEFAULT_REGION").is_err() {
            builder = builder.with_region("us-east-1");
        }
        if let Some(endpoint) = endpoint {
            builder = builder
                .with_endpoint(endpoint)
                .with_allow_http(endpoint.starts_with("http://"))
                .with_virtual_hosted_style_request(false);
        }
        if let Some((key, secret)) = credentials {
            builder = builder
                .with_access_key_id(key)
                .with_secret_access_key(secret);
        }
        Ok(Self::new(Arc::new(builder.build()?)))
    }

    /// Storage at `url`: `file:///absolute/path` (the folder is made if missing) or
    /// `s3://bucket` (AWS, credentials from the environment).
    ///
    /// # Errors
    /// [`StorageError::UnsupportedUrl`] for other schemes; folder creation failures.
    pub fn from_url(url: &str) -> Result<Self, StorageError> {
        Self::open(url, None, None)
    }

    /// Storage as configured: `TRELLIS_STORAGE_URL`, for `s3://` with the endpoint and
    /// credentials of the settings.
    ///
    /// # Errors
    /// As [`Self::from_url`].
    pub fn from_settings(
        settings: &crate::settings::ContentSettings,
    ) -> Result<Self, StorageError> {
        let credentials = settings
            .s3_credentials
            .as_ref()
            .map(|(key, secret)| (key.as_str(), secret.as_str()));
        Self::open(
            &settings.storage_url,
            settings.s3_endpoint.as_deref(),
            credentials,
        )
    }

    fn open(
        url: &str,
        endpoint: Option<&str>,
        credentials: Option<(&str, &str)>,
    ) -> Result<Self, StorageError> {
        if let Some(bucket) = url.strip_prefix("s3://") {
            let bucket = bucket.trim_end_matches('/');
            if bucket.len() < 3 || bucket.contains('/') {
                return Err(StorageError::UnsupportedUrl(url.to_owned()));
            }
            return Self::s3(bucket, endpoint, credentials);
        }
        let Some(path) = url.strip_prefix("file://").filter(|p| p.starts_with('/')) else {
            return Err(StorageError::UnsupportedUrl(url.to_owned()));
        };
        std::fs::create_dir_all(path).map_err(|e| StorageError::Source(Box::new(e)))?;
        let local = object_store::local::LocalFileSystem::new_with_prefix(path)?;
        Ok(Self::new(Arc::new(local)))
    }

    /// Streams `chunks` into storage, at most `max_bytes`.
    ///
    /// # Errors
    /// [`StorageError::TooLarge`], [`StorageError::Empty`], the source's or the store's
    /// failure; in every case nothing is left at a content address.
    pub async fn put<S, E>(&self, mut chunks: S, max_bytes: u64) -> Result<Stored, StorageError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::error::Error + Send + Sync + 'static,
    {
        let temporary = Path::from(format!("tmp/{}", uuid::Uuid::now_v7()));
        let upload = self.store.put_multipart(&temporary).await?;
        let mut writer = WriteMultipart::new(upload);
        let mut hasher = Sha256::new();
        let mut size: u64 = 0;
        let failure = loop {
            let chunk = match chunks.next().await {
                None => break None,
                Some(Err(e)) => break Some(StorageError::Source(Box::new(e))),
                Some(Ok(chunk)) => chunk,
            };
            size += chunk.len() as u64;
            if size > max_bytes {
                break Some(StorageError::TooLarge { max: max_bytes });
            }
            hasher.update(&chunk);
            if let Err(e) = writer.wait_for_capacity(4).await {
                break Some(e.into());
            }
            writer.put(chunk);
        };
        let failure = failure.or((size == 0).then_some(StorageError::Empty));
        if let Some(failure) = failure {
            // Best effort: a failed abort leaves only a temporary object, which a sweep of
            // `tmp/` collects; never an object at a content address.
            let _ = writer.abort().await;
            let _ = self.store.delete(&temporary).await;
            return Err(failure);
        }
        writer.finish().await?;
        let sha256 = format!("{:x}", hasher.finalize());
        let key = StoredFile::key_of(&sha256);
        let address = Path::from(key.as_str());
        let copied = match self.store.copy_if_not_exists(&temporary, &address).await {
            // S3 offers no conditional copy without extra configuration: the address holds
            // these very bytes if anything, so a plain copy after a look is as good.
            Err(
                object_store::Error::NotSupported { .. }
                | object_store::Error::NotImplemented { .. },
            ) => match self.store.head(&address).await {
                Ok(_) => Ok(()),
                Err(object_store::Error::NotFound { .. }) => {
                    self.store.copy(&temporary, &address).await
                }
                Err(e) => Err(e),
            },
            other => other,
        };
        let _ = self.store.delete(&temporary).await;
        match copied {
            Ok(()) | Err(object_store::Error::AlreadyExists { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        Ok(Stored { key, sha256, size })
    }

    /// The bytes at `key`, as a stream.
    ///
    /// # Errors
    /// [`StorageError::NotFound`]; the store's failure.
    pub async fn get(
        &self,
        key: &str,
    ) -> Result<impl Stream<Item = Result<Bytes, object_store::Error>> + use<>, StorageError> {
        match self.store.get(&Path::from(key)).await {
            Ok(result) => Ok(result.into_stream()),
            Err(object_store::Error::NotFound { .. }) => {
                Err(StorageError::NotFound(key.to_owned()))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Whether an object is at `key`.
    ///
    /// # Errors
    /// The store's failure.
    pub async fn exists(&self, key: &str) -> Result<bool, StorageError> {
        match self.store.head(&Path::from(key)).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes what no event references: objects at content addresses not in `referenced`,
    /// and temporary objects (an upload that died mid-way), in both cases only when last
    /// written before `written_before` (an upload in flight stores its bytes before its
    /// event is appended). Returns how many objects were deleted.
    ///
    /// # Errors
    /// The store's failure (what was deleted before it stays deleted).
    pub async fn sweep(
        &self,
        referenced: &std::collections::HashSet<String>,
        written_before: chrono::DateTime<chrono::Utc>,
    ) -> Result<usize, StorageError> {
        let mut deleted = 0;
        for prefix in ["sha256", "tmp"] {
            let mut listing = self.store.list(Some(&Path::from(prefix)));
            let mut doomed = Vec::new();
            while let Some(meta) = listing.next().await {
                let meta = meta?;
                let key = meta.location.to_string();
                if meta.last_modified < written_before && !referenced.contains(&key) {
                    doomed.push(meta.location);
                }
            }
            for location in doomed {
                match self.store.delete(&location).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => deleted += 1,
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(deleted)
    }

    /// Keys under `prefix` (`sha256`, `tmp`), for sweeps and tests.
    ///
    /// # Errors
    /// The store's failure.
    pub async fn keys(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        let mut keys = Vec::new();
        let mut listing = self.store.list(Some(&Path::from(prefix)));
        while let Some(meta) = listing.next().await {
            keys.push(meta?.location.to_string());
        }
        keys.sort();
        Ok(keys)
    }
}
