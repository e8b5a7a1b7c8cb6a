//! Extractors: the authenticated caller, request metadata, and JSON bodies whose errors name
//! the field.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use trellis_identity::Role;
use trellis_kernel::{ActorId, EventId, Metadata, TenantId, TraceId};
use uuid::Uuid;

use crate::AppState;
use crate::auth::verify_access_token;
use crate::error::{ApiError, FieldError};
use crate::identity::projection::user_by_id;

/// The authenticated user of a request. Built from a valid access token *and* the current
/// read model: a deactivated user or a changed role takes effect at once, not at expiry.
#[derive(Debug, Clone)]
pub struct Caller {
    /// User id.
    pub user_id: Uuid,
    /// Their organization: every query is scoped by it.
    pub organization_id: Uuid,
    /// Current roles.
    pub roles: Vec<Role>,
    /// Their manager.
    pub manager_id: Option<Uuid>,
}

impl Caller {
    /// Whether the caller holds `role`.
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// Counts one expensive request against the caller's per-minute budget.
    ///
    /// # Errors
    /// 429 with `Retry-After` once the budget is spent.
    pub fn spend_expensive(&self, state: &AppState) -> Result<(), ApiError> {
        state.limits.hit(
            &format!("expensive:{}", self.user_id),
            state.config.expensive_limit_per_user,
            std::time::Duration::from_secs(60),
        )
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or(ApiError::Unauthorized)?;
        let claims = verify_access_token(&state.config, token.trim())?;
        let user = user_by_id(&state.pool, claims.sub)
            .await?
            .filter(|u| u.active && u.organization_id == claims.org)
            .ok_or(ApiError::Unauthorized)?;
        Ok(Self {
            user_id: user.user_id,
            organization_id: user.organization_id,
            roles: user
                .roles
                .iter()
                .filter_map(|r| Role::parse(r).ok())
                .collect(),
            manager_id: user.manager_id,
        })
    }
}

/// Correlation for the events a request causes: the request id (set by the edge, or the
/// client's `x-request-id` when it is a UUID) becomes the correlation and trace id.
#[derive(Debug, Clone, Copy)]
pub struct RequestId(pub Uuid);

impl<S: Send + Sync> FromRequestParts<S> for RequestId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let id = parts
            .headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| Uuid::parse_str(v).ok())
            .unwrap_or_else(Uuid::now_v7);
        Ok(Self(id))
    }
}

impl RequestId {
    /// Event metadata for a command made by `caller` (or anonymously).
    pub fn metadata(self, caller: Option<&Caller>) -> Metadata {
        Metadata {
            correlation_id: Some(EventId::from_uuid(self.0)),
            causation_id: None,
            actor_id: caller.map(|c| ActorId::from_uuid(c.user_id)),
            tenant_id: caller.map(|c| TenantId::from_uuid(c.organization_id)),
            trace_id: Some(TraceId::from_uuid(self.0)),
        }
    }
}

/// The path of the first string (or key) containing NUL, if any.
fn nul_path(value: &serde_json::Value, path: String) -> Option<String> {
    match value {
        serde_json::Value::String(s) if s.contains('\0') => {
            Some(if path.is_empty() { ".".into() } else { path })
        }
        serde_json::Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, v)| nul_path(v, format!("{path}[{i}]"))),
        serde_json::Value::Object(map) => map.iter().find_map(|(k, v)| {
            let field = if path.is_empty() {
                k.clone()
            } else {
                format!("{path}.{k}")
            };
            if k.contains('\0') {
                Some(field)
            } else {
                nul_path(v, field)
            }
        }),
        _ => None,
    }
}

/// Query parameters. Every rejection is problem+json: a parameter of the wrong type is 422
/// naming it, and a NUL character (which PostgreSQL cannot hold) is refused here, once, for
/// every endpoint.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or_default();
        let pairs: Vec<(String, String)> = serde_urlencoded_pairs(query);
        if let Some((name, _)) = pairs
            .iter()
            .find(|(k, v)| k.contains('\0') || v.contains('\0'))
        {
            return Err(ApiError::field(name, "must not contain the NUL character"));
        }
        axum::extract::Query::<T>::try_from_uri(&parts.uri)
            .map(|q| Self(q.0))
            .map_err(|e| {
                let message = e.body_text();
                // serde_urlencoded names the field in its message when it can.
                let field = pairs
                    .iter()
                    .map(|(k, _)| k.as_str())
                    .find(|k| message.contains(&format!("`{k}`")) || message.contains(k))
                    .unwrap_or("query");
                ApiError::field(field, message)
            })
    }
}

/// Decoded `name=value` pairs of a query string.
fn serde_urlencoded_pairs(query: &str) -> Vec<(String, String)> {
    axum::extract::Query::<Vec<(String, String)>>::try_from_uri(
        &format!("/?{query}").parse().unwrap_or_default(),
    )
    .map(|q| q.0)
    .unwrap_or_default()
}

/// Path parameters. A malformed id names nothing that exists: 404 problem+json, like an id
/// of another organization.
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| Self(p.0))
            .map_err(|_| ApiError::NotFound)
    }
}

/// A JSON body. Malformed JSON is 400; JSON of the wrong shape is 422 naming the field path.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|_| ApiError::PayloadTooLarge)?;
        let value: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::BadRequest(format!("the body is not valid JSON: {e}")))?;
        if let Some(field) = nul_path(&value, String::new()) {
            // PostgreSQL cannot store NUL in text or jsonb; refuse it where it enters.
            return Err(ApiError::field(
                &field,
                "must not contain the NUL character",
            ));
        }
        serde_path_to_error::deserialize(value)
            .map(ApiJson)
            .map_err(|e| {
                let path = e.path().to_string();
                let message = e.inner().to_string();
                let field = match message.strip_prefix("missing field `") {
                    Some(rest) => {
                        let name = rest.split('`').next().unwrap_or_default();
                        if path == "." {
                            name.to_owned()
                        } else {
                            format!("{path}.{name}")
                        }
                    }
                    None => path,
                };
                ApiError::Validation(vec![FieldError::new(field, message)])
            })
    }
}
