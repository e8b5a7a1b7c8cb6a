//! Audit reads (admin, own organization): a stream's events with who/when/why and the state
//! rebuilt as of a time or version; the organization's events in global order.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};
use trellis_identity::Role;
use trellis_kernel::{
    AllFilter, GlobalPosition, RecordedEvent, StreamId, TenantId, store::read_whole_stream,
};
use uuid::Uuid;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{ApiPath, ApiQuery, Caller};
use crate::policy;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/audit/streams/{stream_id}", get(stream))
        .route("/v1/audit/events", get(events))
        .route("/v1/audit/verify", get(verify))
        .route("/v1/audit/export", get(export))
        .route("/v1/audit/correlations/{correlation_id}", get(correlation))
}

/// Payload fields never shown, even to admins (sealed as their digest, so exports of the
/// chain do not show them either).
const REDACTED: [&str; 1] = trellis_store_postgres::chain::DIGESTED_FIELDS;

fn redact(mut payload: Value) -> Value {
    if let Some(object) = payload.as_object_mut() {
        for key in REDACTED {
            if let Some(v) = object.get_mut(key) {
                *v = Value::String("[redacted]".into());
            }
        }
    }
    payload
}

pub(crate) fn view(event: &RecordedEvent) -> Value {
    json!({
        "event_id": event.event_id,
        "stream_id": event.stream_id,
        "stream_version": event.stream_version,
        "global_position": event.global_position,
        "event_type": event.event_type,
        "schema_version": event.schema_version,
        "payload": redact(event.payload.clone()),
        "metadata": event.metadata,
        "recorded_at": event.recorded_at,
    })
}

/// State as of the given (upcast) events, by the aggregate the context modules declare for
/// the stream's kind: every aggregate of every context folds, none answers `null`.
fn state_of(state: &AppState, kind: &str, events: &[RecordedEvent]) -> Result<Value, ApiError> {
    let aggregate = state
        .modules
        .aggregate(kind)
        .map_err(|e| ApiError::Internal(Box::new(e)))?;
    aggregate
        .fold(events)
        .map_err(|e| ApiError::Internal(Box::new(e)))
}

/// Stored events as the current code reads them: decrypted (ADR 0017; an erased subject's
/// fields read `"[erased]"`) and upcast (ADR 0011).
pub(crate) async fn prepare(events: Vec<RecordedEvent>) -> Result<Vec<RecordedEvent>, ApiError> {
    trellis_kernel::personal::prepare(events)
        .await
        .map_err(ApiError::internal)
}

#[derive(Deserialize)]
pub(crate) struct AsOf {
    /// A stream version (`7`) or an RFC 3339 time.
    as_of: Option<String>,
}

/// A stream's events (who, when, correlation) and its state as of a version or time (admin).
#[utoipa::path(get, path = "/v1/audit/streams/{stream_id}", tag = "audit",
    operation_id = "getAuditStream", security(("bearer" = [])),
    params(
        ("stream_id" = String, Path, description = "`<aggregate>-<uuid>`, e.g. `user-0190…`",
            pattern = "^[a-z][a-z0-9_]{0,63}-[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"),
        ("as_of" = Option<String>, Query,
            description = "A stream version (digits) or an RFC 3339 time, e.g. `2026-05-01T12:00:00Z`",
            pattern = "^([0-9]{1,19}|[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\\.[0-9]{1,9})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9]))$"),
    ),
    responses(
        (status = 200, description = "Events and state", body = crate::openapi::AuditStream),
        (status = 403, description = "Not an admin"),
        (status = 404, description = "No such stream in your organization"),
        (status = 422, description = "as_of is neither a stream version nor an RFC 3339 time"),
    ))]
pub(crate) async fn stream(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(stream_id): ApiPath<String>,
    ApiQuery(query): ApiQuery<AsOf>,
) -> Result<Json<Value>, ApiError> {
    let stream = StreamId::parse(&stream_id).map_err(|_| ApiError::NotFound)?;
    let events = read_whole_stream(&**state.edge.commands.handler().store(), &stream).await?;
    // Another organization's stream, or none: 404 either way; checked (and the role) on the
    // stored events, before anything is decrypted.
    let tenant = TenantId::from_uuid(caller.organization_id);
    if events.is_empty() || events.iter().any(|e| e.metadata.tenant_id != Some(tenant)) {
        return Err(ApiError::NotFound);
    }
    policy::require_any(&caller, &[Role::Admin])?;
    let events = prepare(events).await?;
    let cut: Vec<RecordedEvent> = match query.as_of.as_deref() {
        None => events,
        Some(text) => {
            if let Ok(version) = text.parse::<u64>() {
                events
                    .into_iter()
                    .filter(|e| e.stream_version <= version)
                    .collect()
            } else {
                let at: DateTime<Utc> = DateTime::parse_from_rfc3339(text)
                    .map_err(|_| {
                        ApiError::field("as_of", "must be a stream version or an RFC 3339 time")
                    })?
                    .with_timezone(&Utc);
                events.into_iter().filter(|e| e.recorded_at <= at).collect()
            }
        }
    };
    let version = cut.last().map_or(0, |e| e.stream_version);
    Ok(Json(json!({
        "stream_id": stream,
        "as_of_version": version,
        "state": redact(state_of(&state, stream.kind(), &cut)?),
        "events": cut.iter().map(view).collect::<Vec<_>>(),
    })))
}

