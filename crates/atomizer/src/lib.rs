//! The atomization core (seed 002, ADR 0012): pure, no I/O; vectors come from the embedder.
//!
//! [`atomize`] turns an extracted [`Document`] into learning atoms:
//! 1. **Segments** ([`segment`]): each section alone (headings are hard boundaries); long
//!    sections cut by a dynamic programme over cohesion and a length prior.
//! 2. **Concepts** ([`concepts`]): keyphrases per atom, by frequency × rarity across the
//!    document. Linking them to the organization's catalog skills is the service's job (it
//!    needs the catalog), so `skill_ids` are empty here.
//! 3. **Prerequisites**: an earlier atom of this content that first introduced a concept this
//!    atom uses; then ([`add_outside_prerequisites`], once the service has looked them up) an
//!    atom of an earlier content of the organization ([`KnownAtom`]) with a concept this one
//!    introduces. Edges point only to earlier atoms or earlier contents, so the graph is
//!    acyclic by construction.
//! 4. **Difficulty** 1–5 from readability (Flesch–Kincaid grade), concept rarity and
//!    prerequisite depth; **study time** from 200 words a minute (code counts double), or the
//!    cue times of a transcript; a one-sentence **objective** with a Bloom verb chosen from
//!    the text's cues; **quality** 0–1 from its four components.
//!
//! Deterministic for the same input and [`ATOMIZER_VERSION`]: atom ids are UUIDv5 of the
//! content, its version, the atomizer version and the sequence.

pub mod concepts;
pub mod eval;
pub mod segment;
pub mod text;

use base64::Engine;
use trellis_content::{Atom, Concept, Quality};
use trellis_embed::{EmbedError, Embedder};
use trellis_extract::Document;
use uuid::Uuid;

/// The atomizer's version, recorded on every answer: bump it when atoms would change, so
/// contents can be re-atomized.
pub const ATOMIZER_VERSION: u32 = 1;

/// Reading speed assumed for study time, in words a minute.
const WORDS_PER_MINUTE: f64 = 200.0;

/// An atom of an earlier content of the organization: a possible prerequisite.
#[derive(Debug, Clone, PartialEq)]
pub struct KnownAtom {
    /// Its id.
    pub id: Uuid,
    /// Its concepts' phrases.
    pub concepts: Vec<String>,
}

/// What to atomize.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    /// The content.
    pub content_id: Uuid,
    /// Its version being atomized.
    pub content_version: u32,
    /// The extracted document.
    pub document: &'a Document,
    /// The content's title (the title of untitled sections).
    pub title: &'a str,
}

