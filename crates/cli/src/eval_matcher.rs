//! `trellis eval matcher`: the offline evaluation of docs/matching.md.
//!
//! Synthetic learners built from real ESCO data (`data/esco/occupations.jsonl`): each picks an
//! occupation, takes 5–8 of its essential skills at levels 1–5 and the occupation's title as
//! their goal; time zones are drawn from a fixed distribution over eleven zones of the
//! Americas, Europe and Asia-Pacific; availability is 2–4 weekly slots in local time
//! (weekday evenings 18–21, Saturday 10–13) turned into UTC with the zone's offset. Criteria:
//! skills diverse 0.4, goals similar 0.3, time zone similar 0.3; a shared weekly slot is the
//! hard constraint. Skills and goals compare as MiniLM vectors, as in the service (the skill
//! texts of `data/esco/skills.jsonl` and the goal texts embedded once per run; `--no-vectors`
//! compares skill ids and goal words instead). Queues larger than one batch of the service
//! ([`trellis_matcher::BATCH_MAX`]) are formed in consecutive batches, as the service forms them. Methods: Trellis's matcher, the greedy baseline (each learner in queue
//! order to the compatible group where the group scores best), random assignment (constraints
//! ignored), and the exact optimum by enumeration on tiny instances.

// The tables on stdout are this command's output.
#![allow(clippy::print_stdout)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use trellis_cohorts::Mode;
use trellis_embed::{Embedder, quantize};
use trellis_matcher::{
    Attribute, BATCH_MAX, Criterion, Learner, Outcome, Scorer, Settings, form, goal_words, greedy,
    random, violations,
};
use uuid::Uuid;

/// Options of `trellis eval matcher`.
#[derive(Debug, Args)]
pub struct EvalMatcherArgs {
    /// Folder with occupations.jsonl.
    #[arg(long, default_value = "data/esco")]
    data: PathBuf,
    /// Batch sizes to form (learners).
    #[arg(long, value_delimiter = ',', default_value = "12,60,240,1000,10000")]
    sizes: Vec<usize>,
    /// Seeds (instances) per batch size.
    #[arg(long, default_value_t = 5)]
    seeds: u64,
    /// Tiny instances solved exactly.
    #[arg(long, default_value_t = 40)]
    tiny: u64,
    /// Compare skills by ids and goals by words (the service's fallback) instead of vectors.
    #[arg(long)]
    no_vectors: bool,
}

const ZONES: &[(&str, f64)] = &[
    ("America/Los_Angeles", 0.08),
    ("America/Chicago", 0.06),
    ("America/New_York", 0.14),
    ("America/Sao_Paulo", 0.06),
    ("Europe/London", 0.14),
    ("Europe/Lisbon", 0.05),
    ("Europe/Berlin", 0.18),
    ("Asia/Kolkata", 0.12),
    ("Asia/Singapore", 0.06),
    ("Asia/Tokyo", 0.05),
    ("Australia/Sydney", 0.06),
];

struct Occupation {
    label: String,
    skills: Vec<Uuid>,
    /// The text embedded for each skill (as the catalog's `skill_text`).
    skill_texts: Vec<String>,
}

/// Embeddings of the skills and goals the synthetic learners use.
#[derive(Default)]
struct Vectors {
    skills: std::collections::HashMap<Uuid, Vec<f32>>,
    goals: std::collections::HashMap<String, Vec<f32>>,
}

fn goal_text(occupation: &Occupation) -> String {
    format!("Become a {}", occupation.label)
}

