//! Individual development plans: create (202, the recommender answers asynchronously), read
//! with `?min_version=`, list, items, completion, approval and retry.
//!
//! Who may do what (policy): the employee owns their plan; their manager (the `manager_id`
//! on the employee) may create, read and change it and is the only one who approves; admins
//! may read every plan of their organization. Everyone else in the organization gets 403,
//! anyone outside it 404.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use trellis_development::idp::{Idp, IdpCommand, IdpError};
use trellis_development::skill::esco_skill_id;
use trellis_development::{Level, SkillLevel};
use trellis_development_app::{catalog, plans};
use trellis_identity::Role;
use trellis_kernel::StreamId;
use uuid::Uuid;

use crate::AppState;
use crate::consistency::{MinVersion, handle_and_wait, stream_in_organization, wait_for_version};
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, ApiQuery, Caller, RequestId};
use crate::identity::projection::user_by_id;
use crate::openapi::{Accepted, Processing};
use crate::routes::refs::{MAX_SKILLS, check_known_skills, employee_in_org};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/idps", post(create).get(list))
        .route("/v1/idps/{id}", get(read))
        .route("/v1/idps/{id}/items", post(add_item))
        .route(
            "/v1/idps/{id}/items/{item_id}/complete",
            post(complete_item),
        )
        .route("/v1/idps/{id}/approve", post(approve))
        .route("/v1/idps/{id}/retry", post(retry))
}

/// Earliest and latest accepted due dates: PostgreSQL's `date` and sane plans.
const DUE_DATES: (i32, i32) = (2000, 2200);

/// Target level a target role's skills get unless the request names them itself.
const ROLE_TARGET_LEVEL: u8 = 3;

fn idp_error(error: IdpError) -> ApiError {
    match error {
        IdpError::BadTitle => ApiError::field("title", error.to_string()),
        IdpError::BadTargets(why) => ApiError::field("target_skills", why),
        IdpError::DuplicateItem => ApiError::field("resource_id", error.to_string()),
        IdpError::NotFound | IdpError::ItemNotFound => ApiError::NotFound,
        IdpError::AlreadyExists
        | IdpError::NotFailed
        | IdpError::NotActive
        | IdpError::TooManyItems => ApiError::Conflict(error.to_string()),
        IdpError::Text(e) => e.into(),
    }
}

/// One target.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TargetSkill {
    skill_id: Uuid,
    /// 1 to 5.
    #[schema(value_type = u8, minimum = 1, maximum = 5)]
    target_level: Level,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateIdp {
    /// Whose plan: yourself, or one of your reports (an active user of your organization).
    employee_id: Uuid,
    /// 1 to 200 characters (trimmed).
    #[schema(min_length = 1, max_length = 200, format = "trellis:nonblank-line")]
    title: String,
    /// Skills of your catalog to reach, each once (at most 100); at least one unless
    /// `target_role` brings some.
    #[serde(default)]
    #[schema(max_items = 100)]
    target_skills: Vec<TargetSkill>,
    /// An ESCO occupation (URI or label, see `GET /v1/occupations`); its skills in your
    /// catalog become targets at level 3 unless listed in `target_skills`.
    #[serde(default)]
    #[schema(max_length = 500, format = "trellis:line")]
    target_role: Option<String>,
    /// A date in the years 2000 to 2200.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Date,
        pattern = "^(2[01][0-9]{2}|2200)-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$")]
    due_date: Option<NaiveDate>,
}

#[derive(sqlx::FromRow)]
struct IdpRow {
    idp_id: Uuid,
    organization_id: Uuid,
    employee_id: Uuid,
    created_by: Uuid,
    title: String,
    status: String,
    target_skills: serde_json::Value,
    target_role: Option<String>,
    due_date: Option<NaiveDate>,
    gaps: serde_json::Value,
    recommendations: serde_json::Value,
    failure_reason: Option<String>,
    approved_by: Option<Uuid>,
    approved_at: Option<DateTime<Utc>>,
    items_total: i32,
    items_done: i32,
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct ItemRow {
    item_id: Uuid,
    title: String,
    resource_id: Option<Uuid>,
    skill_ids: serde_json::Value,
    completed_at: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow)]
struct SummaryRow {
    idp_id: Uuid,
    title: String,
    status: String,
    items_done: i32,
    items_total: i32,
    version: i64,
    created_at: DateTime<Utc>,
}

