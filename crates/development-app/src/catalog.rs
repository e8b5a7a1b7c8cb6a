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
        4
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
                                     esco_uri, aliases_text, position, version, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
                 ON CONFLICT (skill_id) DO NOTHING",
            )
            .bind(event.stream_id.id())
            .bind(organization)
            .bind(name)
            .bind(description)
            .bind(&aliases)
            .bind(esco_uri)
            .bind(aliases.join("\n"))
            .bind(event.global_position.0)
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
                     kind, duration_minutes, difficulty, skills, position, version, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
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
            .bind(event.global_position.0)
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

/// Searches an organization's skills by name and alias, case-insensitively: the exact name
/// first, then names starting with the query, then names holding it, then aliases holding
/// it, each tier in name order; an empty query lists by name.
///
/// Every tier is an index walk that stops at `limit` (a byte-ordered B-tree on the lower-cased
/// name for prefixes and for name order, trigram GIN indexes for substrings), so a broad
/// query over 14,700 skills no longer sorts all its matches.
///
/// # Errors
/// Database failures.
pub async fn search_skills(
    pool: &PgPool,
    organization_id: Uuid,
    query: &str,
    limit: i64,
) -> Result<Vec<SkillRow>, sqlx::Error> {
    let query = query.trim();
    if query.is_empty() {
        return sqlx::query_as(&format!(
            "SELECT skill_id AS id, name, description, aliases, esco_uri FROM {SKILLS_TABLE} \
             WHERE organization_id = $1 ORDER BY name_key LIMIT $2"
        ))
        .bind(organization_id)
        .bind(limit)
        .fetch_all(pool)
        .await;
    }
    // The prefix tier is a range [q, q + U+10FFFF) in byte order, which the B-tree walks in
    // name order; the exact name sorts first in it.
    const LOW: &str = "(lower($2) COLLATE \"C\")";
    const HIGH: &str = "((lower($2) || chr(1114111)) COLLATE \"C\")";
    const INSIDE: &str = "(('%' || lower($3) || '%') COLLATE \"C\")";
    sqlx::query_as(&format!(
        "SELECT id, name, description, aliases, esco_uri FROM ( \
           (SELECT skill_id AS id, name, description, aliases, esco_uri, name_key, 0 AS tier \
            FROM {SKILLS_TABLE} WHERE organization_id = $1 \
              AND name_key >= {LOW} AND name_key < {HIGH} \
            ORDER BY name_key LIMIT $4) \
           UNION ALL \
           (SELECT skill_id, name, description, aliases, esco_uri, name_key, 1 \
            FROM {SKILLS_TABLE} WHERE organization_id = $1 \
              AND name_key LIKE {INSIDE} AND NOT (name_key >= {LOW} AND name_key < {HIGH}) \
            ORDER BY name_key LIMIT $4) \
           UNION ALL \
           (SELECT skill_id, name, description, aliases, esco_uri, name_key, 2 \
            FROM {SKILLS_TABLE} WHERE organization_id = $1 \
              AND alias_key LIKE {INSIDE} AND name_key NOT LIKE {INSIDE} \
            ORDER BY name_key LIMIT $4)) tiers \
         ORDER BY tier, name_key LIMIT $4"
    ))
    // Not a prepared statement: each query is planned for its own text. A generic plan
    // (PostgreSQL's choice after five runs) cannot see whether a pattern is selective and
    // scans: p95 30 ms instead of under 10.
    .persistent(false)
    .bind(organization_id)
    .bind(query)
    .bind(trellis_edge::search::like_literal(query))
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
        "SELECT p.i, s.skill_id FROM unnest($2::text[]) WITH ORDINALITY AS p(phrase, i) \
         CROSS JOIN LATERAL ( \
             SELECT skill_id FROM {SKILLS_TABLE} \
             WHERE organization_id = $1 \
               AND name_search @@ plainto_tsquery('english', p.phrase) \
               AND numnode(plainto_tsquery('english', p.phrase)) > 0 \
             ORDER BY length(name), skill_id LIMIT 3) s"
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

/// The text the embedder sees ([`skill_text`]) for each of `ids` that is a skill of the
/// organization.
///
/// # Errors
/// Database failures.
pub async fn skill_texts(
    pool: &PgPool,
    organization_id: Uuid,
    ids: &[Uuid],
) -> Result<Vec<(Uuid, String)>, sqlx::Error> {
    let rows: Vec<(Uuid, String, String)> = sqlx::query_as(&format!(
        "SELECT skill_id, name, description FROM {SKILLS_TABLE} \
         WHERE organization_id = $1 AND skill_id = ANY($2)"
    ))
    .bind(organization_id)
    .bind(ids)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, name, description)| (id, skill_text(&name, &description)))
        .collect())
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

/// Text the embedder sees for a skill: its name and the start of its description (the
/// recommender and search embed the same text).
pub fn skill_text(name: &str, description: &str) -> String {
    entry_text(name, description, 300)
}

/// Text the embedder sees for a resource: its title and the start of its description.
pub fn resource_text(title: &str, description: &str) -> String {
    entry_text(title, description, 600)
}

fn entry_text(title: &str, description: &str, chars: usize) -> String {
    let description: String = description.chars().take(chars).collect();
    if description.is_empty() {
        title.to_owned()
    } else {
        format!("{title}. {description}")
    }
}

/// A catalog table `GET /v1/search` finds entries of.
struct Searched {
    kind: &'static str,
    table: &'static str,
    id: &'static str,
    title: &'static str,
    /// The passage highlighted (SQL over the row).
    passage: &'static str,
    /// The text embedded for meaning search.
    embedded: fn(&str, &str) -> String,
}

