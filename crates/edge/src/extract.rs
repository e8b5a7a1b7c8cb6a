//! Extractors: the authenticated caller, request metadata, and JSON bodies whose errors name
//! the field.

use axum::body::Bytes;
use axum::extract::{FromRef, FromRequest, FromRequestParts, Request};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use trellis_identity::Role;
use trellis_kernel::{ActorId, EventId, Metadata, TenantId, TraceId};
use uuid::Uuid;

use crate::Edge;
use crate::auth::verify_access_token;
use crate::error::{ApiError, FieldError};

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
    /// The login session the access token belongs to.
    pub session_id: Uuid,
    /// When the access token expires (live streams close then).
    pub token_expires: u64,
}

impl Caller {
    /// Whether the caller holds `role`.
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// The caller as use cases see them, with the metadata of `request`'s events.
    pub fn actor(&self, request: &RequestId) -> trellis_identity::Actor {
        trellis_identity::Actor {
            user_id: self.user_id,
            organization_id: self.organization_id,
            roles: self.roles.clone(),
            manager_id: self.manager_id,
            metadata: request.metadata(Some(self)),
        }
    }

    /// Counts one expensive request against the caller's per-minute budget.
    ///
    /// # Errors
    /// 429 with `Retry-After` once the budget is spent.
    pub fn spend_expensive(&self, edge: &Edge) -> Result<(), ApiError> {
        self.spend_expensive_units(edge, 1)
    }

    /// Counts `units` of the caller's expensive budget at once, for work that grows with its
    /// input (an import is charged by its size). Nothing is spent when refused.
    ///
    /// # Errors
    /// 429 with `Retry-After` when the units do not fit in what is left this minute.
    pub fn spend_expensive_units(&self, edge: &Edge, units: u32) -> Result<(), ApiError> {
        edge.limits.spend(
            &format!("expensive:{}", self.user_id),
            units,
            edge.config.expensive_limit_per_user,
            std::time::Duration::from_secs(60),
        )
    }

    /// Counts one command (any request that may append events) against the caller's
    /// per-minute write budget (`TRELLIS_WRITE_LIMIT_USER`).
    ///
    /// # Errors
    /// 429 with `Retry-After` once the budget is spent.
    pub fn spend_write(&self, edge: &Edge) -> Result<(), ApiError> {
        edge.limits.hit(
            &format!("write:{}", self.user_id),
            edge.config.write_limit_per_user,
            std::time::Duration::from_secs(60),
        )
    }
}

/// Marks a route (as a request extension, `axum::Extension(TokenInSubprotocol)`) whose callers
/// may send their access token as a `bearer.<token>` entry of `Sec-WebSocket-Protocol`:
/// browsers cannot set headers on a WebSocket. Only the live WebSocket route carries it; every
/// other route takes the `Authorization` header alone.
#[derive(Debug, Clone, Copy)]
pub struct TokenInSubprotocol;

/// The token of an `Authorization: Bearer …` header or, on a route marked
/// [`TokenInSubprotocol`], of a `bearer.<token>` entry of `Sec-WebSocket-Protocol`.
fn bearer(parts: &Parts) -> Result<&str, ApiError> {
    if let Some(header) = parts.headers.get(AUTHORIZATION) {
        return header
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or(ApiError::Unauthorized);
    }
    if parts.extensions.get::<TokenInSubprotocol>().is_none() {
        return Err(ApiError::Unauthorized);
    }
    parts
        .headers
        .get_all(axum::http::header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|p| p.trim().strip_prefix(WEBSOCKET_BEARER))
        .ok_or(ApiError::Unauthorized)
}

/// The `Sec-WebSocket-Protocol` entry prefix that carries an access token (`bearer.<token>`),
/// offered beside the protocol itself, which the server selects.
const WEBSOCKET_BEARER: &str = "bearer.";

impl<S> FromRequestParts<S> for Caller
where
    Edge: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let edge = Edge::from_ref(state);
        let token = bearer(parts)?;
        let claims = verify_access_token(&edge.config, token.trim())?;
        // A deactivated user or a revoked session (logout, password change, deactivation)
        // ends its access tokens at once, not at their expiry.
        let user = edge
            .sessions
            .principal(claims.sub, claims.org, claims.sid)
            .await?
            .ok_or(ApiError::Unauthorized)?;
        Ok(Self {
            user_id: user.user_id,
            organization_id: user.organization_id,
            roles: user.roles,
            manager_id: user.manager_id,
            session_id: claims.sid,
            token_expires: claims.exp,
        })
    }
}

/// Correlation for the events a request causes. The correlation and trace ids are always
/// made here (a client must not be able to choose or collide them); the client's own
/// `x-request-id`, when it is 1–200 visible ASCII characters, is kept beside them as
/// `request_id`.
#[derive(Debug, Clone)]
pub struct RequestId {
    /// Server-made correlation id of this request.
    pub id: Uuid,
    /// The client's `x-request-id`, if usable.
    pub client: Option<String>,
}

/// The header under which clients send their own request id.
pub const CLIENT_REQUEST_ID: &str = "x-client-request-id";

