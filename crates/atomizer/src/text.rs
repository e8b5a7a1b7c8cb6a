//! Words, sentences, syllables and stopwords: the small text tools the atomizer needs.

/// Lowercased alphanumeric tokens (apostrophes inside words kept).
pub fn tokens(text: &str) -> Vec<String> {
    text.split(|c: char| !(c.is_alphanumeric() || c == '\'' || c == '_'))
        .map(|t| t.trim_matches('\'').to_lowercase())
        .filter(|t| !t.is_empty())
        .collect()
}

/// Sentences: a `.`, `!` or `?` followed by whitespace and an uppercase letter, a digit or a
/// quote ends one, unless the word before is a known abbreviation or a single letter.
pub fn sentences(text: &str) -> Vec<&str> {
    const ABBREVIATIONS: &[&str] = &[
        "e.g", "i.e", "etc", "vs", "mr", "mrs", "ms", "dr", "prof", "fig", "no", "cf", "al",
        "approx", "st", "jr", "sr",
    ];
    let mut out = Vec::new();
    let mut start = 0;
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    for (k, &(i, c)) in chars.iter().enumerate() {
        if !matches!(c, '.' | '!' | '?') {
            continue;
        }
        let Some(&(_, next)) = chars.get(k + 1) else {
            continue;
        };
        let after = chars.get(k + 2).map(|&(_, c)| c);
        if !next.is_whitespace()
            || !after.is_some_and(|a| {
                a.is_uppercase() || a.is_ascii_digit() || a == '"' || a == '\u{201c}'
            })
        {
            continue;
        }
        let word_start = text[start..i]
            .rfind(char::is_whitespace)
            .map_or(start, |w| start + w + 1);
        let word = text[word_start..i].to_lowercase();
        if c == '.' && (ABBREVIATIONS.contains(&word.as_str()) || word.chars().count() == 1) {
            continue;
        }
        let end = i + c.len_utf8();
        let sentence = text[start..end].trim();
        if !sentence.is_empty() {
            out.push(sentence);
        }
        start = end;
    }
    let rest = text[start..].trim();
    if !rest.is_empty() {
        out.push(rest);
    }
    out
}

/// Syllables of an English word, by vowel groups (the usual heuristic of readability tools).
pub(crate) fn syllables(word: &str) -> usize {
    let word = word.to_lowercase();
    let mut count = 0;
    let mut previous_vowel = false;
    for c in word.chars() {
        let vowel = matches!(c, 'a' | 'e' | 'i' | 'o' | 'u' | 'y');
        if vowel && !previous_vowel {
            count += 1;
        }
        previous_vowel = vowel;
    }
    if word.ends_with('e') && !word.ends_with("le") && count > 1 {
        count -= 1;
    }
    count.max(1)
}

/// Flesch–Kincaid grade level of a text.
pub fn grade_level(text: &str) -> f64 {
    let words: Vec<&str> = text.split_whitespace().collect();
    if words.is_empty() {
        return 0.0;
    }
    let sentences = sentences(text).len().max(1) as f64;
    let syllables: usize = words.iter().map(|w| syllables(w)).sum();
    let n = words.len() as f64;
    0.39 * (n / sentences) + 11.8 * (syllables as f64 / n) - 15.59
}

/// Common English function words: never a concept, never the edge of a keyphrase.
pub fn is_stopword(word: &str) -> bool {
    STOPWORDS.binary_search(&word).is_ok()
}

const STOPWORDS: &[&str] = &[
    "a", "about", "above", "after", "again", "against", "all", "also", "am", "an", "and", "any",
    "are", "as", "at", "be", "because", "been", "before", "being", "below", "between", "both",
    "but", "by", "can", "could", "did", "do", "does", "doing", "down", "during", "each", "either",
    "else", "even", "ever", "every", "few", "first", "for", "from", "further", "get", "gets",
    "given", "had", "has", "have", "having", "he", "her", "here", "hers", "him", "his", "how",
    "however", "i", "if", "in", "into", "is", "it", "it's", "its", "itself", "just", "last",
    "less", "let", "like", "made", "make", "makes", "many", "may", "me", "might", "more", "most",
    "much", "must", "my", "need", "new", "next", "no", "nor", "not", "now", "of", "off", "often",
    "on", "once", "one", "only", "or", "other", "our", "out", "over", "own", "per", "quite",
    "rather", "really", "same", "see", "seen", "several", "she", "should", "since", "so", "some",
    "such", "than", "that", "the", "their", "them", "then", "there", "these", "they", "thing",
    "things", "this", "those", "though", "through", "thus", "to", "too", "two", "under", "until",
    "up", "upon", "us", "use", "used", "uses", "using", "usually", "very", "via", "was", "way",
    "we", "well", "were", "what", "when", "where", "whether", "which", "while", "who", "whom",
    "why", "will", "with", "within", "without", "would", "yet", "you", "your", "yours",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stopwords_are_sorted_for_binary_search() {
        assert!(
            STOPWORDS.windows(2).all(|w| w[0] < w[1]),
            "keep STOPWORDS sorted"
        );
        assert!(is_stopword("the") && !is_stopword("python"));
    }

    #[test]
    fn sentences_skip_abbreviations() {
        assert_eq!(
            sentences("Use a list, e.g. Python's. It grows. Dr. Smith agrees! Fine"),
            [
                "Use a list, e.g. Python's.",
                "It grows.",
                "Dr. Smith agrees!",
                "Fine"
            ]
        );
    }

    #[test]
    fn syllables_and_grade() {
        assert_eq!(syllables("function"), 2);
        assert_eq!(syllables("make"), 1);
        assert!(
            grade_level("The cat sat. The dog ran.")
                < grade_level(
                    "Comprehensive understanding necessitates considerable intellectual investment."
                )
        );
    }
}
