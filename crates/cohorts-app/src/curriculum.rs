//! The curriculum service (`trellis serve --roles curriculum`): answers each opened group with
//! its curriculum (`CurriculumGenerated`).
//!
//! For a group: the catalog skills its members' goals name (up to three per member, by shared
//! words), kept when at least one member lacks them (no level, or below 3); each such skill
//! covered by up to two learning atoms of the content context and one resource of the
//! development catalog; ordered so that an atom's prerequisites come before it, then by
//! how many members need the skill, then by content order; personalised: a member who has a
//! step's skill at level 3 or more skips it. The two contexts are reached through
//! [`LearningSources`], which the composition implements over their read models.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use async_trait::async_trait;
use trellis_cohorts::group::{CohortGroup, GroupCommand, GroupEvent, Step, StepKind};
use trellis_cohorts::limits::STEP_TITLE_MAX;
use trellis_cohorts::pool::{CohortPool, PoolEvent};
use trellis_kernel::store::read_whole_stream;
use trellis_kernel::{
    Aggregate, CommandContext, CommandHandler, DomainEvent, EventStore, RecordedEvent, StreamId,
};
use trellis_runtime::{EventHandler, HandlerError};
use uuid::Uuid;

/// Errors of the sources.
pub type SourceError = Box<dyn std::error::Error + Send + Sync>;

/// An atom that teaches a skill.
#[derive(Debug, Clone)]
pub struct AtomSource {
    /// The atom.
    pub id: Uuid,
    /// Title.
    pub title: String,
    /// The skill.
    pub skill_id: Uuid,
    /// Study time.
    pub minutes: u32,
    /// Atoms it builds on.
    pub prerequisites: Vec<Uuid>,
    /// Its content and place in it.
    pub order: (Uuid, i32),
    /// Quality score.
    pub quality: f64,
}

/// A resource that teaches a skill.
#[derive(Debug, Clone)]
pub struct ResourceSource {
    /// The resource.
    pub id: Uuid,
    /// Title.
    pub title: String,
    /// The skill.
    pub skill_id: Uuid,
    /// Duration.
    pub minutes: u32,
}

/// What a curriculum is made of, from the contexts that hold it.
#[async_trait]
pub trait LearningSources: Send + Sync {
    /// The organization's skills a goals text names, best first (at most `limit`).
    async fn skills_for_goals(
        &self,
        organization_id: Uuid,
        goals: &str,
        limit: usize,
    ) -> Result<Vec<Uuid>, SourceError>;

    /// Atoms teaching any of `skills`.
    async fn atoms(
        &self,
        organization_id: Uuid,
        skills: &[Uuid],
    ) -> Result<Vec<AtomSource>, SourceError>;

    /// Resources teaching any of `skills`.
    async fn resources(
        &self,
        organization_id: Uuid,
        skills: &[Uuid],
    ) -> Result<Vec<ResourceSource>, SourceError>;
}

/// A member as the curriculum sees them.
#[derive(Debug, Clone)]
pub struct MemberNeeds {
    /// The learner.
    pub learner_id: Uuid,
    /// Their skills and levels.
    pub skills: BTreeMap<Uuid, u8>,
}

/// A candidate step: (need rank, step, the atoms it builds on, content order).
type Candidate = (usize, Step, Vec<Uuid>, (Uuid, i32));

/// A member has a skill when they list it at level 3 or more.
const HAS_LEVEL: u8 = 3;
/// Skills a curriculum covers at most.
const SKILLS_MAX: usize = 8;

