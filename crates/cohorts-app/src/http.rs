//! The cohorts context over HTTP (SPEC §5): pools and their match queue, groups with their
//! curricula and workspaces, and pools' webhooks.
//!
//! Pools: `POST /v1/cohorts/pools` (admin, instructor), `GET /v1/cohorts/pools/{id}`,
//! `POST /v1/cohorts/pools/{id}/close`, `POST|DELETE /v1/cohorts/pools/{id}/queue` (learner),
//! `GET /v1/cohorts/pools/{id}/groups`. Members: `GET /v1/me/groups`, `DELETE
//! /v1/me/groups/{id}` (leave), steps done. Workspaces: `/v1/cohorts/groups/{id}/projects`,
//! their tasks. Webhooks: `/v1/cohorts/pools/{id}/webhooks` and their delivery log.
//! Another organization's pool or group answers 404 to everything.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get, patch, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use trellis_cohorts::group::{CohortGroup, GroupCommand, GroupError, TaskChanges, TaskState};
use trellis_cohorts::pool::{CohortPool, PoolCommand, PoolError};
use trellis_cohorts::webhooks::{PoolWebhooks, WebhookCommand, WebhookError};
use trellis_cohorts::{BatchRule, Criterion, Day, GroupSize, LearnerProfile, Mode, SkillLevel};
use trellis_edge::Edge;
use trellis_edge::consistency::MinVersion;
use trellis_edge::error::{ApiError, from_handle, from_use_case};
use trellis_edge::extract::{ApiJson, ApiPath, ApiQuery, Caller, RequestId};
use trellis_edge::policy;
use trellis_edge::schema::Accepted;
use trellis_identity::Role;
use trellis_kernel::Aggregate;
use trellis_runtime::Shows;
use uuid::Uuid;

use crate::pools::{self, CohortPools};

/// The context's routes over `edge`.
pub fn router(edge: &Edge) -> Router {
    Router::new()
        .route("/v1/cohorts/pools", post(create))
        .route("/v1/cohorts/pools/{id}", get(read))
        .route("/v1/cohorts/pools/{id}/close", post(close))
        .route("/v1/cohorts/pools/{id}/queue", post(join).delete(leave))
        .route("/v1/cohorts/pools/{id}/groups", get(pool_groups))
        .route(
            "/v1/cohorts/pools/{id}/webhooks",
            post(register_webhook).get(list_webhooks),
        )
        .route(
            "/v1/cohorts/pools/{id}/webhooks/{webhook_id}",
            delete(remove_webhook),
        )
        .route(
            "/v1/cohorts/pools/{id}/webhooks/{webhook_id}/deliveries",
            get(webhook_deliveries),
        )
        .route(
            "/v1/cohorts/groups/{id}/projects",
            post(create_project).get(list_projects),
        )
        .route(
            "/v1/cohorts/groups/{id}/projects/{project_id}/tasks",
            post(add_task),
        )
        .route(
            "/v1/cohorts/groups/{id}/tasks/{task_id}",
            patch(update_task),
        )
        .route("/v1/me/groups", get(my_groups))
        .route("/v1/me/groups/{id}", delete(leave_group))
        .route(
            "/v1/me/groups/{id}/steps/{step_id}/done",
            post(complete_step),
        )
        .with_state(edge.clone())
}

/// The context's operations, for the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    create,
    read,
    close,
    join,
    leave,
    pool_groups,
    my_groups,
    leave_group,
    complete_step,
    create_project,
    list_projects,
    add_task,
    update_task,
    register_webhook,
    list_webhooks,
    remove_webhook,
    webhook_deliveries
))]
pub struct CohortsApi;

/// The caller's organization's pool `id` (404 for any other).
async fn pool_of(edge: &Edge, caller: &Caller, id: Uuid) -> Result<pools::PoolRow, ApiError> {
    pools::pool(&edge.pool, caller.organization_id, id)
        .await?
        .ok_or(ApiError::NotFound)
}

/// The caller's organization's pool `id` (404 for any other), for its admins and
/// instructors (403 for anyone else of the organization).
async fn staff_pool(edge: &Edge, caller: &Caller, id: Uuid) -> Result<pools::PoolRow, ApiError> {
    let pool = pool_of(edge, caller, id).await?;
    policy::require_any(caller, &STAFF)?;
    Ok(pool)
}

/// Who runs pools.
const STAFF: [Role; 2] = [Role::Admin, Role::Instructor];

fn pool_error(error: PoolError) -> ApiError {
    match error {
        PoolError::Field(e) => ApiError::field(&e.field, e.reason),
        PoolError::NotFound => ApiError::NotFound,
        PoolError::AlreadyExists
        | PoolError::Closed
        | PoolError::AlreadyQueued
        | PoolError::AlreadyPlaced => ApiError::Conflict(error.to_string()),
        other => ApiError::internal(other),
    }
}

/// Group sizes.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct GroupSizeForm {
    /// At least 2.
    #[schema(minimum = 2, maximum = 50)]
    min: u32,
    /// At least `min`, at most 50.
    #[schema(minimum = 2, maximum = 50)]
    max: u32,
}

