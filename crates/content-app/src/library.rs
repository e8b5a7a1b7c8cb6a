//! `content_library`: contents and their atoms, per organization, as the API lists, reads and
//! searches them. The read model owns its queries.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgConnection, PgPool};
use trellis_content::content::{Content, ContentEvent};
use trellis_kernel::{DomainEvent, RecordedEvent, VariantNames};
use trellis_runtime::projection::{Projection, ProjectionError};
use uuid::Uuid;

/// The projection.
pub struct ContentLibrary;

/// The contents table.
pub const CONTENTS_TABLE: &str = "rm_content_library.contents";
/// The atoms table.
pub const ATOMS_TABLE: &str = "rm_content_library.atoms";
/// Every stored file of every version.
pub const FILES_TABLE: &str = "rm_content_library.files";

/// Commands on a content are visible once this read model applied them.
impl trellis_runtime::Shows<Content> for ContentLibrary {
    const TABLE: &'static str = CONTENTS_TABLE;
    const ID_COLUMN: &'static str = "content_id";
}

fn apply_error(event: &RecordedEvent, e: impl std::fmt::Display) -> ProjectionError {
    ProjectionError::apply(event, e.to_string())
}

#[async_trait]
impl Projection for ContentLibrary {
    fn name(&self) -> &'static str {
        "content_library"
    }

    fn version(&self) -> i32 {
        2
    }

    fn event_types(&self) -> &'static [&'static str] {
        static TYPES: std::sync::LazyLock<Vec<&'static str>> = std::sync::LazyLock::new(|| {
            [
                ContentEvent::VARIANTS,
                &[trellis_identity::SUBJECT_FORGOTTEN],
            ]
            .concat()
        });
        &TYPES
    }

    fn schema_sql(&self) -> &'static str {
        include_str!("../../../projections/content_library/schema.sql")
    }

    async fn apply(
        &self,
        conn: &mut PgConnection,
        events: &[RecordedEvent],
    ) -> Result<(), ProjectionError> {
        for event in events {
            apply(conn, event).await?;
        }
        Ok(())
    }
}

