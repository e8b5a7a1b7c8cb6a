//! Skills: the catalog everything else refers to (ESCO or the organization's own).

use serde::{Deserialize, Serialize};
use trellis_kernel::text::{TextError, check_line, check_multiline, check_web_url};
use trellis_kernel::{Aggregate, DomainEvent};
use uuid::Uuid;

use crate::limits::{
    ESCO_URI_MAX, SKILL_ALIAS_MAX, SKILL_ALIASES_MAX, SKILL_DESCRIPTION_MAX, SKILL_NAME_MAX,
};

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
        /// Name, 1 to [`SKILL_NAME_MAX`] characters, one line.
        name: String,
        /// Description, at most [`SKILL_DESCRIPTION_MAX`] characters.
        description: String,
        /// Other names it is searched by: at most [`SKILL_ALIASES_MAX`], one line each.
        aliases: Vec<String>,
        /// ESCO concept URI (http or https), when it comes from ESCO.
        esco_uri: Option<String>,
    },
}

/// Events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, strum::VariantNames)]
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
    /// A text field breaks the text rules (422 naming the field): too long, control or
    /// bidirectional-override characters, or an `esco_uri` that is not an http(s) URL.
    #[error(transparent)]
    Text(#[from] TextError),
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
        if name.is_empty() || name.chars().count() > SKILL_NAME_MAX {
            return Err(SkillError::BadName);
        }
        check_line(name, SKILL_NAME_MAX).map_err(|p| p.at("name"))?;
        if aliases.len() > SKILL_ALIASES_MAX
            || aliases
                .iter()
                .any(|a| a.trim().is_empty() || a.chars().count() > SKILL_ALIAS_MAX)
        {
            return Err(SkillError::BadAliases);
        }
        for (i, alias) in aliases.iter().enumerate() {
            check_line(alias.trim(), SKILL_ALIAS_MAX).map_err(|p| p.at(format!("aliases[{i}]")))?;
        }
        let description = description.trim();
        check_multiline(description, SKILL_DESCRIPTION_MAX).map_err(|p| p.at("description"))?;
        if let Some(uri) = esco_uri {
            check_web_url(uri, ESCO_URI_MAX).map_err(|p| p.at("esco_uri"))?;
        }
        Ok(vec![SkillEvent::SkillDefined {
            name: name.to_owned(),
            description: description.to_owned(),
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