/// One weighted criterion.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CriterionForm {
    /// `skills`, `goals`, `timezone`, `availability`, or a custom answer `answers.<key>`.
    #[schema(pattern = "^(skills|goals|timezone|availability|answers\\.[a-z0-9_]{1,40})$")]
    attribute: String,
    /// `similar` or `diverse`.
    #[schema(value_type = String, pattern = "^(similar|diverse)$")]
    mode: Mode,
    /// 0 to 1.
    #[schema(minimum = 0, maximum = 1)]
    weight: f64,
}

/// When a batch forms.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct BatchForm {
    /// As soon as this many learners queue (2 to 10,000, at least `group_size.min`).
    #[schema(minimum = 2, maximum = 10000)]
    min_queue: u32,
    /// Or when the oldest has waited this long (1 s to 7 days).
    #[schema(minimum = 1, maximum = 604800)]
    max_wait_seconds: u32,
}

/// `POST /v1/cohorts/pools`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreatePool {
    /// 1 to 200 characters, one line.
    #[schema(min_length = 1, max_length = 200, format = "trellis:nonblank-line")]
    name: String,
    group_size: GroupSizeForm,
    /// At most 20, each attribute once.
    #[serde(default)]
    #[schema(max_items = 20)]
    criteria: Vec<CriterionForm>,
    batch: BatchForm,
}

/// Create a cohort pool (admin, instructor).
#[utoipa::path(post, path = "/v1/cohorts/pools", tag = "cohorts", operation_id = "createPool",
    request_body = CreatePool, security(("bearer" = [])),
    responses(
        (status = 201, description = "Created", body = Accepted),
        (status = 403, description = "Not an admin or instructor"),
        (status = 422, description = "Invalid sizes, criteria or batch rule, naming the field"),
    ))]
pub(crate) async fn create(
    State(edge): State<Edge>,
    caller: Caller,
    request: RequestId,
    ApiJson(body): ApiJson<CreatePool>,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    caller.spend_write(&edge)?;
    policy::require_any(&caller, &STAFF)?;
    let id = Uuid::now_v7();
    let command = PoolCommand::Create {
        name: body.name,
        group_size: GroupSize {
            min: body.group_size.min,
            max: body.group_size.max,
        },
        criteria: body
            .criteria
            .into_iter()
            .map(|c| Criterion {
                attribute: c.attribute,
                mode: c.mode,
                weight: c.weight,
            })
            .collect(),
        batch: BatchRule {
            min_queue: body.batch.min_queue,
            max_wait_seconds: body.batch.max_wait_seconds,
        },
        created_by: caller.user_id,
    };
    let written = run::<CohortPool>(&edge, &caller, &request, id, &command, pool_error).await?;
    Ok((
        StatusCode::CREATED,
        Json(Accepted {
            id,
            version: written.version,
        }),
    ))
}

/// Close a pool (admin, instructor): nobody joins any more and no batch forms; queued
/// learners stay unplaced. Closing a closed pool changes nothing.
#[utoipa::path(post, path = "/v1/cohorts/pools/{id}/close", tag = "cohorts", operation_id = "closePool",
    params(("id" = Uuid, Path, description = "Pool id")), security(("bearer" = [])),
    responses(
        (status = 200, description = "Closed: the pool's stream version", body = Accepted),
        (status = 403, description = "Not an admin or instructor"),
        (status = 404, description = "No such pool in your organization"),
    ))]
pub(crate) async fn close(
    State(edge): State<Edge>,
    caller: Caller,
    request: RequestId,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<Accepted>, ApiError> {
    caller.spend_write(&edge)?;
    staff_pool(&edge, &caller, id).await?;
    let command = PoolCommand::Close {
        closed_by: caller.user_id,
    };
    let written = run::<CohortPool>(&edge, &caller, &request, id, &command, pool_error).await?;
    Ok(Json(Accepted {
        id,
        version: written.version,
    }))
}

/// Your ticket in a pool.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct TicketView {
    /// The ticket.
    ticket_id: Uuid,
    /// `queued`, `left` or `placed`.
    status: String,
    /// Why the last batch left it queued.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    reason: Option<String>,
}

/// A pool.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct PoolView {
    /// Id.
    id: Uuid,
    /// Name.
    name: String,
    /// `{min, max}`.
    #[schema(value_type = Object)]
    group_size: serde_json::Value,
    /// `[{attribute, mode, weight}]`.
    #[schema(value_type = Vec<Object>)]
    criteria: serde_json::Value,
    /// `{min_queue, max_wait_seconds}`.
    #[schema(value_type = Object)]
    batch: serde_json::Value,
    /// `open` or `closed`.
    status: String,
    /// Learners queued now.
    queue_size: i32,
    /// Groups formed so far.
    groups_formed: i32,
    /// Stream version.
    version: i64,
    /// Your latest ticket, if you joined.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    your_ticket: Option<TicketView>,
}

/// A pool of your organization: settings, status, queue size and your ticket.
#[utoipa::path(get, path = "/v1/cohorts/pools/{id}", tag = "cohorts", operation_id = "readPool",
    params(("id" = Uuid, Path, description = "Pool id"),
           ("min_version" = Option<u64>, Query, minimum = 0,
               description = "Wait (bounded) until this stream version is visible")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The pool", body = PoolView),
        (status = 404, description = "No such pool in your organization"),
    ))]
