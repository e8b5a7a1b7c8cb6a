//! Nearest-neighbour search over unit vectors.
//!
//! HNSW answers in sub-linear time; the exact scan is kept beside it because the vectors are
//! needed anyway (re-scoring, similarity) and it is the ground truth recall is measured
//! against. Ids are caller-chosen `u32`s (dense indices into the caller's own tables).

use hnsw_rs::anndists::dist::Distance;
use hnsw_rs::hnsw::Hnsw;

/// HNSW parameters. Defaults measured in docs/benchmarks.md: recall@10 ≥ 0.98 on MiniLM
/// vectors of 100,000 resources.
#[derive(Debug, Clone, Copy)]
pub struct IndexParams {
    /// Links per node and layer (M).
    pub max_connections: usize,
    /// Candidate list while building.
    pub ef_construction: usize,
    /// Candidate list while searching (raised to k when smaller).
    pub ef_search: usize,
}

impl Default for IndexParams {
    fn default() -> Self {
        Self {
            max_connections: 32,
            ef_construction: 200,
            ef_search: 128,
        }
    }
}

/// One neighbour.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit {
    /// The caller's id.
    pub id: u32,
    /// Cosine similarity.
    pub similarity: f32,
}

/// `1 - dot` for unit vectors, clamped at 0: hnsw_rs's own `DistDot` asserts `dot <= 1`,
/// which float rounding breaks now and then on real embeddings.
#[derive(Debug, Clone, Copy, Default)]
pub struct UnitDot;

impl Distance<f32> for UnitDot {
    fn eval(&self, a: &[f32], b: &[f32]) -> f32 {
        (1.0 - crate::dot(a, b)).max(0.0)
    }
}

/// The index.
pub struct VectorIndex {
    hnsw: Hnsw<'static, f32, UnitDot>,
    vectors: Vec<(u32, Vec<f32>)>,
    params: IndexParams,
}

impl std::fmt::Debug for VectorIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VectorIndex")
            .field("len", &self.vectors.len())
            .field("params", &self.params)
            .finish()
    }
}

impl VectorIndex {
    /// Empty index sized for about `capacity` vectors.
    pub fn new(params: IndexParams, capacity: usize) -> Self {
        let hnsw = Hnsw::new(
            params.max_connections,
            capacity.max(1_000),
            16,
            params.ef_construction,
            UnitDot,
        );
        Self {
            hnsw,
            vectors: Vec::with_capacity(capacity),
            params,
        }
    }

    /// Adds one unit vector.
    pub fn insert(&mut self, id: u32, vector: Vec<f32>) {
        self.hnsw.insert_slice((&vector, self.vectors.len()));
        self.vectors.push((id, vector));
    }

    /// Adds many, using every core (hnsw_rs parallel insert).
    pub fn extend(&mut self, items: Vec<(u32, Vec<f32>)>) {
        let base = self.vectors.len();
        {
            let batch: Vec<(&[f32], usize)> = items
                .iter()
                .enumerate()
                .map(|(i, (_, v))| (v.as_slice(), base + i))
                .collect();
            self.hnsw.parallel_insert_slice(&batch);
        }
        self.vectors.extend(items);
    }

    /// Changes the search candidate list (recall against speed) without rebuilding.
    pub fn set_ef_search(&mut self, ef_search: usize) {
        self.params.ef_search = ef_search.max(1);
    }

    /// The parameters in use.
    pub fn params(&self) -> IndexParams {
        self.params
    }

    /// The vector in insertion slot `slot` (the n-th inserted).
    pub fn vector(&self, slot: usize) -> Option<&[f32]> {
        self.vectors.get(slot).map(|(_, v)| v.as_slice())
    }

    /// Vectors held.
    pub fn len(&self) -> usize {
        self.vectors.len()
    }

    /// Holds none.
    pub fn is_empty(&self) -> bool {
        self.vectors.is_empty()
    }

    /// The `k` nearest by HNSW, most similar first.
    pub fn search(&self, query: &[f32], k: usize) -> Vec<Hit> {
        if self.vectors.is_empty() || k == 0 {
            return Vec::new();
        }
        let ef = self.params.ef_search.max(k);
        self.hits(self.hnsw.search(query, k, ef))
    }

