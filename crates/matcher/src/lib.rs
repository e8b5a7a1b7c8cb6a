//! Group formation for cohorts (seed 003), pure and deterministic.
//!
//! **Score** (CATME-like): each criterion scores a group in 0–1 by its mode: *similar* is
//! high when members are alike (mean pairwise similarity of skills or goals, a narrow spread
//! of UTC offsets, a large shared slice of the week, one common answer), *diverse* when they
//! differ (one minus the mean similarity, a wide spread, many distinct answers). A group's
//! score is the weighted mean of its criteria.
//!
//! **Skills and goals** compare as sentence-embedding vectors when every learner of the batch
//! carries them ([`Learner::skill_vector`], [`Learner::goal_vector`]: the service embeds skill
//! texts and goals with MiniLM): the similarity of two learners is the cosine of their vectors
//! (below 0 counts as 0), so "Rust" and "systems programming" are close although their ids
//! differ. Without vectors, skills compare by shared skill ids (level-weighted cosine) and goals
//! by shared content words. A [`Scorer`] precomputes every pair's vector similarity of a batch
//! up to [`TABLE_MAX`] learners, so the search pays a lookup per pair.
//!
//! **Hard constraints**: every group's size is within `[min, max]`, and its members share at
//! least one weekly slot. Learners who cannot be placed under them stay queued with a reason.
//!
//! **Objective**: maximise the worst group's score, ties broken by the total.
//!
//! **Algorithm**: a constructive start (learners with the least availability first, each to
//! the compatible group with room whose score it raises most among a seeded sample), a repair
//! pass for groups under `min`, then local search: the worst group trades members (swaps, and
//! moves where sizes allow) with seeded random partners, accepting a change when the worse of
//! the two groups improves (or stays and the total rises). The search runs a fixed number of
//! steps (proportional to the learners), so the same input and seed give the same groups on
//! any machine; a wall-clock cap only guards against pathological inputs.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use trellis_cohorts::{Mode, intersect};

/// What a criterion looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attribute {
    /// Skills with levels.
    Skills,
    /// Goals (their content words).
    Goals,
    /// UTC offset.
    Timezone,
    /// Weekly availability.
    Availability,
    /// A custom answer.
    Answer(String),
}

impl Attribute {
    /// Parses `skills`, `goals`, `timezone`, `availability` or `answers.<key>`.
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "skills" => Self::Skills,
            "goals" => Self::Goals,
            "timezone" => Self::Timezone,
            "availability" => Self::Availability,
            other => Self::Answer(other.strip_prefix("answers.")?.to_owned()),
        })
    }
}

/// One weighted criterion.
#[derive(Debug, Clone)]
pub struct Criterion {
    /// What it looks at.
    pub attribute: Attribute,
    /// Similar or diverse.
    pub mode: Mode,
    /// 0 to 1.
    pub weight: f64,
}

/// A queued learner as the matcher sees them.
#[derive(Debug, Clone, Default)]
pub struct Learner {
    /// Skills: `(skill, level 1–5)`.
    pub skills: Vec<(uuid::Uuid, u8)>,
    /// Goal words (lower-cased, deduplicated).
    pub goal_words: BTreeSet<String>,
    /// The skills as one unit vector (the level-weighted mean of the skills' text embeddings),
    /// each component × 127 rounded (`trellis_embed::quantize`).
    pub skill_vector: Option<Vec<i8>>,
    /// The goals text's embedding, quantized alike.
    pub goal_vector: Option<Vec<i8>>,
    /// UTC offset in minutes now.
    pub utc_offset_minutes: i32,
    /// Weekly availability, minutes from Monday 00:00 UTC, `[start, end)`, sorted and merged
    /// ([`trellis_cohorts::week_ranges`]).
    pub slots: Vec<(u32, u32)>,
    /// Custom answers.
    pub answers: BTreeMap<String, String>,
}

/// Words of a goals text that carry meaning (3+ letters, not a stop word), lower-cased.
pub fn goal_words(text: &str) -> BTreeSet<String> {
    const STOP: &[&str] = &[
        "the", "and", "for", "with", "that", "this", "from", "into", "about", "want", "would",
        "like", "learn", "how", "are", "was", "can", "our", "your", "more",
    ];
    text.split(|c: char| !c.is_alphanumeric())
        .map(str::to_lowercase)
        .filter(|w| w.chars().count() >= 3 && !STOP.contains(&w.as_str()))
        .collect()
}