pub(crate) async fn read(
    State(edge): State<Edge>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(consistency): ApiQuery<MinVersion>,
) -> Result<Json<PoolView>, ApiError> {
    settle::<CohortPool>(&edge, &caller, id, &consistency).await?;
    let row = pool_of(&edge, &caller, id).await?;
    let ticket = pools::ticket_of(&edge.pool, id, caller.user_id).await?;
    Ok(Json(PoolView {
        id: row.id,
        name: row.name,
        group_size: row.group_size,
        criteria: row.criteria,
        batch: row.batch,
        status: if row.closed { "closed" } else { "open" }.to_owned(),
        queue_size: row.queue_size,
        groups_formed: row.groups_formed,
        version: row.version,
        your_ticket: ticket.map(|(ticket_id, status, reason)| TicketView {
            ticket_id,
            status,
            reason,
        }),
    }))
}

/// A skill with a level.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SkillForm {
    /// A skill of your catalog.
    skill_id: Uuid,
    /// 1 to 5.
    #[schema(minimum = 1, maximum = 5)]
    level: u8,
}

/// A weekly slot in UTC.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SlotForm {
    /// `mon` … `sun`.
    #[schema(value_type = String, pattern = "^(mon|tue|wed|thu|fri|sat|sun)$")]
    day: Day,
    /// `HH:MM`.
    #[schema(pattern = "^([01][0-9]|2[0-3]):[0-5][0-9]$")]
    start: String,
    /// `HH:MM` after `start` (`24:00` allowed).
    #[schema(pattern = "^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$")]
    end: String,
}

/// `POST /v1/cohorts/pools/{id}/queue`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct JoinQueue {
    /// Your skills with levels (at most 50, each once).
    #[serde(default)]
    #[schema(max_items = 50)]
    skills: Vec<SkillForm>,
    /// What you want to learn.
    #[schema(min_length = 1, max_length = 2000, format = "trellis:text")]
    goals: String,
    /// Your IANA time zone, e.g. `Europe/Lisbon`.
    #[schema(min_length = 1, max_length = 64)]
    timezone: String,
    /// When you are available each week, in UTC (1 to 42 slots).
    #[schema(min_items = 1, max_items = 42)]
    availability: Vec<SlotForm>,
    /// Answers to the pool's custom attributes (`answers.<key>` criteria): keys of 1 to 40
    /// of `a-z`, `0-9`, `_`, each a one-line answer of at most 200 characters.
    #[serde(default)]
    #[schema(value_type = AnswersMap)]
    answers: std::collections::BTreeMap<String, String>,
}

/// The `answers` object in the document (documentation only: the request holds a map).
pub(crate) struct AnswersMap;

impl utoipa::PartialSchema for AnswersMap {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, SchemaFormat, Type};
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .max_properties(Some(20))
            .property_names(Some(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some("^[a-z0-9_]{1,40}$")),
            ))
            .additional_properties(Some(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .max_length(Some(200))
                    .format(Some(SchemaFormat::Custom("trellis:line".into()))),
            ))
            .into()
    }
}

impl utoipa::ToSchema for AnswersMap {}

/// A queued ticket.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct Queued {
    /// Your ticket.
    ticket_id: Uuid,
    /// `queued`.
    status: &'static str,
    /// The pool's stream version after the join.
    version: u64,
}

/// Join a pool's match queue (learner): you are placed in a group when a batch forms.
#[utoipa::path(post, path = "/v1/cohorts/pools/{id}/queue", tag = "cohorts", operation_id = "joinMatchQueue",
    request_body = JoinQueue, params(("id" = Uuid, Path, description = "Pool id")),
    security(("bearer" = [])),
    responses(
        (status = 202, description = "Queued", body = Queued),
        (status = 403, description = "Not a learner"),
        (status = 404, description = "No such pool in your organization"),
        (status = 409, description = "Already queued, or the pool is closed"),
        (status = 422, description = "Unknown skills, an invalid time zone or slot, a missing answer"),
    ))]
pub(crate) async fn join(
    State(edge): State<Edge>,
    caller: Caller,
    request: RequestId,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<JoinQueue>,
) -> Result<(StatusCode, Json<Queued>), ApiError> {
    caller.spend_write(&edge)?;
    pool_of(&edge, &caller, id).await?;
    policy::require_any(&caller, &[Role::Learner])?;
    let ids: Vec<Uuid> = body.skills.iter().map(|s| s.skill_id).collect();
    trellis_development_app::idps::check_known_skills(
        &edge.pool,
        caller.organization_id,
        &ids,
        |i| format!("skills[{i}].skill_id"),
    )
    .await
    .map_err(|e| from_use_case(e, |never: std::convert::Infallible| match never {}))?;
    let ticket_id = Uuid::now_v7();
    let command = PoolCommand::Join {
        ticket_id,
        learner_id: caller.user_id,
        profile: LearnerProfile {
            skills: body
                .skills
                .iter()
                .map(|s| SkillLevel {
                    skill_id: s.skill_id,
                    level: s.level,
                })
                .collect(),
            goals: body.goals,
            timezone: body.timezone,
            availability: body
                .availability
                .into_iter()
                .map(|s| trellis_cohorts::Slot {
                    day: s.day,
                    start: s.start,
                    end: s.end,
                })
                .collect(),
            answers: body.answers,
        },
        joined_at: chrono::Utc::now(),
    };
    let written = run::<CohortPool>(&edge, &caller, &request, id, &command, pool_error).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(Queued {
            ticket_id,
            status: "queued",
            version: written.version,
        }),
    ))
}

