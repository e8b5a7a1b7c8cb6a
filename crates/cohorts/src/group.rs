//! A formed group: its members, the curriculum the curriculum service generated for it, each
//! member's steps done, and members who left.
//!
//! The group's workspace (seed 003's project service) lives on the same stream: projects,
//! and tasks with a title, an assignee among the members, a state (todo, doing, done) and a
//! due date. Only current members change it.
//!
//! The group's stream opens with `GroupOpened`, appended by the matcher after the pool's
//! `GroupsFormed` (the same members, the group id the batch gave): opening twice changes
//! nothing, so a matcher restarted between the two appends simply opens it again.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use trellis_kernel::text::required_line;
use trellis_kernel::{Aggregate, DomainEvent};
use uuid::Uuid;

use crate::FieldError;
use crate::limits::{PROJECTS_MAX, STEP_TITLE_MAX, STEPS_MAX, TASKS_MAX, WORK_TITLE_MAX};
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

/// Where a task stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    /// Not started.
    #[default]
    Todo,
    /// In progress.
    Doing,
    /// Finished.
    Done,
}

impl TaskState {
    /// `todo`, `doing` or `done`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Todo => "todo",
            Self::Doing => "doing",
            Self::Done => "done",
        }
    }
}

/// A task as it stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    /// Its project.
    pub project_id: Uuid,
    /// Title.
    pub title: String,
    /// The member doing it.
    pub assignee: Option<Uuid>,
    /// Where it stands.
    pub state: TaskState,
    /// When it is due.
    pub due: Option<chrono::NaiveDate>,
}

