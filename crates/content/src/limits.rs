//! Limits of the content context, in characters (Unicode scalar values) unless said. The
//! character rules (no control characters, no bidirectional overrides) are
//! `trellis_kernel::text`'s.

/// A content's title.
pub const TITLE_MAX: usize = 300;
/// A stored file's original name.
pub const FILENAME_MAX: usize = 255;
/// The metadata's author and subject.
pub const METADATA_LINE_MAX: usize = 200;
/// The metadata's language tag (BCP 47, e.g. `en` or `pt-BR`).
pub const LANGUAGE_MAX: usize = 35;
/// Tags per content.
pub const TAGS_MAX: usize = 20;
/// One tag.
pub const TAG_MAX: usize = 50;
/// Why an atomization failed.
pub const FAILURE_REASON_MAX: usize = 1_000;
/// Atoms per content (a 100-page document makes a few hundred).
pub const ATOMS_MAX: usize = 5_000;
/// An atom's title.
pub const ATOM_TITLE_MAX: usize = 300;
/// An atom's text (an atom is roughly 150 to 600 words).
pub const ATOM_TEXT_MAX: usize = 20_000;
/// An atom's learning objective (one sentence).
pub const OBJECTIVE_MAX: usize = 500;
/// Concepts per atom.
pub const CONCEPTS_MAX: usize = 30;
/// One concept's keyphrase.
pub const CONCEPT_MAX: usize = 100;
/// Catalog skills one concept links to.
pub const CONCEPT_SKILLS_MAX: usize = 10;
/// Prerequisites per atom.
pub const PREREQUISITES_MAX: usize = 50;
/// An atom's estimated study time, in minutes.
pub const ESTIMATED_MINUTES_MAX: u32 = 600;
/// An atom's encoded search vector, in base64 characters (1,024 bytes).
pub const VECTOR_MAX: usize = 1_368;