/// Leave a pool's match queue (learner). Not queued: nothing to do (204); already placed in
/// a group: 409.
#[utoipa::path(delete, path = "/v1/cohorts/pools/{id}/queue", tag = "cohorts", operation_id = "leaveMatchQueue",
    params(("id" = Uuid, Path, description = "Pool id")), security(("bearer" = [])),
    responses(
        (status = 204, description = "Not queued any more"),
        (status = 404, description = "No such pool in your organization"),
        (status = 409, description = "Placed in a group already"),
    ))]
pub(crate) async fn leave(
    State(edge): State<Edge>,
    caller: Caller,
    request: RequestId,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<StatusCode, ApiError> {
    caller.spend_write(&edge)?;
    pool_of(&edge, &caller, id).await?;
    let command = PoolCommand::Leave {
        learner_id: caller.user_id,
    };
    run::<CohortPool>(&edge, &caller, &request, id, &command, pool_error).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A formed group.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct GroupView {
    /// Id.
    id: Uuid,
    /// Its pool.
    pool_id: Uuid,
    /// The pool's name.
    pool_name: String,
    /// Members (user ids).
    members: Vec<Uuid>,
    /// Members with their display names, in the order of `members`.
    roster: Vec<MemberView>,
    /// When the batch formed it.
    formed_at: chrono::DateTime<chrono::Utc>,
}

/// A member with their display name.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct MemberView {
    /// User id.
    user_id: Uuid,
    /// Their display name (empty if the user is gone).
    display_name: String,
}

/// `rows` as the API shows them, with every member's display name (one query).
async fn group_views(
    edge: &Edge,
    organization_id: Uuid,
    rows: Vec<pools::GroupRow>,
) -> Result<Vec<(GroupView, bool)>, ApiError> {
    let people: Vec<Uuid> = rows
        .iter()
        .flat_map(|g| g.members.iter().copied())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let names = edge
        .sessions
        .display_names(organization_id, &people)
        .await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let roster = row
                .members
                .iter()
                .map(|m| MemberView {
                    user_id: *m,
                    display_name: names.get(m).cloned().unwrap_or_default(),
                })
                .collect();
            (
                GroupView {
                    id: row.id,
                    pool_id: row.pool_id,
                    pool_name: row.pool_name,
                    members: row.members,
                    roster,
                    formed_at: row.formed_at,
                },
                row.curriculum_ready,
            )
        })
        .collect())
}

/// The groups a pool's batches formed (admin, instructor).
#[utoipa::path(get, path = "/v1/cohorts/pools/{id}/groups", tag = "cohorts", operation_id = "listPoolGroups",
    params(("id" = Uuid, Path, description = "Pool id")), security(("bearer" = [])),
    responses(
        (status = 200, description = "Groups, oldest first", body = Vec<GroupView>),
        (status = 403, description = "Not an admin or instructor"),
        (status = 404, description = "No such pool in your organization"),
    ))]
pub(crate) async fn pool_groups(
    State(edge): State<Edge>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<Vec<GroupView>>, ApiError> {
    staff_pool(&edge, &caller, id).await?;
    let rows = pools::groups_of_pool(&edge.pool, caller.organization_id, id).await?;
    let views = group_views(&edge, caller.organization_id, rows).await?;
    Ok(Json(views.into_iter().map(|(view, _)| view).collect()))
}

/// A step of your group's curriculum.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct StepView {
    /// Step id.
    id: Uuid,
    /// Title.
    title: String,
    /// `atom` or `resource`.
    kind: String,
    /// The atom's or resource's id.
    ref_id: Uuid,
    /// The skill it teaches.
    #[schema(nullable = true)]
    skill_id: Option<Uuid>,
    /// Estimated minutes.
    minutes: i32,
    /// You skip it: you have its skill already.
    skipped: bool,
    /// You marked it done.
    done: bool,
}

/// Your progress through your group's curriculum.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct Progress {
    /// Steps you marked done.
    done: usize,
    /// Steps for you (the curriculum less the ones you skip).
    total: usize,
}

/// One of your groups with your curriculum.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct MyGroupView {
    #[serde(flatten)]
    group: GroupView,
    /// Your curriculum, in order (null until the curriculum service generated it).
    #[schema(nullable = true)]
    curriculum: Option<Vec<StepView>>,
    /// Your progress (null until the curriculum exists).
    #[schema(nullable = true)]
    progress: Option<Progress>,
}

/// The groups you are a member of, newest first, each with your curriculum and progress.
#[utoipa::path(get, path = "/v1/me/groups", tag = "cohorts", operation_id = "listMyGroups",
    security(("bearer" = [])),
    responses((status = 200, description = "Your groups, newest first", body = Vec<MyGroupView>)))]
