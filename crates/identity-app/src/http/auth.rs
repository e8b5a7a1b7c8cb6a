//! `POST /v1/auth/login | refresh | logout`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;

use super::IdentityHttp;
use crate::TokenPair;
use trellis_edge::error::ApiError;
use trellis_edge::extract::ApiJson;
use trellis_edge::ratelimit::ClientIp;

pub(super) fn router() -> Router<IdentityHttp> {
    Router::new()
        .route("/v1/auth/login", post(login))
        .route("/v1/auth/refresh", post(refresh))
        .route("/v1/auth/logout", post(logout))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Login {
    /// Your login address (any case).
    #[schema(min_length = 1, max_length = 254)]
    email: String,
    #[schema(min_length = 1)]
    password: String,
    /// Needed only when the credentials open accounts in several organizations (ADR 0009).
    #[serde(default)]
    organization_id: Option<uuid::Uuid>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RefreshToken {
    /// The refresh token of the last login or refresh.
    refresh_token: String,
}

/// Token responses must never be stored by a browser or a proxy.
type NoStore = [(axum::http::HeaderName, &'static str); 2];
const NO_STORE: NoStore = [
    (axum::http::header::CACHE_CONTROL, "no-store"),
    (axum::http::header::PRAGMA, "no-cache"),
];

/// Log in with e-mail and password.
#[utoipa::path(post, path = "/v1/auth/login", tag = "auth", operation_id = "login",
    request_body = Login,
    responses(
        (status = 200, description = "Tokens (`Cache-Control: no-store`)", body = TokenPair),
        (status = 401, description = "Wrong credentials"),
        (status = 422, description = "Invalid fields, or organization_id is needed: the credentials open accounts in several organizations"),
        (status = 429, description = "Too many failed logins: retry after Retry-After seconds"),
    ))]
pub(crate) async fn login(
    State(state): State<IdentityHttp>,
    ClientIp(ip): ClientIp,
    ApiJson(body): ApiJson<Login>,
) -> Result<(NoStore, Json<TokenPair>), ApiError> {
    let tokens = state
        .identity
        .login(&body.email, body.password, body.organization_id, &ip)
        .await
        .map_err(super::mapped)?;
    Ok((NO_STORE, Json(tokens)))
}

/// Exchange a refresh token for a new pair (rotation; reuse revokes the family).
#[utoipa::path(post, path = "/v1/auth/refresh", tag = "auth", operation_id = "refreshTokens",
    request_body = RefreshToken,
    responses(
        (status = 200, description = "Tokens (`Cache-Control: no-store`)", body = TokenPair),
        (status = 401, description = "Unknown, expired, revoked or reused token"),
    ))]
pub(crate) async fn refresh(
    State(state): State<IdentityHttp>,
    ApiJson(body): ApiJson<RefreshToken>,
) -> Result<(NoStore, Json<TokenPair>), ApiError> {
    Ok((
        NO_STORE,
        Json(
            state
                .identity
                .refresh(&body.refresh_token)
                .await
                .map_err(super::mapped)?,
        ),
    ))
}

/// Revoke a refresh token's family.
#[utoipa::path(post, path = "/v1/auth/logout", tag = "auth", operation_id = "logout",
    request_body = RefreshToken,
    responses((status = 204, description = "Logged out (also for a token that names no session)")))]
pub(crate) async fn logout(
    State(state): State<IdentityHttp>,
    ApiJson(body): ApiJson<RefreshToken>,
) -> Result<StatusCode, ApiError> {
    state
        .identity
        .logout(&body.refresh_token)
        .await
        .map_err(super::mapped)?;
    Ok(StatusCode::NO_CONTENT)
}
