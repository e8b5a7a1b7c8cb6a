//! `cohort_pools`: each pool with its settings, status and queue size, and every ticket.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgConnection, PgPool};
use trellis_cohorts::pool::PoolEvent;
use trellis_kernel::{DomainEvent, RecordedEvent, VariantNames};
use trellis_runtime::projection::{Projection, ProjectionError};
use uuid::Uuid;

/// The projection.
pub struct CohortPools;

/// The pools table.
pub const POOLS_TABLE: &str = "rm_cohort_pools.pools";
/// The tickets table.
pub const TICKETS_TABLE: &str = "rm_cohort_pools.tickets";
/// The groups table.
pub const GROUPS_TABLE: &str = "rm_cohort_pools.groups";

#[async_trait]
impl Projection for CohortPools {
    fn name(&self) -> &'static str {
        "cohort_pools"
    }

    fn version(&self) -> i32 {
        2
    }

    fn event_types(&self) -> &'static [&'static str] {
        PoolEvent::VARIANTS
    }

    fn schema_sql(&self) -> &'static str {
        include_str!("../../../projections/cohort_pools/schema.sql")
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
    let decoded = PoolEvent::from_payload(&event.event_type, event.payload.clone())
        .map_err(|e| ProjectionError::apply(event, e.to_string()))?;
    let pool = event.stream_id.id();
    let version = event.stream_version as i64;
    match decoded {
        PoolEvent::PoolCreated {
            name,
            group_size,
            criteria,
            batch,
            created_by,
        } => {
            let organization = ProjectionError::tenant_of(event)?;
            sqlx::query(
                "INSERT INTO pools (pool_id, organization_id, name, group_size, criteria, batch, \
                     created_by, version, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) ON CONFLICT (pool_id) DO NOTHING",
            )
            .bind(pool)
            .bind(organization)
            .bind(name)
            .bind(json(event, &group_size)?)
            .bind(json(event, &criteria)?)
            .bind(json(event, &batch)?)
            .bind(created_by)
            .bind(version)
            .bind(event.recorded_at)
            .execute(&mut *conn)
            .await?;
        }
        PoolEvent::PoolClosed { .. } => {
            sqlx::query(
                "UPDATE pools SET closed = true, version = $2, updated_at = $3 WHERE pool_id = $1",
            )
            .bind(pool)
            .bind(version)
            .bind(event.recorded_at)
            .execute(&mut *conn)
            .await?;
        }
        PoolEvent::MatchQueueJoined {
            ticket_id,
            learner_id,
            joined_at,
            ..
        } => {
            let organization = ProjectionError::tenant_of(event)?;
            sqlx::query(
                "INSERT INTO tickets (ticket_id, pool_id, organization_id, learner_id, status, \
                     joined_at) VALUES ($1, $2, $3, $4, 'queued', $5) \
                 ON CONFLICT (ticket_id) DO NOTHING",
            )
            .bind(ticket_id)
            .bind(pool)
            .bind(organization)
            .bind(learner_id)
            .bind(joined_at)
            .execute(&mut *conn)
            .await?;
            bump(conn, pool, version, event.recorded_at, 1, 0).await?;
        }
        PoolEvent::MatchQueueLeft { ticket_id, .. } => {
            sqlx::query("UPDATE tickets SET status = 'left' WHERE ticket_id = $1")
                .bind(ticket_id)
                .execute(&mut *conn)
                .await?;
            bump(conn, pool, version, event.recorded_at, -1, 0).await?;
        }
        PoolEvent::GroupsFormed {
            batch_id,
            groups,
            unplaced,
        } => {
            let organization = ProjectionError::tenant_of(event)?;
            let mut placed = 0;
            for group in &groups {
                let members: Vec<Uuid> = group.members.iter().map(|m| m.learner_id).collect();
                sqlx::query(
                    "INSERT INTO groups (group_id, pool_id, organization_id, batch_id, members, \
                         formed_at) VALUES ($1, $2, $3, $4, $5, $6) \
                     ON CONFLICT (group_id) DO NOTHING",
                )
                .bind(group.group_id)
                .bind(pool)
                .bind(organization)
                .bind(batch_id)
                .bind(&members)
                .bind(event.recorded_at)
                .execute(&mut *conn)
                .await?;
                let tickets: Vec<Uuid> = group.members.iter().map(|m| m.ticket_id).collect();
                placed += tickets.len();
                sqlx::query(
                    "UPDATE tickets SET status = 'placed', group_id = $2, unplaced_reason = NULL \
                     WHERE ticket_id = ANY($1)",
                )
                .bind(&tickets)
                .bind(group.group_id)
                .execute(&mut *conn)
                .await?;
            }
            for u in &unplaced {
                sqlx::query("UPDATE tickets SET unplaced_reason = $2 WHERE ticket_id = $1")
                    .bind(u.ticket_id)
                    .bind(&u.reason)
                    .execute(&mut *conn)
                    .await?;
            }
            let placed = i32::try_from(placed).unwrap_or(i32::MAX);
            let formed = i32::try_from(groups.len()).unwrap_or(i32::MAX);
            bump(conn, pool, version, event.recorded_at, -placed, formed).await?;
        }
    }
    Ok(())
}

