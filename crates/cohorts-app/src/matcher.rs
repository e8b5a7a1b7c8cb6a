//! The matcher, the cohorts context's reactive service (`trellis serve --roles matcher`).
//!
//! - **Batches**: a pool forms a batch when its queue reaches `min_queue` or its oldest
//!   untried ticket has waited `max_wait_seconds`. Joins are checked as they arrive; a tick
//!   (every second) checks the open pools the read model shows something due in (a full
//!   queue, or an untried ticket whose wait is over) against their own state. The deadline is
//!   derived from the log (`PoolState::wait_deadline`), so it survives restarts: a matcher
//!   that starts after a crash forms what is due at its first tick.
//! - **Exactly once**: the batch id is a UUIDv5 of the pool and the stream version the queue
//!   was read at, the grouping is deterministic (seeded by the batch id), and the pool's
//!   decider answers a batch id it has seen with nothing. Two matchers (or a restarted one)
//!   forming the same batch append it once; a join or leave between the read and the append
//!   makes the decider refuse the batch and the matcher forms it again on the new queue.
//! - **Groups**: every `GroupsFormed` opens its groups' streams (`GroupOpened`), idempotent by
//!   the group's state, so a matcher killed between the two appends opens them on redelivery.
//! - **Vectors**: skills and goals are scored as MiniLM vectors ([`crate::vectors`]): each join
//!   is embedded when the matcher sees it, a batch reads its tickets' vectors (embedding only
//!   those not seen yet), and placed or departed tickets' vectors are dropped.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use futures::future::BoxFuture;
use sqlx::PgPool;
use trellis_cohorts::LearnerProfile;
use trellis_cohorts::group::{CohortGroup, GroupCommand};
use trellis_cohorts::pool::{CohortPool, PoolCommand, PoolEvent, PoolState, QueuedTicket};
use trellis_embed::Embedder;
use trellis_kernel::{
    CommandContext, CommandHandler, DomainEvent, EventStore, ExpectedVersion, HandleError,
    Metadata, RecordedEvent, StoreError, TenantId,
};
use trellis_matcher::{Attribute, BATCH_MAX, Learner, Settings, goal_words};
use trellis_runtime::{EventHandler, HandlerError};
use uuid::Uuid;

use crate::pools::{POOLS_TABLE, TICKETS_TABLE};
use crate::vectors::{ProfileVectors, TicketVectors};

/// How often the matcher checks open pools against the clock.
pub const TICK: Duration = Duration::from_secs(1);

/// The matcher.
pub struct Matcher {
    commands: CommandHandler<dyn EventStore>,
    pool: PgPool,
    vectors: ProfileVectors,
}

impl Matcher {
    /// A matcher over `store` (commands) and `pool` (the `cohort_pools` read model, the
    /// catalog's skill texts and the ticket vectors), embedding profiles with `embedder`.
    pub fn new(store: Arc<dyn EventStore>, pool: PgPool, embedder: Arc<dyn Embedder>) -> Self {
        Self {
            commands: CommandHandler::new(store, trellis_kernel::upcast::global()),
            vectors: ProfileVectors::new(embedder, pool.clone()),
            pool,
        }
    }

