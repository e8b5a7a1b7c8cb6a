//! Use cases of contents: store an upload's file (sniffed from its first bytes, streamed to
//! object storage under the size limit), upload, upload a new version, archive, re-atomize,
//! read, list, and the atoms of a content.
//!
//! Who may do what: admins, managers and instructors upload and add versions; admins and the
//! uploader archive; admins re-atomize (a newer atomizer). Everyone of the organization reads;
//! anyone outside it finds nothing ([`UseCaseError::NotFound`]).

use std::sync::Arc;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use trellis_content::content::{Content, ContentCommand, ContentError};
use trellis_content::{ContentMetadata, StoredFile};
use trellis_extract::{SNIFF_BYTES, SniffError, sniff};
use trellis_identity::{Actor, Role};
use trellis_runtime::{Commands, UseCaseError, Written};
use uuid::Uuid;

use crate::library::{self, AtomRow, ContentLibrary, ContentRow};
use crate::settings::ContentSettings;
use crate::storage::{ContentStorage, StorageError};

/// What content use cases answer when they refuse.
pub type LibraryError = UseCaseError<ContentError>;

/// A content the actor may add a version to ([`Library::version_target`]).
#[derive(Debug, Clone, Copy)]
pub struct VersionTarget(Uuid);

/// Roles that upload.
pub const UPLOADERS: &[Role] = &[Role::Admin, Role::Manager, Role::Instructor];

/// Why an uploaded file was refused or could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// Over the size limit (413).
    #[error("the file is larger than {max} bytes")]
    TooLarge {
        /// The limit.
        max: u64,
    },
    /// Empty (422).
    #[error("the file is empty")]
    Empty,
    /// Not an accepted type, or bytes that contradict the name (415).
    #[error(transparent)]
    Type(SniffError),
    /// The client's stream broke (400).
    #[error("the upload stream broke: {0}")]
    Stream(String),
    /// Object storage failed (503).
    #[error("object storage failed")]
    Storage(#[source] StorageError),
}

/// The content use cases.
#[derive(Clone)]
pub struct Library {
    /// Commands and read-your-writes waits.
    pub commands: Commands,
    /// Where files go.
    pub storage: ContentStorage,
    /// Settings.
    pub settings: Arc<ContentSettings>,
}

impl Library {
    /// Stores a file streamed from the client: reads up to [`SNIFF_BYTES`], sniffs the type
    /// (refusing before anything is stored), then streams head and rest to storage under
    /// `TRELLIS_UPLOAD_MAX_BYTES`.
    ///
    /// # Errors
    /// [`FileError`].
    pub async fn store_file<S, E>(
        &self,
        chunks: S,
        filename: Option<&str>,
        declared: Option<&str>,
    ) -> Result<StoredFile, FileError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::error::Error + Send + Sync + 'static,
    {
        // Fused: the head may read the stream to its end, and storage reads on after it.
        let mut chunks = chunks.fuse();
        let mut head: Vec<Bytes> = Vec::new();
        let mut head_len = 0;
        while head_len < SNIFF_BYTES {
            match chunks.next().await {
                Some(Ok(chunk)) => {
                    head_len += chunk.len();
                    head.push(chunk);
                }
                Some(Err(e)) => return Err(FileError::Stream(e.to_string())),
                None => break,
            }
        }
        let joined: Vec<u8> = head.iter().flat_map(|c| c.iter().copied()).collect();
        let media_type = match sniff(&joined, filename, declared) {
            Ok(media_type) => media_type,
            Err(SniffError::Empty) => return Err(FileError::Empty),
            Err(e) => return Err(FileError::Type(e)),
        };
        let all = futures::stream::iter(head.into_iter().map(Ok)).chain(chunks);
        let stored = self
            .storage
            .put(Box::pin(all), self.settings.upload_max_bytes)
            .await
            .map_err(|e| match e {
                StorageError::TooLarge { max } => FileError::TooLarge { max },
                StorageError::Empty => FileError::Empty,
                StorageError::Source(e) => FileError::Stream(e.to_string()),
                other => FileError::Storage(other),
            })?;
        Ok(StoredFile {
            key: stored.key,
            sha256: stored.sha256,
            size: stored.size,
            media_type,
            filename: filename.map(|n| n.chars().take(255).collect()),
        })
    }

