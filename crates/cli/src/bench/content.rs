//! `trellis bench atomize` and `trellis bench search`: the content context's targets
//! (seed 002): a 100-page PDF atomized in under 30 s, 1,000 ten-page documents an hour, and
//! search p95 under 100 ms over 100,000 atoms (docs/benchmarks.md).

use std::path::Path;
use std::time::{Duration, Instant};

use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng, rngs::StdRng};
use trellis_content_app::search::{Kind, Search};
use trellis_extract::sniff;
use uuid::Uuid;

/// Extracts (in the worker process, as the service does) and atomizes `file` `repeat` times,
/// one after the other; reports each run and the median.
pub async fn atomize(file: &Path, repeat: usize) -> anyhow::Result<()> {
    let bytes = bytes::Bytes::from(std::fs::read(file)?);
    let name = file.file_name().map(|n| n.to_string_lossy().into_owned());
    let media_type = sniff(&bytes, name.as_deref(), None)?;
    let settings = trellis_content_app::ContentSettings::from_env()?;
    let model = tokio::task::spawn_blocking(|| {
        trellis_embed::MiniLm::load(&trellis_embed::model_dir_from_env())
    })
    .await??;
    let mut totals = Vec::new();
    for run in 0..repeat {
        let started = Instant::now();
        let document =
            trellis_content_app::extraction::extract(&settings.worker, bytes.clone(), media_type)
                .await
                .map_err(|e| anyhow::anyhow!("extraction failed: {e}"))?;
        let extracted = started.elapsed();
        let input = trellis_atomizer::Input {
            content_id: Uuid::now_v7(),
            content_version: 1,
            document: &document,
            title: name.as_deref().unwrap_or("bench"),
        };
        let atoms = tokio::task::block_in_place(|| trellis_atomizer::atomize(&input, &model))?;
        let total = started.elapsed();
        totals.push(total);
        super::report(&serde_json::json!({
            "bench": "atomize",
            "file": name,
            "bytes": bytes.len(),
            "run": run + 1,
            "words": document.words(),
            "atoms": atoms.len(),
            "extract_seconds": round3(extracted),
            "atomize_seconds": round3(total - extracted),
            "total_seconds": round3(total),
        }));
    }
    totals.sort();
    let median = totals[totals.len() / 2];
    super::report(&serde_json::json!({
        "bench": "atomize",
        "file": name,
        "runs": repeat,
        "median_seconds": round3(median),
        "documents_per_hour_one_worker": (3600.0 / median.as_secs_f64()).round(),
    }));
    Ok(())
}

fn round3(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0).round() / 1000.0
}