/// Cosine of two quantized unit vectors, below 0 counted as 0.
fn vector_similarity(a: &[i8], b: &[i8]) -> f64 {
    let dot: i32 = a
        .iter()
        .zip(b)
        .map(|(x, y)| i32::from(*x) * i32::from(*y))
        .sum();
    (f64::from(dot) / (127.0 * 127.0)).clamp(0.0, 1.0)
}

/// Most tickets one batch of the service takes; the evaluation forms larger queues in
/// consecutive batches of this size, as the service does.
pub const BATCH_MAX: usize = 1_200;

/// Most learners whose pairwise vector similarities a [`Scorer`] precomputes (`n²` values:
/// 5.8 MB per criterion for a full batch); above it each pair is computed when needed.
pub const TABLE_MAX: usize = 2_000;

/// Settings of one formation.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Smallest group.
    pub min: usize,
    /// Largest group.
    pub max: usize,
    /// Weighted criteria (none: every valid grouping scores alike).
    pub criteria: Vec<Criterion>,
    /// Seed of every random choice.
    pub seed: u64,
    /// Local-search steps per learner.
    pub steps_per_learner: usize,
    /// Wall-clock cap on the search.
    pub time_cap: Duration,
}

impl Settings {
    /// Settings with the default search effort.
    pub fn new(min: usize, max: usize, criteria: Vec<Criterion>, seed: u64) -> Self {
        Self {
            min: min.max(1),
            max: max.max(min.max(1)),
            criteria,
            seed,
            steps_per_learner: 200,
            time_cap: Duration::from_millis(1_500),
        }
    }
}

/// Why a learner was not placed.
pub const NOT_ENOUGH: &str = "not enough learners are queued to form a group yet";
/// Why a learner was not placed.
pub const NO_SHARED_SLOT: &str =
    "no group could be formed whose members share a weekly slot with your availability";

/// The formation.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// Groups as indexes into the learners.
    pub groups: Vec<Vec<usize>>,
    /// Learners left queued, with the reason.
    pub unplaced: Vec<(usize, &'static str)>,
    /// Each group's score, in the order of `groups`.
    pub scores: Vec<f64>,
}

impl Outcome {
    /// The worst group's score (1 without groups).
    pub fn worst(&self) -> f64 {
        self.scores.iter().copied().fold(1.0, f64::min)
    }

    /// The mean group score.
    pub fn mean(&self) -> f64 {
        if self.scores.is_empty() {
            return 0.0;
        }
        self.scores.iter().sum::<f64>() / self.scores.len() as f64
    }
}

fn cosine_skills(a: &Learner, b: &Learner) -> f64 {
    let (mut dot, mut na, mut nb) = (0.0, 0.0, 0.0);
    for (_, l) in &a.skills {
        na += f64::from(*l).powi(2);
    }
    for (_, l) in &b.skills {
        nb += f64::from(*l).powi(2);
    }
    for (s, la) in &a.skills {
        if let Some((_, lb)) = b.skills.iter().find(|(t, _)| t == s) {
            dot += f64::from(*la) * f64::from(*lb);
        }
    }
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        dot / (na.sqrt() * nb.sqrt())
    }
}

fn goal_similarity(a: &Learner, b: &Learner) -> f64 {
    let common = a.goal_words.intersection(&b.goal_words).count();
    let union = a.goal_words.len() + b.goal_words.len() - common;
    if union == 0 {
        0.0
    } else {
        common as f64 / union as f64
    }
}

/// How one attribute (skills or goals) compares two learners of a batch, 0–1.
enum Pairwise {
    /// Every pair's vector similarity, precomputed (`n × n`, row-major).
    Table { n: usize, values: Vec<f32> },
    /// Vector similarity computed per pair (batches over [`TABLE_MAX`]).
    Vectors(fn(&Learner) -> Option<&[i8]>),
    /// Without vectors: skill ids or goal words.
    Fallback(fn(&Learner, &Learner) -> f64),
}

