//! Skill and goal vectors of queued learners, for the matcher's scoring (docs/cohorts.md,
//! "Scoring with vectors").
//!
//! A ticket's vectors are computed once, when the matcher first sees its join: the goals text
//! is embedded with MiniLM, and the skills become the level-weighted mean of their catalog
//! texts' embeddings ([`trellis_development_app::catalog::skill_text`], the text the
//! recommender and search embed; each skill's vector is kept in memory by id). They are kept
//! in `cohort_ticket_vectors`, so a batch of 1,200 reads them instead of embedding 1,200 texts
//! (~13 s on this machine at 94 texts/s); a ticket the tick reaches before its join was
//! handled is embedded when its batch forms. Rows go when the ticket is placed or leaves:
//! they derive from personal data (the goals text).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use sqlx::PgPool;
use trellis_cohorts::LearnerProfile;
use trellis_embed::{EmbedError, Embedder};
use uuid::Uuid;

/// The table of ticket vectors (the matcher's own state, migration 0010).
pub const VECTORS_TABLE: &str = "cohort_ticket_vectors";

/// Skill vectors kept in memory before the cache starts again (~1.5 KB each).
const SKILL_CACHE_MAX: usize = 50_000;

/// Texts per call of the model.
const EMBED_CHUNK: usize = 64;

/// A ticket's vectors, quantized unit vectors ([`trellis_matcher::quantize`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketVectors {
    /// The level-weighted mean of the skills' vectors (zeros without skills).
    pub skills: Vec<i8>,
    /// The goals text's vector.
    pub goals: Vec<i8>,
}