pub(crate) async fn my_groups(
    State(edge): State<Edge>,
    caller: Caller,
) -> Result<Json<Vec<MyGroupView>>, ApiError> {
    let rows = pools::groups_of_member(&edge.pool, caller.organization_id, caller.user_id).await?;
    let ids: Vec<Uuid> = rows.iter().map(|g| g.id).collect();
    let mut steps: std::collections::HashMap<Uuid, Vec<StepView>> = Default::default();
    for s in pools::curricula(&edge.pool, &ids, caller.user_id).await? {
        steps.entry(s.group_id).or_default().push(StepView {
            id: s.id,
            title: s.title,
            kind: s.kind,
            ref_id: s.ref_id,
            skill_id: s.skill_id,
            minutes: s.minutes,
            skipped: s.skipped,
            done: s.done,
        });
    }
    let views = group_views(&edge, caller.organization_id, rows).await?;
    Ok(Json(
        views
            .into_iter()
            .map(|(group, curriculum_ready)| {
                let curriculum =
                    curriculum_ready.then(|| steps.remove(&group.id).unwrap_or_default());
                let progress = curriculum.as_ref().map(|steps| Progress {
                    done: steps.iter().filter(|s| s.done && !s.skipped).count(),
                    total: steps.iter().filter(|s| !s.skipped).count(),
                });
                MyGroupView {
                    group,
                    curriculum,
                    progress,
                }
            })
            .collect(),
    ))
}

/// Mark a step of your group's curriculum done (again: no change).
#[utoipa::path(post, path = "/v1/me/groups/{id}/steps/{step_id}/done", tag = "cohorts",
    operation_id = "completeGroupStep",
    params(("id" = Uuid, Path, description = "Group id"), ("step_id" = Uuid, Path, description = "Step id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Done: the group's stream version", body = Accepted),
        (status = 404, description = "Not one of your groups, or no such step"),
    ))]
pub(crate) async fn complete_step(
    State(edge): State<Edge>,
    caller: Caller,
    request: RequestId,
    ApiPath((id, step_id)): ApiPath<(Uuid, Uuid)>,
) -> Result<Json<Accepted>, ApiError> {
    // Only members complete steps (another organization's user is never one): the group
    // answers NotAMember, a 404.
    let command = GroupCommand::CompleteStep {
        learner_id: caller.user_id,
        step_id,
    };
    let written = run_group(&edge, &caller, &request, id, command).await?;
    Ok(Json(Accepted {
        id,
        version: written.version,
    }))
}

/// Runs the caller's `command` on `A`'s stream `id`, answering with the version once the
/// read model shows it; `refused` turns the aggregate's rules into problems.
async fn run<A: Aggregate>(
    edge: &Edge,
    caller: &Caller,
    request: &RequestId,
    id: Uuid,
    command: &A::Command,
    refused: fn(A::Error) -> ApiError,
) -> Result<trellis_runtime::Written, ApiError>
where
    CohortPools: Shows<A>,
{
    edge.commands
        .run::<A, CohortPools>(id, command, &request.metadata(Some(caller)))
        .await
        .map_err(|e| from_handle(e, refused))
}

/// A read's `?min_version=`: waits (bounded) until the read model shows `A`'s stream `id` at
/// that version; another organization's stream is a 404 at once.
async fn settle<A: Aggregate>(
    edge: &Edge,
    caller: &Caller,
    id: Uuid,
    consistency: &MinVersion,
) -> Result<(), ApiError>
where
    CohortPools: Shows<A>,
{
    if let Some(version) = consistency.min_version {
        edge.commands
            .wait_in_organization::<A, CohortPools, std::convert::Infallible>(
                id,
                caller.organization_id,
                version,
            )
            .await
            .map_err(|e| from_use_case(e, |never| match never {}))?;
    }
    Ok(())
}

/// The caller's command on group `id` (counted against their write budget).
async fn run_group(
    edge: &Edge,
    caller: &Caller,
    request: &RequestId,
    id: Uuid,
    command: GroupCommand,
) -> Result<trellis_runtime::Written, ApiError> {
    caller.spend_write(edge)?;
    run::<CohortGroup>(edge, caller, request, id, &command, group_error).await
}

/// A group command's refusal: not the caller's group, step, project or task is a 404.
fn group_error(error: GroupError) -> ApiError {
    match error {
        GroupError::NotFound
        | GroupError::NotAMember
        | GroupError::NoSuchStep
        | GroupError::NoSuchProject
        | GroupError::NoSuchTask => ApiError::NotFound,
        GroupError::Field(e) => ApiError::field(&e.field, e.reason),
        other => ApiError::Conflict(other.to_string()),
    }
}

/// Leave one of your groups: you keep no place in it, its workspace and curriculum are no
/// longer yours. Leaving again changes nothing.
#[utoipa::path(delete, path = "/v1/me/groups/{id}", tag = "cohorts", operation_id = "leaveGroup",
    params(("id" = Uuid, Path, description = "Group id")), security(("bearer" = [])),
    responses(
        (status = 204, description = "Not a member any more"),
        (status = 404, description = "Not one of your groups"),
    ))]
