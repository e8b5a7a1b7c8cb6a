//! Operational routes: `GET /metrics` (Prometheus) and `GET /v1/ops/projections` (each
//! projection's version, state, position and lag).
//!
//! Operational data of the deployment, not of a tenant, so no tenant role opens them: only
//! the platform operator's `TRELLIS_OPS_TOKEN` ([`Operator`]).

use crate::AppState;
use crate::error::ApiError;
use crate::extract::Operator;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/v1/ops/projections", get(projections))
        .route("/v1/ops/parked", get(parked))
        .route(
            "/v1/ops/parked/{event_id}/retry",
            axum::routing::post(retry_parked),
        )
}

/// Prometheus metrics (operator).
async fn metrics(state: State<AppState>, _: Operator) -> axum::response::Response {
    crate::metrics::render(state).await
}

/// Projection status (operator, `TRELLIS_OPS_TOKEN`): what `trellis projections status`
/// prints.
#[utoipa::path(get, path = "/v1/ops/projections", tag = "ops",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Each projection's version, state, events applied, last position, lag and last event time"),
        (status = 401, description = "Not the operator token", body = crate::openapi::Problem),
        (status = 404, description = "No operator token is configured", body = crate::openapi::Problem),
    ))]
pub(crate) async fn projections(
    State(state): State<AppState>,
    _: Operator,
) -> Result<Json<serde_json::Value>, ApiError> {
    let status = trellis_runtime::projection::status(&state.pool)
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(
        serde_json::to_value(status).map_err(ApiError::internal)?,
    ))
}

/// `GET /v1/ops/parked?limit=`.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct ParkedQuery {
    limit: Option<i64>,
}

/// Parked relay records (operator, `TRELLIS_OPS_TOKEN`): events the broker refused for good
/// (too large, invalid, a topic the relay may not write), set aside so the relay goes on with
/// the rest; what `trellis relay parked` prints. Every organization's, in `$all` order.
#[utoipa::path(get, path = "/v1/ops/parked", tag = "ops",
    security(("bearer" = [])),
    params(("limit" = Option<i64>, Query, description = "1 to 1000, default 100")),
    responses(
        (status = 200, description = "`records` (event id, position, stream, topic, error, attempts, parked_at, retry_requested_at, retried_at, state) and `counts` by state"),
        (status = 401, description = "Not the operator token", body = crate::openapi::Problem),
        (status = 404, description = "No operator token is configured", body = crate::openapi::Problem),
        (status = 422, description = "Bad limit", body = crate::openapi::Problem),
    ))]
pub(crate) async fn parked(
    State(state): State<AppState>,
    _: Operator,
    crate::extract::ApiQuery(query): crate::extract::ApiQuery<ParkedQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let limit = query.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::field("limit", "must be 1 to 1000"));
    }
    let records = trellis_store_postgres::parked::list(&state.pool, None, limit).await?;
    let counts = trellis_store_postgres::parked::counts(&state.pool).await?;
    let records = records
        .into_iter()
        .map(|record| {
            let state = record.state();
            let mut value = serde_json::to_value(record)?;
            value["state"] = serde_json::to_value(state)?;
            Ok(value)
        })
        .collect::<Result<Vec<_>, serde_json::Error>>()
        .map_err(ApiError::internal)?;
    Ok(Json(
        serde_json::json!({"records": records, "counts": counts}),
    ))
}

/// Ask the relay to republish a parked record (operator). The relay takes the request within
/// about a second and publishes the event *out of its original order*; the record's state
/// becomes `republished`, or `parked` again with the new error if the broker refuses it again.
#[utoipa::path(post, path = "/v1/ops/parked/{event_id}/retry", tag = "ops",
    params(("event_id" = uuid::Uuid, Path, description = "The parked event")),
    security(("bearer" = [])),
    responses(
        (status = 202, description = "Retry requested"),
        (status = 401, description = "Not the operator token", body = crate::openapi::Problem),
        (status = 404, description = "No such parked record (or no operator token configured)", body = crate::openapi::Problem),
    ))]
pub(crate) async fn retry_parked(
    State(state): State<AppState>,
    _: Operator,
    crate::extract::ApiPath(event_id): crate::extract::ApiPath<uuid::Uuid>,
) -> Result<(axum::http::StatusCode, Json<serde_json::Value>), ApiError> {
    let marked = trellis_store_postgres::parked::request_retry(&state.pool, event_id, None).await?;
    if marked == 0 {
        return Err(ApiError::NotFound);
    }
    Ok((
        axum::http::StatusCode::ACCEPTED,
        Json(serde_json::json!({"event_id": event_id, "state": "retry_requested"})),
    ))
}
