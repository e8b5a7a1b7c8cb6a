//! The recommendation core, pure: no I/O, no clock, no model. Vectors come in from the
//! embedder; events are folded by the service that owns this state.
//!
//! - [`index`]: an HNSW index over unit vectors (hnsw_rs) with exact search beside it, so
//!   recall can be measured against the truth.
//! - [`similarity`]: skill-to-skill similarity that blends embedding cosine with normalised
//!   PMI of skills co-occurring in occupations, plans and reviews.
//! - [`rank`]: gaps, candidate generation and greedy weighted gap coverage with difficulty
//!   fit, duration, ratings and diversity, each pick explained in one line.
//! - [`eval`]: coverage@k, NDCG@k and AUC for the offline evaluation.

pub mod eval;
pub mod index;
pub mod rank;
pub mod similarity;

pub use index::{Hit, VectorIndex};
pub use rank::{Catalog, GapSpec, Pick, RankOptions, ResourceInfo};
pub use similarity::{Cooccurrence, SkillSimilarity};

/// Dot product (cosine for unit vectors).
///
/// Sixteen independent accumulators: a plain `iter().sum()` is one dependency chain the
/// compiler may not reorder (float addition is not associative), so it runs scalar; lanes let
/// it use SIMD registers. Distance computations are most of HNSW's and exact search's time.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    const LANES: usize = 16;
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f32; LANES];
    let chunks = n / LANES;
    for i in 0..chunks {
        let (x, y) = (
            &a[i * LANES..(i + 1) * LANES],
            &b[i * LANES..(i + 1) * LANES],
        );
        for l in 0..LANES {
            acc[l] += x[l] * y[l];
        }
    }
    let mut sum: f32 = acc.iter().sum();
    for i in chunks * LANES..n {
        sum += a[i] * b[i];
    }
    sum
}

#[cfg(test)]
mod tests {
    #[test]
    fn dot_matches_the_naive_sum_for_any_length() {
        for n in [0usize, 1, 15, 16, 17, 384, 385] {
            let a: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
            let b: Vec<f32> = (0..n).map(|i| (i as f32 * 0.11).cos()).collect();
            let naive: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
            assert!((super::dot(&a, &b) - naive).abs() < 1e-4, "n = {n}");
        }
    }
}
