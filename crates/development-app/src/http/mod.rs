//! The development context over HTTP (skills, resources, reviews, IDPs, occupations): parse
//! with the edge kit's extractors, call this crate's use cases and read models, map their
//! errors. Registered once, by the context's module.

mod idps;
mod occupations;
mod resources;
mod reviews;
mod skills;

use std::convert::Infallible;

use axum::Router;
use axum::extract::FromRef;
use trellis_edge::error::from_use_case;
use trellis_edge::extract::Caller;
use trellis_edge::{ApiError, Edge};
use uuid::Uuid;

use crate::Development;

/// What the development handlers reach.
#[derive(Clone)]
pub struct DevelopmentHttp {
    edge: Edge,
    development: Development,
}

impl FromRef<DevelopmentHttp> for Edge {
    fn from_ref(state: &DevelopmentHttp) -> Self {
        state.edge.clone()
    }
}

/// The context's routes over `edge`.
pub fn router(edge: &Edge) -> Router {
    let development = Development::new(
        edge.commands.clone(),
        std::sync::Arc::new(crate::occupations::bundled_occupations()),
    );
    Router::new()
        .merge(skills::router())
        .merge(resources::router())
        .merge(reviews::router())
        .merge(idps::router())
        .merge(occupations::router())
        .with_state(DevelopmentHttp {
            edge: edge.clone(),
            development,
        })
}

/// The context's operations, for the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    skills::define,
    skills::search,
    skills::import,
    resources::publish,
    resources::rate,
    reviews::submit,
    idps::create,
    idps::read,
    idps::list,
    idps::add_item,
    idps::complete_item,
    idps::approve,
    idps::retry,
    occupations::search,
))]
pub struct DevelopmentApi;

fn never(error: Infallible) -> ApiError {
    match error {}
}

/// An active user of the caller's organization named in body field `field`; 422 on it
/// otherwise (the same answer for another organization's user, so nothing leaks).
pub(crate) async fn employee_in_org(
    state: &DevelopmentHttp,
    caller: &Caller,
    id: Uuid,
    field: &str,
) -> Result<trellis_identity_app::UserRow, ApiError> {
    crate::idps::employee_in_org(state.development.pool(), caller.organization_id, id, field)
        .await
        .map_err(|e| from_use_case(e, never))
}

/// Every id of `ids` is a skill of the caller's catalog; otherwise 422 naming `path(i)` for
/// each unknown one.
pub(crate) async fn check_known_skills(
    state: &DevelopmentHttp,
    caller: &Caller,
    ids: &[Uuid],
    path: impl Fn(usize) -> String,
) -> Result<(), ApiError> {
    crate::idps::check_known_skills(state.development.pool(), caller.organization_id, ids, path)
        .await
        .map_err(|e| from_use_case(e, never))
}
