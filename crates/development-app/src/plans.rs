//! `development_plans`: reviews and IDPs as the API reads them.

use async_trait::async_trait;
use sqlx::PgConnection;
use trellis_development::idp::{IdpEvent, IdpStatus};
use trellis_development::review::ReviewEvent;
use trellis_kernel::{DomainEvent, RecordedEvent, VariantNames};
use trellis_runtime::projection::{Projection, ProjectionError};

/// The projection.
pub struct DevelopmentPlans;

/// Schema of the live tables.
pub const SCHEMA: &str = "rm_development_plans";
/// Reviews, by `review_id`.
pub const REVIEWS_TABLE: &str = "rm_development_plans.reviews";
/// IDPs, by `idp_id`.
pub const IDPS_TABLE: &str = "rm_development_plans.idps";

fn json(
    event: &RecordedEvent,
    value: impl serde::Serialize,
) -> Result<serde_json::Value, ProjectionError> {
    serde_json::to_value(value).map_err(|e| ProjectionError::apply(event, e.to_string()))
}

fn status_name(status: IdpStatus) -> &'static str {
    match status {
        IdpStatus::None => "none",
        IdpStatus::Processing => "processing",
        IdpStatus::Active => "active",
        IdpStatus::Failed => "failed",
    }
}

#[async_trait]
impl Projection for DevelopmentPlans {
    fn name(&self) -> &'static str {
        "development_plans"
    }

    fn version(&self) -> i32 {
        1
    }

    fn event_types(&self) -> &'static [&'static str] {
        static TYPES: std::sync::LazyLock<Vec<&'static str>> = std::sync::LazyLock::new(|| {
            [
                ReviewEvent::VARIANTS,
                IdpEvent::VARIANTS,
                &[trellis_identity::SUBJECT_FORGOTTEN],
            ]
            .concat()
        });
        &TYPES
    }

    fn schema_sql(&self) -> &'static str {
        include_str!("../../../projections/development_plans/schema.sql")
    }

    async fn apply(
        &self,
        conn: &mut PgConnection,
        events: &[RecordedEvent],
    ) -> Result<(), ProjectionError> {
        for event in events {
            if event.event_type == trellis_identity::SUBJECT_FORGOTTEN {
                // Erased (ADR 0017): feedback about them goes; a rebuild reads it erased.
                sqlx::query("UPDATE reviews SET feedback = $2 WHERE employee_id = $1")
                    .bind(event.stream_id.id())
                    .bind(trellis_kernel::personal::ERASED)
                    .execute(&mut *conn)
                    .await?;
            } else if event.stream_id.kind()
                == <trellis_development::review::Review as trellis_kernel::Aggregate>::KIND
            {
                apply_review(conn, event).await?;
            } else {
                apply_idp(conn, event).await?;
            }
        }
        Ok(())
    }
}