/// A plan (`GET /v1/idps/{id}`).
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct IdpView {
    /// Who approved it and when; `null` until the manager approves.
    approved: Option<Approval>,
    /// When it was created.
    created_at: DateTime<Utc>,
    /// Who created it (the employee or their manager).
    created_by: Uuid,
    /// Due date.
    due_date: Option<NaiveDate>,
    /// Whose plan.
    employee_id: Uuid,
    /// Why the recommender failed (status `failed`).
    failure_reason: Option<String>,
    /// The recommender's gap analysis (empty while `processing`).
    #[schema(value_type = Vec<GapView>)]
    gaps: serde_json::Value,
    /// Plan id.
    id: Uuid,
    /// Items, in the order added.
    items: Vec<ItemView>,
    /// Items done.
    progress: Progress,
    /// Recommended resources, best first (empty while `processing`).
    #[schema(value_type = Vec<RecommendationView>)]
    recommendations: serde_json::Value,
    /// `processing` (the recommender has not answered), `active` or `failed`.
    #[schema(pattern = "^(processing|active|failed)$")]
    status: String,
    /// The target role's ESCO occupation URI.
    target_role: Option<String>,
    /// Skills to reach.
    #[schema(value_type = Vec<TargetLevelView>)]
    target_skills: serde_json::Value,
    /// Title.
    title: String,
    /// Last change.
    updated_at: DateTime<Utc>,
    /// Stream version of the plan.
    version: i64,
}

/// An approval.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct Approval {
    /// When.
    at: Option<DateTime<Utc>>,
    /// The manager.
    by: Uuid,
}

/// A plan's item.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct ItemView {
    /// Done.
    completed: bool,
    /// When it was done.
    completed_at: Option<DateTime<Utc>>,
    /// Item id.
    id: Uuid,
    /// The resource it is about.
    resource_id: Option<Uuid>,
    /// Skills it trains.
    #[schema(value_type = Vec<Uuid>)]
    skill_ids: serde_json::Value,
    /// Title.
    title: String,
}

/// Progress of a plan.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct Progress {
    /// Items done.
    #[schema(minimum = 0)]
    completed: i32,
    /// `completed / total`, 0 without items.
    #[schema(minimum = 0.0, maximum = 1.0)]
    ratio: f64,
    /// Items.
    #[schema(minimum = 0)]
    total: i32,
}

/// Progress of a plan, as counts.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct Count {
    /// Items done.
    #[schema(minimum = 0)]
    completed: i32,
    /// Items.
    #[schema(minimum = 0)]
    total: i32,
}

/// One of the plans listed by `GET /v1/idps`.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct IdpSummary {
    /// When it was created.
    created_at: DateTime<Utc>,
    /// Whose plan.
    employee_id: Uuid,
    /// Plan id.
    id: Uuid,
    /// Items done.
    progress: Count,
    /// `processing`, `active` or `failed`.
    #[schema(pattern = "^(processing|active|failed)$")]
    status: String,
    /// Title.
    title: String,
    /// Stream version of the plan.
    version: i64,
}

/// A skill gap: where the employee stands and where the plan aims.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct GapView {
    /// Current level (0 when unknown: no review rated it and the employee did not declare it).
    #[schema(minimum = 0, maximum = 5)]
    current: u8,
    /// The skill.
    skill_id: Uuid,
    /// Target level.
    #[schema(minimum = 1, maximum = 5)]
    target: u8,
}

/// A recommended resource.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct RecommendationView {
    /// One line for humans.
    reason: String,
    /// The resource.
    resource_id: Uuid,
    /// Ranking score, higher first.
    score: f64,
    /// Gap skills it covers.
    skill_ids: Vec<Uuid>,
    /// The resource's title (absent if the resource is gone).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    title: Option<String>,
}

/// A target: a skill and the level to reach.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct TargetLevelView {
    /// Level to reach.
    #[schema(minimum = 1, maximum = 5)]
    level: u8,
    /// The skill.
    skill_id: Uuid,
}

/// How the caller stands to a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Relation {
    Owner,
    Manager,
    Admin,
    Other,
}

