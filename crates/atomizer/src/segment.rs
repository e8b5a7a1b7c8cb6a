//! Cutting a document into atom-sized segments.
//!
//! Headings are hard boundaries: every section is segmented on its own. A section longer than
//! [`MAX_WORDS`] is cut between its paragraphs (a paragraph over [`MAX_WORDS`] first into
//! groups of sentences) by a dynamic programme that minimises, over all cuts at once,
//! - the cohesion across each cut: how alike the text just before and just after is, half
//!   lexical (cosine of content-word counts over two units each side) and half semantic
//!   (cosine of the mean MiniLM vectors of the same windows), and
//! - a length prior: the squared distance of each segment's words from [`TARGET_WORDS`],
//!   steeper below [`MIN_WORDS`],
//!
//! so cuts fall where the topic shifts and atoms stay roughly 150–600 words, where a greedy
//! threshold would cut at the first dip and leave scraps.

use std::collections::HashMap;
use std::ops::Range;

use crate::text::{is_stopword, sentences, tokens};

/// Fewest words an atom should have (shorter ones are scored down, not merged across
/// headings).
pub const MIN_WORDS: usize = 150;
/// The length atoms aim at.
pub const TARGET_WORDS: usize = 350;
/// Most words of an atom (a single longer sentence excepted).
pub const MAX_WORDS: usize = 600;
/// Most characters of one unit (text longer than this without a sentence break is cut).
const UNIT_CHARS: usize = 12_000;

/// A paragraph or a group of sentences: what cuts fall between.
#[derive(Debug, Clone, PartialEq)]
pub struct Unit {
    /// Its text.
    pub text: String,
    /// Words in it.
    pub words: usize,
    /// For transcripts, when it is spoken.
    pub span_ms: Option<[u64; 2]>,
}

impl Unit {
    fn new(text: String, span_ms: Option<[u64; 2]>) -> Self {
        Self {
            words: text.split_whitespace().count(),
            text,
            span_ms,
        }
    }
}

/// The units of a section's paragraphs: long paragraphs split into sentence groups of about
/// [`MIN_WORDS`], text without sentence breaks cut by characters.
pub fn units(paragraphs: &[trellis_extract::Paragraph]) -> Vec<Unit> {
    let mut out = Vec::new();
    for paragraph in paragraphs {
        let words = paragraph.text.split_whitespace().count();
        if words <= MAX_WORDS && paragraph.text.len() <= UNIT_CHARS {
            out.push(Unit::new(paragraph.text.clone(), paragraph.span_ms));
            continue;
        }
        let mut group = String::new();
        for sentence in sentences(&paragraph.text) {
            for piece in cut_chars(sentence, UNIT_CHARS) {
                if !group.is_empty()
                    && (group.split_whitespace().count() + piece.split_whitespace().count()
                        > MIN_WORDS
                        || group.len() + piece.len() > UNIT_CHARS)
                {
                    out.push(Unit::new(std::mem::take(&mut group), paragraph.span_ms));
                }
                if !group.is_empty() {
                    group.push(' ');
                }
                group.push_str(piece);
            }
        }
        if !group.is_empty() {
            out.push(Unit::new(group, paragraph.span_ms));
        }
    }
    out
}

fn cut_chars(text: &str, max: usize) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while rest.len() > max {
        let mut end = max;
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        let (head, tail) = rest.split_at(end);
        out.push(head);
        rest = tail;
    }
    out.push(rest);
    out
}

/// Similarity across each boundary between unit `i` and `i + 1` (length `units - 1`), from
/// windows of two units each side; `vectors` are the units' unit-length embeddings (empty to
/// use the lexical part alone).
pub fn cohesion(units: &[Unit], vectors: &[Vec<f32>]) -> Vec<f64> {
    let counts: Vec<HashMap<String, f64>> = units.iter().map(|u| content_counts(&u.text)).collect();
    (1..units.len())
        .map(|cut| {
            let left = cut.saturating_sub(2)..cut;
            let right = cut..(cut + 2).min(units.len());
            let lexical = cosine_counts(
                &merge(&counts[left.clone()]),
                &merge(&counts[right.clone()]),
            );
            if vectors.len() == units.len() {
                let semantic = f64::from(trellis_embed::dot(
                    &mean(&vectors[left]),
                    &mean(&vectors[right]),
                ));
                0.5 * lexical + 0.5 * semantic.max(0.0)
            } else {
                lexical
            }
        })
        .collect()
}

fn content_counts(text: &str) -> HashMap<String, f64> {
    let mut counts = HashMap::new();
    for token in tokens(text) {
        if !is_stopword(&token) && token.chars().count() > 2 {
            *counts.entry(token).or_insert(0.0) += 1.0;
        }
    }
    counts
}