pub(crate) async fn leave_group(
    State(edge): State<Edge>,
    caller: Caller,
    request: RequestId,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<StatusCode, ApiError> {
    let command = GroupCommand::Leave {
        learner_id: caller.user_id,
    };
    run_group(&edge, &caller, &request, id, command).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The caller's organization's group `id` that they may read: a member's, or any group for
/// an admin or instructor (404 for anyone else: another organization's group, or a learner
/// who is not in it).
async fn readable_group(
    edge: &Edge,
    caller: &Caller,
    id: Uuid,
) -> Result<pools::GroupRow, ApiError> {
    let group = pools::group(&edge.pool, caller.organization_id, id)
        .await?
        .ok_or(ApiError::NotFound)?;
    if group.members.contains(&caller.user_id) || policy::require_any(caller, &STAFF).is_ok() {
        Ok(group)
    } else {
        Err(ApiError::NotFound)
    }
}

/// `POST /v1/cohorts/groups/{id}/projects`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateProject {
    /// 1 to 200 characters, one line.
    #[schema(min_length = 1, max_length = 200, format = "trellis:nonblank-line")]
    title: String,
}

/// Start a project in your group's workspace (members).
#[utoipa::path(post, path = "/v1/cohorts/groups/{id}/projects", tag = "cohorts",
    operation_id = "createGroupProject", request_body = CreateProject,
    params(("id" = Uuid, Path, description = "Group id")), security(("bearer" = [])),
    responses(
        (status = 201, description = "Created: the project's id and the group's version", body = Accepted),
        (status = 404, description = "Not one of your groups"),
        (status = 409, description = "The workspace holds 50 projects already"),
        (status = 422, description = "Invalid title"),
    ))]
pub(crate) async fn create_project(
    State(edge): State<Edge>,
    caller: Caller,
    request: RequestId,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<CreateProject>,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    let project_id = Uuid::now_v7();
    let command = GroupCommand::CreateProject {
        project_id,
        title: body.title,
        by: caller.user_id,
    };
    let written = run_group(&edge, &caller, &request, id, command).await?;
    Ok((
        StatusCode::CREATED,
        Json(Accepted {
            id: project_id,
            version: written.version,
        }),
    ))
}

/// A task of a project.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct TaskView {
    /// Id.
    id: Uuid,
    /// Title.
    title: String,
    /// The member doing it.
    #[schema(nullable = true)]
    assignee: Option<Uuid>,
    /// `todo`, `doing` or `done`.
    #[schema(pattern = "^(todo|doing|done)$")]
    state: String,
    /// Due date.
    #[schema(nullable = true)]
    due: Option<chrono::NaiveDate>,
    /// Last change.
    updated_at: chrono::DateTime<chrono::Utc>,
}

/// A project with its tasks.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct ProjectView {
    /// Id.
    id: Uuid,
    /// Title.
    title: String,
    /// The member who started it.
    created_by: Uuid,
    /// When.
    created_at: chrono::DateTime<chrono::Utc>,
    /// Tasks, oldest first.
    #[schema(value_type = Vec<TaskView>)]
    tasks: serde_json::Value,
}

/// A group's workspace: its projects with their tasks, oldest first (members, and admins and
/// instructors of the organization).
#[utoipa::path(get, path = "/v1/cohorts/groups/{id}/projects", tag = "cohorts",
    operation_id = "listGroupProjects",
    params(("id" = Uuid, Path, description = "Group id"),
           ("min_version" = Option<u64>, Query, minimum = 0,
               description = "Wait (bounded) until this stream version is visible")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Projects with their tasks", body = Vec<ProjectView>),
        (status = 404, description = "No such group you may read"),
    ))]
pub(crate) async fn list_projects(
    State(edge): State<Edge>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(consistency): ApiQuery<MinVersion>,
) -> Result<Json<Vec<ProjectView>>, ApiError> {
    settle::<CohortGroup>(&edge, &caller, id, &consistency).await?;
    readable_group(&edge, &caller, id).await?;
    let rows = pools::workspace(&edge.pool, id).await?;
    Ok(Json(
        rows.into_iter()
            .map(|p| ProjectView {
                id: p.id,
                title: p.title,
                created_by: p.created_by,
                created_at: p.created_at,
                tasks: p.tasks,
            })
            .collect(),
    ))
}

/// `POST /v1/cohorts/groups/{id}/projects/{project_id}/tasks`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AddTask {
    /// 1 to 200 characters, one line.
    #[schema(min_length = 1, max_length = 200, format = "trellis:nonblank-line")]
    title: String,
    /// A member of the group.
    #[serde(default)]
    #[schema(nullable = true)]
    assignee: Option<Uuid>,
    /// `YYYY-MM-DD`.
    #[serde(default)]
    #[schema(nullable = true)]
    due: Option<chrono::NaiveDate>,
}

/// Add a task to a project of your group's workspace (members); it starts `todo`.
#[utoipa::path(post, path = "/v1/cohorts/groups/{id}/projects/{project_id}/tasks", tag = "cohorts",
    operation_id = "addGroupTask", request_body = AddTask,
    params(("id" = Uuid, Path, description = "Group id"), ("project_id" = Uuid, Path, description = "Project id")),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Added: the task's id and the group's version", body = Accepted),
        (status = 404, description = "Not one of your groups, or no such project"),
        (status = 409, description = "The workspace holds 1,000 tasks already"),
        (status = 422, description = "Invalid title, or an assignee who is not a member"),
    ))]
