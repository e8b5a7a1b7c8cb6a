//! `cohort_pools`: each pool with its settings, status and queue size, every ticket, the
//! groups with their curricula and workspaces, and each pool's webhooks.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgConnection, PgPool};
use trellis_cohorts::group::{CohortGroup, GroupEvent, StepKind, Task};
use trellis_cohorts::pool::{Member, PoolEvent};
use trellis_cohorts::webhooks::{PoolWebhooks, WebhookEvent};
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
        6
    }

    fn event_types(&self) -> &'static [&'static str] {
        static TYPES: std::sync::LazyLock<Vec<&'static str>> = std::sync::LazyLock::new(|| {
            [
                PoolEvent::VARIANTS,
                GroupEvent::VARIANTS,
                WebhookEvent::VARIANTS,
            ]
            .concat()
        });
        &TYPES
    }

    fn schema_sql(&self) -> &'static str {
        include_str!("../../../projections/cohort_pools/schema.sql")
    }

    async fn apply(
        &self,
        conn: &mut PgConnection,
        events: &[RecordedEvent],
    ) -> Result<(), ProjectionError> {
        use trellis_kernel::Aggregate;
        for event in events {
            match event.stream_id.kind() {
                CohortGroup::KIND => apply_group(conn, event).await?,
                PoolWebhooks::KIND => apply_webhooks(conn, event).await?,
                _ => apply(conn, event).await?,
            }
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
                     created_by, version, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (pool_id) DO NOTHING",
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
            sqlx::query("UPDATE pools SET closed = true, version = $2 WHERE pool_id = $1")
                .bind(pool)
                .bind(version)
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
            bump(conn, pool, version, 1, 0).await?;
        }
        PoolEvent::MatchQueueLeft { ticket_id, .. } => {
            sqlx::query("UPDATE tickets SET status = 'left' WHERE ticket_id = $1")
                .bind(ticket_id)
                .execute(&mut *conn)
                .await?;
            bump(conn, pool, version, -1, 0).await?;
        }
        PoolEvent::GroupsFormed {
            groups, unplaced, ..
        } => {
            // The groups' rows come from their `GroupOpened`: a member who sees a group can act
            // in it (its stream exists).
            let mut placed = 0;
            for group in &groups {
                let tickets: Vec<Uuid> = group.members.iter().map(|m| m.ticket_id).collect();
                placed += tickets.len();
                sqlx::query(
                    "UPDATE tickets SET status = 'placed', unplaced_reason = NULL \
                     WHERE ticket_id = ANY($1)",
                )
                .bind(&tickets)
                .execute(&mut *conn)
                .await?;
            }
            // One statement for the whole batch (up to 1,200 tickets).
            let (ids, reasons): (Vec<Uuid>, Vec<&str>) = unplaced
                .iter()
                .map(|u| (u.ticket_id, u.reason.as_str()))
                .unzip();
            sqlx::query(
                "UPDATE tickets t SET unplaced_reason = u.reason \
                 FROM unnest($1::uuid[], $2::text[]) AS u(ticket_id, reason) \
                 WHERE t.ticket_id = u.ticket_id",
            )
            .bind(&ids)
            .bind(&reasons)
            .execute(&mut *conn)
            .await?;
            let placed = i32::try_from(placed).unwrap_or(i32::MAX);
            let formed = i32::try_from(groups.len()).unwrap_or(i32::MAX);
            bump(conn, pool, version, -placed, formed).await?;
        }
    }
    Ok(())
}

