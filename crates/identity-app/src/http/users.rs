//! `POST /v1/users`, `GET /v1/users/me`, `POST /v1/users/{id}/deactivate`, erasure (`POST
//! /v1/users/{id}/erasure`, `POST /v1/users/me/erasure`, ADR 0017).

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use trellis_identity::Role;
use trellis_identity::user::UserCommand;
use uuid::Uuid;

use super::IdentityHttp;
use super::organizations::validate_new_user;
use super::{OrganizationRef, Profile};
use trellis_edge::consistency::MinVersion;
use trellis_edge::error::{ApiError, FieldError};
use trellis_edge::extract::{ApiJson, ApiPath, ApiQuery, Caller, RequestId};
use trellis_edge::policy;
use trellis_edge::schema::Accepted;

pub(super) fn router() -> Router<IdentityHttp> {
    Router::new()
        .route("/v1/users", post(create))
        .route("/v1/users/me", get(me))
        .route("/v1/users/{id}/deactivate", post(deactivate))
        .route("/v1/users/{id}/roles", post(assign_roles))
        .route("/v1/users/{id}/manager", post(assign_manager))
        .route("/v1/users/me/password", post(change_password))
        .route("/v1/users/{id}/erasure", post(erase))
        .route("/v1/users/me/erasure", post(erase_me))
}

/// Loads a user of the caller's organization (404 otherwise) and checks the caller is admin.
async fn admin_target(
    state: &IdentityHttp,
    caller: &Caller,
    id: Uuid,
) -> Result<crate::UserRow, ApiError> {
    let target = crate::user_by_id(&state.edge.pool, id)
        .await?
        .ok_or(ApiError::NotFound)?;
    policy::same_organization(caller, target.organization_id)?;
    policy::require_any(caller, &[Role::Admin])?;
    Ok(target)
}

fn parse_roles(names: &[String], errors: &mut Vec<FieldError>) -> Vec<Role> {
    if names.is_empty() {
        errors.push(FieldError::new("roles", "needs at least one role"));
    }
    names
        .iter()
        .enumerate()
        .filter_map(|(i, name)| {
            Role::parse(name)
                .map_err(|e| errors.push(FieldError::new(format!("roles[{i}]"), e.0)))
                .ok()
        })
        .collect()
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AssignRoles {
    /// The user's roles from now on (at least one).
    #[schema(value_type = Vec<super::RoleName>, min_items = 1)]
    roles: Vec<String>,
}

/// Replace a user's roles (admin).
#[utoipa::path(post, path = "/v1/users/{id}/roles", tag = "identity", operation_id = "assignUserRoles",
    request_body = AssignRoles, security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "User id")),
    responses(
        (status = 200, description = "Done", body = Accepted),
        (status = 403, description = "Not an admin"),
        (status = 404, description = "No such user in your organization"),
        (status = 409, description = "The organization's last admin cannot give up the role, or the user is deactivated"),
    ))]
pub(crate) async fn assign_roles(
    State(state): State<IdentityHttp>,
    caller: Caller,
    request: RequestId,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<AssignRoles>,
) -> Result<Json<Accepted>, ApiError> {
    caller.spend_write(&state.edge)?;
    let target = admin_target(&state, &caller, id).await?;
    let mut errors = Vec::new();
    let roles = parse_roles(&body.roles, &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let version = state
        .identity
        .assign_roles(&target, roles, &request.metadata(Some(&caller)))
        .await
        .map_err(super::mapped)?
        .version;
    Ok(Json(Accepted { id, version }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AssignManager {
    /// Another active user of your organization; `null` (or absent) clears the manager.
    manager_id: Option<Uuid>,
}

/// Set or clear a user's manager (admin).
#[utoipa::path(post, path = "/v1/users/{id}/manager", tag = "identity", operation_id = "assignUserManager",
    request_body = AssignManager, security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "User id")),
    responses(
        (status = 200, description = "Done", body = Accepted),
        (status = 403, description = "Not an admin"),
        (status = 404, description = "No such user in your organization"),
        (status = 409, description = "The user is deactivated"),
        (status = 422, description = "manager_id is not another active user of your organization"),
    ))]