/// The steps for `members` needing `wanted` skills (each listed once per member who wants it).
pub fn plan(
    group_id: Uuid,
    members: &[MemberNeeds],
    wanted: &[Uuid],
    atoms: &[AtomSource],
    resources: &[ResourceSource],
) -> Vec<Step> {
    let has = |m: &MemberNeeds, skill: &Uuid| m.skills.get(skill).is_some_and(|l| *l >= HAS_LEVEL);
    // Skills by how many members want them and lack them.
    let mut need: BTreeMap<Uuid, usize> = BTreeMap::new();
    for skill in wanted {
        let lacking = members.iter().filter(|m| !has(m, skill)).count();
        if lacking > 0 {
            need.insert(*skill, lacking);
        }
    }
    let mut skills: Vec<(Uuid, usize)> = need.into_iter().collect();
    skills.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    skills.truncate(SKILLS_MAX);
    let mut steps: Vec<Candidate> = Vec::new();
    let mut taken = BTreeSet::new();
    for (rank, (skill, _)) in skills.iter().enumerate() {
        let skipped_by: Vec<Uuid> = members
            .iter()
            .filter(|m| has(m, skill))
            .map(|m| m.learner_id)
            .collect();
        let mut teaching: Vec<&AtomSource> =
            atoms.iter().filter(|a| a.skill_id == *skill).collect();
        teaching.sort_by(|a, b| b.quality.total_cmp(&a.quality).then(a.order.cmp(&b.order)));
        for atom in teaching.into_iter().take(2) {
            if taken.insert(atom.id) {
                steps.push((
                    rank,
                    Step {
                        id: Uuid::new_v5(&group_id, atom.id.as_bytes()),
                        title: atom.title.chars().take(STEP_TITLE_MAX).collect(),
                        kind: StepKind::Atom,
                        ref_id: atom.id,
                        skill_id: Some(*skill),
                        minutes: atom.minutes,
                        skipped_by: skipped_by.clone(),
                    },
                    atom.prerequisites.clone(),
                    atom.order,
                ));
            }
        }
        if let Some(resource) = resources.iter().find(|r| r.skill_id == *skill)
            && taken.insert(resource.id)
        {
            steps.push((
                rank,
                Step {
                    id: Uuid::new_v5(&group_id, resource.id.as_bytes()),
                    title: resource.title.chars().take(STEP_TITLE_MAX).collect(),
                    kind: StepKind::Resource,
                    ref_id: resource.id,
                    skill_id: Some(*skill),
                    minutes: resource.minutes,
                    skipped_by,
                },
                Vec::new(),
                (Uuid::max(), i32::MAX),
            ));
        }
    }
    // By need, then content order; then every atom after the selected atoms it builds on
    // (prerequisites are acyclic: the atomizer only points to earlier atoms).
    steps.sort_by(|a, b| a.0.cmp(&b.0).then(a.3.cmp(&b.3)));
    let mut ordered: Vec<Step> = Vec::with_capacity(steps.len());
    let mut placed: BTreeSet<Uuid> = BTreeSet::new();
    let index: BTreeMap<Uuid, usize> = steps
        .iter()
        .enumerate()
        .map(|(i, s)| (s.1.ref_id, i))
        .collect();
    // Depth first: a step's selected prerequisites are placed just before it.
    fn place(
        i: usize,
        steps: &[Candidate],
        index: &BTreeMap<Uuid, usize>,
        placed: &mut BTreeSet<Uuid>,
        ordered: &mut Vec<Step>,
    ) {
        if !placed.insert(steps[i].1.ref_id) {
            return;
        }
        for pre in &steps[i].2 {
            if let Some(&p) = index.get(pre) {
                place(p, steps, index, placed, ordered);
            }
        }
        ordered.push(steps[i].1.clone());
    }
    for i in 0..steps.len() {
        place(i, &steps, &index, &mut placed, &mut ordered);
    }
    ordered
}

/// The service.
pub struct Curriculum {
    store: Arc<dyn EventStore>,
    commands: CommandHandler<dyn EventStore>,
    sources: Arc<dyn LearningSources>,
}

impl Curriculum {
    /// A curriculum service over `store` and `sources`.
    pub fn new(store: Arc<dyn EventStore>, sources: Arc<dyn LearningSources>) -> Self {
        Self {
            commands: CommandHandler::new(Arc::clone(&store), trellis_kernel::upcast::global()),
            store,
            sources,
        }
    }

    async fn answer(&self, event: &RecordedEvent) -> Result<Option<Vec<Step>>, SourceError> {
        let Ok(GroupEvent::GroupOpened {
            pool_id, members, ..
        }) = GroupEvent::from_payload(&event.event_type, event.payload.clone())
        else {
            return Ok(None);
        };
        // Every cohorts event belongs to an organization; one that does not is dead-lettered,
        // not silently left without a curriculum.
        let organization = HandlerError::organization_of(event)?;
        // A redelivered group that has its curriculum costs one fold, not a pool replay.
        let (group, _) = self
            .commands
            .load::<CohortGroup>(event.stream_id.id())
            .await?;
        if group.curriculum {
            return Ok(None);
        }
        // The members' profiles are on the pool's stream (their MatchQueueJoined).
        let pool_stream = StreamId::new(<CohortPool as Aggregate>::KIND, pool_id)?;
        let tickets: BTreeSet<Uuid> = members.iter().map(|m| m.ticket_id).collect();
        let mut needs = Vec::new();
        let mut wanted = Vec::new();
        // Only the members' tickets (their ids are plain in the stored events), then
        // decrypted like every read (goals are personal, ADR 0017) and upcast.
        let stored: Vec<_> = read_whole_stream(&*self.store, &pool_stream)
            .await?
            .into_iter()
            .filter(|e| {
                e.payload
                    .get("ticket_id")
                    .and_then(serde_json::Value::as_str)
                    .and_then(|t| Uuid::parse_str(t).ok())
                    .is_some_and(|t| tickets.contains(&t))
            })
            .collect();
        for recorded in trellis_kernel::personal::prepare(stored).await? {
            if let Ok(PoolEvent::MatchQueueJoined {
                ticket_id,
                learner_id,
                profile,
                ..
            }) = PoolEvent::from_payload(&recorded.event_type, recorded.payload)
                && tickets.contains(&ticket_id)
            {
                wanted.extend(
                    self.sources
                        .skills_for_goals(organization, &profile.goals, 3)
                        .await?,
                );
                needs.push(MemberNeeds {
                    learner_id,
                    skills: profile
                        .skills
                        .iter()
                        .map(|s| (s.skill_id, s.level))
                        .collect(),
                });
            }
        }
        let skills: Vec<Uuid> = wanted
            .iter()
            .copied()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let atoms = self.sources.atoms(organization, &skills).await?;
        let resources = self.sources.resources(organization, &skills).await?;
        Ok(Some(plan(
            event.stream_id.id(),
            &needs,
            &wanted,
            &atoms,
            &resources,
        )))
    }
}

