//! Ranking resources for a set of skill gaps.
//!
//! 1. **Candidates.** Resources tagged with a gap skill; resources tagged with a skill
//!    *related* to a gap skill (blended similarity, see [`crate::similarity`]); and resources
//!    whose text is semantically close to the gap skill (HNSW over resource embeddings), which
//!    finds what tagging missed.
//! 2. **Coverage.** For each candidate and gap, how much of that gap it covers, in [0, 1]:
//!    1 for a tag at a level above the employee's, the similarity for a related tag, a scaled
//!    cosine for a text match.
//! 3. **Greedy weighted coverage.** Each gap starts with weight `gap size × importance`. Each
//!    round picks the resource with the largest `quality × Σ weight × coverage`, then shrinks
//!    every gap's weight by `(1 - coverage)`. A second course on an already covered skill gains
//!    little, so the list spreads over the gap set instead of repeating one skill. Quality
//!    blends difficulty fit to the employee's level, duration and ratings; repeating a resource
//!    kind costs a little (diversity).

use std::collections::HashMap;

use uuid::Uuid;

use crate::index::{IndexParams, VectorIndex};
use crate::similarity::{Cooccurrence, SkillSimilarity};

/// A published resource as the ranker sees it.
#[derive(Debug, Clone)]
pub struct ResourceInfo {
    /// Id.
    pub id: Uuid,
    /// Title, for reasons.
    pub title: String,
    /// `course`, `book`, `video`, …
    pub kind: String,
    /// 1 (intro) to 5 (expert).
    pub difficulty: u8,
    /// Effort.
    pub duration_minutes: u32,
    /// Tagged skills with the level each is taught to.
    pub skills: Vec<(Uuid, u8)>,
    /// Sum of ratings (1 to 5 each).
    pub rating_sum: u32,
    /// Number of ratings.
    pub rating_count: u32,
}

/// One gap to close.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GapSpec {
    /// Skill.
    pub skill_id: Uuid,
    /// Current level, 0 when unknown.
    pub current: u8,
    /// Target level.
    pub target: u8,
    /// Weight multiplier (1 for explicit targets; less for skills implied by a target role).
    pub importance: f32,
}

impl GapSpec {
    /// Levels to climb.
    pub fn size(&self) -> u8 {
        self.target.saturating_sub(self.current)
    }
}

/// Gaps from targets and current levels; skills already at or above target drop out.
pub fn gaps(targets: &[(Uuid, u8, f32)], current: &HashMap<Uuid, u8>) -> Vec<GapSpec> {
    targets
        .iter()
        .map(|(skill_id, target, importance)| GapSpec {
            skill_id: *skill_id,
            current: current.get(skill_id).copied().unwrap_or(0),
            target: *target,
            importance: *importance,
        })
        .filter(|g| g.size() > 0)
        .collect()
}

/// One recommendation.
#[derive(Debug, Clone, PartialEq)]
pub struct Pick {
    /// Resource.
    pub resource_id: Uuid,
    /// Marginal gain when picked; non-increasing down the list.
    pub score: f64,
    /// Gap skills it covers, most covered first.
    pub skill_ids: Vec<Uuid>,
    /// One line for humans.
    pub reason: String,
}

/// Knobs; the defaults are what the service runs, the switches exist for the evaluation's
/// ablations.
#[derive(Debug, Clone, Copy)]
pub struct RankOptions {
    /// List length.
    pub k: usize,
    /// Use tags of related skills.
    pub use_related: bool,
    /// Use text similarity (HNSW) candidates.
    pub use_semantic: bool,
    /// Related skills considered per gap.
    pub related_per_gap: usize,
    /// Least blended similarity for a related skill.
    pub min_related: f64,
    /// Text neighbours fetched per gap.
    pub semantic_per_gap: usize,
    /// Text search runs for a gap only when fewer resources than this are tagged with the gap
    /// skill: text candidates exist to find what tagging missed, and an HNSW query is most of
    /// a ranking's cost on large catalogs. `usize::MAX` always searches.
    pub semantic_below: usize,
    /// Least cosine for a text match to count.
    pub min_cosine: f32,
    /// Coverage credited for a tag of a related skill, per unit of similarity.
    pub related_weight: f64,
    /// Coverage credited for a perfect text match (scaled down linearly to `min_cosine`).
    pub semantic_weight: f64,
    /// Most tagged resources taken per gap skill (bounds work on huge catalogs).
    pub per_skill_cap: usize,
    /// Most tagged resources taken per related skill (they earn at most `related_weight`).
    pub related_cap: usize,
}

