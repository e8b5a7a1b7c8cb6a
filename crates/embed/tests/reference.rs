//! Our candle embeddings against sentence-transformers' own vectors for the same model.
//!
//! The fixture was made by `scripts/reference-embeddings.py` in a throwaway venv; the model
//! comes from `scripts/fetch-model` (run by `scripts/setup`).

use serde::Deserialize;
use trellis_embed::{Embedder, MiniLm, dot};

#[derive(Deserialize)]
struct Fixture {
    sentences: Vec<Sentence>,
}

#[derive(Deserialize)]
struct Sentence {
    text: String,
    embedding: Vec<f32>,
}

fn fixture() -> Fixture {
    let raw = include_str!("fixtures/minilm_reference.json");
    serde_json::from_str(raw).expect("fixture parses")
}

fn model() -> MiniLm {
    MiniLm::load_default().expect("model loads (scripts/fetch-model puts it in the cache)")
}

#[test]
fn matches_the_reference_implementation_within_1e_4_cosine() {
    let fixture = fixture();
    let model = model();
    let texts: Vec<&str> = fixture.sentences.iter().map(|s| s.text.as_str()).collect();
    // Batched together, so padding to the longest text is exercised as well.
    let ours = model.embed(&texts).unwrap();
    for (sentence, v) in fixture.sentences.iter().zip(&ours) {
        let cosine = dot(v, &sentence.embedding);
        assert!(
            (1.0 - cosine).abs() < 1e-4,
            "{:?}: cosine to reference {cosine}",
            sentence.text
        );
    }
    // One at a time gives the same vectors as in a padded batch.
    for (text, batched) in texts.iter().zip(&ours) {
        let alone = model.embed(&[text]).unwrap().remove(0);
        assert!((1.0 - dot(&alone, batched)).abs() < 1e-5, "{text:?}");
    }
}

#[test]
fn related_sentences_score_higher_than_unrelated_ones() {
    let model = model();
    let v = model
        .embed(&[
            "Python programming",
            "Writing software in Python",
            "Managing a restaurant kitchen",
        ])
        .unwrap();
    let related = dot(&v[0], &v[1]);
    let unrelated = dot(&v[0], &v[2]);
    assert!(related > 0.7, "{related}");
    assert!(unrelated < 0.3, "{unrelated}");
}

#[test]
fn a_missing_model_folder_is_a_typed_error() {
    let err = MiniLm::load(std::path::Path::new("/nonexistent/model")).err();
    assert!(matches!(
        err,
        Some(trellis_embed::EmbedError::ModelFile { .. })
    ));
}

#[test]
fn the_process_loads_the_shared_model_once() {
    let first = MiniLm::shared().expect("model loads");
    let second = MiniLm::shared().expect("model loads");
    assert!(std::sync::Arc::ptr_eq(&first, &second));
}

#[test]
fn vectors_quantize_to_signed_bytes_clamped_at_one() {
    assert_eq!(
        trellis_embed::quantize(&[1.0, -1.0, 0.5, 0.0, 1.5]),
        vec![127, -127, 64, 0, 127]
    );
}
