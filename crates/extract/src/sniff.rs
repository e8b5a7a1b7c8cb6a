//! Which accepted format a file is, from its first bytes.
//!
//! Binary formats by magic number (`infer`: PDF, and DOCX by the entries of its zip); text
//! formats by content: `WEBVTT` opens a WebVTT file, a cue number followed by a `-->` timing
//! line an SRT file, a document tag an HTML page. Markdown, reStructuredText and plain text
//! look alike, so there the file name's extension decides, else the markup seen in the head.
//! The client's name and `Content-Type` never pick a format; when they name a different one
//! the upload is refused as a mismatch (bytes that lie about their type).

use trellis_content::MediaType;

/// How many leading bytes [`sniff`] wants (more are ignored).
pub const SNIFF_BYTES: usize = 8 * 1024;

/// Why a file is not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SniffError {
    /// No bytes.
    #[error("the file is empty")]
    Empty,
    /// Bytes of a format Trellis does not atomize.
    #[error(
        "unsupported file type ({0}); accepted: plain text, Markdown, HTML, PDF, DOCX, reStructuredText, WebVTT, SRT"
    )]
    Unsupported(String),
    /// The name or declared type says one format, the bytes another.
    #[error("the file's {claimed} does not match its content, which is {found}")]
    Mismatch {
        /// What claimed otherwise ("name `x.pdf`", "Content-Type `application/pdf`").
        claimed: String,
        /// The sniffed format's MIME type.
        found: &'static str,
    },
}

/// Sniffs `head` (the file's first [`SNIFF_BYTES`] or all of it), checking that `filename`
/// and `declared` (the part's `Content-Type`) do not contradict it.
///
/// # Errors
/// [`SniffError`]: empty, unsupported, or a mismatch.
pub fn sniff(
    head: &[u8],
    filename: Option<&str>,
    declared: Option<&str>,
) -> Result<MediaType, SniffError> {
    let head = &head[..head.len().min(SNIFF_BYTES)];
    if head.is_empty() {
        return Err(SniffError::Empty);
    }
    let extension = filename
        .and_then(|name| name.rsplit_once('.'))
        .map(|(_, ext)| ext.to_ascii_lowercase());
    let found = by_content(head, extension.as_deref())?;
    if let (Some(ext), Some(name)) = (extension.as_deref(), filename)
        && let Some(claimed) = by_extension(ext)
        && !compatible(claimed, found)
    {
        return Err(SniffError::Mismatch {
            claimed: format!("name `{name}`"),
            found: found.mime(),
        });
    }
    if let Some(declared) = declared {
        let mime = declared
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        if let Some(claimed) = by_mime(&mime)
            && !compatible(claimed, found)
        {
            return Err(SniffError::Mismatch {
                claimed: format!("Content-Type `{mime}`"),
                found: found.mime(),
            });
        }
    }
    Ok(found)
}

fn by_content(head: &[u8], extension: Option<&str>) -> Result<MediaType, SniffError> {
    if let Some(kind) = infer::get(head) {
        match kind.mime_type() {
            "application/pdf" => return Ok(MediaType::Pdf),
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document" => {
                return Ok(MediaType::Docx);
            }
            "text/html" => return Ok(MediaType::Html),
            // infer knows a DOCX only when `word/` is among the zip's first entries; writers
            // such as python-docx put `docProps/` first. A zip whose head names a `word/`
            // entry, or that is called `.docx`, goes to the DOCX reader, which checks it.
            "application/zip"
                if extension == Some("docx") || contains(head, b"word/document.xml") =>
            {
                return Ok(MediaType::Docx);
            }
            // infer calls any text starting with `<?xml` XML, and shell scripts text: decide below.
            "text/xml" | "text/x-shellscript" => {}
            other => return Err(SniffError::Unsupported(other.to_owned())),
        }
    }
    let text = text_head(head).ok_or_else(|| SniffError::Unsupported("binary data".into()))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let start = text.trim_start();
    if start.starts_with("WEBVTT") {
        return Ok(MediaType::Webvtt);
    }
    if looks_like_srt(start) {
        return Ok(MediaType::Srt);
    }
    let lower: String = start
        .chars()
        .take(64)
        .collect::<String>()
        .to_ascii_lowercase();
    if ["<!doctype html", "<html", "<head", "<body"]
        .iter()
        .any(|tag| lower.starts_with(tag))
    {
        return Ok(MediaType::Html);
    }
    Ok(match extension {
        Some("md" | "markdown" | "mdown" | "mkd") => MediaType::Markdown,
        Some("rst" | "rest") => MediaType::Restructuredtext,
        Some("htm" | "html" | "xhtml") if start.starts_with('<') => MediaType::Html,
        Some("txt" | "text") => MediaType::PlainText,
        _ if looks_like_markdown(text) => MediaType::Markdown,
        _ if looks_like_rst(text) => MediaType::Restructuredtext,
        _ => MediaType::PlainText,
    })
}