/// How the caller stands to an employee's plans; 404 for someone outside their organization.
async fn relation_to(
    state: &AppState,
    caller: &Caller,
    employee_id: Uuid,
) -> Result<Relation, ApiError> {
    if caller.user_id == employee_id {
        return Ok(Relation::Owner);
    }
    let employee = user_by_id(&state.pool, employee_id)
        .await?
        .filter(|e| e.organization_id == caller.organization_id)
        .ok_or(ApiError::NotFound)?;
    if employee.manager_id == Some(caller.user_id) {
        return Ok(Relation::Manager);
    }
    Ok(if caller.has(Role::Admin) {
        Relation::Admin
    } else {
        Relation::Other
    })
}

async fn fetch(state: &AppState, id: Uuid) -> Result<Option<IdpRow>, ApiError> {
    Ok(sqlx::query_as(&format!(
        "SELECT * FROM {} WHERE idp_id = $1",
        plans::IDPS_TABLE
    ))
    .bind(id)
    .fetch_optional(&state.pool)
    .await?)
}

async fn load(state: &AppState, caller: &Caller, id: Uuid) -> Result<(IdpRow, Relation), ApiError> {
    let row = fetch(state, id).await?.ok_or(ApiError::NotFound)?;
    if row.organization_id != caller.organization_id {
        return Err(ApiError::NotFound);
    }
    let relation = relation_to(state, caller, row.employee_id).await?;
    if relation == Relation::Other {
        return Err(ApiError::Forbidden);
    }
    Ok((row, relation))
}

/// Changes to a plan (items, completion, retry) are the owner's and their manager's; admins
/// read every plan but change none.
async fn owner_or_manager(state: &AppState, caller: &Caller, id: Uuid) -> Result<(), ApiError> {
    match load(state, caller, id).await?.1 {
        Relation::Owner | Relation::Manager => Ok(()),
        Relation::Admin | Relation::Other => Err(ApiError::Forbidden),
    }
}

/// Expands a target role into target skills the request did not name.
fn role_targets(
    state: &AppState,
    caller: &Caller,
    role: &str,
    explicit: &[SkillLevel],
) -> Result<(String, Vec<SkillLevel>), ApiError> {
    let occupation = state
        .occupations
        .find(role)
        .ok_or_else(|| ApiError::field("target_role", "is not a known ESCO occupation"))?;
    let level = Level::try_from(ROLE_TARGET_LEVEL).map_err(ApiError::internal)?;
    let mut seen = std::collections::HashSet::new();
    let extra = occupation
        .skills
        .iter()
        .map(|s| esco_skill_id(caller.organization_id, &s.uri))
        .filter(|id| !explicit.iter().any(|t| t.skill_id == *id) && seen.insert(*id))
        .map(|skill_id| SkillLevel { skill_id, level })
        .collect();
    Ok((occupation.uri.clone(), extra))
}

/// Create a plan (the employee, or their manager). The recommender answers asynchronously:
/// read it back with `GET /v1/idps/{id}?min_version=2`.
#[utoipa::path(post, path = "/v1/idps", tag = "development", operation_id = "createIdp",
    request_body = CreateIdp, security(("bearer" = [])),
    responses(
        (status = 202, description = "Accepted; recommendations are being computed", body = Processing),
        (status = 403, description = "Neither the employee nor their manager"),
        (status = 422, description = "Invalid fields, unknown employee, skills or role"),
    ))]