fn skill_vector(l: &Learner) -> Option<&[i8]> {
    l.skill_vector.as_deref()
}

fn goal_vector(l: &Learner) -> Option<&[i8]> {
    l.goal_vector.as_deref()
}

impl Pairwise {
    /// Vectors when every learner has one (a table up to [`TABLE_MAX`] learners), else the
    /// fallback.
    fn new(
        learners: &[Learner],
        vector: fn(&Learner) -> Option<&[i8]>,
        fallback: fn(&Learner, &Learner) -> f64,
    ) -> Self {
        let Some(vectors) = learners.iter().map(vector).collect::<Option<Vec<&[i8]>>>() else {
            return Self::Fallback(fallback);
        };
        let n = vectors.len();
        if n == 0 {
            return Self::Fallback(fallback);
        }
        if n > TABLE_MAX {
            return Self::Vectors(vector);
        }
        let mut values = vec![1.0f32; n * n];
        for i in 0..n {
            for j in i + 1..n {
                let v = vector_similarity(vectors[i], vectors[j]) as f32;
                values[i * n + j] = v;
                values[j * n + i] = v;
            }
        }
        Self::Table { n, values }
    }

    fn get(&self, learners: &[Learner], a: usize, b: usize) -> f64 {
        match self {
            Self::Table { n, values } => f64::from(values[a * n + b]),
            Self::Vectors(vector) => vector_similarity(
                vector(&learners[a]).unwrap_or_default(),
                vector(&learners[b]).unwrap_or_default(),
            ),
            Self::Fallback(f) => f(&learners[a], &learners[b]),
        }
    }
}

/// Scores groups of one batch: the learners, the criteria that weigh something and the
/// pairwise similarities of skills and goals (precomputed only when a criterion uses them).
pub struct Scorer<'a> {
    learners: &'a [Learner],
    criteria: Vec<Criterion>,
    weight: f64,
    skills: Pairwise,
    goals: Pairwise,
}

impl<'a> Scorer<'a> {
    /// A scorer of groups of `learners` under `criteria`.
    pub fn new(learners: &'a [Learner], criteria: &[Criterion]) -> Self {
        let criteria: Vec<Criterion> = criteria
            .iter()
            .filter(|c| c.weight > 0.0)
            .cloned()
            .collect();
        let used = |a: Attribute| criteria.iter().any(|c| c.attribute == a);
        let skills = if used(Attribute::Skills) {
            Pairwise::new(learners, skill_vector, cosine_skills)
        } else {
            Pairwise::Fallback(cosine_skills)
        };
        let goals = if used(Attribute::Goals) {
            Pairwise::new(learners, goal_vector, goal_similarity)
        } else {
            Pairwise::Fallback(goal_similarity)
        };
        Self {
            learners,
            weight: criteria.iter().map(|c| c.weight).sum(),
            criteria,
            skills,
            goals,
        }
    }

    /// A group's score: the weighted mean of its criteria (0.5 without weights).
    pub fn group(&self, members: &[usize]) -> f64 {
        if self.criteria.is_empty() {
            return 0.5;
        }
        self.criteria
            .iter()
            .map(|c| c.weight * criterion_score(members, self, c))
            .sum::<f64>()
            / self.weight
    }

    fn mean_pairwise(&self, members: &[usize], pairwise: &Pairwise) -> f64 {
        let mut total = 0.0;
        let mut pairs = 0usize;
        for (i, &a) in members.iter().enumerate() {
            for &b in &members[i + 1..] {
                total += pairwise.get(self.learners, a, b);
                pairs += 1;
            }
        }
        if pairs == 0 {
            0.5
        } else {
            total / pairs as f64
        }
    }
}

fn slot_minutes(slots: &[(u32, u32)]) -> u32 {
    slots.iter().map(|(s, e)| e - s).sum()
}

/// The weekly minutes every member of `members` shares.
pub fn common(members: &[usize], learners: &[Learner]) -> Vec<(u32, u32)> {
    let mut iter = members.iter();
    let Some(&first) = iter.next() else {
        return Vec::new();
    };
    let mut shared = learners[first].slots.clone();
    for &m in iter {
        shared = intersect(&shared, &learners[m].slots);
        if shared.is_empty() {
            break;
        }
    }
    shared
}