    /// Forms the pool's batch if one is due now; returns whether one was formed.
    ///
    /// The batch is decided on the state read and appended at exactly that version, so a join
    /// or leave in between is a conflict and the queue is read again. A queue longer than
    /// [`BATCH_MAX`] forms in consecutive batches until every ticket the due decision covered
    /// is tried; tickets that joined since wait for their own turn (`min_queue` or their wait).
    ///
    /// # Errors
    /// Store, database or model failures, or a batch the decider refuses.
    pub async fn check(
        &self,
        pool_id: Uuid,
        organization_id: Uuid,
        metadata: &Metadata,
    ) -> Result<bool, HandlerError> {
        let mut owed: Option<BTreeSet<Uuid>> = None;
        // Vectors computed for a conflicting round serve the next one.
        let mut known: HashMap<Uuid, TicketVectors> = HashMap::new();
        let mut conflicts = 0;
        let mut formed = false;
        loop {
            let (state, version) = self
                .commands
                .load::<CohortPool>(pool_id)
                .await
                .map_err(|e| HandlerError::from_error("reading a pool", e))?;
            let due = match &owed {
                None => state.batch_due(Utc::now()),
                Some(owed) => still_owed(owed, &state),
            };
            if !due {
                return Ok(formed);
            }
            owed.get_or_insert_with(|| untried(&state));
            let batch_id = Uuid::new_v5(&pool_id, format!("batch-{version}").as_bytes());
            let context = CommandContext {
                metadata: metadata.clone(),
                expected_version: Some(ExpectedVersion::Exact(version)),
                ..CommandContext::default()
            };
            let tickets = batch_tickets(&state);
            let missing: Vec<(Uuid, &LearnerProfile)> = tickets
                .iter()
                .filter(|(id, _)| !known.contains_key(id))
                .map(|(id, t)| (*id, &t.profile))
                .collect();
            let found = self
                .vectors
                .for_batch(organization_id, &missing)
                .await
                .map_err(|e| HandlerError::from_error("vectors of a batch", e))?;
            known.extend(missing.iter().map(|(id, _)| *id).zip(found));
            let command = batch(&state, &tickets, &known, batch_id);
            match self
                .commands
                .handle::<CohortPool>(pool_id, &command, &context)
                .await
            {
                Ok(_) => formed = true,
                // A join or leave came between: read the queue again (tickets that left are
                // owed nothing: `still_owed` looks at the queue as it is).
                Err(HandleError::Store(StoreError::Concurrency { .. })) if conflicts < 5 => {
                    conflicts += 1;
                }
                Err(e) => return Err(HandlerError::from_error("forming a batch", e)),
            }
        }
    }

    /// Opens the groups a `GroupsFormed` event formed; their members' vectors go.
    async fn open_groups(
        &self,
        batch_id: Uuid,
        groups: Vec<trellis_cohorts::pool::FormedGroup>,
        event: &RecordedEvent,
    ) -> Result<(), HandlerError> {
        let placed: Vec<Uuid> = groups
            .iter()
            .flat_map(|g| g.members.iter().map(|m| m.ticket_id))
            .collect();
        let context = CommandContext {
            metadata: Metadata::caused_by(event, None),
            ..CommandContext::default()
        };
        for group in groups {
            self.commands
                .handle::<CohortGroup>(
                    group.group_id,
                    &GroupCommand::Open {
                        pool_id: event.stream_id.id(),
                        batch_id,
                        members: group.members,
                    },
                    &context,
                )
                .await
                .map_err(|e| HandlerError::from_error("opening a group", e))?;
        }
        self.vectors
            .forget(&placed)
            .await
            .map_err(|e| HandlerError::from_error("dropping placed tickets' vectors", e))
    }

    /// Every second: forms what is due in every open pool, until `shutdown`.
    pub async fn tick(self: Arc<Self>, mut shutdown: BoxFuture<'static, ()>) {
        loop {
            tokio::select! {
                () = &mut shutdown => return,
                () = tokio::time::sleep(TICK) => {}
            }
            // Pools with an untried ticket whose wait is over or a full queue, as far as the
            // read model knows; the pool's own state decides (`check`).
            let due: Result<Vec<(Uuid, Uuid)>, sqlx::Error> = sqlx::query_as(&format!(
                "SELECT p.pool_id, p.organization_id FROM {POOLS_TABLE} p \
                 WHERE NOT p.closed AND EXISTS ( \
                     SELECT 1 FROM {TICKETS_TABLE} t \
                     WHERE t.pool_id = p.pool_id AND t.status = 'queued' \
                       AND t.unplaced_reason IS NULL \
                       AND (p.queue_size >= (p.batch->>'min_queue')::int \
                            OR t.joined_at + make_interval(secs => \
                                   (p.batch->>'max_wait_seconds')::int) <= now())) \
                 ORDER BY p.pool_id"
            ))
            .fetch_all(&self.pool)
            .await;
            let pools = match due {
                Ok(pools) => pools,
                Err(e) => {
                    tracing::warn!(error = %e, "matcher: reading open pools");
                    continue;
                }
            };
            for (pool_id, organization_id) in pools {
                let metadata = Metadata {
                    tenant_id: Some(TenantId::from_uuid(organization_id)),
                    ..Metadata::default()
                };
                if let Err(e) = self.check(pool_id, organization_id, &metadata).await {
                    tracing::warn!(pool = %pool_id, error = %e, "matcher: forming a batch");
                }
            }
        }
    }
}

