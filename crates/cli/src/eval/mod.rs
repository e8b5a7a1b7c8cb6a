//! `trellis eval recommender`: the offline evaluation of docs/recommendation.md.
//!
//! Ranking: simulated employees from held-out ESCO occupations; gap coverage@k and NDCG@k of
//! Trellis's ranking against most-popular and plain text match (and a tags-only ablation).
//! Similarity: AUC of skill pairs co-occurring in held-out occupations against random
//! never-co-occurring pairs, for embedding-only, co-occurrence-only and the blend.

mod synth;
mod textmatch;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use rand::seq::IndexedRandom;
use rand::{SeedableRng, rngs::StdRng};
use trellis_embed::Embedder;
use trellis_recommender::eval::{auc, ndcg_at};
use trellis_recommender::index::IndexParams;
use trellis_recommender::rank::{GapSpec, RankOptions, gaps};
use trellis_recommender::{Catalog, ResourceInfo};
use uuid::Uuid;

/// Options of `trellis eval recommender`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Folder with skills.jsonl and occupations.jsonl.
    #[arg(long, default_value = "data/esco")]
    data: PathBuf,
    /// Random seed (the split, the catalog, the employees).
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Synthetic resources per ESCO skill that has any.
    #[arg(long, default_value_t = 3)]
    per_skill: usize,
    /// Fraction of skills that have resources of their own (the rest are only taught as a
    /// side topic of other skills' resources, tagged or not).
    #[arg(long, default_value_t = 0.4)]
    skill_coverage: f64,
    /// Simulated employees.
    #[arg(long, default_value_t = 300)]
    employees: usize,
    /// List length.
    #[arg(long, default_value_t = 10)]
    k: usize,
    /// Also print how coverage and NDCG move with the similarity weights.
    #[arg(long)]
    sensitivity: bool,
}

#[derive(Default)]
struct Score {
    coverage: f64,
    ndcg: f64,
    n: usize,
}

impl Score {
    fn add(&mut self, list: &[usize], world: &synth::World, gaps: &[GapSpec], k: usize) {
        let gain = |r: usize| -> f64 {
            world.resources[r]
                .teaches
                .iter()
                .filter_map(|(s, level)| {
                    gaps.iter().find(|g| g.skill_id == *s && *level > g.current)
                })
                .map(|g| f64::from(g.size()))
                .sum()
        };
        let all: Vec<f64> = (0..world.resources.len())
            .map(gain)
            .filter(|g| *g > 0.0)
            .collect();
        let got: Vec<f64> = list.iter().take(k).map(|r| gain(*r)).collect();
        let covered: HashSet<Uuid> = list
            .iter()
            .take(k)
            .flat_map(|r| world.resources[*r].teaches.iter().map(|(s, _)| *s))
            .collect();
        let n_gaps = gaps.len().max(1) as f64;
        self.coverage += gaps
            .iter()
            .filter(|g| covered.contains(&g.skill_id))
            .count() as f64
            / n_gaps;
        self.ndcg += ndcg_at(&got, &all, k);
        self.n += 1;
    }

    fn mean(&self) -> (f64, f64) {
        let n = self.n.max(1) as f64;
        (self.coverage / n, self.ndcg / n)
    }
}

