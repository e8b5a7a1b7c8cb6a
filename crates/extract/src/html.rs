//! HTML through `scraper` (html5ever): headings `h1`–`h6` open sections; block elements end
//! paragraphs; `script`, `style`, `nav`, `head` and the like are skipped. The walk is
//! iterative (`ego_tree`'s traversal), so a page nested 100,000 deep costs no stack.

use ego_tree::iter::Edge;
use scraper::{Html, Node};

use crate::document::Builder;
use crate::{Document, ExtractError, Limits};

const SKIPPED: &[&str] = &[
    "script", "style", "nav", "head", "noscript", "template", "svg", "iframe", "object", "footer",
];
const BLOCKS: &[&str] = &[
    "p",
    "li",
    "div",
    "section",
    "article",
    "blockquote",
    "td",
    "th",
    "tr",
    "dd",
    "dt",
    "figcaption",
    "caption",
    "br",
    "table",
    "ul",
    "ol",
    "dl",
    "main",
    "header",
    "aside",
];

/// Deepest element nesting accepted. html5ever checks scopes by walking its stack of open
/// elements, so a page nested 100,000 deep takes minutes (quadratic): refuse it first.
const MAX_DEPTH: usize = 1_000;

pub(crate) fn extract(text: &str, limits: &Limits) -> Result<Document, ExtractError> {
    if let Some(depth) = deeper_than(text, MAX_DEPTH) {
        return Err(ExtractError::Malformed(format!(
            "HTML nested at least {depth} elements deep (the limit is {MAX_DEPTH})"
        )));
    }
    let html = Html::parse_document(text);
    let mut builder = Builder::new(limits);
    let mut buffer = String::new();
    let mut heading: Option<u8> = None;
    let mut skipping: Option<ego_tree::NodeId> = None;
    let mut pre = 0_u32;
    for edge in html.tree.root().traverse() {
        match edge {
            Edge::Open(node) => {
                if skipping.is_some() {
                    continue;
                }
                match node.value() {
                    Node::Element(element) => {
                        let name = element.name();
                        if SKIPPED.contains(&name) {
                            skipping = Some(node.id());
                        } else if let Some(level) = heading_level(name) {
                            flush(&mut builder, &mut buffer, pre > 0)?;
                            heading = Some(level);
                        } else if name == "pre" {
                            flush(&mut builder, &mut buffer, false)?;
                            pre += 1;
                        } else if BLOCKS.contains(&name) {
                            flush(&mut builder, &mut buffer, pre > 0)?;
                        }
                    }
                    Node::Text(text) => buffer.push_str(text),
                    _ => {}
                }
            }
            Edge::Close(node) => {
                if skipping == Some(node.id()) {
                    skipping = None;
                    continue;
                }
                if skipping.is_some() {
                    continue;
                }
                if let Node::Element(element) = node.value() {
                    let name = element.name();
                    if heading_level(name).is_some() {
                        if let Some(level) = heading.take() {
                            builder.heading(level, &buffer)?;
                            buffer.clear();
                        }
                    } else if name == "pre" {
                        flush(&mut builder, &mut buffer, true)?;
                        pre = pre.saturating_sub(1);
                    } else if BLOCKS.contains(&name) && heading.is_none() {
                        flush(&mut builder, &mut buffer, pre > 0)?;
                    } else if heading.is_none() {
                        // Inline elements: keep words apart across tags like `<td>a</td><td>b`.
                        if matches!(name, "td" | "th" | "span") {
                            buffer.push(' ');
                        }
                    }
                }
            }
        }
    }
    flush(&mut builder, &mut buffer, false)?;
    Ok(builder.finish())
}

/// A linear, approximate nesting count over the tags (void, self-closed and implicitly
/// closed elements such as `p` and `li` do not count): `Some(depth)` once it passes `max`.
fn deeper_than(text: &str, max: usize) -> Option<usize> {
    const UNCOUNTED: &[&str] = &[
        "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param",
        "source", "track", "wbr", "p", "li", "dt", "dd", "tr", "td", "th", "option", "!--",
        "!doctype",
    ];
    let bytes = text.as_bytes();
    let mut depth = 0_usize;
    let mut i = 0;
    while let Some(offset) = bytes[i..].iter().position(|&b| b == b'<') {
        let start = i + offset + 1;
        let close = bytes.get(start) == Some(&b'/');
        let name_start = start + usize::from(close);
        let name_end = bytes[name_start..]
            .iter()
            .position(|b| !(b.is_ascii_alphanumeric() || *b == b'!' || *b == b'-'))
            .map_or(bytes.len(), |n| name_start + n);
        let name = text[name_start..name_end].to_ascii_lowercase();
        let tag_end = bytes[name_end..]
            .iter()
            .position(|&b| b == b'>')
            .map_or(bytes.len(), |n| name_end + n);
        let self_closed = tag_end > 0 && bytes.get(tag_end - 1) == Some(&b'/');
        if !name.is_empty() && !UNCOUNTED.contains(&name.as_str()) && !self_closed {
            if close {
                depth = depth.saturating_sub(1);
            } else {
                depth += 1;
                if depth > max {
                    return Some(depth);
                }
            }
        }
        i = tag_end.min(bytes.len().saturating_sub(1)).max(start);
        if i >= bytes.len() - 1 {
            break;
        }
    }
    None
}

fn flush(builder: &mut Builder, buffer: &mut String, verbatim: bool) -> Result<(), ExtractError> {
    if verbatim {
        builder.verbatim(buffer)?;
    } else {
        builder.paragraph(buffer)?;
    }
    buffer.clear();
    Ok(())
}

fn heading_level(name: &str) -> Option<u8> {
    match name {
        "h1" => Some(1),
        "h2" => Some(2),
        "h3" => Some(3),
        "h4" => Some(4),
        "h5" => Some(5),
        "h6" => Some(6),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headings_blocks_and_skipped_elements() {
        let doc = extract(
            "<html><head><title>T</title><script>var x = 1;</script></head><body>\
             <nav>Home | About</nav><h1>Intro</h1><p>First <b>para</b>.</p><div>Second</div>\
             <h2>Code</h2><pre>a = 1\nb = 2</pre><ul><li>one</li><li>two</li></ul></body></html>",
            &Limits::default(),
        )
        .unwrap_or_default();
        let headings: Vec<_> = doc.sections.iter().map(|s| s.heading.clone()).collect();
        assert_eq!(headings, [Some("Intro".into()), Some("Code".into())]);
        let first: Vec<_> = doc.sections[0]
            .paragraphs
            .iter()
            .map(|p| p.text.as_str())
            .collect();
        assert_eq!(first, ["First para.", "Second"]);
        let code: Vec<_> = doc.sections[1]
            .paragraphs
            .iter()
            .map(|p| p.text.as_str())
            .collect();
        assert_eq!(code, ["a = 1\nb = 2", "one", "two"]);
    }

    #[test]
    fn pages_nested_deeper_than_the_limit_are_refused_before_parsing() {
        let deep = format!(
            "{}deep{}",
            "<div>".repeat(100_000),
            "</div>".repeat(100_000)
        );
        assert!(
            matches!(extract(&deep, &Limits::default()), Err(ExtractError::Malformed(m)) if m.contains("nested"))
        );
        let fine = format!("{}deep{}", "<div>".repeat(900), "</div>".repeat(900));
        assert_eq!(
            extract(&fine, &Limits::default())
                .unwrap_or_default()
                .words(),
            1
        );
        let siblings = "<p>a<br><img src=x><p>b".repeat(5_000);
        assert_eq!(deeper_than(&siblings, 10), None);
    }
}
