//! The OpenAPI document, generated from the handlers' annotations and the request types
//! (`GET /v1/openapi.json`). Response shapes built with `json!` are described here.

use serde::Serialize;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

use crate::routes;

/// RFC 9457 problem details.
#[derive(Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem.
    #[serde(rename = "type")]
    pub kind: String,
    /// Short summary (the status's reason phrase).
    pub title: String,
    /// HTTP status.
    pub status: u16,
    /// Human explanation.
    pub detail: String,
    /// For validation problems: every invalid field.
    pub errors: Option<Vec<FieldProblem>>,
}

/// One invalid field.
#[derive(Serialize, ToSchema)]
pub struct FieldProblem {
    /// JSON path, e.g. `admin.email` or `roles[1]`.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

/// Sign-up result.
#[derive(Serialize, ToSchema)]
pub struct SignedUp {
    /// The new organization.
    pub organization_id: uuid::Uuid,
    /// Its first admin.
    pub admin_user_id: uuid::Uuid,
}

/// Login and refresh result.
#[derive(Serialize, ToSchema)]
pub struct Tokens {
    /// JWT for `Authorization: Bearer`.
    pub access_token: String,
    /// Opaque, single use.
    pub refresh_token: String,
    /// `Bearer`.
    pub token_type: String,
    /// Access-token lifetime, seconds.
    pub expires_in: u64,
}

/// A command's result: the entity and the stream version it produced (pass it as
/// `?min_version=` to read your write).
#[derive(Serialize, ToSchema)]
pub struct Accepted {
    /// The entity.
    pub id: uuid::Uuid,
    /// Stream version after the command.
    pub version: u64,
}

/// An accepted asynchronous command: the entity is `processing` until a service answers.
#[derive(Serialize, ToSchema)]
pub struct Processing {
    /// The entity.
    pub id: uuid::Uuid,
    /// Always `processing`.
    pub status: String,
    /// Stream version after the command.
    pub version: u64,
}

/// The caller's profile.
#[derive(Serialize, ToSchema)]
pub struct Profile {
    /// User id.
    pub id: uuid::Uuid,
    /// Login address.
    pub email: String,
    /// Display name.
    pub display_name: String,
    /// Role names.
    pub roles: Vec<String>,
    /// Manager.
    pub manager_id: Option<uuid::Uuid>,
    /// Not deactivated.
    pub active: bool,
    /// `{id, name}` of the organization.
    pub organization: serde_json::Value,
    /// Stream version of the profile.
    pub version: u64,
}

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// The document.
#[derive(OpenApi)]
#[openapi(
    info(title = "Trellis API", version = "1", description = "Career and learning development, event-sourced. Errors are application/problem+json."),
    paths(
        routes::organizations::sign_up,
        routes::auth::login,
        routes::auth::refresh,
        routes::auth::logout,
        routes::users::create,
        routes::users::me,
        routes::users::deactivate,
        routes::users::assign_roles,
        routes::users::assign_manager,
        routes::users::change_password,
        routes::audit::stream,
        routes::audit::events,
        routes::events::events,
        routes::health::ready,
        routes::skills::define,
        routes::skills::search,
        routes::skills::import,
        routes::resources::publish,
        routes::resources::rate,
        routes::reviews::submit,
        routes::idps::create,
        routes::idps::read,
        routes::idps::list,
        routes::idps::add_item,
        routes::idps::complete_item,
        routes::idps::approve,
        routes::idps::retry,
        routes::occupations::search,
        routes::profile::declare,
        routes::profile::list,
        routes::ops::projections,
        routes::ops::parked,
        routes::ops::retry_parked,
    ),
    components(schemas(Problem, FieldProblem, SignedUp, Tokens, Accepted, Processing, Profile)),
    modifiers(&BearerAuth),
)]
pub struct ApiDoc;
