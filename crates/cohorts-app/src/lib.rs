//! The cohorts context's application side (seed 003): the `cohort_pools` read model of pools,
//! tickets, groups and curricula ([`pools`]), the HTTP slice ([`http`]), and the two reactive
//! services, the [`matcher`] and the [`curriculum`] (docs/cohorts.md).

pub mod curriculum;
pub mod http;
pub mod matcher;
pub mod pools;

pub use curriculum::{Curriculum, LearningSources};
pub use matcher::Matcher;
pub use pools::CohortPools;

/// Which users a cohorts event concerns (their audit and, later, their notifications and
/// exports): the learner of a ticket, the members of a formed or opened group.
pub fn concerned_users(event: &trellis_kernel::RecordedEvent) -> Vec<uuid::Uuid> {
    use trellis_cohorts::group::GroupEvent;
    use trellis_cohorts::pool::PoolEvent;
    use trellis_kernel::DomainEvent;
    if let Ok(pool) = PoolEvent::from_payload(&event.event_type, event.payload.clone()) {
        return match pool {
            PoolEvent::MatchQueueJoined { learner_id, .. }
            | PoolEvent::MatchQueueLeft { learner_id, .. } => vec![learner_id],
            PoolEvent::GroupsFormed {
                groups, unplaced, ..
            } => groups
                .iter()
                .flat_map(|g| g.members.iter().map(|m| m.learner_id))
                .chain(unplaced.iter().map(|u| u.learner_id))
                .collect(),
            PoolEvent::PoolCreated { .. } | PoolEvent::PoolClosed { .. } => Vec::new(),
        };
    }
    match GroupEvent::from_payload(&event.event_type, event.payload.clone()) {
        Ok(GroupEvent::GroupOpened { members, .. }) => {
            members.iter().map(|m| m.learner_id).collect()
        }
        Ok(
            GroupEvent::StepCompleted { learner_id, .. }
            | GroupEvent::MemberLeftGroup { learner_id },
        ) => vec![learner_id],
        Ok(GroupEvent::CurriculumGenerated { .. }) | Err(_) => Vec::new(),
    }
}
