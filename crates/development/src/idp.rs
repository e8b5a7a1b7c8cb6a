//! Individual development plans.
//!
//! Lifecycle: created `processing` → the recommender answers with recommendations (`active`)
//! or a failure (`failed`, retryable) → items are added and completed → a manager approves.
//! Recommender answers are accepted only while `processing`, so a redelivered or late answer
//! changes nothing: an IDP never gets recommendations twice.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use trellis_kernel::text::{TextError, check_line};
use trellis_kernel::{Aggregate, DomainEvent};
use uuid::Uuid;

use crate::limits::{IDP_TARGET_ROLE_MAX, IDP_TITLE_MAX};
use crate::values::{Level, SkillLevel, check_skill_list};

/// Where an IDP stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdpStatus {
    /// Not created.
    #[default]
    None,
    /// Waiting for recommendations.
    Processing,
    /// Has recommendations; being worked on.
    Active,
    /// The recommender failed; can be retried.
    Failed,
}

/// One skill gap: where the employee is and where the plan wants them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gap {
    /// The skill.
    pub skill_id: Uuid,
    /// Current level (0 when unknown).
    pub current: u8,
    /// Target level.
    pub target: Level,
}

/// One recommended resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recommendation {
    /// The resource.
    pub resource_id: Uuid,
    /// Ranking score, higher first.
    pub score: f64,
    /// Gap skills it covers.
    pub skill_ids: Vec<Uuid>,
    /// One line for humans.
    pub reason: String,
}

/// Commands.
#[derive(Debug, Clone)]
pub enum IdpCommand {
    /// Create the plan (the caller checked who may create it for whom).
    Create {
        /// Whose plan.
        employee_id: Uuid,
        /// Who created it (the employee or their manager).
        created_by: Uuid,
        /// Title, 1 to 200 characters.
        title: String,
        /// Skills to reach (at least one, each once).
        target_skills: Vec<SkillLevel>,
        /// An ESCO occupation to grow into.
        target_role: Option<String>,
        /// When it should be done.
        due_date: Option<NaiveDate>,
    },
    /// The recommender's answer.
    RecordRecommendations {
        /// Gaps it computed.
        gaps: Vec<Gap>,
        /// Ranked resources.
        recommendations: Vec<Recommendation>,
    },
    /// The recommender could not answer.
    RecordRecommendationFailure {
        /// Why, for the user.
        reason: String,
    },
    /// Ask again after a failure.
    RetryRecommendations,
    /// Add an item (a resource or a free-form activity).
    AddItem {
        /// Minted by the caller.
        item_id: Uuid,
        /// Title, 1 to 200 characters.
        title: String,
        /// The resource, if any.
        resource_id: Option<Uuid>,
        /// Skills it works on.
        skill_ids: Vec<Uuid>,
    },
    /// Mark an item done.
    CompleteItem {
        /// The item.
        item_id: Uuid,
    },
    /// A manager approves the plan.
    Approve {
        /// The approver.
        approver_id: Uuid,
    },
}

/// Events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, strum::VariantNames)]
#[serde(tag = "event_type", content = "payload")]
pub enum IdpEvent {
    /// Created, status processing.
    IdpCreated {
        /// Whose plan.
        employee_id: Uuid,
        /// Creator.
        created_by: Uuid,
        /// Title.
        title: String,
        /// Targets.
        target_skills: Vec<SkillLevel>,
        /// Target occupation.
        target_role: Option<String>,
        /// Due date.
        due_date: Option<NaiveDate>,
    },
    /// Recommendations arrived, status active.
    IdpRecommendationsGenerated {
        /// Gaps.
        gaps: Vec<Gap>,
        /// Ranked resources.
        recommendations: Vec<Recommendation>,
    },
    /// The recommender failed, status failed.
    IdpRecommendationFailed {
        /// Why.
        reason: String,
    },
    /// Recommendations requested again, status processing.
    IdpRecommendationRetried {},
    /// An item was added.
    IdpItemAdded {
        /// Item id.
        item_id: Uuid,
        /// Title.
        title: String,
        /// Resource.
        resource_id: Option<Uuid>,
        /// Skills.
        skill_ids: Vec<Uuid>,
    },
    /// An item was completed.
    IdpItemCompleted {
        /// Item id.
        item_id: Uuid,
    },
    /// A manager approved.
    IdpApproved {
        /// Approver.
        approver_id: Uuid,
    },
}