impl Default for RankOptions {
    fn default() -> Self {
        Self {
            k: 10,
            use_related: true,
            use_semantic: true,
            related_per_gap: 5,
            min_related: 0.45,
            semantic_per_gap: 20,
            semantic_below: 20,
            // Chosen with `trellis eval recommender --sensitivity` (docs/recommendation.md):
            // a related skill's tag or a text match is weaker evidence than a tag of the gap
            // skill itself, so they mostly fill gaps no tagged resource covers.
            min_cosine: 0.5,
            related_weight: 0.3,
            semantic_weight: 0.6,
            per_skill_cap: 500,
            related_cap: 50,
        }
    }
}

struct SkillInfo {
    name: String,
    vector: Option<Vec<f32>>,
}

/// Everything the ranker knows about one organization.
pub struct Catalog {
    resources: Vec<ResourceInfo>,
    by_id: HashMap<Uuid, u32>,
    by_skill: HashMap<Uuid, Vec<u32>>,
    index: VectorIndex,
    skills: HashMap<Uuid, SkillInfo>,
    /// Skills with vectors, for related-skill scans.
    skill_vectors: Vec<(Uuid, Vec<f32>)>,
    cooccurrence: Cooccurrence,
    similarity: SkillSimilarity,
    /// Each skill's most similar skills (top [`RELATED_CACHED`] at ≥ [`RELATED_FLOOR`]):
    /// scanning every skill vector per gap would cost ~0.3 ms a gap. Cleared whenever skills
    /// or co-occurrence change.
    related_cache: std::sync::Mutex<HashMap<Uuid, Vec<(Uuid, f64)>>>,
}

const RELATED_CACHED: usize = 32;
const RELATED_FLOOR: f64 = 0.2;

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalog")
            .field("resources", &self.resources.len())
            .field("skills", &self.skills.len())
            .finish()
    }
}

impl Default for Catalog {
    fn default() -> Self {
        Self::new(IndexParams::default(), 1_000)
    }
}

impl Catalog {
    /// Empty, with an index sized for about `capacity` resources.
    pub fn new(params: IndexParams, capacity: usize) -> Self {
        Self {
            resources: Vec::new(),
            by_id: HashMap::new(),
            by_skill: HashMap::new(),
            index: VectorIndex::new(params, capacity),
            skills: HashMap::new(),
            skill_vectors: Vec::new(),
            cooccurrence: Cooccurrence::new(),
            similarity: SkillSimilarity::default(),
            related_cache: std::sync::Mutex::default(),
        }
    }

    /// Knows a skill's name and (optionally) its embedding. Later calls replace the name.
    pub fn add_skill(&mut self, id: Uuid, name: String, vector: Option<Vec<f32>>) {
        self.clear_related();
        if let Some(v) = &vector
            && self.skills.get(&id).is_none_or(|s| s.vector.is_none())
        {
            self.skill_vectors.push((id, v.clone()));
        }
        let entry = self
            .skills
            .entry(id)
            .or_insert(SkillInfo { name, vector: None });
        if vector.is_some() {
            entry.vector = vector;
        }
    }

    /// Whether the skill is known.
    pub fn has_skill(&self, id: Uuid) -> bool {
        self.skills.contains_key(&id)
    }

    /// A skill's name (its id when unknown).
    pub fn skill_name(&self, id: Uuid) -> String {
        self.skills
            .get(&id)
            .map_or_else(|| id.to_string(), |s| s.name.clone())
    }

    /// Adds a resource with its text embedding; false (and no change) when already present.
    pub fn add_resource(&mut self, info: ResourceInfo, vector: Vec<f32>) -> bool {
        if self.by_id.contains_key(&info.id) {
            return false;
        }
        let slot = self.resources.len() as u32;
        self.by_id.insert(info.id, slot);
        for (skill, _) in &info.skills {
            self.by_skill.entry(*skill).or_default().push(slot);
        }
        self.resources.push(info);
        self.index.insert(slot, vector);
        true
    }

    /// Adds many resources at once (parallel index build); duplicates are skipped.
    pub fn extend_resources(&mut self, items: Vec<(ResourceInfo, Vec<f32>)>) {
        let mut vectors = Vec::with_capacity(items.len());
        for (info, vector) in items {
            if self.by_id.contains_key(&info.id) {
                continue;
            }
            let slot = self.resources.len() as u32;
            self.by_id.insert(info.id, slot);
            for (skill, _) in &info.skills {
                self.by_skill.entry(*skill).or_default().push(slot);
            }
            self.resources.push(info);
            vectors.push((slot, vector));
        }
        self.index.extend(vectors);
    }