/// One criterion's score of a group, 0–1.
fn criterion_score(members: &[usize], scorer: &Scorer<'_>, criterion: &Criterion) -> f64 {
    if members.len() < 2 {
        return 0.5;
    }
    let learners = scorer.learners;
    let similar = match &criterion.attribute {
        Attribute::Skills => scorer.mean_pairwise(members, &scorer.skills),
        Attribute::Goals => scorer.mean_pairwise(members, &scorer.goals),
        Attribute::Timezone => {
            let offsets = members.iter().map(|&m| learners[m].utc_offset_minutes);
            let spread = offsets.clone().max().unwrap_or(0) - offsets.min().unwrap_or(0);
            1.0 - f64::from(spread.min(720)) / 720.0
        }
        Attribute::Availability => {
            let shared = f64::from(slot_minutes(&common(members, learners)));
            let least = members
                .iter()
                .map(|&m| slot_minutes(&learners[m].slots))
                .min()
                .unwrap_or(0);
            if least == 0 {
                0.0
            } else {
                shared / f64::from(least)
            }
        }
        Attribute::Answer(key) => {
            let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
            for &m in members {
                let answer = learners[m].answers.get(key).map_or("", String::as_str);
                *counts.entry(answer).or_default() += 1;
            }
            let n = (members.len() - 1) as f64;
            match criterion.mode {
                // For answers "diverse" counts distinct values, not one minus agreement.
                Mode::Diverse => return (counts.len() - 1) as f64 / n,
                Mode::Similar => (counts.values().max().copied().unwrap_or(1) - 1) as f64 / n,
            }
        }
    };
    match criterion.mode {
        Mode::Similar => similar,
        Mode::Diverse => 1.0 - similar,
    }
}

/// How many groups `n` learners make: as few as `max` allows, each at least `min`.
fn group_count(n: usize, min: usize, max: usize) -> Option<usize> {
    let k = n.div_ceil(max);
    if k == 0 {
        return None;
    }
    if k * min <= n {
        Some(k)
    } else {
        // Fewer, fuller groups; some learners wait for the next batch.
        let k = n / min;
        (k > 0).then_some(k)
    }
}

/// A seeded sample of candidate groups to try for one learner: all of them when few.
const CANDIDATES: usize = 48;

