//! The structured text of a document.

use serde::{Deserialize, Serialize};

use crate::{ExtractError, Limits};

/// A document as sections of paragraphs. Text before the first heading is a section without
/// one.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Document {
    /// Sections in reading order.
    pub sections: Vec<Section>,
}

/// A heading and the paragraphs under it (up to the next heading of any level).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Section {
    /// The heading's text, if the section has one.
    pub heading: Option<String>,
    /// 1 (top) to 6; 0 for a section without a heading.
    pub level: u8,
    /// Paragraphs, list items, code blocks and transcript cue groups, in order.
    pub paragraphs: Vec<Paragraph>,
}

/// One block of text.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Paragraph {
    /// The text, whitespace collapsed (code keeps its line breaks).
    pub text: String,
    /// For transcripts: when the block is spoken, `[start_ms, end_ms]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub span_ms: Option<[u64; 2]>,
}

impl Document {
    /// Words in all headings and paragraphs.
    pub fn words(&self) -> usize {
        self.sections
            .iter()
            .map(|s| {
                s.heading.as_deref().map_or(0, count_words)
                    + s.paragraphs
                        .iter()
                        .map(|p| count_words(&p.text))
                        .sum::<usize>()
            })
            .sum()
    }
}

/// Whitespace-separated words.
pub(crate) fn count_words(text: &str) -> usize {
    text.split_whitespace().count()
}

/// Collapses runs of whitespace into single spaces and trims.
pub(crate) fn collapse(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for word in text.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// Builds a [`Document`] block by block, enforcing the character limit.
pub(crate) struct Builder {
    document: Document,
    chars: usize,
    max_chars: usize,
}

impl Builder {
    pub(crate) fn new(limits: &Limits) -> Self {
        Self {
            document: Document::default(),
            chars: 0,
            max_chars: limits.max_chars,
        }
    }

    fn count(&mut self, text: &str) -> Result<(), ExtractError> {
        self.chars += text.chars().count();
        if self.chars > self.max_chars {
            return Err(ExtractError::TooLarge(format!(
                "more than {} characters of text",
                self.max_chars
            )));
        }
        Ok(())
    }

    /// Starts a section (an empty heading text is ignored).
    pub(crate) fn heading(&mut self, level: u8, text: &str) -> Result<(), ExtractError> {
        let text = collapse(text);
        if text.is_empty() {
            return Ok(());
        }
        self.count(&text)?;
        self.document.sections.push(Section {
            heading: Some(text),
            level: level.clamp(1, 6),
            paragraphs: Vec::new(),
        });
        Ok(())
    }

    /// Adds a paragraph to the current section (whitespace collapsed; empty ones dropped).
    pub(crate) fn paragraph(&mut self, text: &str) -> Result<(), ExtractError> {
        let text = collapse(text);
        self.push(text, None)
    }

    /// Adds a block keeping its line breaks (code, literal blocks).
    pub(crate) fn verbatim(&mut self, text: &str) -> Result<(), ExtractError> {
        let text = text.trim_matches('\n').trim_end().to_owned();
        self.push(text, None)
    }

    /// Adds a timed block (transcripts).
    pub(crate) fn timed(&mut self, text: &str, span_ms: [u64; 2]) -> Result<(), ExtractError> {
        self.push(collapse(text), Some(span_ms))
    }

    fn push(&mut self, text: String, span_ms: Option<[u64; 2]>) -> Result<(), ExtractError> {
        if text.trim().is_empty() {
            return Ok(());
        }
        self.count(&text)?;
        if self.document.sections.is_empty() {
            self.document.sections.push(Section::default());
        }
        if let Some(section) = self.document.sections.last_mut() {
            section.paragraphs.push(Paragraph { text, span_ms });
        }
        Ok(())
    }

    pub(crate) fn finish(self) -> Document {
        self.document
    }
}

impl Builder {
    /// Appends text to the last heading (a heading broken over two lines).
    pub(crate) fn continue_heading(&mut self, text: &str) {
        if let Some(Section {
            heading: Some(heading),
            paragraphs,
            ..
        }) = self.document.sections.last_mut()
            && paragraphs.is_empty()
        {
            heading.push(' ');
            heading.push_str(&collapse(text));
        }
    }
}
