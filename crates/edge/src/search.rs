//! What every [`Searchable`](crate::Searchable) shares: highlight settings and marking.

/// `ts_headline` options: matched terms in `<mark>…</mark>`, two fragments of at most 35
/// words.
pub const HEADLINE: &str = "StartSel=<mark>, StopSel=</mark>, MaxWords=35, MinWords=12, \
                            MaxFragments=2, FragmentDelimiter=\" … \"";

/// SQL that HTML-escapes the text expression `expr` (`&`, `<`, `>`) before `ts_headline`
/// adds its marks, so a highlight holds no markup but the marks.
pub fn escaped(expr: &str) -> String {
    format!("replace(replace(replace({expr}, '&', '&amp;'), '<', '&lt;'), '>', '&gt;')")
}

/// `text` with the `LIKE` wildcards (`%`, `_`) and the escape character escaped, so that a
/// pattern built from it matches user text literally.
pub fn like_literal(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// A highlight without marks (the hit matched by part of a word, which full text does not
/// see): marks the first ASCII-case-insensitive occurrences of `q`'s words in `highlight`
/// instead. `highlight` is already HTML-escaped, so `q` is escaped the same way first.
pub fn mark_words(highlight: String, q: &str) -> String {
    if highlight.contains("<mark>") {
        return highlight;
    }
    let lower = highlight.to_ascii_lowercase();
    let mut spans: Vec<(usize, usize)> = Vec::new();
    for word in q.split_whitespace() {
        let word = word
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .to_ascii_lowercase();
        if word.is_empty() {
            continue;
        }
        let mut from = 0;
        while let Some(at) = lower[from..].find(&word) {
            let start = from + at;
            let end = start + word.len();
            if !inside_entity(&highlight, start)
                && !inside_entity(&highlight, end)
                && !spans.iter().any(|&(s, e)| start < e && s < end)
            {
                spans.push((start, end));
            }
            from = end;
        }
    }
    if spans.is_empty() {
        return highlight;
    }
    spans.sort_unstable();
    let mut out = String::with_capacity(highlight.len() + spans.len() * 13);
    let mut at = 0;
    for (start, end) in spans {
        // ASCII lower-casing keeps byte offsets, so the spans cut `highlight` at the same
        // (character) boundaries as `lower`.
        out.push_str(&highlight[at..start]);
        out.push_str("<mark>");
        out.push_str(&highlight[start..end]);
        out.push_str("</mark>");
        at = end;
    }
    out.push_str(&highlight[at..]);
    out
}

/// Whether byte `at` falls strictly inside an escape such as `&amp;`.
fn inside_entity(text: &str, at: usize) -> bool {
    let before = &text[..at];
    before
        .rfind('&')
        .is_some_and(|amp| at > amp && !before[amp..].contains(';') && text[amp..].contains(';'))
        && !text[..at].ends_with(';')
}

#[cfg(test)]
mod tests {
    use super::mark_words;

    #[test]
    fn a_highlight_with_marks_is_kept() {
        let h = "<mark>Python</mark> basics".to_owned();
        assert_eq!(mark_words(h.clone(), "pyth"), h);
    }

    #[test]
    fn parts_of_words_are_marked_case_insensitively() {
        assert_eq!(
            mark_words("Python (computer programming)".into(), "pyth PROG"),
            "<mark>Pyth</mark>on (computer <mark>prog</mark>ramming)"
        );
    }

    #[test]
    fn escaped_text_is_matched_as_escaped() {
        assert_eq!(
            mark_words("R &amp; D".into(), "&"),
            "R <mark>&amp;</mark> D"
        );
        assert_eq!(
            mark_words("naïve Bayes".into(), "bay"),
            "naïve <mark>Bay</mark>es"
        );
        assert_eq!(mark_words("nothing".into(), "xyz"), "nothing");
        assert_eq!(mark_words("R &amp; D".into(), "amp"), "R &amp; D");
    }
}
