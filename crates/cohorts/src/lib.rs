//! The cohorts context (seed 003, SPEC §3): learners queue in a pool and are formed into
//! balanced groups, each with a curriculum and progress.
//!
//! Two aggregates, pure deciders:
//! - [`pool::CohortPool`]: the pool's settings **and its match queue**. A ticket
//!   (`MatchQueueJoined` … `MatchQueueLeft`) lives on the pool's stream, not a stream of its
//!   own, because the store appends to one stream atomically: the matcher's `GroupsFormed` is
//!   decided on the queue it read and appended with that stream version, so a learner who
//!   left meanwhile makes the append conflict and the matcher re-forms the batch. No ticket
//!   is placed twice or after leaving, and every queued ticket of a batch is either placed or
//!   told why not (ADR 0014).
//! - [`group::CohortGroup`]: one formed group: members, curriculum, steps done, departures,
//!   and its workspace (projects and tasks).
//! - [`webhooks::PoolWebhooks`]: the URLs a pool's group events are delivered to.

use trellis_kernel::{PersonalData, Subject};

pub mod group;
pub mod limits;
pub mod pool;
mod values;
pub mod webhooks;

pub use values::{
    BUILTIN_ATTRIBUTES, BatchRule, Criterion, Day, GroupSize, LearnerProfile, Mode, SkillLevel,
    Slot, common_slots, intersect, merged, utc_offset_minutes, week_ranges,
};

/// Event fields holding personal data, and whose (ADR 0017): a learner's free text (goals and
/// answers), encrypted with their data key. Skills, time zone and availability stay plain: the
/// matcher scores them, and without the learner's name or words they identify no one.
pub const PERSONAL_DATA: &[PersonalData] = &[PersonalData {
    event_type: "MatchQueueJoined",
    subject: Subject::Field("learner_id"),
    fields: &["profile.goals", "profile.answers"],
}];

/// A rule a command breaks, naming the request field (`group_size.min`, `availability[2].end`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} {reason}")]
pub struct FieldError {
    /// The field.
    pub field: String,
    /// What is wrong.
    pub reason: String,
}

impl FieldError {
    /// `field` `reason`.
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }
}
