//! Skill and goal vectors of queued learners, for the matcher's scoring (docs/cohorts.md,
//! "Scoring with vectors").
//!
//! A ticket's vectors are computed once, when the matcher handles its join ([`store`]): the
//! goals text is embedded with MiniLM, and the skills become the level-weighted mean of their
//! catalog texts' embeddings ([`trellis_development_app::catalog::skill_text`], the text the
//! recommender and search embed; each skill's vector is kept in memory by id). They are kept
//! in `cohort_ticket_vectors`, so a batch of 1,200 reads them instead of embedding 1,200 texts
//! (~13 s on this machine at 94 texts/s); a ticket the tick reaches before its join was
//! handled is embedded in memory when its batch forms ([`for_batch`], which never writes: only
//! the consumer, in log order, writes and deletes rows). Rows go when the ticket is placed or
//! leaves, or its pool closes: they derive from personal data (the goals text).
//!
//! [`store`]: ProfileVectors::store
//! [`for_batch`]: ProfileVectors::for_batch

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

/// A ticket's vectors, quantized unit vectors ([`trellis_embed::quantize`]).
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

    /// The vectors of `tickets` (of one organization), in their order: read where kept,
    /// computed in memory for the others (nothing is written).
    ///
    /// # Errors
    /// Database or model failures.
    pub async fn for_batch(
        &self,
        organization_id: Uuid,
        tickets: &[(Uuid, &LearnerProfile)],
    ) -> Result<Vec<TicketVectors>, VectorError> {
        let mut kept = self.read(tickets).await?;
        let missing: Vec<(Uuid, &LearnerProfile)> = tickets
            .iter()
            .filter(|(id, _)| !kept.contains_key(id))
            .copied()
            .collect();
        kept.extend(self.compute(organization_id, &missing).await?);
        Ok(tickets
            .iter()
            .filter_map(|(id, _)| kept.remove(id))
            .collect())
    }

    /// Computes and keeps the vectors of joined `tickets` of `pool_id` that have none yet.
    ///
    /// # Errors
    /// Database or model failures.
    pub async fn store(
        &self,
        organization_id: Uuid,
        pool_id: Uuid,
        tickets: &[(Uuid, &LearnerProfile)],
    ) -> Result<(), VectorError> {
        let kept = self.read(tickets).await?;
        let missing: Vec<(Uuid, &LearnerProfile)> = tickets
            .iter()
            .filter(|(id, _)| !kept.contains_key(id))
            .copied()
            .collect();
        let computed = self.compute(organization_id, &missing).await?;
        if computed.is_empty() {
            return Ok(());
        }
        let (ids, skills, goals): (Vec<Uuid>, Vec<Vec<u8>>, Vec<Vec<u8>>) = computed
            .into_iter()
            .map(|(id, v)| {
                (
                    id,
                    trellis_embed::quantized_bytes(&v.skills),
                    trellis_embed::quantized_bytes(&v.goals),
                )
            })
            .collect();
        sqlx::query(&format!(
            "INSERT INTO {VECTORS_TABLE} (ticket_id, pool_id, organization_id, skills, goals) \
             SELECT t, $2, $3, s, g FROM unnest($1::uuid[], $4::bytea[], $5::bytea[]) AS u(t, s, g) \
             ON CONFLICT (ticket_id) DO NOTHING"
        ))
        .bind(&ids)
        .bind(pool_id)
        .bind(organization_id)
        .bind(&skills)
        .bind(&goals)
        .execute(&self.pool)
        .await?;
        Ok(())
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

    /// Drops the vectors of every ticket of a closed pool.
    ///
    /// # Errors
    /// Database failures.
    pub async fn forget_pool(&self, pool_id: Uuid) -> Result<(), sqlx::Error> {
        sqlx::query(&format!("DELETE FROM {VECTORS_TABLE} WHERE pool_id = $1"))
            .bind(pool_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn read(
        &self,
        tickets: &[(Uuid, &LearnerProfile)],
    ) -> Result<HashMap<Uuid, TicketVectors>, sqlx::Error> {
        let ids: Vec<Uuid> = tickets.iter().map(|(id, _)| *id).collect();
        let rows: Vec<(Uuid, Vec<u8>, Vec<u8>)> = sqlx::query_as(&format!(
            "SELECT ticket_id, skills, goals FROM {VECTORS_TABLE} WHERE ticket_id = ANY($1)"
        ))
        .bind(&ids)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(id, skills, goals)| {
                (
                    id,
                    TicketVectors {
                        skills: trellis_embed::from_quantized_bytes(&skills),
                        goals: trellis_embed::from_quantized_bytes(&goals),
                    },
                )
            })
            .collect())
    }

    /// Embeds the goals of `tickets` and the skills not cached yet, in one model call.
    async fn compute(
        &self,
        organization_id: Uuid,
        tickets: &[(Uuid, &LearnerProfile)],
    ) -> Result<Vec<(Uuid, TicketVectors)>, VectorError> {
        if tickets.is_empty() {
            return Ok(Vec::new());
        }
        let mut skills = HashMap::new();
        let mut unknown = Vec::new();
        {
            let cache = self.skills.lock().unwrap_or_else(|e| e.into_inner());
            let wanted: HashSet<Uuid> = tickets
                .iter()
                .flat_map(|(_, p)| p.skills.iter().map(|s| s.skill_id))
                .collect();
            for id in wanted {
                match cache.get(&id) {
                    Some(v) => {
                        skills.insert(id, Arc::clone(v));
                    }
                    None => unknown.push(id),
                }
            }
        }
        // A skill removed from the catalog since the join has no text: it counts for nothing.
        let skill_texts = if unknown.is_empty() {
            Vec::new()
        } else {
            trellis_development_app::catalog::skill_texts(&self.pool, organization_id, &unknown)
                .await?
        };
        let texts: Vec<String> = skill_texts
            .iter()
            .map(|(_, t)| t.clone())
            .chain(tickets.iter().map(|(_, p)| p.goals.clone()))
            .collect();
        let embedder = Arc::clone(&self.embedder);
        let mut vectors = tokio::task::spawn_blocking(move || {
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            embedder.embed(&refs)
        })
        .await??;
        let goals = vectors.split_off(skill_texts.len());
        {
            let mut cache = self.skills.lock().unwrap_or_else(|e| e.into_inner());
            if cache.len() + skill_texts.len() > SKILL_CACHE_MAX {
                cache.clear();
            }
            for ((id, _), v) in skill_texts.into_iter().zip(vectors) {
                let v: Arc<[f32]> = v.into();
                cache.insert(id, Arc::clone(&v));
                skills.insert(id, v);
            }
        }
        let dim = self.embedder.dim();
        Ok(tickets
            .iter()
            .zip(goals)
            .map(|((ticket_id, profile), goal)| {
                let mean = trellis_embed::weighted_mean(
                    profile.skills.iter().filter_map(|s| {
                        skills
                            .get(&s.skill_id)
                            .map(|v| (f32::from(s.level), &v[..]))
                    }),
                    dim,
                );
                (
                    *ticket_id,
                    TicketVectors {
                        skills: trellis_embed::quantize(&mean),
                        goals: trellis_embed::quantize(&goal),
                    },
                )
            })
            .collect())
    }
}