    /// hnsw_rs neighbours as hits with the caller's ids, most similar first.
    fn hits(&self, found: Vec<hnsw_rs::hnsw::Neighbour>) -> Vec<Hit> {
        let mut hits: Vec<Hit> = found
            .into_iter()
            .map(|n| Hit {
                id: self.vectors[n.d_id].0,
                similarity: 1.0 - n.distance,
            })
            .collect();
        hits.sort_by(|a, b| b.similarity.total_cmp(&a.similarity));
        hits
    }

    /// [`search`](Self::search) for many queries at once, spread over every core (rayon):
    /// one IDP asks one query per gap skill.
    pub fn search_many(&self, queries: &[Vec<f32>], k: usize) -> Vec<Vec<Hit>> {
        if self.vectors.is_empty() || k == 0 {
            return vec![Vec::new(); queries.len()];
        }
        let ef = self.params.ef_search.max(k);
        self.hnsw
            .parallel_search(queries, k, ef)
            .into_iter()
            .map(|found| self.hits(found))
            .collect()
    }

    /// The `k` nearest by scanning everything: the ground truth.
    pub fn exact(&self, query: &[f32], k: usize) -> Vec<Hit> {
        let mut hits: Vec<Hit> = self
            .vectors
            .iter()
            .map(|(id, v)| Hit {
                id: *id,
                similarity: crate::dot(query, v),
            })
            .collect();
        let k = k.min(hits.len());
        if k == 0 {
            return Vec::new();
        }
        hits.select_nth_unstable_by(k - 1, |a, b| b.similarity.total_cmp(&a.similarity));
        hits.truncate(k);
        hits.sort_by(|a, b| b.similarity.total_cmp(&a.similarity));
        hits
    }

    /// Fraction of the exact top `k` that HNSW also returns, averaged over `queries`.
    pub fn recall_at(&self, queries: &[Vec<f32>], k: usize) -> f64 {
        if queries.is_empty() {
            return 1.0;
        }
        let total: f64 = queries
            .iter()
            .map(|q| {
                let truth: Vec<u32> = self.exact(q, k).iter().map(|h| h.id).collect();
                if truth.is_empty() {
                    return 1.0;
                }
                let found = self
                    .search(q, k)
                    .iter()
                    .filter(|h| truth.contains(&h.id))
                    .count();
                found as f64 / truth.len() as f64
            })
            .sum();
        total / queries.len() as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn random_unit(rng: &mut impl Rng, dim: usize) -> Vec<f32> {
        let mut v: Vec<f32> = (0..dim).map(|_| rng.random::<f32>() - 0.5).collect();
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter_mut().for_each(|x| *x /= n);
        v
    }

    #[test]
    fn exact_search_finds_the_vector_itself_first() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut index = VectorIndex::new(IndexParams::default(), 100);
        let vs: Vec<Vec<f32>> = (0..100).map(|_| random_unit(&mut rng, 32)).collect();
        for (i, v) in vs.iter().enumerate() {
            index.insert(i as u32 * 10, v.clone());
        }
        let hits = index.exact(&vs[42], 3);
        assert_eq!(hits[0].id, 420);
        assert!((hits[0].similarity - 1.0).abs() < 1e-5);
        assert!(hits[0].similarity >= hits[1].similarity);
        assert_eq!(index.search(&vs[42], 1)[0].id, 420);
    }

    #[test]
    fn hnsw_recall_is_high_on_random_vectors() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let mut index = VectorIndex::new(IndexParams::default(), 5_000);
        let items: Vec<(u32, Vec<f32>)> = (0..5_000u32)
            .map(|i| (i, random_unit(&mut rng, 48)))
            .collect();
        index.extend(items);
        let queries: Vec<Vec<f32>> = (0..100).map(|_| random_unit(&mut rng, 48)).collect();
        let recall = index.recall_at(&queries, 10);
        assert!(recall > 0.9, "recall {recall}");
    }

    #[test]
    fn empty_index_answers_nothing() {
        let index = VectorIndex::new(IndexParams::default(), 0);
        assert!(index.search(&[1.0, 0.0], 5).is_empty());
        assert!(index.exact(&[1.0, 0.0], 5).is_empty());
    }
}