pub(crate) async fn create(
    State(state): State<AppState>,
    caller: Caller,
    request: RequestId,
    ApiJson(body): ApiJson<CreateIdp>,
) -> Result<(StatusCode, Json<Processing>), ApiError> {
    caller.spend_write(&state)?;
    let employee = employee_in_org(&state, &caller, body.employee_id, "employee_id").await?;
    if employee.user_id != caller.user_id && employee.manager_id != Some(caller.user_id) {
        return Err(ApiError::Forbidden);
    }
    let ids: Vec<Uuid> = body.target_skills.iter().map(|t| t.skill_id).collect();
    check_known_skills(&state, &caller, &ids, |i| {
        format!("target_skills[{i}].skill_id")
    })
    .await?;
    let mut targets: Vec<SkillLevel> = body
        .target_skills
        .iter()
        .map(|t| SkillLevel {
            skill_id: t.skill_id,
            level: t.target_level,
        })
        .collect();
    let mut target_role = None;
    if let Some(role) = body.target_role.as_deref().filter(|r| !r.trim().is_empty()) {
        let (uri, extra) = role_targets(&state, &caller, role, &targets)?;
        let extra_ids: Vec<Uuid> = extra.iter().map(|t| t.skill_id).collect();
        let known = catalog::known_skills(&state.pool, caller.organization_id, &extra_ids).await?;
        let extra: Vec<SkillLevel> = extra
            .into_iter()
            .filter(|t| known.contains(&t.skill_id))
            .collect();
        if extra.is_empty() && targets.is_empty() {
            return Err(ApiError::field(
                "target_role",
                "none of this occupation's skills are in your catalog (import ESCO skills first)",
            ));
        }
        targets.extend(extra);
        target_role = Some(uri);
    }
    if targets.is_empty() {
        return Err(ApiError::field(
            "target_skills",
            "needs at least one skill (or a target_role)",
        ));
    }
    targets.truncate(MAX_SKILLS);
    if let Some(due) = body.due_date {
        use chrono::Datelike;
        if !(DUE_DATES.0..=DUE_DATES.1).contains(&due.year()) {
            return Err(ApiError::field(
                "due_date",
                format!("must be a date between {} and {}", DUE_DATES.0, DUE_DATES.1),
            ));
        }
    }
    let id = Uuid::now_v7();
    let command = IdpCommand::Create {
        employee_id: body.employee_id,
        created_by: caller.user_id,
        title: body.title,
        target_skills: targets,
        target_role,
        due_date: body.due_date,
    };
    let version = handle_and_wait::<Idp>(
        &state,
        id,
        &command,
        &request.metadata(Some(&caller)),
        plans::IDPS_TABLE,
        "idp_id",
        idp_error,
    )
    .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(Processing {
            id,
            status: "processing",
            version,
        }),
    ))
}

/// Read a plan (owner, their manager, admin). `?min_version=` waits for the recommender's
/// answer: version 2 is the first event after creation.
#[utoipa::path(get, path = "/v1/idps/{id}", tag = "development", operation_id = "getIdp",
    params(("id" = Uuid, Path, description = "Plan id"),
           ("min_version" = Option<u64>, Query, minimum = 0,
               description = "Wait (bounded) until this stream version of the plan is visible")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The plan with gaps, recommendations, items and progress", body = IdpView),
        (status = 403, description = "Not yours, not a report's"),
        (status = 404, description = "No such plan in your organization"),
    ))]
pub(crate) async fn read(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(consistency): ApiQuery<MinVersion>,
) -> Result<Json<IdpView>, ApiError> {
    if let Some(version) = consistency.min_version {
        // Wait only for a plan of the caller's organization that the store holds: an unknown
        // id, or another organization's plan, answers 404 at once, never after a wait (the
        // time taken must not tell whether an id exists).
        let stream = StreamId::new(<Idp as trellis_kernel::Aggregate>::KIND, id)
            .map_err(ApiError::internal)?;
        if !stream_in_organization(&state, &stream, caller.organization_id).await? {
            return Err(ApiError::NotFound);
        }
        let behind = fetch(&state, id)
            .await?
            .is_none_or(|row| row.version < i64::try_from(version).unwrap_or(i64::MAX));
        if behind {
            wait_for_version(
                &state.pool,
                plans::IDPS_TABLE,
                "idp_id",
                id,
                version,
                state.config.max_read_wait,
            )
            .await?;
        }
    }
    let (row, _) = load(&state, &caller, id).await?;
    let items: Vec<ItemRow> = sqlx::query_as(
        "SELECT item_id, title, resource_id, skill_ids, completed_at \
         FROM rm_development_plans.idp_items WHERE idp_id = $1 ORDER BY position",
    )
    .bind(id)
    .fetch_all(&state.pool)
    .await?;
    let mut recommendations = row.recommendations.clone();
    if let Some(list) = recommendations.as_array_mut() {
        let id_of = |r: &serde_json::Value| -> Option<Uuid> {
            r.get("resource_id")?.as_str()?.parse().ok()
        };
        let ids: Vec<Uuid> = list.iter().filter_map(id_of).collect();
        let titles = catalog::resource_titles(&state.pool, caller.organization_id, &ids).await?;
        for r in list.iter_mut() {
            let title = id_of(r).and_then(|id| titles.get(&id).cloned());
            if let (Some(obj), Some(title)) = (r.as_object_mut(), title) {
                obj.insert("title".into(), title.into());
            }
        }
    }
    let ratio = if row.items_total > 0 {
        f64::from(row.items_done) / f64::from(row.items_total)
    } else {
        0.0
    };
    Ok(Json(IdpView {
        approved: row.approved_by.map(|by| Approval {
            at: row.approved_at,
            by,
        }),
        created_at: row.created_at,
        created_by: row.created_by,
        due_date: row.due_date,
        employee_id: row.employee_id,
        failure_reason: row.failure_reason,
        gaps: row.gaps,
        id: row.idp_id,
        items: items
            .into_iter()
            .map(|i| ItemView {
                completed: i.completed_at.is_some(),
                completed_at: i.completed_at,
                id: i.item_id,
                resource_id: i.resource_id,
                skill_ids: i.skill_ids,
                title: i.title,
            })
            .collect(),
        progress: Progress {
            completed: row.items_done,
            ratio,
            total: row.items_total,
        },
        recommendations,
        status: row.status,
        target_role: row.target_role,
        target_skills: row.target_skills,
        title: row.title,
        updated_at: row.updated_at,
        version: row.version,
    }))
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct ListQuery {
    employee_id: Option<Uuid>,
}

/// List plans: your own, or (`?employee_id=`) a report's; admins any employee's.
#[utoipa::path(get, path = "/v1/idps", tag = "development", operation_id = "listIdps",
    params(("employee_id" = Option<Uuid>, Query, description = "Whose plans (default: yours)")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Plans, newest first (at most 200)", body = Vec<IdpSummary>),
        (status = 403, description = "Not yours, not a report's"),
        (status = 404, description = "No such employee in your organization"),
    ))]
