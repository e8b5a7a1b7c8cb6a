//! Sentence embeddings for the recommender.
//!
//! [`MiniLm`] runs all-MiniLM-L6-v2 (the sentence-transformers model) in Rust with candle's
//! BERT: tokenise, run the encoder, mean-pool the last hidden state over the attention mask,
//! L2-normalise. That is exactly what sentence-transformers does for this model, and a test
//! holds our vectors to within 1e-4 cosine of its reference vectors.
//!
//! Why pooling honours the mask: the model folder's `tokenizer.json` pads every input to 128
//! tokens. Averaging those padding positions drags unrelated sentences to cosine ~0.8
//! (FACTS.md), so padding only goes to the longest text of a batch and the pooled mean counts
//! real tokens only.
//!
//! [`Embedder`] is the port the recommender service depends on. There is one adapter, the real
//! model: tests of the service use it too (it loads in well under a second), and the ranking
//! core is tested with hand-made vectors, so no fake embedder is needed.

mod minilm;

pub use minilm::{MAX_TOKENS, MiniLm, model_dir_from_env};

/// Dimension of all-MiniLM-L6-v2 vectors.
pub const DIM: usize = 384;

/// Errors of this layer.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    /// The model folder or one of its files is missing or unreadable.
    #[error("model file {path}: {message}")]
    ModelFile {
        /// Which file.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// The tokenizer refused the input or its own configuration.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// The tensor runtime failed. Its message is in this one's (logs print `%error`), so it is
    /// not also a `source`: a logged chain names it once.
    #[error("inference: {0}")]
    Inference(candle_core::Error),
}

impl From<candle_core::Error> for EmbedError {
    fn from(error: candle_core::Error) -> Self {
        Self::Inference(error)
    }
}

/// Turns texts into unit-length vectors; cosine similarity is then a dot product.
pub trait Embedder: Send + Sync {
    /// Vector length.
    fn dim(&self) -> usize;
    /// One vector per text, in order.
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError>;
}

/// Dot product of two equally long vectors (cosine for unit vectors).
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// A unit vector as signed bytes, each component × 127 rounded: how atoms carry their
/// vectors and search compares them (stored and query vectors must be scaled alike).
pub fn quantize(v: &[f32]) -> Vec<i8> {
    v.iter()
        .map(|x| (x.clamp(-1.0, 1.0) * 127.0).round() as i8)
        .collect()
}

/// A [`quantize`]d vector as bytes to store (each `i8` as its two's-complement byte).
pub fn quantized_bytes(v: &[i8]) -> Vec<u8> {
    v.iter().map(|x| *x as u8).collect()
}

/// The inverse of [`quantized_bytes`].
pub fn from_quantized_bytes(b: &[u8]) -> Vec<i8> {
    b.iter().map(|x| *x as i8).collect()
}

/// Scales `v` to unit length in place (a zero vector stays zero).
pub fn normalise(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
}

/// The weighted mean of `parts` (`(weight, vector)` of length `dim`), scaled to unit length
/// (zeros without parts): a learner's skills as one vector, each skill weighted by its level.
pub fn weighted_mean<'a>(
    parts: impl IntoIterator<Item = (f32, &'a [f32])>,
    dim: usize,
) -> Vec<f32> {
    let mut mean = vec![0.0f32; dim];
    for (weight, vector) in parts {
        for (m, x) in mean.iter_mut().zip(vector) {
            *m += weight * x;
        }
    }
    normalise(&mut mean);
    mean
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_weighted_mean_leans_to_the_heavier_part_and_has_unit_length() {
        let (a, b) = ([1.0f32, 0.0], [0.0f32, 1.0]);
        let mean = super::weighted_mean([(3.0, &a[..]), (1.0, &b[..])], 2);
        assert!(mean[0] > mean[1]);
        assert!((mean.iter().map(|x| x * x).sum::<f32>() - 1.0).abs() < 1e-6);
        assert_eq!(super::weighted_mean([], 2), vec![0.0, 0.0]);
    }

    #[test]
    fn quantized_vectors_round_trip_through_their_stored_bytes() {
        let v = super::quantize(&[-1.0, -0.5, 0.0, 0.5, 1.0]);
        assert_eq!(v, vec![-127, -64, 0, 64, 127]);
        let bytes = super::quantized_bytes(&v);
        assert_eq!(bytes, vec![129, 192, 0, 64, 127]);
        assert_eq!(super::from_quantized_bytes(&bytes), v);
    }
}