/// Atomization failed.
#[derive(Debug, thiserror::Error)]
pub enum AtomizeError {
    /// Nothing to make atoms of.
    #[error("the document has no text to atomize")]
    Empty,
    /// The embedder failed.
    #[error("embedding failed: {0}")]
    Embed(#[from] EmbedError),
}

/// One segment before it becomes an atom.
struct Draft {
    title: String,
    text: String,
    words: usize,
    code_words: usize,
    span_ms: Option<[u64; 2]>,
    /// The mean of its units' vectors, when the section was embedded to be cut (the atom
    /// is then not embedded again: a 100-page PDF spends most of its time embedding).
    vector: Option<Vec<f32>>,
}

/// Atomizes a document. Each atom carries its unit vector (for search) in `vector`.
///
/// # Errors
/// [`AtomizeError`].
pub fn atomize(input: &Input<'_>, embedder: &dyn Embedder) -> Result<Vec<Atom>, AtomizeError> {
    let drafts = drafts(input, embedder)?;
    if drafts.is_empty() {
        return Err(AtomizeError::Empty);
    }
    let pairs: Vec<(&str, &str)> = drafts
        .iter()
        .map(|d| (d.title.as_str(), d.text.as_str()))
        .collect();
    let concepts = concepts::extract(&pairs);
    let ids: Vec<Uuid> = (1..=drafts.len())
        .map(|sequence| atom_id(input.content_id, input.content_version, sequence))
        .collect();
    let prerequisites = prerequisites(&drafts, &concepts, &ids);
    let mut depth = vec![0_usize; drafts.len()];
    for i in 0..drafts.len() {
        depth[i] = prerequisites[i]
            .iter()
            .map(|p| {
                ids.iter()
                    .position(|id| id == p)
                    .map_or(1, |j| depth[j] + 1)
            })
            .max()
            .unwrap_or(0);
    }
    let missing: Vec<usize> = (0..drafts.len())
        .filter(|&i| drafts[i].vector.is_none())
        .collect();
    let texts: Vec<String> = missing
        .iter()
        .map(|&i| format!("{}. {}", drafts[i].title, drafts[i].text))
        .collect();
    let text_refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let mut embedded = embedder.embed(&text_refs)?.into_iter();
    let vectors: Vec<Vec<f32>> = drafts
        .iter()
        .map(|d| {
            d.vector
                .clone()
                .or_else(|| embedded.next())
                .unwrap_or_default()
        })
        .collect();
    let mut atoms = Vec::with_capacity(drafts.len());
    for (i, draft) in drafts.iter().enumerate() {
        let rarity = if concepts[i].is_empty() {
            0.0
        } else {
            concepts[i].iter().map(|(_, r)| r).sum::<f64>() / concepts[i].len() as f64
        };
        let grade = ((text::grade_level(&draft.text) - 6.0) / 10.0).clamp(0.0, 1.0);
        let depth_part = (depth[i] as f64 / 4.0).min(1.0);
        let hardness = 0.5 * grade + 0.25 * rarity + 0.25 * depth_part;
        let difficulty = (1.0 + (4.0 * hardness).round()).clamp(1.0, 5.0) as u8;
        let objective = objective(draft, &concepts[i]);
        let quality = quality(draft, &objective, concepts[i].len());
        atoms.push(Atom {
            id: ids[i],
            sequence: u32::try_from(i + 1).unwrap_or(u32::MAX),
            title: draft.title.clone(),
            text: draft.text.clone(),
            objective,
            concepts: concepts[i]
                .iter()
                .map(|(phrase, _)| Concept {
                    phrase: phrase.clone(),
                    skill_ids: Vec::new(),
                })
                .collect(),
            difficulty,
            estimated_minutes: minutes(draft),
            prerequisites: prerequisites[i].clone(),
            quality,
            vector: vectors
                .get(i)
                .filter(|v| !v.is_empty())
                .map(|v| encode_vector(v)),
        });
    }
    Ok(atoms)
}

/// The deterministic id of an atom.
pub(crate) fn atom_id(content_id: Uuid, content_version: u32, sequence: usize) -> Uuid {
    Uuid::new_v5(
        &content_id,
        format!("atom/{content_version}/{ATOMIZER_VERSION}/{sequence}").as_bytes(),
    )
}

/// A unit vector as base64 of [`trellis_embed::quantize`]d bytes: 384 bytes for MiniLM,
/// enough for ranking and small enough for the event.
pub(crate) fn encode_vector(vector: &[f32]) -> String {
    let bytes = trellis_embed::quantized_bytes(&trellis_embed::quantize(vector));
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The inverse of [`encode_vector`]: the signed bytes as stored (read each as `i8`).
pub fn decode_vector(encoded: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()
}

fn drafts(input: &Input<'_>, embedder: &dyn Embedder) -> Result<Vec<Draft>, AtomizeError> {
    let mut drafts = Vec::new();
    for section in &input.document.sections {
        let units = segment::units(&section.paragraphs);
        if units.is_empty() {
            continue;
        }
        let total: usize = units.iter().map(|u| u.words).sum();
        let vectors = if total > segment::MAX_WORDS {
            let texts: Vec<&str> = units.iter().map(|u| u.text.as_str()).collect();
            embedder.embed(&texts)?
        } else {
            Vec::new()
        };
        let ranges = segment::split(&units, &segment::cohesion(&units, &vectors));
        let parts = ranges.len();
        for (k, range) in ranges.into_iter().enumerate() {
            let vector = (vectors.len() == units.len()).then(|| {
                let mut mean = vec![0.0_f32; vectors[0].len()];
                for v in &vectors[range.clone()] {
                    mean.iter_mut().zip(v).for_each(|(m, x)| *m += x);
                }
                trellis_embed::normalise(&mut mean);
                mean
            });
            let chosen = &units[range];
            let text = chosen
                .iter()
                .map(|u| u.text.as_str())
                .collect::<Vec<_>>()
                .join("\n\n");
            let base = section
                .heading
                .clone()
                .unwrap_or_else(|| untitled(input.title, &text));
            let title = if parts > 1 {
                format!("{base} ({}/{parts})", k + 1)
            } else {
                base
            };
            let code_words = chosen
                .iter()
                .filter(|u| {
                    u.text.contains('\n') || u.text.contains(" = ") || u.text.contains("()")
                })
                .map(|u| u.words)
                .sum();
            let span_ms = match (
                chosen.first().and_then(|u| u.span_ms),
                chosen.last().and_then(|u| u.span_ms),
            ) {
                (Some([start, _]), Some([_, end])) => Some([start, end]),
                _ => None,
            };
            drafts.push(Draft {
                title: truncate_chars(&title, 300),
                words: chosen.iter().map(|u| u.words).sum(),
                text: truncate_chars(&text, 20_000),
                code_words,
                span_ms,
                vector,
            });
        }
    }
    Ok(drafts)
}

/// A title for a section without a heading: the content's title if it has one, else the
/// first words of the text.
fn untitled(title: &str, text: &str) -> String {
    if !title.trim().is_empty() {
        return title.trim().to_owned();
    }
    let words: Vec<&str> = text.split_whitespace().take(8).collect();
    format!("{}…", words.join(" "))
}

fn truncate_chars(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((i, _)) => text[..i].to_owned(),
        None => text.to_owned(),
    }
}

/// The concept phrases of `atoms` that no earlier atom of the same answer names: what
/// earlier contents may have introduced.
pub fn fresh_concepts(atoms: &[Atom]) -> Vec<Vec<String>> {
    let mut seen: Vec<&str> = Vec::new();
    atoms
        .iter()
        .map(|atom| {
            let fresh: Vec<String> = atom
                .concepts
                .iter()
                .filter(|c| !seen.contains(&c.phrase.as_str()))
                .map(|c| c.phrase.clone())
                .collect();
            seen.extend(atom.concepts.iter().map(|c| c.phrase.as_str()));
            fresh
        })
        .collect()
}

/// Adds prerequisites from earlier contents: for each atom, up to two atoms of `known` (the
/// organization's earlier contents) sharing the most of its fresh concepts
/// ([`fresh_concepts`]). Edges point only to earlier contents, so the graph stays acyclic.
pub fn add_outside_prerequisites(atoms: &mut [Atom], known: &[KnownAtom]) {
    let fresh = fresh_concepts(atoms);
    for (atom, fresh) in atoms.iter_mut().zip(fresh) {
        let mut outside: Vec<(usize, &KnownAtom)> = known
            .iter()
            .map(|k| (k.concepts.iter().filter(|c| fresh.contains(c)).count(), k))
            .filter(|(n, _)| *n > 0)
            .collect();
        outside.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.id.cmp(&b.1.id)));
        for (_, k) in outside.into_iter().take(2) {
            if !atom.prerequisites.contains(&k.id) && atom.id != k.id {
                atom.prerequisites.push(k.id);
            }
        }
    }
}

