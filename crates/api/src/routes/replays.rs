//! Replays for audits over HTTP (admin, own organization): `POST /v1/audit/replays` starts
//! one in this process, `GET /v1/audit/replays/{id}` shows it. The `audit_replays` table
//! (this crate's migration 0012) is read and written here only; the replay itself is
//! `trellis_runtime::replay`, the same code as `trellis replay`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::PgPool;
use trellis_identity::Role;
use trellis_runtime::projection::Projection;
use trellis_runtime::replay::{self, Cut, ReplayProgress};
use uuid::Uuid;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, Caller};
use crate::policy;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/audit/replays", post(start))
        .route("/v1/audit/replays/{id}", get(status))
}

/// Replays one organization may run at once (each reads its whole part of the log).
const RUNNING_MAX: i64 = 2;

/// A replay this process stopped updating for this long is reported failed: its process
/// ended mid-replay.
const STALE_SECONDS: f64 = 300.0;

/// `POST /v1/audit/replays`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReplayRequest {
    /// The cut: a global position (digits) or an RFC 3339 time.
    #[schema(example = "1893", max_length = 40)]
    until: String,
    /// Projections to rebuild as of the cut: names of the context modules' projections
    /// (`development_catalog`, `cohort_pools`, …; `GET /v1/ops/projections` lists them).
    #[schema(min_items = 1, max_items = 20)]
    projections: Vec<String>,
}

/// Rebuilds projections as they stood at a past point, for your organization, into a new
/// schema (admin). Nothing reactive runs: no event is appended, nothing is sent.
#[utoipa::path(post, path = "/v1/audit/replays", tag = "audit", operation_id = "startAuditReplay",
    security(("bearer" = [])),
    request_body = ReplayRequest,
    responses(
        (status = 202, description = "Started", body = crate::openapi::ReplayStarted),
        (status = 403, description = "Not an admin"),
        (status = 409, description = "Your organization already runs two replays"),
        (status = 422, description = "until or a projection name is invalid"),
    ))]
pub(crate) async fn start(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<ReplayRequest>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    policy::require_any(&caller, &[Role::Admin])?;
    let cut = Cut::parse(&request.until)
        .ok_or_else(|| ApiError::field("until", "must be a global position or an RFC 3339 time"))?;
    if request.projections.is_empty() || request.projections.len() > 20 {
        return Err(ApiError::field("projections", "name 1 to 20 projections"));
    }
    let mut chosen: Vec<Arc<dyn Projection>> = Vec::new();
    for (i, name) in request.projections.iter().enumerate() {
        let Some(projection) = state.modules.projection(name) else {
            return Err(ApiError::field(
                &format!("projections[{i}]"),
                "is not a projection",
            ));
        };
        if !chosen.iter().any(|p| p.name() == name) {
            chosen.push(projection);
        }
    }
    let pool = state.edge.pool.clone();
    let id = Uuid::now_v7();
    let schema = format!("audit_replay_{}", &id.simple().to_string()[20..]);
    let names: Vec<&str> = chosen.iter().map(|p| p.name()).collect();
    if !Jobs(&pool)
        .insert(id, &caller, &request.until, &names, &schema)
        .await?
    {
        return Err(ApiError::Conflict(format!(
            "your organization already runs {RUNNING_MAX} replays"
        )));
    }
    let store = Arc::clone(state.edge.commands.handler().store());
    let (organization, target) = (caller.organization_id, schema.clone());
    tokio::spawn(async move {
        let jobs = Jobs(&pool);
        let refs: Vec<&dyn Projection> = chosen.iter().map(|p| &**p).collect();
        // Progress is recorded as the replay goes, from the replay's own task.
        let (tx, mut rx) = tokio::sync::watch::channel(ReplayProgress::default());
        let result = {
            let run = replay::replay(&pool, &*store, &refs, organization, cut, &target, |p| {
                let _ = tx.send(p);
            });
            tokio::pin!(run);
            loop {
                tokio::select! {
                    result = &mut run => break result,
                    Ok(()) = rx.changed() => {
                        let p = *rx.borrow_and_update();
                        jobs.progress(id, &p).await;
                    }
                }
            }
        };
        jobs.finish(id, result.map_err(|e| e.to_string())).await;
    });
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"id": id, "status": "running", "schema": schema})),
    ))
}

/// A replay's status and progress (admin, own organization).
#[utoipa::path(get, path = "/v1/audit/replays/{id}", tag = "audit", operation_id = "getAuditReplay",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The replay")),
    responses(
        (status = 200, description = "Status and progress", body = crate::openapi::ReplayStatus),
        (status = 403, description = "Not an admin"),
        (status = 404, description = "No such replay in your organization"),
    ))]