#[async_trait]
impl EventHandler for Matcher {
    fn name(&self) -> &str {
        "reaction.matcher"
    }

    fn wants(&self, event_type: &str) -> bool {
        matches!(
            event_type,
            "MatchQueueJoined" | "MatchQueueLeft" | "GroupsFormed" | "PoolClosed"
        )
    }

    async fn handle(&self, events: &[RecordedEvent]) -> Result<(), HandlerError> {
        // The delivery's joins per pool (minus tickets that left or were placed within it):
        // embedded together, then one check per pool.
        let mut joins: BTreeMap<Uuid, (Uuid, Metadata, Vec<(Uuid, LearnerProfile)>)> =
            BTreeMap::new();
        for event in events.iter().filter(|e| self.wants(&e.event_type)) {
            let decoded = PoolEvent::from_payload(&event.event_type, event.payload.clone())
                .map_err(|e| HandlerError::from_error("decoding a pool event", e))?;
            let pool_id = event.stream_id.id();
            match decoded {
                PoolEvent::GroupsFormed {
                    batch_id, groups, ..
                } => {
                    if let Some((_, _, tickets)) = joins.get_mut(&pool_id) {
                        tickets.retain(|(t, _)| {
                            !groups
                                .iter()
                                .any(|g| g.members.iter().any(|m| m.ticket_id == *t))
                        });
                    }
                    self.open_groups(batch_id, groups, event).await?;
                }
                PoolEvent::MatchQueueLeft { ticket_id, .. } => {
                    if let Some((_, _, tickets)) = joins.get_mut(&pool_id) {
                        tickets.retain(|(t, _)| *t != ticket_id);
                    }
                    self.vectors
                        .forget(&[ticket_id])
                        .await
                        .map_err(|e| HandlerError::from_error("dropping a ticket's vectors", e))?;
                }
                PoolEvent::PoolClosed { .. } => {
                    joins.remove(&pool_id);
                    self.vectors
                        .forget_pool(pool_id)
                        .await
                        .map_err(|e| HandlerError::from_error("dropping a pool's vectors", e))?;
                }
                PoolEvent::MatchQueueJoined {
                    ticket_id, profile, ..
                } => {
                    let organization_id = HandlerError::organization_of(event)?;
                    joins
                        .entry(pool_id)
                        .or_insert_with(|| {
                            (
                                organization_id,
                                Metadata::caused_by(event, None),
                                Vec::new(),
                            )
                        })
                        .2
                        .push((ticket_id, profile));
                }
                PoolEvent::PoolCreated { .. } => {}
            }
        }
        for (pool_id, (organization_id, metadata, tickets)) in joins {
            // Embedded now, so the batch that takes the tickets reads their vectors.
            let profiles: Vec<(Uuid, &LearnerProfile)> =
                tickets.iter().map(|(id, p)| (*id, p)).collect();
            self.vectors
                .store(organization_id, pool_id, &profiles)
                .await
                .map_err(|e| HandlerError::from_error("vectors of joins", e))?;
            // The joins may complete a batch (min_queue).
            self.check(pool_id, organization_id, &metadata).await?;
        }
        Ok(())
    }
}

/// The queued tickets no batch has tried yet.
fn untried(state: &PoolState) -> BTreeSet<Uuid> {
    state
        .queue
        .iter()
        .filter(|(_, t)| t.unplaced_reason.is_none())
        .map(|(id, _)| *id)
        .collect()
}

/// Whether a ticket a due decision covered is still queued and untried (its queue was longer
/// than one batch).
fn still_owed(owed: &BTreeSet<Uuid>, state: &PoolState) -> bool {
    !state.closed
        && state
            .queue
            .iter()
            .any(|(id, t)| t.unplaced_reason.is_none() && owed.contains(id))
}

/// The tickets the next batch takes, oldest first.
fn batch_tickets(state: &PoolState) -> Vec<(Uuid, &QueuedTicket)> {
    let mut tickets = state.batch_order();
    tickets.truncate(BATCH_MAX);
    tickets
}