async fn apply(conn: &mut PgConnection, event: &RecordedEvent) -> Result<(), ProjectionError> {
    if event.event_type == trellis_identity::SUBJECT_FORGOTTEN {
        // Erased (ADR 0017): the author names they entered go; a rebuild reads them erased.
        sqlx::query(
            "UPDATE contents SET metadata = jsonb_set(metadata, '{author}', to_jsonb($2::text)) \
             WHERE uploaded_by = $1 AND metadata->>'author' IS NOT NULL",
        )
        .bind(event.stream_id.id())
        .bind(trellis_kernel::personal::ERASED)
        .execute(&mut *conn)
        .await?;
        return Ok(());
    }
    let decoded = ContentEvent::from_payload(&event.event_type, event.payload.clone())
        .map_err(|e| apply_error(event, e))?;
    let id = event.stream_id.id();
    let version = event.stream_version as i64;
    let at = event.recorded_at;
    match decoded {
        ContentEvent::ContentUploaded {
            title,
            file,
            metadata,
            uploaded_by,
        } => {
            let organization = ProjectionError::tenant_of(event)?;
            let metadata = serde_json::to_value(&metadata).map_err(|e| apply_error(event, e))?;
            file_referenced(conn, &file.key, id, 1).await?;
            sqlx::query(
                "INSERT INTO contents (content_id, organization_id, title, status, \
                     content_version, media_type, filename, size_bytes, sha256, object_key, \
                     metadata, uploaded_by, position, version, created_at, updated_at) \
                 VALUES ($1, $2, $3, 'processing', 1, $4, $5, $6, $7, $8, $9, $10, $11, $12, \
                     $13, $13) ON CONFLICT (content_id) DO NOTHING",
            )
            .bind(id)
            .bind(organization)
            .bind(title)
            .bind(file.media_type.name())
            .bind(file.filename)
            .bind(i64::try_from(file.size).unwrap_or(i64::MAX))
            .bind(file.sha256)
            .bind(file.key)
            .bind(metadata)
            .bind(uploaded_by)
            .bind(event.global_position.0)
            .bind(version)
            .bind(at)
            .execute(&mut *conn)
            .await?;
        }
        ContentEvent::ContentVersionUploaded {
            content_version,
            file,
            ..
        } => {
            file_referenced(conn, &file.key, id, content_version).await?;
            sqlx::query(
                "UPDATE contents SET status = 'processing', content_version = $2, \
                     media_type = $3, filename = $4, size_bytes = $5, sha256 = $6, \
                     object_key = $7, error = NULL, version = $8, updated_at = $9 \
                 WHERE content_id = $1",
            )
            .bind(id)
            .bind(i32::try_from(content_version).unwrap_or(i32::MAX))
            .bind(file.media_type.name())
            .bind(file.filename)
            .bind(i64::try_from(file.size).unwrap_or(i64::MAX))
            .bind(file.sha256)
            .bind(file.key)
            .bind(version)
            .bind(at)
            .execute(&mut *conn)
            .await?;
        }
        ContentEvent::ContentAtomized {
            content_version,
            atomizer_version,
            part,
            parts,
            atoms,
        } => {
            let organization = ProjectionError::tenant_of(event)?;
            if part == 1 {
                sqlx::query("DELETE FROM atoms WHERE content_id = $1")
                    .bind(id)
                    .execute(&mut *conn)
                    .await?;
            }
            for atom in &atoms {
                let concepts =
                    serde_json::to_value(&atom.concepts).map_err(|e| apply_error(event, e))?;
                let quality =
                    serde_json::to_value(atom.quality).map_err(|e| apply_error(event, e))?;
                let phrases: Vec<&str> = atom.concepts.iter().map(|c| c.phrase.as_str()).collect();
                let vector: Option<Vec<u8>> = atom
                    .vector
                    .as_deref()
                    .and_then(trellis_atomizer::decode_vector);
                sqlx::query(
                    "INSERT INTO atoms (atom_id, content_id, organization_id, content_version, \
                         sequence, title, body, objective, concepts, concept_phrases, \
                         difficulty, estimated_minutes, prerequisites, quality, vector, position, \
                         archived) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, \
                         $16, coalesce((SELECT archived FROM contents WHERE content_id = $2), \
                         false)) ON CONFLICT (atom_id) DO NOTHING",
                )
                .bind(atom.id)
                .bind(id)
                .bind(organization)
                .bind(i32::try_from(content_version).unwrap_or(i32::MAX))
                .bind(i32::try_from(atom.sequence).unwrap_or(i32::MAX))
                .bind(&atom.title)
                .bind(&atom.text)
                .bind(&atom.objective)
                .bind(concepts)
                .bind(&phrases)
                .bind(i16::from(atom.difficulty))
                .bind(i32::try_from(atom.estimated_minutes).unwrap_or(i32::MAX))
                .bind(&atom.prerequisites)
                .bind(quality)
                .bind(vector)
                .bind(event.global_position.0)
                .execute(&mut *conn)
                .await?;
            }
            let status = if part == parts {
                "completed"
            } else {
                "processing"
            };
            sqlx::query(
                "UPDATE contents SET status = $2, atomizer_version = $3, \
                     atoms_count = (SELECT count(*) FROM atoms WHERE content_id = $1), \
                     error = NULL, version = $4, updated_at = $5 WHERE content_id = $1",
            )
            .bind(id)
            .bind(status)
            .bind(i32::try_from(atomizer_version).unwrap_or(i32::MAX))
            .bind(version)
            .bind(at)
            .execute(&mut *conn)
            .await?;
        }
        ContentEvent::AtomizationFailed {
            atomizer_version,
            reason,
            ..
        } => {
            sqlx::query(
                "UPDATE contents SET status = 'failed', atomizer_version = $2, error = $3, \
                     version = $4, updated_at = $5 WHERE content_id = $1",
            )
            .bind(id)
            .bind(i32::try_from(atomizer_version).unwrap_or(i32::MAX))
            .bind(reason)
            .bind(version)
            .bind(at)
            .execute(&mut *conn)
            .await?;
        }
        ContentEvent::ContentReatomizationRequested { .. } => {
            sqlx::query(
                "UPDATE contents SET status = 'processing', error = NULL, version = $2, \
                     updated_at = $3 WHERE content_id = $1",
            )
            .bind(id)
            .bind(version)
            .bind(at)
            .execute(&mut *conn)
            .await?;
        }
        ContentEvent::ContentArchived { .. } => {
            sqlx::query("UPDATE atoms SET archived = true WHERE content_id = $1")
                .bind(id)
                .execute(&mut *conn)
                .await?;
            sqlx::query(
                "UPDATE contents SET archived = true, version = $2, updated_at = $3 \
                 WHERE content_id = $1",
            )
            .bind(id)
            .bind(version)
            .bind(at)
            .execute(&mut *conn)
            .await?;
        }
    }
    Ok(())
}