/// The head as text: UTF-8 (a sequence cut at the end of the head is fine) without NUL bytes
/// or other control characters besides tab, line feed, carriage return and form feed.
fn text_head(head: &[u8]) -> Option<&str> {
    let text = match std::str::from_utf8(head) {
        Ok(text) => text,
        Err(e) if e.error_len().is_none() => std::str::from_utf8(&head[..e.valid_up_to()]).ok()?,
        Err(_) => return None,
    };
    let controls = text
        .chars()
        .filter(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r' | '\x0c'))
        .count();
    (controls == 0).then_some(text)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn looks_like_srt(text: &str) -> bool {
    let mut lines = text.lines().map(str::trim);
    let number = lines.next().unwrap_or_default();
    let timing = lines.next().unwrap_or_default();
    !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit()) && timing.contains("-->")
}

fn looks_like_markdown(text: &str) -> bool {
    text.lines().any(|line| {
        let hashes = line.bytes().take_while(|&b| b == b'#').count();
        ((1..=6).contains(&hashes) && line[hashes..].starts_with(' ')) || line.starts_with("```")
    })
}

fn looks_like_rst(text: &str) -> bool {
    let lines: Vec<&str> = text.lines().collect();
    lines.windows(2).any(|pair| {
        let (title, rule) = (pair[0].trim_end(), pair[1].trim_end());
        crate::rst::is_adornment(rule) && !title.trim().is_empty() && rule.len() >= title.len()
    }) || text.contains("\n.. ")
}

fn by_extension(extension: &str) -> Option<MediaType> {
    Some(match extension {
        "pdf" => MediaType::Pdf,
        "docx" => MediaType::Docx,
        "htm" | "html" | "xhtml" => MediaType::Html,
        "md" | "markdown" => MediaType::Markdown,
        "rst" | "rest" => MediaType::Restructuredtext,
        "vtt" => MediaType::Webvtt,
        "srt" => MediaType::Srt,
        "txt" | "text" => MediaType::PlainText,
        _ => return None,
    })
}

fn by_mime(mime: &str) -> Option<MediaType> {
    MediaType::ALL.into_iter().find(|t| t.mime() == mime)
}

/// Whether a claimed format may describe sniffed bytes: binary formats must match exactly;
/// every text format is also plain text, and text formats are hard to tell apart by content,
/// so a text claim is compatible with any text format except for the self-announcing ones.
fn compatible(claimed: MediaType, found: MediaType) -> bool {
    use MediaType::{Docx, Pdf, PlainText, Srt, Webvtt};
    if claimed == found {
        return true;
    }
    match (claimed, found) {
        (Pdf | Docx, _) | (_, Pdf | Docx) => false,
        (Webvtt | Srt, _) => false,
        (PlainText, _) => true,
        _ => !matches!(found, Webvtt | Srt),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_formats_are_known_by_their_magic_numbers() {
        assert_eq!(sniff(b"%PDF-1.7\n...", None, None), Ok(MediaType::Pdf));
        assert_eq!(
            sniff(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", Some("notes.pdf"), None),
            Err(SniffError::Unsupported("image/png".into()))
        );
        assert!(matches!(
            sniff(
                b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x02\0",
                Some("a.md"),
                None
            ),
            Err(SniffError::Unsupported(_))
        ));
    }

    #[test]
    fn text_formats_are_known_by_their_content_then_their_name() {
        assert_eq!(
            sniff(b"WEBVTT\n\n00:01.000 --> 00:02.000\nHi", None, None),
            Ok(MediaType::Webvtt)
        );
        assert_eq!(
            sniff(b"1\n00:00:01,000 --> 00:00:02,000\nHi\n", None, None),
            Ok(MediaType::Srt)
        );
        assert_eq!(
            sniff(b"<!DOCTYPE html><html><p>x", None, None),
            Ok(MediaType::Html)
        );
        assert_eq!(
            sniff(b"# Title\n\nText", None, None),
            Ok(MediaType::Markdown)
        );
        assert_eq!(
            sniff(b"Title\n=====\n\nText", Some("a.rst"), None),
            Ok(MediaType::Restructuredtext)
        );
        assert_eq!(sniff(b"Just words.", None, None), Ok(MediaType::PlainText));
        assert_eq!(
            sniff(b"Just words.", Some("notes.md"), None),
            Ok(MediaType::Markdown)
        );
    }

    #[test]
    fn names_and_declared_types_that_contradict_the_bytes_are_refused() {
        assert!(matches!(
            sniff(b"plain words", Some("cv.docx"), None),
            Err(SniffError::Mismatch { .. })
        ));
        assert!(matches!(
            sniff(b"%PDF-1.4", Some("a.txt"), None),
            Err(SniffError::Mismatch { .. })
        ));
        assert!(matches!(
            sniff(b"plain words", None, Some("application/pdf")),
            Err(SniffError::Mismatch { .. })
        ));
        assert_eq!(
            sniff(b"# T\n\nx", Some("a.md"), Some("text/plain; charset=utf-8")),
            Ok(MediaType::Markdown)
        );
        assert_eq!(
            sniff(b"# T", None, Some("application/octet-stream")),
            Ok(MediaType::Markdown)
        );
    }

    #[test]
    fn empty_binary_and_invalid_text_are_refused() {
        assert_eq!(sniff(b"", None, None), Err(SniffError::Empty));
        assert_eq!(
            sniff(b"ab\0cd", None, None),
            Err(SniffError::Unsupported("binary data".into()))
        );
        assert_eq!(
            sniff(b"ab\xff\xfecd", None, None),
            Err(SniffError::Unsupported("binary data".into()))
        );
        // A multibyte character cut by the head's end is still text.
        assert_eq!(
            sniff(
                "caf\u{e9}"
                    .as_bytes()
                    .split_last()
                    .map(|(_, h)| h)
                    .unwrap_or_default(),
                None,
                None
            ),
            Ok(MediaType::PlainText)
        );
    }
}