/// Runs the evaluation and prints a Markdown report.
#[allow(clippy::print_stdout)]
pub async fn run(args: EvalArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let world = synth::build(
        &args.data,
        args.seed,
        args.per_skill,
        args.skill_coverage,
        args.employees,
    )?;
    let model = trellis_embed::MiniLm::load_default().context("loading the embedding model")?;
    let skill_texts: Vec<&str> = world.skills.iter().map(|s| s.text.as_str()).collect();
    let resource_texts: Vec<String> = world
        .resources
        .iter()
        .map(|r| trellis_recommender_service::resource_text(&r.title, &r.text))
        .collect();
    let embed_started = Instant::now();
    let (skill_vectors, resource_vectors) = tokio::task::block_in_place(|| {
        let refs: Vec<&str> = resource_texts.iter().map(String::as_str).collect();
        anyhow::Ok((model.embed(&skill_texts)?, model.embed(&refs)?))
    })?;
    let embed_seconds = embed_started.elapsed().as_secs_f64();

    let mut catalog = Catalog::new(IndexParams::default(), world.resources.len());
    for basket in &world.train {
        catalog.add_basket(basket);
    }
    for (skill, vector) in world.skills.iter().zip(&skill_vectors) {
        catalog.add_skill(skill.id, skill.label.clone(), Some(vector.clone()));
    }
    let slot_of: HashMap<Uuid, usize> = world
        .resources
        .iter()
        .enumerate()
        .map(|(i, r)| (r.id, i))
        .collect();
    catalog.extend_resources(
        world
            .resources
            .iter()
            .zip(resource_vectors)
            .map(|(r, v)| {
                (
                    ResourceInfo {
                        id: r.id,
                        title: r.title.clone(),
                        kind: r.kind.to_owned(),
                        difficulty: r.difficulty,
                        duration_minutes: r.duration_minutes,
                        skills: r.tagged.clone(),
                        rating_sum: r.rating_sum,
                        rating_count: r.rating_count,
                    },
                    v,
                )
            })
            .collect(),
    );

    let names: HashMap<Uuid, &str> = world
        .skills
        .iter()
        .map(|s| (s.id, s.label.as_str()))
        .collect();
    let text = textmatch::TextIndex::new(
        world
            .resources
            .iter()
            .map(|r| format!("{} {}", r.title, r.text)),
    );
    let mut popular: Vec<usize> = (0..world.resources.len()).collect();
    popular.sort_by_key(|r| std::cmp::Reverse(world.resources[*r].rating_count));

    let full = RankOptions {
        k: args.k,
        ..RankOptions::default()
    };
    let tags_only = RankOptions {
        use_related: false,
        use_semantic: false,
        ..full
    };
    let related_only = RankOptions {
        use_semantic: false,
        ..full
    };
    let (mut s_full, mut s_tags, mut s_related, mut s_pop, mut s_text) = (
        Score::default(),
        Score::default(),
        Score::default(),
        Score::default(),
        Score::default(),
    );
    for e in &world.employees {
        let targets: Vec<(Uuid, u8, f32)> = e.targets.iter().map(|(s, l)| (*s, *l, 1.0)).collect();
        let g = gaps(&targets, &e.current);
        let ranked = |options: &RankOptions| -> Vec<usize> {
            catalog
                .rank(&g, options)
                .iter()
                .map(|p| slot_of[&p.resource_id])
                .collect()
        };
        s_full.add(&ranked(&full), &world, &g, args.k);
        s_tags.add(&ranked(&tags_only), &world, &g, args.k);
        s_related.add(&ranked(&related_only), &world, &g, args.k);
        s_pop.add(&popular, &world, &g, args.k);
        let query: Vec<&str> = g
            .iter()
            .filter_map(|g| names.get(&g.skill_id).copied())
            .collect();
        s_text.add(&text.search(&query.join(" "), args.k), &world, &g, args.k);
    }

    let mut sensitivity = Vec::new();
    if args.sensitivity {
        for related_weight in [0.0, 0.3, 0.6, 0.9] {
            for (semantic_weight, min_cosine) in [(0.0, 0.5), (0.4, 0.5), (0.8, 0.35), (0.6, 0.5)] {
                let options = RankOptions {
                    related_weight,
                    semantic_weight,
                    min_cosine,
                    ..full
                };
                let mut s = Score::default();
                for e in &world.employees {
                    let targets: Vec<(Uuid, u8, f32)> =
                        e.targets.iter().map(|(s, l)| (*s, *l, 1.0)).collect();
                    let g = gaps(&targets, &e.current);
                    let list: Vec<usize> = catalog
                        .rank(&g, &options)
                        .iter()
                        .map(|p| slot_of[&p.resource_id])
                        .collect();
                    s.add(&list, &world, &g, args.k);
                }
                sensitivity.push((related_weight, semantic_weight, min_cosine, s.mean()));
            }
        }
    }

    // Similarity AUC on held-out pairs.
    let train_pairs = pairs(&world.train);
    let test_pairs = pairs(&world.test);
    let all_pairs: HashSet<(Uuid, Uuid)> = train_pairs.union(&test_pairs).copied().collect();
    let vectors: HashMap<Uuid, &Vec<f32>> = world
        .skills
        .iter()
        .map(|s| s.id)
        .zip(&skill_vectors)
        .collect();
    let in_sets: Vec<Uuid> = {
        let mut v: Vec<Uuid> = world
            .train
            .iter()
            .chain(&world.test)
            .flatten()
            .copied()
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    };
    let mut rng = StdRng::seed_from_u64(args.seed ^ 0x5eed);
    let positives_all: Vec<(Uuid, Uuid)> = test_pairs.iter().copied().collect();
    let positives_new: Vec<(Uuid, Uuid)> = test_pairs.difference(&train_pairs).copied().collect();
    let mut negatives = Vec::new();
    while negatives.len() < positives_all.len() {
        let (a, b) = (
            *in_sets.choose(&mut rng).context("no skills")?,
            *in_sets.choose(&mut rng).context("no skills")?,
        );
        if a != b && !all_pairs.contains(&ordered(a, b)) {
            negatives.push((a, b));
        }
    }
    let cos = |(a, b): &(Uuid, Uuid)| f64::from(trellis_recommender::dot(vectors[a], vectors[b]));
    let npmi = |(a, b): &(Uuid, Uuid)| catalog.cooccurrence().npmi(*a, *b);
    let blend = |(a, b): &(Uuid, Uuid)| catalog.skill_similarity(*a, *b);
    let auc_of = |pos: &[(Uuid, Uuid)], f: &dyn Fn(&(Uuid, Uuid)) -> f64| {
        let p: Vec<f64> = pos.iter().map(f).collect();
        let n: Vec<f64> = negatives.iter().take(pos.len().max(1) * 4).map(f).collect();
        auc(&p, &n)
    };

    println!(
        "# Offline evaluation (seed {}, {} s)\n",
        args.seed,
        started.elapsed().as_secs()
    );
    println!(
        "Data: {} ESCO skills, {} occupations for co-occurrence (train), {} held out; {} synthetic resources; {} simulated employees; embeddings {:.1} s ({:.0} texts/s).\n",
        world.skills.len(),
        world.train.len(),
        world.test.len(),
        world.resources.len(),
        world.employees.len(),
        embed_seconds,
        (skill_texts.len() + world.resources.len()) as f64 / embed_seconds
    );
    println!(
        "| ranking | gap coverage@{k} | NDCG@{k} |\n|---|---|---|",
        k = args.k
    );
    for (name, s) in [
        (
            "Trellis (tags + related skills + text, greedy coverage)",
            &s_full,
        ),
        (
            "Trellis without text candidates (tags + related skills)",
            &s_related,
        ),
        ("Trellis tags only (no similarity)", &s_tags),
        (
            "Baseline: plain text match (TF-IDF on gap skill names)",
            &s_text,
        ),
        ("Baseline: most popular", &s_pop),
    ] {
        let (c, n) = s.mean();
        println!("| {name} | {c:.3} | {n:.3} |");
    }
    if !sensitivity.is_empty() {
        println!(
            "\n| related_weight | semantic_weight | min_cosine | coverage@{k} | NDCG@{k} |\n|---|---|---|---|---|",
            k = args.k
        );
        for (r, s, m, (c, n)) in &sensitivity {
            println!("| {r} | {s} | {m} | {c:.3} | {n:.3} |");
        }
    }
    println!(
        "\n| skill similarity | AUC, held-out pairs ({}) | AUC, pairs never seen together in training ({}) |\n|---|---|---|",
        positives_all.len(),
        positives_new.len()
    );
    for (name, f) in [
        (
            "Blend (embedding + NPMI)",
            &blend as &dyn Fn(&(Uuid, Uuid)) -> f64,
        ),
        ("Embedding cosine only", &cos),
        ("Co-occurrence (NPMI) only", &npmi),
    ] {
        println!(
            "| {name} | {:.3} | {:.3} |",
            auc_of(&positives_all, f),
            auc_of(&positives_new, f)
        );
    }
    Ok(())
}

fn ordered(a: Uuid, b: Uuid) -> (Uuid, Uuid) {
    if a <= b { (a, b) } else { (b, a) }
}

fn pairs(sets: &[Vec<Uuid>]) -> HashSet<(Uuid, Uuid)> {
    let mut out = HashSet::new();
    for set in sets {
        for (i, a) in set.iter().enumerate() {
            for b in &set[i + 1..] {
                out.insert(ordered(*a, *b));
            }
        }
    }
    out
}
