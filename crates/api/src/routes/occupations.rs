//! `GET /v1/occupations?q=`: ESCO occupations, the target roles an IDP may name.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use trellis_development::skill::esco_skill_id;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{ApiQuery, Caller};

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/occupations", get(search))
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Search {
    #[serde(default)]
    q: String,
    limit: Option<usize>,
}

/// Search occupations by label (any signed-in user). Each skill carries the id it has in your
/// organization's catalog once ESCO skills are imported.
#[utoipa::path(get, path = "/v1/occupations", tag = "development",
    params(("q" = Option<String>, Query, description = "Text in the label or an alternative label"),
           ("limit" = Option<usize>, Query, description = "At most this many (default 20, max 100)")),
    security(("bearer" = [])),
    responses((status = 200, description = "Matching occupations with their skills")))]
pub(crate) async fn search(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<Search>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let limit = query.limit.unwrap_or(20).clamp(1, 100);
    let hits = state.occupations.search(&query.q, limit);
    Ok(Json(serde_json::Value::Array(
        hits.into_iter()
            .map(|o| {
                serde_json::json!({
                    "uri": o.uri,
                    "label": o.label,
                    "description": o.description,
                    "skills": o.skills.iter().map(|s| serde_json::json!({
                        "uri": s.uri,
                        "label": s.label,
                        "skill_id": esco_skill_id(caller.organization_id, &s.uri),
                    })).collect::<Vec<_>>(),
                })
            })
            .collect(),
    )))
}
