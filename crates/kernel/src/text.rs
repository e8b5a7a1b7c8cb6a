//! Rules for free text that users type, shared by every context's value types (the limits
//! themselves live with each context; all are listed in `docs/security.md`, "Input limits").
//!
//! - Lengths count Unicode scalar values ("characters"), like every limit in the SPEC.
//! - Single-line text (names, titles, periods, aliases) refuses every control character
//!   (Unicode category Cc, which includes newline, tab, carriage return, DEL and the C1 set)
//!   and the line and paragraph separators U+2028/U+2029.
//! - Multi-line text (descriptions, feedback) allows newline, tab and CR-LF, nothing else of
//!   category Cc.
//! - Both refuse the Unicode bidirectional embedding, override and isolate controls
//!   (U+202A–U+202E, U+2066–U+2069): they make text render in an order other than the one
//!   stored ("Trojan Source"), so a name could display as something else in a list, an
//!   audit log or an e-mail. Plain direction marks (U+200E, U+200F, U+061C) cannot reorder
//!   other text and stay allowed, as does U+200B, which ESCO labels contain.
//! - Web URLs are absolute `http` or `https` URLs with a host; `javascript:`, `data:`,
//!   `file:` and every other scheme are refused, as is any whitespace or control character.

/// Why a text was refused; the message is safe to show and reads after the field name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TextProblem {
    /// Empty (or only whitespace) where a value is required.
    #[error("must not be empty")]
    Empty,
    /// Longer than the field's limit.
    #[error("must be at most {max} characters")]
    TooLong {
        /// The limit, in characters.
        max: usize,
    },
    /// A control character (or, in single-line text, a line break or tab).
    #[error("must not contain control characters (newline and tab only in multi-line text)")]
    ControlCharacter,
    /// A bidirectional embedding, override or isolate character.
    #[error(
        "must not contain Unicode bidirectional override or isolate characters (U+202A to U+202E, U+2066 to U+2069)"
    )]
    BidiControl,
    /// Not an absolute `http`/`https` URL.
    #[error("must be an absolute http or https URL")]
    NotWebUrl,
}

impl TextProblem {
    /// The problem, attributed to `field` (a JSON path such as `aliases[2]`).
    pub fn at(self, field: impl Into<String>) -> TextError {
        TextError {
            field: field.into(),
            problem: self,
        }
    }
}

/// A field's text was refused: the field's JSON path and the problem. The HTTP edge turns it
/// into 422 naming the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} {problem}")]
pub struct TextError {
    /// JSON path of the field, e.g. `description` or `aliases[2]`.
    pub field: String,
    /// What is wrong with it.
    pub problem: TextProblem,
}

/// Whether `c` is one of the bidirectional embedding/override (U+202A–U+202E) or isolate
/// (U+2066–U+2069) controls.
pub fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

fn check(text: &str, max_chars: usize, multiline: bool) -> Result<(), TextProblem> {
    let mut count = 0usize;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        count += 1;
        if count > max_chars {
            return Err(TextProblem::TooLong { max: max_chars });
        }
        if is_bidi_control(c) {
            return Err(TextProblem::BidiControl);
        }
        let allowed_break =
            multiline && (c == '\n' || c == '\t' || (c == '\r' && chars.peek() == Some(&'\n')));
        if (c.is_control() || (!multiline && matches!(c, '\u{2028}' | '\u{2029}')))
            && !allowed_break
        {
            return Err(TextProblem::ControlCharacter);
        }
    }
    Ok(())
}

/// Checks single-line text: at most `max_chars` characters, no control characters, no
/// line/paragraph separators, no bidirectional overrides. Emptiness is the caller's rule.
///
/// # Errors
/// The first [`TextProblem`] found.
pub fn check_line(text: &str, max_chars: usize) -> Result<(), TextProblem> {
    check(text, max_chars, false)
}

/// Checks multi-line text: as [`check_line`], but newline, tab and CR-LF are allowed.
///
/// # Errors
/// The first [`TextProblem`] found.
pub fn check_multiline(text: &str, max_chars: usize) -> Result<(), TextProblem> {
    check(text, max_chars, true)
}

/// A required single line: `text` without its surrounding whitespace, refused when that
/// leaves nothing, then checked as [`check_line`].
///
/// # Errors
/// [`TextProblem::Empty`], or as [`check_line`].
pub fn required_line(text: &str, max_chars: usize) -> Result<&str, TextProblem> {
    required(text, max_chars, false)
}

/// A required multi-line text: as [`required_line`], checked as [`check_multiline`].
///
/// # Errors
/// [`TextProblem::Empty`], or as [`check_multiline`].
pub fn required_text(text: &str, max_chars: usize) -> Result<&str, TextProblem> {
    required(text, max_chars, true)
}

fn required(text: &str, max_chars: usize, multiline: bool) -> Result<&str, TextProblem> {
    let text = text.trim();
    if text.is_empty() {
        return Err(TextProblem::Empty);
    }
    check(text, max_chars, multiline)?;
    Ok(text)
}

