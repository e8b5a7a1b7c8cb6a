//! Untrusted document work for the content context (ADR 0012).
//!
//! Two jobs, both on bytes nobody vouched for:
//! - [`sniff`]: which of the accepted formats a file is, decided from its first bytes (magic
//!   numbers for PDF and DOCX, content checks for the text formats), never from the client's
//!   name or `Content-Type`, which may only agree or be refused.
//! - [`extract`]: the text with its structure (headings with levels, paragraphs, transcript
//!   cues with times), as a [`Document`].
//!
//! Extraction runs third-party parsers over hostile input: PDF readers panic, abort and loop
//! (research/wave2.md §1). So the service never calls [`extract`] in its own process: the
//! `trellis-extract` binary of this crate does, under an address-space and a CPU limit it
//! sets on itself, and the caller adds a wall-clock timeout and kills it ([`worker`]). This
//! library still keeps its own limits ([`Limits`]) so a refusal is a clear reason rather than
//! a killed process where it can be.

mod document;
mod docx;
mod html;
mod markdown;
mod pdf;
mod plain;
mod rst;
mod sniff;
mod subtitles;
pub mod worker;

pub use document::{Document, Paragraph, Section};
pub use sniff::{SNIFF_BYTES, SniffError, sniff};
pub use trellis_content::MediaType;

/// Why a document could not be extracted (the reason recorded on `AtomizationFailed`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExtractError {
    /// A text format whose bytes are not UTF-8.
    #[error("the file is not valid UTF-8 text (first bad byte at offset {offset})")]
    NotUtf8 {
        /// Byte offset of the first invalid sequence.
        offset: usize,
    },
    /// The parser refused the file.
    #[error("the file is malformed: {0}")]
    Malformed(String),
    /// The file expands past a limit (a decompression bomb, or simply too much text).
    #[error("the file is too large once unpacked: {0}")]
    TooLarge(String),
    /// Nothing readable in it (a scanned PDF without a text layer, say).
    #[error("the file has no extractable text")]
    NoText,
}

/// Limits of one extraction.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Most characters of text a document may yield.
    pub max_chars: usize,
    /// Most bytes a DOCX part may inflate to.
    pub max_inflated_bytes: u64,
    /// Most pages of a PDF.
    pub max_pages: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_chars: 20_000_000,
            max_inflated_bytes: 64 * 1024 * 1024,
            max_pages: 5_000,
        }
    }
}

/// Extracts the structured text of `bytes`, a file already sniffed as `media_type`.
///
/// # Errors
/// [`ExtractError`]: not UTF-8, malformed, too large once unpacked, or no text at all.
///
/// # Panics
/// Third-party parsers may panic, abort or loop on hostile input: call this only inside the
/// worker process ([`worker`]).
pub fn extract(
    bytes: &[u8],
    media_type: MediaType,
    limits: &Limits,
) -> Result<Document, ExtractError> {
    let document = match media_type {
        MediaType::PlainText => plain::extract(text(bytes)?, limits),
        MediaType::Markdown => markdown::extract(text(bytes)?, limits),
        MediaType::Html => html::extract(text(bytes)?, limits),
        MediaType::Restructuredtext => rst::extract(text(bytes)?, limits),
        MediaType::Webvtt => subtitles::extract_vtt(text(bytes)?, limits),
        MediaType::Srt => subtitles::extract_srt(text(bytes)?, limits),
        MediaType::Docx => docx::extract(bytes, limits),
        MediaType::Pdf => pdf::extract(bytes, limits),
    }?;
    if document.words() == 0 {
        return Err(ExtractError::NoText);
    }
    Ok(document)
}

/// The bytes as UTF-8 text without a byte-order mark.
fn text(bytes: &[u8]) -> Result<&str, ExtractError> {
    let text = std::str::from_utf8(bytes).map_err(|e| ExtractError::NotUtf8 {
        offset: e.valid_up_to(),
    })?;
    Ok(text.strip_prefix('\u{feff}').unwrap_or(text))
}