#[async_trait]
impl EventHandler for Curriculum {
    fn name(&self) -> &str {
        "reaction.curriculum"
    }

    fn wants(&self, event_type: &str) -> bool {
        event_type == "GroupOpened"
    }

    async fn handle(&self, events: &[RecordedEvent]) -> Result<(), HandlerError> {
        for event in events.iter().filter(|e| self.wants(&e.event_type)) {
            let steps = self.answer(event).await.map_err(|e| HandlerError {
                message: format!("reading the group's needs: {e}"),
                source: Some(e),
            })?;
            let Some(steps) = steps else {
                continue;
            };
            let context = CommandContext::reacting_to(event, "curriculum")
                .map_err(|e| HandlerError::from_error("idempotency key", e))?;
            match self
                .commands
                .handle::<CohortGroup>(
                    event.stream_id.id(),
                    &GroupCommand::RecordCurriculum { steps },
                    &context,
                )
                .await
            {
                Ok(_)
                | Err(trellis_kernel::HandleError::Domain(
                    trellis_cohorts::group::GroupError::CurriculumExists,
                )) => {}
                Err(e) => return Err(HandlerError::from_error("recording a curriculum", e)),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    fn atom(n: u128, skill: u128, prerequisites: Vec<Uuid>, sequence: i32) -> AtomSource {
        AtomSource {
            id: id(n),
            title: format!("Atom {n}"),
            skill_id: id(skill),
            minutes: 5,
            prerequisites,
            order: (id(500), sequence),
            quality: 0.8,
        }
    }

    #[test]
    fn steps_cover_what_members_lack_in_prerequisite_order_with_skips() {
        let members = vec![
            MemberNeeds {
                learner_id: id(1),
                skills: BTreeMap::from([(id(10), 4)]),
            },
            MemberNeeds {
                learner_id: id(2),
                skills: BTreeMap::new(),
            },
        ];
        // Both want skill 10 (member 1 has it) and skill 11 (nobody has it); 12 is known to all.
        let wanted = vec![id(10), id(11), id(10), id(11)];
        // Atom 21 (skill 11) builds on atom 20 (skill 10).
        let atoms = vec![atom(21, 11, vec![id(20)], 2), atom(20, 10, vec![], 1)];
        let resources = vec![ResourceSource {
            id: id(30),
            title: "Course".into(),
            skill_id: id(11),
            minutes: 60,
        }];
        let steps = plan(id(99), &members, &wanted, &atoms, &resources);
        let refs: Vec<Uuid> = steps.iter().map(|s| s.ref_id).collect();
        assert_eq!(refs, vec![id(20), id(21), id(30)]);
        assert_eq!(steps[0].skipped_by, vec![id(1)], "member 1 has skill 10");
        assert!(steps[1].skipped_by.is_empty());
        assert_eq!(steps[2].kind, StepKind::Resource);
        // Deterministic ids.
        assert_eq!(steps, plan(id(99), &members, &wanted, &atoms, &resources));
    }

    #[test]
    fn nothing_lacking_is_an_empty_curriculum() {
        let members = vec![MemberNeeds {
            learner_id: id(1),
            skills: BTreeMap::from([(id(10), 5)]),
        }];
        assert!(plan(id(99), &members, &[id(10)], &[atom(20, 10, vec![], 1)], &[]).is_empty());
    }
}
