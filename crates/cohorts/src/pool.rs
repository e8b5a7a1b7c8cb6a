//! Cohort pools and their match queue.
//!
//! A learner holds at most one open ticket per pool. The matcher answers a batch with
//! `GroupsFormed`, decided on the queue it read: every ticket of that queue is either placed
//! in exactly one group or left queued with the reason, every group's size is within the
//! pool's bounds and its members share at least one weekly slot. A ticket that is no longer
//! queued (the learner left, or it was placed) refuses the batch; appended with the stream
//! version the matcher read, a batch decided on a stale queue conflicts instead.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use trellis_kernel::text::{required_line, required_text};
use trellis_kernel::{Aggregate, DomainEvent};
use uuid::Uuid;

use crate::limits::{POOL_NAME_MAX, REASON_MAX};
use crate::values::{BatchRule, Criterion, GroupSize, LearnerProfile, check_criteria};
use crate::{FieldError, common_slots};

/// Commands.
#[derive(Debug, Clone)]
pub enum PoolCommand {
    /// A new pool.
    Create {
        /// Name, 1 to 200 characters, one line.
        name: String,
        /// Group sizes.
        group_size: GroupSize,
        /// Weighted criteria.
        criteria: Vec<Criterion>,
        /// When a batch forms.
        batch: BatchRule,
        /// An admin or instructor.
        created_by: Uuid,
    },
    /// No more joins or batches.
    Close {
        /// Who closed it.
        closed_by: Uuid,
    },
    /// A learner joins the queue.
    Join {
        /// The new ticket's id.
        ticket_id: Uuid,
        /// The learner.
        learner_id: Uuid,
        /// What they tell the pool.
        profile: LearnerProfile,
        /// When (the edge's clock): the batch timer counts from it.
        joined_at: DateTime<Utc>,
    },
    /// A learner leaves the queue.
    Leave {
        /// The learner.
        learner_id: Uuid,
    },
    /// The matcher's answer for a batch.
    FormGroups {
        /// The batch (the matcher's id for it: a redelivered answer changes nothing).
        batch_id: Uuid,
        /// Groups as ticket ids.
        groups: Vec<Vec<Uuid>>,
        /// Tickets left queued, with the reason for the learner.
        unplaced: Vec<(Uuid, String)>,
    },
}

/// A member of a formed group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// Their ticket.
    pub ticket_id: Uuid,
    /// The learner.
    pub learner_id: Uuid,
}

/// A group as the matcher formed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FormedGroup {
    /// The group's id (UUIDv5 of the batch and its index: the same answer, the same ids).
    pub group_id: Uuid,
    /// Its members.
    pub members: Vec<Member>,
}

/// A ticket the batch could not place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unplaced {
    /// The ticket (it stays queued).
    pub ticket_id: Uuid,
    /// The learner.
    pub learner_id: Uuid,
    /// Why, for the learner.
    pub reason: String,
}

/// Events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, strum::VariantNames)]
#[serde(tag = "event_type", content = "payload")]
pub enum PoolEvent {
    /// A pool was created, open.
    PoolCreated {
        /// Name.
        name: String,
        /// Group sizes.
        group_size: GroupSize,
        /// Criteria.
        criteria: Vec<Criterion>,
        /// Batch rule.
        batch: BatchRule,
        /// Creator.
        created_by: Uuid,
    },
    /// The pool closed.
    PoolClosed {
        /// Who closed it.
        closed_by: Uuid,
    },
    /// A learner joined the queue.
    MatchQueueJoined {
        /// Their ticket.
        ticket_id: Uuid,
        /// The learner.
        learner_id: Uuid,
        /// Their profile.
        profile: LearnerProfile,
        /// When.
        joined_at: DateTime<Utc>,
    },
    /// A learner left the queue before being placed.
    MatchQueueLeft {
        /// Their ticket.
        ticket_id: Uuid,
        /// The learner.
        learner_id: Uuid,
    },
    /// A batch formed groups.
    GroupsFormed {
        /// The batch.
        batch_id: Uuid,
        /// The groups.
        groups: Vec<FormedGroup>,
        /// Tickets left queued, and why.
        unplaced: Vec<Unplaced>,
    },
}

