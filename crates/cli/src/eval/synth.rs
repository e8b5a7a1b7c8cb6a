//! The evaluation's data: real ESCO skills and occupations, a synthetic resource catalog and
//! synthetic employees. What is synthetic is said in docs/recommendation.md.

use std::collections::HashMap;
use std::path::Path;

use anyhow::Context;
use rand::rngs::StdRng;
use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};
use uuid::Uuid;

/// An ESCO skill.
pub struct Skill {
    pub id: Uuid,
    pub label: String,
    pub text: String,
}

/// A synthetic resource: what it really teaches, and what its publisher tagged.
pub struct Resource {
    pub id: Uuid,
    pub title: String,
    pub text: String,
    pub kind: &'static str,
    pub difficulty: u8,
    pub duration_minutes: u32,
    /// Skills it teaches (ground truth), primary first, with the level taught.
    pub teaches: Vec<(Uuid, u8)>,
    /// Skills it is tagged with (the primary always; each secondary with probability 1/2).
    pub tagged: Vec<(Uuid, u8)>,
    pub rating_sum: u32,
    pub rating_count: u32,
}

/// A simulated employee: an occupation, some of its skills held, the rest to learn.
pub struct Employee {
    /// Target skills (all of the occupation's) at level 3.
    pub targets: Vec<(Uuid, u8)>,
    /// Current levels of the skills held.
    pub current: HashMap<Uuid, u8>,
}

pub struct World {
    pub skills: Vec<Skill>,
    /// Occupation skill sets used for co-occurrence (training split).
    pub train: Vec<Vec<Uuid>>,
    /// Held-out occupation skill sets (employees and AUC positives come from these).
    pub test: Vec<Vec<Uuid>>,
    pub resources: Vec<Resource>,
    pub employees: Vec<Employee>,
}

fn first_sentence(text: &str) -> &str {
    text.split_inclusive(". ").next().unwrap_or(text).trim()
}

const KINDS: [&str; 5] = ["course", "article", "video", "book", "project"];

/// Loads ESCO from `dir` (skills.jsonl, occupations.jsonl) and builds the world.
pub fn build(
    dir: &Path,
    seed: u64,
    per_skill: usize,
    skill_coverage: f64,
    employees: usize,
) -> anyhow::Result<World> {
    let mut rng = StdRng::seed_from_u64(seed);
    let data = crate::esco_data::load(dir)?;
    let mut sets: Vec<Vec<Uuid>> = data
        .occupations
        .iter()
        .map(|o| {
            let mut s: Vec<Uuid> = o.iter().map(|i| data.ids[*i]).collect();
            s.sort_unstable();
            s
        })
        .collect();
    let skills: Vec<Skill> = data
        .ids
        .iter()
        .zip(data.labels)
        .zip(data.texts)
        .map(|((id, label), text)| Skill {
            id: *id,
            label,
            text,
        })
        .collect();
    sets.shuffle(&mut rng);
    let cut = sets.len() * 4 / 5;
    let test = sets.split_off(cut);
    let train = sets;

    // Which occupations each skill appears in (all of them: resources are written by people
    // who know which skills go together, not by our split).
    let mut with: HashMap<Uuid, Vec<usize>> = HashMap::new();
    let all_sets: Vec<&Vec<Uuid>> = train.iter().chain(&test).collect();
    for (i, set) in all_sets.iter().enumerate() {
        for s in *set {
            with.entry(*s).or_default().push(i);
        }
    }
    let by_id: HashMap<Uuid, &Skill> = skills.iter().map(|s| (s.id, s)).collect();
    let mut resources = Vec::new();
    for skill in &skills {
        // Real catalogs are sparse: most skills have no resource of their own.
        if !rng.random_bool(skill_coverage.clamp(0.0, 1.0)) {
            continue;
        }
        for n in 0..per_skill {
            let level: u8 = rng.random_range(2..=5);
            let mut teaches = vec![(skill.id, level)];
            if let Some(occupations) = with.get(&skill.id) {
                let set = all_sets[*occupations.choose(&mut rng).unwrap_or(&0)];
                let others: Vec<Uuid> = set.iter().copied().filter(|s| *s != skill.id).collect();
                let extra = rng.random_range(0..=2);
                for s in others.choose_multiple(&mut rng, extra) {
                    teaches.push((*s, level.saturating_sub(1).max(1)));
                }
            }
            let tagged: Vec<(Uuid, u8)> = teaches
                .iter()
                .enumerate()
                .filter(|(i, _)| *i == 0 || rng.random_bool(0.5))
                .map(|(_, t)| *t)
                .collect();
            let kind = KINDS[(skill.id.as_u128() as usize + n) % KINDS.len()];
            let text: Vec<&str> = teaches
                .iter()
                .filter_map(|(s, _)| by_id.get(s))
                .map(|s| first_sentence(&s.text))
                .collect();
            // Popularity is heavy-tailed and unrelated to fit: what "most popular" ranks by.
            let raters = (rng.random::<f64>().powi(4) * 200.0) as u32;
            let mean: f64 = rng.random_range(2.5..5.0);
            resources.push(Resource {
                id: Uuid::from_u128(rng.random()),
                title: format!("{}: {}", capitalise(kind), skill.label),
                text: text.join(" "),
                kind,
                difficulty: rng.random_range(1..=5),
                duration_minutes: rng.random_range(15..=600),
                teaches,
                tagged,
                rating_sum: (mean * f64::from(raters)).round() as u32,
                rating_count: raters,
            });
        }
    }
    let mut people = Vec::new();
    for _ in 0..employees {
        let set = test.choose(&mut rng).context("no held-out occupations")?;
        let mut held: Vec<Uuid> = set.clone();
        held.shuffle(&mut rng);
        held.truncate(set.len() / 2);
        people.push(Employee {
            targets: set.iter().map(|s| (*s, 3)).collect(),
            current: held
                .into_iter()
                .map(|s| (s, rng.random_range(1..=3)))
                .collect(),
        });
    }
    Ok(World {
        skills,
        train,
        test,
        resources,
        employees: people,
    })
}

fn capitalise(word: &str) -> String {
    let mut c = word.chars();
    c.next()
        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
        .unwrap_or_default()
}
