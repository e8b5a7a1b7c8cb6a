//! PDF through `pdf-extract` (on `lopdf`), with headings from font sizes: the body size is the
//! size most characters are set in; a short line set at least 15 % larger is a heading, and
//! its level is the rank of its size among the heading sizes. Paragraphs end at a vertical gap
//! wider than a line and a half. Ligatures are unfolded and words hyphenated across a line
//! break joined.
//!
//! `pdf-extract` panics on purpose on what it does not support, and `lopdf` can abort or
//! overflow its stack (research/wave2.md §1a): this runs only in the worker process.

use pdf_extract::{Document as PdfDocument, MediaBox, OutputDev, OutputError, Transform};

use crate::document::Builder;
use crate::{Document, ExtractError, Limits};

/// One line of text and the size it is set in.
#[derive(Debug, Clone, Default)]
struct Line {
    text: String,
    size: f64,
    /// Baseline, in page units from the bottom (larger is higher on the page).
    y: f64,
    page: u32,
}

#[derive(Default)]
struct Lines {
    lines: Vec<Line>,
    current: Line,
    page: u32,
    last_end: f64,
    new_word: bool,
    chars: usize,
    max_chars: usize,
    too_long: bool,
}

impl Lines {
    fn end_line(&mut self) {
        let line = std::mem::take(&mut self.current);
        if !line.text.trim().is_empty() {
            self.lines.push(line);
        }
    }
}

impl OutputDev for Lines {
    fn begin_page(
        &mut self,
        page_num: u32,
        _media_box: &MediaBox,
        _art_box: Option<(f64, f64, f64, f64)>,
    ) -> Result<(), OutputError> {
        self.end_line();
        self.page = page_num;
        Ok(())
    }

    fn end_page(&mut self) -> Result<(), OutputError> {
        self.end_line();
        Ok(())
    }

    fn output_character(
        &mut self,
        trm: &Transform,
        width: f64,
        _spacing: f64,
        font_size: f64,
        char: &str,
    ) -> Result<(), OutputError> {
        if self.too_long {
            return Ok(());
        }
        // The rendered size: the font size through the text matrix (as pdf-extract's own
        // plain-text output computes it).
        let sx = (trm.m11 * font_size + trm.m21 * font_size).abs();
        let sy = (trm.m12 * font_size + trm.m22 * font_size).abs();
        let size = (sx * sy).sqrt();
        let (x, y) = (trm.m31, trm.m32);
        if !self.current.text.is_empty() {
            if (y - self.current.y).abs() > size * 0.5 {
                self.end_line();
            } else if self.new_word && x > self.last_end + size * 0.1 {
                self.current.text.push(' ');
            }
        }
        if self.current.text.is_empty() {
            self.current.y = y;
            self.current.page = self.page;
        }
        self.current.text.push_str(char);
        self.current.size = self.current.size.max(size);
        self.new_word = false;
        self.last_end = x + width * size;
        self.chars += char.len();
        if self.chars > self.max_chars {
            self.too_long = true;
        }
        Ok(())
    }

    fn begin_word(&mut self) -> Result<(), OutputError> {
        self.new_word = true;
        Ok(())
    }

    fn end_word(&mut self) -> Result<(), OutputError> {
        Ok(())
    }

    fn end_line(&mut self) -> Result<(), OutputError> {
        Ok(())
    }
}

pub(crate) fn extract(bytes: &[u8], limits: &Limits) -> Result<Document, ExtractError> {
    let mut pdf =
        PdfDocument::load_mem(bytes).map_err(|e| ExtractError::Malformed(format!("PDF: {e}")))?;
    if pdf.is_encrypted() && pdf.decrypt("").is_err() {
        return Err(ExtractError::Malformed("the PDF is encrypted".into()));
    }
    let pages = pdf.get_pages().len();
    if pages > limits.max_pages {
        return Err(ExtractError::TooLarge(format!(
            "{pages} pages, more than {}",
            limits.max_pages
        )));
    }
    let mut lines = Lines {
        max_chars: limits.max_chars,
        ..Lines::default()
    };
    pdf_extract::output_doc(&pdf, &mut lines)
        .map_err(|e| ExtractError::Malformed(format!("PDF: {e}")))?;
    lines.end_line();
    if lines.too_long {
        return Err(ExtractError::TooLarge(format!(
            "more than {} characters of text",
            limits.max_chars
        )));
    }
    structure(&lines.lines, limits)
}