async fn bump(
    conn: &mut PgConnection,
    pool: Uuid,
    version: i64,
    at: DateTime<Utc>,
    queue: i32,
    groups: i32,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE pools SET queue_size = queue_size + $2, groups_formed = groups_formed + $3, \
         version = $4, updated_at = $5 WHERE pool_id = $1",
    )
    .bind(pool)
    .bind(queue)
    .bind(groups)
    .bind(version)
    .bind(at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// `value` as JSON for a jsonb column.
fn json(
    event: &RecordedEvent,
    value: &impl Serialize,
) -> Result<serde_json::Value, ProjectionError> {
    serde_json::to_value(value).map_err(|e| ProjectionError::apply(event, e.to_string()))
}

/// A pool as the API shows it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct PoolRow {
    /// Id.
    pub id: Uuid,
    /// Name.
    pub name: String,
    /// `{min, max}`.
    pub group_size: serde_json::Value,
    /// `[{attribute, mode, weight}]`.
    pub criteria: serde_json::Value,
    /// `{min_queue, max_wait_seconds}`.
    pub batch: serde_json::Value,
    /// Closed.
    pub closed: bool,
    /// Tickets queued now.
    pub queue_size: i32,
    /// Groups formed so far.
    pub groups_formed: i32,
    /// Creator.
    pub created_by: Uuid,
    /// Stream version.
    pub version: i64,
    /// Created.
    pub created_at: DateTime<Utc>,
}

/// The organization's pool `id`.
///
/// # Errors
/// Database failures.
pub async fn pool(
    db: &PgPool,
    organization_id: Uuid,
    id: Uuid,
) -> Result<Option<PoolRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT pool_id AS id, name, group_size, criteria, batch, closed, queue_size, \
                groups_formed, created_by, version, created_at \
         FROM {POOLS_TABLE} WHERE organization_id = $1 AND pool_id = $2"
    ))
    .bind(organization_id)
    .bind(id)
    .fetch_optional(db)
    .await
}

/// The learner's ticket in the pool, newest first: `(ticket_id, status, unplaced_reason)`.
///
/// # Errors
/// Database failures.
pub async fn ticket_of(
    db: &PgPool,
    pool_id: Uuid,
    learner_id: Uuid,
) -> Result<Option<(Uuid, String, Option<String>)>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT ticket_id, status, unplaced_reason FROM {TICKETS_TABLE} \
         WHERE pool_id = $1 AND learner_id = $2 ORDER BY joined_at DESC, ticket_id DESC LIMIT 1"
    ))
    .bind(pool_id)
    .bind(learner_id)
    .fetch_optional(db)
    .await
}

/// A formed group.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct GroupRow {
    /// Id.
    pub id: Uuid,
    /// Its pool.
    pub pool_id: Uuid,
    /// The pool's name.
    pub pool_name: String,
    /// Members (learner ids).
    pub members: Vec<Uuid>,
    /// When the batch formed it.
    pub formed_at: DateTime<Utc>,
}

/// The groups of the organization's pool `pool_id`, oldest first.
///
/// # Errors
/// Database failures.
pub async fn groups_of_pool(
    db: &PgPool,
    organization_id: Uuid,
    pool_id: Uuid,
) -> Result<Vec<GroupRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT g.group_id AS id, g.pool_id, p.name AS pool_name, g.members, g.formed_at \
         FROM {GROUPS_TABLE} g JOIN {POOLS_TABLE} p USING (pool_id) \
         WHERE g.organization_id = $1 AND g.pool_id = $2 ORDER BY g.formed_at, g.group_id"
    ))
    .bind(organization_id)
    .bind(pool_id)
    .fetch_all(db)
    .await
}

/// The groups `learner_id` of the organization is a member of, newest first.
///
/// # Errors
/// Database failures.
pub async fn groups_of_member(
    db: &PgPool,
    organization_id: Uuid,
    learner_id: Uuid,
) -> Result<Vec<GroupRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT g.group_id AS id, g.pool_id, p.name AS pool_name, g.members, g.formed_at \
         FROM {GROUPS_TABLE} g JOIN {POOLS_TABLE} p USING (pool_id) \
         WHERE g.organization_id = $1 AND g.members @> ARRAY[$2::uuid] \
         ORDER BY g.formed_at DESC, g.group_id"
    ))
    .bind(organization_id)
    .bind(learner_id)
    .fetch_all(db)
    .await
}

/// Commands on a pool are visible once this read model applied them.
impl trellis_runtime::Shows<trellis_cohorts::pool::CohortPool> for CohortPools {
    const TABLE: &'static str = POOLS_TABLE;
    const ID_COLUMN: &'static str = "pool_id";
}