/// Embeds every skill text and goal of `occupations` once.
fn embed(occupations: &[Occupation]) -> anyhow::Result<Vectors> {
    let model = trellis_embed::MiniLm::load_default().context("loading the embedding model")?;
    let mut skills: BTreeMap<Uuid, &str> = BTreeMap::new();
    for o in occupations {
        for (id, text) in o.skills.iter().zip(&o.skill_texts) {
            skills.insert(*id, text);
        }
    }
    let goals: Vec<String> = occupations.iter().map(goal_text).collect();
    let started = Instant::now();
    let mut vectors = Vectors::default();
    let ids: Vec<Uuid> = skills.keys().copied().collect();
    let texts: Vec<&str> = skills.values().copied().collect();
    vectors.skills = ids.iter().copied().zip(model.embed(&texts)?).collect();
    let refs: Vec<&str> = goals.iter().map(String::as_str).collect();
    vectors.goals = goals.iter().cloned().zip(model.embed(&refs)?).collect();
    eprintln!(
        "embedded {} skill texts and {} goals in {:.1} s",
        ids.len(),
        goals.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(vectors)
}

/// The ESCO occupations with at least five skills of `skills.jsonl`, each skill with the
/// text the catalog embeds (`crate::esco_data`, parsed as the import parses them).
fn occupations(data: &std::path::Path) -> anyhow::Result<Vec<Occupation>> {
    let esco = crate::esco_data::load(data)?;
    Ok(esco
        .occupations
        .iter()
        .zip(&esco.occupation_labels)
        .filter(|(skills, _)| skills.len() >= 5)
        .map(|(skills, label)| Occupation {
            label: label.clone(),
            skills: skills.iter().map(|&i| esco.ids[i]).collect(),
            skill_texts: skills.iter().map(|&i| esco.texts[i].clone()).collect(),
        })
        .collect())
}

/// Minutes from Monday 00:00 UTC of a local weekly slot, split where it wraps the week.
fn utc_slots(day: u32, from: u32, to: u32, offset: i32, out: &mut Vec<(u32, u32)>) {
    const WEEK: i64 = 7 * 1440;
    let start = (i64::from(day * 1440 + from * 60) - i64::from(offset)).rem_euclid(WEEK);
    let end = start + i64::from((to - from) * 60);
    let (start, end) = (
        u32::try_from(start).unwrap_or(0),
        u32::try_from(end).unwrap_or(0),
    );
    if end <= u32::try_from(WEEK).unwrap_or(u32::MAX) {
        out.push((start, end));
    } else {
        out.push((start, 7 * 1440));
        out.push((0, end - 7 * 1440));
    }
}

fn learners(
    occupations: &[Occupation],
    vectors: Option<&Vectors>,
    n: usize,
    seed: u64,
) -> Vec<Learner> {
    let mut rng = StdRng::seed_from_u64(seed);
    let now = jiff::Timestamp::now();
    (0..n)
        .map(|_| {
            let occupation = occupations.choose(&mut rng).unwrap_or(&occupations[0]);
            let take = rng.random_range(5..=8).min(occupation.skills.len());
            let skills: Vec<(Uuid, u8)> = occupation
                .skills
                .choose_multiple(&mut rng, take)
                .map(|s| (*s, rng.random_range(1..=5u8)))
                .collect();
            let goals = goal_text(occupation);
            let zone = ZONES
                .choose_weighted(&mut rng, |z| z.1)
                .map_or("Europe/London", |z| z.0);
            let offset = trellis_cohorts::utc_offset_minutes(zone, now).unwrap_or(0);
            let mut slots = Vec::new();
            for _ in 0..rng.random_range(2..=4) {
                if rng.random_bool(0.75) {
                    utc_slots(rng.random_range(0..5), 18, 21, offset, &mut slots);
                } else {
                    utc_slots(5, 10, 13, offset, &mut slots);
                }
            }
            // As the service does: the level-weighted mean of the skills' vectors.
            let skill_vector = vectors.map(|v| {
                quantize(&trellis_embed::weighted_mean(
                    skills.iter().filter_map(|(id, level)| {
                        v.skills.get(id).map(|s| (f32::from(*level), &s[..]))
                    }),
                    trellis_embed::DIM,
                ))
            });
            let goal_vector = vectors
                .and_then(|v| v.goals.get(&goals))
                .map(|g| quantize(g));
            Learner {
                skills,
                goal_words: goal_words(&goals),
                skill_vector,
                goal_vector,
                utc_offset_minutes: offset,
                slots: trellis_cohorts::merged(slots),
                answers: BTreeMap::new(),
            }
        })
        .collect()
}

fn criteria() -> Vec<Criterion> {
    vec![
        Criterion {
            attribute: Attribute::Skills,
            mode: Mode::Diverse,
            weight: 0.4,
        },
        Criterion {
            attribute: Attribute::Goals,
            mode: Mode::Similar,
            weight: 0.3,
        },
        Criterion {
            attribute: Attribute::Timezone,
            mode: Mode::Similar,
            weight: 0.3,
        },
    ]
}

#[derive(Default)]
struct Row {
    worst: Vec<f64>,
    mean: Vec<f64>,
    spread: Vec<f64>,
    violations: usize,
    unplaced: usize,
    millis: Vec<f64>,
}

impl Row {
    fn add(&mut self, outcome: &Outcome, learners: &[Learner], settings: &Settings, ms: f64) {
        // Random assignment ignores the hard constraint: its unfit groups still count here,
        // scored as they are; its violations are reported beside.
        self.worst.push(outcome.worst());
        self.mean.push(outcome.mean());
        let mean = outcome.mean();
        let var = outcome
            .scores
            .iter()
            .map(|s| (s - mean).powi(2))
            .sum::<f64>()
            / outcome.scores.len().max(1) as f64;
        self.spread.push(var.sqrt());
        self.violations += violations(outcome, learners, settings);
        self.unplaced += outcome.unplaced.len();
        self.millis.push(ms);
    }
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    if v.is_empty() { 0.0 } else { v[v.len() / 2] }
}

fn avg(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len().max(1) as f64
}

/// Runs the evaluation and prints its tables.
///
/// # Errors
/// Reading the ESCO data.
pub fn run(args: &EvalMatcherArgs) -> anyhow::Result<()> {
    let occupations = occupations(&args.data)?;
    let vectors = if args.no_vectors {
        None
    } else {
        Some(embed(&occupations)?)
    };
    println!(
        "## Group formation: groups of 4–6, {} seeds per size, skills and goals compared {}\n",
        args.seeds,
        if args.no_vectors {
            "by ids and words"
        } else {
            "as MiniLM vectors"
        }
    );
    println!(
        "| learners | method | worst group | mean | spread (sd) | constraint violations | unplaced (total) | time (median) |"
    );
    println!("|---:|---|---:|---:|---:|---:|---:|---:|");
    for &n in &args.sizes {
        let mut methods = vec!["matcher", "greedy", "random"];
        if vectors.is_some() {
            methods.insert(1, "matcher, ids and words");
        }
        let mut rows: Vec<(&str, Row)> = methods.into_iter().map(|m| (m, Row::default())).collect();
        for seed in 0..args.seeds {
            let learners = learners(&occupations, vectors.as_ref(), n, seed * 1_000 + n as u64);
            let settings = Settings::new(4, 6, criteria(), seed);
            for (method, row) in &mut rows {
                let run = match *method {
                    "matcher" | "matcher, ids and words" => form,
                    "greedy" => greedy,
                    _ => random,
                };
                let started = Instant::now();
                let outcome = if *method == "matcher, ids and words" {
                    // Formed without the vectors, scored with them: what ignoring meaning costs.
                    let blind: Vec<Learner> = learners
                        .iter()
                        .map(|l| Learner {
                            skill_vector: None,
                            goal_vector: None,
                            ..l.clone()
                        })
                        .collect();
                    let mut outcome = in_batches(&blind, &settings, run);
                    let scorer = Scorer::new(&learners, &settings.criteria);
                    outcome.scores = outcome.groups.iter().map(|g| scorer.group(g)).collect();
                    outcome
                } else {
                    in_batches(&learners, &settings, run)
                };
                let ms = started.elapsed().as_secs_f64() * 1000.0;
                row.add(&outcome, &learners, &settings, ms);
            }
        }
        for (method, row) in &rows {
            println!(
                "| {n} | {method} | {:.3} | {:.3} | {:.3} | {} | {} | {:.1} ms |",
                avg(&row.worst),
                avg(&row.mean),
                avg(&row.spread),
                row.violations,
                row.unplaced,
                median(&row.millis),
            );
        }
    }
    tiny(&occupations, vectors.as_ref(), args.tiny);
    Ok(())
}

/// Forms `learners` in consecutive batches of at most [`BATCH_MAX`] (queue order), each seeded
/// apart, as the service forms a long queue; one outcome over all of them.
fn in_batches(
    learners: &[Learner],
    settings: &Settings,
    run: fn(&[Learner], &Settings) -> Outcome,
) -> Outcome {
    let mut all = Outcome {
        groups: Vec::new(),
        unplaced: Vec::new(),
        scores: Vec::new(),
    };
    for (b, batch) in learners.chunks(BATCH_MAX).enumerate() {
        let offset = b * BATCH_MAX;
        let settings = Settings {
            seed: settings.seed ^ ((b as u64) << 32),
            ..settings.clone()
        };
        let outcome = run(batch, &settings);
        all.groups.extend(
            outcome
                .groups
                .into_iter()
                .map(|g| g.into_iter().map(|i| i + offset).collect::<Vec<_>>()),
        );
        all.unplaced.extend(
            outcome
                .unplaced
                .into_iter()
                .map(|(i, reason)| (i + offset, reason)),
        );
        all.scores.extend(outcome.scores);
    }
    all
}

/// Every partition of `0..n` into blocks of `min..=max` whose blocks share a slot.
fn partitions(
    learners: &[Learner],
    min: usize,
    max: usize,
    current: &mut Vec<Vec<usize>>,
    next: usize,
    best: &mut Option<(f64, f64, Vec<Vec<usize>>)>,
    scorer: &Scorer<'_>,
) {
    if next == learners.len() {
        if current.iter().any(|g| g.len() < min) {
            return;
        }
        let scores: Vec<f64> = current.iter().map(|g| scorer.group(g)).collect();
        let worst = scores.iter().copied().fold(1.0, f64::min);
        let total: f64 = scores.iter().sum();
        if best
            .as_ref()
            .is_none_or(|(w, t, _)| (worst, total) > (*w, *t))
        {
            *best = Some((worst, total, current.clone()));
        }
        return;
    }
    for g in 0..current.len() {
        if current[g].len() < max {
            current[g].push(next);
            if !trellis_matcher::common(&current[g], learners).is_empty() {
                partitions(learners, min, max, current, next + 1, best, scorer);
            }
            current[g].pop();
        }
    }
    current.push(vec![next]);
    partitions(learners, min, max, current, next + 1, best, scorer);
    current.pop();
}

/// Tiny instances (9 learners, groups of 2–4, all free on one common evening so that a
/// feasible partition exists) against the exact optimum by enumeration.
fn tiny(occupations: &[Occupation], vectors: Option<&Vectors>, count: u64) {
    let criteria = criteria();
    let (mut optimal, mut gaps, mut greedy_gaps) = (0usize, Vec::new(), Vec::new());
    for seed in 0..count {
        let mut learners = learners(occupations, vectors, 9, 77_000 + seed);
        for l in &mut learners {
            l.slots.push((7 * 1440 - 60, 7 * 1440));
            l.slots = trellis_cohorts::merged(std::mem::take(&mut l.slots));
        }
        let mut best = None;
        let scorer = Scorer::new(&learners, &criteria);
        partitions(&learners, 2, 4, &mut Vec::new(), 0, &mut best, &scorer);
        let Some((opt, _, _)) = best else { continue };
        let settings = Settings::new(2, 4, criteria.clone(), seed);
        let ours = form(&learners, &settings).worst();
        let base = greedy(&learners, &settings).worst();
        if (opt - ours).abs() < 1e-9 {
            optimal += 1;
        }
        gaps.push(opt - ours);
        greedy_gaps.push(opt - base);
    }
    println!("\n## Against the exact optimum: {count} instances of 9 learners, groups of 2–4\n");
    println!("| method | optimal worst group found | mean gap to the optimum's worst group |");
    println!("|---|---:|---:|");
    println!("| matcher | {optimal} of {count} | {:.3} |", avg(&gaps));
    println!(
        "| greedy | {} of {count} | {:.3} |",
        greedy_gaps.iter().filter(|g| g.abs() < 1e-9).count(),
        avg(&greedy_gaps)
    );
}
