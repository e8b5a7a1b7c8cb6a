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
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}
