//! `GET /v1/search`: hybrid ranking over an organization's atoms and contents.
//!
//! Two rankings, fused by reciprocal rank (each list contributes `1 / (60 + rank)`):
//! - **Full text**: PostgreSQL `websearch_to_tsquery('english', q)` against the stored
//!   `tsvector` columns (title weighted over body, GIN-indexed), ordered by `ts_rank_cd`.
//! - **Meaning**: the query embedded with MiniLM, against every atom's vector (carried by the
//!   atomizer's answer, 384 signed bytes), exact dot products over an in-memory copy per
//!   organization that follows the read model by position (new atoms are appended; archived
//!   or replaced atoms are dropped when hits are read back from the tables, so the copy never
//!   shows what the tables no longer hold).
//!
//! Hits are read back from the tables scoped by organization and excluding archived
//! contents, with `ts_headline` marking matched terms in `<mark>…</mark>` over HTML-escaped
//! text. Without the model (not installed), search is full text alone.

use std::collections::HashMap;
use std::sync::Arc;

use sqlx::PgPool;
use tokio::sync::{Mutex, OnceCell};
use trellis_embed::{Embedder, MiniLm};
use uuid::Uuid;

use crate::library::{ATOMS_TABLE, CONTENTS_TABLE};

/// Candidates each ranking contributes.
const CANDIDATES: usize = 50;
/// The reciprocal-rank constant (Cormack et al.'s 60).
const RRF_K: f64 = 60.0;
/// Most full-text matches ranked per query: ranking is linear in the matches, and a broad
/// query over 100,000 atoms matches half of them (400 ms to rank all). A query that broad
/// ranks an arbitrary 2,000 of its matches; the meaning ranking, fused with it, still sees
/// every atom.
const RANKED_MATCHES: usize = 2_000;
/// Vector hits below this cosine are noise, not meaning.
const MIN_COSINE: f32 = 0.2;

/// What a hit is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A learning atom.
    Atom,
    /// A whole content.
    Content,
}

impl Kind {
    /// Its name in the API.
    pub fn name(self) -> &'static str {
        match self {
            Self::Atom => "atom",
            Self::Content => "content",
        }
    }

    /// Parses a name.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "atom" => Some(Self::Atom),
            "content" => Some(Self::Content),
            _ => None,
        }
    }
}

/// One hit.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    /// Atom or content.
    pub kind: Kind,
    /// Its id.
    pub id: Uuid,
    /// An atom's content.
    pub content_id: Option<Uuid>,
    /// Title.
    pub title: String,
    /// Fused score.
    pub score: f64,
    /// The passage with `<mark>` around matched terms.
    pub highlight: String,
}

#[derive(Default, Clone)]
struct OrgVectors {
    position: i64,
    ids: Vec<Uuid>,
    data: Vec<i8>,
    dim: usize,
}

/// The search read side.
pub struct Search {
    pool: PgPool,
    model: OnceCell<Option<Arc<MiniLm>>>,
    vectors: Mutex<HashMap<Uuid, Arc<OrgVectors>>>,
}

const HEADLINE: &str = "StartSel=<mark>, StopSel=</mark>, MaxWords=35, MinWords=12, \
                        MaxFragments=2, FragmentDelimiter=\" … \"";

