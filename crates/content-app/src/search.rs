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
use std::time::{Duration, Instant};

use sqlx::PgPool;
use tokio::sync::{Mutex, OnceCell};
use trellis_edge::Searchable;
use trellis_edge::search::{HEADLINE, escaped};
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
/// Texts of another kind embedded per round of its background indexing.
const INDEX_BATCH: usize = 64;
/// How often a query looks for another kind's new entries to embed.
const INDEX_CHECK: Duration = Duration::from_secs(1);

/// What a hit is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A learning atom.
    Atom,
    /// A whole content.
    Content,
    /// What another context registered (its [`Searchable::kind`]).
    Other(&'static str),
}

impl Kind {
    /// Its name in the API.
    pub fn name(self) -> &'static str {
        match self {
            Self::Atom => "atom",
            Self::Content => "content",
            Self::Other(name) => name,
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

impl OrgVectors {
    /// These vectors and `added` (of this dimension; others are skipped), up to `position`.
    fn with(&self, added: impl Iterator<Item = (Uuid, Vec<i8>)>, position: i64) -> Self {
        let mut next = self.clone();
        for (id, vector) in added {
            if next.dim == 0 {
                next.dim = vector.len();
            }
            if vector.len() == next.dim {
                next.ids.push(id);
                next.data.extend(vector);
            }
        }
        next.position = next.position.max(position);
        next
    }
}

/// Another kind's vectors in one organization, filled in the background.
#[derive(Default)]
struct Indexed {
    vectors: Arc<OrgVectors>,
    indexing: bool,
    checked: Option<Instant>,
}

type OtherVectors = Arc<Mutex<HashMap<(Uuid, &'static str), Indexed>>>;

/// The search read side.
pub struct Search {
    pool: PgPool,
    model: OnceCell<Option<Arc<MiniLm>>>,
    vectors: Mutex<HashMap<Uuid, Arc<OrgVectors>>>,
    others: Vec<Arc<dyn Searchable>>,
    other_vectors: OtherVectors,
}

impl Search {
    /// Search over `pool`'s read models and what other contexts let it find (the model loads
    /// on first use).
    pub fn new(pool: PgPool, others: &[Arc<dyn Searchable>]) -> Self {
        Self {
            pool,
            model: OnceCell::new(),
            vectors: Mutex::new(HashMap::new()),
            others: others.to_vec(),
            other_vectors: Arc::default(),
        }
    }

    /// Every kind it can find: atoms, contents, then the registered ones.
    pub fn kinds(&self) -> Vec<Kind> {
        [Kind::Atom, Kind::Content]
            .into_iter()
            .chain(self.others.iter().map(|o| Kind::Other(o.kind())))
            .collect()
    }

    /// The kind named `name`, if it can find it.
    pub fn kind(&self, name: &str) -> Option<Kind> {
        self.kinds().into_iter().find(|k| k.name() == name)
    }

    fn other(&self, kind: Kind) -> Option<&Arc<dyn Searchable>> {
        self.others.iter().find(|o| Kind::Other(o.kind()) == kind)
    }

    async fn model(&self) -> Option<Arc<MiniLm>> {
        self.model
            .get_or_init(|| async {
                match tokio::task::spawn_blocking(MiniLm::shared).await {
                    Ok(Ok(model)) => Some(model),
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
        // Contents have no vectors: a contents-only search needs no query embedding.
        let query = if kinds.iter().any(|k| *k != Kind::Content) {
            self.embedded(q).await
        } else {
            None
        };
        for &kind in kinds {
            match kind {
                Kind::Atom | Kind::Content => {
                    add(kind, &self.text_matches(kind, organization_id, q).await?);
                }
                Kind::Other(_) => {
                    let Some(other) = self.other(kind) else {
                        continue;
                    };
                    for ranking in other.rankings(organization_id, q, CANDIDATES).await? {
                        add(kind, &ranking);
                    }
                }
            }
            if let Some(query) = &query {
                let vectors = match kind {
                    Kind::Atom => Some(self.vectors(organization_id).await?),
                    Kind::Content => None,
                    Kind::Other(_) => self.other_vectors(organization_id, kind).await,
                };
                if let Some(vectors) = vectors {
                    add(kind, &nearest(&vectors, query));
                }
            }
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
        for other in &self.others {
            let kind = Kind::Other(other.kind());
            let ids: Vec<Uuid> = ranked
                .iter()
                .filter(|((k, _), _)| *k == kind)
                .map(|((_, id), _)| *id)
                .collect();
            if !ids.is_empty() {
                for (id, title, highlight) in other.shown(organization_id, &ids, q).await? {
                    shown.insert(id, (None, title, highlight));
                }
            }
        }
        if !atom_ids.is_empty() {
            let body = escaped("a.body");
            let rows: Vec<(Uuid, Uuid, String, String)> = sqlx::query_as(&format!(
                "SELECT a.atom_id, a.content_id, a.title, \
                        ts_headline('english', {body}, query, '{HEADLINE}') \
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
            let text = escaped("title || ' — ' || coalesce(metadata->>'subject', '')");
            let rows: Vec<(Uuid, String, String)> = sqlx::query_as(&format!(
                "SELECT content_id, title, \
                        ts_headline('english', {text}, query, '{HEADLINE}') \
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
            Kind::Other(_) => return Ok(Vec::new()),
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

    /// `q` embedded, quantized like the stored vectors (none without the model).
    async fn embedded(&self, q: &str) -> Option<Vec<i32>> {
        let model = self.model().await?;
        let query = q.to_owned();
        let vector = tokio::task::spawn_blocking(move || model.embed(&[query.as_str()]))
            .await
            .ok()
            .and_then(Result::ok)
            .and_then(|mut v| v.pop())?;
        Some(
            trellis_embed::quantize(&vector)
                .into_iter()
                .map(i32::from)
                .collect(),
        )
    }

    /// Another kind's vectors in the organization as far as they are embedded; starts or
    /// continues their embedding in the background (new entries at most a second after a
    /// query sees them, a 14,700-skill catalog in about a minute on two cores).
    async fn other_vectors(&self, organization_id: Uuid, kind: Kind) -> Option<Arc<OrgVectors>> {
        let other = Arc::clone(self.other(kind)?);
        let model = self.model().await?;
        let key = (organization_id, other.kind());
        let mut all = self.other_vectors.lock().await;
        let entry = all.entry(key).or_default();
        let due = entry.checked.is_none_or(|at| at.elapsed() >= INDEX_CHECK);
        if !entry.indexing && due {
            entry.indexing = true;
            entry.checked = Some(Instant::now());
            let shared = Arc::clone(&self.other_vectors);
            let from = entry.vectors.position;
            tokio::spawn(async move {
                if let Err(e) = index(&shared, &*other, &model, organization_id, from).await {
                    tracing::warn!(error = %e, kind = other.kind(), "search could not embed");
                }
                if let Some(entry) = shared.lock().await.get_mut(&key) {
                    entry.indexing = false;
                }
            });
        }
        Some(Arc::clone(&entry.vectors))
    }

    /// The organization's atom vectors, brought up to date with the read model (the lock is
    /// not held while the database answers).
    async fn vectors(&self, organization_id: Uuid) -> Result<Arc<OrgVectors>, sqlx::Error> {
        let current = self
            .vectors
            .lock()
            .await
            .get(&organization_id)
            .cloned()
            .unwrap_or_default();
        let rows: Vec<(Uuid, Vec<u8>, i64)> = sqlx::query_as(&format!(
            "SELECT atom_id, vector, position FROM {ATOMS_TABLE} \
             WHERE organization_id = $1 AND position > $2 AND vector IS NOT NULL \
             ORDER BY position, atom_id"
        ))
        .bind(organization_id)
        .bind(current.position)
        .fetch_all(&self.pool)
        .await?;
        let Some(last) = rows.last().map(|(_, _, position)| *position) else {
            return Ok(current);
        };
        let mut all = self.vectors.lock().await;
        let stored = all.entry(organization_id).or_default();
        // Another query may have brought it further meanwhile: keep the furthest.
        if stored.position == current.position {
            *stored = Arc::new(
                current.with(
                    rows.into_iter()
                        .map(|(id, v, _)| (id, trellis_embed::from_quantized_bytes(&v))),
                    last,
                ),
            );
        }
        Ok(Arc::clone(stored))
    }
}

/// Embeds another kind's entries after `position` in batches, publishing each batch.
async fn index(
    shared: &OtherVectors,
    other: &dyn Searchable,
    model: &Arc<MiniLm>,
    organization_id: Uuid,
    mut position: i64,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let key = (organization_id, other.kind());
    loop {
        let batch = other
            .texts_after(organization_id, position, INDEX_BATCH)
            .await?;
        let Some(last) = batch.last().map(|(_, _, p)| *p) else {
            return Ok(());
        };
        let model = Arc::clone(model);
        let texts: Vec<String> = batch.iter().map(|(_, t, _)| t.clone()).collect();
        let vectors = tokio::task::spawn_blocking(move || {
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            model.embed(&refs)
        })
        .await??;
        let mut all = shared.lock().await;
        let entry = all.entry(key).or_default();
        entry.vectors = Arc::new(
            entry.vectors.with(
                batch
                    .iter()
                    .zip(vectors)
                    .map(|((id, _, _), v)| (*id, trellis_embed::quantize(&v))),
                last,
            ),
        );
        position = last;
    }
}

/// The [`CANDIDATES`] entries of `vectors` nearest to `query`, best first (exact dot products
/// over quantized unit vectors; below [`MIN_COSINE`] is not a hit).
fn nearest(vectors: &OrgVectors, query: &[i32]) -> Vec<Uuid> {
    if vectors.dim != query.len() || vectors.ids.is_empty() {
        return Vec::new();
    }
    let min = (MIN_COSINE * 127.0 * 127.0) as i32;
    let mut scored: Vec<(i32, Uuid)> = vectors
        .data
        .chunks_exact(vectors.dim)
        .zip(&vectors.ids)
        .map(|(v, id)| {
            (
                v.iter()
                    .zip(query)
                    .map(|(a, b)| i32::from(*a) * b)
                    .sum::<i32>(),
                *id,
            )
        })
        .filter(|(s, _)| *s >= min)
        .collect();
    let keep = CANDIDATES.min(scored.len());
    if keep == 0 {
        return Vec::new();
    }
    scored.select_nth_unstable_by(keep - 1, |a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    scored.truncate(keep);
    scored.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    scored.into_iter().map(|(_, id)| id).collect()
}
