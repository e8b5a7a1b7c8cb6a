//! The router: every route, and the layers every request passes through.

pub(crate) mod audit;
pub(crate) mod events;
pub(crate) mod health;
pub(crate) mod ops;
pub(crate) mod replays;
pub(crate) mod subjects;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tower_http::trace::TraceLayer;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{CLIENT_REQUEST_ID, ServerRequestId};

/// Largest JSON body accepted (uploads get their own limits).
const BODY_LIMIT: usize = 1024 * 1024;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The platform's routes, then every context module's slice (ADR 0011), under the layers
/// every request passes.
pub fn router(state: AppState) -> Router {
    let metrics = axum::middleware::from_fn_with_state(state.clone(), crate::metrics::track);
    let idempotency =
        axum::middleware::from_fn_with_state(state.clone(), crate::idempotency::layer);
    let edge = axum::middleware::from_fn_with_state(state.clone(), edge);
    let mut router = Router::new()
        .route("/v1/openapi.json", axum::routing::get(openapi_document))
        .merge(health::router())
        .merge(audit::router())
        .merge(replays::router())
        .merge(subjects::router())
        .merge(events::router())
        .merge(ops::router())
        .with_state(state.clone());
    for (_, slice) in state.modules.http() {
        router = router.merge((slice.router)(&state.edge));
    }
    router
        .fallback(|| async { ApiError::NotFound.into_response() })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed.into_response() })
        .route_layer(idempotency)
        .route_layer(metrics)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(panicked))
        .layer(TraceLayer::new_for_http().make_span_with(request_span))
        .layer(edge)
}

/// A handler that panicked answers 500 problem+json (logged with its message) instead of
/// dropping the connection; the process goes on serving.
fn panicked(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("(no message)");
    ApiError::Internal(format!("a handler panicked: {message}").into()).into_response()
}

/// This document: what every operation takes and answers.
#[utoipa::path(get, path = "/v1/openapi.json", tag = "meta", operation_id = "getOpenApiDocument",
    responses((status = 200, description = "The OpenAPI 3.1 document", body = crate::openapi::OpenApiDocument)))]
pub(crate) async fn openapi_document(State(state): State<AppState>) -> Response {
    axum::Json(state.document.openapi()).into_response()
}

/// The outermost layer: a server-made request id (the client's own `x-request-id` is kept as
/// `x-client-request-id`, never used as a correlation id), the request deadline, and
/// problem+json for every error response, even those made below the handlers (a body over
/// the limit, a method that does not exist).
async fn edge(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let id = uuid::Uuid::now_v7();
    let headers = request.headers_mut();
    if let Some(client) = headers.remove(REQUEST_ID) {
        headers.insert(HeaderName::from_static(CLIENT_REQUEST_ID), client);
    }
    let id_value = HeaderValue::from_str(&id.to_string()).ok();
    if let Some(value) = &id_value {
        headers.insert(REQUEST_ID, value.clone());
    }
    request.extensions_mut().insert(ServerRequestId(id));
    let deadline = state.edge.config.connections.request_timeout;
    let mut response = match tokio::time::timeout(deadline, next.run(request)).await {
        Ok(response) => problem_for_bare_errors(response),
        Err(_) => ApiError::Overloaded("the request took too long; retry later").into_response(),
    };
    if let Some(value) = id_value {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    response
}

/// Error responses that some layer made without a body (axum's own 405, 413 or 415, say)
/// become problem+json like every other error.
fn problem_for_bare_errors(response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_problem = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/problem+json"));
    if is_problem {
        return response;
    }
    let error = match status.as_u16() {
        400 => ApiError::BadRequest("the request is malformed".into()),
        401 => ApiError::Unauthorized,
        403 => ApiError::Forbidden,
        404 => ApiError::NotFound,
        405 => ApiError::MethodNotAllowed,
        413 => ApiError::PayloadTooLarge,
        415 => ApiError::BadRequest("the body must be application/json".into()),
        429 => ApiError::TooManyRequests { retry_after: 1 },
        503 => ApiError::Overloaded("the service is unavailable; retry later"),
        s if s >= 500 => ApiError::Internal("an error response without a body".into()),
        _ => ApiError::BadRequest(
            status
                .canonical_reason()
                .unwrap_or("the request cannot be served")
                .to_owned(),
        ),
    };
    let mut problem = error.into_response();
    *problem.status_mut() = status;
    problem
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
