//! DOCX: `word/document.xml` out of the zip (read into memory, never extracted to disk, and
//! capped at [`Limits::max_inflated_bytes`] whatever the zip declares, against zip bombs),
//! streamed through `quick-xml` (no recursion, so deep nesting costs no stack). Paragraphs
//! styled `Heading1`…`Heading6` or `Title` open sections; `w:t` is text, `w:tab` and `w:br`
//! whitespace.

use std::io::{Cursor, Read};

use quick_xml::Reader;
use quick_xml::events::Event;

use crate::document::Builder;
use crate::{Document, ExtractError, Limits};

pub(crate) fn extract(bytes: &[u8], limits: &Limits) -> Result<Document, ExtractError> {
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes))
        .map_err(|e| ExtractError::Malformed(format!("not a DOCX zip: {e}")))?;
    let entry = archive
        .by_name("word/document.xml")
        .map_err(|_| ExtractError::Malformed("no word/document.xml in the DOCX".into()))?;
    let cap = limits.max_inflated_bytes;
    let too_large = || {
        ExtractError::TooLarge(format!(
            "word/document.xml inflates past {} MiB",
            cap / (1024 * 1024)
        ))
    };
    if entry.size() > cap {
        return Err(too_large());
    }
    let mut xml = Vec::new();
    entry
        .take(cap + 1)
        .read_to_end(&mut xml)
        .map_err(|e| ExtractError::Malformed(format!("reading word/document.xml: {e}")))?;
    if xml.len() as u64 > cap {
        return Err(too_large());
    }
    let xml = String::from_utf8(xml).map_err(|e| ExtractError::NotUtf8 {
        offset: e.utf8_error().valid_up_to(),
    })?;
    paragraphs(&xml, limits)
}

fn paragraphs(xml: &str, limits: &Limits) -> Result<Document, ExtractError> {
    let mut reader = Reader::from_str(xml);
    let mut builder = Builder::new(limits);
    let mut text = String::new();
    let mut heading: Option<u8> = None;
    let mut in_text = false;
    loop {
        let event = reader
            .read_event()
            .map_err(|e| ExtractError::Malformed(format!("word/document.xml: {e}")))?;
        match event {
            Event::Start(e) if e.local_name().as_ref() == "t" => in_text = true,
            Event::Start(e) | Event::Empty(e) => match e.local_name().as_ref() {
                "p" => {
                    text.clear();
                    heading = None;
                }
                "pStyle" => {
                    for attribute in e.attributes().flatten() {
                        if attribute.key.local_name().as_ref() == "val" {
                            let value = attribute
                                .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                                .unwrap_or_default();
                            heading = heading_level(&value);
                        }
                    }
                }
                "tab" => text.push('\t'),
                "br" | "cr" => text.push(' '),
                _ => {}
            },
            Event::End(e) => match e.local_name().as_ref() {
                "t" => in_text = false,
                "p" => {
                    match heading.take() {
                        Some(level) => builder.heading(level, &text)?,
                        None => builder.paragraph(&text)?,
                    }
                    text.clear();
                }
                _ => {}
            },
            Event::Text(t) if in_text => text.push_str(&t.xml10_content()),
            Event::GeneralRef(r) if in_text => {
                if let Ok(Some(c)) = r.resolve_char_ref() {
                    text.push(c);
                } else {
                    text.push(match &*r.xml10_content() {
                        "amp" => '&',
                        "lt" => '<',
                        "gt" => '>',
                        "quot" => '"',
                        "apos" => '\'',
                        _ => ' ',
                    });
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(builder.finish())
}

fn heading_level(style: &str) -> Option<u8> {
    let lower = style.to_ascii_lowercase();
    if lower == "title" {
        return Some(1);
    }
    let digits = lower.strip_prefix("heading")?.trim();
    digits
        .parse::<u8>()
        .ok()
        .filter(|l| (1..=9).contains(l))
        .map(|l| l.min(6))
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn docx(document_xml: &str) -> Vec<u8> {
        let mut bytes = Vec::new();
        {
            let mut zip = zip::ZipWriter::new(Cursor::new(&mut bytes));
            let options = zip::write::SimpleFileOptions::default();
            let _ = zip.start_file("word/document.xml", options);
            let _ = zip.write_all(document_xml.as_bytes());
            let _ = zip.finish();
        }
        bytes
    }

    #[test]
    fn heading_styles_open_sections() {
        let xml = r#"<w:document xmlns:w="x"><w:body>
            <w:p><w:pPr><w:pStyle w:val="Heading1"/></w:pPr><w:r><w:t>Lists</w:t></w:r></w:p>
            <w:p><w:r><w:t xml:space="preserve">Lists are </w:t></w:r><w:r><w:t>mutable &amp; ordered.</w:t></w:r></w:p>
            <w:p><w:pPr><w:pStyle w:val="Heading2"/></w:pPr><w:r><w:t>Methods</w:t></w:r></w:p>
            <w:p><w:r><w:t>append</w:t><w:tab/><w:t>adds</w:t></w:r></w:p>
            </w:body></w:document>"#;
        let doc = extract(&docx(xml), &Limits::default()).unwrap_or_default();
        let headings: Vec<_> = doc
            .sections
            .iter()
            .map(|s| (s.heading.clone().unwrap_or_default(), s.level))
            .collect();
        assert_eq!(headings, [("Lists".into(), 1), ("Methods".into(), 2)]);
        assert_eq!(
            doc.sections[0].paragraphs[0].text,
            "Lists are mutable & ordered."
        );
        assert_eq!(doc.sections[1].paragraphs[0].text, "append adds");
    }

    #[test]
    fn a_part_inflating_past_the_cap_is_refused_unread() {
        let xml = format!(
            "<w:document><w:body><w:p><w:r><w:t>{}</w:t></w:r></w:p></w:body></w:document>",
            "a".repeat(2_000_000)
        );
        let limits = Limits {
            max_inflated_bytes: 1_000_000,
            ..Limits::default()
        };
        assert!(matches!(
            extract(&docx(&xml), &limits),
            Err(ExtractError::TooLarge(_))
        ));
        assert!(matches!(
            extract(b"PK\x03\x04garbage", &limits),
            Err(ExtractError::Malformed(_))
        ));
    }
}