/// The matcher's answer for `tickets` of the queue in `state`, scored with their `vectors`
/// (every ticket has them: [`ProfileVectors::for_batch`]).
fn batch(
    state: &PoolState,
    tickets: &[(Uuid, &QueuedTicket)],
    vectors: &HashMap<Uuid, TicketVectors>,
    batch_id: Uuid,
) -> PoolCommand {
    let now = jiff::Timestamp::now();
    let learners: Vec<Learner> = tickets
        .iter()
        .map(|(id, t)| {
            let profile = &t.profile;
            let vectors = vectors.get(id);
            // Every ticket has its vectors here; without them the matcher would compare ids.
            let offset = trellis_cohorts::utc_offset_minutes(&profile.timezone, now).unwrap_or(0);
            let slots = trellis_cohorts::week_ranges(&profile.availability);
            Learner {
                skills: profile
                    .skills
                    .iter()
                    .map(|s| (s.skill_id, s.level))
                    .collect(),
                goal_words: goal_words(&profile.goals),
                skill_vector: vectors.map(|v| v.skills.clone()),
                goal_vector: vectors.map(|v| v.goals.clone()),
                utc_offset_minutes: offset,
                slots,
                answers: profile.answers.clone(),
            }
        })
        .collect();
    let (min, max) = state
        .group_size
        .map_or((2, 2), |g| (g.min as usize, g.max as usize));
    let criteria = state
        .criteria
        .iter()
        .filter_map(|c| {
            Some(trellis_matcher::Criterion {
                attribute: Attribute::parse(&c.attribute)?,
                mode: c.mode,
                weight: c.weight,
            })
        })
        .collect();
    let seed = u64::from_le_bytes(batch_id.as_bytes()[..8].try_into().unwrap_or([0; 8]));
    let outcome = trellis_matcher::form(&learners, &Settings::new(min, max, criteria, seed));
    PoolCommand::FormGroups {
        batch_id,
        groups: outcome
            .groups
            .iter()
            .map(|g| g.iter().map(|&i| tickets[i].0).collect())
            .collect(),
        unplaced: outcome
            .unplaced
            .iter()
            .map(|&(i, reason)| (tickets[i].0, reason.to_owned()))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use trellis_cohorts::pool::{FormedGroup, Member};
    use trellis_cohorts::{Day, LearnerProfile, Slot};
    use trellis_kernel::Aggregate;

    fn joined(n: u128) -> PoolEvent {
        PoolEvent::MatchQueueJoined {
            ticket_id: Uuid::from_u128(200 + n),
            learner_id: Uuid::from_u128(100 + n),
            profile: LearnerProfile {
                skills: vec![],
                goals: "Rust".into(),
                timezone: "UTC".into(),
                availability: vec![Slot {
                    day: Day::Mon,
                    start: "18:00".into(),
                    end: "20:00".into(),
                }],
                answers: Default::default(),
            },
            joined_at: Utc::now(),
        }
    }

    #[test]
    fn a_batch_owes_rounds_only_to_the_tickets_it_was_due_for() {
        let created = PoolEvent::PoolCreated {
            name: "P".into(),
            group_size: trellis_cohorts::GroupSize { min: 2, max: 2 },
            criteria: vec![],
            batch: trellis_cohorts::BatchRule {
                min_queue: 2,
                max_wait_seconds: 600,
            },
            created_by: Uuid::nil(),
        };
        let before = CohortPool::fold(&[created.clone(), joined(1), joined(2)]);
        let owed = untried(&before);
        assert!(still_owed(&owed, &before));
        // The batch placed both; a third learner joined meanwhile: nothing is owed to them, so
        // no one-ticket batch forms (it would leave them "not enough learners" for good).
        let after = CohortPool::fold(&[
            created,
            joined(1),
            joined(2),
            PoolEvent::GroupsFormed {
                batch_id: Uuid::nil(),
                groups: vec![FormedGroup {
                    group_id: Uuid::from_u128(9),
                    members: [1, 2]
                        .map(|n| Member {
                            ticket_id: Uuid::from_u128(200 + n),
                            learner_id: Uuid::from_u128(100 + n),
                        })
                        .to_vec(),
                }],
                unplaced: vec![],
            },
            joined(3),
        ]);
        assert!(!still_owed(&owed, &after));
        assert!(!after.batch_due(Utc::now()));
    }
}