pub(crate) async fn status(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<Value>, ApiError> {
    policy::require_any(&caller, &[Role::Admin])?;
    let job = Jobs(&state.edge.pool)
        .find(id, caller.organization_id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let share = if job.status == "completed" {
        1.0
    } else {
        let progress = ReplayProgress {
            position: job.position,
            end: job.end_position,
            ..ReplayProgress::default()
        };
        // Not started yet: nothing done.
        if job.end_position > 0 {
            progress.share()
        } else {
            0.0
        }
    };
    Ok(Json(json!({
        "id": id,
        "status": job.status,
        "until": job.until,
        "projections": job.projections,
        "schema": job.schema_name,
        "requested_by": job.requested_by,
        "progress": {
            "events_read": job.events_read,
            "events_applied": job.events_applied,
            "position": job.position,
            "end_position": job.end_position,
            "share": share,
        },
        "error": job.error,
        "created_at": job.created_at,
        "finished_at": job.finished_at,
    })))
}

/// A row of `audit_replays`, with a stale run read as failed.
#[derive(sqlx::FromRow)]
struct Job {
    until: String,
    projections: Vec<String>,
    schema_name: String,
    requested_by: Uuid,
    status: String,
    events_read: i64,
    events_applied: i64,
    position: i64,
    end_position: i64,
    error: Option<String>,
    created_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
}

/// The `audit_replays` table's queries.
struct Jobs<'a>(&'a PgPool);

impl Jobs<'_> {
    /// Records a running replay, unless the organization already runs [`RUNNING_MAX`] (then
    /// false). Stale runs do not count.
    async fn insert(
        &self,
        id: Uuid,
        caller: &Caller,
        until: &str,
        projections: &[&str],
        schema: &str,
    ) -> Result<bool, ApiError> {
        let inserted = sqlx::query(
            "INSERT INTO audit_replays (replay_id, organization_id, requested_by, until, \
                 projections, schema_name) \
             SELECT $1, $2, $3, $4, $5, $6 WHERE ( \
                 SELECT count(*) FROM audit_replays WHERE organization_id = $2 \
                   AND status = 'running' \
                   AND updated_at > now() - make_interval(secs => $7)) < $8",
        )
        .bind(id)
        .bind(caller.organization_id)
        .bind(caller.user_id)
        .bind(until)
        .bind(projections)
        .bind(schema)
        .bind(STALE_SECONDS)
        .bind(RUNNING_MAX)
        .execute(self.0)
        .await
        .map_err(ApiError::internal)?;
        Ok(inserted.rows_affected() == 1)
    }

    async fn progress(&self, id: Uuid, p: &ReplayProgress) {
        let updated = sqlx::query(
            "UPDATE audit_replays SET events_read = $2, events_applied = $3, position = $4, \
                 end_position = $5, updated_at = now() WHERE replay_id = $1",
        )
        .bind(id)
        .bind(p.events_read as i64)
        .bind(p.events_applied as i64)
        .bind(p.position)
        .bind(p.end)
        .execute(self.0)
        .await;
        if let Err(e) = updated {
            tracing::warn!(replay = %id, error = %e, "recording a replay's progress");
        }
    }

    async fn finish(&self, id: Uuid, result: Result<ReplayProgress, String>) {
        let finished = match result {
            Ok(p) => {
                self.progress(id, &p).await;
                sqlx::query(
                    "UPDATE audit_replays SET status = 'completed', finished_at = now(), \
                         updated_at = now() WHERE replay_id = $1",
                )
                .bind(id)
                .execute(self.0)
                .await
            }
            Err(error) => {
                sqlx::query(
                    "UPDATE audit_replays SET status = 'failed', error = $2, \
                         finished_at = now(), updated_at = now() WHERE replay_id = $1",
                )
                .bind(id)
                .bind(error)
                .execute(self.0)
                .await
            }
        };
        if let Err(e) = finished {
            tracing::warn!(replay = %id, error = %e, "recording a replay's end");
        }
    }

    async fn find(&self, id: Uuid, organization: Uuid) -> Result<Option<Job>, ApiError> {
        sqlx::query_as(
            "SELECT until, projections, schema_name, requested_by, events_read, \
                 events_applied, position, end_position, created_at, finished_at, \
                 CASE WHEN stale THEN 'failed' ELSE status END AS status, \
                 CASE WHEN stale THEN 'interrupted: the process running it stopped' \
                      ELSE error END AS error \
             FROM (SELECT *, status = 'running' \
                             AND updated_at < now() - make_interval(secs => $3) AS stale \
                   FROM audit_replays WHERE replay_id = $1 AND organization_id = $2) r",
        )
        .bind(id)
        .bind(organization)
        .bind(STALE_SECONDS)
        .fetch_optional(self.0)
        .await
        .map_err(ApiError::internal)
    }
}
