//! `Idempotency-Key` for every command endpoint (SPEC §2), as one middleware.
//!
//! A client that did not see the answer to a command (a timeout, a dropped connection) sends
//! it again with the same key and gets the first answer back (status, body, `Location`),
//! marked `Idempotent-Replayed: true`, without the command running twice. Rules:
//! - Keys are 1–200 visible ASCII characters (else 422 naming `Idempotency-Key`).
//! - Keys are scoped per organization and user (anonymous requests, such as sign-up, share
//!   the nil scope, where the fingerprint includes the password, so only the same request
//!   replays): no one can receive another tenant's or user's cached answer.
//! - The same key with another request (method, path, query or body) is 422.
//! - While the first request runs, a second one with its key is 409; a first request that
//!   died mid-way (its row is older than [`STALE_AFTER`] with no answer) may be retried.
//! - Only final answers are kept: 2xx and the deterministic refusals 400, 404, 413, 422. A
//!   401, 403, 409, 429 or 5xx is forgotten so that a retry can succeed.
//! - Keys are kept for [`KEEP_FOR`].
//!
//! Login, refresh and logout ignore the header (token responses are never stored), and so do
//! the operator's routes and every request that reaches no command (a method a path does not
//! have answers 405 whatever its key): the commands are the operations the OpenAPI document
//! lists with the header ([`crate::openapi::Document::command`]). A command that needs a user, sent
//! without a valid access token, also ignores it: the handler answers 401.

use axum::body::{Body, Bytes};
use axum::extract::{MatchedPath, Request, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, LOCATION};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::AppState;
use crate::error::ApiError;
use crate::openapi::Command;

/// The request header.
pub const HEADER: &str = "idempotency-key";
/// Marks a replayed answer.
pub const REPLAYED: &str = "idempotent-replayed";
/// A first request without an answer after this long is presumed dead.
pub const STALE_AFTER_SECONDS: i64 = 120;
/// How long keys are kept.
pub const KEEP_FOR_HOURS: i64 = 24;
/// Largest request or response body handled here (the edge's JSON limit).
const MAX_BODY: usize = 1024 * 1024;

/// Kept-answer statuses.
fn keeps(status: StatusCode) -> bool {
    status.is_success() || matches!(status.as_u16(), 400 | 404 | 413 | 422)
}

/// Checks a key's shape.
///
/// # Errors
/// 422 naming `Idempotency-Key`.
pub fn parse_key(value: &HeaderValue) -> Result<String, ApiError> {
    let bad = || {
        ApiError::field(
            "Idempotency-Key",
            "must be 1 to 200 visible ASCII characters",
        )
    };
    let bytes = value.as_bytes();
    if bytes.is_empty() || bytes.len() > 200 || !bytes.iter().all(u8::is_ascii_graphic) {
        return Err(bad());
    }
    String::from_utf8(bytes.to_vec()).map_err(|_| bad())
}

/// Who the key belongs to: the access token's organization and user when it verifies.
fn user_scope(state: &AppState, request: &Request) -> Option<(Uuid, Uuid)> {
    request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .and_then(|t| crate::auth::verify_access_token(&state.edge.config, t.trim()).ok())
        .map(|c| (c.org, c.sub))
}

type Row = (
    Vec<u8>,
    Option<i16>,
    Option<String>,
    Option<String>,
    Option<Vec<u8>>,
    bool,
);

/// The middleware.
pub async fn layer(State(state): State<AppState>, request: Request, next: Next) -> Response {
    match run(&state, request, next).await {
        Ok(response) | Err(response) => response,
    }
}