async fn apply_group(
    conn: &mut PgConnection,
    event: &RecordedEvent,
) -> Result<(), ProjectionError> {
    let decoded = GroupEvent::from_payload(&event.event_type, event.payload.clone())
        .map_err(|e| ProjectionError::apply(event, e.to_string()))?;
    let group = event.stream_id.id();
    match decoded {
        // The row is made when the group's stream is opened, not at the pool's GroupsFormed:
        // shown before, a member's first command in it would find no group.
        GroupEvent::GroupOpened {
            pool_id, members, ..
        } => {
            let organization = ProjectionError::tenant_of(event)?;
            insert_group(
                conn,
                group,
                pool_id,
                organization,
                &members,
                event.recorded_at,
            )
            .await?;
        }
        GroupEvent::CurriculumGenerated { steps, .. } => {
            for (position, step) in steps.iter().enumerate() {
                sqlx::query(
                    "INSERT INTO group_steps (group_id, step_id, position, title, kind, ref_id, \
                         skill_id, minutes, skipped_by) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING",
                )
                .bind(group)
                .bind(step.id)
                .bind(i32::try_from(position).unwrap_or(i32::MAX))
                .bind(&step.title)
                .bind(match step.kind {
                    StepKind::Atom => "atom",
                    StepKind::Resource => "resource",
                })
                .bind(step.ref_id)
                .bind(step.skill_id)
                .bind(i32::try_from(step.minutes).unwrap_or(i32::MAX))
                .bind(&step.skipped_by)
                .execute(&mut *conn)
                .await?;
            }
            sqlx::query("UPDATE groups SET curriculum_ready = true WHERE group_id = $1")
                .bind(group)
                .execute(&mut *conn)
                .await?;
        }
        GroupEvent::StepCompleted {
            learner_id,
            step_id,
        } => {
            sqlx::query(
                "INSERT INTO steps_done (group_id, step_id, learner_id) VALUES ($1, $2, $3) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(group)
            .bind(step_id)
            .bind(learner_id)
            .execute(&mut *conn)
            .await?;
        }
        GroupEvent::MemberLeftGroup { learner_id } => {
            sqlx::query(
                "UPDATE groups SET members = array_remove(members, $2) WHERE group_id = $1",
            )
            .bind(group)
            .bind(learner_id)
            .execute(&mut *conn)
            .await?;
        }
        GroupEvent::ProjectCreated {
            project_id,
            title,
            created_by,
        } => {
            sqlx::query(
                "INSERT INTO projects (project_id, group_id, title, created_by, created_at) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (project_id) DO NOTHING",
            )
            .bind(project_id)
            .bind(group)
            .bind(title)
            .bind(created_by)
            .bind(event.recorded_at)
            .execute(&mut *conn)
            .await?;
        }
        GroupEvent::TaskAdded { task_id, task, .. }
        | GroupEvent::TaskUpdated { task_id, task, .. } => {
            upsert_task(conn, group, task_id, &task, event.recorded_at).await?;
        }
    }
    sqlx::query("UPDATE groups SET version = $2 WHERE group_id = $1")
        .bind(group)
        .bind(event.stream_version as i64)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// A formed group's row, from its `GroupOpened` (idempotent).
async fn insert_group(
    conn: &mut PgConnection,
    group: Uuid,
    pool: Uuid,
    organization: Uuid,
    members: &[Member],
    formed_at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let members: Vec<Uuid> = members.iter().map(|m| m.learner_id).collect();
    sqlx::query(
        "INSERT INTO groups (group_id, pool_id, organization_id, members, formed_at) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (group_id) DO NOTHING",
    )
    .bind(group)
    .bind(pool)
    .bind(organization)
    .bind(&members)
    .bind(formed_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The task as it now stands (added or updated).
async fn upsert_task(
    conn: &mut PgConnection,
    group: Uuid,
    task_id: Uuid,
    task: &Task,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO tasks (task_id, group_id, project_id, title, assignee, state, due, \
             created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) \
         ON CONFLICT (task_id) DO UPDATE SET title = $4, assignee = $5, state = $6, due = $7, \
             updated_at = $8",
    )
    .bind(task_id)
    .bind(group)
    .bind(task.project_id)
    .bind(&task.title)
    .bind(task.assignee)
    .bind(task.state.as_str())
    .bind(task.due)
    .bind(at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn apply_webhooks(
    conn: &mut PgConnection,
    event: &RecordedEvent,
) -> Result<(), ProjectionError> {
    let decoded = WebhookEvent::from_payload(&event.event_type, event.payload.clone())
        .map_err(|e| ProjectionError::apply(event, e.to_string()))?;
    let pool = event.stream_id.id();
    match decoded {
        WebhookEvent::WebhookRegistered {
            webhook_id,
            url,
            registered_by,
        } => {
            let organization = ProjectionError::tenant_of(event)?;
            sqlx::query(
                "INSERT INTO webhooks (webhook_id, pool_id, organization_id, url, registered_by, \
                     registered_at) VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (webhook_id) DO NOTHING",
            )
            .bind(webhook_id)
            .bind(pool)
            .bind(organization)
            .bind(url)
            .bind(registered_by)
            .bind(event.recorded_at)
            .execute(&mut *conn)
            .await?;
        }
        WebhookEvent::WebhookRemoved { webhook_id, .. } => {
            sqlx::query("UPDATE webhooks SET removed_at = $2 WHERE webhook_id = $1")
                .bind(webhook_id)
                .bind(event.recorded_at)
                .execute(&mut *conn)
                .await?;
        }
    }
    sqlx::query(
        "INSERT INTO webhook_sets (pool_id, version) VALUES ($1, $2) \
         ON CONFLICT (pool_id) DO UPDATE SET version = $2",
    )
    .bind(pool)
    .bind(event.stream_version as i64)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn bump(
    conn: &mut PgConnection,
    pool: Uuid,
    version: i64,
    queue: i32,
    groups: i32,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE pools SET queue_size = queue_size + $2, groups_formed = groups_formed + $3, \
         version = $4 WHERE pool_id = $1",
    )
    .bind(pool)
    .bind(queue)
    .bind(groups)
    .bind(version)
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
    /// Whether its curriculum is generated (it may have no steps).
    pub curriculum_ready: bool,
}

/// The organization's groups matching `filter` (SQL over `g` and the id `$2`), in `order`.
async fn groups(
    db: &PgPool,
    organization_id: Uuid,
    filter: &str,
    id: Uuid,
    order: &str,
) -> Result<Vec<GroupRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT g.group_id AS id, g.pool_id, p.name AS pool_name, g.members, g.formed_at, \
                g.curriculum_ready \
         FROM {GROUPS_TABLE} g JOIN {POOLS_TABLE} p USING (pool_id) \
         WHERE g.organization_id = $1 AND {filter} ORDER BY {order}"
    ))
    .bind(organization_id)
    .bind(id)
    .fetch_all(db)
    .await
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
    let order = "g.formed_at, g.group_id";
    groups(db, organization_id, "g.pool_id = $2", pool_id, order).await
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
    let order = "g.formed_at DESC, g.group_id";
    groups(
        db,
        organization_id,
        "g.members @> ARRAY[$2]",
        learner_id,
        order,
    )
    .await
}

/// One step of a group's curriculum as a member sees it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct StepRow {
    /// Its group.
    pub group_id: Uuid,
    /// Step id.
    pub id: Uuid,
    /// Title.
    pub title: String,
    /// `atom` or `resource`.
    pub kind: String,
    /// The atom's or resource's id.
    pub ref_id: Uuid,
    /// The skill it teaches.
    pub skill_id: Option<Uuid>,
    /// Estimated minutes.
    pub minutes: i32,
    /// The member skips it (has the skill).
    pub skipped: bool,
    /// The member marked it done.
    pub done: bool,
}

/// The curricula of `groups` as `learner_id` sees them, each group's steps in order (one
/// query for all of them).
///
/// # Errors
/// Database failures.
pub async fn curricula(
    db: &PgPool,
    groups: &[Uuid],
    learner_id: Uuid,
) -> Result<Vec<StepRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT s.group_id, s.step_id AS id, s.title, s.kind, s.ref_id, s.skill_id, s.minutes, \
                $2 = ANY(s.skipped_by) AS skipped, d.learner_id IS NOT NULL AS done \
         FROM rm_cohort_pools.group_steps s \
         LEFT JOIN rm_cohort_pools.steps_done d \
           ON d.group_id = s.group_id AND d.step_id = s.step_id AND d.learner_id = $2 \
         WHERE s.group_id = ANY($1) ORDER BY s.group_id, s.position",
    )
    .bind(groups)
    .bind(learner_id)
    .fetch_all(db)
    .await
}

