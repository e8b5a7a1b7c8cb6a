//! Atomization over small documents with a deterministic bag-of-words embedder (the real
//! model is exercised by the service's tests).

use trellis_embed::{EmbedError, Embedder};
use trellis_extract::{Document, Paragraph, Section};

use super::*;

/// Hashes each content word into one of 64 dimensions: texts sharing words are similar.
struct Words;

impl Embedder for Words {
    fn dim(&self) -> usize {
        64
    }

    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        Ok(texts
            .iter()
            .map(|t| {
                let mut v = vec![0.0_f32; 64];
                for token in text::tokens(t) {
                    if !text::is_stopword(&token) {
                        let h = token.bytes().fold(7_usize, |h, b| {
                            h.wrapping_mul(31).wrapping_add(usize::from(b))
                        });
                        v[h % 64] += 1.0;
                    }
                }
                trellis_embed::normalise(&mut v);
                v
            })
            .collect())
    }
}

fn section(heading: &str, paragraphs: &[String]) -> Section {
    Section {
        heading: Some(heading.into()),
        level: 2,
        paragraphs: paragraphs
            .iter()
            .map(|p| Paragraph {
                text: p.clone(),
                span_ms: None,
            })
            .collect(),
    }
}

fn prose(topic: &str, sentences: usize) -> String {
    (0..sentences)
        .map(|i| {
            format!("The {topic} mechanism handles case {i} because {topic} values matter here.")
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn document() -> Document {
    Document {
        sections: vec![
            section(
                "Function Definitions",
                &[
                    prose("function definition", 12),
                    prose("function definition", 10),
                ],
            ),
            section(
                "Keyword Arguments",
                &[format!(
                    "Keyword arguments build on a function definition. {}",
                    prose("keyword argument", 14)
                )],
            ),
            section(
                "Long Chapter",
                &(0..12)
                    .map(|i| {
                        prose(
                            if i < 6 {
                                "list comprehension"
                            } else {
                                "dictionary view"
                            },
                            6,
                        )
                    })
                    .collect::<Vec<_>>(),
            ),
        ],
    }
}

fn input(document: &Document) -> Input<'_> {
    Input {
        content_id: Uuid::from_u128(42),
        content_version: 1,
        document,
        title: "Guide",
    }
}

#[test]
fn headings_are_hard_boundaries_and_long_sections_split_at_the_topic_change() {
    let document = document();
    let atoms = atomize(&input(&document), &Words).unwrap_or_default();
    let titles: Vec<&str> = atoms.iter().map(|a| a.title.as_str()).collect();
    assert_eq!(
        titles,
        [
            "Function Definitions",
            "Keyword Arguments",
            "Long Chapter (1/2)",
            "Long Chapter (2/2)"
        ]
    );
    assert!(
        atoms[2].text.contains("list comprehension") && !atoms[2].text.contains("dictionary view")
    );
    assert!(
        atoms[3].text.contains("dictionary view") && !atoms[3].text.contains("list comprehension")
    );
    assert!(
        trellis_content::atom::check_atoms(&atoms).is_ok(),
        "{:?}",
        trellis_content::atom::check_atoms(&atoms)
    );
}

#[test]
fn every_atom_has_every_field() {
    let document = document();
    let atoms = atomize(&input(&document), &Words).unwrap_or_default();
    for atom in &atoms {
        assert!(!atom.concepts.is_empty(), "{}", atom.title);
        assert!(
            ["Apply", "Compare", "Define", "Explain", "Describe"]
                .iter()
                .any(|v| atom.objective.starts_with(v)),
            "{}",
            atom.objective
        );
        assert!((1..=5).contains(&atom.difficulty));
        assert!(atom.estimated_minutes >= 1);
        assert!((0.0..=1.0).contains(&atom.quality.score));
        let vector = atom
            .vector
            .as_deref()
            .and_then(decode_vector)
            .unwrap_or_default();
        assert_eq!(vector.len(), 64);
    }
    assert!(
        atoms[0]
            .objective
            .starts_with("Explain function definitions, including "),
        "{}",
        atoms[0].objective
    );
}

#[test]
fn prerequisites_point_back_to_where_a_concept_was_introduced() {
    let document = document();
    let known = [KnownAtom {
        id: Uuid::from_u128(7),
        concepts: vec!["dictionary view".into()],
    }];
    let mut atoms = atomize(&input(&document), &Words).unwrap_or_default();
    add_outside_prerequisites(&mut atoms, &known);
    assert!(
        atoms[1].prerequisites.contains(&atoms[0].id),
        "keyword arguments build on function definitions"
    );
    assert!(atoms[0].prerequisites.is_empty());
    assert!(
        atoms[3].prerequisites.contains(&Uuid::from_u128(7)),
        "an earlier content introduced dictionary views"
    );
}

#[test]
fn the_same_input_gives_the_same_atoms() {
    let document = document();
    let first = atomize(&input(&document), &Words).unwrap_or_default();
    let second = atomize(&input(&document), &Words).unwrap_or_default();
    assert_eq!(first, second);
    assert_eq!(first[0].id, atom_id(Uuid::from_u128(42), 1, 1));
}

#[test]
fn transcripts_take_their_time_from_the_cues() {
    let document = Document {
        sections: vec![Section {
            heading: None,
            level: 0,
            paragraphs: vec![Paragraph {
                text: prose("closure", 10),
                span_ms: Some([0, 150_000]),
            }],
        }],
    };
    let atoms = atomize(&input(&document), &Words).unwrap_or_default();
    assert_eq!(atoms[0].estimated_minutes, 3);
    assert_eq!(atoms[0].title, "Guide");
}

#[test]
fn an_empty_document_is_an_error() {
    assert!(matches!(
        atomize(&input(&Document::default()), &Words),
        Err(AtomizeError::Empty)
    ));
}
