//! Keyphrases: runs of one to three content words inside a clause (never starting or ending
//! on a stopword), scored per atom by frequency in the atom × rarity across the document's
//! atoms (inverse document frequency) × a bonus for longer phrases and for phrases in the
//! title. Deterministic: ties break by the phrase.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::text::{is_stopword, tokens};

/// Concepts kept per atom.
pub(crate) const PER_ATOM: usize = 6;

/// Candidate phrases of a text with their counts.
pub(crate) fn candidates(text: &str) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for clause in text.split(|c: char| {
        matches!(
            c,
            '.' | ',' | ';' | ':' | '!' | '?' | '(' | ')' | '"' | '\n' | '[' | ']' | '{' | '}'
        )
    }) {
        let words = tokens(clause);
        for n in 1..=3 {
            for window in words.windows(n) {
                let (first, last) = (&window[0], &window[n - 1]);
                if is_stopword(first) || is_stopword(last) || window.iter().any(|w| !useful(w)) {
                    continue;
                }
                *out.entry(window.join(" ")).or_insert(0) += 1;
            }
        }
    }
    out
}

fn useful(word: &str) -> bool {
    word.chars().count() >= 3 && word.chars().any(char::is_alphabetic) && word.chars().count() <= 40
}

/// The concepts of each text (atom), best first, and the rarity (0–1) of each chosen one.
pub fn extract(texts: &[(&str, &str)]) -> Vec<Vec<(String, f64)>> {
    let per_text: Vec<BTreeMap<String, usize>> =
        texts.iter().map(|(_, text)| candidates(text)).collect();
    let mut document_frequency: HashMap<&str, usize> = HashMap::new();
    for counts in &per_text {
        for phrase in counts.keys() {
            *document_frequency.entry(phrase).or_insert(0) += 1;
        }
    }
    let n = texts.len() as f64;
    let max_idf = (1.0 + n).ln().max(f64::MIN_POSITIVE);
    texts
        .iter()
        .zip(&per_text)
        .map(|((title, _), counts)| {
            let title_tokens: HashSet<String> = tokens(title).into_iter().collect();
            let mut scored: Vec<(f64, &String, f64)> = counts
                .iter()
                .filter(|(phrase, count)| {
                    **count >= 2 || phrase.contains(' ') || title_tokens.contains(phrase.as_str())
                })
                .map(|(phrase, &count)| {
                    let df = document_frequency
                        .get(phrase.as_str())
                        .copied()
                        .unwrap_or(1) as f64;
                    let idf = (1.0 + n / df).ln();
                    let words = phrase.split(' ').count() as f64;
                    let in_title = phrase.split(' ').all(|w| title_tokens.contains(w));
                    let score = (count as f64).sqrt()
                        * idf
                        * (1.0 + 0.6 * (words - 1.0))
                        * if in_title { 1.8 } else { 1.0 };
                    (score, phrase, (idf / max_idf).clamp(0.0, 1.0))
                })
                .collect();
            scored.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(b.1)));
            let mut chosen: Vec<(String, f64)> = Vec::new();
            for (_, phrase, rarity) in scored {
                if chosen.len() == PER_ATOM {
                    break;
                }
                let overlaps = chosen
                    .iter()
                    .any(|(c, _)| contains_words(c, phrase) || contains_words(phrase, c));
                if !overlaps {
                    chosen.push((phrase.clone(), rarity));
                }
            }
            chosen
        })
        .collect()
}

/// Whether `phrase`'s words occur in order in `text`'s words.
pub(crate) fn contains_words(text: &str, phrase: &str) -> bool {
    let hay: Vec<&str> = text.split(' ').collect();
    let needle: Vec<&str> = phrase.split(' ').collect();
    hay.windows(needle.len()).any(|w| w == needle.as_slice())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phrases_skip_stopword_edges_and_prefer_specific_repeated_terms() {
        let texts = [
            (
                "Defining Functions",
                "The keyword def introduces a function definition. A function definition binds the function name. The function body starts on the next line.",
            ),
            (
                "Classes",
                "Classes provide a means of bundling data and functionality together. Creating a new class creates a new type of object. Class instances can have attributes.",
            ),
        ];
        let concepts = extract(&texts);
        let first: Vec<&str> = concepts[0].iter().map(|(c, _)| c.as_str()).collect();
        assert!(first.contains(&"function definition"), "{first:?}");
        assert!(
            !first
                .iter()
                .any(|c| c.starts_with("the ") || c.ends_with(" a"))
        );
        assert!(concepts.iter().all(|c| c.len() <= PER_ATOM));
        assert_eq!(extract(&texts), concepts, "deterministic");
    }
}