pub(crate) async fn assign_manager(
    State(state): State<IdentityHttp>,
    caller: Caller,
    request: RequestId,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<AssignManager>,
) -> Result<Json<Accepted>, ApiError> {
    caller.spend_write(&state.edge)?;
    admin_target(&state, &caller, id).await?;
    if let Some(manager) = body.manager_id {
        let ok = manager != id
            && crate::user_by_id(&state.edge.pool, manager)
                .await?
                .is_some_and(|m| m.organization_id == caller.organization_id && m.active);
        if !ok {
            return Err(ApiError::field(
                "manager_id",
                "must be another active user of your organization",
            ));
        }
    }
    let command = UserCommand::AssignManager {
        manager_id: body.manager_id,
    };
    let version = state
        .identity
        .change_user(id, &command, &request.metadata(Some(&caller)))
        .await
        .map_err(super::mapped)?
        .version;
    Ok(Json(Accepted { id, version }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ChangePassword {
    /// Your password now.
    #[schema(min_length = 1)]
    current_password: String,
    /// 12 to 128 characters, mixing at least two of lowercase, uppercase, digits and
    /// symbols, and not easy to guess (zxcvbn score 3 or more; not built from your name or
    /// address).
    #[schema(min_length = 12, max_length = 128)]
    new_password: String,
}

/// Change the caller's password (needs the current one).
#[utoipa::path(post, path = "/v1/users/me/password", tag = "identity", operation_id = "changeMyPassword",
    request_body = ChangePassword, security(("bearer" = [])),
    responses(
        (status = 200, description = "Changed; every other session of yours is logged out", body = Accepted),
        (status = 422, description = "Wrong current password or weak new one"),
        (status = 429, description = "Write or password-hashing budget spent; see Retry-After"),
    ))]
pub(crate) async fn change_password(
    State(state): State<IdentityHttp>,
    caller: Caller,
    request: RequestId,
    ApiJson(body): ApiJson<ChangePassword>,
) -> Result<Json<Accepted>, ApiError> {
    caller.spend_write(&state.edge)?;
    caller.spend_expensive(&state.edge)?;
    let written = state
        .identity
        .change_password(
            &caller.actor(&request),
            caller.session_id,
            body.current_password,
            body.new_password,
        )
        .await
        .map_err(super::mapped)?;
    Ok(Json(Accepted {
        id: caller.user_id,
        version: written.version,
    }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateUser {
    /// Login address, unique in your organization.
    #[schema(format = Email, max_length = 254)]
    email: String,
    /// 12 to 128 characters, mixing at least two of lowercase, uppercase, digits and
    /// symbols, and not easy to guess (zxcvbn score 3 or more; not built from the name or
    /// address).
    #[schema(min_length = 12, max_length = 128)]
    password: String,
    /// How the user is shown: 1 to 100 characters (trimmed).
    #[schema(min_length = 1, max_length = 100, format = "trellis:nonblank-line")]
    display_name: String,
    /// At least one.
    #[schema(value_type = Vec<super::RoleName>, min_items = 1)]
    roles: Vec<String>,
    /// Their manager.
    #[serde(default)]
    manager_id: Option<Uuid>,
}

/// Create a user in the caller's organization (admin).
#[utoipa::path(post, path = "/v1/users", tag = "identity", operation_id = "createUser",
    request_body = CreateUser, security(("bearer" = [])),
    responses(
        (status = 201, description = "Created", body = Accepted),
        (status = 403, description = "Not an admin"),
        (status = 409, description = "E-mail already registered in your organization"),
        (status = 422, description = "Invalid fields, or a weak password"),
        (status = 429, description = "Write or password-hashing budget spent; see Retry-After"),
    ))]
pub(crate) async fn create(
    State(state): State<IdentityHttp>,
    caller: Caller,
    request: RequestId,
    ApiJson(body): ApiJson<CreateUser>,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    policy::require_any(&caller, &[Role::Admin])?;
    caller.spend_write(&state.edge)?;
    caller.spend_expensive(&state.edge)?;
    let mut errors = Vec::new();
    let mut roles = Vec::new();
    for (i, role) in body.roles.iter().enumerate() {
        match Role::parse(role) {
            Ok(role) => roles.push(role),
            Err(e) => errors.push(FieldError::new(format!("roles[{i}]"), e.0)),
        }
    }
    if body.roles.is_empty() {
        errors.push(FieldError::new("roles", "needs at least one role"));
    }
    let user = validate_new_user(
        "",
        &body.email,
        body.password,
        &body.display_name,
        roles,
        &mut errors,
    );
    let (Some(mut user), true) = (user, errors.is_empty()) else {
        return Err(ApiError::Validation(errors));
    };
    user.manager_id = body.manager_id;
    let written = state
        .identity
        .register_user(
            caller.organization_id,
            user,
            &request.metadata(Some(&caller)),
        )
        .await
        .map_err(super::mapped)?;
    Ok((
        StatusCode::CREATED,
        Json(Accepted {
            id: written.id,
            version: written.version,
        }),
    ))
}

/// The caller's profile, roles and organization.
#[utoipa::path(get, path = "/v1/users/me", tag = "identity", operation_id = "getMyProfile",
    security(("bearer" = [])),
    params(("min_version" = Option<u64>, Query, minimum = 0,
        description = "Wait (bounded) until this stream version of your profile is visible")),
    responses((status = 200, description = "Profile", body = Profile)))]
