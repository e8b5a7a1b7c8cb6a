//! Contents: an uploaded document, its versions, and the atomizer's answer for each.
//!
//! Status: `processing` from the upload (and from each new version or re-atomization) until
//! the atomizer answers, then `completed` (atoms) or `failed` (a reason). An answer for an
//! older version, or a second answer, changes nothing: the atomizer may be redelivered a
//! trigger or restarted mid-document, and a content is never atomized twice.

use serde::{Deserialize, Serialize};
use trellis_kernel::text::{TextError, check_line, check_multiline};
use trellis_kernel::{Aggregate, DomainEvent};
use uuid::Uuid;

use crate::atom::{Atom, check_atoms};
use crate::limits::{FAILURE_REASON_MAX, TITLE_MAX};
use crate::values::{ContentMetadata, StoredFile};

/// Most bytes of atoms one `ContentAtomized` event carries (serialized): the store refuses
/// events over 256 KiB, so a long document's atoms are split into parts, appended together.
pub const ATOMS_PART_BYTES: usize = 160 * 1024;

/// The events that ask the atomizer for an answer (a new content, a new version, a
/// re-atomization).
pub const ATOMIZATION_TRIGGERS: &[&str] = &[
    "ContentUploaded",
    "ContentVersionUploaded",
    "ContentReatomizationRequested",
];

/// Commands.
#[derive(Debug, Clone)]
pub enum ContentCommand {
    /// A new content; its bytes are stored already.
    Upload {
        /// Title, 1 to [`TITLE_MAX`] characters, one line.
        title: String,
        /// The stored file.
        file: StoredFile,
        /// What the uploader says about it.
        metadata: ContentMetadata,
        /// The uploader.
        uploaded_by: Uuid,
    },
    /// A new version of the content's file; atomized afresh, history kept.
    UploadVersion {
        /// The stored file.
        file: StoredFile,
        /// The uploader.
        uploaded_by: Uuid,
    },
    /// The atomizer's atoms for `content_version`.
    RecordAtoms {
        /// The version atomized.
        content_version: u32,
        /// The atomizer's version.
        atomizer_version: u32,
        /// The atoms, in order.
        atoms: Vec<Atom>,
    },
    /// The atomizer could not atomize `content_version`.
    RecordFailure {
        /// The version.
        content_version: u32,
        /// The atomizer's version.
        atomizer_version: u32,
        /// Why, for people.
        reason: String,
    },
    /// Atomize the current version again (a newer atomizer, say).
    Reatomize {
        /// Who asked (an admin).
        requested_by: Uuid,
    },
    /// Take the content out of lists and search.
    Archive {
        /// Who archived it.
        archived_by: Uuid,
    },
}

/// Events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, strum::VariantNames)]
#[serde(tag = "event_type", content = "payload")]
pub enum ContentEvent {
    /// A content was uploaded: version 1, processing.
    ContentUploaded {
        /// Title.
        title: String,
        /// The stored file.
        file: StoredFile,
        /// Metadata.
        metadata: ContentMetadata,
        /// The uploader.
        uploaded_by: Uuid,
    },
    /// A new version of its file was uploaded: processing again.
    ContentVersionUploaded {
        /// The new version number (2, 3, …).
        content_version: u32,
        /// The stored file.
        file: StoredFile,
        /// The uploader.
        uploaded_by: Uuid,
    },
    /// Atoms of a version (part `part` of `parts`; the parts of one answer are appended
    /// together, and the content is completed with the last).
    ContentAtomized {
        /// The version atomized.
        content_version: u32,
        /// The atomizer's version.
        atomizer_version: u32,
        /// This part, from 1.
        part: u32,
        /// Parts of this answer.
        parts: u32,
        /// Atoms of this part, in order.
        atoms: Vec<Atom>,
    },
    /// The atomizer gave up on a version.
    AtomizationFailed {
        /// The version.
        content_version: u32,
        /// The atomizer's version.
        atomizer_version: u32,
        /// Why.
        reason: String,
    },
    /// Atomization of the current version was asked for again.
    ContentReatomizationRequested {
        /// Who asked.
        requested_by: Uuid,
    },
    /// The content was archived.
    ContentArchived {
        /// Who archived it.
        archived_by: Uuid,
    },
}

