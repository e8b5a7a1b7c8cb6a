//! A formed group: its members, the curriculum the curriculum service generated for it, each
//! member's steps done, and members who left.
//!
//! The group's stream opens with `GroupOpened`, appended by the matcher after the pool's
//! `GroupsFormed` (the same members, the group id the batch gave): opening twice changes
//! nothing, so a matcher restarted between the two appends simply opens it again.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use trellis_kernel::text::check_line;
use trellis_kernel::{Aggregate, DomainEvent};
use uuid::Uuid;

use crate::FieldError;
use crate::limits::{STEP_TITLE_MAX, STEPS_MAX};
use crate::pool::Member;

/// What a curriculum step points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    /// A learning atom of the content context.
    Atom,
    /// A resource of the development catalog.
    Resource,
}

/// One step of a group's curriculum.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// Step id (unique in the curriculum).
    pub id: Uuid,
    /// Title.
    pub title: String,
    /// Atom or resource.
    pub kind: StepKind,
    /// The atom's or resource's id.
    pub ref_id: Uuid,
    /// The skill it teaches, when known.
    pub skill_id: Option<Uuid>,
    /// Estimated minutes.
    pub minutes: u32,
    /// Members who skip it (they have the skill already).
    pub skipped_by: Vec<Uuid>,
}

/// Commands.
#[derive(Debug, Clone)]
pub enum GroupCommand {
    /// Open the group the pool's batch formed.
    Open {
        /// The pool.
        pool_id: Uuid,
        /// The batch.
        batch_id: Uuid,
        /// Members.
        members: Vec<Member>,
    },
    /// The curriculum service's curriculum (ordered by prerequisites).
    RecordCurriculum {
        /// The steps, in order.
        steps: Vec<Step>,
    },
    /// A member marks a step done.
    CompleteStep {
        /// The member.
        learner_id: Uuid,
        /// The step.
        step_id: Uuid,
    },
    /// A member leaves the group.
    Leave {
        /// The member.
        learner_id: Uuid,
    },
}

/// Events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, strum::VariantNames)]
#[serde(tag = "event_type", content = "payload")]
pub enum GroupEvent {
    /// The group opened with its members.
    GroupOpened {
        /// The pool.
        pool_id: Uuid,
        /// The batch.
        batch_id: Uuid,
        /// Members.
        members: Vec<Member>,
    },
    /// Its curriculum was generated.
    CurriculumGenerated {
        /// Steps, in order.
        steps: Vec<Step>,
    },
    /// A member finished a step.
    StepCompleted {
        /// The member.
        learner_id: Uuid,
        /// The step.
        step_id: Uuid,
    },
    /// A member left.
    MemberLeftGroup {
        /// The member.
        learner_id: Uuid,
    },
}

impl DomainEvent for GroupEvent {
    fn event_type(&self) -> &'static str {
        match self {
            Self::GroupOpened { .. } => "GroupOpened",
            Self::CurriculumGenerated { .. } => "CurriculumGenerated",
            Self::StepCompleted { .. } => "StepCompleted",
            Self::MemberLeftGroup { .. } => "MemberLeftGroup",
        }
    }
}

/// State.
#[derive(Debug, Default, Clone, Serialize)]
pub struct GroupState {
    /// Opened.
    pub exists: bool,
    /// Current members.
    pub members: BTreeSet<Uuid>,
    /// Members who left.
    pub left: BTreeSet<Uuid>,
    /// Whether the curriculum was generated (it may have no steps).
    pub curriculum: bool,
    /// Step ids of the curriculum, once generated.
    pub steps: Vec<Uuid>,
    /// Steps done per member.
    pub done: BTreeMap<Uuid, BTreeSet<Uuid>>,
}

/// Rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GroupError {
    /// No such group (404).
    #[error("no such group")]
    NotFound,
    /// Opened with no members.
    #[error("a group has members")]
    NoMembers,
    /// Not a member (404: the group is not theirs).
    #[error("not a member of the group")]
    NotAMember,
    /// The curriculum is generated already.
    #[error("the curriculum exists already")]
    CurriculumExists,
    /// No such step (404).
    #[error("no such step")]
    NoSuchStep,
    /// A request field breaks a rule (422 naming it).
    #[error(transparent)]
    Field(#[from] FieldError),
}