pub(crate) async fn me(
    State(state): State<IdentityHttp>,
    caller: Caller,
    ApiQuery(consistency): ApiQuery<MinVersion>,
) -> Result<Json<Profile>, ApiError> {
    if let Some(version) = consistency.min_version {
        state
            .edge
            .commands
            .wait::<trellis_identity::user::User, crate::IdentityUsers>(caller.user_id, version)
            .await?;
    }
    let user = crate::user_by_id(&state.edge.pool, caller.user_id)
        .await?
        .ok_or(ApiError::Unauthorized)?;
    let organization = crate::organization_name(&state.edge.pool, user.organization_id).await?;
    Ok(Json(Profile {
        active: user.active,
        display_name: user.display_name,
        email: user.email,
        id: user.user_id,
        manager_id: user.manager_id,
        organization: OrganizationRef {
            id: user.organization_id,
            name: organization,
        },
        roles: user.roles,
        version: user.version,
    }))
}

/// Deactivate a user and end their sessions (admin).
#[utoipa::path(post, path = "/v1/users/{id}/deactivate", tag = "identity", operation_id = "deactivateUser",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "User id")),
    responses(
        (status = 200, description = "Done (again: no change)", body = Accepted),
        (status = 403, description = "Not an admin"),
        (status = 404, description = "No such user in your organization"),
        (status = 409, description = "You cannot deactivate yourself, nor the organization's last admin"),
    ))]
pub(crate) async fn deactivate(
    State(state): State<IdentityHttp>,
    caller: Caller,
    request: RequestId,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<Accepted>, ApiError> {
    caller.spend_write(&state.edge)?;
    let target = admin_target(&state, &caller, id).await?;
    if id == caller.user_id {
        // An organization must not lock out its own admin by accident.
        return Err(ApiError::Conflict("you cannot deactivate yourself".into()));
    }
    let version = state
        .identity
        .deactivate(&target, &request.metadata(Some(&caller)))
        .await
        .map_err(super::mapped)?
        .version;
    Ok(Json(Accepted { id, version }))
}

/// Erases `target` (checked to be of the caller's organization) and answers 202.
async fn forget(
    state: &IdentityHttp,
    caller: &Caller,
    request: &RequestId,
    target: crate::UserRow,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    let id = target.user_id;
    let version = state
        .identity
        .forget(&target, &request.metadata(Some(caller)))
        .await
        .map_err(super::mapped)?
        .version;
    Ok((StatusCode::ACCEPTED, Json(Accepted { id, version })))
}

/// Erase a user's personal data (admin of their organization; GDPR, ADR 0017).
///
/// Their data key is destroyed: every personal field of theirs, in every event, on every
/// Kafka topic and in every read model, reads `"[erased]"` from now on, and they can no
/// longer log in. Other users are untouched. Again: no change.
#[utoipa::path(post, path = "/v1/users/{id}/erasure", tag = "identity", operation_id = "eraseUser",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "User id")),
    responses(
        (status = 202, description = "Erased (again: no change)", body = Accepted),
        (status = 403, description = "Not an admin"),
        (status = 404, description = "No such user in your organization"),
        (status = 409, description = "The organization's last admin cannot be erased"),
    ))]
pub(crate) async fn erase(
    State(state): State<IdentityHttp>,
    caller: Caller,
    request: RequestId,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    caller.spend_write(&state.edge)?;
    let target = admin_target(&state, &caller, id).await?;
    forget(&state, &caller, &request, target).await
}

/// Erase your own personal data (GDPR, ADR 0017): as `POST /v1/users/{id}/erasure`, for
/// yourself; your sessions end.
#[utoipa::path(post, path = "/v1/users/me/erasure", tag = "identity", operation_id = "eraseMe",
    security(("bearer" = [])),
    responses(
        (status = 202, description = "Erased", body = Accepted),
        (status = 409, description = "You are your organization's last admin"),
    ))]
pub(crate) async fn erase_me(
    State(state): State<IdentityHttp>,
    caller: Caller,
    request: RequestId,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    caller.spend_write(&state.edge)?;
    let target = crate::user_by_id(&state.edge.pool, caller.user_id)
        .await?
        .ok_or(ApiError::NotFound)?;
    forget(&state, &caller, &request, target).await
}
