//! The cohorts context's application side (seed 003): the `cohort_pools` read model of pools,
//! tickets, groups, curricula, workspaces and webhooks ([`pools`]), the HTTP slice ([`http`]),
//! and the reactive services: the [`matcher`] (scoring with the profile [`vectors`]), the
//! [`curriculum`] and the [`webhooks`] dispatcher (docs/cohorts.md).

pub mod curriculum;
pub mod http;
pub mod matcher;
pub mod pools;
pub mod vectors;
pub mod webhooks;

pub use curriculum::{Curriculum, LearningSources};
pub use matcher::Matcher;
pub use pools::CohortPools;

/// The context's own tables (webhook secrets and deliveries, ticket vectors), migrated by
/// their owner.
pub fn migrations() -> trellis_store_postgres::migrations::Owned {
    trellis_store_postgres::migrations::Owned::new(
        "trellis-cohorts-app",
        sqlx::migrate!("./migrations"),
    )
}

/// Which users a cohorts event concerns (their live notifications, later their exports): the
/// learner of a ticket, the members of a formed or opened group or of its curriculum, the
/// member who changed the workspace and the one a task is assigned to. Decoded by the stream's
/// aggregate (a webhooks event concerns nobody).
pub fn concerned_users(event: &trellis_kernel::RecordedEvent) -> Vec<uuid::Uuid> {
    use trellis_cohorts::group::{CohortGroup, GroupEvent};
    use trellis_cohorts::pool::{CohortPool, PoolEvent};
    use trellis_kernel::{Aggregate, DomainEvent};
    let kind = event.stream_id.kind();
    if kind == CohortPool::KIND {
        let Ok(pool) = PoolEvent::from_payload(&event.event_type, event.payload.clone()) else {
            return Vec::new();
        };
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
    if kind != CohortGroup::KIND {
        return Vec::new();
    }
    match GroupEvent::from_payload(&event.event_type, event.payload.clone()) {
        Ok(GroupEvent::GroupOpened { members, .. }) => {
            members.iter().map(|m| m.learner_id).collect()
        }
        Ok(GroupEvent::CurriculumGenerated { members, .. }) => members,
        Ok(
            GroupEvent::StepCompleted { learner_id, .. }
            | GroupEvent::MemberLeftGroup { learner_id }
            | GroupEvent::ProjectCreated {
                created_by: learner_id,
                ..
            },
        ) => vec![learner_id],
        // The member who changed a task and the one it is assigned to.
        Ok(
            GroupEvent::TaskAdded {
                task, added_by: by, ..
            }
            | GroupEvent::TaskUpdated {
                task,
                updated_by: by,
                ..
            },
        ) => std::iter::once(by).chain(task.assignee).collect(),
        Err(_) => Vec::new(),
    }
}
