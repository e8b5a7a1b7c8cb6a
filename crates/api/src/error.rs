//! `ApiError`: the only type that knows HTTP. Every error is RFC 9457 problem+json.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use trellis_kernel::{HandleError, StoreError};

/// One invalid field.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct FieldError {
    /// JSON path of the field, e.g. `admin.email`.
    pub field: String,
    /// What is wrong, safe to show.
    pub message: String,
}

impl FieldError {
    /// A field error.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Errors of the edge, each with its status.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 422: input that parsed but breaks a rule; names every bad field.
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    /// 400: a body that is not the expected JSON.
    #[error("malformed request: {0}")]
    BadRequest(String),
    /// 401: no, bad or expired credentials. Deliberately vague.
    #[error("unauthorized")]
    Unauthorized,
    /// 403: authenticated, same organization, but the role or relation does not allow it.
    #[error("forbidden")]
    Forbidden,
    /// 404: not found, or in another organization (never 403, so existence does not leak).
    #[error("not found")]
    NotFound,
    /// 409: a conflict with current state (a domain rule or a concurrent write).
    #[error("conflict: {0}")]
    Conflict(String),
    /// 413: body or payload too large.
    #[error("payload too large")]
    PayloadTooLarge,
    /// 429: rate limited; retry after the given seconds.
    #[error("too many requests")]
    TooManyRequests {
        /// Seconds until a retry may succeed.
        retry_after: u64,
    },
    /// 405: the path exists, the method does not.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// 503: the request did not finish in time (or the server is at its connection limit).
    #[error("{0}")]
    Overloaded(&'static str),
    /// 503: a dependency (database, broker) is unavailable.
    #[error("service unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// 500: a bug. Logged with its chain; the client sees no detail.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl ApiError {
    /// A single-field validation error.
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        Self::Validation(vec![FieldError::new(field, message)])
    }

    /// Wraps any error as internal.
    pub fn internal(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Internal(Box::new(error))
    }

    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Overloaded(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn slug(&self) -> &'static str {
        match self {
            Self::Validation(_) => "validation",
            Self::BadRequest(_) => "bad-request",
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not-found",
            Self::Conflict(_) => "conflict",
            Self::PayloadTooLarge => "payload-too-large",
            Self::TooManyRequests { .. } => "rate-limited",
            Self::MethodNotAllowed => "method-not-allowed",
            Self::Overloaded(_) => "overloaded",
            Self::Unavailable(_) => "unavailable",
            Self::Internal(_) => "internal",
        }
    }
}

#[derive(Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    kind: String,
    title: &'a str,
    status: u16,
    detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    errors: Option<&'a [FieldError]>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let detail = match &self {
            Self::Validation(errors) => format!("{} invalid field(s)", errors.len()),
            Self::BadRequest(why) => why.clone(),
            Self::Conflict(why) => why.clone(),
            Self::Unavailable(e) | Self::Internal(e) => {
                // Log the whole chain once; the client gets no internals.
                let mut chain = e.to_string();
                let mut source = e.source();
                while let Some(s) = source {
                    chain.push_str(": ");
                    chain.push_str(&s.to_string());
                    source = s.source();
                }
                tracing::error!(status = status.as_u16(), error = %chain, "request failed");
                status.canonical_reason().unwrap_or("error").to_owned()
            }
            other => other.to_string(),
        };
        let problem = Problem {
            kind: format!("https://trellis.dev/problems/{}", self.slug()),
            title: status.canonical_reason().unwrap_or("error"),
            status: status.as_u16(),
            detail,
            errors: match &self {
                Self::Validation(errors) => Some(errors),
                _ => None,
            },
        };
        let mut response = (status, Json(problem)).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Self::TooManyRequests { retry_after } = self
            && let Ok(value) = HeaderValue::from_str(&retry_after.to_string())
        {
            headers.insert(header::RETRY_AFTER, value);
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Concurrency { .. } | StoreError::DuplicateEventId(_) => {
                Self::Conflict("the resource was changed concurrently; retry".into())
            }
            StoreError::PayloadTooLarge { .. } | StoreError::TooManyEvents { .. } => {
                Self::PayloadTooLarge
            }
            StoreError::InvalidIdempotencyKey => Self::field(
                "Idempotency-Key",
                "must be 1 to 200 visible ASCII characters",
            ),
            StoreError::InvalidEvent(e) => Self::Validation(vec![FieldError::new(
                "body",
                match e {
                    trellis_kernel::NewEventError::NulCharacter(_) => {
                        "must not contain the NUL character".to_owned()
                    }
                    other => other.to_string(),
                },
            )]),
            StoreError::Unavailable(e) => Self::Unavailable(e),
            other => Self::internal(other),
        }
    }
}

/// A text field the domain refused (too long, control or bidirectional-override characters, a
/// link that is not http(s)): 422 naming the field (docs/security.md, "Input limits").
impl From<trellis_kernel::TextError> for ApiError {
    fn from(error: trellis_kernel::TextError) -> Self {
        Self::field(&error.field, error.problem.to_string())
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        Self::Unavailable(Box::new(error))
    }
}

/// Maps a command failure; `domain` maps the aggregate's own errors.
pub fn from_handle<E: std::error::Error + 'static>(
    error: HandleError<E>,
    domain: impl FnOnce(E) -> ApiError,
) -> ApiError {
    match error {
        HandleError::Domain(e) => domain(e),
        HandleError::Store(e) => e.into(),
        HandleError::Upcast(e) => ApiError::internal(e),
        HandleError::Decode(e) => ApiError::internal(e),
    }
}
