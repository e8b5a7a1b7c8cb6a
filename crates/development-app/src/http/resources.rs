//! `POST /v1/resources`: publish a learning resource.

use crate::catalog;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use trellis_development::resource::{Resource, ResourceCommand, ResourceError, ResourceKind};
use trellis_development::{Level, SkillLevel};
use trellis_identity::Role;
use uuid::Uuid;

use super::DevelopmentHttp;
use super::check_known_skills;
use trellis_edge::error::{ApiError, from_handle};
use trellis_edge::extract::{ApiJson, ApiPath, Caller, RequestId};
use trellis_edge::policy;
use trellis_edge::schema::Accepted;

pub(super) fn router() -> Router<DevelopmentHttp> {
    Router::new()
        .route("/v1/resources", post(publish))
        .route("/v1/resources/{id}/ratings", post(rate))
}

/// Runs a resource command and answers 201 with the version the catalog shows.
async fn run(
    state: &DevelopmentHttp,
    caller: &Caller,
    request: &RequestId,
    id: Uuid,
    command: &ResourceCommand,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    let version = state
        .edge
        .commands
        .run::<Resource, catalog::DevelopmentCatalog>(id, command, &request.metadata(Some(caller)))
        .await
        .map_err(|e| from_handle(e, resource_error))?
        .version;
    Ok((StatusCode::CREATED, Json(Accepted { id, version })))
}

/// A skill a resource teaches.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TaughtSkill {
    skill_id: Uuid,
    /// 1 to 5.
    #[schema(value_type = u8, minimum = 1, maximum = 5)]
    level: Level,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PublishResource {
    /// 1 to 300 characters (trimmed).
    #[schema(min_length = 1, max_length = 300, format = "trellis:nonblank-line")]
    title: String,
    /// At most 10,000 characters.
    #[serde(default)]
    #[schema(max_length = 10000, format = "trellis:text")]
    description: String,
    /// An absolute http(s) URL of at most 2,048 characters; blank means none.
    #[serde(default)]
    #[schema(max_length = 2048, format = "trellis:web-url-or-blank")]
    url: Option<String>,
    /// What kind of resource.
    #[schema(value_type = ResourceKindName)]
    kind: ResourceKind,
    /// 1 to 100,000.
    #[schema(minimum = 1, maximum = 100000)]
    duration_minutes: u32,
    /// 1 to 5.
    #[schema(value_type = u8, minimum = 1, maximum = 5)]
    difficulty: Level,
    /// Skills of your catalog it teaches, each once: 1 to 100.
    #[schema(min_items = 1, max_items = 100)]
    skills: Vec<TaughtSkill>,
}

/// A kind of learning resource.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)] // documentation only: the request parses into `ResourceKind`
pub(crate) enum ResourceKindName {
    /// A course.
    Course,
    /// An article.
    Article,
    /// A video.
    Video,
    /// A book.
    Book,
    /// Mentoring.
    Mentoring,
    /// A project.
    Project,
}

fn resource_error(error: ResourceError) -> ApiError {
    match error {
        ResourceError::BadTitle => ApiError::field("title", error.to_string()),
        ResourceError::BadDuration => ApiError::field("duration_minutes", error.to_string()),
        ResourceError::BadSkills(why) => ApiError::field("skills", why),
        ResourceError::Text(e) => e.into(),
        other => ApiError::Conflict(other.to_string()),
    }
}

/// Publish a learning resource (admin, manager, instructor).
#[utoipa::path(post, path = "/v1/resources", tag = "development", operation_id = "publishResource",
    request_body = PublishResource, security(("bearer" = [])),
    responses(
        (status = 201, description = "Published", body = Accepted),
        (status = 403, description = "Not an admin, manager or instructor"),
        (status = 422, description = "Invalid fields or skills not in your catalog"),
    ))]
pub(crate) async fn publish(
    State(state): State<DevelopmentHttp>,
    caller: Caller,
    request: RequestId,
    ApiJson(body): ApiJson<PublishResource>,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    caller.spend_write(&state.edge)?;
    policy::require_any(&caller, &[Role::Admin, Role::Manager, Role::Instructor])?;
    let ids: Vec<Uuid> = body.skills.iter().map(|s| s.skill_id).collect();
    check_known_skills(&state, &caller, &ids, |i| format!("skills[{i}].skill_id")).await?;
    let id = Uuid::now_v7();
    let command = ResourceCommand::Publish {
        title: body.title,
        description: body.description,
        url: body.url,
        kind: body.kind,
        duration_minutes: body.duration_minutes,
        difficulty: body.difficulty,
        skills: body
            .skills
            .iter()
            .map(|s| SkillLevel {
                skill_id: s.skill_id,
                level: s.level,
            })
            .collect(),
        published_by: caller.user_id,
    };
    run(&state, &caller, &request, id, &command).await
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RateResource {
    /// 1 to 5; a later rating by the same user replaces the earlier one.
    #[schema(value_type = u8, minimum = 1, maximum = 5)]
    rating: Level,
}

/// Rate a resource of your organization (any signed-in user).
#[utoipa::path(post, path = "/v1/resources/{id}/ratings", tag = "development", operation_id = "rateResource",
    request_body = RateResource,
    params(("id" = Uuid, Path, description = "Resource id")),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Rated (again with the same rating: no change)", body = Accepted),
        (status = 404, description = "No such resource in your organization"),
        (status = 422, description = "Rating outside 1 to 5"),
    ))]
pub(crate) async fn rate(
    State(state): State<DevelopmentHttp>,
    caller: Caller,
    request: RequestId,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<RateResource>,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    caller.spend_write(&state.edge)?;
    let resource = catalog::resource(&state.edge.pool, id).await?;
    policy::same_organization(&caller, resource.ok_or(ApiError::NotFound)?.organization_id)?;
    let command = ResourceCommand::Rate {
        user_id: caller.user_id,
        rating: body.rating,
    };
    run(&state, &caller, &request, id, &command).await
}
