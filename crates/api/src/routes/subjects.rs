//! The right of access (GDPR art. 15, ADR 0017): `GET /v1/users/{id}/export` (admin of the
//! user's organization) and `GET /v1/users/me/export`: every event about the user, decrypted,
//! and the read-model rows that hold their data, as one JSON document. (Erasure is the identity
//! context's: `POST /v1/users/{id}/erasure`.)

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Map, Value, json};
use trellis_identity::Role;
use trellis_kernel::RecordedEvent;
use trellis_runtime::replay::{Cut, EventsUntil};
use uuid::Uuid;

use super::audit::{prepare, view};
use crate::AppState;
use crate::error::ApiError;
use crate::extract::{ApiPath, Caller};
use crate::policy;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/users/{id}/export", get(export_user))
        .route("/v1/users/me/export", get(export_me))
}

/// A user's data (admin of their organization): every event about them, decrypted (secrets
/// redacted), and every read-model row that holds their data.
#[utoipa::path(get, path = "/v1/users/{id}/export", tag = "identity",
    operation_id = "exportUser", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "User id")),
    responses(
        (status = 200, description = "What Trellis holds about the user", body = crate::openapi::SubjectExport),
        (status = 403, description = "Not an admin"),
        (status = 404, description = "No such user in your organization"),
    ))]
pub(crate) async fn export_user(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<Value>, ApiError> {
    let known = state
        .edge
        .sessions
        .display_names(caller.organization_id, &[id])
        .await?;
    if !known.contains_key(&id) {
        return Err(ApiError::NotFound);
    }
    policy::require_any(&caller, &[Role::Admin])?;
    caller.spend_expensive(&state.edge)?;
    Ok(Json(document(&state, caller.organization_id, id).await?))
}

/// Your own data: as `GET /v1/users/{id}/export`, for yourself.
#[utoipa::path(get, path = "/v1/users/me/export", tag = "identity",
    operation_id = "exportMe", security(("bearer" = [])),
    responses((status = 200, description = "What Trellis holds about you", body = crate::openapi::SubjectExport)))]
pub(crate) async fn export_me(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    caller.spend_expensive(&state.edge)?;
    Ok(Json(
        document(&state, caller.organization_id, caller.user_id).await?,
    ))
}

/// Whether `event` is about `subject`: their stream, or an event that concerns them (their
/// act, one its module names them in, one holding their personal data).
fn about(state: &AppState, subject: Uuid, event: &RecordedEvent) -> bool {
    event.stream_id.id() == subject || state.modules.concerned(event).contains(&subject)
}

async fn document(state: &AppState, organization: Uuid, subject: Uuid) -> Result<Value, ApiError> {
    let store = state.edge.commands.handler().store();
    // The organization's whole log, as a replay reads it.
    let mut batches = EventsUntil::new(&**store, organization, Cut::Position(i64::MAX));
    let mut events = Vec::new();
    while let Some((batch, _)) = batches.next_batch().await? {
        let theirs: Vec<RecordedEvent> = batch
            .into_iter()
            .filter(|e| about(state, subject, e))
            .collect();
        events.extend(prepare(theirs).await?.iter().map(view));
    }
    let mut read_models = Map::new();
    for rows in state.modules.subject_rows() {
        // Table and column names come from module registrations, never from the request.
        let found: Vec<Value> = sqlx::query_scalar(&format!(
            "SELECT to_jsonb(t) - $2::text[] FROM {} t WHERE {} = $1",
            rows.table, rows.column
        ))
        .bind(subject)
        .bind(&trellis_store_postgres::chain::DIGESTED_FIELDS[..])
        .fetch_all(&state.edge.pool)
        .await?;
        read_models.insert(rows.table.to_owned(), Value::Array(found));
    }
    Ok(json!({
        "subject": subject,
        "organization_id": organization,
        "generated_at": chrono::Utc::now(),
        "events": events,
        "read_models": read_models,
    }))
}
