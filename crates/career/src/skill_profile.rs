//! A user's skill profile: one stream per user (`skill_profile-<user id>`), so declarations of
//! one person are ordered and a later declaration of a skill replaces the earlier one.

use serde::{Deserialize, Serialize};
use trellis_development::Level;
use trellis_kernel::{Aggregate, DomainEvent};
use uuid::Uuid;

/// Commands.
#[derive(Debug, Clone)]
pub enum SkillProfileCommand {
    /// Declare (or re-declare) a skill at a level (the caller checked the skill exists).
    DeclareSkill {
        /// The skill.
        skill_id: Uuid,
        /// Self-assessed level.
        level: Level,
    },
}

/// Events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, strum::VariantNames)]
#[serde(tag = "event_type", content = "payload")]
pub enum SkillProfileEvent {
    /// A skill was declared at a level.
    SkillDeclared {
        /// The skill.
        skill_id: Uuid,
        /// Self-assessed level.
        level: Level,
    },
}

impl DomainEvent for SkillProfileEvent {
    fn event_type(&self) -> &'static str {
        "SkillDeclared"
    }
}

/// State: the declared levels.
#[derive(Debug, Default, Clone, Serialize)]
pub struct SkillProfileState {
    /// (skill, level), latest declaration per skill.
    pub skills: Vec<(Uuid, Level)>,
}

/// No rule refuses a declaration today; the enum keeps the aggregate's shape (ADR 0002).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SkillProfileError {}

/// The aggregate.
pub struct SkillProfile;

impl Aggregate for SkillProfile {
    const KIND: &'static str = "skill_profile";
    type State = SkillProfileState;
    type Command = SkillProfileCommand;
    type Event = SkillProfileEvent;
    type Error = SkillProfileError;

    fn decide(
        state: &SkillProfileState,
        command: &SkillProfileCommand,
    ) -> Result<Vec<SkillProfileEvent>, SkillProfileError> {
        let SkillProfileCommand::DeclareSkill { skill_id, level } = command;
        // Declaring what is already declared changes nothing: no event.
        if state.skills.contains(&(*skill_id, *level)) {
            return Ok(Vec::new());
        }
        Ok(vec![SkillProfileEvent::SkillDeclared {
            skill_id: *skill_id,
            level: *level,
        }])
    }

    fn evolve(state: &mut SkillProfileState, event: &SkillProfileEvent) {
        let SkillProfileEvent::SkillDeclared { skill_id, level } = event;
        state.skills.retain(|(s, _)| s != skill_id);
        state.skills.push((*skill_id, *level));
    }
}