/// The aggregate.
pub struct CohortGroup;

fn check_steps(steps: &[Step], members: &BTreeSet<Uuid>) -> Result<(), FieldError> {
    if steps.len() > STEPS_MAX {
        return Err(FieldError::new("steps", format!("at most {STEPS_MAX}")));
    }
    let mut ids = BTreeSet::new();
    for (i, step) in steps.iter().enumerate() {
        if !ids.insert(step.id) {
            return Err(FieldError::new(format!("steps[{i}].id"), "is used twice"));
        }
        check_line(&step.title, STEP_TITLE_MAX)
            .map_err(|p| FieldError::new(format!("steps[{i}].title"), p.to_string()))?;
        if let Some(stranger) = step.skipped_by.iter().find(|m| !members.contains(m)) {
            return Err(FieldError::new(
                format!("steps[{i}].skipped_by"),
                format!("{stranger} is not a member"),
            ));
        }
    }
    Ok(())
}

impl Aggregate for CohortGroup {
    const KIND: &'static str = "cohort_group";
    type State = GroupState;
    type Command = GroupCommand;
    type Event = GroupEvent;
    type Error = GroupError;

    fn decide(state: &GroupState, command: &GroupCommand) -> Result<Vec<GroupEvent>, GroupError> {
        if let GroupCommand::Open {
            pool_id,
            batch_id,
            members,
        } = command
        {
            if state.exists {
                return Ok(Vec::new());
            }
            if members.is_empty() {
                return Err(GroupError::NoMembers);
            }
            return Ok(vec![GroupEvent::GroupOpened {
                pool_id: *pool_id,
                batch_id: *batch_id,
                members: members.clone(),
            }]);
        }
        if !state.exists {
            return Err(GroupError::NotFound);
        }
        match command {
            GroupCommand::Open { .. } => Ok(Vec::new()),
            GroupCommand::RecordCurriculum { steps } => {
                if state.curriculum {
                    return Err(GroupError::CurriculumExists);
                }
                let everyone: BTreeSet<Uuid> = state.members.union(&state.left).copied().collect();
                check_steps(steps, &everyone)?;
                Ok(vec![GroupEvent::CurriculumGenerated {
                    steps: steps.clone(),
                }])
            }
            GroupCommand::CompleteStep {
                learner_id,
                step_id,
            } => {
                if !state.members.contains(learner_id) {
                    return Err(GroupError::NotAMember);
                }
                if !state.steps.contains(step_id) {
                    return Err(GroupError::NoSuchStep);
                }
                if state
                    .done
                    .get(learner_id)
                    .is_some_and(|done| done.contains(step_id))
                {
                    return Ok(Vec::new());
                }
                Ok(vec![GroupEvent::StepCompleted {
                    learner_id: *learner_id,
                    step_id: *step_id,
                }])
            }
            GroupCommand::Leave { learner_id } => {
                if state.left.contains(learner_id) {
                    return Ok(Vec::new());
                }
                if !state.members.contains(learner_id) {
                    return Err(GroupError::NotAMember);
                }
                Ok(vec![GroupEvent::MemberLeftGroup {
                    learner_id: *learner_id,
                }])
            }
        }
    }

    fn evolve(state: &mut GroupState, event: &GroupEvent) {
        match event {
            GroupEvent::GroupOpened { members, .. } => {
                state.exists = true;
                state.members = members.iter().map(|m| m.learner_id).collect();
            }
            GroupEvent::CurriculumGenerated { steps } => {
                state.curriculum = true;
                state.steps = steps.iter().map(|s| s.id).collect();
            }
            GroupEvent::StepCompleted {
                learner_id,
                step_id,
            } => {
                state.done.entry(*learner_id).or_default().insert(*step_id);
            }
            GroupEvent::MemberLeftGroup { learner_id } => {
                state.members.remove(learner_id);
                state.left.insert(*learner_id);
            }
        }
    }
}
