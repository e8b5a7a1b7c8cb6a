//! Learning resources: courses, articles, videos… that teach skills.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use trellis_kernel::text::{TextError, check_line, check_multiline, check_web_url};
use trellis_kernel::{Aggregate, DomainEvent};
use uuid::Uuid;

use crate::limits::{RESOURCE_DESCRIPTION_MAX, RESOURCE_TITLE_MAX, RESOURCE_URL_MAX};
use crate::values::{Level, SkillLevel, check_skill_list};

/// What kind of resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResourceKind {
    /// A course.
    Course,
    /// An article or document.
    Article,
    /// A video.
    Video,
    /// A book.
    Book,
    /// Mentoring or coaching.
    Mentoring,
    /// A hands-on project.
    Project,
}

/// Commands.
#[derive(Debug, Clone)]
pub enum ResourceCommand {
    /// Publish a resource.
    Publish {
        /// Title, 1 to [`RESOURCE_TITLE_MAX`] characters, one line.
        title: String,
        /// Description, at most [`RESOURCE_DESCRIPTION_MAX`] characters.
        description: String,
        /// Where to find it: an absolute http or https URL of at most [`RESOURCE_URL_MAX`]
        /// characters (blank means none).
        url: Option<String>,
        /// Kind.
        kind: ResourceKind,
        /// Expected effort, 1 to 100,000 minutes.
        duration_minutes: u32,
        /// Difficulty.
        difficulty: Level,
        /// Skills it teaches and to which level (at least one).
        skills: Vec<SkillLevel>,
        /// Who published it.
        published_by: Uuid,
    },
    /// Rate it; a user's later rating replaces their earlier one.
    Rate {
        /// The rater.
        user_id: Uuid,
        /// 1 to 5.
        rating: Level,
    },
}

/// Events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, strum::VariantNames)]
#[serde(tag = "event_type", content = "payload")]
pub enum ResourceEvent {
    /// A resource was published.
    ResourcePublished {
        /// Title.
        title: String,
        /// Description.
        description: String,
        /// URL.
        url: Option<String>,
        /// Kind.
        kind: ResourceKind,
        /// Minutes.
        duration_minutes: u32,
        /// Difficulty.
        difficulty: Level,
        /// Skills taught.
        skills: Vec<SkillLevel>,
        /// Publisher.
        published_by: Uuid,
    },
    /// A user rated it.
    ResourceRated {
        /// The rater.
        user_id: Uuid,
        /// The rating.
        rating: Level,
    },
}

impl DomainEvent for ResourceEvent {
    fn event_type(&self) -> &'static str {
        match self {
            Self::ResourcePublished { .. } => "ResourcePublished",
            Self::ResourceRated { .. } => "ResourceRated",
        }
    }
}

/// State.
#[derive(Debug, Default, Clone, Serialize)]
pub struct ResourceState {
    /// Published.
    pub exists: bool,
    /// Latest rating per user.
    pub ratings: BTreeMap<Uuid, Level>,
}

impl ResourceState {
    /// Mean rating, if rated.
    pub fn average_rating(&self) -> Option<f64> {
        if self.ratings.is_empty() {
            return None;
        }
        let sum: u32 = self.ratings.values().map(|l| u32::from(l.get())).sum();
        Some(f64::from(sum) / self.ratings.len() as f64)
    }
}

/// Rules (422 with the field unless noted).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResourceError {
    /// Published twice (409).
    #[error("the resource already exists")]
    AlreadyPublished,
    /// Rated before it exists (404).
    #[error("no such resource")]
    NotFound,
    /// Field `title`.
    #[error("title must be 1 to 300 characters")]
    BadTitle,
    /// Field `duration_minutes`.
    #[error("duration must be 1 to 100000 minutes")]
    BadDuration,
    /// Field `skills`.
    #[error("skills {0}")]
    BadSkills(&'static str),
    /// A text field (`title`, `description`, `url`) breaks the text rules: too long, control
    /// or bidirectional-override characters, or a URL that is not http(s).
    #[error(transparent)]
    Text(#[from] TextError),
}

/// The aggregate.
pub struct Resource;

impl Aggregate for Resource {
    const KIND: &'static str = "resource";
    type State = ResourceState;
    type Command = ResourceCommand;
    type Event = ResourceEvent;
    type Error = ResourceError;

    fn decide(
        state: &ResourceState,
        command: &ResourceCommand,
    ) -> Result<Vec<ResourceEvent>, ResourceError> {
        match command {
            ResourceCommand::Publish {
                title,
                description,
                url,
                kind,
                duration_minutes,
                difficulty,
                skills,
                published_by,
            } => {
                if state.exists {
                    return Err(ResourceError::AlreadyPublished);
                }
                let title = title.trim();
                if title.is_empty() || title.chars().count() > RESOURCE_TITLE_MAX {
                    return Err(ResourceError::BadTitle);
                }
                check_line(title, RESOURCE_TITLE_MAX).map_err(|p| p.at("title"))?;
                let description = description.trim();
                check_multiline(description, RESOURCE_DESCRIPTION_MAX)
                    .map_err(|p| p.at("description"))?;
                let url = url.as_deref().map(str::trim).filter(|u| !u.is_empty());
                if let Some(url) = url {
                    check_web_url(url, RESOURCE_URL_MAX).map_err(|p| p.at("url"))?;
                }
                if !(1..=100_000).contains(duration_minutes) {
                    return Err(ResourceError::BadDuration);
                }
                check_skill_list(skills, true).map_err(ResourceError::BadSkills)?;
                Ok(vec![ResourceEvent::ResourcePublished {
                    title: title.to_owned(),
                    description: description.to_owned(),
                    url: url.map(str::to_owned),
                    kind: *kind,
                    duration_minutes: *duration_minutes,
                    difficulty: *difficulty,
                    skills: skills.clone(),
                    published_by: *published_by,
                }])
            }
            ResourceCommand::Rate { user_id, rating } => {
                if !state.exists {
                    return Err(ResourceError::NotFound);
                }
                if state.ratings.get(user_id) == Some(rating) {
                    return Ok(Vec::new());
                }
                Ok(vec![ResourceEvent::ResourceRated {
                    user_id: *user_id,
                    rating: *rating,
                }])
            }
        }
    }

    fn evolve(state: &mut ResourceState, event: &ResourceEvent) {
        match event {
            ResourceEvent::ResourcePublished { .. } => state.exists = true,
            ResourceEvent::ResourceRated { user_id, rating } => {
                state.ratings.insert(*user_id, *rating);
            }
        }
    }
}
