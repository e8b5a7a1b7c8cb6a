//! Validated values shared by the development aggregates.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A value failed validation; the message is safe to show.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ValueError(pub &'static str);

/// A proficiency or difficulty level, 1 (novice) to 5 (expert).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub struct Level(u8);

impl Level {
    /// Checks the range.
    ///
    /// # Errors
    /// Outside 1..=5.
    pub fn parse(value: i64) -> Result<Self, ValueError> {
        match u8::try_from(value) {
            Ok(v @ 1..=5) => Ok(Self(v)),
            _ => Err(ValueError("must be a level from 1 to 5")),
        }
    }

    /// The level.
    pub fn get(self) -> u8 {
        self.0
    }
}

impl TryFrom<u8> for Level {
    type Error = ValueError;
    fn try_from(value: u8) -> Result<Self, Self::Error> {
        Self::parse(i64::from(value))
    }
}

impl From<Level> for u8 {
    fn from(level: Level) -> Self {
        level.0
    }
}

/// A skill at a level (a resource teaches it, a review rates it, an IDP targets it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SkillLevel {
    /// The skill.
    pub skill_id: Uuid,
    /// The level.
    pub level: Level,
}

/// Checks a skill list: non-empty when `required`, no skill twice. Returns the message.
pub(crate) fn check_skill_list(skills: &[SkillLevel], required: bool) -> Result<(), &'static str> {
    if required && skills.is_empty() {
        return Err("needs at least one skill");
    }
    let mut ids: Vec<Uuid> = skills.iter().map(|s| s.skill_id).collect();
    ids.sort_unstable();
    ids.dedup();
    if ids.len() != skills.len() {
        return Err("names a skill twice");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_are_one_to_five() {
        assert!(Level::parse(0).is_err());
        assert!(Level::parse(6).is_err());
        assert!(Level::parse(-1).is_err());
        assert_eq!(Level::parse(3).map(Level::get), Ok(3));
        assert!(serde_json::from_str::<Level>("7").is_err());
    }
}
