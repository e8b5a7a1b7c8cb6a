//! `GET /v1/ops/projections`: each projection's version, state, position and lag (admin).
//!
//! Operational data of the deployment, not of a tenant: names and positions only, no
//! organization's data, so any organization's admin may read it.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use trellis_identity::Role;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::Caller;
use crate::policy;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/ops/projections", get(projections))
}

/// Projection status (admin): what `trellis projections status` prints.
#[utoipa::path(get, path = "/v1/ops/projections", tag = "ops",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Each projection's version, state, events applied, last position, lag and last event time"),
        (status = 403, description = "Not an admin", body = crate::openapi::Problem),
    ))]
pub(crate) async fn projections(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<serde_json::Value>, ApiError> {
    policy::require_any(&caller, &[Role::Admin])?;
    let status = trellis_runtime::projection::status(&state.pool)
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(
        serde_json::to_value(status).map_err(ApiError::internal)?,
    ))
}
