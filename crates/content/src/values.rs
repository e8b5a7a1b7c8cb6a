//! Value types of the content context.

use serde::{Deserialize, Serialize};
use trellis_kernel::text::check_line;

use crate::content::ContentError;

use crate::limits::{FILENAME_MAX, LANGUAGE_MAX, METADATA_LINE_MAX, TAG_MAX, TAGS_MAX};

/// The formats Trellis atomizes, as sniffed from the bytes (never the client's word).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaType {
    /// `text/plain`.
    PlainText,
    /// `text/markdown`.
    Markdown,
    /// `text/html`.
    Html,
    /// `application/pdf`.
    Pdf,
    /// Word (`application/vnd.openxmlformats-officedocument.wordprocessingml.document`).
    Docx,
    /// reStructuredText (`text/x-rst`).
    Restructuredtext,
    /// A WebVTT transcript (`text/vtt`).
    Webvtt,
    /// A SubRip transcript (`application/x-subrip`).
    Srt,
}

impl MediaType {
    /// Every accepted format.
    pub const ALL: [Self; 8] = [
        Self::PlainText,
        Self::Markdown,
        Self::Html,
        Self::Pdf,
        Self::Docx,
        Self::Restructuredtext,
        Self::Webvtt,
        Self::Srt,
    ];

    /// Its name in events and the API (`plain_text`, `markdown`, …): the serde name.
    pub fn name(self) -> &'static str {
        match self {
            Self::PlainText => "plain_text",
            Self::Markdown => "markdown",
            Self::Html => "html",
            Self::Pdf => "pdf",
            Self::Docx => "docx",
            Self::Restructuredtext => "restructuredtext",
            Self::Webvtt => "webvtt",
            Self::Srt => "srt",
        }
    }

    /// The format named `name` ([`Self::name`]).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.name() == name)
    }

    /// The MIME type.
    pub fn mime(self) -> &'static str {
        match self {
            Self::PlainText => "text/plain",
            Self::Markdown => "text/markdown",
            Self::Html => "text/html",
            Self::Pdf => "application/pdf",
            Self::Docx => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            Self::Restructuredtext => "text/x-rst",
            Self::Webvtt => "text/vtt",
            Self::Srt => "application/x-subrip",
        }
    }
}

/// Where a file's bytes are: object storage, content-addressed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredFile {
    /// The object key (`sha256/<hex>`).
    pub key: String,
    /// SHA-256 of the bytes, 64 lowercase hex digits.
    pub sha256: String,
    /// Size in bytes (at least 1).
    pub size: u64,
    /// The sniffed format.
    pub media_type: MediaType,
    /// The name the uploader gave the file (one line), if any.
    pub filename: Option<String>,
}

impl StoredFile {
    /// The object key of bytes with this SHA-256.
    pub fn key_of(sha256: &str) -> String {
        format!("sha256/{sha256}")
    }

    /// Checks the reference: a 64-digit lowercase hex hash, its key, a size, a one-line name.
    ///
    /// # Errors
    /// [`ContentError::BadFile`], or a text error naming `file.filename`.
    pub fn check(&self) -> Result<(), ContentError> {
        let hex = self.sha256.len() == 64
            && self
                .sha256
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !hex || self.key != Self::key_of(&self.sha256) || self.size == 0 {
            return Err(ContentError::BadFile);
        }
        if let Some(name) = &self.filename {
            check_line(name, FILENAME_MAX).map_err(|p| p.at("file.filename"))?;
        }
        Ok(())
    }
}

/// What the uploader says about a content (all optional).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContentMetadata {
    /// Who wrote it (a person: personal data).
    #[serde(default)]
    pub author: Option<String>,
    /// Its subject.
    #[serde(default)]
    pub subject: Option<String>,
    /// Its language, a BCP 47 tag such as `en` or `pt-BR`.
    #[serde(default)]
    pub language: Option<String>,
    /// Tags, each once.
    #[serde(default)]
    pub tags: Vec<String>,
}

impl ContentMetadata {
    /// Trims every field and checks it.
    ///
    /// # Errors
    /// The first rule broken, naming the field (`metadata.tags[2]`, say).
    pub fn normalized(&self) -> Result<Self, ContentError> {
        let line = |value: &Option<String>, field: &str, max: usize| {
            value
                .as_deref()
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(|v| {
                    check_line(v, max)
                        .map(|()| v.to_owned())
                        .map_err(|p| p.at(field))
                })
                .transpose()
        };
        let author = line(&self.author, "metadata.author", METADATA_LINE_MAX)?;
        let subject = line(&self.subject, "metadata.subject", METADATA_LINE_MAX)?;
        let language = line(&self.language, "metadata.language", LANGUAGE_MAX)?;
        if let Some(tag) = &language {
            let ok = tag.split('-').all(|part| {
                !part.is_empty()
                    && part.len() <= 8
                    && part.bytes().all(|b| b.is_ascii_alphanumeric())
            });
            if !ok {
                return Err(ContentError::BadLanguage);
            }
        }
        if self.tags.len() > TAGS_MAX {
            return Err(ContentError::TooManyTags);
        }
        let mut tags: Vec<String> = Vec::new();
        for (i, tag) in self.tags.iter().enumerate() {
            let tag = trellis_kernel::text::required_line(tag, TAG_MAX)
                .map_err(|p| p.at(format!("metadata.tags[{i}]")))?;
            if !tags.iter().any(|t| t == tag) {
                tags.push(tag.to_owned());
            }
        }
        Ok(Self {
            author,
            subject,
            language,
            tags,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::MediaType;

    #[test]
    fn every_media_type_is_named_as_it_is_serialized_and_parsed_back() {
        for media in MediaType::ALL {
            assert_eq!(
                serde_json::to_value(media).ok(),
                Some(serde_json::Value::String(media.name().to_owned()))
            );
            assert_eq!(MediaType::from_name(media.name()), Some(media));
        }
        assert_eq!(MediaType::from_name("exe"), None);
    }
}