fn merge(counts: &[HashMap<String, f64>]) -> HashMap<String, f64> {
    let mut out = HashMap::new();
    for c in counts {
        for (k, v) in c {
            *out.entry(k.clone()).or_insert(0.0) += v;
        }
    }
    out
}

fn cosine_counts(a: &HashMap<String, f64>, b: &HashMap<String, f64>) -> f64 {
    let dot: f64 = a.iter().filter_map(|(k, v)| b.get(k).map(|w| v * w)).sum();
    let norm = |m: &HashMap<String, f64>| m.values().map(|v| v * v).sum::<f64>().sqrt();
    let (na, nb) = (norm(a), norm(b));
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        dot / (na * nb)
    }
}

fn mean(vectors: &[Vec<f32>]) -> Vec<f32> {
    let mut out = vec![0.0; vectors.first().map_or(0, Vec::len)];
    for v in vectors {
        for (o, x) in out.iter_mut().zip(v) {
            *o += x;
        }
    }
    trellis_embed::normalise(&mut out);
    out
}

/// The cost of a segment of `words` words.
fn length_cost(words: usize) -> f64 {
    let w = words as f64;
    let spread = (MAX_WORDS - MIN_WORDS) as f64 / 2.0;
    let base = ((w - TARGET_WORDS as f64) / spread).powi(2);
    if words < MIN_WORDS {
        base + 2.0 * (MIN_WORDS as f64 - w) / MIN_WORDS as f64
    } else {
        base
    }
}

/// Weight of cohesion against the length prior.
const COHESION_WEIGHT: f64 = 1.5;

/// The best cut of `units` into ranges, given the cohesion across each boundary. A section
/// that fits in one atom stays whole.
pub fn split(units: &[Unit], cohesion: &[f64]) -> Vec<Range<usize>> {
    let n = units.len();
    let total: usize = units.iter().map(|u| u.words).sum();
    if n <= 1 || total <= MAX_WORDS {
        return std::iter::once(0..n).collect();
    }
    // best[j]: the least cost of cutting units[..j]; from[j]: where its last segment starts.
    let mut best = vec![f64::INFINITY; n + 1];
    let mut from = vec![0; n + 1];
    best[0] = 0.0;
    for j in 1..=n {
        let mut words = 0;
        for i in (0..j).rev() {
            words += units[i].words;
            if words > MAX_WORDS && i + 1 < j {
                break;
            }
            let cut = if i == 0 {
                0.0
            } else {
                COHESION_WEIGHT * cohesion[i - 1]
            };
            let cost = best[i] + length_cost(words) + cut;
            if cost < best[j] {
                best[j] = cost;
                from[j] = i;
            }
        }
    }
    let mut ranges = Vec::new();
    let mut j = n;
    while j > 0 {
        ranges.push(from[j]..j);
        j = from[j];
    }
    ranges.reverse();
    ranges
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(words: usize, topic: &str) -> Unit {
        Unit::new(vec![topic; words].join(" "), None)
    }

    #[test]
    fn a_short_section_stays_whole() {
        let units = [unit(100, "lists"), unit(200, "lists")];
        assert_eq!(split(&units, &cohesion(&units, &[])), vec![0..2]);
    }

    #[test]
    fn cuts_fall_where_the_topic_changes_not_at_the_first_dip() {
        // Three topics of 300 words in 100-word paragraphs: cuts belong at 3 and 6.
        let units: Vec<Unit> = [
            "lists", "lists", "lists", "tuples", "tuples", "tuples", "dicts", "dicts", "dicts",
        ]
        .iter()
        .map(|t| unit(100, t))
        .collect();
        assert_eq!(
            split(&units, &cohesion(&units, &[])),
            vec![0..3, 3..6, 6..9]
        );
    }

    #[test]
    fn atoms_stay_under_the_maximum_even_on_one_topic() {
        let units: Vec<Unit> = (0..20).map(|_| unit(100, "same")).collect();
        let ranges = split(&units, &cohesion(&units, &[]));
        assert!(
            ranges.iter().all(|r| r.len() * 100 <= MAX_WORDS),
            "{ranges:?}"
        );
        assert!(
            ranges.iter().all(|r| r.len() * 100 >= MIN_WORDS),
            "{ranges:?}"
        );
    }

    #[test]
    fn long_paragraphs_become_sentence_groups_and_endless_text_is_cut() {
        let long = trellis_extract::Paragraph {
            text: "Word word word. ".repeat(400),
            span_ms: None,
        };
        let groups = units(&[long]);
        assert!(groups.len() > 1 && groups.iter().all(|u| u.words <= MIN_WORDS + 3));
        let endless = trellis_extract::Paragraph {
            text: "[".repeat(100_000),
            span_ms: None,
        };
        assert!(units(&[endless]).iter().all(|u| u.text.len() <= UNIT_CHARS));
    }
}
