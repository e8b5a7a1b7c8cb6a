//! The matcher, the cohorts context's reactive service (`trellis serve --roles matcher`).
//!
//! - **Batches**: a pool forms a batch when its queue reaches `min_queue` or its oldest
//!   untried ticket has waited `max_wait_seconds`. Joins are checked as they arrive; a tick
//!   (every second) checks every open pool with a queue against the clock. The deadline is
//!   derived from the log (`PoolState::wait_deadline`), so it survives restarts: a matcher
//!   that starts after a crash forms what is due at its first tick.
//! - **Exactly once**: the batch id is a UUIDv5 of the pool and the stream version the queue
//!   was read at, the grouping is deterministic (seeded by the batch id), and the pool's
//!   decider answers a batch id it has seen with nothing. Two matchers (or a restarted one)
//!   forming the same batch append it once; a join or leave between the read and the append
//!   makes the decider refuse the batch and the matcher forms it again on the new queue.
//! - **Groups**: every `GroupsFormed` opens its groups' streams (`GroupOpened`), idempotent by
//!   the group's state, so a matcher killed between the two appends opens them on redelivery.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use futures::future::BoxFuture;
use sqlx::PgPool;
use trellis_cohorts::group::{CohortGroup, GroupCommand};
use trellis_cohorts::pool::{CohortPool, PoolCommand, PoolError, PoolEvent, PoolState};
use trellis_kernel::{
    CommandContext, CommandHandler, DomainEvent, EventStore, HandleError, Metadata, RecordedEvent,
    TenantId,
};
use trellis_matcher::{Attribute, Learner, Settings, goal_words};
use trellis_runtime::{EventHandler, HandlerError};
use uuid::Uuid;

use crate::pools::POOLS_TABLE;

/// Most tickets one batch takes (the oldest first): its `GroupsFormed` stays well under the
/// store's 256 KiB event limit (~100 bytes a member).
pub const BATCH_MAX: usize = 1_200;

/// How often the matcher checks open pools against the clock.
pub const TICK: Duration = Duration::from_secs(1);

/// The matcher.
pub struct Matcher {
    commands: CommandHandler<dyn EventStore>,
    pool: PgPool,
}

impl Matcher {
    /// A matcher over `store` (commands) and `pool` (the `cohort_pools` read model).
    pub fn new(store: Arc<dyn EventStore>, pool: PgPool) -> Self {
        Self {
            commands: CommandHandler::new(store, trellis_kernel::upcast::global()),
            pool,
        }
    }

    /// Forms the pool's batch if one is due now; returns whether one was formed.
    ///
    /// # Errors
    /// Store failures, or a batch the decider keeps refusing.
    pub async fn check(
        &self,
        pool_id: Uuid,
        metadata: &Metadata,
    ) -> Result<bool, HandleError<PoolError>> {
        let mut formed = false;
        // A join or leave between reading the queue and appending the batch refuses it; the
        // next attempt reads the new queue. A queue longer than [`BATCH_MAX`] forms in
        // consecutive batches, the oldest untried tickets first; each batch tries at least
        // one untried ticket, so the rounds end.
        let mut refused = 0;
        while refused < 5 {
            let (state, version) = self.commands.load::<CohortPool>(pool_id).await?;
            let due = if formed {
                state.queue.values().any(|t| t.unplaced_reason.is_none()) && !state.closed
            } else {
                state.batch_due(Utc::now())
            };
            if !due {
                return Ok(formed);
            }
            let batch_id = Uuid::new_v5(&pool_id, format!("batch-{version}").as_bytes());
            let command = batch(&state, batch_id);
            let context = CommandContext {
                metadata: metadata.clone(),
                ..CommandContext::default()
            };
            match self
                .commands
                .handle::<CohortPool>(pool_id, &command, &context)
                .await
            {
                Ok(_) => formed = true,
                Err(HandleError::Domain(PoolError::NotQueued(_) | PoolError::TicketLeftOut(_))) => {
                    refused += 1
                }
                Err(e) => return Err(e),
            }
        }
        Err(HandleError::Domain(PoolError::EmptyBatch))
    }

    /// Opens the groups a `GroupsFormed` event formed.
    async fn open_groups(&self, event: &RecordedEvent) -> Result<(), HandlerError> {
        let Ok(PoolEvent::GroupsFormed {
            batch_id, groups, ..
        }) = PoolEvent::from_payload(&event.event_type, event.payload.clone())
        else {
            return Ok(());
        };
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
        Ok(())
    }

    /// Every second: forms what is due in every open pool with a queue, until `shutdown`.
    pub async fn tick(self: Arc<Self>, mut shutdown: BoxFuture<'static, ()>) {
        loop {
            tokio::select! {
                () = &mut shutdown => return,
                () = tokio::time::sleep(TICK) => {}
            }
            let due: Result<Vec<(Uuid, Uuid)>, sqlx::Error> = sqlx::query_as(&format!(
                "SELECT pool_id, organization_id FROM {POOLS_TABLE} \
                 WHERE NOT closed AND queue_size > 0 ORDER BY pool_id"
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
                if let Err(e) = self.check(pool_id, &metadata).await {
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
        matches!(event_type, "MatchQueueJoined" | "GroupsFormed")
    }

    async fn handle(&self, events: &[RecordedEvent]) -> Result<(), HandlerError> {
        let mut checked = std::collections::BTreeSet::new();
        for event in events.iter().filter(|e| self.wants(&e.event_type)) {
            if event.event_type == "GroupsFormed" {
                self.open_groups(event).await?;
                continue;
            }
            // A join may complete a batch (min_queue); one check per pool per delivery.
            if checked.insert(event.stream_id.id()) {
                self.check(event.stream_id.id(), &Metadata::caused_by(event, None))
                    .await
                    .map_err(|e| HandlerError::from_error("forming a batch", e))?;
            }
        }
        Ok(())
    }
}

/// The matcher's answer for the queue in `state`.
fn batch(state: &PoolState, batch_id: Uuid) -> PoolCommand {
    let mut tickets = state.batch_order();
    tickets.truncate(BATCH_MAX);
    let now = jiff::Timestamp::now();
    let learners: Vec<Learner> = tickets
        .iter()
        .map(|(_, t)| {
            let profile = &t.profile;
            let offset = trellis_cohorts::utc_offset_minutes(&profile.timezone, now).unwrap_or(0);
            let slots = trellis_cohorts::week_ranges(&profile.availability);
            Learner {
                skills: profile
                    .skills
                    .iter()
                    .map(|s| (s.skill_id, s.level))
                    .collect(),
                goal_words: goal_words(&profile.goals),
                goal_vector: None,
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