/// Headings by size, paragraphs by vertical gaps.
fn structure(lines: &[Line], limits: &Limits) -> Result<Document, ExtractError> {
    let body = body_size(lines);
    let mut heading_sizes: Vec<f64> = lines
        .iter()
        .filter(|l| is_heading(l, body))
        .map(|l| round(l.size))
        .collect();
    heading_sizes.sort_by(|a, b| b.total_cmp(a));
    heading_sizes.dedup();
    let mut builder = Builder::new(limits);
    let mut paragraph = String::new();
    let mut previous: Option<&Line> = None;
    for line in lines {
        let text = unligature(line.text.trim());
        if is_heading(line, body) {
            builder.paragraph(&paragraph)?;
            paragraph.clear();
            let rank = heading_sizes
                .iter()
                .position(|s| *s == round(line.size))
                .unwrap_or(0);
            let level = u8::try_from(rank + 1).unwrap_or(6).min(6);
            // A heading broken over two lines of the same size continues.
            match previous {
                Some(p)
                    if is_heading(p, body)
                        && round(p.size) == round(line.size)
                        && p.page == line.page =>
                {
                    builder.continue_heading(&text);
                }
                _ => builder.heading(level, &text)?,
            }
        } else {
            let gap = previous.map_or(0.0, |p| p.y - line.y);
            let new_paragraph = previous
                .is_some_and(|p| p.page != line.page && paragraph.trim_end().ends_with('.'))
                || gap > line.size.max(1.0) * 1.9
                || gap < 0.0 && previous.is_some_and(|p| p.page == line.page);
            if new_paragraph {
                builder.paragraph(&paragraph)?;
                paragraph.clear();
            }
            join_line(&mut paragraph, &text);
        }
        previous = Some(line);
    }
    builder.paragraph(&paragraph)?;
    Ok(builder.finish())
}

fn round(size: f64) -> f64 {
    (size * 2.0).round() / 2.0
}

/// The size most characters are set in.
fn body_size(lines: &[Line]) -> f64 {
    let mut counts: Vec<(f64, usize)> = Vec::new();
    for line in lines {
        let size = round(line.size);
        let chars = line.text.chars().count();
        match counts.iter_mut().find(|(s, _)| *s == size) {
            Some((_, n)) => *n += chars,
            None => counts.push((size, chars)),
        }
    }
    counts
        .into_iter()
        .max_by(|a, b| a.1.cmp(&b.1).then(b.0.total_cmp(&a.0)))
        .map_or(0.0, |(s, _)| s)
}

fn is_heading(line: &Line, body: f64) -> bool {
    let words = line.text.split_whitespace().count();
    body > 0.0
        && line.size >= body * 1.15
        && (1..=20).contains(&words)
        && line.text.chars().any(char::is_alphabetic)
}

/// Appends a line to a paragraph, joining a word hyphenated across the break.
fn join_line(paragraph: &mut String, line: &str) {
    if paragraph.ends_with('-')
        && !paragraph.ends_with(" -")
        && line.chars().next().is_some_and(char::is_lowercase)
    {
        paragraph.pop();
        paragraph.push_str(line);
        return;
    }
    if !paragraph.is_empty() {
        paragraph.push(' ');
    }
    paragraph.push_str(line);
}

/// Unfolds the ligature code points U+FB00–FB06.
fn unligature(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\u{fb00}' => out.push_str("ff"),
            '\u{fb01}' => out.push_str("fi"),
            '\u{fb02}' => out.push_str("fl"),
            '\u{fb03}' => out.push_str("ffi"),
            '\u{fb04}' => out.push_str("ffl"),
            '\u{fb05}' | '\u{fb06}' => out.push_str("st"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(text: &str, size: f64, y: f64) -> Line {
        Line {
            text: text.into(),
            size,
            y,
            page: 1,
        }
    }

    #[test]
    fn larger_short_lines_are_headings_ranked_by_size() {
        let lines = [
            line("Guide", 20.0, 800.0),
            line(
                "Some body text that goes on for a while and is set",
                11.0,
                780.0,
            ),
            line("in the body size, with a hyphen-", 11.0, 767.0),
            line("ated word.", 11.0, 754.0),
            line("Lists", 15.0, 720.0),
            line("More body text after a gap.", 11.0, 700.0),
            line("A new paragraph after a wide gap.", 11.0, 660.0),
        ];
        let doc = structure(&lines, &Limits::default()).unwrap_or_default();
        let headings: Vec<_> = doc
            .sections
            .iter()
            .map(|s| (s.heading.clone().unwrap_or_default(), s.level))
            .collect();
        assert_eq!(headings, [("Guide".into(), 1), ("Lists".into(), 2)]);
        assert_eq!(
            doc.sections[0].paragraphs[0].text,
            "Some body text that goes on for a while and is set in the body size, with a hyphenated word."
        );
        assert_eq!(doc.sections[1].paragraphs.len(), 2);
        assert_eq!(unligature("\u{fb01}nd"), "find");
    }
}