impl<S: Send + Sync> FromRequestParts<S> for RequestId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        // The edge's SetRequestId layer moves a client's x-request-id to CLIENT_REQUEST_ID
        // and puts a fresh UUID in x-request-id.
        let id = parts
            .extensions
            .get::<ServerRequestId>()
            .map_or_else(Uuid::now_v7, |r| r.0);
        let client = parts
            .headers
            .get(CLIENT_REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty() && v.len() <= 200 && v.bytes().all(|b| b.is_ascii_graphic()))
            .map(str::to_owned);
        Ok(Self { id, client })
    }
}

/// The id the edge made for a request (an extension set by the request-id middleware).
#[derive(Debug, Clone, Copy)]
pub struct ServerRequestId(pub Uuid);

impl RequestId {
    /// Event metadata for a command made by `caller` (or anonymously).
    pub fn metadata(&self, caller: Option<&Caller>) -> Metadata {
        Metadata {
            correlation_id: Some(EventId::from_uuid(self.id)),
            causation_id: None,
            actor_id: caller.map(|c| ActorId::from_uuid(c.user_id)),
            tenant_id: caller.map(|c| TenantId::from_uuid(c.organization_id)),
            trace_id: Some(TraceId::from_uuid(self.id)),
            request_id: self.client.clone(),
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

/// JSON does not tell `2` from `2.0` (JSON Schema calls both integers): a number without a
/// fractional part, exactly representable, is read as an integer, so integer fields take
/// either spelling.
fn integral_numbers(value: &mut serde_json::Value) {
    /// 2^53: every integer up to it is exact in an `f64`.
    const EXACT: f64 = 9_007_199_254_740_992.0;
    match value {
        serde_json::Value::Number(n) if n.is_f64() => {
            if let Some(f) = n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() <= EXACT) {
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                let integer = if f < 0.0 {
                    serde_json::Value::from(f as i64)
                } else {
                    serde_json::Value::from(f as u64)
                };
                *value = integer;
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(integral_numbers),
        serde_json::Value::Object(map) => map.values_mut().for_each(integral_numbers),
        _ => {}
    }
}

/// The path of the first key that appears twice in one JSON object, if any.
fn duplicate_key(json: &[u8]) -> Option<String> {
    let mut found = None;
    let mut deserializer = serde_json::Deserializer::from_slice(json);
    let _ = serde::de::DeserializeSeed::deserialize(
        DupCheck {
            path: String::new(),
            found: &mut found,
        },
        &mut deserializer,
    );
    found
}

struct DupCheck<'a> {
    path: String,
    found: &'a mut Option<String>,
}

impl<'de> serde::de::DeserializeSeed<'de> for DupCheck<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for DupCheck<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 0;
        loop {
            let seed = DupCheck {
                path: format!("{}[{i}]", self.path),
                found: &mut *self.found,
            };
            if seq.next_element_seed(seed)?.is_none() {
                return Ok(());
            }
            i += 1;
        }
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = std::collections::HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            let path = if self.path.is_empty() {
                key.clone()
            } else {
                format!("{}.{key}", self.path)
            };
            if !seen.insert(key) && self.found.is_none() {
                *self.found = Some(path.clone());
            }
            map.next_value_seed(DupCheck {
                path,
                found: &mut *self.found,
            })?;
        }
        Ok(())
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
        let mut value: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::BadRequest(format!("the body is not valid JSON: {e}")))?;
        if let Some(field) = duplicate_key(&bytes) {
            // Parsers disagree on which duplicate wins (serde keeps the last, others the
            // first): a body that means two things to two readers is refused.
            return Err(ApiError::field(
                &field,
                "appears more than once in the object",
            ));
        }
        if let Some(field) = nul_path(&value, String::new()) {
            // PostgreSQL cannot store NUL in text or jsonb; refuse it where it enters.
            return Err(ApiError::field(
                &field,
                "must not contain the NUL character",
            ));
        }
        integral_numbers(&mut value);
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

/// The platform operator: a request bearing `TRELLIS_OPS_TOKEN`. Operational routes
/// (`/metrics`, `/v1/ops/*`) describe the whole deployment, so no tenant role (not even an
/// organization's admin) opens them. Without a configured token they do not exist (404).
#[derive(Debug, Clone, Copy)]
pub struct Operator;

impl<S> FromRequestParts<S> for Operator
where
    Edge: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let edge = Edge::from_ref(state);
        let Some(expected) = &edge.config.ops_token else {
            return Err(ApiError::NotFound);
        };
        let given = bearer(parts)?;
        // Compare digests: equal length, and no early exit that times the prefix.
        use sha2::Digest;
        let a = sha2::Sha256::digest(given.trim().as_bytes());
        let b = sha2::Sha256::digest(expected.expose().as_bytes());
        let differ = a
            .iter()
            .zip(b.iter())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y));
        if differ == 0 {
            Ok(Self)
        } else {
            Err(ApiError::Unauthorized)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integral_floats_read_as_integers_and_fractions_stay() {
        let mut value = serde_json::json!({"a": 2.0, "b": [-3.0, 0.5], "c": 1e300, "d": 7});
        integral_numbers(&mut value);
        assert_eq!(
            value.to_string(),
            r#"{"a":2,"b":[-3,0.5],"c":1e+300,"d":7}"#
        );
    }
}
