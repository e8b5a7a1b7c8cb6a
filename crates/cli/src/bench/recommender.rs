//! Recommender benchmarks: embedding throughput, HNSW recall and speed against exact search,
//! and ranking latency for one IDP over large catalogs.
//!
//! Catalog vectors: embedding 100,000 texts with MiniLM would take longer than the benchmark
//! itself, so resource vectors are built from the *real* embeddings of the 1,277 ESCO skills:
//! each resource mixes its primary skill's vector with up to two co-occurring skills' and a
//! little noise, then is normalised. They live where real resource embeddings live (near their
//! skills), which is what HNSW recall and the ranking's candidate sets depend on.

use std::path::Path;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use trellis_embed::{Embedder, MiniLm, normalise};
use trellis_recommender::index::{IndexParams, VectorIndex};
use trellis_recommender::rank::{GapSpec, RankOptions};
use trellis_recommender::{Catalog, ResourceInfo};
use uuid::Uuid;

/// The ESCO skills and occupations (`crate::esco_data`).
type Skills = crate::esco_data::EscoData;

fn load_skills(dir: &Path) -> anyhow::Result<Skills> {
    crate::esco_data::load(dir)
}

fn embed_all(model: &MiniLm, texts: &[String]) -> anyhow::Result<Vec<Vec<f32>>> {
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    Ok(model.embed(&refs)?)
}

/// `trellis bench embed`: texts per second, batched (the follower's path) and one at a time.
pub fn embed(dir: &Path, texts: usize) -> anyhow::Result<()> {
    let skills = load_skills(dir)?;
    let model = MiniLm::load_default()?;
    let sample: Vec<String> = skills.texts.iter().take(texts).cloned().collect();
    let _ = embed_all(&model, &sample[..sample.len().min(16)])?; // warm-up
    let started = Instant::now();
    embed_all(&model, &sample)?;
    let batched = started.elapsed();
    let mut single: Vec<Duration> = Vec::new();
    for text in sample.iter().take(100) {
        let t = Instant::now();
        model.embed(&[text.as_str()])?;
        single.push(t.elapsed());
    }
    single.sort_unstable();
    super::report(&serde_json::json!({
        "bench": "embed",
        "texts": sample.len(),
        "batched_texts_per_s": (sample.len() as f64 / batched.as_secs_f64()).round(),
        "single_p50_ms": super::quantile_ms(&single, 0.5),
        "single_p99_ms": super::quantile_ms(&single, 0.99),
        "threads": std::thread::available_parallelism().map_or(1, usize::from),
    }));
    Ok(())
}

/// Resource vectors near their skills (see the module docs).
fn synthetic_resources(
    skills: &Skills,
    vectors: &[Vec<f32>],
    n: usize,
    rng: &mut StdRng,
) -> Vec<(ResourceInfo, Vec<f32>)> {
    (0..n)
        .map(|_| {
            let occupation = skills.occupations.choose(rng).cloned().unwrap_or_default();
            let primary = *occupation.choose(rng).unwrap_or(&0);
            let mut tagged = vec![primary];
            for _ in 0..rng.random_range(0..=2) {
                if let Some(s) = occupation.choose(rng)
                    && !tagged.contains(s)
                {
                    tagged.push(*s);
                }
            }
            let mut v = vec![0f32; vectors[primary].len()];
            for (i, s) in tagged.iter().enumerate() {
                let w = if i == 0 { 1.0 } else { 0.5 };
                v.iter_mut()
                    .zip(&vectors[*s])
                    .for_each(|(x, y)| *x += w * y);
            }
            v.iter_mut()
                .for_each(|x| *x += (rng.random::<f32>() - 0.5) * 0.08);
            normalise(&mut v);
            let raters: u32 = rng.random_range(0..50);
            (
                ResourceInfo {
                    id: Uuid::from_u128(rng.random()),
                    title: format!("Course on {}", skills.labels[primary]),
                    kind: ["course", "video", "book", "article"][rng.random_range(0..4)].into(),
                    difficulty: rng.random_range(1..=5),
                    duration_minutes: rng.random_range(15..=600),
                    skills: tagged
                        .iter()
                        .map(|s| (skills.ids[*s], rng.random_range(2..=5)))
                        .collect(),
                    rating_sum: raters * rng.random_range(2..=5),
                    rating_count: raters,
                },
                v,
            )
        })
        .collect()
}