pub(crate) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<Vec<IdpSummary>>, ApiError> {
    let employee_id = query.employee_id.unwrap_or(caller.user_id);
    if relation_to(&state, &caller, employee_id).await? == Relation::Other {
        return Err(ApiError::Forbidden);
    }
    let rows: Vec<SummaryRow> = sqlx::query_as(
        "SELECT idp_id, title, status, items_done, items_total, version, created_at \
         FROM rm_development_plans.idps WHERE employee_id = $1 AND organization_id = $2 \
         ORDER BY created_at DESC LIMIT 200",
    )
    .bind(employee_id)
    .bind(caller.organization_id)
    .fetch_all(&state.pool)
    .await?;
    Ok(Json(
        rows.into_iter()
            .map(|r| IdpSummary {
                created_at: r.created_at,
                employee_id,
                id: r.idp_id,
                progress: Count {
                    completed: r.items_done,
                    total: r.items_total,
                },
                status: r.status,
                title: r.title,
                version: r.version,
            })
            .collect(),
    ))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AddItem {
    /// 1 to 200 characters (trimmed); required without a `resource_id`, whose
    /// title it defaults to.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 200, format = "trellis:nonblank-line")]
    title: Option<String>,
    /// A resource of your organization (e.g. one of the recommendations), at most once
    /// per plan.
    #[serde(default)]
    resource_id: Option<Uuid>,
    /// Skills of your catalog the item trains (at most 100); default: the resource's.
    #[serde(default)]
    #[schema(max_items = 100)]
    skill_ids: Vec<Uuid>,
}

async fn command(
    state: &AppState,
    caller: &Caller,
    request: RequestId,
    id: Uuid,
    command: &IdpCommand,
) -> Result<u64, ApiError> {
    handle_and_wait::<Idp>(
        state,
        id,
        command,
        &request.metadata(Some(caller)),
        plans::IDPS_TABLE,
        "idp_id",
        idp_error,
    )
    .await
}

/// Add an item (owner or manager); the plan must be active.
#[utoipa::path(post, path = "/v1/idps/{id}/items", tag = "development", operation_id = "addIdpItem",
    request_body = AddItem,
    params(("id" = Uuid, Path, description = "Plan id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Added: the item's id and the plan's version", body = Accepted),
        (status = 403, description = "Neither the employee nor their manager"),
        (status = 404, description = "No such plan in your organization"),
        (status = 409, description = "The plan is not active, or holds the most items a plan may"),
        (status = 422, description = "Invalid fields, unknown resource or skills, duplicate item"),
    ))]
