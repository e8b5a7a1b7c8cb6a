//! `development_catalog`: the skill catalog per organization (search, existence checks).

use async_trait::async_trait;
use serde::Serialize;
use sqlx::{PgConnection, PgPool};
use trellis_development::resource::ResourceEvent;
use trellis_development::skill::SkillEvent;
use trellis_kernel::{DomainEvent, RecordedEvent, VariantNames};
use trellis_runtime::projection::{Projection, ProjectionError};
use uuid::Uuid;

/// The projection.
pub struct DevelopmentCatalog;

/// The live table.
pub const SKILLS_TABLE: &str = "rm_development_catalog.skills";
/// The resources table.
pub const RESOURCES_TABLE: &str = "rm_development_catalog.resources";

/// A resource as other endpoints need it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ResourceRef {
    /// Owner.
    pub organization_id: Uuid,
    /// Title.
    pub title: String,
    /// `[{skill_id, level}]` as published.
    pub skills: serde_json::Value,
}

impl ResourceRef {
    /// The ids of the skills it teaches.
    pub fn skill_ids(&self) -> Vec<Uuid> {
        self.skills
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s.get("skill_id")?.as_str()?.parse().ok())
            .collect()
    }
}

/// A resource by id (any organization: callers check the owner).
///
/// # Errors
/// Database failures.
pub async fn resource(pool: &PgPool, id: Uuid) -> Result<Option<ResourceRef>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT organization_id, title, skills FROM {RESOURCES_TABLE} WHERE resource_id = $1"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await
}

/// Titles of the resources among `ids` that belong to `organization_id`.
///
/// # Errors
/// Database failures.
pub async fn resource_titles(
    pool: &PgPool,
    organization_id: Uuid,
    ids: &[Uuid],
) -> Result<std::collections::HashMap<Uuid, String>, sqlx::Error> {
    let rows: Vec<(Uuid, String)> = sqlx::query_as(&format!(
        "SELECT resource_id, title FROM {RESOURCES_TABLE} \
         WHERE organization_id = $1 AND resource_id = ANY($2)"
    ))
    .bind(organization_id)
    .bind(ids)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().collect())
}

#[async_trait]
impl Projection for DevelopmentCatalog {
    fn name(&self) -> &'static str {
        "development_catalog"
    }

    fn version(&self) -> i32 {
        3
    }

    fn event_types(&self) -> &'static [&'static str] {
        static TYPES: std::sync::LazyLock<Vec<&'static str>> =
            std::sync::LazyLock::new(|| [SkillEvent::VARIANTS, ResourceEvent::VARIANTS].concat());
        &TYPES
    }

    fn schema_sql(&self) -> &'static str {
        include_str!("../../../projections/development_catalog/schema.sql")
    }

    async fn apply(
        &self,
        conn: &mut PgConnection,
        events: &[RecordedEvent],
    ) -> Result<(), ProjectionError> {
        for event in events {
            if event.stream_id.kind()
                == <trellis_development::resource::Resource as trellis_kernel::Aggregate>::KIND
            {
                apply_resource(conn, event).await?;
                continue;
            }
            let SkillEvent::SkillDefined {
                name,
                description,
                aliases,
                esco_uri,
            } = SkillEvent::from_payload(&event.event_type, event.payload.clone())
                .map_err(|e| ProjectionError::apply(event, e.to_string()))?;
            let organization = ProjectionError::tenant_of(event)?;
            sqlx::query(
                "INSERT INTO skills (skill_id, organization_id, name, description, aliases, \
                                     esco_uri, version, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (skill_id) DO NOTHING",
            )
            .bind(event.stream_id.id())
            .bind(organization)
            .bind(name)
            .bind(description)
            .bind(aliases)
            .bind(esco_uri)
            .bind(event.stream_version as i64)
            .bind(event.recorded_at)
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }
}

async fn apply_resource(
    conn: &mut PgConnection,
    event: &RecordedEvent,
) -> Result<(), ProjectionError> {
    let decoded = ResourceEvent::from_payload(&event.event_type, event.payload.clone())
        .map_err(|e| ProjectionError::apply(event, e.to_string()))?;
    let id = event.stream_id.id();
    match decoded {
        ResourceEvent::ResourcePublished {
            title,
            description,
            url,
            kind,
            duration_minutes,
            difficulty,
            skills,
            ..
        } => {
            let organization = ProjectionError::tenant_of(event)?;
            let kind = serde_json::to_value(kind)
                .ok()
                .and_then(|k| k.as_str().map(str::to_owned))
                .unwrap_or_default();
            let skills = serde_json::to_value(&skills)
                .map_err(|e| ProjectionError::apply(event, e.to_string()))?;
            sqlx::query(
                "INSERT INTO resources (resource_id, organization_id, title, description, url, \
                     kind, duration_minutes, difficulty, skills, version, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
                 ON CONFLICT (resource_id) DO NOTHING",
            )
            .bind(id)
            .bind(organization)
            .bind(title)
            .bind(description)
            .bind(url)
            .bind(kind)
            .bind(i32::try_from(duration_minutes).unwrap_or(i32::MAX))
            .bind(i16::from(difficulty.get()))
            .bind(skills)
            .bind(event.stream_version as i64)
            .bind(event.recorded_at)
            .execute(&mut *conn)
            .await?;
        }
        ResourceEvent::ResourceRated { user_id, rating } => {
            let previous: Option<i16> = sqlx::query_scalar(
                "SELECT rating FROM resource_ratings WHERE resource_id = $1 AND user_id = $2",
            )
            .bind(id)
            .bind(user_id)
            .fetch_optional(&mut *conn)
            .await?;
            let rating = i16::from(rating.get());
            sqlx::query(
                "INSERT INTO resource_ratings (resource_id, user_id, rating) VALUES ($1, $2, $3) \
                 ON CONFLICT (resource_id, user_id) DO UPDATE SET rating = EXCLUDED.rating",
            )
            .bind(id)
            .bind(user_id)
            .bind(rating)
            .execute(&mut *conn)
            .await?;
            let (added, new_rater) = match previous {
                Some(old) => (i32::from(rating - old), 0),
                None => (i32::from(rating), 1),
            };
            sqlx::query(
                "UPDATE resources SET rating_sum = rating_sum + $2, rating_count = rating_count + $3, \
                 version = $4 WHERE resource_id = $1",
            )
            .bind(id)
            .bind(added)
            .bind(new_rater)
            .bind(event.stream_version as i64)
            .execute(&mut *conn)
            .await?;
        }
    }
    Ok(())
}