async fn file_referenced(
    conn: &mut PgConnection,
    key: &str,
    content: Uuid,
    version: u32,
) -> Result<(), ProjectionError> {
    sqlx::query(
        "INSERT INTO files (object_key, content_id, content_version) VALUES ($1, $2, $3) \
         ON CONFLICT DO NOTHING",
    )
    .bind(key)
    .bind(content)
    .bind(i32::try_from(version).unwrap_or(i32::MAX))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Every object key a content version references.
///
/// # Errors
/// Database failures.
pub async fn referenced_keys(
    pool: &PgPool,
) -> Result<std::collections::HashSet<String>, sqlx::Error> {
    let keys: Vec<String> =
        sqlx::query_scalar(&format!("SELECT DISTINCT object_key FROM {FILES_TABLE}"))
            .fetch_all(pool)
            .await?;
    Ok(keys.into_iter().collect())
}

/// A content as the API shows it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct ContentRow {
    /// Id.
    pub content_id: Uuid,
    /// Owner.
    pub organization_id: Uuid,
    /// Title.
    pub title: String,
    /// processing | completed | failed.
    pub status: String,
    /// Current version of its file.
    pub content_version: i32,
    /// Sniffed media type (snake_case name).
    pub media_type: String,
    /// The uploaded file's name.
    pub filename: Option<String>,
    /// Bytes.
    pub size_bytes: i64,
    /// SHA-256.
    pub sha256: String,
    /// `{author, subject, language, tags}`.
    pub metadata: serde_json::Value,
    /// Uploader.
    pub uploaded_by: Uuid,
    /// The atomizer version of the current answer.
    pub atomizer_version: Option<i32>,
    /// Atoms of the current answer.
    pub atoms_count: i32,
    /// Why atomization failed.
    pub error: Option<String>,
    /// Archived.
    pub archived: bool,
    /// Stream version.
    pub version: i64,
    /// Uploaded.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

const CONTENT_COLUMNS: &str = "content_id, organization_id, title, status, content_version, \
    media_type, filename, size_bytes, sha256, metadata, uploaded_by, atomizer_version, \
    atoms_count, error, archived, version, created_at, updated_at";

/// An atom as the API shows it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct AtomRow {
    /// Id.
    pub atom_id: Uuid,
    /// Its content.
    pub content_id: Uuid,
    /// Position in the content, from 1.
    pub sequence: i32,
    /// Title.
    pub title: String,
    /// Text.
    pub body: String,
    /// Learning objective.
    pub objective: String,
    /// `[{phrase, skill_ids}]`.
    pub concepts: serde_json::Value,
    /// 1–5.
    pub difficulty: i16,
    /// Minutes.
    pub estimated_minutes: i32,
    /// Atoms to study first.
    pub prerequisites: Vec<Uuid>,
    /// `{score, …}`.
    pub quality: serde_json::Value,
}

/// Content `id` of organization `organization_id`.
///
/// # Errors
/// Database failures.
pub async fn content(
    pool: &PgPool,
    organization_id: Uuid,
    id: Uuid,
) -> Result<Option<ContentRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {CONTENT_COLUMNS} FROM {CONTENTS_TABLE} \
         WHERE content_id = $1 AND organization_id = $2"
    ))
    .bind(id)
    .bind(organization_id)
    .fetch_optional(pool)
    .await
}

