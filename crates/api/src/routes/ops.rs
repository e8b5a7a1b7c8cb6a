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

/// Prometheus metrics (operator, `TRELLIS_OPS_TOKEN`).
#[utoipa::path(get, path = "/metrics", tag = "ops", operation_id = "getMetrics",
    security(("operator" = [])),
    responses((status = 200, description = "Prometheus text exposition format",
        content_type = "text/plain", body = String)))]
pub(crate) async fn metrics(state: State<AppState>, _: Operator) -> axum::response::Response {
    crate::metrics::render(state).await
}

/// Projection status (operator, `TRELLIS_OPS_TOKEN`): what `trellis projections status`
/// prints.
#[utoipa::path(get, path = "/v1/ops/projections", tag = "ops", operation_id = "listProjections",
    security(("operator" = [])),
    responses(
        (status = 200, description = "Each projection's version, state, events applied, last position, lag and last event time",
            body = Vec<ProjectionStatusView>),
    ))]
pub(crate) async fn projections(
    State(state): State<AppState>,
    _: Operator,
) -> Result<Json<Vec<ProjectionStatusView>>, ApiError> {
    let status = trellis_runtime::projection::status(&state.edge.pool)
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(
        status
            .into_iter()
            .map(|s| ProjectionStatusView {
                events_applied: s.events_applied,
                lag: s.lag,
                last_event_at: s.last_event_at,
                last_position: s.last_position,
                projection: s.projection,
                state: s.state,
                version: s.version,
            })
            .collect(),
    ))
}

/// A projection's status (what `trellis projections status` prints).
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(crate) struct ProjectionStatusView {
    /// Events applied since the last build.
    events_applied: i64,
    /// Events in the store after `last_position` (an upper bound: positions are not dense).
    lag: i64,
    /// When the last applied event was recorded.
    last_event_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Global position of the last event applied.
    last_position: Option<i64>,
    /// Name.
    projection: String,
    /// `live`, or a build state.
    state: String,
    /// Version built.
    version: i32,
}

/// `GET /v1/ops/parked`.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(crate) struct ParkedList {
    /// Records of every relay by state.
    counts: ParkedCountsView,
    /// Parked records, in `$all` order.
    records: Vec<ParkedRecordView>,
}

/// Parked records by state.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(crate) struct ParkedCountsView {
    /// Parked, waiting for an operator.
    parked: i64,
    /// Republished after a retry.
    republished: i64,
    /// Retry requested, not yet handled.
    retry_requested: i64,
}

/// One event the broker refused for good.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(crate) struct ParkedRecordView {
    /// Publication attempts that ended in a permanent refusal.
    attempts: i32,
    /// The broker's or producer's last refusal.
    error: String,
    /// The event.
    event_id: uuid::Uuid,
    /// Its type.
    event_type: String,
    /// Its position in `$all`.
    global_position: i64,
    /// When it was first parked.
    parked_at: chrono::DateTime<chrono::Utc>,
    /// The relay (checkpoint name) that parked it.
    relay: String,
    /// When the relay last republished it.
    retried_at: Option<chrono::DateTime<chrono::Utc>>,
    /// When an operator asked for a retry the relay has not handled yet.
    retry_requested_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Where it stands.
    #[schema(value_type = ParkedStateName)]
    state: trellis_store_postgres::parked::ParkedState,
    /// Its stream, e.g. `skill-<uuid>`.
    stream_id: String,
    /// Its version in the stream.
    stream_version: i64,
    /// Its organization, when it has one.
    tenant_id: Option<uuid::Uuid>,
    /// The topic it was (or is) to be published to.
    topic: String,
}

/// Where a parked record stands.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)] // documentation of `ParkedState`
pub(crate) enum ParkedStateName {
    /// Refused by the broker and waiting for an operator.
    Parked,
    /// An operator asked for a retry; the relay has not taken it yet.
    RetryRequested,
    /// Republished after a retry (out of its original order).
    Republished,
}

/// `POST /v1/ops/parked/{event_id}/retry`.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(crate) struct RetryRequested {
    /// The event.
    event_id: uuid::Uuid,
    /// Always `retry_requested`.
    #[schema(value_type = String, pattern = "^retry_requested$")]
    state: &'static str,
}

/// `GET /v1/ops/parked?limit=`.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct ParkedQuery {
    limit: Option<i64>,
}

/// Parked relay records (operator, `TRELLIS_OPS_TOKEN`): events the broker refused for good
/// (too large, invalid, a topic the relay may not write), set aside so the relay goes on with
/// the rest; what `trellis relay parked` prints. Every organization's, in `$all` order.
#[utoipa::path(get, path = "/v1/ops/parked", tag = "ops", operation_id = "listParkedRecords",
    security(("operator" = [])),
    params(("limit" = Option<i64>, Query, minimum = 1, maximum = 1000, description = "1 to 1000, default 100")),
    responses(
        (status = 200, description = "Parked records in `$all` order and the counts by state", body = ParkedList),
        (status = 422, description = "Bad limit"),
    ))]
pub(crate) async fn parked(
    State(state): State<AppState>,
    _: Operator,
    crate::extract::ApiQuery(query): crate::extract::ApiQuery<ParkedQuery>,
) -> Result<Json<ParkedList>, ApiError> {
    let limit = query.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::field("limit", "must be 1 to 1000"));
    }
    let records = trellis_store_postgres::parked::list(&state.edge.pool, None, limit).await?;
    let counts = trellis_store_postgres::parked::counts(&state.edge.pool).await?;
    Ok(Json(ParkedList {
        counts: ParkedCountsView {
            parked: counts.parked,
            republished: counts.republished,
            retry_requested: counts.retry_requested,
        },
        records: records
            .into_iter()
            .map(|r| ParkedRecordView {
                state: r.state(),
                attempts: r.attempts,
                error: r.error,
                event_id: r.event_id,
                event_type: r.event_type,
                global_position: r.global_position,
                parked_at: r.parked_at,
                relay: r.relay,
                retried_at: r.retried_at,
                retry_requested_at: r.retry_requested_at,
                stream_id: r.stream_id,
                stream_version: r.stream_version,
                tenant_id: r.tenant_id,
                topic: r.topic,
            })
            .collect(),
    }))
}

/// Ask the relay to republish a parked record (operator). The relay takes the request within
/// about a second and publishes the event *out of its original order*; the record's state
/// becomes `republished`, or `parked` again with the new error if the broker refuses it again.
#[utoipa::path(post, path = "/v1/ops/parked/{event_id}/retry", tag = "ops", operation_id = "retryParkedRecord",
    params(("event_id" = uuid::Uuid, Path, description = "The parked event")),
    security(("operator" = [])),
    responses(
        (status = 202, description = "Retry requested", body = RetryRequested),
        (status = 404, description = "No such parked record (or no operator token configured)"),
    ))]
pub(crate) async fn retry_parked(
    State(state): State<AppState>,
    _: Operator,
    crate::extract::ApiPath(event_id): crate::extract::ApiPath<uuid::Uuid>,
) -> Result<(axum::http::StatusCode, Json<RetryRequested>), ApiError> {
    let marked =
        trellis_store_postgres::parked::request_retry(&state.edge.pool, event_id, None).await?;
    if marked == 0 {
        return Err(ApiError::NotFound);
    }
    Ok((
        axum::http::StatusCode::ACCEPTED,
        Json(RetryRequested {
            event_id,
            state: "retry_requested",
        }),
    ))
}
