//! Plain text: paragraphs separated by blank lines, no headings.

use crate::document::Builder;
use crate::{Document, ExtractError, Limits};

pub(crate) fn extract(text: &str, limits: &Limits) -> Result<Document, ExtractError> {
    let mut builder = Builder::new(limits);
    let mut paragraph = String::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            builder.paragraph(&paragraph)?;
            paragraph.clear();
        } else {
            paragraph.push_str(line);
            paragraph.push('\n');
        }
    }
    builder.paragraph(&paragraph)?;
    Ok(builder.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_lines_separate_paragraphs() {
        let doc = extract("One\ntwo.\n\n\nThree.\n", &Limits::default()).unwrap_or_default();
        let texts: Vec<_> = doc.sections[0]
            .paragraphs
            .iter()
            .map(|p| p.text.as_str())
            .collect();
        assert_eq!(texts, ["One two.", "Three."]);
        assert_eq!(doc.sections[0].heading, None);
    }
}