impl DomainEvent for IdpEvent {
    fn event_type(&self) -> &'static str {
        match self {
            Self::IdpCreated { .. } => "IdpCreated",
            Self::IdpRecommendationsGenerated { .. } => "IdpRecommendationsGenerated",
            Self::IdpRecommendationFailed { .. } => "IdpRecommendationFailed",
            Self::IdpRecommendationRetried {} => "IdpRecommendationRetried",
            Self::IdpItemAdded { .. } => "IdpItemAdded",
            Self::IdpItemCompleted { .. } => "IdpItemCompleted",
            Self::IdpApproved { .. } => "IdpApproved",
        }
    }
}

/// One item as folded.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Item {
    /// Id.
    pub item_id: Uuid,
    /// Resource.
    pub resource_id: Option<Uuid>,
    /// Done.
    pub completed: bool,
}

/// State.
#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct IdpState {
    /// Status.
    pub status: IdpStatus,
    /// Whose plan.
    pub employee_id: Option<Uuid>,
    /// Items in order.
    pub items: Vec<Item>,
    /// Approved by a manager.
    pub approved: bool,
}

impl IdpState {
    /// Completed items over all items (0 with none).
    pub fn progress(&self) -> f64 {
        if self.items.is_empty() {
            return 0.0;
        }
        let done = self.items.iter().filter(|i| i.completed).count();
        done as f64 / self.items.len() as f64
    }
}