impl Search {
    /// Search over `pool`'s read models (the model loads on first use).
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            model: OnceCell::new(),
            vectors: Mutex::new(HashMap::new()),
        }
    }

    async fn model(&self) -> Option<Arc<MiniLm>> {
        self.model
            .get_or_init(|| async {
                let dir = trellis_embed::model_dir_from_env();
                match tokio::task::spawn_blocking(move || MiniLm::load(&dir)).await {
                    Ok(Ok(model)) => Some(Arc::new(model)),
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, "search runs on full text alone: no embedding model");
                        None
                    }
                    Err(_) => None,
                }
            })
            .await
            .clone()
    }

    /// The best `limit` hits of `kinds` for `q` in `organization_id`.
    ///
    /// # Errors
    /// Database failures.
    pub async fn search(
        &self,
        organization_id: Uuid,
        q: &str,
        kinds: &[Kind],
        limit: usize,
    ) -> Result<Vec<Hit>, sqlx::Error> {
        let mut fused: HashMap<(Kind, Uuid), f64> = HashMap::new();
        let mut add = |kind: Kind, ids: &[Uuid]| {
            for (rank, id) in ids.iter().enumerate() {
                *fused.entry((kind, *id)).or_insert(0.0) += 1.0 / (RRF_K + rank as f64 + 1.0);
            }
        };
        if kinds.contains(&Kind::Atom) {
            add(
                Kind::Atom,
                &self.text_matches(Kind::Atom, organization_id, q).await?,
            );
            add(Kind::Atom, &self.nearest_atoms(organization_id, q).await?);
        }
        if kinds.contains(&Kind::Content) {
            add(
                Kind::Content,
                &self.text_matches(Kind::Content, organization_id, q).await?,
            );
        }
        let mut ranked: Vec<((Kind, Uuid), f64)> = fused.into_iter().collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.1.cmp(&b.0.1)));
        // Read back more than asked: a vector hit may be of an atom since replaced or archived.
        ranked.truncate(limit * 2 + 10);
        let atom_ids: Vec<Uuid> = ranked
            .iter()
            .filter(|((k, _), _)| *k == Kind::Atom)
            .map(|((_, id), _)| *id)
            .collect();
        let content_ids: Vec<Uuid> = ranked
            .iter()
            .filter(|((k, _), _)| *k == Kind::Content)
            .map(|((_, id), _)| *id)
            .collect();
        let mut shown: HashMap<Uuid, (Option<Uuid>, String, String)> = HashMap::new();
        if !atom_ids.is_empty() {
            let rows: Vec<(Uuid, Uuid, String, String)> = sqlx::query_as(&format!(
                "SELECT a.atom_id, a.content_id, a.title, \
                        ts_headline('english', replace(replace(replace(a.body, '&', '&amp;'), \
                            '<', '&lt;'), '>', '&gt;'), query, '{HEADLINE}') \
                 FROM {ATOMS_TABLE} a, websearch_to_tsquery('english', $3) query \
                 WHERE a.organization_id = $1 AND a.atom_id = ANY($2) AND NOT a.archived"
            ))
            .bind(organization_id)
            .bind(&atom_ids)
            .bind(q)
            .fetch_all(&self.pool)
            .await?;
            for (id, content, title, highlight) in rows {
                shown.insert(id, (Some(content), title, highlight));
            }
        }
        if !content_ids.is_empty() {
            let rows: Vec<(Uuid, String, String)> = sqlx::query_as(&format!(
                "SELECT content_id, title, \
                        ts_headline('english', replace(replace(replace(title || ' — ' || \
                            coalesce(metadata->>'subject', ''), '&', '&amp;'), '<', '&lt;'), \
                            '>', '&gt;'), query, '{HEADLINE}') \
                 FROM {CONTENTS_TABLE}, websearch_to_tsquery('english', $3) query \
                 WHERE organization_id = $1 AND content_id = ANY($2) AND NOT archived"
            ))
            .bind(organization_id)
            .bind(&content_ids)
            .bind(q)
            .fetch_all(&self.pool)
            .await?;
            for (id, title, highlight) in rows {
                shown.insert(id, (None, title, highlight));
            }
        }
        Ok(ranked
            .into_iter()
            .filter_map(|((kind, id), score)| {
                let (content_id, title, highlight) = shown.remove(&id)?;
                Some(Hit {
                    kind,
                    id,
                    content_id,
                    title,
                    score: (score * 10_000.0).round() / 10_000.0,
                    highlight,
                })
            })
            .take(limit)
            .collect())
    }

    /// The organization's atoms or contents matching `q` in full text, best first (at most
    /// [`RANKED_MATCHES`] matches ranked, archived ones never).
    async fn text_matches(
        &self,
        kind: Kind,
        organization_id: Uuid,
        q: &str,
    ) -> Result<Vec<Uuid>, sqlx::Error> {
        let (table, id) = match kind {
            Kind::Atom => (ATOMS_TABLE, "atom_id"),
            Kind::Content => (CONTENTS_TABLE, "content_id"),
        };
        sqlx::query_scalar(&format!(
            "SELECT {id} FROM ( \
                 SELECT {id}, search FROM {table}, websearch_to_tsquery('english', $2) query \
                 WHERE organization_id = $1 AND NOT archived AND search @@ query \
                 LIMIT $4) matches, websearch_to_tsquery('english', $2) query \
             ORDER BY ts_rank_cd(search, query) DESC, {id} LIMIT $3"
        ))
        .bind(organization_id)
        .bind(q)
        .bind(CANDIDATES as i64)
        .bind(RANKED_MATCHES as i64)
        .fetch_all(&self.pool)
        .await
    }

    /// The organization's atoms nearest to `q` in meaning, best first.
    async fn nearest_atoms(
        &self,
        organization_id: Uuid,
        q: &str,
    ) -> Result<Vec<Uuid>, sqlx::Error> {
        let Some(model) = self.model().await else {
            return Ok(Vec::new());
        };
        let query = q.to_owned();
        let embedded = tokio::task::spawn_blocking(move || model.embed(&[query.as_str()]))
            .await
            .ok()
            .and_then(Result::ok)
            .and_then(|mut v| v.pop());
        let Some(query) = embedded else {
            return Ok(Vec::new());
        };
        let vectors = self.vectors(organization_id).await?;
        if vectors.dim != query.len() || vectors.ids.is_empty() {
            return Ok(Vec::new());
        }
        let query: Vec<i32> = query.iter().map(|x| (x * 127.0).round() as i32).collect();
        let min = (MIN_COSINE * 127.0 * 127.0) as i32;
        let mut scored: Vec<(i32, Uuid)> = vectors
            .data
            .chunks_exact(vectors.dim)
            .zip(&vectors.ids)
            .map(|(v, id)| {
                (
                    v.iter()
                        .zip(&query)
                        .map(|(a, b)| i32::from(*a) * b)
                        .sum::<i32>(),
                    *id,
                )
            })
            .filter(|(s, _)| *s >= min)
            .collect();
        let keep = CANDIDATES.min(scored.len());
        if keep == 0 {
            return Ok(Vec::new());
        }
        scored.select_nth_unstable_by(keep - 1, |a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        scored.truncate(keep);
        scored.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        Ok(scored.into_iter().map(|(_, id)| id).collect())
    }

    /// The organization's atom vectors, brought up to date with the read model.
    async fn vectors(&self, organization_id: Uuid) -> Result<Arc<OrgVectors>, sqlx::Error> {
        let mut all = self.vectors.lock().await;
        let current = all.get(&organization_id).cloned().unwrap_or_default();
        let rows: Vec<(Uuid, Vec<u8>, i64)> = sqlx::query_as(&format!(
            "SELECT atom_id, vector, position FROM {ATOMS_TABLE} \
             WHERE organization_id = $1 AND position > $2 AND vector IS NOT NULL \
             ORDER BY position, atom_id"
        ))
        .bind(organization_id)
        .bind(current.position)
        .fetch_all(&self.pool)
        .await?;
        if rows.is_empty() {
            return Ok(current);
        }
        let mut next = (*current).clone();
        for (id, vector, position) in rows {
            if next.dim == 0 {
                next.dim = vector.len();
            }
            if vector.len() == next.dim {
                next.ids.push(id);
                next.data.extend(vector.into_iter().map(|b| b as i8));
            }
            next.position = next.position.max(position);
        }
        let next = Arc::new(next);
        all.insert(organization_id, Arc::clone(&next));
        Ok(next)
    }
}