pub(crate) async fn add_task(
    State(edge): State<Edge>,
    caller: Caller,
    request: RequestId,
    ApiPath((id, project_id)): ApiPath<(Uuid, Uuid)>,
    ApiJson(body): ApiJson<AddTask>,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    let task_id = Uuid::now_v7();
    let command = GroupCommand::AddTask {
        project_id,
        task_id,
        title: body.title,
        assignee: body.assignee,
        due: body.due,
        by: caller.user_id,
    };
    let written = run_group(&edge, &caller, &request, id, command).await?;
    Ok((
        StatusCode::CREATED,
        Json(Accepted {
            id: task_id,
            version: written.version,
        }),
    ))
}

/// A present field, even `null` (absent stays `None`: unchanged).
fn present<'de, T, D>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    T: Deserialize<'de>,
    D: serde::Deserializer<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// `PATCH /v1/cohorts/groups/{id}/tasks/{task_id}`: absent fields stay as they are.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpdateTask {
    /// 1 to 200 characters, one line.
    #[schema(min_length = 1, max_length = 200, format = "trellis:nonblank-line")]
    title: Option<String>,
    /// A member of the group, or `null` for nobody.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Uuid>, nullable = true)]
    assignee: Option<Option<Uuid>>,
    /// `todo`, `doing` or `done`.
    #[schema(value_type = Option<String>, pattern = "^(todo|doing|done)$", nullable = false)]
    state: Option<TaskState>,
    /// `YYYY-MM-DD`, or `null` for none.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<chrono::NaiveDate>, nullable = true)]
    due: Option<Option<chrono::NaiveDate>>,
}

/// Change a task of your group's workspace (members): title, assignee, state, due date.
#[utoipa::path(patch, path = "/v1/cohorts/groups/{id}/tasks/{task_id}", tag = "cohorts",
    operation_id = "updateGroupTask", request_body = UpdateTask,
    params(("id" = Uuid, Path, description = "Group id"), ("task_id" = Uuid, Path, description = "Task id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Changed (or already so): the group's version", body = Accepted),
        (status = 404, description = "Not one of your groups, or no such task"),
        (status = 422, description = "Invalid title, or an assignee who is not a member"),
    ))]
pub(crate) async fn update_task(
    State(edge): State<Edge>,
    caller: Caller,
    request: RequestId,
    ApiPath((id, task_id)): ApiPath<(Uuid, Uuid)>,
    ApiJson(body): ApiJson<UpdateTask>,
) -> Result<Json<Accepted>, ApiError> {
    let command = GroupCommand::UpdateTask {
        task_id,
        changes: TaskChanges {
            title: body.title,
            assignee: body.assignee,
            state: body.state,
            due: body.due,
        },
        by: caller.user_id,
    };
    let written = run_group(&edge, &caller, &request, id, command).await?;
    Ok(Json(Accepted {
        id: task_id,
        version: written.version,
    }))
}

/// `POST /v1/cohorts/pools/{id}/webhooks`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RegisterWebhook {
    /// `https://` (or `http://`) URL that receives the pool's group events; no user name or
    /// password, no private address.
    #[schema(min_length = 8, max_length = 2000, pattern = "^https?://")]
    url: String,
}

/// A registered webhook, with its secret (shown this once).
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct RegisteredWebhook {
    /// Id.
    id: Uuid,
    /// The URL as stored.
    url: String,
    /// The HMAC-SHA256 key of `Trellis-Signature` (`sha256=<hex of HMAC(secret, body)>`).
    /// Shown only now: store it.
    secret: String,
    /// The pool's webhooks stream version.
    version: u64,
}

fn webhook_error(error: WebhookError) -> ApiError {
    match error {
        WebhookError::Field(e) => ApiError::field(&e.field, e.reason),
        WebhookError::NotFound => ApiError::NotFound,
        WebhookError::Duplicate => ApiError::Conflict(error.to_string()),
    }
}

/// Register a webhook (admin, instructor): every group event of the pool from now on
/// (`GroupsFormed`, `GroupOpened`, `CurriculumGenerated`, steps, members leaving, workspace
/// changes, `PoolClosed`) is POSTed to it as JSON, signed, retried with backoff.
#[utoipa::path(post, path = "/v1/cohorts/pools/{id}/webhooks", tag = "cohorts",
    operation_id = "registerPoolWebhook", request_body = RegisterWebhook,
    params(("id" = Uuid, Path, description = "Pool id")), security(("bearer" = [])),
    responses(
        (status = 201, description = "Registered; the secret is shown only now", body = RegisteredWebhook),
        (status = 403, description = "Not an admin or instructor"),
        (status = 404, description = "No such pool in your organization"),
        (status = 409, description = "The URL is registered already"),
        (status = 422, description = "An invalid or private URL, or ten webhooks already"),
    ))]