impl DomainEvent for ContentEvent {
    fn event_type(&self) -> &'static str {
        match self {
            Self::ContentUploaded { .. } => "ContentUploaded",
            Self::ContentVersionUploaded { .. } => "ContentVersionUploaded",
            Self::ContentAtomized { .. } => "ContentAtomized",
            Self::AtomizationFailed { .. } => "AtomizationFailed",
            Self::ContentReatomizationRequested { .. } => "ContentReatomizationRequested",
            Self::ContentArchived { .. } => "ContentArchived",
        }
    }
}

/// Where a content stands.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ContentStatus {
    /// No such content.
    #[default]
    None,
    /// Waiting for the atomizer.
    Processing,
    /// Atomized.
    Completed,
    /// The atomizer gave up.
    Failed,
}

/// State.
#[derive(Debug, Default, Clone, Serialize)]
pub struct ContentState {
    /// Status.
    pub status: ContentStatus,
    /// Title.
    pub title: String,
    /// The current version (1 after the upload).
    pub content_version: u32,
    /// The current file.
    pub file: Option<StoredFile>,
    /// Archived.
    pub archived: bool,
    /// Atoms of the current answer so far.
    pub atoms: u32,
}

impl ContentState {
    /// Whether an atomizer's answer for `content_version` is the one awaited. A stale or
    /// repeated answer is not (at-least-once delivery): it decides no events.
    ///
    /// # Errors
    /// [`ContentError::NotFound`] for a content that does not exist.
    pub fn awaits_answer_for(&self, content_version: u32) -> Result<bool, ContentError> {
        if self.status == ContentStatus::None {
            return Err(ContentError::NotFound);
        }
        Ok(self.status == ContentStatus::Processing && content_version == self.content_version)
    }
}

/// Rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContentError {
    /// Uploaded twice (409).
    #[error("the content already exists")]
    AlreadyExists,
    /// No such content (404).
    #[error("no such content")]
    NotFound,
    /// Archived: no new versions or re-atomization (409).
    #[error("the content is archived")]
    Archived,
    /// Still waiting for the atomizer (409).
    #[error("the content is still being atomized")]
    AlreadyProcessing,
    /// Empty title (422, field `title`).
    #[error("title must not be empty")]
    BadTitle,
    /// A malformed file reference (a bug of the uploader, 500).
    #[error("the stored file reference is malformed")]
    BadFile,
    /// Not a language tag (422, field `metadata.language`).
    #[error("language must be a BCP 47 tag such as `en` or `pt-BR`")]
    BadLanguage,
    /// Too many tags (422, field `metadata.tags`).
    #[error("at most 20 tags")]
    TooManyTags,
    /// An answer without atoms (use a failure).
    #[error("an atomization needs at least one atom")]
    NoAtoms,
    /// More atoms than a content may have.
    #[error("more than 5,000 atoms")]
    TooManyAtoms,
    /// An atom breaks a rule.
    #[error("{field} {reason}")]
    BadAtom {
        /// The field, e.g. `atoms[3].difficulty`.
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// An empty failure reason.
    #[error("a failure needs a reason")]
    NoReason,
    /// A text field breaks the text rules (422 naming the field).
    #[error(transparent)]
    Text(#[from] TextError),
}

/// The aggregate.
pub struct Content;

/// Splits `atoms` into parts of at most [`ATOMS_PART_BYTES`] serialized bytes (at least one
/// atom a part; one atom is at most 20,000 characters, so any part fits the store's limit).
fn parts(atoms: &[Atom]) -> Vec<Vec<Atom>> {
    let mut parts: Vec<Vec<Atom>> = Vec::new();
    let mut current: Vec<Atom> = Vec::new();
    let mut bytes = 0;
    for atom in atoms {
        let size = serde_json::to_vec(atom).map_or(ATOMS_PART_BYTES, |v| v.len());
        if !current.is_empty() && bytes + size > ATOMS_PART_BYTES {
            parts.push(std::mem::take(&mut current));
            bytes = 0;
        }
        current.push(atom.clone());
        bytes += size;
    }
    parts.push(current);
    parts
}

impl Aggregate for Content {
    const KIND: &'static str = "content";
    type State = ContentState;
    type Command = ContentCommand;
    type Event = ContentEvent;
    type Error = ContentError;

    fn decide(
        state: &ContentState,
        command: &ContentCommand,
    ) -> Result<Vec<ContentEvent>, ContentError> {
        let exists = state.status != ContentStatus::None;
        match command {
            ContentCommand::Upload {
                title,
                file,
                metadata,
                uploaded_by,
            } => {
                if exists {
                    return Err(ContentError::AlreadyExists);
                }
                let title = title.trim();
                if title.is_empty() {
                    return Err(ContentError::BadTitle);
                }
                check_line(title, TITLE_MAX).map_err(|p| p.at("title"))?;
                file.check()?;
                Ok(vec![ContentEvent::ContentUploaded {
                    title: title.to_owned(),
                    file: file.clone(),
                    metadata: metadata.normalized()?,
                    uploaded_by: *uploaded_by,
                }])
            }
            ContentCommand::UploadVersion { file, uploaded_by } => {
                if !exists {
                    return Err(ContentError::NotFound);
                }
                if state.archived {
                    return Err(ContentError::Archived);
                }
                file.check()?;
                Ok(vec![ContentEvent::ContentVersionUploaded {
                    content_version: state.content_version + 1,
                    file: file.clone(),
                    uploaded_by: *uploaded_by,
                }])
            }
            ContentCommand::RecordAtoms {
                content_version,
                atomizer_version,
                atoms,
            } => {
                if !state.awaits_answer_for(*content_version)? {
                    return Ok(Vec::new());
                }
                check_atoms(atoms)?;
                let parts = parts(atoms);
                let count = u32::try_from(parts.len()).map_err(|_| ContentError::TooManyAtoms)?;
                Ok(parts
                    .into_iter()
                    .zip(1..)
                    .map(|(atoms, part)| ContentEvent::ContentAtomized {
                        content_version: *content_version,
                        atomizer_version: *atomizer_version,
                        part,
                        parts: count,
                        atoms,
                    })
                    .collect())
            }
            ContentCommand::RecordFailure {
                content_version,
                atomizer_version,
                reason,
            } => {
                if !state.awaits_answer_for(*content_version)? {
                    return Ok(Vec::new());
                }
                let reason = reason.trim();
                if reason.is_empty() {
                    return Err(ContentError::NoReason);
                }
                let reason: String = reason.chars().take(FAILURE_REASON_MAX).collect();
                check_multiline(&reason, FAILURE_REASON_MAX).map_err(|p| p.at("reason"))?;
                Ok(vec![ContentEvent::AtomizationFailed {
                    content_version: *content_version,
                    atomizer_version: *atomizer_version,
                    reason,
                }])
            }
            ContentCommand::Reatomize { requested_by } => {
                if !exists {
                    return Err(ContentError::NotFound);
                }
                if state.archived {
                    return Err(ContentError::Archived);
                }
                if state.status == ContentStatus::Processing {
                    return Err(ContentError::AlreadyProcessing);
                }
                Ok(vec![ContentEvent::ContentReatomizationRequested {
                    requested_by: *requested_by,
                }])
            }
            ContentCommand::Archive { archived_by } => {
                if !exists {
                    return Err(ContentError::NotFound);
                }
                if state.archived {
                    return Ok(Vec::new());
                }
                Ok(vec![ContentEvent::ContentArchived {
                    archived_by: *archived_by,
                }])
            }
        }
    }

    fn evolve(state: &mut ContentState, event: &ContentEvent) {
        match event {
            ContentEvent::ContentUploaded { title, file, .. } => {
                state.title.clone_from(title);
                state.status = ContentStatus::Processing;
                state.content_version = 1;
                state.file = Some(file.clone());
            }
            ContentEvent::ContentVersionUploaded {
                content_version,
                file,
                ..
            } => {
                state.status = ContentStatus::Processing;
                state.content_version = *content_version;
                state.file = Some(file.clone());
                state.atoms = 0;
            }
            ContentEvent::ContentAtomized {
                part, parts, atoms, ..
            } => {
                if *part == 1 {
                    state.atoms = 0;
                }
                state.atoms += u32::try_from(atoms.len()).unwrap_or(u32::MAX);
                if part == parts {
                    state.status = ContentStatus::Completed;
                }
            }
            ContentEvent::AtomizationFailed { .. } => state.status = ContentStatus::Failed,
            ContentEvent::ContentReatomizationRequested { .. } => {
                state.status = ContentStatus::Processing;
                state.atoms = 0;
            }
            ContentEvent::ContentArchived { .. } => state.archived = true,
        }
    }
}
