//! The content context (seed 002, SPEC §3): documents an organization uploads and the
//! learning atoms the atomizer makes of them.
//!
//! One aggregate, [`content::Content`], a pure decider: upload, new versions, the atomizer's
//! answer (atoms, or a failure with its reason), re-atomization with a newer atomizer, and
//! archive. The file's bytes never enter an event: the upload stores them (content-addressed
//! by SHA-256) and the events carry the [`StoredFile`] reference. ADR 0012 records the design.

use trellis_kernel::{PersonalData, Subject};

pub mod atom;
pub mod content;
pub mod limits;
mod values;

pub use atom::{Atom, Concept, Quality};
pub use values::{ContentMetadata, MediaType, StoredFile};

/// Event fields holding personal data, and whose (ADR 0017): the author named in a document's
/// metadata is a person, entered by the uploader and erased with the uploader's data key.
pub const PERSONAL_DATA: &[PersonalData] = &[PersonalData {
    event_type: "ContentUploaded",
    subject: Subject::Field("uploaded_by"),
    fields: &["metadata.author"],
}];