pub(crate) async fn register_webhook(
    State(edge): State<Edge>,
    caller: Caller,
    request: RequestId,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<RegisterWebhook>,
) -> Result<(StatusCode, Json<RegisteredWebhook>), ApiError> {
    caller.spend_write(&edge)?;
    staff_pool(&edge, &caller, id).await?;
    let url = crate::webhooks::check_target(&body.url, edge.config.webhooks_allow_private)
        .map_err(|e| ApiError::field(&e.field, e.reason))?;
    let webhook_id = Uuid::now_v7();
    // The secret first: an append that fails leaves an unused secret, never a webhook
    // without one.
    let secret = crate::webhooks::create_secret(&edge.pool, webhook_id, id).await?;
    let command = WebhookCommand::Register {
        webhook_id,
        url: url.clone(),
        registered_by: caller.user_id,
    };
    let written =
        run::<PoolWebhooks>(&edge, &caller, &request, id, &command, webhook_error).await?;
    Ok((
        StatusCode::CREATED,
        Json(RegisteredWebhook {
            id: webhook_id,
            url,
            secret,
            version: written.version,
        }),
    ))
}

/// A pool's webhook (without its secret).
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct WebhookView {
    /// Id.
    id: Uuid,
    /// Where events go.
    url: String,
    /// Who registered it.
    registered_by: Uuid,
    /// When.
    registered_at: chrono::DateTime<chrono::Utc>,
}

/// A pool's active webhooks, oldest first (admin, instructor).
#[utoipa::path(get, path = "/v1/cohorts/pools/{id}/webhooks", tag = "cohorts",
    operation_id = "listPoolWebhooks",
    params(("id" = Uuid, Path, description = "Pool id"),
           ("min_version" = Option<u64>, Query, minimum = 0,
               description = "Wait (bounded) until this stream version is visible")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Webhooks", body = Vec<WebhookView>),
        (status = 403, description = "Not an admin or instructor"),
        (status = 404, description = "No such pool in your organization"),
    ))]
pub(crate) async fn list_webhooks(
    State(edge): State<Edge>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(consistency): ApiQuery<MinVersion>,
) -> Result<Json<Vec<WebhookView>>, ApiError> {
    staff_pool(&edge, &caller, id).await?;
    settle::<PoolWebhooks>(&edge, &caller, id, &consistency).await?;
    let rows = pools::webhooks(&edge.pool, caller.organization_id, id).await?;
    Ok(Json(
        rows.into_iter()
            .map(|w| WebhookView {
                id: w.id,
                url: w.url,
                registered_by: w.registered_by,
                registered_at: w.registered_at,
            })
            .collect(),
    ))
}

/// Remove a webhook (admin, instructor): nothing more is sent to it, pending retries
/// included.
#[utoipa::path(delete, path = "/v1/cohorts/pools/{id}/webhooks/{webhook_id}", tag = "cohorts",
    operation_id = "removePoolWebhook",
    params(("id" = Uuid, Path, description = "Pool id"), ("webhook_id" = Uuid, Path, description = "Webhook id")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Removed"),
        (status = 403, description = "Not an admin or instructor"),
        (status = 404, description = "No such pool or webhook"),
    ))]
pub(crate) async fn remove_webhook(
    State(edge): State<Edge>,
    caller: Caller,
    request: RequestId,
    ApiPath((id, webhook_id)): ApiPath<(Uuid, Uuid)>,
) -> Result<StatusCode, ApiError> {
    caller.spend_write(&edge)?;
    staff_pool(&edge, &caller, id).await?;
    let command = WebhookCommand::Remove {
        webhook_id,
        removed_by: caller.user_id,
    };
    run::<PoolWebhooks>(&edge, &caller, &request, id, &command, webhook_error).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `?limit=` of the delivery log.
#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct DeliveriesQuery {
    /// 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<u32>,
}

/// A webhook's delivery log, newest event first, each with every attempt (admin,
/// instructor).
#[utoipa::path(get, path = "/v1/cohorts/pools/{id}/webhooks/{webhook_id}/deliveries", tag = "cohorts",
    operation_id = "listWebhookDeliveries",
    params(("id" = Uuid, Path, description = "Pool id"), ("webhook_id" = Uuid, Path, description = "Webhook id"), DeliveriesQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Deliveries", body = Vec<crate::webhooks::DeliveryView>),
        (status = 403, description = "Not an admin or instructor"),
        (status = 404, description = "No such pool or webhook"),
        (status = 422, description = "Invalid limit"),
    ))]
pub(crate) async fn webhook_deliveries(
    State(edge): State<Edge>,
    caller: Caller,
    ApiPath((id, webhook_id)): ApiPath<(Uuid, Uuid)>,
    ApiQuery(query): ApiQuery<DeliveriesQuery>,
) -> Result<Json<Vec<crate::webhooks::DeliveryView>>, ApiError> {
    staff_pool(&edge, &caller, id).await?;
    let limit = query.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::field("limit", "must be 1 to 200"));
    }
    // A webhook of another pool (or organization) is no webhook here.
    let known = pools::webhook_of_pool(&edge.pool, caller.organization_id, id, webhook_id).await?;
    if !known {
        return Err(ApiError::NotFound);
    }
    let rows = crate::webhooks::deliveries(
        &edge.pool,
        caller.organization_id,
        webhook_id,
        i64::from(limit),
    )
    .await?;
    Ok(Json(rows))
}