/// Commands on a group are visible once this read model applied them.
impl trellis_runtime::Shows<CohortGroup> for CohortPools {
    const TABLE: &'static str = GROUPS_TABLE;
    const ID_COLUMN: &'static str = "group_id";
}

/// Commands on a pool are visible once this read model applied them.
impl trellis_runtime::Shows<trellis_cohorts::pool::CohortPool> for CohortPools {
    const TABLE: &'static str = POOLS_TABLE;
    const ID_COLUMN: &'static str = "pool_id";
}

/// Commands on a pool's webhooks are visible once this read model applied them.
impl trellis_runtime::Shows<PoolWebhooks> for CohortPools {
    const TABLE: &'static str = "rm_cohort_pools.webhook_sets";
    const ID_COLUMN: &'static str = "pool_id";
}

/// A project of a group's workspace with its tasks.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct ProjectRow {
    /// Id.
    pub id: Uuid,
    /// Title.
    pub title: String,
    /// The member who started it.
    pub created_by: Uuid,
    /// When.
    pub created_at: DateTime<Utc>,
    /// Its tasks, oldest first: `[{id, title, assignee, state, due, updated_at}]`.
    pub tasks: serde_json::Value,
}

/// The workspace of group `group_id`: its projects, oldest first, each with its tasks (one
/// query).
///
/// # Errors
/// Database failures.
pub async fn workspace(db: &PgPool, group_id: Uuid) -> Result<Vec<ProjectRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT p.project_id AS id, p.title, p.created_by, p.created_at, \
                COALESCE(jsonb_agg(jsonb_build_object('id', t.task_id, 'title', t.title, \
                    'assignee', t.assignee, 'state', t.state, 'due', t.due, \
                    'updated_at', t.updated_at) ORDER BY t.created_at, t.task_id) \
                    FILTER (WHERE t.task_id IS NOT NULL), '[]') AS tasks \
         FROM rm_cohort_pools.projects p \
         LEFT JOIN rm_cohort_pools.tasks t ON t.project_id = p.project_id \
         WHERE p.group_id = $1 GROUP BY p.project_id ORDER BY p.created_at, p.project_id",
    )
    .bind(group_id)
    .fetch_all(db)
    .await
}