/// A catalog entry.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct SkillRow {
    /// Id.
    pub id: Uuid,
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Aliases.
    pub aliases: Vec<String>,
    /// ESCO URI.
    pub esco_uri: Option<String>,
}

/// Escapes LIKE wildcards so user text matches literally.
fn like_literal(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// Searches an organization's skills by name and alias: exact name first, then name
/// prefix, then name substring, then alias substring; an empty query lists by name.
///
/// # Errors
/// Database failures.
pub async fn search_skills(
    pool: &PgPool,
    organization_id: Uuid,
    query: &str,
    limit: i64,
) -> Result<Vec<SkillRow>, sqlx::Error> {
    let needle = like_literal(query.trim());
    sqlx::query_as(&format!(
        "SELECT skill_id AS id, name, description, aliases, esco_uri FROM {SKILLS_TABLE} \
         WHERE organization_id = $1 AND ($2 = '' OR name ILIKE '%' || $2 || '%' \
               OR EXISTS (SELECT 1 FROM unnest(aliases) a WHERE a ILIKE '%' || $2 || '%')) \
         ORDER BY CASE WHEN lower(name) = lower($2) THEN 0 \
                       WHEN name ILIKE $2 || '%' THEN 1 \
                       WHEN name ILIKE '%' || $2 || '%' THEN 2 ELSE 3 END, name \
         LIMIT $3"
    ))
    .bind(organization_id)
    .bind(needle)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// For each of `phrases`, up to three skills of the organization whose name holds all of the
/// phrase's words (English stemming; shortest names first, so "Python" before "Python
/// (computer programming)"). The content atomizer links an atom's concepts with it.
///
/// # Errors
/// Database failures.
pub async fn skills_named_by(
    pool: &PgPool,
    organization_id: Uuid,
    phrases: &[String],
) -> Result<Vec<Vec<Uuid>>, sqlx::Error> {
    let rows: Vec<(i64, Uuid)> = sqlx::query_as(&format!(
        "SELECT p.i, s.skill_id FROM unnest($2::text[]) WITH ORDINALITY AS p(phrase, i)          CROSS JOIN LATERAL (              SELECT skill_id FROM {SKILLS_TABLE}              WHERE organization_id = $1                AND name_search @@ plainto_tsquery('english', p.phrase)                AND numnode(plainto_tsquery('english', p.phrase)) > 0              ORDER BY length(name), skill_id LIMIT 3) s"
    ))
    .bind(organization_id)
    .bind(phrases)
    .fetch_all(pool)
    .await?;
    let mut out = vec![Vec::new(); phrases.len()];
    for (i, id) in rows {
        if let Some(slot) = usize::try_from(i - 1).ok().and_then(|i| out.get_mut(i)) {
            slot.push(id);
        }
    }
    Ok(out)
}

/// Which of `ids` are skills of the organization.
///
/// # Errors
/// Database failures.
pub async fn known_skills(
    pool: &PgPool,
    organization_id: Uuid,
    ids: &[Uuid],
) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar(&format!(
        "SELECT skill_id FROM {SKILLS_TABLE} WHERE organization_id = $1 AND skill_id = ANY($2)"
    ))
    .bind(organization_id)
    .bind(ids)
    .fetch_all(pool)
    .await
}

/// Most skills one organization's catalog may hold. Every skill is embedded and kept in
/// memory by every recommender instance, so the catalog is bounded per tenant.
pub const MAX_SKILLS_PER_ORGANIZATION: usize = 20_000;

/// How many skills the organization's catalog holds (as far as the read model has applied).
///
/// # Errors
/// Database failures.
pub async fn count_skills(pool: &PgPool, organization_id: Uuid) -> Result<usize, sqlx::Error> {
    let count: i64 = sqlx::query_scalar(&format!(
        "SELECT count(*) FROM {SKILLS_TABLE} WHERE organization_id = $1"
    ))
    .bind(organization_id)
    .fetch_one(pool)
    .await?;
    Ok(usize::try_from(count).unwrap_or(usize::MAX))
}

/// Commands on a skill are visible once this read model applied them.
impl trellis_runtime::Shows<trellis_development::skill::Skill> for DevelopmentCatalog {
    const TABLE: &'static str = SKILLS_TABLE;
    const ID_COLUMN: &'static str = "skill_id";
}

/// Commands on a resource are visible once this read model applied them.
impl trellis_runtime::Shows<trellis_development::resource::Resource> for DevelopmentCatalog {
    const TABLE: &'static str = RESOURCES_TABLE;
    const ID_COLUMN: &'static str = "resource_id";
}