    /// A new content from a stored file.
    ///
    /// # Errors
    /// Forbidden for other roles; the aggregate's refusal (title, metadata); storage.
    pub async fn upload(
        &self,
        actor: &Actor,
        title: String,
        metadata: ContentMetadata,
        file: StoredFile,
    ) -> Result<Written, LibraryError> {
        if !UPLOADERS.iter().any(|r| actor.has(*r)) {
            return Err(UseCaseError::Forbidden);
        }
        let command = ContentCommand::Upload {
            title,
            file,
            metadata,
            uploaded_by: actor.user_id,
        };
        self.run(actor, Uuid::now_v7(), &command).await
    }

    /// Content `id` as a target for a new version: it is the organization's and the actor
    /// uploads (checked before any byte is stored).
    ///
    /// # Errors
    /// Not found; forbidden.
    pub async fn version_target(
        &self,
        actor: &Actor,
        id: Uuid,
    ) -> Result<VersionTarget, LibraryError> {
        self.row(actor, id).await?;
        if !UPLOADERS.iter().any(|r| actor.has(*r)) {
            return Err(UseCaseError::Forbidden);
        }
        Ok(VersionTarget(id))
    }

    /// A new version of a checked content's file.
    ///
    /// # Errors
    /// Archived or still processing (409).
    pub async fn upload_version(
        &self,
        actor: &Actor,
        target: VersionTarget,
        file: StoredFile,
    ) -> Result<Written, LibraryError> {
        let command = ContentCommand::UploadVersion {
            file,
            uploaded_by: actor.user_id,
        };
        self.run(actor, target.0, &command).await
    }

    /// Archives content `id` (an admin, or its uploader).
    ///
    /// # Errors
    /// Not found; forbidden.
    pub async fn archive(&self, actor: &Actor, id: Uuid) -> Result<Written, LibraryError> {
        let row = self.row(actor, id).await?;
        if !(actor.has(Role::Admin) || row.uploaded_by == actor.user_id) {
            return Err(UseCaseError::Forbidden);
        }
        let command = ContentCommand::Archive {
            archived_by: actor.user_id,
        };
        self.run(actor, id, &command).await
    }

    /// Atomizes content `id`'s current version again (an admin).
    ///
    /// # Errors
    /// Not found; forbidden; archived or still processing (409).
    pub async fn reatomize(&self, actor: &Actor, id: Uuid) -> Result<Written, LibraryError> {
        self.row(actor, id).await?;
        if !actor.has(Role::Admin) {
            return Err(UseCaseError::Forbidden);
        }
        let command = ContentCommand::Reatomize {
            requested_by: actor.user_id,
        };
        self.run(actor, id, &command).await
    }

    /// Content `id`, after waiting (bounded) for `min_version`. The wait starts only for a
    /// content of the actor's organization, so timing tells nothing about other ids.
    ///
    /// # Errors
    /// Not found; storage.
    pub async fn get(
        &self,
        actor: &Actor,
        id: Uuid,
        min_version: Option<u64>,
    ) -> Result<ContentRow, LibraryError> {
        if let Some(version) = min_version {
            self.commands
                .wait_in_organization::<Content, ContentLibrary, _>(
                    id,
                    actor.organization_id,
                    version,
                )
                .await?;
        }
        self.row(actor, id).await
    }

    /// The atoms of content `id`, in order.
    ///
    /// # Errors
    /// Not found; storage.
    pub async fn atoms(&self, actor: &Actor, id: Uuid) -> Result<Vec<AtomRow>, LibraryError> {
        self.row(actor, id).await?;
        Ok(library::atoms(self.commands.pool(), id).await?)
    }

    /// The organization's contents, newest first.
    ///
    /// # Errors
    /// Storage.
    pub async fn list(
        &self,
        actor: &Actor,
        q: Option<&str>,
        include_archived: bool,
        limit: i64,
    ) -> Result<Vec<ContentRow>, LibraryError> {
        let q = q.map(str::trim).filter(|q| !q.is_empty());
        Ok(library::list(
            self.commands.pool(),
            actor.organization_id,
            q,
            include_archived,
            limit,
        )
        .await?)
    }

    async fn row(&self, actor: &Actor, id: Uuid) -> Result<ContentRow, LibraryError> {
        library::content(self.commands.pool(), actor.organization_id, id)
            .await?
            .ok_or(UseCaseError::NotFound)
    }

    async fn run(
        &self,
        actor: &Actor,
        id: Uuid,
        command: &ContentCommand,
    ) -> Result<Written, LibraryError> {
        Ok(self
            .commands
            .run::<Content, ContentLibrary>(id, command, &actor.metadata)
            .await?)
    }
}