/// Fills one organization of the `content_library` read model with `atoms` atoms (once),
/// then times `queries` searches through the same code as `GET /v1/search` (query embedding,
/// full text, vector scan, fusion, highlights).
pub async fn search(url: &str, atoms: usize, queries: usize) -> anyhow::Result<()> {
    let store = super::store(url, 8).await?;
    let pool = store.pool().clone();
    trellis_runtime::projection::ensure(&pool, &*store, &trellis_content_app::ContentLibrary)
        .await?;
    let organization = Uuid::from_u128(0x005e_a2c4_0000_4000_8000_0000_0000_0001);
    let have: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM rm_content_library.atoms WHERE organization_id = $1",
    )
    .bind(organization)
    .fetch_one(&pool)
    .await?;
    let text = include_str!("../../../../tests/fixtures/content/good/guide.txt");
    let sentences: Vec<&str> = text
        .split_inclusive(". ")
        .map(str::trim)
        .filter(|s| s.split_whitespace().count() > 4)
        .collect();
    let words: Vec<&str> = text
        .split(|c: char| !c.is_alphabetic())
        .filter(|w| w.len() > 4)
        .collect();
    let mut rng = StdRng::seed_from_u64(7);
    let missing = atoms.saturating_sub(usize::try_from(have).unwrap_or(0));
    if missing > 0 {
        let started = Instant::now();
        seed(
            &pool,
            organization,
            usize::try_from(have).unwrap_or(0),
            missing,
            &sentences,
            &mut rng,
        )
        .await?;
        tracing::info!(
            atoms = missing,
            seconds = started.elapsed().as_secs_f64(),
            "seeded atoms"
        );
        // Fresh planner statistics, as autovacuum would gather them after such a load: stale
        // ones make PostgreSQL pick a bad plan for broad queries (p95 × 5).
        sqlx::query("ANALYZE rm_content_library.atoms")
            .execute(&pool)
            .await?;
        sqlx::query("ANALYZE rm_content_library.contents")
            .execute(&pool)
            .await?;
    }
    let search = Search::new(pool.clone(), &[]);
    let query = |rng: &mut StdRng| -> String {
        let n = rng.random_range(1..=3);
        (0..n)
            .map(|_| *words.choose(rng).unwrap_or(&"python"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    // Warm up: the model loads, the organization's vectors come into memory.
    for _ in 0..5 {
        search
            .search(
                organization,
                &query(&mut rng),
                &[Kind::Atom, Kind::Content],
                10,
            )
            .await?;
    }
    let mut times = Vec::with_capacity(queries);
    let mut hits = 0;
    for _ in 0..queries {
        let q = query(&mut rng);
        let started = Instant::now();
        hits += search
            .search(organization, &q, &[Kind::Atom, Kind::Content], 10)
            .await?
            .len();
        times.push(started.elapsed());
    }
    times.sort();
    super::report(&serde_json::json!({
        "bench": "search",
        "atoms": atoms,
        "queries": queries,
        "mean_hits": hits as f64 / queries.max(1) as f64,
        "p50_ms": super::quantile_ms(&times, 0.5),
        "p95_ms": super::quantile_ms(&times, 0.95),
        "p99_ms": super::quantile_ms(&times, 0.99),
    }));
    Ok(())
}

/// Inserts `missing` atoms (about 120 words each, real sentences shuffled, a random unit
/// vector) in contents of 100 atoms, in batches.
async fn seed(
    pool: &sqlx::PgPool,
    organization: Uuid,
    from: usize,
    missing: usize,
    sentences: &[&str],
    rng: &mut StdRng,
) -> anyhow::Result<()> {
    const BATCH: usize = 2_000;
    let mut done = 0;
    while done < missing {
        let n = BATCH.min(missing - done);
        let mut ids = Vec::with_capacity(n);
        let mut contents = Vec::with_capacity(n);
        let mut sequences = Vec::with_capacity(n);
        let mut bodies = Vec::with_capacity(n);
        let mut vectors: Vec<Vec<u8>> = Vec::with_capacity(n);
        for i in 0..n {
            let index = from + done + i;
            ids.push(Uuid::new_v4());
            contents.push(Uuid::from_u128(0xc0_0000_0000 + (index / 100) as u128));
            sequences.push(i32::try_from(index % 100 + 1).unwrap_or(1));
            let body: Vec<&str> = (0..8)
                .map(|_| *sentences.choose(rng).unwrap_or(&""))
                .collect();
            bodies.push(format!("{} (atom {index})", body.join(" ")));
            let mut v: Vec<f32> = (0..384).map(|_| rng.random_range(-1.0..1.0)).collect();
            trellis_embed::normalise(&mut v);
            vectors.push(
                trellis_embed::quantize(&v)
                    .into_iter()
                    .map(|b| b as u8)
                    .collect(),
            );
        }
        let mut tx = pool.begin().await?;
        sqlx::query(
            "INSERT INTO rm_content_library.contents (content_id, organization_id, title, status, \
                 content_version, media_type, size_bytes, sha256, object_key, metadata, \
                 uploaded_by, atoms_count, position, version, created_at, updated_at) \
             SELECT DISTINCT c, $2, 'Bench content ' || c::text, 'completed', 1, 'markdown', 1, \
                 repeat('0', 64), 'sha256/' || repeat('0', 64), '{}'::jsonb, $2, 100, 0, 2, now(), now() \
             FROM unnest($1::uuid[]) AS c ON CONFLICT DO NOTHING",
        )
        .bind(&contents)
        .bind(organization)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO rm_content_library.atoms (atom_id, content_id, organization_id, \
                 content_version, sequence, title, body, objective, concepts, concept_phrases, \
                 difficulty, estimated_minutes, prerequisites, quality, vector, position) \
             SELECT a, c, $3, 1, s, 'Atom ' || s, b, 'Describe it', '[]'::jsonb, '{}'::text[], 2, 1, '{}'::uuid[], \
                 '{\"score\": 0.5}'::jsonb, v, 1 \
             FROM unnest($1::uuid[], $2::uuid[], $4::int[], $5::text[], $6::bytea[]) \
                 AS t(a, c, s, b, v)",
        )
        .bind(&ids)
        .bind(&contents)
        .bind(organization)
        .bind(&sequences)
        .bind(&bodies)
        .bind(&vectors)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        done += n;
    }
    Ok(())
}