pub(crate) async fn add_item(
    State(state): State<AppState>,
    caller: Caller,
    request: RequestId,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<AddItem>,
) -> Result<Json<Accepted>, ApiError> {
    caller.spend_write(&state)?;
    owner_or_manager(&state, &caller, id).await?;
    check_known_skills(&state, &caller, &body.skill_ids, |i| {
        format!("skill_ids[{i}]")
    })
    .await?;
    let mut title = body.title.clone();
    let mut skill_ids = body.skill_ids.clone();
    if let Some(resource_id) = body.resource_id {
        let resource = catalog::resource(&state.pool, resource_id)
            .await?
            .filter(|r| r.organization_id == caller.organization_id)
            .ok_or_else(|| {
                ApiError::field("resource_id", "is not a resource of your organization")
            })?;
        // Item titles are at most 200 characters; resource titles may be longer.
        title.get_or_insert_with(|| resource.title.chars().take(200).collect());
        if skill_ids.is_empty() {
            skill_ids = resource.skill_ids();
        }
    }
    let title =
        title.ok_or_else(|| ApiError::field("title", "is required without a resource_id"))?;
    let item_id = Uuid::now_v7();
    let version = command(
        &state,
        &caller,
        request,
        id,
        &IdpCommand::AddItem {
            item_id,
            title,
            resource_id: body.resource_id,
            skill_ids,
        },
    )
    .await?;
    Ok(Json(Accepted {
        id: item_id,
        version,
    }))
}

/// Mark an item done (owner or manager).
#[utoipa::path(post, path = "/v1/idps/{id}/items/{item_id}/complete", tag = "development",
    operation_id = "completeIdpItem",
    params(("id" = Uuid, Path, description = "Plan id"), ("item_id" = Uuid, Path, description = "Item id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Completed (again: no change): the item's id and the plan's version", body = Accepted),
        (status = 403, description = "Neither the employee nor their manager"),
        (status = 404, description = "No such plan or item"),
        (status = 409, description = "The plan is not active"),
    ))]
pub(crate) async fn complete_item(
    State(state): State<AppState>,
    caller: Caller,
    request: RequestId,
    ApiPath((id, item_id)): ApiPath<(Uuid, Uuid)>,
) -> Result<Json<Accepted>, ApiError> {
    caller.spend_write(&state)?;
    owner_or_manager(&state, &caller, id).await?;
    let version = command(
        &state,
        &caller,
        request,
        id,
        &IdpCommand::CompleteItem { item_id },
    )
    .await?;
    Ok(Json(Accepted {
        id: item_id,
        version,
    }))
}

/// Approve the plan (the employee's manager only).
#[utoipa::path(post, path = "/v1/idps/{id}/approve", tag = "development", operation_id = "approveIdp",
    params(("id" = Uuid, Path, description = "Plan id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Approved (again: no change)", body = Accepted),
        (status = 403, description = "Not the employee's manager"),
        (status = 404, description = "No such plan in your organization"),
        (status = 409, description = "The plan is not active"),
    ))]
pub(crate) async fn approve(
    State(state): State<AppState>,
    caller: Caller,
    request: RequestId,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<Accepted>, ApiError> {
    caller.spend_write(&state)?;
    let (_, relation) = load(&state, &caller, id).await?;
    if relation != Relation::Manager {
        return Err(ApiError::Forbidden);
    }
    let version = command(
        &state,
        &caller,
        request,
        id,
        &IdpCommand::Approve {
            approver_id: caller.user_id,
        },
    )
    .await?;
    Ok(Json(Accepted { id, version }))
}

/// Ask the recommender again after a failure (owner or manager).
#[utoipa::path(post, path = "/v1/idps/{id}/retry", tag = "development", operation_id = "retryIdpRecommendations",
    params(("id" = Uuid, Path, description = "Plan id")),
    security(("bearer" = [])),
    responses(
        (status = 202, description = "Processing again", body = Processing),
        (status = 403, description = "Neither the employee nor their manager"),
        (status = 404, description = "No such plan in your organization"),
        (status = 409, description = "The plan has not failed"),
    ))]
pub(crate) async fn retry(
    State(state): State<AppState>,
    caller: Caller,
    request: RequestId,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<(StatusCode, Json<Processing>), ApiError> {
    caller.spend_write(&state)?;
    owner_or_manager(&state, &caller, id).await?;
    let version = command(
        &state,
        &caller,
        request,
        id,
        &IdpCommand::RetryRecommendations,
    )
    .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(Processing {
            id,
            status: "processing",
            version,
        }),
    ))
}