async fn run(state: &AppState, request: Request, next: Next) -> Result<Response, Response> {
    let Some(value) = request.headers().get(HEADER).cloned() else {
        return Ok(next.run(request).await);
    };
    let command = request
        .extensions()
        .get::<MatchedPath>()
        .and_then(|path| state.document.command(request.method(), path.as_str()));
    let (organization, user) = match command {
        None => return Ok(next.run(request).await),
        Some(Command::Anonymous) => (Uuid::nil(), Uuid::nil()),
        Some(Command::User) => match user_scope(state, &request) {
            Some(scope) => scope,
            // No valid access token: the handler answers 401, whatever the key.
            None => return Ok(next.run(request).await),
        },
    };
    let key = parse_key(&value).map_err(IntoResponse::into_response)?;
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, MAX_BODY)
        .await
        .map_err(|_| ApiError::PayloadTooLarge.into_response())?;
    let mut hasher = Sha256::new();
    hasher.update(parts.method.as_str().as_bytes());
    hasher.update([0]);
    hasher.update(parts.uri.path().as_bytes());
    hasher.update([0]);
    hasher.update(parts.uri.query().unwrap_or_default().as_bytes());
    hasher.update([0]);
    hasher.update(&body);
    let fingerprint = hasher.finalize().to_vec();
    let db = |e: sqlx::Error| ApiError::from(e).into_response();

    let inserted = sqlx::query(
        "INSERT INTO http_idempotency (organization_id, user_id, key, fingerprint) \
         VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
    )
    .bind(organization)
    .bind(user)
    .bind(&key)
    .bind(&fingerprint)
    .execute(&state.edge.pool)
    .await
    .map_err(db)?
    .rows_affected()
        == 1;
    if !inserted {
        let row: Option<Row> = sqlx::query_as(
            "SELECT fingerprint, status, content_type, location, body, \
                    created_at < now() - make_interval(secs => $4) \
             FROM http_idempotency WHERE organization_id = $1 AND user_id = $2 AND key = $3",
        )
        .bind(organization)
        .bind(user)
        .bind(&key)
        .bind(STALE_AFTER_SECONDS as f64)
        .fetch_optional(&state.edge.pool)
        .await
        .map_err(db)?;
        let Some((stored, status, content_type, location, kept, stale)) = row else {
            // Forgotten between the two statements: refuse rather than race.
            return Err(in_progress());
        };
        if stored != fingerprint {
            return Err(ApiError::field(
                "Idempotency-Key",
                "was already used for a different request",
            )
            .into_response());
        }
        match status {
            Some(status) => return Ok(replay(status, content_type, location, kept)),
            None if stale => {
                // The first request died without an answer: this one takes its place.
                let taken = sqlx::query(
                    "UPDATE http_idempotency SET created_at = now() \
                     WHERE organization_id = $1 AND user_id = $2 AND key = $3 \
                       AND status IS NULL \
                       AND created_at < now() - make_interval(secs => $4)",
                )
                .bind(organization)
                .bind(user)
                .bind(&key)
                .bind(STALE_AFTER_SECONDS as f64)
                .execute(&state.edge.pool)
                .await
                .map_err(db)?
                .rows_affected();
                if taken != 1 {
                    return Err(in_progress());
                }
            }
            None => return Err(in_progress()),
        }
    }
    if rand::random::<u16>().is_multiple_of(1000) {
        let _ = sqlx::query(
            "DELETE FROM http_idempotency WHERE created_at < now() - make_interval(hours => $1)",
        )
        .bind(KEEP_FOR_HOURS as i32)
        .execute(&state.edge.pool)
        .await;
    }

    let response = next.run(Request::from_parts(parts, Body::from(body))).await;
    let status = response.status();
    let forget = || async {
        let _ = sqlx::query(
            "DELETE FROM http_idempotency \
             WHERE organization_id = $1 AND user_id = $2 AND key = $3 AND status IS NULL",
        )
        .bind(organization)
        .bind(user)
        .bind(&key)
        .execute(&state.edge.pool)
        .await;
    };
    if !keeps(status) {
        forget().await;
        return Ok(response);
    }
    let (parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY).await else {
        forget().await;
        return Ok(ApiError::Internal("a response too large to keep".into()).into_response());
    };
    let header = |name| {
        parts
            .headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
            .map(str::to_owned)
    };
    let saved = sqlx::query(
        "UPDATE http_idempotency SET status = $4, content_type = $5, location = $6, body = $7 \
         WHERE organization_id = $1 AND user_id = $2 AND key = $3",
    )
    .bind(organization)
    .bind(user)
    .bind(&key)
    .bind(status.as_u16() as i16)
    .bind(header(CONTENT_TYPE))
    .bind(header(LOCATION))
    .bind(bytes.to_vec())
    .execute(&state.edge.pool)
    .await;
    if let Err(error) = saved {
        // The command did apply; the answer is still the truth. A retry with this key finds
        // the row unanswered and, once stale, runs again (commands with natural keys are
        // safe; others may duplicate: logged).
        tracing::warn!(%error, "could not keep an idempotent answer");
    }
    Ok(Response::from_parts(parts, Body::from(bytes)))
}

fn in_progress() -> Response {
    ApiError::Conflict(
        "a request with this Idempotency-Key is still in progress; retry later".into(),
    )
    .into_response()
}

fn replay(
    status: i16,
    content_type: Option<String>,
    location: Option<String>,
    body: Option<Vec<u8>>,
) -> Response {
    let status = u16::try_from(status)
        .ok()
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::OK);
    let mut response = Response::new(Body::from(Bytes::from(body.unwrap_or_default())));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    for (name, value) in [(CONTENT_TYPE, content_type), (LOCATION, location)] {
        if let Some(value) = value.and_then(|v| HeaderValue::from_str(&v).ok()) {
            headers.insert(name, value);
        }
    }
    headers.insert(REPLAYED, HeaderValue::from_static("true"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_one_to_two_hundred_visible_ascii_characters() {
        assert!(parse_key(&HeaderValue::from_static("order-42")).is_ok());
        assert!(parse_key(&HeaderValue::from_static("")).is_err());
        assert!(parse_key(&HeaderValue::from_str(&"k".repeat(201)).unwrap()).is_err());
        assert!(parse_key(&HeaderValue::from_str(&"k".repeat(200)).unwrap()).is_ok());
        assert!(parse_key(&HeaderValue::from_static("with space")).is_err());
        assert!(parse_key(&HeaderValue::from_bytes(b"tab\there").unwrap()).is_err());
    }

    #[test]
    fn only_final_answers_are_kept() {
        for kept in [200, 201, 202, 204, 400, 404, 413, 422] {
            assert!(keeps(StatusCode::from_u16(kept).unwrap()), "{kept}");
        }
        for forgotten in [401, 403, 409, 429, 500, 503] {
            assert!(
                !keeps(StatusCode::from_u16(forgotten).unwrap()),
                "{forgotten}"
            );
        }
    }
}
