//! The router: every route, and the layers every request passes through.

pub(crate) mod audit;
pub(crate) mod auth;
pub(crate) mod events;
pub(crate) mod health;
pub(crate) mod idps;
pub(crate) mod occupations;
pub(crate) mod ops;
pub(crate) mod organizations;
pub(crate) mod profile;
mod ratelimit;
pub(crate) mod refs;
pub(crate) mod resources;
pub(crate) mod reviews;
pub(crate) mod skills;
pub(crate) mod users;

use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, StatusCode};
use axum::response::IntoResponse;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::AppState;
use crate::error::ApiError;

pub use ratelimit::RateLimiter;

/// Largest JSON body accepted (uploads get their own limits).
const BODY_LIMIT: usize = 1024 * 1024;

pub fn router(state: AppState) -> Router {
    let request_id = HeaderName::from_static("x-request-id");
    let metrics = axum::middleware::from_fn_with_state(state.clone(), crate::metrics::track);
    Router::new()
        .route("/metrics", axum::routing::get(crate::metrics::render))
        .route(
            "/v1/openapi.json",
            axum::routing::get(|| async {
                axum::Json(<crate::openapi::ApiDoc as utoipa::OpenApi>::openapi())
            }),
        )
        .merge(health::router())
        .merge(organizations::router())
        .merge(auth::router())
        .merge(users::router())
        .merge(audit::router())
        .merge(events::router())
        .merge(skills::router())
        .merge(resources::router())
        .merge(reviews::router())
        .merge(idps::router())
        .merge(occupations::router())
        .merge(profile::router())
        .merge(ops::router())
        .fallback(|| async { ApiError::NotFound.into_response() })
        .route_layer(metrics)
        .with_state(state)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            Duration::from_secs(30),
        ))
        .layer(TraceLayer::new_for_http().make_span_with(request_span))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
}

/// One span per request carrying the request id, so every log line of a request (JSON logs)
/// can be joined with the events it caused (their correlation and trace ids).
fn request_span(request: &axum::http::Request<axum::body::Body>) -> tracing::Span {
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    tracing::info_span!(
        "request",
        method = %request.method(),
        path = %request.uri().path(),
        request_id = %request_id,
    )
}