#[derive(Deserialize)]
pub(crate) struct Page {
    after: Option<i64>,
    limit: Option<usize>,
    #[serde(rename = "type")]
    event_type: Option<String>,
}

/// The organization's events in global order, paged (admin).
#[utoipa::path(get, path = "/v1/audit/events", tag = "audit", operation_id = "listAuditEvents",
    security(("bearer" = [])),
    params(
        ("after" = Option<i64>, Query, description = "`next_after` of the previous page (a position this API returned)"),
        ("limit" = Option<usize>, Query, minimum = 1, maximum = 1000, description = "1 to 1000, default 100"),
        ("type" = Option<String>, Query, max_length = 128,
            description = "Only this event type, e.g. `UserRegistered` (at most 128 bytes)"),
    ),
    responses(
        (status = 200, description = "A page", body = crate::openapi::AuditPage),
        (status = 403, description = "Not an admin"),
        (status = 422, description = "Bad paging or type"),
    ))]
pub(crate) async fn events(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(page): ApiQuery<Page>,
) -> Result<Json<Value>, ApiError> {
    policy::require_any(&caller, &[Role::Admin])?;
    let limit = page.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::field("limit", "must be 1 to 1000"));
    }
    if page.event_type.as_deref().is_some_and(|t| t.len() > 128) {
        return Err(ApiError::field("type", "must be an event type name"));
    }
    let filter = AllFilter {
        tenant_id: Some(TenantId::from_uuid(caller.organization_id)),
        event_type: page.event_type,
    };
    let after = page.after.map(GlobalPosition);
    // A cursor from another organization only positions the read in the global order;
    // the tenant filter still returns nothing of theirs.
    let events = state
        .edge
        .commands
        .handler()
        .store()
        .read_all_filtered(after, limit, &filter)
        .await
        .map_err(|e| match e {
            trellis_kernel::StoreError::UnknownPosition(_) => {
                ApiError::field("after", "is not a position this API returned")
            }
            other => other.into(),
        })?;
    let events = prepare(events).await?;
    let next = events.last().map(|e| e.global_position);
    Ok(Json(json!({
        "events": events.iter().map(view).collect::<Vec<_>>(),
        "next_after": next,
    })))
}

/// Recomputes the organization's hash chain (admin): the first break, if any.
#[utoipa::path(get, path = "/v1/audit/verify", tag = "audit", operation_id = "verifyAuditChain",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The chain's verification", body = crate::openapi::ChainVerification),
        (status = 403, description = "Not an admin"),
    ))]
pub(crate) async fn verify(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    policy::require_any(&caller, &[Role::Admin])?;
    let report = trellis_store_postgres::chain::verify(&state.edge.pool, caller.organization_id)
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(json!({
        "organization_id": caller.organization_id,
        "ok": report.ok(),
        "checked": report.events_checked,
        "first_broken_position": report.broken.as_ref().and_then(|b| b.global_position),
        "head": report.head,
        "broken": report.broken,
        "checked_at": Utc::now(),
    })))
}

#[derive(Deserialize)]
pub(crate) struct ExportRange {
    after: Option<i64>,
    until: Option<i64>,
}

/// Seals per page of an export.
const EXPORT_PAGE: i64 = 1_000;

/// The organization's sealed events with their chain links, as JSON Lines (admin).
#[utoipa::path(get, path = "/v1/audit/export", tag = "audit", operation_id = "exportAuditChain",
    security(("bearer" = [])),
    params(
        ("after" = Option<i64>, Query, minimum = 0,
            description = "Start after this seal (`seq`) of the organization's chain; default 0 (the beginning)"),
        ("until" = Option<i64>, Query, minimum = 1,
            description = "Stop at this seal (inclusive); default the head"),
    ),
    responses(
        (status = 200, description = "One `{chain_id, seq, prev, link, event}` per line, in chain order; docs/auditing.md verifies it",
            body = String, content_type = "application/x-ndjson"),
        (status = 403, description = "Not an admin"),
        (status = 422, description = "after or until out of range"),
    ))]