    /// Records a rating (1 to 5); unknown resources are ignored.
    pub fn rate(&mut self, resource: Uuid, rating: u8) {
        if let Some(slot) = self.by_id.get(&resource) {
            let r = &mut self.resources[*slot as usize];
            r.rating_sum += u32::from(rating);
            r.rating_count += 1;
        }
    }

    /// Takes back a rating (a user changed theirs).
    pub fn unrate(&mut self, resource: Uuid, rating: u8) {
        if let Some(slot) = self.by_id.get(&resource) {
            let r = &mut self.resources[*slot as usize];
            r.rating_sum = r.rating_sum.saturating_sub(u32::from(rating));
            r.rating_count = r.rating_count.saturating_sub(1);
        }
    }

    /// Counts skills seen together (an occupation, a plan's targets, a review's ratings).
    pub fn add_basket(&mut self, skills: &[Uuid]) {
        self.clear_related();
        self.cooccurrence.add_basket(skills);
    }

    /// Resources held.
    pub fn len(&self) -> usize {
        self.resources.len()
    }

    /// Holds no resources.
    pub fn is_empty(&self) -> bool {
        self.resources.is_empty()
    }

    /// The resource index (for recall measurements).
    pub fn index(&self) -> &VectorIndex {
        &self.index
    }

    /// The co-occurrence table.
    pub fn cooccurrence(&self) -> &Cooccurrence {
        &self.cooccurrence
    }

    /// Blended similarity of two skills in [0, 1].
    pub fn skill_similarity(&self, a: Uuid, b: Uuid) -> f64 {
        let cos = match (self.vector_of(a), self.vector_of(b)) {
            (Some(x), Some(y)) => crate::dot(x, y),
            _ => 0.0,
        };
        self.similarity.blend(cos, &self.cooccurrence, a, b)
    }

    fn vector_of(&self, skill: Uuid) -> Option<&[f32]> {
        self.skills.get(&skill)?.vector.as_deref()
    }

    fn clear_related(&mut self) {
        self.related_cache
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
    }

    /// The skills most similar to `skill` (blended), at least `min`, best first.
    pub fn related_skills(&self, skill: Uuid, limit: usize, min: f64) -> Vec<(Uuid, f64)> {
        if limit > RELATED_CACHED || min < RELATED_FLOOR {
            return self.scan_related(skill, limit, min);
        }
        let mut cache = self
            .related_cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let all = cache
            .entry(skill)
            .or_insert_with(|| self.scan_related(skill, RELATED_CACHED, RELATED_FLOOR));
        all.iter()
            .filter(|(_, s)| *s >= min)
            .take(limit)
            .copied()
            .collect()
    }

    fn scan_related(&self, skill: Uuid, limit: usize, min: f64) -> Vec<(Uuid, f64)> {
        let mut scored: HashMap<Uuid, f64> = HashMap::new();
        if let Some(v) = self.vector_of(skill) {
            for (other, w) in &self.skill_vectors {
                if *other != skill {
                    let s =
                        self.similarity
                            .blend(crate::dot(v, w), &self.cooccurrence, skill, *other);
                    scored.insert(*other, s);
                }
            }
        }
        for (other, _) in self.cooccurrence.neighbours(skill) {
            scored
                .entry(other)
                .or_insert_with(|| self.skill_similarity(skill, other));
        }
        let mut out: Vec<(Uuid, f64)> = scored.into_iter().filter(|(_, s)| *s >= min).collect();
        out.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        out.truncate(limit);
        out
    }

