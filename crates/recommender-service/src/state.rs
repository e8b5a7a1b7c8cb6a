//! What the recommender knows, folded from the store: per organization a [`Catalog`] (skills
//! with embeddings, resources in an HNSW index, ratings, co-occurrence), each employee's
//! current levels (latest review) and each IDP's targets.

use std::collections::HashMap;

use trellis_career::skill_profile::SkillProfileEvent;
use trellis_development::SkillLevel;
use trellis_development::esco::Occupations;
use trellis_development::idp::IdpEvent;
use trellis_development::resource::ResourceEvent;
use trellis_development::review::ReviewEvent;
use trellis_development::skill::{SkillEvent, esco_skill_id};
use trellis_kernel::{DomainEvent, RecordedEvent, VariantNames};
use trellis_recommender::{Catalog, ResourceInfo};
use uuid::Uuid;

/// Event types the follower folds: every skill, resource, review and skill-profile event,
/// and the plan events the recommender answers.
pub static FOLDED: std::sync::LazyLock<Vec<&'static str>> = std::sync::LazyLock::new(|| {
    [
        SkillEvent::VARIANTS,
        ResourceEvent::VARIANTS,
        ReviewEvent::VARIANTS,
        SkillProfileEvent::VARIANTS,
        trellis_development::idp::RECOMMENDATION_TRIGGERS.as_slice(),
    ]
    .concat()
});

/// A folded event, decoded by its enum (no event type is named here).
enum Folded {
    Skill(SkillEvent),
    Resource(ResourceEvent),
    Review(ReviewEvent),
    Idp(IdpEvent),
    Profile(SkillProfileEvent),
}

/// Decodes `event` if it belongs to one of the folded enums.
fn decode(event: &RecordedEvent) -> Option<Folded> {
    fn of<E: DomainEvent>(event: &RecordedEvent) -> Option<E> {
        if E::VARIANTS.contains(&event.event_type.as_str()) {
            E::from_payload(&event.event_type, event.payload.clone()).ok()
        } else {
            None
        }
    }
    of(event)
        .map(Folded::Skill)
        .or_else(|| of(event).map(Folded::Resource))
        .or_else(|| of(event).map(Folded::Review))
        .or_else(|| of(event).map(Folded::Idp))
        .or_else(|| of(event).map(Folded::Profile))
}

/// One organization.
#[derive(Debug, Default)]
pub struct OrgState {
    /// Skills, resources, co-occurrence.
    pub catalog: Catalog,
    /// Employee → skill → level, from their latest review.
    pub levels: HashMap<Uuid, HashMap<Uuid, u8>>,
    /// Employee → skill → self-declared level (career context): the fallback where the
    /// latest review did not rate a skill.
    pub declared: HashMap<Uuid, HashMap<Uuid, u8>>,
    /// (resource, user) → rating: a changed rating replaces the old one.
    pub ratings: HashMap<(Uuid, Uuid), u8>,
}

/// An IDP as the recommender needs it.
#[derive(Debug, Clone)]
pub struct IdpTargets {
    /// Organization.
    pub organization_id: Uuid,
    /// Whose plan.
    pub employee_id: Uuid,
    /// Targets.
    pub targets: Vec<SkillLevel>,
    /// Latest stream version folded: the trigger has been seen once this reaches it.
    pub version: u64,
}

/// Everything.
#[derive(Debug, Default)]
pub struct State {
    /// By organization.
    pub orgs: HashMap<Uuid, OrgState>,
    /// By IDP.
    pub idps: HashMap<Uuid, IdpTargets>,
    /// Events folded (for status and tests).
    pub folded: u64,
}

pub use trellis_development_app::catalog::{resource_text, skill_text};

/// The text an event needs embedded before it can be folded, if any.
pub fn text_to_embed(event: &RecordedEvent) -> Option<String> {
    match decode(event)? {
        Folded::Skill(SkillEvent::SkillDefined {
            name, description, ..
        }) => Some(skill_text(&name, &description)),
        Folded::Resource(ResourceEvent::ResourcePublished {
            title, description, ..
        }) => Some(resource_text(&title, &description)),
        _ => None,
    }
}

