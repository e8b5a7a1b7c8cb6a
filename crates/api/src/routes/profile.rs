//! `POST /v1/users/me/skills`, `GET /v1/users/me/skills`: the caller's declared skills (career
//! context, `SkillProfile`). The recommender falls back to these where no review rated a skill.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use trellis_career::skill_profile::{SkillProfile, SkillProfileCommand};
use trellis_development::Level;
use trellis_kernel::{CommandContext, StreamId};
use uuid::Uuid;

use crate::AppState;
use crate::error::{ApiError, from_handle};
use crate::extract::{ApiJson, Caller, RequestId};
use crate::routes::refs::check_known_skills;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/users/me/skills", post(declare).get(list))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DeclareSkill {
    skill_id: Uuid,
    /// Self-assessed, 1 to 5; declaring a skill again replaces the level.
    #[schema(value_type = u8, minimum = 1, maximum = 5)]
    level: Level,
}

fn stream(caller: &Caller) -> Result<StreamId, ApiError> {
    StreamId::new("skill_profile", caller.user_id).map_err(ApiError::internal)
}

/// Declare one of your skills at a level (any signed-in user).
#[utoipa::path(post, path = "/v1/users/me/skills", tag = "career", request_body = DeclareSkill,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Declared (the profile's stream version)", body = crate::openapi::Accepted),
        (status = 422, description = "Unknown skill or level outside 1 to 5", body = crate::openapi::Problem),
        (status = 429, description = "Write budget spent; see Retry-After", body = crate::openapi::Problem),
    ))]
pub(crate) async fn declare(
    State(state): State<AppState>,
    caller: Caller,
    request: RequestId,
    ApiJson(body): ApiJson<DeclareSkill>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    caller.spend_write(&state)?;
    check_known_skills(&state, &caller, &[body.skill_id], |_| "skill_id".to_owned()).await?;
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
        .handle::<SkillProfile>(&stream(&caller)?, &command, &context)
        .await
        .map_err(|e| from_handle(e, |never| match never {}))?;
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({"id": caller.user_id, "version": outcome.version})),
    ))
}

/// Your declared skills, read from your profile's stream (always current).
#[utoipa::path(get, path = "/v1/users/me/skills", tag = "career",
    security(("bearer" = [])),
    responses((status = 200, description = "Declared skills with levels, and the stream version")))]
pub(crate) async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<serde_json::Value>, ApiError> {
    let (profile, version) = state
        .commands
        .load::<SkillProfile>(&stream(&caller)?)
        .await
        .map_err(|e| from_handle(e, |never| match never {}))?;
    Ok(Json(serde_json::json!({
        "skills": profile.skills.iter().map(|(skill_id, level)| {
            serde_json::json!({"skill_id": skill_id, "level": level})
        }).collect::<Vec<_>>(),
        "version": version,
    })))
}
