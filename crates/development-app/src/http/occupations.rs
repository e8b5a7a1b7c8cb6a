//! `GET /v1/occupations?q=`: ESCO occupations, the target roles an IDP may name.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use trellis_development::skill::esco_skill_id;
use uuid::Uuid;

use super::DevelopmentHttp;
use trellis_edge::error::ApiError;
use trellis_edge::extract::{ApiQuery, Caller};

pub(super) fn router() -> Router<DevelopmentHttp> {
    Router::new().route("/v1/occupations", get(search))
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Search {
    #[serde(default)]
    q: String,
    limit: Option<usize>,
}

/// An ESCO occupation.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct Occupation {
    /// What the job is.
    description: String,
    /// Preferred label.
    label: String,
    /// Its skills.
    skills: Vec<OccupationSkill>,
    /// ESCO URI: name it as an IDP's `target_role`.
    uri: String,
}

/// One skill of an occupation.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct OccupationSkill {
    /// Its label.
    label: String,
    /// The id the skill has in your catalog once ESCO skills are imported.
    skill_id: Uuid,
    /// ESCO skill URI.
    uri: String,
}

/// Search occupations by label (any signed-in user). Each skill carries the id it has in your
/// organization's catalog once ESCO skills are imported.
#[utoipa::path(get, path = "/v1/occupations", tag = "development", operation_id = "searchOccupations",
    params(("q" = Option<String>, Query, description = "Text in the label or an alternative label"),
           ("limit" = Option<usize>, Query, minimum = 1, maximum = 100,
               description = "At most this many: 1 to 100, default 20")),
    security(("bearer" = [])),
    responses((status = 200, description = "Matching occupations with their skills", body = Vec<Occupation>)))]
pub(crate) async fn search(
    State(state): State<DevelopmentHttp>,
    caller: Caller,
    ApiQuery(query): ApiQuery<Search>,
) -> Result<Json<Vec<Occupation>>, ApiError> {
    let limit = query.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::field("limit", "must be 1 to 100"));
    }
    let hits = state.development.occupations.search(&query.q, limit);
    Ok(Json(
        hits.into_iter()
            .map(|o| Occupation {
                description: o.description.clone(),
                label: o.label.clone(),
                skills: o
                    .skills
                    .iter()
                    .map(|s| OccupationSkill {
                        label: s.label.clone(),
                        skill_id: esco_skill_id(caller.organization_id, &s.uri),
                        uri: s.uri.clone(),
                    })
                    .collect(),
                uri: o.uri.clone(),
            })
            .collect(),
    ))
}
