//! Skill-to-skill similarity.
//!
//! Two signals, each blind where the other sees: embeddings know that "SQL" and "PostgreSQL"
//! mean related things but not that "budgeting" and "negotiation" are needed by the same job;
//! co-occurrence knows the latter from data but knows nothing about skills it has never seen
//! together. We blend them: `w·cos⁺ + (1-w)·npmi⁺`, where the co-occurrence weight grows with
//! the evidence (how often both skills occur at all), so a pair of rarely seen skills leans on
//! the embedding.

use std::collections::HashMap;

use uuid::Uuid;

/// Counts of skills appearing together in "baskets": an ESCO occupation's skill list, an
/// IDP's target skills, a review's rated skills.
#[derive(Debug, Default, Clone)]
pub struct Cooccurrence {
    baskets: u64,
    single: HashMap<Uuid, u32>,
    /// Symmetric adjacency: `pairs[a][b] == pairs[b][a]`, so a skill's neighbours are one
    /// lookup, not a scan of every pair.
    pairs: HashMap<Uuid, HashMap<Uuid, u32>>,
}

impl Cooccurrence {
    /// Nothing counted.
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts one basket (duplicates inside it count once).
    pub fn add_basket(&mut self, skills: &[Uuid]) {
        let mut skills = skills.to_vec();
        skills.sort_unstable();
        skills.dedup();
        if skills.is_empty() {
            return;
        }
        self.baskets += 1;
        for (i, a) in skills.iter().enumerate() {
            *self.single.entry(*a).or_default() += 1;
            for b in &skills[i + 1..] {
                *self.pairs.entry(*a).or_default().entry(*b).or_default() += 1;
                *self.pairs.entry(*b).or_default().entry(*a).or_default() += 1;
            }
        }
    }

    /// Baskets in which `skill` occurs.
    pub fn count(&self, skill: Uuid) -> u32 {
        self.single.get(&skill).copied().unwrap_or(0)
    }

    /// Baskets in which both occur.
    pub fn pair_count(&self, a: Uuid, b: Uuid) -> u32 {
        self.pairs
            .get(&a)
            .and_then(|m| m.get(&b))
            .copied()
            .unwrap_or(0)
    }

    /// Normalised PMI in [-1, 1]: 1 when the two always occur together, 0 when independent,
    /// -1 when never together (also when either was never seen).
    pub fn npmi(&self, a: Uuid, b: Uuid) -> f64 {
        if a == b {
            return 1.0;
        }
        let (na, nb, nab) = (self.count(a), self.count(b), self.pair_count(a, b));
        if na == 0 || nb == 0 || nab == 0 || self.baskets == 0 {
            return -1.0;
        }
        let n = self.baskets as f64;
        let (pa, pb, pab) = (f64::from(na) / n, f64::from(nb) / n, f64::from(nab) / n);
        if pab >= 1.0 {
            return 1.0;
        }
        (pab / (pa * pb)).ln() / -pab.ln()
    }

    /// Skills seen with `skill`, strongest NPMI first.
    pub fn neighbours(&self, skill: Uuid) -> Vec<(Uuid, f64)> {
        let mut out: Vec<(Uuid, f64)> = self
            .pairs
            .get(&skill)
            .into_iter()
            .flat_map(|m| m.keys())
            .map(|other| (*other, self.npmi(skill, *other)))
            .collect();
        out.sort_by(|x, y| y.1.total_cmp(&x.1));
        out
    }

    /// Baskets counted.
    pub fn baskets(&self) -> u64 {
        self.baskets
    }
}

/// How the two signals are blended.
#[derive(Debug, Clone, Copy)]
pub struct SkillSimilarity {
    /// Occurrences of the rarer skill at which co-occurrence gets half the weight.
    pub evidence_half: f64,
    /// The most weight co-occurrence ever gets.
    pub max_cooccurrence_weight: f64,
}

impl Default for SkillSimilarity {
    fn default() -> Self {
        Self {
            evidence_half: 3.0,
            max_cooccurrence_weight: 0.6,
        }
    }
}

impl SkillSimilarity {
    /// The blend in [0, 1] from a cosine and the co-occurrence table.
    pub fn blend(&self, cosine: f32, cooc: &Cooccurrence, a: Uuid, b: Uuid) -> f64 {
        if a == b {
            return 1.0;
        }
        let evidence = f64::from(cooc.count(a).min(cooc.count(b)));
        let w = self.max_cooccurrence_weight * evidence / (evidence + self.evidence_half);
        let cos = f64::from(cosine).max(0.0);
        let npmi = cooc.npmi(a, b).max(0.0);
        (1.0 - w) * cos + w * npmi
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: u128) -> Vec<Uuid> {
        (1..=n).map(Uuid::from_u128).collect()
    }

    #[test]
    fn npmi_is_one_for_inseparable_and_minus_one_for_never_together() {
        let s = ids(4);
        let mut c = Cooccurrence::new();
        c.add_basket(&[s[0], s[1]]);
        c.add_basket(&[s[0], s[1], s[2]]);
        c.add_basket(&[s[3]]);
        assert!((c.npmi(s[0], s[1]) - 1.0).abs() < 1e-9 || c.npmi(s[0], s[1]) > 0.99);
        assert_eq!(c.npmi(s[0], s[3]), -1.0);
        assert!(c.npmi(s[0], s[2]) > 0.0);
        assert_eq!(c.neighbours(s[0])[0].0, s[1]);
    }

    #[test]
    fn duplicates_in_a_basket_count_once() {
        let s = ids(2);
        let mut c = Cooccurrence::new();
        c.add_basket(&[s[0], s[0], s[1]]);
        assert_eq!(c.count(s[0]), 1);
        assert_eq!(c.pair_count(s[1], s[0]), 1);
    }

    #[test]
    fn blend_leans_on_embeddings_without_evidence() {
        let s = ids(3);
        let c = Cooccurrence::new();
        let sim = SkillSimilarity::default();
        assert!((sim.blend(0.8, &c, s[0], s[1]) - 0.8).abs() < 1e-6);
        let mut c = Cooccurrence::new();
        for _ in 0..20 {
            c.add_basket(&[s[0], s[1]]);
            c.add_basket(&[s[2]]);
        }
        // Strong co-occurrence lifts a pair the embedding thinks unrelated.
        assert!(sim.blend(0.1, &c, s[0], s[1]) > 0.4);
        // Negative cosine and never-together stay at zero.
        assert_eq!(sim.blend(-0.3, &c, s[0], s[2]), 0.0);
    }
}