/// The atoms of a content, in order.
///
/// # Errors
/// Database failures.
pub async fn atoms(pool: &PgPool, content_id: Uuid) -> Result<Vec<AtomRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT atom_id, content_id, sequence, title, body, objective, concepts, difficulty, \
                estimated_minutes, prerequisites, quality \
         FROM {ATOMS_TABLE} WHERE content_id = $1 ORDER BY sequence"
    ))
    .bind(content_id)
    .fetch_all(pool)
    .await
}

/// The organization's contents, newest first, optionally matching `q` (title, subject,
/// tags; full-text); archived ones only when asked.
///
/// # Errors
/// Database failures.
pub async fn list(
    pool: &PgPool,
    organization_id: Uuid,
    q: Option<&str>,
    include_archived: bool,
    limit: i64,
) -> Result<Vec<ContentRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {CONTENT_COLUMNS} FROM {CONTENTS_TABLE} \
         WHERE organization_id = $1 AND ($2 OR NOT archived) \
           AND ($3::text IS NULL OR search @@ websearch_to_tsquery('english', $3) \
                OR title ILIKE '%' || $5 || '%') \
         ORDER BY created_at DESC, content_id LIMIT $4"
    ))
    .bind(organization_id)
    .bind(include_archived)
    .bind(q)
    .bind(limit)
    .bind(q.map(trellis_edge::search::like_literal))
    .fetch_all(pool)
    .await
}

/// Atoms of the organization's contents uploaded before `position` (not archived) that name
/// any of `phrases` among their concepts: the atomizer's candidates for prerequisites.
///
/// # Errors
/// Database failures.
pub async fn earlier_atoms_with_concepts(
    pool: &PgPool,
    organization_id: Uuid,
    before_position: i64,
    phrases: &[String],
) -> Result<Vec<(Uuid, Vec<String>)>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT a.atom_id, a.concept_phrases FROM {ATOMS_TABLE} a \
         JOIN {CONTENTS_TABLE} c ON c.content_id = a.content_id \
         WHERE a.organization_id = $1 AND c.position < $2 AND NOT c.archived \
           AND a.concept_phrases && $3 \
         ORDER BY a.atom_id LIMIT 2000"
    ))
    .bind(organization_id)
    .bind(before_position)
    .bind(phrases)
    .fetch_all(pool)
    .await
}

/// The upload position of a content (its `ContentUploaded` event's global position).
///
/// # Errors
/// Database failures.
pub async fn position(pool: &PgPool, id: Uuid) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar(&format!(
        "SELECT position FROM {CONTENTS_TABLE} WHERE content_id = $1"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await
}

/// An atom that teaches a skill (for curricula).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TeachingAtom {
    /// The atom.
    pub atom_id: Uuid,
    /// Its title.
    pub title: String,
    /// The skill one of its concepts links to.
    pub skill_id: Uuid,
    /// Study time.
    pub estimated_minutes: i32,
    /// Atoms it builds on.
    pub prerequisites: Vec<Uuid>,
    /// Its content.
    pub content_id: Uuid,
    /// Its place in the content.
    pub sequence: i32,
    /// Its quality score.
    pub quality: f64,
}

/// The organization's current atoms (not archived) whose concepts link to one of `skills`,
/// best quality first, at most `limit`.
///
/// # Errors
/// Database failures.
pub async fn atoms_teaching(
    pool: &PgPool,
    organization_id: Uuid,
    skills: &[Uuid],
    limit: i64,
) -> Result<Vec<TeachingAtom>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT DISTINCT ON (a.atom_id, s.skill_id) a.atom_id, a.title, s.skill_id, \
                a.estimated_minutes, a.prerequisites, a.content_id, a.sequence, \
                coalesce((a.quality->>'score')::float8, 0) AS quality \
         FROM {ATOMS_TABLE} a \
         CROSS JOIN LATERAL (SELECT (jsonb_array_elements_text(c->'skill_ids'))::uuid AS skill_id \
                             FROM jsonb_array_elements(a.concepts) c) s \
         WHERE a.organization_id = $1 AND NOT a.archived AND s.skill_id = ANY($2) \
         ORDER BY a.atom_id, s.skill_id LIMIT $3"
    ))
    .bind(organization_id)
    .bind(skills)
    .bind(limit)
    .fetch_all(pool)
    .await
}
