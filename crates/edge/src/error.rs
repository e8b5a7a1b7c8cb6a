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
    /// 413: an uploaded file over its limit, naming the field.
    #[error("{}", .0.message)]
    FileTooLarge(FieldError),
    /// 415: an uploaded file of a type not accepted, or whose bytes contradict its name or
    /// declared type, naming the field.
    #[error("{}", .0.message)]
    UnsupportedFile(FieldError),
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
    /// 503: a dependency (database, broker) cannot be reached or has no connection to spare;
    /// a retry later may succeed. A dependency that answers with an error is `Internal`.
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
            Self::PayloadTooLarge | Self::FileTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedFile(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
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
            Self::PayloadTooLarge | Self::FileTooLarge(_) => "payload-too-large",
            Self::UnsupportedFile(_) => "unsupported-file",
            Self::TooManyRequests { .. } => "rate-limited",
            Self::MethodNotAllowed => "method-not-allowed",
            Self::Overloaded(_) => "overloaded",
            Self::Unavailable(_) => "unavailable",
            Self::Internal(_) => "internal",
        }
    }
}

/// `error: source: source's source …`, each message once: a message that already ends with its
/// source's message (sqlx's `error returned from database: {0}`, thiserror's `{0}` on a
/// `#[source]`) does not get it appended again.
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut chain = error.to_string();
    let mut previous = chain.clone();
    let mut source = error.source();
    while let Some(s) = source {
        let message = s.to_string();
        if !previous.ends_with(&message) {
            chain.push_str(": ");
            chain.push_str(&message);
        }
        previous = message;
        source = s.source();
    }
    chain
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
                let chain = error_chain(e.as_ref());
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
                Self::FileTooLarge(error) | Self::UnsupportedFile(error) => {
                    Some(std::slice::from_ref(error))
                }
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
            // `Backend`, `Corrupt`, `EmptyAppend`, `UnknownPosition`: bugs on this side.
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

/// 503 only when the database cannot be reached or the pool is exhausted
/// ([`trellis_store_postgres::is_unavailable`]); any other database error is a bug, 500.
impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        if trellis_store_postgres::is_unavailable(&error) {
            Self::Unavailable(Box::new(error))
        } else {
            Self::Internal(Box::new(error))
        }
    }
}

/// Maps a command failure; `domain` maps the aggregate's own errors.
pub fn from_handle<E: std::error::Error + Send + Sync + 'static>(
    error: HandleError<E>,
    domain: impl FnOnce(E) -> ApiError,
) -> ApiError {
    from_use_case(error.into(), domain)
}