    /// The ranked list for `gaps`.
    pub fn rank(&self, gaps: &[GapSpec], options: &RankOptions) -> Vec<Pick> {
        let gaps: Vec<GapSpec> = gaps.iter().copied().filter(|g| g.size() > 0).collect();
        if gaps.is_empty() || self.resources.is_empty() {
            return Vec::new();
        }
        // Related skills per gap: skill -> similarity.
        let related: Vec<HashMap<Uuid, f64>> = gaps
            .iter()
            .map(|g| {
                if options.use_related {
                    self.related_skills(g.skill_id, options.related_per_gap, options.min_related)
                        .into_iter()
                        .collect()
                } else {
                    HashMap::new()
                }
            })
            .collect();
        let (candidates, semantic) = self.candidates(&gaps, &related, options);
        let coverage = self.coverage(&candidates, &gaps, &related, &semantic, options);
        let quality: Vec<f64> = candidates
            .iter()
            .zip(&coverage)
            .map(|(slot, cov)| self.quality(*slot, &gaps, cov))
            .collect();

        let mut weight: Vec<f64> = gaps
            .iter()
            .map(|g| f64::from(g.size()) * f64::from(g.importance))
            .collect();
        let mut taken = vec![false; candidates.len()];
        // Kinds as small integers, so the inner loop counts repeats without hashing.
        let mut kind_ids: HashMap<&str, usize> = HashMap::new();
        let kind_of: Vec<usize> = candidates
            .iter()
            .map(|slot| {
                let next = kind_ids.len();
                *kind_ids
                    .entry(self.resources[*slot as usize].kind.as_str())
                    .or_insert(next)
            })
            .collect();
        let mut repeats = vec![0i32; kind_ids.len()];
        let mut picks = Vec::new();
        while picks.len() < options.k {
            let mut best: Option<(usize, f64)> = None;
            for (i, cov) in coverage.iter().enumerate() {
                if taken[i] {
                    continue;
                }
                let gain: f64 = cov.iter().zip(&weight).map(|(c, w)| c * w).sum::<f64>()
                    * quality[i]
                    * 0.92f64.powi(repeats[kind_of[i]]);
                if gain > best.map_or(1e-6, |b| b.1) {
                    best = Some((i, gain));
                }
            }
            let Some((i, gain)) = best else { break };
            taken[i] = true;
            let slot = candidates[i] as usize;
            repeats[kind_of[i]] += 1;
            for (w, c) in weight.iter_mut().zip(&coverage[i]) {
                *w *= 1.0 - c;
            }
            picks.push(self.pick(slot, gain, &gaps, &coverage[i], &related));
        }
        picks
    }

    /// Candidate slots, and per gap the text neighbours with their cosine: only those get
    /// text credit, so coverage needs no vector arithmetic (it dominated ranking time over
    /// 100,000 resources).
    fn candidates(
        &self,
        gaps: &[GapSpec],
        related: &[HashMap<Uuid, f64>],
        options: &RankOptions,
    ) -> (Vec<u32>, Vec<HashMap<u32, f32>>) {
        let mut out: Vec<u32> = Vec::new();
        for (g, rel) in gaps.iter().zip(related) {
            if let Some(slots) = self.by_skill.get(&g.skill_id) {
                out.extend(slots.iter().take(options.per_skill_cap));
            }
            for skill in rel.keys() {
                if let Some(slots) = self.by_skill.get(skill) {
                    out.extend(slots.iter().take(options.related_cap));
                }
            }
        }
        let mut semantic = vec![HashMap::new(); gaps.len()];
        if options.use_semantic {
            let (which, queries): (Vec<usize>, Vec<Vec<f32>>) = gaps
                .iter()
                .enumerate()
                .filter(|(_, g)| {
                    self.by_skill.get(&g.skill_id).map_or(0, Vec::len) < options.semantic_below
                })
                .filter_map(|(i, g)| Some((i, self.vector_of(g.skill_id)?.to_vec())))
                .unzip();
            for (i, hits) in which
                .into_iter()
                .zip(self.index.search_many(&queries, options.semantic_per_gap))
            {
                for hit in hits {
                    if hit.similarity >= options.min_cosine {
                        out.push(hit.id);
                        semantic[i].insert(hit.id, hit.similarity);
                    }
                }
            }
        }
        out.sort_unstable();
        out.dedup();
        (out, semantic)
    }

