//! reStructuredText, hand-rolled (no robust Rust parser exists; research/wave2.md §1d): a
//! section title is a line underlined (and optionally overlined) by one repeated punctuation
//! character at least as long as the title; levels follow the order in which adornment styles
//! first appear, as in docutils. Explicit markup (`.. directive::`, comments, targets) is
//! dropped with its indented body, except admonitions, whose body is text; literal blocks
//! after `::` are kept verbatim. Inline roles keep their text (`:ref:`x <y>`` is "x").

use crate::document::Builder;
use crate::{Document, ExtractError, Limits};

const ADMONITIONS: &[&str] = &[
    "note",
    "warning",
    "tip",
    "important",
    "hint",
    "caution",
    "attention",
    "seealso",
    "danger",
    "error",
    "admonition",
    "versionadded",
    "versionchanged",
    "deprecated",
];

/// Whether a line is a section adornment: one punctuation character repeated, 2 or more.
pub(crate) fn is_adornment(line: &str) -> bool {
    let line = line.trim_end();
    let mut chars = line.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    line.len() >= 2
        && first.is_ascii_punctuation()
        && !matches!(
            first,
            '.' | ',' | ';' | '(' | ')' | '[' | ']' | '{' | '}' | '\\'
        )
        && chars.all(|c| c == first)
}

pub(crate) fn extract(text: &str, limits: &Limits) -> Result<Document, ExtractError> {
    let lines: Vec<&str> = text.lines().collect();
    let mut builder = Builder::new(limits);
    let mut styles: Vec<(char, bool)> = Vec::new();
    let mut paragraph = String::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        // Overlined title: rule, title, rule.
        if is_adornment(line)
            && i + 2 < lines.len()
            && !lines[i + 1].trim().is_empty()
            && lines[i + 2].trim_end() == line.trim_end()
            && line.trim_end().len() >= lines[i + 1].trim().len()
        {
            flush(&mut builder, &mut paragraph)?;
            let level = level_of(&mut styles, line, true);
            builder.heading(level, &inline(lines[i + 1].trim()))?;
            i += 3;
            continue;
        }
        // Underlined title.
        if !line.trim().is_empty()
            && !line.starts_with(' ')
            && i + 1 < lines.len()
            && is_adornment(lines[i + 1])
            && lines[i + 1].trim_end().len() >= line.trim_end().chars().count()
            && paragraph.is_empty()
        {
            let level = level_of(&mut styles, lines[i + 1], false);
            builder.heading(level, &inline(line.trim()))?;
            i += 2;
            continue;
        }
        if line.trim().is_empty() {
            flush(&mut builder, &mut paragraph)?;
            i += 1;
            continue;
        }
        if let Some(directive) = line.strip_prefix(".. ") {
            flush(&mut builder, &mut paragraph)?;
            let name = directive.split("::").next().unwrap_or_default().trim();
            let keep = directive.contains("::") && ADMONITIONS.contains(&name);
            let (body, next) = indented_block(&lines, i + 1);
            if keep {
                let rest = directive.split_once("::").map_or("", |(_, r)| r).trim();
                builder.paragraph(&inline(&format!("{rest} {}", body.join(" "))))?;
            }
            i = next;
            continue;
        }
        let ends_literal = line.trim_end().ends_with("::");
        if ends_literal {
            let shown = line.trim_end().trim_end_matches("::");
            // "Text::" shows "Text:"; a lone "::" shows nothing.
            paragraph.push_str(shown);
            if !shown.trim().is_empty() {
                paragraph.push(':');
            }
            flush(&mut builder, &mut paragraph)?;
            let (body, next) = indented_block(&lines, i + 1);
            builder.verbatim(&dedent(&body))?;
            i = next;
            continue;
        }
        paragraph.push_str(line.trim());
        paragraph.push(' ');
        i += 1;
    }
    flush(&mut builder, &mut paragraph)?;
    Ok(builder.finish())
}

fn flush(builder: &mut Builder, paragraph: &mut String) -> Result<(), ExtractError> {
    builder.paragraph(&inline(paragraph))?;
    paragraph.clear();
    Ok(())
}

fn level_of(styles: &mut Vec<(char, bool)>, rule: &str, overline: bool) -> u8 {
    let style = (rule.chars().next().unwrap_or('='), overline);
    let index = styles.iter().position(|s| *s == style).unwrap_or_else(|| {
        styles.push(style);
        styles.len() - 1
    });
    u8::try_from(index + 1).unwrap_or(6).min(6)
}

/// The indented lines (and blank lines among them) from `start`; returns them and the index
/// after the block.
fn indented_block<'a>(lines: &[&'a str], start: usize) -> (Vec<&'a str>, usize) {
    let mut end = start;
    let mut last_text = start;
    while end < lines.len() {
        let line = lines[end];
        if line.trim().is_empty() {
            end += 1;
            continue;
        }
        if line.starts_with(' ') || line.starts_with('\t') {
            end += 1;
            last_text = end;
        } else {
            break;
        }
    }
    (lines[start..last_text].to_vec(), last_text.max(start))
}

fn dedent(lines: &[&str]) -> String {
    let indent = lines
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    lines
        .iter()
        .map(|l| l.get(indent..).unwrap_or("").trim_end())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Inline markup to text: roles (`:ref:`text <target>`` → text), interpreted text, literals,
/// emphasis and hyperlink references.
pub(crate) fn inline(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find('`') {
        let (before, after) = rest.split_at(start);
        // Drop a role prefix such as `:ref:` or `:func:` right before the backquote.
        let before = match before.rfind(':') {
            Some(end) if end + 1 == before.len() => match before[..end].rfind(':') {
                Some(colon)
                    if before[colon + 1..end]
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == ':') =>
                {
                    &before[..colon]
                }
                _ => before,
            },
            _ => before,
        };
        out.push_str(before);
        let ticks = after.chars().take_while(|&c| c == '`').count();
        let body = &after[ticks..];
        let close = "`".repeat(ticks);
        let Some(end) = body.find(&close) else {
            out.push_str(after);
            rest = "";
            break;
        };
        let inner = &body[..end];
        let shown = match (inner.rfind('<'), inner.ends_with('>')) {
            (Some(lt), true) if lt > 0 => inner[..lt].trim_end(),
            _ => inner.trim_start_matches('~').trim_start_matches('!'),
        };
        out.push_str(shown);
        rest = body[end + ticks..].trim_start_matches('_');
    }
    out.push_str(rest);
    out.replace("**", "").replace("\\ ", "")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_levels_directives_and_literals() {
        let text = "\
=====
Guide
=====

Intro with :ref:`a link <tut-x>` and ``code``.

Lists
-----

Use a list::

   x = [1, 2]

.. note::

   Lists are mutable.

.. _target:

.. index:: pair: list; mutable

Tuples
------

Immutable.
";
        let doc = extract(text, &Limits::default()).unwrap_or_default();
        let headings: Vec<_> = doc
            .sections
            .iter()
            .map(|s| (s.heading.clone().unwrap_or_default(), s.level))
            .collect();
        assert_eq!(
            headings,
            [
                ("Guide".into(), 1),
                ("Lists".into(), 2),
                ("Tuples".into(), 2)
            ]
        );
        assert_eq!(
            doc.sections[0].paragraphs[0].text,
            "Intro with a link and code."
        );
        let lists: Vec<_> = doc.sections[1]
            .paragraphs
            .iter()
            .map(|p| p.text.as_str())
            .collect();
        assert_eq!(lists, ["Use a list:", "x = [1, 2]", "Lists are mutable."]);
    }
}
