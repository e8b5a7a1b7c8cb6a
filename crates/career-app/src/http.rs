//! The career context over HTTP: `POST /v1/users/me/skills`, `GET /v1/users/me/skills`, the
//! caller's declared skills (`SkillProfile`). The recommender falls back to these where no
//! review rated a skill.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use trellis_career::skill_profile::{SkillProfile, SkillProfileCommand};
use trellis_development::Level;
use trellis_kernel::CommandContext;
use uuid::Uuid;

use trellis_edge::Edge;
use trellis_edge::error::{ApiError, from_handle, from_use_case};
use trellis_edge::extract::{ApiJson, Caller, RequestId};
use trellis_edge::schema::Accepted;

/// The context's routes over `edge`.
pub fn router(edge: &Edge) -> Router {
    Router::new()
        .route("/v1/users/me/skills", post(declare).get(list))
        .with_state(edge.clone())
}

/// The context's operations, for the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(declare, list))]
pub struct CareerApi;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DeclareSkill {
    skill_id: Uuid,
    /// Self-assessed, 1 to 5; declaring a skill again replaces the level.
    #[schema(value_type = u8, minimum = 1, maximum = 5)]
    level: Level,
}

/// `GET /v1/users/me/skills`.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct DeclaredSkills {
    /// Your declared skills.
    skills: Vec<DeclaredSkill>,
    /// Stream version of your profile (0 before the first declaration).
    #[schema(minimum = 0)]
    version: u64,
}

/// A declared skill.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct DeclaredSkill {
    /// Self-assessed level.
    #[schema(value_type = u8, minimum = 1, maximum = 5)]
    level: Level,
    /// The skill.
    skill_id: Uuid,
}

/// Declare one of your skills at a level (any signed-in user).
#[utoipa::path(post, path = "/v1/users/me/skills", tag = "career", operation_id = "declareMySkill",
    request_body = DeclareSkill, security(("bearer" = [])),
    responses(
        (status = 201, description = "Declared (again at the same level: no change): your id and the profile's stream version", body = Accepted),
        (status = 422, description = "Not a skill of your catalog, or a level outside 1 to 5"),
    ))]
pub(crate) async fn declare(
    State(state): State<Edge>,
    caller: Caller,
    request: RequestId,
    ApiJson(body): ApiJson<DeclareSkill>,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    caller.spend_write(&state)?;
    // A skill of the caller's catalog (the development context owns the catalog).
    trellis_development_app::idps::check_known_skills(
        &state.pool,
        caller.organization_id,
        &[body.skill_id],
        |_| "skill_id".to_owned(),
    )
    .await
    .map_err(|e| from_use_case(e, |never: std::convert::Infallible| match never {}))?;
    let context = CommandContext {
        metadata: request.metadata(Some(&caller)),
        ..CommandContext::default()
    };
    let command = SkillProfileCommand::DeclareSkill {
        skill_id: body.skill_id,
        level: body.level,
    };
    let outcome = state
        .commands
        .handler()
        .handle::<SkillProfile>(caller.user_id, &command, &context)
        .await
        .map_err(|e| from_handle(e, |never| match never {}))?;
    Ok((
        StatusCode::CREATED,
        Json(Accepted {
            id: caller.user_id,
            version: outcome.version,
        }),
    ))
}

/// Your declared skills, read from your profile's stream (always current).
#[utoipa::path(get, path = "/v1/users/me/skills", tag = "career", operation_id = "listMySkills",
    security(("bearer" = [])),
    responses((status = 200, description = "Declared skills with levels, and the stream version", body = DeclaredSkills)))]
pub(crate) async fn list(
    State(state): State<Edge>,
    caller: Caller,
) -> Result<Json<DeclaredSkills>, ApiError> {
    let (profile, version) = state
        .commands
        .handler()
        .load::<SkillProfile>(caller.user_id)
        .await
        .map_err(|e| from_handle(e, |never| match never {}))?;
    Ok(Json(DeclaredSkills {
        skills: profile
            .skills
            .iter()
            .map(|(skill_id, level)| DeclaredSkill {
                level: *level,
                skill_id: *skill_id,
            })
            .collect(),
        version,
    }))
}