/// The organization's group `id` (any pool).
///
/// # Errors
/// Database failures.
pub async fn group(
    db: &PgPool,
    organization_id: Uuid,
    id: Uuid,
) -> Result<Option<GroupRow>, sqlx::Error> {
    // At most one row: the id is the key.
    Ok(
        groups(db, organization_id, "g.group_id = $2", id, "g.group_id")
            .await?
            .pop(),
    )
}

/// A pool's webhook (never its secret).
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct WebhookRow {
    /// Id.
    pub id: Uuid,
    /// Where events go.
    pub url: String,
    /// Who registered it.
    pub registered_by: Uuid,
    /// When.
    pub registered_at: DateTime<Utc>,
}

/// The active webhooks of the organization's pool `pool_id`, oldest first.
///
/// # Errors
/// Database failures.
pub async fn webhooks(
    db: &PgPool,
    organization_id: Uuid,
    pool_id: Uuid,
) -> Result<Vec<WebhookRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT webhook_id AS id, url, registered_by, registered_at \
         FROM rm_cohort_pools.webhooks \
         WHERE organization_id = $1 AND pool_id = $2 AND removed_at IS NULL \
         ORDER BY registered_at, webhook_id",
    )
    .bind(organization_id)
    .bind(pool_id)
    .fetch_all(db)
    .await
}

/// Whether `webhook_id` (active or removed) belongs to the organization's pool `pool_id`.
///
/// # Errors
/// Database failures.
pub async fn webhook_of_pool(
    db: &PgPool,
    organization_id: Uuid,
    pool_id: Uuid,
    webhook_id: Uuid,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM rm_cohort_pools.webhooks \
         WHERE organization_id = $1 AND pool_id = $2 AND webhook_id = $3)",
    )
    .bind(organization_id)
    .bind(pool_id)
    .bind(webhook_id)
    .fetch_one(db)
    .await
}