const SKILLS: Searched = Searched {
    kind: "skill",
    table: SKILLS_TABLE,
    id: "skill_id",
    title: "name",
    passage: "name || CASE WHEN aliases_text = '' THEN '' \
                   ELSE ' (' || replace(aliases_text, E'\\n', ', ') || ')' END \
              || CASE WHEN description = '' THEN '' ELSE ' — ' || description END",
    embedded: skill_text,
};

const RESOURCES: Searched = Searched {
    kind: "resource",
    table: RESOURCES_TABLE,
    id: "resource_id",
    title: "title",
    passage: "title || CASE WHEN description = '' THEN '' ELSE ' — ' || description END",
    embedded: resource_text,
};

/// `GET /v1/search?kind=skill|resource`: the catalog's entries by full text (skills: name over
/// aliases over description; resources: title over description), skills also by part of a
/// name or alias (the `GET /v1/skills?q=` tiers, so "pyth" finds Python).
pub struct CatalogSearch {
    pool: PgPool,
    of: &'static Searched,
}

impl CatalogSearch {
    /// Skills of the catalog.
    pub fn skills(pool: PgPool) -> Self {
        Self { pool, of: &SKILLS }
    }

    /// Resources of the catalog.
    pub fn resources(pool: PgPool) -> Self {
        Self {
            pool,
            of: &RESOURCES,
        }
    }
}

#[async_trait]
impl trellis_edge::Searchable for CatalogSearch {
    fn kind(&self) -> &'static str {
        self.of.kind
    }

    async fn rankings(
        &self,
        organization_id: Uuid,
        q: &str,
        limit: usize,
    ) -> Result<Vec<Vec<Uuid>>, sqlx::Error> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let Searched { table, id, .. } = *self.of;
        let text = sqlx::query_scalar(&format!(
            "SELECT {id} FROM {table}, websearch_to_tsquery('english', $2) query \
             WHERE organization_id = $1 AND search @@ query \
             ORDER BY ts_rank_cd(search, query) DESC, {id} LIMIT $3"
        ))
        .bind(organization_id)
        .bind(q)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        if self.of.kind != SKILLS.kind {
            return Ok(vec![text]);
        }
        let names = search_skills(&self.pool, organization_id, q, limit).await?;
        Ok(vec![text, names.into_iter().map(|row| row.id).collect()])
    }

    async fn texts_after(
        &self,
        organization_id: Uuid,
        position: i64,
        limit: usize,
    ) -> Result<Vec<(Uuid, String, i64)>, sqlx::Error> {
        let Searched {
            table, id, title, ..
        } = *self.of;
        let rows: Vec<(Uuid, String, String, i64)> = sqlx::query_as(&format!(
            "SELECT {id}, {title}, description, position FROM {table} \
             WHERE organization_id = $1 AND position > $2 ORDER BY position LIMIT $3"
        ))
        .bind(organization_id)
        .bind(position)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(id, title, description, position)| {
                (id, (self.of.embedded)(&title, &description), position)
            })
            .collect())
    }

    async fn shown(
        &self,
        organization_id: Uuid,
        ids: &[Uuid],
        q: &str,
    ) -> Result<Vec<(Uuid, String, String)>, sqlx::Error> {
        let Searched {
            table,
            id,
            title,
            passage,
            ..
        } = *self.of;
        let passage = trellis_edge::search::escaped(passage);
        let rows: Vec<(Uuid, String, String)> = sqlx::query_as(&format!(
            "SELECT {id}, {title}, ts_headline('english', {passage}, query, '{}') \
             FROM {table}, websearch_to_tsquery('english', $3) query \
             WHERE organization_id = $1 AND {id} = ANY($2)",
            trellis_edge::search::HEADLINE
        ))
        .bind(organization_id)
        .bind(ids)
        .bind(q)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(id, title, highlight)| {
                (id, title, trellis_edge::search::mark_words(highlight, q))
            })
            .collect())
    }
}

/// Up to `limit` skills of the organization whose names share words with `text` (English
/// stemming, any word: a learner's goals name skills loosely), best match first.
///
/// # Errors
/// Database failures.
pub async fn skills_for_text(
    pool: &PgPool,
    organization_id: Uuid,
    text: &str,
    limit: i64,
) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar(&format!(
        "SELECT skill_id FROM {SKILLS_TABLE}, \
             (SELECT replace(plainto_tsquery('english', $2)::text, '&', '|')::tsquery AS query) q \
         WHERE organization_id = $1 AND numnode(q.query) > 0 AND name_search @@ q.query \
         ORDER BY ts_rank_cd(name_search, q.query) DESC, length(name), skill_id LIMIT $3"
    ))
    .bind(organization_id)
    .bind(text)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// A resource that teaches a skill (for curricula).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TeachingResource {
    /// The resource.
    pub resource_id: Uuid,
    /// Its title.
    pub title: String,
    /// The skill it teaches.
    pub skill_id: Uuid,
    /// Its duration.
    pub duration_minutes: i32,
}

/// The organization's resources teaching one of `skills`, easiest first, at most `limit`.
///
/// # Errors
/// Database failures.
pub async fn resources_teaching(
    pool: &PgPool,
    organization_id: Uuid,
    skills: &[Uuid],
    limit: i64,
) -> Result<Vec<TeachingResource>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT r.resource_id, r.title, (s->>'skill_id')::uuid AS skill_id, r.duration_minutes \
         FROM {RESOURCES_TABLE} r, jsonb_array_elements(r.skills) s \
         WHERE r.organization_id = $1 AND (s->>'skill_id')::uuid = ANY($2) \
         ORDER BY r.difficulty, r.resource_id LIMIT $3"
    ))
    .bind(organization_id)
    .bind(skills)
    .bind(limit)
    .fetch_all(pool)
    .await
}