impl DomainEvent for PoolEvent {
    fn event_type(&self) -> &'static str {
        match self {
            Self::PoolCreated { .. } => "PoolCreated",
            Self::PoolClosed { .. } => "PoolClosed",
            Self::MatchQueueJoined { .. } => "MatchQueueJoined",
            Self::MatchQueueLeft { .. } => "MatchQueueLeft",
            Self::GroupsFormed { .. } => "GroupsFormed",
        }
    }
}

/// A queued ticket.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueuedTicket {
    /// The learner.
    pub learner_id: Uuid,
    /// Their profile.
    pub profile: LearnerProfile,
    /// When they joined.
    pub joined_at: DateTime<Utc>,
    /// Why the last batch left it queued (it does not start a batch by waiting again).
    pub unplaced_reason: Option<String>,
}

/// State.
#[derive(Debug, Default, Clone, Serialize)]
pub struct PoolState {
    /// Created.
    pub exists: bool,
    /// Closed.
    pub closed: bool,
    /// Name.
    pub name: String,
    /// Group sizes.
    pub group_size: Option<GroupSize>,
    /// Criteria.
    pub criteria: Vec<Criterion>,
    /// Batch rule.
    pub batch: Option<BatchRule>,
    /// Queued tickets by id.
    pub queue: BTreeMap<Uuid, QueuedTicket>,
    /// Learners placed in a group and not queued again since.
    pub placed: BTreeSet<Uuid>,
    /// Batches answered.
    pub batches: BTreeSet<Uuid>,
}

impl PoolState {
    /// The learner's queued ticket.
    pub fn ticket_of(&self, learner_id: Uuid) -> Option<Uuid> {
        self.queue
            .iter()
            .find(|(_, t)| t.learner_id == learner_id)
            .map(|(id, _)| *id)
    }

    /// When the next batch is due by waiting: the oldest ticket no batch has left unplaced,
    /// plus `max_wait_seconds`.
    pub fn wait_deadline(&self) -> Option<DateTime<Utc>> {
        let batch = self.batch?;
        self.queue
            .values()
            .filter(|t| t.unplaced_reason.is_none())
            .map(|t| t.joined_at)
            .min()
            .map(|oldest| oldest + Duration::seconds(i64::from(batch.max_wait_seconds)))
    }

    /// The queued tickets in the order batches take them: those no batch has tried, oldest
    /// first (by join time, then id), then those an earlier batch left queued.
    pub fn batch_order(&self) -> Vec<(Uuid, &QueuedTicket)> {
        let mut tickets: Vec<(Uuid, &QueuedTicket)> =
            self.queue.iter().map(|(id, t)| (*id, t)).collect();
        tickets.sort_by_key(|(id, t)| (t.unplaced_reason.is_some(), t.joined_at, *id));
        tickets
    }

    /// Whether a batch should form at `now`: the queue reached `min_queue` with a ticket no
    /// batch has tried yet, or such a ticket has waited `max_wait_seconds`.
    pub fn batch_due(&self, now: DateTime<Utc>) -> bool {
        let (Some(batch), false) = (self.batch, self.closed) else {
            return false;
        };
        let Some(deadline) = self.wait_deadline() else {
            return false;
        };
        self.queue.len() >= batch.min_queue as usize || deadline <= now
    }
}

/// Rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    /// Created twice (409).
    #[error("the pool already exists")]
    AlreadyExists,
    /// No such pool (404).
    #[error("no such pool")]
    NotFound,
    /// Closed: no joins or batches (409).
    #[error("the pool is closed")]
    Closed,
    /// The learner holds an open ticket already (409).
    #[error("you are already in this pool's queue")]
    AlreadyQueued,
    /// The learner was placed in a group already (409 on leaving).
    #[error("you were placed in a group already")]
    AlreadyPlaced,
    /// A ticket id used twice (a bug of the caller).
    #[error("the ticket id is taken")]
    TicketTaken,
    /// A batch over tickets that are no longer queued: the matcher read a stale queue.
    #[error("ticket {0} is not queued")]
    NotQueued(Uuid),
    /// A batch leaves out a queued ticket older than one it covers (neither placed nor told
    /// why).
    #[error("ticket {0} is neither placed nor left with a reason")]
    TicketLeftOut(Uuid),
    /// A ticket twice in one batch.
    #[error("ticket {0} is placed twice")]
    PlacedTwice(Uuid),
    /// A group outside the pool's sizes.
    #[error("group {index} has {size} members, outside the pool's sizes")]
    BadGroupSize {
        /// Index in the batch.
        index: usize,
        /// Its size.
        size: usize,
    },
    /// A group whose members share no weekly slot (the hard constraint).
    #[error("group {0}'s members share no weekly slot")]
    NoCommonSlot(usize),
    /// An empty batch.
    #[error("a batch places or defers at least one ticket")]
    EmptyBatch,
    /// A request field breaks a rule (422 naming it).
    #[error(transparent)]
    Field(#[from] FieldError),
}

