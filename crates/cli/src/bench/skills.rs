//! `trellis bench skills`: `GET /v1/skills?q=` over an organization with a large catalog
//! (issue 12: 14,700 skills, under 20 ms at p95 for any query).

use std::time::Instant;

use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use uuid::Uuid;

/// Queries a new user types: single letters and common fragments that match most of the
/// catalog, whole words, and misses.
const BROAD: &[&str] = &[
    "a",
    "e",
    "s",
    "in",
    "an",
    "ing",
    "man",
    "data",
    "management",
    "software",
    "skills",
    "systems",
    "use",
    "zzqx",
    "python",
    "teach",
    "%",
    "_",
];

/// Fills one organization of the catalog read model with `skills` skills (once): the ESCO
/// labels with their alternative labels as aliases, then every alternative label as a skill
/// of its own, then labels qualified by an occupation, until there are enough. Then times
/// `queries` searches through the same function as `GET /v1/skills?q=` (limit 20): the broad
/// queries above and random substrings of real names.
pub async fn run(
    url: &str,
    data: &std::path::Path,
    skills: usize,
    queries: usize,
) -> anyhow::Result<()> {
    let store = super::store(url, 4).await?;
    let pool = store.pool().clone();
    trellis_runtime::projection::ensure(
        &pool,
        &*store,
        &trellis_development_app::catalog::DevelopmentCatalog,
    )
    .await?;
    let organization = Uuid::from_u128(0x005c_1115_0000_4000_8000_0000_0000_0001);
    let names = catalog(data, skills)?;
    let have = trellis_development_app::catalog::count_skills(&pool, organization).await?;
    if have < skills {
        sqlx::query("DELETE FROM rm_development_catalog.skills WHERE organization_id = $1")
            .bind(organization)
            .execute(&pool)
            .await?;
        for (chunk, batch) in names.chunks(2_000).enumerate() {
            let ids: Vec<Uuid> = (0..batch.len()).map(|_| Uuid::new_v4()).collect();
            let (labels, aliases): (Vec<String>, Vec<String>) = batch.iter().cloned().unzip();
            let positions: Vec<i64> = (0..batch.len())
                .map(|i| -1_000_000_000 + (chunk * 2_000 + i) as i64)
                .collect();
            sqlx::query(
                "INSERT INTO rm_development_catalog.skills (skill_id, organization_id, name, \
                     description, aliases, esco_uri, aliases_text, position, version, created_at) \
                 SELECT s, $2, n, '', coalesce(string_to_array(NULLIF(a, ''), E'\\n'), '{}'), NULL, a, p, 1, now() \
                 FROM unnest($1::uuid[], $3::text[], $4::text[], $5::bigint[]) AS t(s, n, a, p)",
            )
            .bind(&ids)
            .bind(organization)
            .bind(&labels)
            .bind(&aliases)
            .bind(&positions)
            .execute(&pool)
            .await?;
        }
        sqlx::query("ANALYZE rm_development_catalog.skills")
            .execute(&pool)
            .await?;
    }
    let mut rng = StdRng::seed_from_u64(11);
    let query = |rng: &mut StdRng| -> String {
        if rng.random_bool(0.5) {
            return (*BROAD.choose(rng).unwrap_or(&"a")).to_owned();
        }
        let (name, _) = names.choose(rng).cloned().unwrap_or_default();
        let chars: Vec<char> = name.chars().collect();
        let len = rng.random_range(3..=8).min(chars.len());
        let start = rng.random_range(0..=chars.len() - len);
        chars[start..start + len].iter().collect()
    };
    for _ in 0..20 {
        trellis_development_app::catalog::search_skills(&pool, organization, &query(&mut rng), 20)
            .await?;
    }
    let mut times = Vec::with_capacity(queries);
    let mut worst = (std::time::Duration::ZERO, String::new());
    let mut hits = 0;
    for _ in 0..queries {
        let q = query(&mut rng);
        let started = Instant::now();
        hits += trellis_development_app::catalog::search_skills(&pool, organization, &q, 20)
            .await?
            .len();
        let took = started.elapsed();
        if took > worst.0 {
            worst = (took, q);
        }
        times.push(took);
    }
    times.sort();
    super::report(&serde_json::json!({
        "bench": "skills",
        "skills": skills,
        "queries": queries,
        "mean_hits": hits as f64 / queries.max(1) as f64,
        "p50_ms": super::quantile_ms(&times, 0.5),
        "p95_ms": super::quantile_ms(&times, 0.95),
        "p99_ms": super::quantile_ms(&times, 0.99),
        "max_ms": (worst.0.as_secs_f64() * 1e5).round() / 100.0,
        "slowest_query": worst.1,
    }));
    Ok(())
}

/// `count` distinct skill names with their aliases (joined by new lines).
fn catalog(data: &std::path::Path, count: usize) -> anyhow::Result<Vec<(String, String)>> {
    use anyhow::Context;
    use trellis_development::skill::SkillCommand;
    let read = |file: &str| {
        std::fs::read_to_string(data.join(file))
            .with_context(|| format!("reading {}", data.join(file).display()))
    };
    // Parsed as `trellis import esco` parses them (trimmed, deduplicated, capped aliases).
    let mut skills: Vec<(String, Vec<String>)> = Vec::new();
    for (i, line) in read("skills.jsonl")?.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let (_, SkillCommand::Define { name, aliases, .. }) =
            trellis_development::esco::parse_skill_line(i + 1, line)?;
        skills.push((name, aliases));
    }
    let occupations = trellis_development::esco::Occupations::parse(&read("occupations.jsonl")?)?;
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::with_capacity(count);
    let mut push = |name: String, aliases: String, out: &mut Vec<(String, String)>| {
        if out.len() < count && !name.is_empty() && seen.insert(name.to_lowercase()) {
            out.push((name, aliases));
        }
    };
    for (name, aliases) in &skills {
        push(name.clone(), aliases.join("\n"), &mut out);
    }
    for alias in skills.iter().flat_map(|(_, aliases)| aliases) {
        push(alias.clone(), String::new(), &mut out);
    }
    'outer: for occupation in occupations.all() {
        for (name, _) in &skills {
            if out.len() >= count {
                break 'outer;
            }
            push(
                format!("{name} for {}", occupation.label),
                String::new(),
                &mut out,
            );
        }
    }
    Ok(out)
}
