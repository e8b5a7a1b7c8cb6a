//! Bounds of the cohorts context's values.

/// Longest pool name (characters).
pub const POOL_NAME_MAX: usize = 200;
/// Largest group.
pub const GROUP_SIZE_MAX: u32 = 50;
/// Most criteria a pool weighs.
pub const CRITERIA_MAX: usize = 20;
/// Smallest batch trigger.
pub const MIN_QUEUE_MIN: u32 = 2;
/// Largest batch trigger (and most tickets one batch forms).
pub const MIN_QUEUE_MAX: u32 = 10_000;
/// Longest wait before a batch forms anyway (seven days).
pub const MAX_WAIT_SECONDS_MAX: u32 = 7 * 24 * 3600;
/// Most skills a learner lists.
pub const SKILLS_MAX: usize = 50;
/// Longest goals text (characters).
pub const GOALS_MAX: usize = 2_000;
/// Most weekly availability slots.
pub const SLOTS_MAX: usize = 42;
/// Most custom answers.
pub const ANSWERS_MAX: usize = 20;
/// Longest custom answer (characters).
pub const ANSWER_MAX: usize = 200;
/// Longest reason a ticket was left unplaced (characters).
pub const REASON_MAX: usize = 500;
/// Most curriculum steps of one group.
pub const STEPS_MAX: usize = 200;
/// Longest step title (characters).
pub const STEP_TITLE_MAX: usize = 300;
/// Most projects of one group's workspace.
pub const PROJECTS_MAX: usize = 50;
/// Most tasks of one group's workspace (all projects).
pub const TASKS_MAX: usize = 1_000;
/// Longest project or task title (characters).
pub const WORK_TITLE_MAX: usize = 200;
/// Most webhooks a pool delivers to at once.
pub const WEBHOOKS_MAX: usize = 10;
/// Longest webhook URL (characters).
pub const WEBHOOK_URL_MAX: usize = 2_000;
