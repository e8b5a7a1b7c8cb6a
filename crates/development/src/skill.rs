//! Skills: the catalog everything else refers to (ESCO or the organization's own).

use serde::{Deserialize, Serialize};
use trellis_kernel::{Aggregate, DomainEvent};
use uuid::Uuid;

/// Namespace for ids of imported ESCO skills, so a re-import finds the same streams.
const ESCO_NAMESPACE: Uuid = Uuid::from_u128(0x7472_656c_6c69_732d_6573_636f_2d73_6b31);

/// The skill id of an ESCO concept in an organization: stable across imports.
pub fn esco_skill_id(organization_id: Uuid, esco_uri: &str) -> Uuid {
    Uuid::new_v5(
        &ESCO_NAMESPACE,
        format!("{organization_id}|{esco_uri}").as_bytes(),
    )
}

/// Commands.
#[derive(Debug, Clone)]
pub enum SkillCommand {
    /// Add a skill to the catalog.
    Define {
        /// Name, 1 to 200 characters.
        name: String,
        /// Description.
        description: String,
        /// Other names it is searched by.
        aliases: Vec<String>,
        /// ESCO concept URI, when it comes from ESCO.
        esco_uri: Option<String>,
    },
}

/// Events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event_type", content = "payload")]
pub enum SkillEvent {
    /// A skill joined the catalog.
    SkillDefined {
        /// Name.
        name: String,
        /// Description.
        description: String,
        /// Aliases.
        aliases: Vec<String>,
        /// ESCO URI.
        esco_uri: Option<String>,
    },
}

impl DomainEvent for SkillEvent {
    fn event_type(&self) -> &'static str {
        "SkillDefined"
    }
}

/// State.
#[derive(Debug, Default, Clone, Serialize)]
pub struct SkillState {
    /// Defined.
    pub exists: bool,
}

/// Rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SkillError {
    /// Defined twice (409; an import skips it).
    #[error("the skill already exists")]
    AlreadyDefined,
    /// Empty or overlong name (422, field `name`).
    #[error("name must be 1 to 200 characters")]
    BadName,
    /// Too many or overlong aliases (422, field `aliases`).
    #[error("at most 50 aliases of at most 200 characters each")]
    BadAliases,
}

/// The aggregate.
pub struct Skill;

impl Aggregate for Skill {
    const KIND: &'static str = "skill";
    type State = SkillState;
    type Command = SkillCommand;
    type Event = SkillEvent;
    type Error = SkillError;

    fn decide(state: &SkillState, command: &SkillCommand) -> Result<Vec<SkillEvent>, SkillError> {
        let SkillCommand::Define {
            name,
            description,
            aliases,
            esco_uri,
        } = command;
        if state.exists {
            return Err(SkillError::AlreadyDefined);
        }
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 200 {
            return Err(SkillError::BadName);
        }
        if aliases.len() > 50
            || aliases
                .iter()
                .any(|a| a.trim().is_empty() || a.chars().count() > 200)
        {
            return Err(SkillError::BadAliases);
        }
        Ok(vec![SkillEvent::SkillDefined {
            name: name.to_owned(),
            description: description.trim().to_owned(),
            aliases: aliases.iter().map(|a| a.trim().to_owned()).collect(),
            esco_uri: esco_uri.clone(),
        }])
    }

    fn evolve(state: &mut SkillState, event: &SkillEvent) {
        match event {
            SkillEvent::SkillDefined { .. } => state.exists = true,
        }
    }
}
