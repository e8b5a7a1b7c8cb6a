//! The identity context over HTTP (sign-up, login, sessions, users): parse with the edge
//! kit's extractors, call [`crate::Identity`], map its errors. Registered once, by the
//! context's module.

mod auth;
mod organizations;
mod users;

use std::sync::Arc;

use axum::Router;
use axum::extract::FromRef;
use serde::Serialize;
use trellis_edge::error::from_use_case;
use trellis_edge::{ApiError, Edge};
use trellis_identity::user::UserError;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::login_guard::LoginGuard;
use crate::{Identity, IdentityError, Refusal};

/// What the identity handlers reach.
#[derive(Clone)]
pub struct IdentityHttp {
    edge: Edge,
    identity: Identity,
}

impl FromRef<IdentityHttp> for Edge {
    fn from_ref(state: &IdentityHttp) -> Self {
        state.edge.clone()
    }
}

/// The context's routes over `edge` (with this process's failed-login memory).
pub fn router(edge: &Edge) -> Router {
    let identity = Identity {
        commands: edge.commands.clone(),
        config: Arc::clone(&edge.config),
        login_guard: Arc::new(LoginGuard::default()),
    };
    Router::new()
        .merge(organizations::router())
        .merge(auth::router())
        .merge(users::router())
        .with_state(IdentityHttp {
            edge: edge.clone(),
            identity,
        })
}

/// The context's operations, for the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    organizations::sign_up,
    auth::login,
    auth::refresh,
    auth::logout,
    users::create,
    users::me,
    users::deactivate,
    users::erase,
    users::erase_me,
    users::assign_roles,
    users::assign_manager,
    users::change_password,
))]
pub struct IdentityApi;

fn user_error(error: UserError) -> ApiError {
    match error {
        UserError::NotFound => ApiError::NotFound,
        UserError::NoRoles => ApiError::field("roles", "needs at least one role"),
        other => ApiError::Conflict(other.to_string()),
    }
}

/// Maps an identity refusal.
pub(crate) fn mapped(error: IdentityError) -> ApiError {
    from_use_case(error, |refusal| match refusal {
        Refusal::User(e) => user_error(e),
        Refusal::EmailTaken => ApiError::Conflict(refusal.to_string()),
        Refusal::BadCredentials => ApiError::Unauthorized,
        Refusal::Throttled(retry_after) => ApiError::TooManyRequests { retry_after },
        Refusal::Conflict(why) => ApiError::Conflict(why),
    })
}

/// Sign-up result.
#[derive(Serialize, ToSchema)]
pub struct SignedUp {
    /// Its first admin.
    pub admin_user_id: Uuid,
    /// The new organization.
    pub organization_id: Uuid,
}

/// A role name.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RoleName {
    /// Manages the organization: users, catalog, audit.
    Admin,
    /// Reviews and approves their reports' plans.
    Manager,
    /// Has development plans.
    Employee,
    /// Publishes learning resources.
    Instructor,
    /// Learns.
    Learner,
}

/// The caller's profile.
#[derive(Serialize, ToSchema)]
pub struct Profile {
    /// Not deactivated.
    pub active: bool,
    /// Display name.
    pub display_name: String,
    /// Login address.
    #[schema(format = Email)]
    pub email: String,
    /// User id.
    pub id: Uuid,
    /// Manager.
    pub manager_id: Option<Uuid>,
    /// The organization.
    pub organization: OrganizationRef,
    /// Role names.
    #[schema(value_type = Vec<RoleName>)]
    pub roles: Vec<String>,
    /// Stream version of the profile.
    pub version: i64,
}

/// An organization, by id and name.
#[derive(Serialize, ToSchema)]
pub struct OrganizationRef {
    /// Organization id.
    pub id: Uuid,
    /// Its name.
    pub name: Option<String>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    #[test]
    fn typed_responses_serialize_as_the_json_they_replaced() {
        let id = Uuid::now_v7();
        let other = Uuid::now_v7();
        assert_eq!(
            serde_json::to_string(&SignedUp {
                admin_user_id: other,
                organization_id: id,
            })
            .unwrap(),
            json!({"organization_id": id, "admin_user_id": other}).to_string()
        );
        assert_eq!(
            serde_json::to_string(&Profile {
                active: true,
                display_name: "Ada".into(),
                email: "ada@example.com".into(),
                id,
                manager_id: None,
                organization: OrganizationRef {
                    id: other,
                    name: Some("Acme".into()),
                },
                roles: vec!["admin".into()],
                version: 2,
            })
            .unwrap(),
            json!({
                "id": id, "email": "ada@example.com", "display_name": "Ada", "roles": ["admin"],
                "manager_id": null, "active": true,
                "organization": {"id": other, "name": "Acme"}, "version": 2,
            })
            .to_string()
        );
    }

    #[test]
    fn every_refusal_has_its_status() {
        use trellis_runtime::UseCaseError;
        let status = |e: IdentityError| mapped(e).status().as_u16();
        assert_eq!(status(UseCaseError::Domain(Refusal::BadCredentials)), 401);
        assert_eq!(status(UseCaseError::Domain(Refusal::EmailTaken)), 409);
        assert_eq!(status(UseCaseError::Domain(Refusal::Throttled(3))), 429);
        assert_eq!(
            status(UseCaseError::Domain(Refusal::User(UserError::NotFound))),
            404
        );
        assert_eq!(status(UseCaseError::field("manager_id", "no")), 422);
        assert_eq!(status(UseCaseError::Forbidden), 403);
    }
}