/// Errors computing or storing vectors.
#[derive(Debug, thiserror::Error)]
pub enum VectorError {
    /// The database failed.
    #[error("ticket vectors: {0}")]
    Database(#[from] sqlx::Error),
    /// The model failed.
    #[error("embedding a learner profile: {0}")]
    Embed(#[from] EmbedError),
    /// The blocking task running the model panicked or was cancelled.
    #[error("embedding task: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Computes, keeps and reads the vectors of queued tickets.
pub struct ProfileVectors {
    embedder: Arc<dyn Embedder>,
    pool: PgPool,
    skills: Mutex<HashMap<Uuid, Arc<[f32]>>>,
}

impl ProfileVectors {
    /// Vectors embedded by `embedder`, kept in `pool`'s `cohort_ticket_vectors`; skill texts
    /// from the development catalog in the same database.
    pub fn new(embedder: Arc<dyn Embedder>, pool: PgPool) -> Self {
        Self {
            embedder,
            pool,
            skills: Mutex::new(HashMap::new()),
        }
    }

    /// The vectors of `tickets` (of one pool of `organization_id`): read where kept,
    /// computed and kept for the others.
    ///
    /// # Errors
    /// Database or model failures.
    pub async fn ensure(
        &self,
        organization_id: Uuid,
        pool_id: Uuid,
        tickets: &[(Uuid, &LearnerProfile)],
    ) -> Result<HashMap<Uuid, TicketVectors>, VectorError> {
        let ids: Vec<Uuid> = tickets.iter().map(|(id, _)| *id).collect();
        let rows: Vec<(Uuid, Vec<u8>, Vec<u8>)> = sqlx::query_as(&format!(
            "SELECT ticket_id, skills, goals FROM {VECTORS_TABLE} WHERE ticket_id = ANY($1)"
        ))
        .bind(&ids)
        .fetch_all(&self.pool)
        .await?;
        let mut out: HashMap<Uuid, TicketVectors> = rows
            .into_iter()
            .map(|(id, skills, goals)| {
                (
                    id,
                    TicketVectors {
                        skills: from_bytes(&skills),
                        goals: from_bytes(&goals),
                    },
                )
            })
            .collect();
        let missing: Vec<(Uuid, &LearnerProfile)> = tickets
            .iter()
            .filter(|(id, _)| !out.contains_key(id))
            .map(|(id, p)| (*id, *p))
            .collect();
        if missing.is_empty() {
            return Ok(out);
        }
        let skills = self.skill_vectors(organization_id, &missing).await?;
        let goals = self
            .embed(missing.iter().map(|(_, p)| p.goals.clone()).collect())
            .await?;
        let mut computed = Vec::with_capacity(missing.len());
        for ((ticket_id, profile), goal) in missing.iter().zip(goals) {
            let mut mean = vec![0.0f32; self.embedder.dim()];
            for s in &profile.skills {
                if let Some(v) = skills.get(&s.skill_id) {
                    for (m, x) in mean.iter_mut().zip(v.iter()) {
                        *m += f32::from(s.level) * x;
                    }
                }
            }
            trellis_embed::normalise(&mut mean);
            computed.push((
                *ticket_id,
                TicketVectors {
                    skills: trellis_matcher::quantize(&mean),
                    goals: trellis_matcher::quantize(&goal),
                },
            ));
        }
        let (ticket_ids, skill_bytes, goal_bytes): (Vec<Uuid>, Vec<Vec<u8>>, Vec<Vec<u8>>) =
            computed
                .iter()
                .map(|(id, v)| (*id, to_bytes(&v.skills), to_bytes(&v.goals)))
                .collect();
        sqlx::query(&format!(
            "INSERT INTO {VECTORS_TABLE} (ticket_id, pool_id, organization_id, skills, goals) \
             SELECT t, $2, $3, s, g FROM unnest($1::uuid[], $4::bytea[], $5::bytea[]) AS u(t, s, g) \
             ON CONFLICT (ticket_id) DO NOTHING"
        ))
        .bind(&ticket_ids)
        .bind(pool_id)
        .bind(organization_id)
        .bind(&skill_bytes)
        .bind(&goal_bytes)
        .execute(&self.pool)
        .await?;
        out.extend(computed);
        Ok(out)
    }

    /// Drops the vectors of tickets placed in a group or out of the queue.
    ///
    /// # Errors
    /// Database failures.
    pub async fn forget(&self, tickets: &[Uuid]) -> Result<(), sqlx::Error> {
        sqlx::query(&format!(
            "DELETE FROM {VECTORS_TABLE} WHERE ticket_id = ANY($1)"
        ))
        .bind(tickets)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The vectors of the skills `tickets` list, from the cache or embedded now.
    async fn skill_vectors(
        &self,
        organization_id: Uuid,
        tickets: &[(Uuid, &LearnerProfile)],
    ) -> Result<HashMap<Uuid, Arc<[f32]>>, VectorError> {
        let wanted: HashSet<Uuid> = tickets
            .iter()
            .flat_map(|(_, p)| p.skills.iter().map(|s| s.skill_id))
            .collect();
        let mut found = HashMap::new();
        let mut unknown = Vec::new();
        {
            let cache = self.skills.lock().unwrap_or_else(|e| e.into_inner());
            for id in wanted {
                match cache.get(&id) {
                    Some(v) => {
                        found.insert(id, Arc::clone(v));
                    }
                    None => unknown.push(id),
                }
            }
        }
        if unknown.is_empty() {
            return Ok(found);
        }
        // A skill removed from the catalog since the join has no text: it counts for nothing.
        let texts =
            trellis_development_app::catalog::skill_texts(&self.pool, organization_id, &unknown)
                .await?;
        let vectors = self
            .embed(texts.iter().map(|(_, t)| t.clone()).collect())
            .await?;
        let mut cache = self.skills.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() + texts.len() > SKILL_CACHE_MAX {
            cache.clear();
        }
        for ((id, _), v) in texts.into_iter().zip(vectors) {
            let v: Arc<[f32]> = v.into();
            cache.insert(id, Arc::clone(&v));
            found.insert(id, v);
        }
        Ok(found)
    }

    /// Embeds `texts` off the async workers, in chunks.
    async fn embed(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, VectorError> {
        let embedder = Arc::clone(&self.embedder);
        let vectors = tokio::task::spawn_blocking(move || {
            let mut out = Vec::with_capacity(texts.len());
            for chunk in texts.chunks(EMBED_CHUNK) {
                let refs: Vec<&str> = chunk.iter().map(String::as_str).collect();
                out.extend(embedder.embed(&refs)?);
            }
            Ok::<_, EmbedError>(out)
        })
        .await??;
        Ok(vectors)
    }
}

fn to_bytes(v: &[i8]) -> Vec<u8> {
    v.iter().map(|x| x.to_le_bytes()[0]).collect()
}

fn from_bytes(b: &[u8]) -> Vec<i8> {
    b.iter().map(|x| i8::from_le_bytes([*x])).collect()
}