/// Forms groups of `learners` under `settings`.
pub fn form(learners: &[Learner], settings: &Settings) -> Outcome {
    let mut rng = StdRng::seed_from_u64(settings.seed);
    let (min, max) = (settings.min, settings.max);
    let Some(k) = group_count(learners.len(), min, max) else {
        return Outcome {
            groups: Vec::new(),
            unplaced: (0..learners.len()).map(|i| (i, NOT_ENOUGH)).collect(),
            scores: Vec::new(),
        };
    };
    let scorer = Scorer::new(learners, &settings.criteria);
    // The time cap guards the search, not the pairwise table built before it.
    let started = Instant::now();
    // Most constrained first: the least weekly availability, then queue order.
    let mut order: Vec<usize> = (0..learners.len()).collect();
    order.sort_by_key(|&i| (slot_minutes(&learners[i].slots), i));
    let mut groups: Vec<Vec<usize>> = vec![Vec::new(); k];
    let mut shared: Vec<Vec<(u32, u32)>> = vec![Vec::new(); k];
    // Each group's score as it stands (a candidate's gain needs only the group with them).
    let mut scores: Vec<f64> = vec![0.0; k];
    let mut unplaced: Vec<(usize, &'static str)> = Vec::new();
    // Fill to `min` first (every group can reach its floor), then up to `max`.
    let mut cap = min;
    let mut pending = order;
    loop {
        let mut deferred = Vec::new();
        for i in pending {
            let gain = |g: usize| -> Option<f64> {
                if groups[g].len() >= cap {
                    return None;
                }
                if groups[g].is_empty() {
                    // Empty groups are seeded first, by the most constrained learners.
                    return Some(f64::INFINITY);
                }
                if intersect(&shared[g], &learners[i].slots).is_empty() {
                    return None;
                }
                let mut with = groups[g].clone();
                with.push(i);
                Some(scorer.group(&with) - scores[g])
            };
            let mut best: Option<(f64, usize)> = None;
            let consider = |g: usize, best: &mut Option<(f64, usize)>| {
                if let Some(value) = gain(g)
                    && best.is_none_or(|(b, _)| value > b)
                {
                    *best = Some((value, g));
                }
            };
            if let Some(g) = groups.iter().position(Vec::is_empty) {
                consider(g, &mut best);
            }
            if k <= CANDIDATES {
                for g in 0..k {
                    consider(g, &mut best);
                }
            } else {
                for _ in 0..CANDIDATES {
                    consider(rng.random_range(0..k), &mut best);
                }
                if best.is_none() {
                    for g in 0..k {
                        consider(g, &mut best);
                    }
                }
            }
            match best {
                Some((_, g)) => {
                    shared[g] = if groups[g].is_empty() {
                        learners[i].slots.clone()
                    } else {
                        intersect(&shared[g], &learners[i].slots)
                    };
                    groups[g].push(i);
                    scores[g] = scorer.group(&groups[g]);
                }
                None => deferred.push(i),
            }
        }
        if cap == max || deferred.is_empty() {
            unplaced.extend(deferred.into_iter().map(|i| (i, NO_SHARED_SLOT)));
            break;
        }
        cap = max;
        pending = deferred;
    }
    // Repair: a group under `min` gives its members to compatible groups with room, or
    // they wait.
    while let Some(small) = (0..groups.len()).find(|&g| groups[g].len() < min) {
        let members = std::mem::take(&mut groups[small]);
        groups.swap_remove(small);
        shared.swap_remove(small);
        for i in members {
            let target = (0..groups.len()).find(|&g| {
                groups[g].len() < max && !intersect(&shared[g], &learners[i].slots).is_empty()
            });
            match target {
                Some(g) => {
                    shared[g] = intersect(&shared[g], &learners[i].slots);
                    groups[g].push(i);
                }
                None => unplaced.push((
                    i,
                    if groups.is_empty() {
                        NOT_ENOUGH
                    } else {
                        NO_SHARED_SLOT
                    },
                )),
            }
        }
    }
    regroup_leftovers(&mut groups, &mut unplaced, learners, settings);
    improve(&mut groups, &scorer, settings, &mut rng, started);
    for g in &mut groups {
        g.sort_unstable();
    }
    groups.sort();
    unplaced.sort_unstable();
    let scores = groups.iter().map(|g| scorer.group(g)).collect();
    Outcome {
        groups,
        unplaced,
        scores,
    }
}

/// Places learners the construction left out: each into a compatible group with room, then
/// new groups among them (topped up to `min` with compatible members of groups above `min`).
fn regroup_leftovers(
    groups: &mut Vec<Vec<usize>>,
    unplaced: &mut Vec<(usize, &'static str)>,
    learners: &[Learner],
    settings: &Settings,
) {
    let (min, max) = (settings.min, settings.max);
    let mut waiting: Vec<usize> = unplaced.drain(..).map(|(i, _)| i).collect();
    waiting.sort_unstable();
    let fits = |members: &[usize], i: usize| {
        let mut with = members.to_vec();
        with.push(i);
        !common(&with, learners).is_empty()
    };
    waiting.retain(|&i| {
        match (0..groups.len()).find(|&g| groups[g].len() < max && fits(&groups[g], i)) {
            Some(g) => {
                groups[g].push(i);
                false
            }
            None => true,
        }
    });
    let mut left = Vec::new();
    while let Some(seed) = waiting.first().copied() {
        waiting.remove(0);
        let mut new = vec![seed];
        waiting.retain(|&i| {
            if new.len() < max && fits(&new, i) {
                new.push(i);
                false
            } else {
                true
            }
        });
        // Borrow members from groups that can spare one.
        for group in groups.iter_mut() {
            while new.len() < min && group.len() > min {
                let Some(pos) = group.iter().position(|&m| fits(&new, m)) else {
                    break;
                };
                new.push(group.remove(pos));
            }
        }
        if new.len() >= min {
            groups.push(new);
        } else {
            // Give borrowed members back where they came from is not tracked: they fit any
            // group with room they are compatible with, so place them again or let them wait.
            for i in new {
                match (0..groups.len()).find(|&g| groups[g].len() < max && fits(&groups[g], i)) {
                    Some(g) => groups[g].push(i),
                    None => left.push(i),
                }
            }
        }
    }
    let reason = if groups.is_empty() {
        NOT_ENOUGH
    } else {
        NO_SHARED_SLOT
    };
    unplaced.extend(left.into_iter().map(|i| (i, reason)));
}

/// Scores as integers, so the order of groups by score is total and exact.
fn key(score: f64) -> i64 {
    (score * 1e9).round() as i64
}

/// A sampled change of the local search: group `a` (the worst) becomes `na`, group `b`
/// becomes `nb`.
struct Change {
    gain: (i64, i64),
    b: usize,
    na: Vec<usize>,
    nb: Vec<usize>,
    sa: f64,
    sb: f64,
}

/// Local search: the worst group trades members with seeded random partners.
fn improve(
    groups: &mut [Vec<usize>],
    scorer: &Scorer<'_>,
    settings: &Settings,
    rng: &mut StdRng,
    started: Instant,
) {
    let k = groups.len();
    if k < 2 || scorer.criteria.is_empty() {
        return;
    }
    let learners = scorer.learners;
    let score = |g: &[usize]| scorer.group(g);
    let mut scores: Vec<f64> = groups.iter().map(|g| score(g)).collect();
    let mut ranked: BTreeSet<(i64, usize)> = scores
        .iter()
        .enumerate()
        .map(|(g, s)| (key(*s), g))
        .collect();
    let fits = |members: &[usize]| !common(members, learners).is_empty();
    let steps = settings.steps_per_learner * learners.len();
    // Each round samples this many changes around the worst group and keeps the best.
    const SAMPLE: usize = 8;
    // Fruitless rounds at one group before the search turns to the next worst.
    const PATIENCE: usize = 8;
    let mut stuck = 0usize;
    let mut skip = 0usize;
    let mut tried = 0usize;
    while tried < steps {
        if tried % 256 < SAMPLE && started.elapsed() > settings.time_cap {
            break;
        }
        let Some(&(_, a)) = ranked.iter().nth(skip.min(k - 1)) else {
            break;
        };
        let before_a = scores[a];
        let mut best: Option<Change> = None;
        for _ in 0..SAMPLE {
            tried += 1;
            let b = loop {
                let b = rng.random_range(0..k);
                if b != a {
                    break b;
                }
            };
            let i = rng.random_range(0..groups[a].len());
            let j = rng.random_range(0..groups[b].len());
            // A swap, or (when sizes allow) a move of a's member to b or of b's member to a.
            let (mut na, mut nb) = (groups[a].clone(), groups[b].clone());
            match rng.random_range(0..3u8) {
                0 => std::mem::swap(&mut na[i], &mut nb[j]),
                1 if na.len() > settings.min && nb.len() < settings.max => {
                    nb.push(na.swap_remove(i));
                }
                2 if nb.len() > settings.min && na.len() < settings.max => {
                    na.push(nb.swap_remove(j));
                }
                _ => continue,
            }
            if !fits(&na) || !fits(&nb) {
                continue;
            }
            let (sa, sb) = (score(&na), score(&nb));
            let before = (key(before_a.min(scores[b])), key(before_a + scores[b]));
            let after = (key(sa.min(sb)), key(sa + sb));
            let gain = (after.0 - before.0, after.1 - before.1);
            if after > before && best.as_ref().is_none_or(|c| gain > c.gain) {
                best = Some(Change {
                    gain,
                    b,
                    na,
                    nb,
                    sa,
                    sb,
                });
            }
        }
        if let Some(Change {
            b, na, nb, sa, sb, ..
        }) = best
        {
            ranked.remove(&(key(scores[a]), a));
            ranked.remove(&(key(scores[b]), b));
            groups[a] = na;
            groups[b] = nb;
            scores[a] = sa;
            scores[b] = sb;
            ranked.insert((key(sa), a));
            ranked.insert((key(sb), b));
            stuck = 0;
            skip = 0;
        } else {
            stuck += 1;
            if stuck > PATIENCE {
                stuck = 0;
                skip = (skip + 1) % k;
            }
        }
    }
}

/// Baseline for the evaluation: each learner, in queue order, to the compatible group with
/// room where the group scores best after adding them (groups opened as needed up to the
/// count [`form`] uses).
pub fn greedy(learners: &[Learner], settings: &Settings) -> Outcome {
    let (min, max) = (settings.min, settings.max);
    let Some(k) = group_count(learners.len(), min, max) else {
        return Outcome {
            groups: Vec::new(),
            unplaced: (0..learners.len()).map(|i| (i, NOT_ENOUGH)).collect(),
            scores: Vec::new(),
        };
    };
    let scorer = Scorer::new(learners, &settings.criteria);
    let mut groups: Vec<Vec<usize>> = vec![Vec::new(); k];
    let mut unplaced = Vec::new();
    for i in 0..learners.len() {
        let best = (0..k)
            .filter(|&g| groups[g].len() < max)
            .filter(|&g| {
                let mut with = groups[g].clone();
                with.push(i);
                !common(&with, learners).is_empty()
            })
            .map(|g| {
                let mut with = groups[g].clone();
                with.push(i);
                (key(scorer.group(&with)), g)
            })
            .max_by_key(|&(s, g)| (s, std::cmp::Reverse(g)));
        match best {
            Some((_, g)) => groups[g].push(i),
            None => unplaced.push((i, NO_SHARED_SLOT)),
        }
    }
    finish(groups, unplaced, &scorer, settings)
}

/// Baseline for the evaluation: learners shuffled (seeded) into groups in turn, constraints
/// ignored (violations are counted by [`violations`]).
pub fn random(learners: &[Learner], settings: &Settings) -> Outcome {
    let mut rng = StdRng::seed_from_u64(settings.seed);
    let Some(k) = group_count(learners.len(), settings.min, settings.max) else {
        return Outcome {
            groups: Vec::new(),
            unplaced: (0..learners.len()).map(|i| (i, NOT_ENOUGH)).collect(),
            scores: Vec::new(),
        };
    };
    let scorer = Scorer::new(learners, &settings.criteria);
    let mut order: Vec<usize> = (0..learners.len()).collect();
    for i in (1..order.len()).rev() {
        order.swap(i, rng.random_range(0..=i));
    }
    let mut groups: Vec<Vec<usize>> = vec![Vec::new(); k];
    let mut unplaced = Vec::new();
    for (n, i) in order.into_iter().enumerate() {
        if n < k * settings.max {
            groups[n % k].push(i);
        } else {
            unplaced.push((i, NOT_ENOUGH));
        }
    }
    let scores = groups.iter().map(|g| scorer.group(g)).collect();
    Outcome {
        groups,
        unplaced,
        scores,
    }
}

/// Groups below `min` dissolve into `unplaced`; scores computed.
fn finish(
    groups: Vec<Vec<usize>>,
    mut unplaced: Vec<(usize, &'static str)>,
    scorer: &Scorer<'_>,
    settings: &Settings,
) -> Outcome {
    let mut kept = Vec::new();
    for g in groups {
        if g.len() >= settings.min {
            kept.push(g);
        } else {
            unplaced.extend(g.into_iter().map(|i| (i, NOT_ENOUGH)));
        }
    }
    let scores = kept.iter().map(|g| scorer.group(g)).collect();
    Outcome {
        groups: kept,
        unplaced,
        scores,
    }
}

/// Broken hard constraints of an outcome: groups outside `[min, max]` plus groups whose
/// members share no weekly slot, plus learners placed twice or lost.
pub fn violations(outcome: &Outcome, learners: &[Learner], settings: &Settings) -> usize {
    let mut seen = vec![0usize; learners.len()];
    let mut broken = 0;
    for g in &outcome.groups {
        if g.len() < settings.min || g.len() > settings.max {
            broken += 1;
        }
        if common(g, learners).is_empty() {
            broken += 1;
        }
        for &i in g {
            seen[i] += 1;
        }
    }
    for (i, _) in &outcome.unplaced {
        seen[*i] += 1;
    }
    broken + seen.iter().filter(|&&n| n != 1).count()
}

#[cfg(test)]
mod tests;