/// Checks a link users will click: at most `max_chars` characters, an absolute `http` or
/// `https` URL with a non-empty host, and no whitespace, control or bidirectional characters
/// anywhere (so `java\tscript:` or a URL that displays differently cannot slip through).
///
/// # Errors
/// [`TextProblem::TooLong`], [`TextProblem::BidiControl`] or [`TextProblem::NotWebUrl`].
pub fn check_web_url(text: &str, max_chars: usize) -> Result<(), TextProblem> {
    check_line(text, max_chars).map_err(|problem| match problem {
        TextProblem::ControlCharacter => TextProblem::NotWebUrl,
        other => other,
    })?;
    if text.chars().any(char::is_whitespace) {
        return Err(TextProblem::NotWebUrl);
    }
    let (scheme, rest) = text.split_once(':').ok_or(TextProblem::NotWebUrl)?;
    if !(scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https")) {
        return Err(TextProblem::NotWebUrl);
    }
    let authority = rest
        .strip_prefix("//")
        .ok_or(TextProblem::NotWebUrl)?
        .split(['/', '?', '#'])
        .next()
        .unwrap_or_default();
    // `user:pass@host:port`: the host is what follows the last `@`, before a port.
    let host_port = authority.rsplit('@').next().unwrap_or_default();
    let host = if host_port.starts_with('[') {
        host_port.split(']').next().unwrap_or_default()
    } else {
        host_port.split(':').next().unwrap_or_default()
    };
    if host.is_empty() || host == "[" {
        return Err(TextProblem::NotWebUrl);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn required_text_is_trimmed_and_not_blank() {
        use super::{TextProblem, required_line, required_text};
        assert_eq!(required_line("  Capstone ", 20), Ok("Capstone"));
        assert_eq!(required_line(" \t ", 20), Err(TextProblem::Empty));
        assert_eq!(
            required_line("a\nb", 20),
            Err(TextProblem::ControlCharacter)
        );
        assert_eq!(required_text(" a\nb ", 20), Ok("a\nb"));
        assert_eq!(required_text("\n\n", 20), Err(TextProblem::Empty));
        assert_eq!(
            required_line(" abc ", 2),
            Err(TextProblem::TooLong { max: 2 }),
            "the limit counts the trimmed text"
        );
    }

    use super::*;

    #[test]
    fn lengths_count_characters_not_bytes() {
        assert_eq!(check_line("ééé", 3), Ok(()));
        assert_eq!(check_line("éééé", 3), Err(TextProblem::TooLong { max: 3 }));
        assert_eq!(check_line("", 3), Ok(()), "emptiness is the caller's rule");
    }

    #[test]
    fn single_line_text_refuses_every_control_character_and_line_break() {
        for bad in [
            "a\nb",
            "a\tb",
            "a\rb",
            "a\u{7}b",
            "a\u{7f}b",
            "a\u{85}b",
            "a\u{2028}b",
        ] {
            assert_eq!(
                check_line(bad, 100),
                Err(TextProblem::ControlCharacter),
                "{bad:?}"
            );
        }
        assert_eq!(check_line("Data analysis, Python & SQL", 100), Ok(()));
        assert_eq!(check_line("ESCO\u{200b}label", 100), Ok(()));
        assert_eq!(
            check_line("עברית\u{200f}", 100),
            Ok(()),
            "marks stay allowed"
        );
    }

    #[test]
    fn multi_line_text_allows_newline_tab_and_crlf_only() {
        assert_eq!(check_multiline("one\ntwo\r\n\tthree", 100), Ok(()));
        for bad in ["a\rb", "a\u{0}b", "a\u{1b}[31mred", "a\u{9b}b"] {
            assert_eq!(
                check_multiline(bad, 100),
                Err(TextProblem::ControlCharacter),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn bidirectional_overrides_and_isolates_are_refused_everywhere() {
        for c in ('\u{202A}'..='\u{202E}').chain('\u{2066}'..='\u{2069}') {
            let text = format!("admin{c}gpj.exe");
            assert_eq!(check_line(&text, 100), Err(TextProblem::BidiControl));
            assert_eq!(check_multiline(&text, 100), Err(TextProblem::BidiControl));
            assert!(check_web_url(&format!("https://x.test/{c}"), 100).is_err());
        }
    }

    #[test]
    fn urls_must_be_absolute_http_or_https_with_a_host() {
        for good in [
            "https://example.com",
            "http://example.com/a?b=c#d",
            "HTTPS://Example.com:8443/x",
            "https://user@example.com/",
            "https://[::1]:8080/",
        ] {
            assert_eq!(check_web_url(good, 2048), Ok(()), "{good}");
        }
        for bad in [
            "javascript:alert(1)",
            "JavaScript://example.com/%0aalert(1)",
            "data:text/html,<script>alert(1)</script>",
            "file:///etc/passwd",
            "vbscript:msgbox",
            "ftp://example.com/",
            "https:example.com",
            "https://",
            "https:///path",
            "//example.com",
            "example.com",
            " https://example.com",
            "https://exa mple.com",
            "java\tscript:alert(1)",
            "",
        ] {
            assert_eq!(
                check_web_url(bad, 2048),
                Err(TextProblem::NotWebUrl),
                "{bad:?}"
            );
        }
        assert_eq!(
            check_web_url(&format!("https://example.com/{}", "a".repeat(3000)), 2048),
            Err(TextProblem::TooLong { max: 2048 })
        );
    }

    #[test]
    fn errors_name_their_field() {
        let error = TextProblem::TooLong { max: 5 }.at("aliases[2]");
        assert_eq!(error.to_string(), "aliases[2] must be at most 5 characters");
    }
}
