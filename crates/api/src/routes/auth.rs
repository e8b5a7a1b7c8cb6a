//! `POST /v1/auth/login | refresh | logout`.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;

use super::ratelimit::ClientIp;
use crate::AppState;
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::identity::service::{self, TokenPair};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/auth/login", post(login))
        .route("/v1/auth/refresh", post(refresh))
        .route("/v1/auth/logout", post(logout))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Login {
    email: String,
    password: String,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RefreshToken {
    refresh_token: String,
}

/// The window of the login limits (`ApiConfig::login_limit_per_*`).
const WINDOW: Duration = Duration::from_secs(60);

/// Log in with e-mail and password.
#[utoipa::path(post, path = "/v1/auth/login", tag = "auth", request_body = Login,
    responses(
        (status = 200, description = "Tokens", body = crate::openapi::Tokens),
        (status = 401, description = "Wrong credentials", body = crate::openapi::Problem),
        (status = 429, description = "Rate limited", body = crate::openapi::Problem),
    ))]
pub(crate) async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(body): ApiJson<Login>,
) -> Result<Json<TokenPair>, ApiError> {
    let config = &state.config;
    state
        .limits
        .hit(&format!("login-ip:{ip}"), config.login_limit_per_ip, WINDOW)?;
    let account = body.email.trim().to_lowercase();
    state.limits.hit(
        &format!("login-account:{account}"),
        config.login_limit_per_account,
        WINDOW,
    )?;
    Ok(Json(
        service::login(&state, &body.email, body.password).await?,
    ))
}

/// Exchange a refresh token for a new pair (rotation; reuse revokes the family).
#[utoipa::path(post, path = "/v1/auth/refresh", tag = "auth", request_body = RefreshToken,
    responses(
        (status = 200, description = "Tokens", body = crate::openapi::Tokens),
        (status = 401, description = "Unknown, expired, revoked or reused token", body = crate::openapi::Problem),
    ))]
pub(crate) async fn refresh(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<RefreshToken>,
) -> Result<Json<TokenPair>, ApiError> {
    Ok(Json(service::refresh(&state, &body.refresh_token).await?))
}

/// Revoke a refresh token's family.
#[utoipa::path(post, path = "/v1/auth/logout", tag = "auth", request_body = RefreshToken,
    responses((status = 204, description = "Logged out")))]
pub(crate) async fn logout(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<RefreshToken>,
) -> Result<StatusCode, ApiError> {
    service::logout(&state, &body.refresh_token).await?;
    Ok(StatusCode::NO_CONTENT)
}