fn prerequisites(
    drafts: &[Draft],
    concepts: &[Vec<(String, f64)>],
    ids: &[Uuid],
) -> Vec<Vec<Uuid>> {
    // Which atom first names each concept.
    let mut introduced: Vec<(String, usize)> = Vec::new();
    for (i, list) in concepts.iter().enumerate() {
        for (phrase, _) in list {
            if !introduced.iter().any(|(p, _)| p == phrase) {
                introduced.push((phrase.clone(), i));
            }
        }
    }
    drafts
        .iter()
        .enumerate()
        .map(|(i, draft)| {
            let words = text::tokens(&draft.text).join(" ");
            let mut inside: Vec<(usize, usize)> = Vec::new();
            for (phrase, j) in &introduced {
                if *j < i && concepts::contains_words(&words, phrase) {
                    match inside.iter_mut().find(|(atom, _)| atom == j) {
                        Some((_, n)) => *n += 1,
                        None => inside.push((*j, 1)),
                    }
                }
            }
            inside.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            inside.iter().take(3).map(|(j, _)| ids[*j]).collect()
        })
        .collect()
}

fn minutes(draft: &Draft) -> u32 {
    let minutes = match draft.span_ms {
        Some([start, end]) if end > start => (end - start) as f64 / 60_000.0,
        _ => (draft.words + draft.code_words) as f64 / WORDS_PER_MINUTE,
    };
    (minutes.ceil() as u32).clamp(1, 600)
}

