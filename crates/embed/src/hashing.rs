//! A deterministic stand-in embedder for unit tests.
//!
//! Each lower-cased word is hashed into one of `dim` buckets; the bag is L2-normalised. Texts
//! sharing words are similar, texts sharing none are orthogonal. It has no notion of meaning
//! and is never used in production: only where a test exercises ranking or wiring and the
//! 90 MB model would make it slow.

use crate::{EmbedError, Embedder, normalise};

/// Hashed bag of words.
#[derive(Debug, Clone, Copy)]
pub struct HashingEmbedder {
    dim: usize,
}

impl HashingEmbedder {
    /// `dim` buckets (at least 1).
    pub fn new(dim: usize) -> Self {
        Self { dim: dim.max(1) }
    }
}

// FNV-1a: stable across runs and platforms, unlike std's randomised hasher.
fn fnv1a(word: &str) -> u64 {
    word.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

impl Embedder for HashingEmbedder {
    fn dim(&self) -> usize {
        self.dim
    }

    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        Ok(texts
            .iter()
            .map(|text| {
                let mut v = vec![0.0f32; self.dim];
                for word in text
                    .split(|c: char| !c.is_alphanumeric())
                    .filter(|w| !w.is_empty())
                {
                    let bucket = fnv1a(&word.to_lowercase()) % self.dim as u64;
                    v[bucket as usize] += 1.0;
                }
                normalise(&mut v);
                v
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dot;

    #[test]
    fn shared_words_are_similar_and_disjoint_texts_are_not() {
        let e = HashingEmbedder::new(256);
        let v = e
            .embed(&["SQL databases", "databases SQL", "kitchen"])
            .unwrap();
        assert!((dot(&v[0], &v[1]) - 1.0).abs() < 1e-6);
        assert!(dot(&v[0], &v[2]).abs() < 0.5);
    }
}
