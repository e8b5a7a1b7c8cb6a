//! Markdown (CommonMark with tables), through `pulldown-cmark`: a pull parser without
//! recursion, so deeply nested quotes or lists cost memory, not stack.

use pulldown_cmark::{Event, HeadingLevel, Options, Parser, Tag, TagEnd};

use crate::document::Builder;
use crate::{Document, ExtractError, Limits};

pub(crate) fn extract(text: &str, limits: &Limits) -> Result<Document, ExtractError> {
    let mut builder = Builder::new(limits);
    let mut buffer = String::new();
    let mut heading: Option<u8> = None;
    let mut code = false;
    for event in Parser::new_ext(text, Options::ENABLE_TABLES) {
        match event {
            Event::Start(Tag::Heading { level, .. }) => {
                builder.paragraph(&buffer)?;
                buffer.clear();
                heading = Some(level_number(level));
            }
            Event::End(TagEnd::Heading(_)) => {
                builder.heading(heading.take().unwrap_or(1), &buffer)?;
                buffer.clear();
            }
            Event::Start(Tag::CodeBlock(_)) => {
                builder.paragraph(&buffer)?;
                buffer.clear();
                code = true;
            }
            Event::End(TagEnd::CodeBlock) => {
                builder.verbatim(&buffer)?;
                buffer.clear();
                code = false;
            }
            Event::End(TagEnd::Paragraph | TagEnd::Item | TagEnd::TableRow | TagEnd::TableHead) => {
                builder.paragraph(&buffer)?;
                buffer.clear();
            }
            Event::Text(text) | Event::Code(text) => buffer.push_str(&text),
            Event::SoftBreak | Event::HardBreak => buffer.push(if code { '\n' } else { ' ' }),
            Event::End(TagEnd::TableCell) => buffer.push(' '),
            _ => {}
        }
    }
    builder.paragraph(&buffer)?;
    Ok(builder.finish())
}

fn level_number(level: HeadingLevel) -> u8 {
    match level {
        HeadingLevel::H1 => 1,
        HeadingLevel::H2 => 2,
        HeadingLevel::H3 => 3,
        HeadingLevel::H4 => 4,
        HeadingLevel::H5 => 5,
        HeadingLevel::H6 => 6,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headings_open_sections_and_code_keeps_its_lines() {
        let doc = extract(
            "Intro *text*.\n\n# First\n\nPara `one`\ncontinues.\n\n## Sub\n\n- a\n- b\n\n```\nx = 1\ny = 2\n```\n",
            &Limits::default(),
        )
        .unwrap_or_default();
        let headings: Vec<_> = doc
            .sections
            .iter()
            .map(|s| (s.heading.clone(), s.level))
            .collect();
        assert_eq!(
            headings,
            [
                (None, 0),
                (Some("First".into()), 1),
                (Some("Sub".into()), 2)
            ]
        );
        assert_eq!(doc.sections[1].paragraphs[0].text, "Para one continues.");
        let sub: Vec<_> = doc.sections[2]
            .paragraphs
            .iter()
            .map(|p| p.text.as_str())
            .collect();
        assert_eq!(sub, ["a", "b", "x = 1\ny = 2"]);
    }

    #[test]
    fn deep_nesting_does_not_recurse() {
        let text = format!("{} deep\n", ">".repeat(100_000));
        let doc = extract(&text, &Limits::default()).unwrap_or_default();
        assert_eq!(doc.words(), 1);
    }
}