pub(crate) async fn export(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(range): ApiQuery<ExportRange>,
) -> Result<axum::response::Response, ApiError> {
    use trellis_store_postgres::chain::{ExportPage, export_page};
    policy::require_any(&caller, &[Role::Admin])?;
    let after = range.after.unwrap_or(0);
    if after < 0 {
        return Err(ApiError::field("after", "must be 0 or more"));
    }
    if range.until.is_some_and(|u| u < 1) {
        return Err(ApiError::field("until", "must be 1 or more"));
    }
    let (pool, chain, until) = (state.edge.pool.clone(), caller.organization_id, range.until);
    // The first page before the answer: a database failure is a 5xx, not an empty chain.
    let first = export_page(&pool, chain, after, until, EXPORT_PAGE, None)
        .await
        .map_err(ApiError::internal)?;
    // Later pages are read as the client consumes them, each from the last one's link; a
    // failure then ends the body with an error (a truncated transfer, never a short file
    // that looks complete).
    let lines = futures::stream::try_unfold(Some(first), move |page: Option<ExportPage>| {
        let pool = pool.clone();
        async move {
            let Some(page) = page else {
                return Ok(None);
            };
            let Some(last_seq) = page.lines.last().map(|l| l.seq) else {
                return Ok(None);
            };
            let mut body = Vec::with_capacity(page.lines.len() * 512);
            for line in &page.lines {
                serde_json::to_writer(&mut body, line).map_err(std::io::Error::other)?;
                body.push(b'\n');
            }
            let next = if (page.lines.len() as i64) < EXPORT_PAGE {
                None
            } else {
                Some(
                    export_page(&pool, chain, last_seq, until, EXPORT_PAGE, Some(page.last))
                        .await
                        .map_err(std::io::Error::other)?,
                )
            };
            Ok::<_, std::io::Error>(Some((body, next)))
        }
    });
    axum::response::Response::builder()
        .header(axum::http::header::CONTENT_TYPE, "application/x-ndjson")
        .body(axum::body::Body::from_stream(lines))
        .map_err(ApiError::internal)
}

/// Most events one correlation chain shows.
const CORRELATION_MAX: usize = 10_000;

/// Every event one request caused, across contexts and services, as a causation tree (admin).
#[utoipa::path(get, path = "/v1/audit/correlations/{correlation_id}", tag = "audit",
    operation_id = "getAuditCorrelation", security(("bearer" = [])),
    params(("correlation_id" = Uuid, Path, description = "The `correlation_id` of any event's metadata")),
    responses(
        (status = 200, description = "The causation tree", body = crate::openapi::AuditCorrelation),
        (status = 403, description = "Not an admin"),
        (status = 404, description = "No event of your organization has this correlation id"),
    ))]
pub(crate) async fn correlation(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(correlation_id): ApiPath<Uuid>,
) -> Result<Json<Value>, ApiError> {
    // Admins only, before any read: another role learns nothing about any id.
    policy::require_any(&caller, &[Role::Admin])?;
    let events = trellis_store_postgres::read_correlation(
        &state.edge.pool,
        caller.organization_id,
        correlation_id,
        CORRELATION_MAX + 1,
    )
    .await?;
    if events.is_empty() {
        return Err(ApiError::NotFound);
    }
    let truncated = events.len() > CORRELATION_MAX;
    let mut events = events;
    events.truncate(CORRELATION_MAX);
    let events = prepare(events).await?;
    Ok(Json(json!({
        "correlation_id": correlation_id,
        "events": events.len(),
        "truncated": truncated,
        "roots": causation_tree(&events),
    })))
}

/// Events as a forest: each under the event that caused it (its `causation_id`); events whose
/// cause is outside the set (the request) are roots. Children in global order.
fn causation_tree(events: &[RecordedEvent]) -> Vec<Value> {
    use std::collections::HashMap;
    let ids: std::collections::HashSet<Uuid> =
        events.iter().map(|e| e.event_id.as_uuid()).collect();
    let mut children: HashMap<Option<Uuid>, Vec<&RecordedEvent>> = HashMap::new();
    for event in events {
        let parent = event
            .metadata
            .causation_id
            .map(|c| c.as_uuid())
            .filter(|c| ids.contains(c) && *c != event.event_id.as_uuid());
        children.entry(parent).or_default().push(event);
    }
    fn node(
        event: &RecordedEvent,
        children: &HashMap<Option<Uuid>, Vec<&RecordedEvent>>,
        depth: usize,
    ) -> Value {
        let mut view = view(event);
        let below = if depth < 64 {
            children
                .get(&Some(event.event_id.as_uuid()))
                .map(|c| c.iter().map(|e| node(e, children, depth + 1)).collect())
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        view["caused"] = Value::Array(below);
        view
    }
    children
        .get(&None)
        .map(|roots| roots.iter().map(|e| node(e, &children, 0)).collect())
        .unwrap_or_default()
}