/// The group id of the `index`-th group of `batch_id`.
pub fn group_id(batch_id: Uuid, index: usize) -> Uuid {
    Uuid::new_v5(&batch_id, format!("group-{index}").as_bytes())
}

/// The aggregate.
pub struct CohortPool;

impl CohortPool {
    fn create(
        state: &PoolState,
        name: &str,
        group_size: GroupSize,
        criteria: &[Criterion],
        batch: BatchRule,
        created_by: Uuid,
    ) -> Result<Vec<PoolEvent>, PoolError> {
        if state.exists {
            return Err(PoolError::AlreadyExists);
        }
        let name = required_line(name, POOL_NAME_MAX)
            .map_err(|p| FieldError::new("name", p.to_string()))?;
        let group_size = group_size.check()?;
        check_criteria(criteria)?;
        let batch = batch.check()?;
        if batch.min_queue < group_size.min {
            return Err(
                FieldError::new("batch.min_queue", "must be at least group_size.min").into(),
            );
        }
        Ok(vec![PoolEvent::PoolCreated {
            name: name.to_owned(),
            group_size,
            criteria: criteria.to_vec(),
            batch,
            created_by,
        }])
    }

    fn form(
        state: &PoolState,
        batch_id: Uuid,
        groups: &[Vec<Uuid>],
        unplaced: &[(Uuid, String)],
    ) -> Result<Vec<PoolEvent>, PoolError> {
        if state.batches.contains(&batch_id) {
            return Ok(Vec::new());
        }
        let size = state.group_size.ok_or(PoolError::NotFound)?;
        if groups.is_empty() && unplaced.is_empty() {
            return Err(PoolError::EmptyBatch);
        }
        let mut seen = BTreeSet::new();
        let mut ticket = |id: &Uuid| -> Result<&QueuedTicket, PoolError> {
            if !seen.insert(*id) {
                return Err(PoolError::PlacedTwice(*id));
            }
            state.queue.get(id).ok_or(PoolError::NotQueued(*id))
        };
        let mut formed = Vec::with_capacity(groups.len());
        for (index, members) in groups.iter().enumerate() {
            if members.len() < size.min as usize || members.len() > size.max as usize {
                return Err(PoolError::BadGroupSize {
                    index,
                    size: members.len(),
                });
            }
            let mut tickets = Vec::with_capacity(members.len());
            for id in members {
                tickets.push((*id, ticket(id)?));
            }
            if common_slots(
                tickets
                    .iter()
                    .map(|(_, t)| t.profile.availability.as_slice()),
            )
            .is_empty()
            {
                return Err(PoolError::NoCommonSlot(index));
            }
            formed.push(FormedGroup {
                group_id: group_id(batch_id, index),
                members: tickets
                    .into_iter()
                    .map(|(ticket_id, t)| Member {
                        ticket_id,
                        learner_id: t.learner_id,
                    })
                    .collect(),
            });
        }
        let mut deferred = Vec::with_capacity(unplaced.len());
        for (id, reason) in unplaced {
            let learner_id = ticket(id)?.learner_id;
            let reason: String = reason.trim().chars().take(REASON_MAX).collect();
            let reason = required_text(&reason, REASON_MAX)
                .map_err(|p| FieldError::new("unplaced.reason", p.to_string()))?
                .to_owned();
            deferred.push(Unplaced {
                ticket_id: *id,
                learner_id,
                reason,
            });
        }
        // A batch covers the oldest untried tickets: every untried ticket that joined before
        // the newest untried one it covers is covered too, so a long queue forms in
        // consecutive batches and each makes progress. Tickets an earlier batch left queued
        // may ride along or wait.
        let untried = |t: &QueuedTicket| t.unplaced_reason.is_none();
        let newest = seen
            .iter()
            .filter_map(|id| {
                state
                    .queue
                    .get(id)
                    .filter(|t| untried(t))
                    .map(|t| (t.joined_at, *id))
            })
            .max();
        if let Some(left_out) = state
            .queue
            .iter()
            .filter(|(id, t)| {
                untried(t) && !seen.contains(*id) && newest.is_some_and(|n| (t.joined_at, **id) < n)
            })
            .map(|(id, _)| *id)
            .next()
        {
            return Err(PoolError::TicketLeftOut(left_out));
        }
        Ok(vec![PoolEvent::GroupsFormed {
            batch_id,
            groups: formed,
            unplaced: deferred,
        }])
    }
}