async fn apply_review(
    conn: &mut PgConnection,
    event: &RecordedEvent,
) -> Result<(), ProjectionError> {
    let ReviewEvent::ReviewSubmitted {
        employee_id,
        reviewer_id,
        period,
        ratings,
        feedback,
    } = ReviewEvent::from_payload(&event.event_type, event.payload.clone())
        .map_err(|e| ProjectionError::apply(event, e.to_string()))?;
    let organization = ProjectionError::tenant_of(event)?;
    sqlx::query(
        "INSERT INTO reviews (review_id, organization_id, employee_id, reviewer_id, period, \
                              ratings, feedback, version, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (review_id) DO NOTHING",
    )
    .bind(event.stream_id.id())
    .bind(organization)
    .bind(employee_id)
    .bind(reviewer_id)
    .bind(period)
    .bind(json(event, &ratings)?)
    .bind(feedback)
    .bind(event.stream_version as i64)
    .bind(event.recorded_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn apply_idp(conn: &mut PgConnection, event: &RecordedEvent) -> Result<(), ProjectionError> {
    let decoded = IdpEvent::from_payload(&event.event_type, event.payload.clone())
        .map_err(|e| ProjectionError::apply(event, e.to_string()))?;
    let id = event.stream_id.id();
    let version = event.stream_version as i64;
    let at = event.recorded_at;
    let set = |sql: &'static str| sqlx::query(sql).bind(id).bind(version).bind(at);
    match decoded {
        IdpEvent::IdpCreated {
            employee_id,
            created_by,
            title,
            target_skills,
            target_role,
            due_date,
        } => {
            let organization = ProjectionError::tenant_of(event)?;
            sqlx::query(
                "INSERT INTO idps (idp_id, organization_id, employee_id, created_by, title, status, \
                                   target_skills, target_role, due_date, version, created_at, \
                                   updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11) \
                 ON CONFLICT (idp_id) DO NOTHING",
            )
            .bind(id)
            .bind(organization)
            .bind(employee_id)
            .bind(created_by)
            .bind(title)
            .bind(status_name(IdpStatus::Processing))
            .bind(json(event, &target_skills)?)
            .bind(target_role)
            .bind(due_date)
            .bind(version)
            .bind(at)
            .execute(&mut *conn)
            .await?;
        }
        IdpEvent::IdpRecommendationsGenerated {
            gaps,
            recommendations,
        } => {
            set(
                "UPDATE idps SET status = 'active', gaps = $4, recommendations = $5, \
                 failure_reason = NULL, version = $2, updated_at = $3 WHERE idp_id = $1",
            )
            .bind(json(event, &gaps)?)
            .bind(json(event, &recommendations)?)
            .execute(&mut *conn)
            .await?;
        }
        IdpEvent::IdpRecommendationFailed { reason } => {
            set(
                "UPDATE idps SET status = 'failed', failure_reason = $4, version = $2, \
                 updated_at = $3 WHERE idp_id = $1",
            )
            .bind(reason)
            .execute(&mut *conn)
            .await?;
        }
        IdpEvent::IdpRecommendationRetried {} => {
            set(
                "UPDATE idps SET status = 'processing', failure_reason = NULL, version = $2, \
                 updated_at = $3 WHERE idp_id = $1",
            )
            .execute(&mut *conn)
            .await?;
        }
        IdpEvent::IdpItemAdded {
            item_id,
            title,
            resource_id,
            skill_ids,
        } => {
            // Counters move only with the row they count: belt and braces under the guard.
            let inserted = sqlx::query(
                "INSERT INTO idp_items (idp_id, item_id, position, title, resource_id, skill_ids) \
                 VALUES ($1, $2, (SELECT items_total FROM idps WHERE idp_id = $1), $3, $4, $5) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(id)
            .bind(item_id)
            .bind(title)
            .bind(resource_id)
            .bind(json(event, &skill_ids)?)
            .execute(&mut *conn)
            .await?
            .rows_affected();
            set(
                "UPDATE idps SET items_total = items_total + $4, version = $2, updated_at = $3 \
                 WHERE idp_id = $1",
            )
            .bind(i32::try_from(inserted).unwrap_or(0))
            .execute(&mut *conn)
            .await?;
        }
        IdpEvent::IdpItemCompleted { item_id } => {
            let completed = sqlx::query(
                "UPDATE idp_items SET completed_at = $3 \
                 WHERE idp_id = $1 AND item_id = $2 AND completed_at IS NULL",
            )
            .bind(id)
            .bind(item_id)
            .bind(at)
            .execute(&mut *conn)
            .await?
            .rows_affected();
            set(
                "UPDATE idps SET items_done = items_done + $4, version = $2, updated_at = $3 \
                 WHERE idp_id = $1",
            )
            .bind(i32::try_from(completed).unwrap_or(0))
            .execute(&mut *conn)
            .await?;
        }
        IdpEvent::IdpApproved { approver_id } => {
            set(
                "UPDATE idps SET approved_by = $4, approved_at = $3, version = $2, \
                 updated_at = $3 WHERE idp_id = $1",
            )
            .bind(approver_id)
            .execute(&mut *conn)
            .await?;
        }
    }
    Ok(())
}

/// Commands on an IDP are visible once this read model applied them.
impl trellis_runtime::Shows<trellis_development::idp::Idp> for DevelopmentPlans {
    const TABLE: &'static str = IDPS_TABLE;
    const ID_COLUMN: &'static str = "idp_id";
}

/// Commands on a review are visible once this read model applied them.
impl trellis_runtime::Shows<trellis_development::review::Review> for DevelopmentPlans {
    const TABLE: &'static str = REVIEWS_TABLE;
    const ID_COLUMN: &'static str = "review_id";
}

/// An IDP as the read model holds it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct IdpRow {
    /// Plan id.
    pub idp_id: uuid::Uuid,
    /// Its organization.
    pub organization_id: uuid::Uuid,
    /// Whose plan.
    pub employee_id: uuid::Uuid,
    /// Who created it.
    pub created_by: uuid::Uuid,
    /// Title.
    pub title: String,
    /// `processing`, `active` or `failed`.
    pub status: String,
    /// `[{skill_id, level}]`.
    pub target_skills: serde_json::Value,
    /// The target role's ESCO occupation URI.
    pub target_role: Option<String>,
    /// Due date.
    pub due_date: Option<chrono::NaiveDate>,
    /// The recommender's gap analysis.
    pub gaps: serde_json::Value,
    /// Recommended resources, best first.
    pub recommendations: serde_json::Value,
    /// Why the recommender failed.
    pub failure_reason: Option<String>,
    /// The approving manager.
    pub approved_by: Option<uuid::Uuid>,
    /// When it was approved.
    pub approved_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Items.
    pub items_total: i32,
    /// Items done.
    pub items_done: i32,
    /// Stream version applied.
    pub version: i64,
    /// Created.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// Last change.
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

/// An item of an IDP.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ItemRow {
    /// Item id.
    pub item_id: uuid::Uuid,
    /// Title.
    pub title: String,
    /// The resource it is about.
    pub resource_id: Option<uuid::Uuid>,
    /// Skills it trains (`[uuid]`).
    pub skill_ids: serde_json::Value,
    /// When it was done.
    pub completed_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// An IDP in a list.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SummaryRow {
    /// Plan id.
    pub idp_id: uuid::Uuid,
    /// Title.
    pub title: String,
    /// Status.
    pub status: String,
    /// Items done.
    pub items_done: i32,
    /// Items.
    pub items_total: i32,
    /// Stream version applied.
    pub version: i64,
    /// Created.
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// Most plans one list returns.
pub const MAX_LISTED_IDPS: i64 = 200;

/// IDP `id`, whatever its organization (callers check it).
///
/// # Errors
/// Database failures.
pub async fn idp(pool: &sqlx::PgPool, id: uuid::Uuid) -> Result<Option<IdpRow>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT * FROM {IDPS_TABLE} WHERE idp_id = $1"))
        .bind(id)
        .fetch_optional(pool)
        .await
}

/// The items of IDP `id`, in the order added.
///
/// # Errors
/// Database failures.
pub async fn items(pool: &sqlx::PgPool, id: uuid::Uuid) -> Result<Vec<ItemRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT item_id, title, resource_id, skill_ids, completed_at \
         FROM {SCHEMA}.idp_items WHERE idp_id = $1 ORDER BY position"
    ))
    .bind(id)
    .fetch_all(pool)
    .await
}

/// The plans of `employee_id` in `organization_id`, newest first (at most
/// [`MAX_LISTED_IDPS`]).
///
/// # Errors
/// Database failures.
pub async fn idps_of(
    pool: &sqlx::PgPool,
    organization_id: uuid::Uuid,
    employee_id: uuid::Uuid,
) -> Result<Vec<SummaryRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT idp_id, title, status, items_done, items_total, version, created_at \
         FROM {IDPS_TABLE} WHERE employee_id = $1 AND organization_id = $2 \
         ORDER BY created_at DESC LIMIT {MAX_LISTED_IDPS}"
    ))
    .bind(employee_id)
    .bind(organization_id)
    .fetch_all(pool)
    .await
}