/// `trellis bench hnsw`: recall@10 and queries/s of HNSW against exact search.
pub fn hnsw(
    dir: &Path,
    vectors_n: usize,
    queries: usize,
    ef: &[usize],
    params: IndexParams,
) -> anyhow::Result<()> {
    let skills = load_skills(dir)?;
    let model = MiniLm::load_default()?;
    let skill_vectors = embed_all(&model, &skills.texts)?;
    let mut rng = StdRng::seed_from_u64(7);
    let items = synthetic_resources(&skills, &skill_vectors, vectors_n, &mut rng);
    // Queries: the gap skills' own vectors, as the ranking issues them.
    let qs: Vec<Vec<f32>> = (0..queries)
        .map(|_| skill_vectors.choose(&mut rng).cloned().unwrap_or_default())
        .collect();
    let mut index = VectorIndex::new(params, vectors_n);
    let built = Instant::now();
    index.extend(
        items
            .iter()
            .enumerate()
            .map(|(i, (_, v))| (i as u32, v.clone()))
            .collect(),
    );
    let build_s = built.elapsed().as_secs_f64();
    let t = Instant::now();
    for q in &qs {
        std::hint::black_box(index.exact(q, 10));
    }
    let exact_qps = qs.len() as f64 / t.elapsed().as_secs_f64();
    for &ef_search in ef {
        index.set_ef_search(ef_search);
        let params = index.params();
        let t = Instant::now();
        for q in &qs {
            std::hint::black_box(index.search(q, 10));
        }
        let ann_qps = qs.len() as f64 / t.elapsed().as_secs_f64();
        let recall = index.recall_at(&qs, 10);
        super::report(&serde_json::json!({
            "bench": "hnsw",
            "vectors": vectors_n,
            "m": params.max_connections,
            "ef_construction": params.ef_construction,
            "ef_search": ef_search,
            "build_s": (build_s * 10.0).round() / 10.0,
            "recall_at_10": (recall * 10_000.0).round() / 10_000.0,
            "ann_qps": ann_qps.round(),
            "exact_qps": exact_qps.round(),
            "speedup": (ann_qps / exact_qps * 10.0).round() / 10.0,
        }));
    }
    Ok(())
}

/// `trellis bench recommend`: ranking latency for one IDP (10 gaps of a real occupation).
pub fn recommend(
    dir: &Path,
    resources: usize,
    queries: usize,
    always_text: bool,
) -> anyhow::Result<()> {
    let skills = load_skills(dir)?;
    let model = MiniLm::load_default()?;
    let skill_vectors = embed_all(&model, &skills.texts)?;
    let mut rng = StdRng::seed_from_u64(11);
    let mut catalog = Catalog::new(IndexParams::default(), resources);
    for occupation in &skills.occupations {
        let basket: Vec<Uuid> = occupation.iter().map(|i| skills.ids[*i]).collect();
        catalog.add_basket(&basket);
    }
    for (i, v) in skill_vectors.iter().enumerate() {
        catalog.add_skill(skills.ids[i], skills.labels[i].clone(), Some(v.clone()));
    }
    let built = Instant::now();
    catalog.extend_resources(synthetic_resources(
        &skills,
        &skill_vectors,
        resources,
        &mut rng,
    ));
    let build_s = built.elapsed().as_secs_f64();
    let options = RankOptions {
        semantic_below: if always_text {
            usize::MAX
        } else {
            RankOptions::default().semantic_below
        },
        ..RankOptions::default()
    };
    let mut latencies = Vec::with_capacity(queries);
    for _ in 0..queries {
        let occupation = skills
            .occupations
            .choose(&mut rng)
            .cloned()
            .unwrap_or_default();
        let gaps: Vec<GapSpec> = occupation
            .iter()
            .take(10)
            .map(|s| GapSpec {
                skill_id: skills.ids[*s],
                current: rng.random_range(0..=2),
                target: rng.random_range(3..=5),
                importance: 1.0,
            })
            .collect();
        let t = Instant::now();
        let picks = catalog.rank(&gaps, &options);
        latencies.push(t.elapsed());
        std::hint::black_box(picks);
    }
    latencies.sort_unstable();
    super::report(&serde_json::json!({
        "bench": "recommend",
        "resources": resources,
        "gaps_per_idp": 10,
        "always_text": always_text,
        "queries": queries,
        "index_build_s": (build_s * 10.0).round() / 10.0,
        "p50_ms": super::quantile_ms(&latencies, 0.5),
        "p99_ms": super::quantile_ms(&latencies, 0.99),
        "max_ms": super::quantile_ms(&latencies, 1.0),
    }));
    Ok(())
}