/// What a task update changes (absent fields stay as they are; `Some(None)` clears).
#[derive(Debug, Clone, Default)]
pub struct TaskChanges {
    /// New title.
    pub title: Option<String>,
    /// New assignee, or none.
    pub assignee: Option<Option<Uuid>>,
    /// New state.
    pub state: Option<TaskState>,
    /// New due date, or none.
    pub due: Option<Option<chrono::NaiveDate>>,
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
    /// A member starts a project in the group's workspace.
    CreateProject {
        /// The new project's id.
        project_id: Uuid,
        /// Title.
        title: String,
        /// The member.
        by: Uuid,
    },
    /// A member adds a task to a project.
    AddTask {
        /// The project.
        project_id: Uuid,
        /// The new task's id.
        task_id: Uuid,
        /// Title.
        title: String,
        /// A member, or nobody yet.
        assignee: Option<Uuid>,
        /// Due date.
        due: Option<chrono::NaiveDate>,
        /// The member.
        by: Uuid,
    },
    /// A member changes a task.
    UpdateTask {
        /// The task.
        task_id: Uuid,
        /// What changes.
        changes: TaskChanges,
        /// The member.
        by: Uuid,
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
    /// Its curriculum was generated (v2 names the members it was made for, so each of them
    /// is told; v1 events read as made for nobody in particular).
    CurriculumGenerated {
        /// Steps, in order.
        steps: Vec<Step>,
        /// The members when it was generated (v1 upcasts with none).
        members: Vec<Uuid>,
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
    /// A member started a project.
    ProjectCreated {
        /// The project.
        project_id: Uuid,
        /// Title.
        title: String,
        /// The member.
        created_by: Uuid,
    },
    /// A member added a task (state `todo`).
    TaskAdded {
        /// The task.
        task_id: Uuid,
        /// The task as added.
        #[serde(flatten)]
        task: Task,
        /// The member.
        added_by: Uuid,
    },
    /// A member changed a task: the task as it now is.
    TaskUpdated {
        /// The task.
        task_id: Uuid,
        /// The task as it now is.
        #[serde(flatten)]
        task: Task,
        /// The member.
        updated_by: Uuid,
    },
}

impl DomainEvent for GroupEvent {
    fn event_type(&self) -> &'static str {
        match self {
            Self::GroupOpened { .. } => "GroupOpened",
            Self::CurriculumGenerated { .. } => "CurriculumGenerated",
            Self::StepCompleted { .. } => "StepCompleted",
            Self::MemberLeftGroup { .. } => "MemberLeftGroup",
            Self::ProjectCreated { .. } => "ProjectCreated",
            Self::TaskAdded { .. } => "TaskAdded",
            Self::TaskUpdated { .. } => "TaskUpdated",
        }
    }

    fn schema_version(&self) -> u32 {
        match self {
            Self::CurriculumGenerated { .. } => 2,
            _ => 1,
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
    /// The workspace's projects.
    pub projects: BTreeSet<Uuid>,
    /// The workspace's tasks.
    pub tasks: BTreeMap<Uuid, Task>,
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
    /// No such project in the group (404).
    #[error("no such project")]
    NoSuchProject,
    /// No such task in the group (404).
    #[error("no such task")]
    NoSuchTask,
    /// The workspace holds as many projects or tasks as it may (409).
    #[error("the workspace holds at most {0} {1}")]
    WorkspaceFull(usize, &'static str),
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
        required_line(&step.title, STEP_TITLE_MAX)
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

/// `title` as a one-line title of the workspace (trimmed), or the field's 422.
fn work_title(title: &str) -> Result<String, FieldError> {
    let title = required_line(title, WORK_TITLE_MAX)
        .map_err(|p| FieldError::new("title", p.to_string()))?;
    Ok(title.to_owned())
}

/// A due date of years 1 to 9999 (what `YYYY-MM-DD` can say).
fn check_due(due: Option<chrono::NaiveDate>) -> Result<(), FieldError> {
    use chrono::Datelike;
    match due {
        Some(date) if !(1..=9999).contains(&date.year()) => Err(FieldError::new(
            "due",
            "must be a date of the years 1 to 9999",
        )),
        _ => Ok(()),
    }
}

/// `assignee` is nobody or a current member.
fn check_assignee(state: &GroupState, assignee: Option<Uuid>) -> Result<(), FieldError> {
    match assignee {
        Some(member) if !state.members.contains(&member) => {
            Err(FieldError::new("assignee", "is not a member of the group"))
        }
        _ => Ok(()),
    }
}

/// A member starts a project (again: no change).
fn create_project(
    state: &GroupState,
    project_id: Uuid,
    title: &str,
    by: Uuid,
) -> Result<Vec<GroupEvent>, GroupError> {
    if state.projects.contains(&project_id) {
        return Ok(Vec::new());
    }
    if state.projects.len() >= PROJECTS_MAX {
        return Err(GroupError::WorkspaceFull(PROJECTS_MAX, "projects"));
    }
    Ok(vec![GroupEvent::ProjectCreated {
        project_id,
        title: work_title(title)?,
        created_by: by,
    }])
}

/// A member adds a task to a project (again: no change).
fn add_task(
    state: &GroupState,
    task_id: Uuid,
    task: Task,
    by: Uuid,
) -> Result<Vec<GroupEvent>, GroupError> {
    if !state.projects.contains(&task.project_id) {
        return Err(GroupError::NoSuchProject);
    }
    if state.tasks.contains_key(&task_id) {
        return Ok(Vec::new());
    }
    if state.tasks.len() >= TASKS_MAX {
        return Err(GroupError::WorkspaceFull(TASKS_MAX, "tasks"));
    }
    check_assignee(state, task.assignee)?;
    check_due(task.due)?;
    Ok(vec![GroupEvent::TaskAdded {
        task_id,
        task: Task {
            title: work_title(&task.title)?,
            state: TaskState::Todo,
            ..task
        },
        added_by: by,
    }])
}

/// A member changes a task (to what it is already: no change).
fn update_task(
    state: &GroupState,
    task_id: Uuid,
    changes: &TaskChanges,
    by: Uuid,
) -> Result<Vec<GroupEvent>, GroupError> {
    let current = state.tasks.get(&task_id).ok_or(GroupError::NoSuchTask)?;
    let mut task = current.clone();
    if let Some(title) = &changes.title {
        task.title = work_title(title)?;
    }
    if let Some(assignee) = changes.assignee {
        // Keeping a member who since left is allowed; a new assignee is a member.
        if assignee != current.assignee {
            check_assignee(state, assignee)?;
        }
        task.assignee = assignee;
    }
    if let Some(new_state) = changes.state {
        task.state = new_state;
    }
    if let Some(due) = changes.due {
        check_due(due)?;
        task.due = due;
    }
    if &task == current {
        return Ok(Vec::new());
    }
    Ok(vec![GroupEvent::TaskUpdated {
        task_id,
        task,
        updated_by: by,
    }])
}

impl Aggregate for CohortGroup {
    const KIND: &'static str = "cohort_group";
    type State = GroupState;
    type Command = GroupCommand;
    type Event = GroupEvent;
    type Error = GroupError;

    fn decide(state: &GroupState, command: &GroupCommand) -> Result<Vec<GroupEvent>, GroupError> {
        match command {
            GroupCommand::Open { .. } if state.exists => Ok(Vec::new()),
            GroupCommand::Open {
                pool_id,
                batch_id,
                members,
            } => {
                if members.is_empty() {
                    return Err(GroupError::NoMembers);
                }
                Ok(vec![GroupEvent::GroupOpened {
                    pool_id: *pool_id,
                    batch_id: *batch_id,
                    members: members.clone(),
                }])
            }
            _ if !state.exists => Err(GroupError::NotFound),
            GroupCommand::RecordCurriculum { steps } => {
                if state.curriculum {
                    return Err(GroupError::CurriculumExists);
                }
                let everyone: BTreeSet<Uuid> = state.members.union(&state.left).copied().collect();
                check_steps(steps, &everyone)?;
                Ok(vec![GroupEvent::CurriculumGenerated {
                    steps: steps.clone(),
                    members: state.members.iter().copied().collect(),
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
            // The workspace is its current members'.
            GroupCommand::CreateProject { by, .. }
            | GroupCommand::AddTask { by, .. }
            | GroupCommand::UpdateTask { by, .. }
                if !state.members.contains(by) =>
            {
                Err(GroupError::NotAMember)
            }
            GroupCommand::CreateProject {
                project_id,
                title,
                by,
            } => create_project(state, *project_id, title, *by),
            GroupCommand::AddTask {
                project_id,
                task_id,
                title,
                assignee,
                due,
                by,
            } => add_task(
                state,
                *task_id,
                Task {
                    project_id: *project_id,
                    title: title.clone(),
                    assignee: *assignee,
                    state: TaskState::Todo,
                    due: *due,
                },
                *by,
            ),
            GroupCommand::UpdateTask {
                task_id,
                changes,
                by,
            } => update_task(state, *task_id, changes, *by),
        }
    }

    fn evolve(state: &mut GroupState, event: &GroupEvent) {
        match event {
            GroupEvent::GroupOpened { members, .. } => {
                state.exists = true;
                state.members = members.iter().map(|m| m.learner_id).collect();
            }
            GroupEvent::CurriculumGenerated { steps, .. } => {
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
            GroupEvent::ProjectCreated { project_id, .. } => {
                state.projects.insert(*project_id);
            }
            GroupEvent::TaskAdded { task_id, task, .. }
            | GroupEvent::TaskUpdated { task_id, task, .. } => {
                state.tasks.insert(*task_id, task.clone());
            }
        }
    }
}

/// Upcasters of the group's events: `CurriculumGenerated` v1 → v2 gains `members` (empty: a
/// v1 curriculum named nobody).
pub fn upcasters() -> trellis_kernel::upcast::Upcasters {
    trellis_kernel::upcast::Upcasters::new().with("CurriculumGenerated", 1, |mut payload| {
        let object = payload
            .as_object_mut()
            .ok_or_else(|| "payload is not an object".to_owned())?;
        object
            .entry("members")
            .or_insert_with(|| serde_json::Value::Array(Vec::new()));
        Ok(payload)
    })
}
