//! Individual development plans over HTTP: parse, call [`crate::idps`], map. Create answers
//! 202 (the recommender answers asynchronously), reads take `?min_version=`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use trellis_development::idp::IdpError;
use trellis_development::{Level, SkillLevel};
use trellis_edge::ApiError;
use trellis_edge::consistency::MinVersion;
use trellis_edge::error::from_use_case;
use trellis_edge::extract::{ApiJson, ApiPath, ApiQuery, Caller, RequestId};
use trellis_edge::schema::{Accepted, Processing};
use uuid::Uuid;

use super::DevelopmentHttp;
use crate::idps::{self, IdpDetails, NewIdp, NewItem, PlanError};

pub(super) fn router() -> Router<DevelopmentHttp> {
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

fn mapped(error: PlanError) -> ApiError {
    from_use_case(error, idp_error)
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
    State(state): State<DevelopmentHttp>,
    caller: Caller,
    request: RequestId,
    ApiJson(body): ApiJson<CreateIdp>,
) -> Result<(StatusCode, Json<Processing>), ApiError> {
    caller.spend_write(&state.edge)?;
    let input = NewIdp {
        employee_id: body.employee_id,
        title: body.title,
        target_skills: body
            .target_skills
            .iter()
            .map(|t| SkillLevel {
                skill_id: t.skill_id,
                level: t.target_level,
            })
            .collect(),
        target_role: body.target_role,
        due_date: body.due_date,
    };
    let written = idps::create(&state.development, &caller.actor(&request), input)
        .await
        .map_err(mapped)?;
    Ok((
        StatusCode::ACCEPTED,
        Json(Processing {
            id: written.id,
            status: "processing",
            version: written.version,
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
    State(state): State<DevelopmentHttp>,
    caller: Caller,
    request: RequestId,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(consistency): ApiQuery<MinVersion>,
) -> Result<Json<IdpView>, ApiError> {
    let details = idps::get(
        &state.development,
        &caller.actor(&request),
        id,
        consistency.min_version,
    )
    .await
    .map_err(mapped)?;
    Ok(Json(IdpView::from(details)))
}

impl From<IdpDetails> for IdpView {
    fn from(IdpDetails { plan: row, items }: IdpDetails) -> Self {
        let ratio = if row.items_total > 0 {
            f64::from(row.items_done) / f64::from(row.items_total)
        } else {
            0.0
        };
        Self {
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
            recommendations: row.recommendations,
            status: row.status,
            target_role: row.target_role,
            target_skills: row.target_skills,
            title: row.title,
            updated_at: row.updated_at,
            version: row.version,
        }
    }
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
    State(state): State<DevelopmentHttp>,
    caller: Caller,
    request: RequestId,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<Vec<IdpSummary>>, ApiError> {
    let (employee_id, rows) = idps::list(
        &state.development,
        &caller.actor(&request),
        query.employee_id,
    )
    .await
    .map_err(mapped)?;
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
    State(state): State<DevelopmentHttp>,
    caller: Caller,
    request: RequestId,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<AddItem>,
) -> Result<Json<Accepted>, ApiError> {
    caller.spend_write(&state.edge)?;
    let input = NewItem {
        title: body.title,
        resource_id: body.resource_id,
        skill_ids: body.skill_ids,
    };
    let (item_id, written) = idps::add_item(&state.development, &caller.actor(&request), id, input)
        .await
        .map_err(mapped)?;
    Ok(Json(Accepted {
        id: item_id,
        version: written.version,
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
    State(state): State<DevelopmentHttp>,
    caller: Caller,
    request: RequestId,
    ApiPath((id, item_id)): ApiPath<(Uuid, Uuid)>,
) -> Result<Json<Accepted>, ApiError> {
    caller.spend_write(&state.edge)?;
    let written = idps::complete_item(&state.development, &caller.actor(&request), id, item_id)
        .await
        .map_err(mapped)?;
    Ok(Json(Accepted {
        id: item_id,
        version: written.version,
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
    State(state): State<DevelopmentHttp>,
    caller: Caller,
    request: RequestId,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<Accepted>, ApiError> {
    caller.spend_write(&state.edge)?;
    let written = idps::approve(&state.development, &caller.actor(&request), id)
        .await
        .map_err(mapped)?;
    Ok(Json(Accepted {
        id,
        version: written.version,
    }))
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
    State(state): State<DevelopmentHttp>,
    caller: Caller,
    request: RequestId,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<(StatusCode, Json<Processing>), ApiError> {
    caller.spend_write(&state.edge)?;
    let written = idps::retry(&state.development, &caller.actor(&request), id)
        .await
        .map_err(mapped)?;
    Ok((
        StatusCode::ACCEPTED,
        Json(Processing {
            id,
            status: "processing",
            version: written.version,
        }),
    ))
}