impl State {
    fn org(&mut self, id: Uuid, occupations: &Occupations) -> &mut OrgState {
        self.orgs.entry(id).or_insert_with(|| {
            // ESCO occupations are the first co-occurrence evidence: skills one job needs
            // together. Ids are the organization's deterministic ESCO skill ids, so they line
            // up with an ESCO import (and count nothing for skills never imported).
            let mut org = OrgState::default();
            for o in occupations.all() {
                let basket: Vec<Uuid> =
                    o.skills.iter().map(|s| esco_skill_id(id, &s.uri)).collect();
                org.catalog.add_basket(&basket);
            }
            org
        })
    }

    /// Folds one event; `vector` is the embedding of [`text_to_embed`] when it had one.
    /// Undecodable events are skipped (they cannot have produced anything to recommend).
    pub fn fold(
        &mut self,
        event: &RecordedEvent,
        vector: Option<Vec<f32>>,
        occupations: &Occupations,
    ) {
        let Some(tenant) = event.metadata.tenant_id else {
            return;
        };
        let org_id = tenant.as_uuid();
        let id = event.stream_id.id();
        self.folded += 1;
        let Some(decoded) = decode(event) else {
            return;
        };
        match decoded {
            Folded::Skill(SkillEvent::SkillDefined { name, .. }) => {
                self.org(org_id, occupations)
                    .catalog
                    .add_skill(id, name, vector);
            }
            Folded::Resource(ResourceEvent::ResourcePublished {
                title,
                kind,
                duration_minutes,
                difficulty,
                skills,
                ..
            }) => {
                let kind = serde_json::to_value(kind)
                    .ok()
                    .and_then(|k| k.as_str().map(str::to_owned))
                    .unwrap_or_default();
                let info = ResourceInfo {
                    id,
                    title,
                    kind,
                    difficulty: difficulty.get(),
                    duration_minutes,
                    skills: skills.iter().map(|s| (s.skill_id, s.level.get())).collect(),
                    rating_sum: 0,
                    rating_count: 0,
                };
                let vector = vector.unwrap_or_default();
                self.org(org_id, occupations)
                    .catalog
                    .add_resource(info, vector);
            }
            Folded::Resource(ResourceEvent::ResourceRated { user_id, rating }) => {
                let org = self.org(org_id, occupations);
                if let Some(old) = org.ratings.insert((id, user_id), rating.get()) {
                    org.catalog.unrate(id, old);
                }
                org.catalog.rate(id, rating.get());
            }
            Folded::Review(ReviewEvent::ReviewSubmitted {
                employee_id,
                ratings,
                ..
            }) => {
                let org = self.org(org_id, occupations);
                let skills: Vec<Uuid> = ratings.iter().map(|r| r.skill_id).collect();
                org.catalog.add_basket(&skills);
                // The latest review replaces earlier ones: `$all` is in commit order.
                org.levels.insert(
                    employee_id,
                    ratings
                        .iter()
                        .map(|r| (r.skill_id, r.level.get()))
                        .collect(),
                );
            }
            Folded::Idp(IdpEvent::IdpCreated {
                employee_id,
                target_skills,
                ..
            }) => {
                let skills: Vec<Uuid> = target_skills.iter().map(|t| t.skill_id).collect();
                self.org(org_id, occupations).catalog.add_basket(&skills);
                self.idps.insert(
                    id,
                    IdpTargets {
                        organization_id: org_id,
                        employee_id,
                        targets: target_skills,
                        version: event.stream_version,
                    },
                );
            }
            Folded::Idp(IdpEvent::IdpRecommendationRetried {}) => {
                if let Some(idp) = self.idps.get_mut(&id) {
                    idp.version = idp.version.max(event.stream_version);
                }
            }
            Folded::Profile(SkillProfileEvent::SkillDeclared { skill_id, level }) => {
                // The profile stream is `skill_profile-<user id>`.
                self.org(org_id, occupations)
                    .declared
                    .entry(id)
                    .or_default()
                    .insert(skill_id, level.get());
            }
            Folded::Idp(_) => {}
        }
    }

    /// An employee's current levels: the latest review's ratings, and declared levels for
    /// skills the review did not rate.
    pub fn current_levels(org: &OrgState, employee: Uuid) -> HashMap<Uuid, u8> {
        let mut levels = org.declared.get(&employee).cloned().unwrap_or_default();
        if let Some(reviewed) = org.levels.get(&employee) {
            levels.extend(reviewed.iter().map(|(s, l)| (*s, *l)));
        }
        levels
    }

    /// Whether the follower has folded version `version` of IDP `id`.
    pub fn has_seen(&self, id: Uuid, version: u64) -> bool {
        self.idps.get(&id).is_some_and(|i| i.version >= version)
    }
}