impl Aggregate for CohortPool {
    const KIND: &'static str = "cohort_pool";
    type State = PoolState;
    type Command = PoolCommand;
    type Event = PoolEvent;
    type Error = PoolError;

    fn decide(state: &PoolState, command: &PoolCommand) -> Result<Vec<PoolEvent>, PoolError> {
        if !state.exists && !matches!(command, PoolCommand::Create { .. }) {
            return Err(PoolError::NotFound);
        }
        match command {
            PoolCommand::Create {
                name,
                group_size,
                criteria,
                batch,
                created_by,
            } => Self::create(state, name, *group_size, criteria, *batch, *created_by),
            PoolCommand::Close { closed_by } => Ok(if state.closed {
                Vec::new()
            } else {
                vec![PoolEvent::PoolClosed {
                    closed_by: *closed_by,
                }]
            }),
            PoolCommand::Join {
                ticket_id,
                learner_id,
                profile,
                joined_at,
            } => {
                if state.closed {
                    return Err(PoolError::Closed);
                }
                if state.ticket_of(*learner_id).is_some() {
                    return Err(PoolError::AlreadyQueued);
                }
                if state.queue.contains_key(ticket_id) {
                    return Err(PoolError::TicketTaken);
                }
                Ok(vec![PoolEvent::MatchQueueJoined {
                    ticket_id: *ticket_id,
                    learner_id: *learner_id,
                    profile: profile.checked(&state.criteria)?,
                    joined_at: *joined_at,
                }])
            }
            PoolCommand::Leave { learner_id } => match state.ticket_of(*learner_id) {
                Some(ticket_id) => Ok(vec![PoolEvent::MatchQueueLeft {
                    ticket_id,
                    learner_id: *learner_id,
                }]),
                None if state.placed.contains(learner_id) => Err(PoolError::AlreadyPlaced),
                None => Ok(Vec::new()),
            },
            PoolCommand::FormGroups {
                batch_id,
                groups,
                unplaced,
            } => {
                if state.closed {
                    return Err(PoolError::Closed);
                }
                Self::form(state, *batch_id, groups, unplaced)
            }
        }
    }

    fn evolve(state: &mut PoolState, event: &PoolEvent) {
        match event {
            PoolEvent::PoolCreated {
                name,
                group_size,
                criteria,
                batch,
                ..
            } => {
                state.exists = true;
                state.name.clone_from(name);
                state.group_size = Some(*group_size);
                state.criteria.clone_from(criteria);
                state.batch = Some(*batch);
            }
            PoolEvent::PoolClosed { .. } => state.closed = true,
            PoolEvent::MatchQueueJoined {
                ticket_id,
                learner_id,
                profile,
                joined_at,
            } => {
                state.placed.remove(learner_id);
                state.queue.insert(
                    *ticket_id,
                    QueuedTicket {
                        learner_id: *learner_id,
                        profile: profile.clone(),
                        joined_at: *joined_at,
                        unplaced_reason: None,
                    },
                );
            }
            PoolEvent::MatchQueueLeft { ticket_id, .. } => {
                state.queue.remove(ticket_id);
            }
            PoolEvent::GroupsFormed {
                batch_id,
                groups,
                unplaced,
            } => {
                state.batches.insert(*batch_id);
                for group in groups {
                    for member in &group.members {
                        state.queue.remove(&member.ticket_id);
                        state.placed.insert(member.learner_id);
                    }
                }
                for u in unplaced {
                    if let Some(ticket) = state.queue.get_mut(&u.ticket_id) {
                        ticket.unplaced_reason = Some(u.reason.clone());
                    }
                }
            }
        }
    }
}