/// Maps a use case's refusal; `domain` maps the aggregate's own errors.
pub fn from_use_case<D: std::error::Error + 'static>(
    error: trellis_runtime::UseCaseError<D>,
    domain: impl FnOnce(D) -> ApiError,
) -> ApiError {
    use trellis_runtime::UseCaseError;
    match error {
        UseCaseError::NotFound => ApiError::NotFound,
        UseCaseError::Forbidden => ApiError::Forbidden,
        UseCaseError::Invalid(fields) => ApiError::Validation(
            fields
                .into_iter()
                .map(|f| FieldError::new(f.field, f.message))
                .collect(),
        ),
        UseCaseError::Conflict(why) => ApiError::Conflict(why),
        UseCaseError::Domain(e) => domain(e),
        UseCaseError::Store(e) => e.into(),
        UseCaseError::Internal(e) => ApiError::Internal(e),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use trellis_development::skill::SkillError;
    use trellis_kernel::TextProblem;

    /// Every variant with the status its doc comment names and its problem `type` slug.
    fn every_variant() -> Vec<(ApiError, u16, &'static str)> {
        let all = vec![
            (ApiError::field("name", "is required"), 422, "validation"),
            (ApiError::BadRequest("not JSON".into()), 400, "bad-request"),
            (ApiError::Unauthorized, 401, "unauthorized"),
            (ApiError::Forbidden, 403, "forbidden"),
            (ApiError::NotFound, 404, "not-found"),
            (ApiError::Conflict("taken".into()), 409, "conflict"),
            (ApiError::PayloadTooLarge, 413, "payload-too-large"),
            (
                ApiError::FileTooLarge(FieldError::new("file", "over 100 MB")),
                413,
                "payload-too-large",
            ),
            (
                ApiError::UnsupportedFile(FieldError::new("file", "an image")),
                415,
                "unsupported-file",
            ),
            (
                ApiError::TooManyRequests { retry_after: 7 },
                429,
                "rate-limited",
            ),
            (ApiError::MethodNotAllowed, 405, "method-not-allowed"),
            (ApiError::Overloaded("slow"), 503, "overloaded"),
            (
                ApiError::Unavailable("no broker".into()),
                503,
                "unavailable",
            ),
            (ApiError::Internal("a bug".into()), 500, "internal"),
        ];
        // Adding a variant breaks this match until the variant is listed above.
        for (error, _, _) in &all {
            match error {
                ApiError::Validation(_)
                | ApiError::BadRequest(_)
                | ApiError::Unauthorized
                | ApiError::Forbidden
                | ApiError::NotFound
                | ApiError::Conflict(_)
                | ApiError::PayloadTooLarge
                | ApiError::FileTooLarge(_)
                | ApiError::UnsupportedFile(_)
                | ApiError::TooManyRequests { .. }
                | ApiError::MethodNotAllowed
                | ApiError::Overloaded(_)
                | ApiError::Unavailable(_)
                | ApiError::Internal(_) => {}
            }
        }
        all
    }

    #[tokio::test]
    async fn every_variant_answers_its_documented_status_as_problem_json() {
        let all = every_variant();
        assert_eq!(all.len(), 14, "one entry per variant");
        for (error, status, slug) in all {
            let name = format!("{error:?}");
            assert_eq!(error.status().as_u16(), status, "{name}");
            let response = error.into_response();
            assert_eq!(response.status().as_u16(), status, "{name}");
            assert_eq!(
                response.headers()[header::CONTENT_TYPE],
                "application/problem+json",
                "{name}"
            );
            if status == 429 {
                assert_eq!(response.headers()[header::RETRY_AFTER], "7");
            }
            let body = axum::body::to_bytes(response.into_body(), 64 * 1024)
                .await
                .unwrap();
            let problem: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(
                problem["type"],
                format!("https://trellis.dev/problems/{slug}"),
                "{name}"
            );
            assert_eq!(problem["status"], status, "{name}");
            assert!(problem["title"].is_string(), "{name}");
            assert!(problem["detail"].is_string(), "{name}");
            if matches!(slug, "unavailable" | "internal") {
                // The client sees no internals, only the status's reason.
                assert_eq!(problem["detail"], problem["title"], "{name}");
            }
        }
    }

    #[test]
    fn a_database_error_is_503_only_when_the_database_cannot_be_reached() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        for error in [
            sqlx::Error::PoolTimedOut,
            sqlx::Error::PoolClosed,
            sqlx::Error::Io(refused),
        ] {
            assert_eq!(ApiError::from(error).status(), 503);
        }
        for error in [
            sqlx::Error::RowNotFound,
            sqlx::Error::ColumnNotFound("email".into()),
            sqlx::Error::Protocol("unexpected message".into()),
        ] {
            assert_eq!(ApiError::from(error).status(), 500);
        }
        let unavailable = StoreError::Unavailable(Box::new(sqlx::Error::PoolTimedOut));
        assert_eq!(ApiError::from(unavailable).status(), 503);
        let failed = StoreError::Backend(Box::new(sqlx::Error::RowNotFound));
        assert_eq!(ApiError::from(failed).status(), 500);
    }

    /// Each error's own message, source by source, as `Error::source` yields them.
    fn messages(error: &(dyn std::error::Error + 'static)) -> Vec<String> {
        let mut messages = vec![error.to_string()];
        let mut source = error.source();
        while let Some(s) = source {
            messages.push(s.to_string());
            source = s.source();
        }
        messages
    }

    #[test]
    fn a_logged_chain_names_each_error_once() {
        // A store failure inside a command failure, around sqlx's I/O error, whose own message
        // already embeds its source's.
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "peer went away");
        let nested: HandleError<SkillError> =
            HandleError::Store(StoreError::Backend(Box::new(sqlx::Error::Io(io))));
        let chain = error_chain(&nested);
        assert_eq!(
            chain,
            "event store error: the event store failed: \
             error communicating with database: peer went away"
        );
        assert_eq!(chain.matches("peer went away").count(), 1, "{chain}");

        // The project's own errors never repeat their source in their message: a domain error
        // wrapping a text error reads "command refused: <the text problem>", once.
        let text = TextProblem::BidiControl.at("description");
        let text_message = text.to_string();
        let domain: HandleError<SkillError> = HandleError::Domain(SkillError::Text(text));
        let messages = messages(&domain);
        for pair in messages.windows(2) {
            assert!(!pair[0].contains(&pair[1]), "{messages:?}");
        }
        let chain = error_chain(&domain);
        assert_eq!(chain, format!("command refused: {text_message}"));
        let ApiError::Internal(boxed) = ApiError::internal(domain) else {
            unreachable!()
        };
        assert_eq!(error_chain(boxed.as_ref()), chain);
    }
}
