//! Performance reviews: a manager rates an employee's skills for a period. The latest review's
//! ratings are the employee's current levels for gap analysis.

use serde::{Deserialize, Serialize};
use trellis_kernel::text::{TextError, check_line, check_multiline};
use trellis_kernel::{Aggregate, DomainEvent};
use uuid::Uuid;

use crate::limits::{REVIEW_FEEDBACK_MAX, REVIEW_PERIOD_MAX};
use crate::values::{SkillLevel, check_skill_list};

/// Commands.
#[derive(Debug, Clone)]
pub enum ReviewCommand {
    /// Submit a review (the caller checked the reviewer manages the employee).
    Submit {
        /// Who is reviewed.
        employee_id: Uuid,
        /// Their manager.
        reviewer_id: Uuid,
        /// e.g. `2026-H2`, 1 to 50 characters.
        period: String,
        /// Ratings (at least one, each skill once).
        ratings: Vec<SkillLevel>,
        /// Written feedback, at most 10,000 characters.
        feedback: String,
    },
}

/// Events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, strum::VariantNames)]
#[serde(tag = "event_type", content = "payload")]
pub enum ReviewEvent {
    /// A review was submitted.
    ReviewSubmitted {
        /// Reviewed employee.
        employee_id: Uuid,
        /// Reviewer.
        reviewer_id: Uuid,
        /// Period.
        period: String,
        /// Ratings.
        ratings: Vec<SkillLevel>,
        /// Feedback.
        feedback: String,
    },
}

impl DomainEvent for ReviewEvent {
    fn event_type(&self) -> &'static str {
        "ReviewSubmitted"
    }
}

/// State.
#[derive(Debug, Default, Clone, Serialize)]
pub struct ReviewState {
    /// Submitted.
    pub submitted: bool,
}

/// Rules (422 with the field unless noted).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReviewError {
    /// Submitted twice (409).
    #[error("the review was already submitted")]
    AlreadySubmitted,
    /// A manager reviewing themselves (403 at the edge).
    #[error("nobody reviews themselves")]
    SelfReview,
    /// Field `period`.
    #[error("period must be 1 to 50 characters")]
    BadPeriod,
    /// Field `ratings`.
    #[error("ratings {0}")]
    BadRatings(&'static str),
    /// Field `feedback`.
    #[error("feedback is at most 10000 characters")]
    FeedbackTooLong,
    /// `period` or `feedback` holds control or bidirectional-override characters (422 naming
    /// the field).
    #[error(transparent)]
    Text(#[from] TextError),
}

/// The aggregate.
pub struct Review;

impl Aggregate for Review {
    const KIND: &'static str = "review";
    type State = ReviewState;
    type Command = ReviewCommand;
    type Event = ReviewEvent;
    type Error = ReviewError;

    fn decide(
        state: &ReviewState,
        command: &ReviewCommand,
    ) -> Result<Vec<ReviewEvent>, ReviewError> {
        let ReviewCommand::Submit {
            employee_id,
            reviewer_id,
            period,
            ratings,
            feedback,
        } = command;
        if state.submitted {
            return Err(ReviewError::AlreadySubmitted);
        }
        if employee_id == reviewer_id {
            return Err(ReviewError::SelfReview);
        }
        let period = period.trim();
        if period.is_empty() || period.chars().count() > REVIEW_PERIOD_MAX {
            return Err(ReviewError::BadPeriod);
        }
        check_line(period, REVIEW_PERIOD_MAX).map_err(|p| p.at("period"))?;
        check_skill_list(ratings, true).map_err(ReviewError::BadRatings)?;
        if feedback.chars().count() > REVIEW_FEEDBACK_MAX {
            return Err(ReviewError::FeedbackTooLong);
        }
        check_multiline(feedback, REVIEW_FEEDBACK_MAX).map_err(|p| p.at("feedback"))?;
        Ok(vec![ReviewEvent::ReviewSubmitted {
            employee_id: *employee_id,
            reviewer_id: *reviewer_id,
            period: period.to_owned(),
            ratings: ratings.clone(),
            feedback: feedback.clone(),
        }])
    }

    fn evolve(state: &mut ReviewState, event: &ReviewEvent) {
        match event {
            ReviewEvent::ReviewSubmitted { .. } => state.submitted = true,
        }
    }
}