/// Bloom verbs by what the text does: procedures are applied, comparisons compared,
/// definitions defined, reasons explained; otherwise described.
fn objective(draft: &Draft, concepts: &[(String, f64)]) -> String {
    let lower = draft.text.to_lowercase();
    let has = |cues: &[&str]| cues.iter().any(|c| lower.contains(c));
    let verb = if draft.code_words > 0
        || has(&[
            "step ",
            "first,",
            "to do this",
            "you can use",
            "run the",
            "type the",
        ]) {
        "Apply"
    } else if has(&[
        " versus ",
        " vs ",
        "difference between",
        "compared to",
        "unlike ",
        "whereas",
    ]) {
        "Compare"
    } else if has(&[
        " is defined as",
        " refers to",
        " is called",
        " are called",
        " means ",
    ]) {
        "Define"
    } else if has(&["because", "therefore", " so that", "the reason", " why "]) {
        "Explain"
    } else {
        "Describe"
    };
    let topic = draft
        .title
        .split(" (")
        .next()
        .unwrap_or(&draft.title)
        .trim_end_matches('…')
        .trim();
    let topic = if topic.is_empty() {
        "this material"
    } else {
        topic
    };
    let key: Vec<&str> = concepts
        .iter()
        .map(|(c, _)| c.as_str())
        .filter(|c| !topic.to_lowercase().contains(*c))
        .take(2)
        .collect();
    let mut sentence = format!("{verb} {}", sentence_case(topic, &draft.text));
    match key.as_slice() {
        [] => {}
        [one] => sentence.push_str(&format!(", including {one}")),
        [one, two, ..] => sentence.push_str(&format!(", including {one} and {two}")),
    }
    truncate_chars(&sentence, 499)
}

/// Title case to sentence case where the text itself writes a word in lower case ("Defining
/// Functions" → "defining functions"), keeping names the text capitalizes ("Python").
fn sentence_case(title: &str, text: &str) -> String {
    let lower_words: std::collections::HashSet<&str> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.chars().next().is_some_and(char::is_lowercase))
        .collect();
    title
        .split(' ')
        .map(|word| {
            let lower = word.to_lowercase();
            if lower_words.contains(lower.as_str())
                || lower_words.contains(lower.trim_end_matches('s'))
            {
                lower
            } else {
                word.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Starts that lean on what came before.
const DANGLING: &[&str] = &[
    "this ",
    "these ",
    "that ",
    "those ",
    "it ",
    "they ",
    "as shown",
    "as mentioned",
    "as we saw",
    "above",
    "however",
    "also",
    "furthermore",
    "moreover",
    "in addition",
    "similarly",
    "then ",
    "thus",
    "therefore",
    "but ",
    "and ",
];

fn quality(draft: &Draft, objective: &str, concepts: usize) -> Quality {
    let start = draft.text.trim_start().to_lowercase();
    let self_contained = if DANGLING.iter().any(|d| start.starts_with(d)) {
        0.0
    } else {
        1.0
    };
    let words = draft.words as f64;
    let length_in_range = if draft.words < segment::MIN_WORDS {
        words / segment::MIN_WORDS as f64
    } else if draft.words > segment::MAX_WORDS {
        segment::MAX_WORDS as f64 / words
    } else {
        1.0
    };
    let has_objective = if objective.is_empty() { 0.0 } else { 1.0 };
    let density = concepts as f64 * 100.0 / words.max(1.0);
    let concept_density = (density / 2.0).min(1.0);
    let score =
        0.3 * self_contained + 0.3 * length_in_range + 0.2 * has_objective + 0.2 * concept_density;
    Quality {
        score: round3(score),
        self_contained,
        length_in_range: round3(length_in_range),
        has_objective,
        concept_density: round3(concept_density),
    }
}

fn round3(x: f64) -> f64 {
    (x.clamp(0.0, 1.0) * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests;