    /// How much of each gap each candidate covers (one row per candidate).
    fn coverage(
        &self,
        candidates: &[u32],
        gaps: &[GapSpec],
        related: &[HashMap<Uuid, f64>],
        semantic: &[HashMap<u32, f32>],
        options: &RankOptions,
    ) -> Vec<Vec<f64>> {
        // Which gaps each skill speaks to, with the credit a tag of it earns: one lookup per
        // tag of a candidate instead of one per (tag, gap).
        let mut speaks: HashMap<Uuid, Vec<(usize, f64)>> = HashMap::new();
        for (i, (g, rel)) in gaps.iter().zip(related).enumerate() {
            speaks.entry(g.skill_id).or_default().push((i, 1.0));
            for (skill, sim) in rel {
                speaks
                    .entry(*skill)
                    .or_default()
                    .push((i, options.related_weight * sim));
            }
        }
        let mut rows: Vec<Vec<f64>> = candidates
            .iter()
            .map(|slot| {
                let mut row = vec![0.0; gaps.len()];
                for (skill, level) in &self.resources[*slot as usize].skills {
                    for (i, credit) in speaks.get(skill).into_iter().flatten() {
                        // Teaching a skill only up to the employee's level helps little.
                        let adequacy = if *level > gaps[*i].current { 1.0 } else { 0.3 };
                        row[*i] = f64::max(row[*i], credit * adequacy);
                    }
                }
                row
            })
            .collect();
        let row_of: HashMap<u32, usize> = candidates
            .iter()
            .enumerate()
            .map(|(r, s)| (*s, r))
            .collect();
        let span = f64::from(1.0 - options.min_cosine).max(1e-6);
        for (i, near) in semantic.iter().enumerate() {
            for (slot, cos) in near {
                if let Some(r) = row_of.get(slot) {
                    let credit = (f64::from(cos - options.min_cosine) / span).clamp(0.0, 1.0)
                        * options.semantic_weight;
                    rows[*r][i] = f64::max(rows[*r][i], credit);
                }
            }
        }
        rows
    }

    /// Difficulty fit × duration × ratings, in (0, 1].
    fn quality(&self, slot: u32, gaps: &[GapSpec], coverage: &[f64]) -> f64 {
        let r = &self.resources[slot as usize];
        let (mut level, mut mass) = (0.0, 0.0);
        for (g, c) in gaps.iter().zip(coverage) {
            level += f64::from(g.current) * c;
            mass += c;
        }
        let desired = if mass > 0.0 {
            (level / mass + 1.0).clamp(1.0, 5.0)
        } else {
            1.0
        };
        let fit = 1.0 - 0.12 * (f64::from(r.difficulty) - desired).abs();
        let duration = 1.0 - 0.15 * f64::from(r.duration_minutes.min(600)) / 600.0;
        fit * duration * rating_factor(r)
    }

    fn pick(
        &self,
        slot: usize,
        gain: f64,
        gaps: &[GapSpec],
        coverage: &[f64],
        related: &[HashMap<Uuid, f64>],
    ) -> Pick {
        let r = &self.resources[slot];
        let mut covered: Vec<(usize, f64)> = coverage
            .iter()
            .copied()
            .enumerate()
            .filter(|(_, c)| *c >= 0.2)
            .collect();
        covered.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        let parts: Vec<String> = covered
            .iter()
            .take(3)
            .map(|(i, _)| {
                let g = &gaps[*i];
                let how = if r.skills.iter().any(|(s, _)| *s == g.skill_id) {
                    format!("level {} → {}", g.current, g.target)
                } else if r.skills.iter().any(|(s, _)| related[*i].contains_key(s)) {
                    "via a related skill".to_owned()
                } else {
                    "by its content".to_owned()
                };
                format!("{} ({how})", self.skill_name(g.skill_id))
            })
            .collect();
        let mut reason = if parts.is_empty() {
            format!("Related to your goals: {}", r.title)
        } else {
            let more = covered.len().saturating_sub(3);
            let tail = if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            };
            format!("Covers {}{tail}", parts.join(", "))
        };
        reason.push_str(&format!(
            "; difficulty {}/5, {} min",
            r.difficulty, r.duration_minutes
        ));
        if r.rating_count > 0 {
            let mean = f64::from(r.rating_sum) / f64::from(r.rating_count);
            reason.push_str(&format!(", rated {mean:.1}/5 ({})", r.rating_count));
        }
        Pick {
            resource_id: r.id,
            score: (gain * 10_000.0).round() / 10_000.0,
            skill_ids: covered.iter().map(|(i, _)| gaps[*i].skill_id).collect(),
            reason,
        }
    }
}

/// Ratings, shrunk toward 3.5 with the weight of two ratings so one 5-star review does not
/// outrank fifty 4.6s: 0.75 (all 1s) to 1.0 (all 5s).
fn rating_factor(r: &ResourceInfo) -> f64 {
    let mean = (f64::from(r.rating_sum) + 3.5 * 2.0) / (f64::from(r.rating_count) + 2.0);
    0.75 + 0.25 * (mean - 1.0) / 4.0
}

#[cfg(test)]
mod tests;
