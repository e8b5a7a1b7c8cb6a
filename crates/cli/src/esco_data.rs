//! The ESCO data of `data/esco` as the offline evaluation and the recommender benchmarks use
//! it: each skill with the text the recommender embeds, and occupations as skill indices.
//! Lines are parsed by the same function as `trellis import esco`.

use std::collections::HashMap;
use std::path::Path;

use anyhow::Context;
use trellis_development::esco::{Occupations, parse_skill_line};
use trellis_development::skill::SkillCommand;
use uuid::Uuid;

/// Skills (parallel vectors) and occupations.
pub struct EscoData {
    /// A stable id per skill (UUIDv5 of its URI).
    pub ids: Vec<Uuid>,
    /// Preferred labels.
    pub labels: Vec<String>,
    /// What the recommender embeds for each skill.
    pub texts: Vec<String>,
    /// Occupations with at least 4 known skills, as indices into the vectors above (file
    /// order, each skill once).
    pub occupations: Vec<Vec<usize>>,
    /// Each occupation's preferred label, parallel to `occupations`.
    pub occupation_labels: Vec<String>,
}

/// Reads `dir/skills.jsonl` and `dir/occupations.jsonl`.
pub fn load(dir: &Path) -> anyhow::Result<EscoData> {
    let path = dir.join("skills.jsonl");
    let raw =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let (mut ids, mut labels, mut texts) = (Vec::new(), Vec::new(), Vec::new());
    let mut index: HashMap<String, usize> = HashMap::new();
    for (i, line) in raw
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let (
            uri,
            SkillCommand::Define {
                name, description, ..
            },
        ) = parse_skill_line(i + 1, line)?;
        index.insert(uri.clone(), ids.len());
        ids.push(Uuid::new_v5(&Uuid::NAMESPACE_URL, uri.as_bytes()));
        texts.push(trellis_recommender_service::skill_text(&name, &description));
        labels.push(name);
    }
    let path = dir.join("occupations.jsonl");
    let (occupations, occupation_labels) = Occupations::parse(
        &std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?,
    )?
    .all()
    .iter()
    .map(|o| {
        let mut seen = std::collections::HashSet::new();
        let skills = o
            .skills
            .iter()
            .filter_map(|s| index.get(&s.uri).copied())
            .filter(|i| seen.insert(*i))
            .collect::<Vec<usize>>();
        (skills, o.label.clone())
    })
    .filter(|(s, _)| s.len() >= 4)
    .unzip();
    Ok(EscoData {
        ids,
        labels,
        texts,
        occupations,
        occupation_labels,
    })
}