/// Rules; the edge maps them as noted (422 names the field).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdpError {
    /// Created twice (409).
    #[error("the plan already exists")]
    AlreadyExists,
    /// Not created (404).
    #[error("no such plan")]
    NotFound,
    /// Field `title`.
    #[error("title must be 1 to 200 characters")]
    BadTitle,
    /// Field `target_skills`.
    #[error("target_skills {0}")]
    BadTargets(&'static str),
    /// Retry when not failed (409).
    #[error("only a failed plan can be retried")]
    NotFailed,
    /// Items or approval before recommendations arrived (409).
    #[error("the plan is not active yet")]
    NotActive,
    /// Field `item_id` / `resource_id` (409): the same item or resource twice.
    #[error("the plan already has this item")]
    DuplicateItem,
    /// Unknown item (404).
    #[error("no such item")]
    ItemNotFound,
    /// More than [`MAX_ITEMS`] items (409).
    #[error("a plan holds at most 200 items")]
    TooManyItems,
    /// `title` or `target_role` breaks the text rules (422 naming the field): control or
    /// bidirectional-override characters, or too long.
    #[error(transparent)]
    Text(#[from] TextError),
}

/// Most items one plan holds.
pub const MAX_ITEMS: usize = 200;

/// The aggregate.
pub struct Idp;

impl Aggregate for Idp {
    const KIND: &'static str = "idp";
    type State = IdpState;
    type Command = IdpCommand;
    type Event = IdpEvent;
    type Error = IdpError;

    fn decide(state: &IdpState, command: &IdpCommand) -> Result<Vec<IdpEvent>, IdpError> {
        if let IdpCommand::Create {
            employee_id,
            created_by,
            title,
            target_skills,
            target_role,
            due_date,
        } = command
        {
            if state.status != IdpStatus::None {
                return Err(IdpError::AlreadyExists);
            }
            let title = title.trim();
            if title.is_empty() || title.chars().count() > IDP_TITLE_MAX {
                return Err(IdpError::BadTitle);
            }
            check_line(title, IDP_TITLE_MAX).map_err(|p| p.at("title"))?;
            if let Some(role) = target_role {
                check_line(role, IDP_TARGET_ROLE_MAX).map_err(|p| p.at("target_role"))?;
            }
            check_skill_list(target_skills, true).map_err(IdpError::BadTargets)?;
            return Ok(vec![IdpEvent::IdpCreated {
                employee_id: *employee_id,
                created_by: *created_by,
                title: title.to_owned(),
                target_skills: target_skills.clone(),
                target_role: target_role.clone(),
                due_date: *due_date,
            }]);
        }
        if state.status == IdpStatus::None {
            return Err(IdpError::NotFound);
        }
        match command {
            IdpCommand::Create { .. } => Err(IdpError::AlreadyExists),
            IdpCommand::RecordRecommendations {
                gaps,
                recommendations,
            } => Ok(if state.status == IdpStatus::Processing {
                vec![IdpEvent::IdpRecommendationsGenerated {
                    gaps: gaps.clone(),
                    recommendations: recommendations.clone(),
                }]
            } else {
                Vec::new()
            }),
            IdpCommand::RecordRecommendationFailure { reason } => {
                Ok(if state.status == IdpStatus::Processing {
                    vec![IdpEvent::IdpRecommendationFailed {
                        reason: reason.clone(),
                    }]
                } else {
                    Vec::new()
                })
            }
            IdpCommand::RetryRecommendations => match state.status {
                IdpStatus::Failed => Ok(vec![IdpEvent::IdpRecommendationRetried {}]),
                _ => Err(IdpError::NotFailed),
            },
            IdpCommand::AddItem {
                item_id,
                title,
                resource_id,
                skill_ids,
            } => {
                if state.status != IdpStatus::Active {
                    return Err(IdpError::NotActive);
                }
                let title = title.trim();
                if title.is_empty() || title.chars().count() > IDP_TITLE_MAX {
                    return Err(IdpError::BadTitle);
                }
                check_line(title, IDP_TITLE_MAX).map_err(|p| p.at("title"))?;
                let duplicate = state.items.iter().any(|i| {
                    i.item_id == *item_id
                        || (resource_id.is_some() && i.resource_id == *resource_id)
                });
                if duplicate {
                    return Err(IdpError::DuplicateItem);
                }
                if state.items.len() >= MAX_ITEMS {
                    return Err(IdpError::TooManyItems);
                }
                Ok(vec![IdpEvent::IdpItemAdded {
                    item_id: *item_id,
                    title: title.to_owned(),
                    resource_id: *resource_id,
                    skill_ids: skill_ids.clone(),
                }])
            }
            IdpCommand::CompleteItem { item_id } => {
                let item = state
                    .items
                    .iter()
                    .find(|i| i.item_id == *item_id)
                    .ok_or(IdpError::ItemNotFound)?;
                Ok(if item.completed {
                    Vec::new()
                } else {
                    vec![IdpEvent::IdpItemCompleted { item_id: *item_id }]
                })
            }
            IdpCommand::Approve { approver_id } => {
                if state.status != IdpStatus::Active {
                    return Err(IdpError::NotActive);
                }
                Ok(if state.approved {
                    Vec::new()
                } else {
                    vec![IdpEvent::IdpApproved {
                        approver_id: *approver_id,
                    }]
                })
            }
        }
    }

    fn evolve(state: &mut IdpState, event: &IdpEvent) {
        match event {
            IdpEvent::IdpCreated { employee_id, .. } => {
                state.status = IdpStatus::Processing;
                state.employee_id = Some(*employee_id);
            }
            IdpEvent::IdpRecommendationsGenerated { .. } => state.status = IdpStatus::Active,
            IdpEvent::IdpRecommendationFailed { .. } => state.status = IdpStatus::Failed,
            IdpEvent::IdpRecommendationRetried {} => state.status = IdpStatus::Processing,
            IdpEvent::IdpItemAdded {
                item_id,
                resource_id,
                ..
            } => state.items.push(Item {
                item_id: *item_id,
                resource_id: *resource_id,
                completed: false,
            }),
            IdpEvent::IdpItemCompleted { item_id } => {
                if let Some(item) = state.items.iter_mut().find(|i| i.item_id == *item_id) {
                    item.completed = true;
                }
            }
            IdpEvent::IdpApproved { .. } => state.approved = true,
        }
    }
}

/// The plan events the recommender answers: a new plan, and a retry after a failure.
pub const RECOMMENDATION_TRIGGERS: [&str; 2] = ["IdpCreated", "IdpRecommendationRetried"];
