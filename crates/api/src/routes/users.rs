//! `POST /v1/users`, `GET /v1/users/me`, `POST /v1/users/{id}/deactivate`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use trellis_identity::Role;
use uuid::Uuid;

use super::organizations::validate_new_user;
use crate::AppState;
use crate::error::{ApiError, FieldError};
use crate::extract::{ApiJson, Caller, RequestId};
use crate::identity::{projection, service};
use crate::policy;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/users", post(create))
        .route("/v1/users/me", get(me))
        .route("/v1/users/{id}/deactivate", post(deactivate))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateUser {
    email: String,
    password: String,
    display_name: String,
    roles: Vec<String>,
    #[serde(default)]
    manager_id: Option<Uuid>,
}

async fn create(
    State(state): State<AppState>,
    caller: Caller,
    request: RequestId,
    ApiJson(body): ApiJson<CreateUser>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    policy::require_any(&caller, &[Role::Admin])?;
    let mut errors = Vec::new();
    let mut roles = Vec::new();
    for (i, role) in body.roles.iter().enumerate() {
        match Role::parse(role) {
            Ok(role) => roles.push(role),
            Err(e) => errors.push(FieldError::new(format!("roles[{i}]"), e.0)),
        }
    }
    if body.roles.is_empty() {
        errors.push(FieldError::new("roles", "needs at least one role"));
    }
    let user = validate_new_user(
        "",
        &body.email,
        body.password,
        &body.display_name,
        roles,
        &mut errors,
    );
    let (Some(mut user), true) = (user, errors.is_empty()) else {
        return Err(ApiError::Validation(errors));
    };
    user.manager_id = body.manager_id;
    let (id, version) = service::register_user(
        &state,
        caller.organization_id,
        user,
        &request.metadata(Some(&caller)),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({ "id": id, "version": version })),
    ))
}

async fn me(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<serde_json::Value>, ApiError> {
    let user = projection::user_by_id(&state.pool, caller.user_id)
        .await?
        .ok_or(ApiError::Unauthorized)?;
    let organization = projection::organization_name(&state.pool, user.organization_id).await?;
    Ok(Json(serde_json::json!({
        "id": user.user_id,
        "email": user.email,
        "display_name": user.display_name,
        "roles": user.roles,
        "manager_id": user.manager_id,
        "active": user.active,
        "organization": { "id": user.organization_id, "name": organization },
        "version": user.version,
    })))
}

async fn deactivate(
    State(state): State<AppState>,
    caller: Caller,
    request: RequestId,
    Path(id): Path<Uuid>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let target = projection::user_by_id(&state.pool, id)
        .await?
        .ok_or(ApiError::NotFound)?;
    policy::same_organization(&caller, target.organization_id)?;
    policy::require_any(&caller, &[Role::Admin])?;
    let version = service::deactivate(&state, id, &request.metadata(Some(&caller))).await?;
    Ok(Json(serde_json::json!({ "id": id, "version": version })))
}
