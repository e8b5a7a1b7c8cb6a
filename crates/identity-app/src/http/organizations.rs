//! `POST /v1/organizations`: sign-up.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use trellis_identity::{DisplayName, Email, OrganizationName, Role};

use super::IdentityHttp;
use super::SignedUp;
use crate::NewUser;
use trellis_edge::auth::check_password_policy;
use trellis_edge::error::{ApiError, FieldError};
use trellis_edge::extract::{ApiJson, RequestId};
use trellis_edge::ratelimit::ClientIp;

pub(super) fn router() -> Router<IdentityHttp> {
    Router::new().route("/v1/organizations", post(sign_up))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SignUp {
    /// The organization's name: 1 to 200 characters (trimmed).
    #[schema(min_length = 1, max_length = 200, format = "trellis:nonblank-line")]
    name: String,
    /// Its first admin.
    admin: AdminInput,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AdminInput {
    /// Login address.
    #[schema(format = Email, max_length = 254)]
    email: String,
    /// 12 to 128 characters, mixing at least two of lowercase, uppercase, digits and
    /// symbols, and not easy to guess (zxcvbn score 3 or more; not built from the name or
    /// address).
    #[schema(min_length = 12, max_length = 128)]
    password: String,
    /// How the admin is shown: 1 to 100 characters (trimmed).
    #[schema(min_length = 1, max_length = 100, format = "trellis:nonblank-line")]
    display_name: String,
}

/// Validates a new user's fields, collecting every error under `prefix`.
pub fn validate_new_user(
    prefix: &str,
    email: &str,
    password: String,
    display_name: &str,
    roles: Vec<Role>,
    errors: &mut Vec<FieldError>,
) -> Option<NewUser> {
    let context = [email, display_name];
    let email = Email::parse(email)
        .map_err(|e| errors.push(FieldError::new(format!("{prefix}email"), e.0)))
        .ok();
    let display_name = DisplayName::parse(display_name)
        .map_err(|e| errors.push(FieldError::new(format!("{prefix}display_name"), e.0)))
        .ok();
    if let Err(why) = check_password_policy(&password, &context) {
        errors.push(FieldError::new(format!("{prefix}password"), why));
    }
    Some(NewUser {
        email: email?,
        password,
        display_name: display_name?,
        roles,
        manager_id: None,
    })
}

/// Sign up: create an organization and its first admin.
#[utoipa::path(post, path = "/v1/organizations", tag = "identity", operation_id = "signUp",
    request_body = SignUp,
    responses(
        (status = 201, description = "Created", body = SignedUp),
        (status = 403, description = "Sign-up is closed"),
        (status = 422, description = "Invalid fields, or a weak password"),
        (status = 429, description = "Too many sign-ups from this address; see Retry-After"),
    ))]
pub(crate) async fn sign_up(
    State(state): State<IdentityHttp>,
    ClientIp(ip): ClientIp,
    request: RequestId,
    ApiJson(body): ApiJson<SignUp>,
) -> Result<(StatusCode, Json<SignedUp>), ApiError> {
    if !state.edge.config.signup_open {
        return Err(ApiError::Forbidden);
    }
    state
        .edge
        .limits
        .hit(&format!("signup:{ip}"), 20, Duration::from_secs(3600))?;
    let mut errors = Vec::new();
    let name = OrganizationName::parse(&body.name)
        .map_err(|e| errors.push(FieldError::new("name", e.0)))
        .ok();
    let admin = validate_new_user(
        "admin.",
        &body.admin.email,
        body.admin.password,
        &body.admin.display_name,
        vec![Role::Admin],
        &mut errors,
    );
    let (Some(name), Some(admin), true) = (name, admin, errors.is_empty()) else {
        return Err(ApiError::Validation(errors));
    };
    let (organization_id, admin_user_id) = state
        .identity
        .sign_up(name, admin, &request.metadata(None))
        .await
        .map_err(super::mapped)?;
    Ok((
        StatusCode::CREATED,
        Json(SignedUp {
            admin_user_id,
            organization_id,
        }),
    ))
}
