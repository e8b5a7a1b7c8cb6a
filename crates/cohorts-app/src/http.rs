//! The cohorts context over HTTP (SPEC §5): pools and their match queue.
//!
//! `POST /v1/cohorts/pools` (admin, instructor), `GET /v1/cohorts/pools/{id}`,
//! `POST /v1/cohorts/pools/{id}/queue` (learner) and `DELETE /v1/cohorts/pools/{id}/queue`.
//! Another organization's pool answers 404 to everything.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use trellis_cohorts::group::{CohortGroup, GroupCommand, GroupError};
use trellis_cohorts::pool::{CohortPool, PoolCommand, PoolError};
use trellis_cohorts::{BatchRule, Criterion, Day, GroupSize, LearnerProfile, Mode, SkillLevel};
use trellis_edge::Edge;
use trellis_edge::error::{ApiError, from_handle, from_use_case};
use trellis_edge::extract::{ApiJson, ApiPath, Caller, RequestId};
use trellis_edge::policy;
use trellis_edge::schema::Accepted;
use trellis_identity::Role;
use uuid::Uuid;

use crate::pools::{self, CohortPools};

/// The context's routes over `edge`.
pub fn router(edge: &Edge) -> Router {
    Router::new()
        .route("/v1/cohorts/pools", post(create))
        .route("/v1/cohorts/pools/{id}", get(read))
        .route("/v1/cohorts/pools/{id}/queue", post(join).delete(leave))
        .route("/v1/cohorts/pools/{id}/groups", get(pool_groups))
        .route("/v1/me/groups", get(my_groups))
        .route(
            "/v1/me/groups/{id}/steps/{step_id}/done",
            post(complete_step),
        )
        .with_state(edge.clone())
}

/// The context's operations, for the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(create, read, join, leave, pool_groups, my_groups, complete_step))]
pub struct CohortsApi;

/// The caller's organization's pool `id` (404 for any other).
async fn pool_of(edge: &Edge, caller: &Caller, id: Uuid) -> Result<pools::PoolRow, ApiError> {
    pools::pool(&edge.pool, caller.organization_id, id)
        .await?
        .ok_or(ApiError::NotFound)
}

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
    policy::require_any(&caller, &[Role::Admin, Role::Instructor])?;
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
    let written = edge
        .commands
        .run::<CohortPool, CohortPools>(id, &command, &request.metadata(Some(&caller)))
        .await
        .map_err(|e| from_handle(e, pool_error))?;
    Ok((
        StatusCode::CREATED,
        Json(Accepted {
            id,
            version: written.version,
        }),
    ))
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
    params(("id" = Uuid, Path, description = "Pool id")), security(("bearer" = [])),
    responses(
        (status = 200, description = "The pool", body = PoolView),
        (status = 404, description = "No such pool in your organization"),
    ))]
pub(crate) async fn read(
    State(edge): State<Edge>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<PoolView>, ApiError> {
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
    let timezone = body.timezone.trim().to_owned();
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
            goals: body.goals.trim().to_owned(),
            timezone,
            availability: body
                .availability
                .into_iter()
                .map(|s| trellis_cohorts::Slot {
                    day: s.day,
                    start: s.start,
                    end: s.end,
                })
                .collect(),
            answers: body
                .answers
                .into_iter()
                .map(|(k, v)| (k, v.trim().to_owned()))
                .collect(),
        },
        joined_at: chrono::Utc::now(),
    };
    let written = edge
        .commands
        .run::<CohortPool, CohortPools>(id, &command, &request.metadata(Some(&caller)))
        .await
        .map_err(|e| from_handle(e, pool_error))?;
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
    edge.commands
        .run::<CohortPool, CohortPools>(
            id,
            &PoolCommand::Leave {
                learner_id: caller.user_id,
            },
            &request.metadata(Some(&caller)),
        )
        .await
        .map_err(|e| from_handle(e, pool_error))?;
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
    /// When the batch formed it.
    formed_at: chrono::DateTime<chrono::Utc>,
}

impl From<pools::GroupRow> for GroupView {
    fn from(row: pools::GroupRow) -> Self {
        Self {
            id: row.id,
            pool_id: row.pool_id,
            pool_name: row.pool_name,
            members: row.members,
            formed_at: row.formed_at,
        }
    }
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
    pool_of(&edge, &caller, id).await?;
    policy::require_any(&caller, &[Role::Admin, Role::Instructor])?;
    let rows = pools::groups_of_pool(&edge.pool, caller.organization_id, id).await?;
    Ok(Json(rows.into_iter().map(GroupView::from).collect()))
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
    Ok(Json(
        rows.into_iter()
            .map(|row| {
                let curriculum = row
                    .curriculum_ready
                    .then(|| steps.remove(&row.id).unwrap_or_default());
                let progress = curriculum.as_ref().map(|steps| Progress {
                    done: steps.iter().filter(|s| s.done && !s.skipped).count(),
                    total: steps.iter().filter(|s| !s.skipped).count(),
                });
                MyGroupView {
                    group: GroupView::from(row),
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
    caller.spend_write(&edge)?;
    // Only members complete steps (another organization's user is never one): the group
    // answers NotAMember, a 404.
    let written = edge
        .commands
        .run::<CohortGroup, CohortPools>(
            id,
            &GroupCommand::CompleteStep {
                learner_id: caller.user_id,
                step_id,
            },
            &request.metadata(Some(&caller)),
        )
        .await
        .map_err(|e| {
            from_handle(e, |e| match e {
                GroupError::NotFound | GroupError::NotAMember | GroupError::NoSuchStep => {
                    ApiError::NotFound
                }
                other => ApiError::Conflict(other.to_string()),
            })
        })?;
    Ok(Json(Accepted {
        id,
        version: written.version,
    }))
}
