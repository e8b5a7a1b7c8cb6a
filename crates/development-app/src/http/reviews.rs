//! `POST /v1/reviews`: a manager rates a direct report's skills.

use crate::plans;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use trellis_development::review::{Review, ReviewCommand, ReviewError};
use trellis_development::{Level, SkillLevel};
use uuid::Uuid;

use super::DevelopmentHttp;
use super::{check_known_skills, employee_in_org};
use trellis_edge::error::{ApiError, from_handle};
use trellis_edge::extract::{ApiJson, Caller, RequestId};
use trellis_edge::schema::Accepted;

pub(super) fn router() -> Router<DevelopmentHttp> {
    Router::new().route("/v1/reviews", post(submit))
}

/// One rating.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Rating {
    skill_id: Uuid,
    /// 1 to 5.
    #[schema(value_type = u8, minimum = 1, maximum = 5)]
    level: Level,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SubmitReview {
    /// One of your direct reports.
    employee_id: Uuid,
    /// e.g. `2026-H2`: 1 to 50 characters (trimmed).
    #[schema(min_length = 1, max_length = 50, format = "trellis:nonblank-line")]
    period: String,
    /// Skills of your catalog, each once: 1 to 100.
    #[schema(min_items = 1, max_items = 100)]
    ratings: Vec<Rating>,
    /// At most 10,000 characters.
    #[serde(default)]
    #[schema(max_length = 10000, format = "trellis:text")]
    feedback: String,
}

fn review_error(error: ReviewError) -> ApiError {
    match error {
        ReviewError::SelfReview => ApiError::Forbidden,
        ReviewError::BadPeriod => ApiError::field("period", error.to_string()),
        ReviewError::BadRatings(why) => ApiError::field("ratings", why),
        ReviewError::FeedbackTooLong => ApiError::field("feedback", error.to_string()),
        ReviewError::AlreadySubmitted => ApiError::Conflict(error.to_string()),
        ReviewError::Text(e) => e.into(),
    }
}

/// Submit a performance review (the employee's manager). Its ratings become the employee's
/// current levels for gap analysis.
#[utoipa::path(post, path = "/v1/reviews", tag = "development", operation_id = "submitReview",
    request_body = SubmitReview, security(("bearer" = [])),
    responses(
        (status = 201, description = "Submitted", body = Accepted),
        (status = 403, description = "Not the employee's manager"),
        (status = 422, description = "Invalid fields, unknown skills or employee"),
    ))]
pub(crate) async fn submit(
    State(state): State<DevelopmentHttp>,
    caller: Caller,
    request: RequestId,
    ApiJson(body): ApiJson<SubmitReview>,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    caller.spend_write(&state.edge)?;
    let employee = employee_in_org(&state, &caller, body.employee_id, "employee_id").await?;
    if employee.manager_id != Some(caller.user_id) {
        return Err(ApiError::Forbidden);
    }
    let ids: Vec<Uuid> = body.ratings.iter().map(|r| r.skill_id).collect();
    check_known_skills(&state, &caller, &ids, |i| format!("ratings[{i}].skill_id")).await?;
    let id = Uuid::now_v7();
    let command = ReviewCommand::Submit {
        employee_id: body.employee_id,
        reviewer_id: caller.user_id,
        period: body.period,
        ratings: body
            .ratings
            .iter()
            .map(|r| SkillLevel {
                skill_id: r.skill_id,
                level: r.level,
            })
            .collect(),
        feedback: body.feedback,
    };
    let version = state
        .edge
        .commands
        .run::<Review, plans::DevelopmentPlans>(id, &command, &request.metadata(Some(&caller)))
        .await
        .map_err(|e| from_handle(e, review_error))?
        .version;
    Ok((StatusCode::CREATED, Json(Accepted { id, version })))
}
