//! Given/when/then for skill profiles; emitted events are schema-checked.

#![allow(clippy::unwrap_used)]

use trellis_career::skill_profile::{SkillProfile, SkillProfileCommand, SkillProfileEvent};
use trellis_development::Level;
use trellis_testkit::harness::AggregateTest;
use uuid::Uuid;

fn declare(skill: u128, level: i64) -> SkillProfileCommand {
    SkillProfileCommand::DeclareSkill {
        skill_id: Uuid::from_u128(skill),
        level: Level::parse(level).unwrap(),
    }
}

fn declared(skill: u128, level: i64) -> SkillProfileEvent {
    SkillProfileEvent::SkillDeclared {
        skill_id: Uuid::from_u128(skill),
        level: Level::parse(level).unwrap(),
    }
}

#[test]
fn a_declaration_is_recorded_and_a_repeat_is_a_no_op() {
    AggregateTest::<SkillProfile>::given_no_events()
        .when(declare(1, 2))
        .then_events(vec![declared(1, 2)]);
    AggregateTest::<SkillProfile>::given(vec![declared(1, 2)])
        .when(declare(1, 2))
        .then_events(vec![]);
}

#[test]
fn a_new_level_replaces_the_old_one() {
    AggregateTest::<SkillProfile>::given(vec![declared(1, 2), declared(2, 4)])
        .when(declare(1, 3))
        .then_events(vec![declared(1, 3)]);
    // Back to the first level: it was replaced, so this is a change again.
    AggregateTest::<SkillProfile>::given(vec![declared(1, 2), declared(1, 3)])
        .when(declare(1, 2))
        .then_events(vec![declared(1, 2)]);
}
