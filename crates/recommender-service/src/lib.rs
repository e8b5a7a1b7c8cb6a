//! The recommender: a reactive service answering `IdpCreated` (and retries) with
//! `IdpRecommendationsGenerated` or `IdpRecommendationFailed`.
//!
//! Two halves, because they scale differently:
//! - **The follower** ([`Recommender::follow`]) reads the whole store (`$all`, from the start
//!   on every boot: the index is rebuilt from the store, never trusted from disk) and folds
//!   skills, resources, ratings, reviews and IDP targets into memory, embedding new texts as
//!   they arrive. Every instance needs the whole catalog, so this is not a consumer group.
//! - **The handler** ([`Recommender`] as an [`EventHandler`]) receives only triggers, through a
//!   Kafka consumer group (or the single-node in-process source), so instances share the work.
//!   Before answering it waits until its follower has folded the trigger itself: `$all` is in
//!   commit order and the follower keeps that order within each organization, so everything
//!   the plan's organization published before the IDP is then in the index. Across
//!   organizations the follower serves queued work in turns ([`FairQueue`]), so one
//!   organization's embedding backlog does not hold up another's plans.
//!
//! Exactly-once effect: the answer carries the idempotency key `recommender/<trigger event
//! id>`, and the IDP accepts an answer only while `processing`. A crash between answering and
//! checkpointing redelivers the trigger; the second answer changes nothing.

mod fair;
mod state;

use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::watch;
use trellis_development::Level;
use trellis_development::esco::Occupations;
use trellis_development::idp::{Gap, Idp, IdpCommand, Recommendation};
use trellis_embed::Embedder;
use trellis_kernel::{
    AllSubscription, CommandContext, CommandHandler, EventStore, RecordedEvent, SubscriptionOptions,
};
use trellis_recommender::RankOptions;
use trellis_recommender::rank::gaps;
use trellis_runtime::{EventHandler, HandlerError};
use uuid::Uuid;

pub use fair::FairQueue;
pub use state::{FOLDED, State, resource_text, skill_text};

pub use trellis_development_app::occupations::bundled_occupations;

/// How long a trigger waits for the follower before the consumer retries it. Generous: after
/// a restart the follower re-embeds the whole catalog (the 1,277 ESCO skills take ~15 s), and
/// a trigger that exhausts its retries is dead-lettered with its plan left processing.
const CATCH_UP: Duration = Duration::from_secs(120);

/// Texts one organization may have embedded per turn of the follower (about a third of a
/// second of MiniLM on two cores): the most another organization waits for a turn.
pub const TURN_TEXTS: usize = 32;

/// Events read ahead of folding, all organizations together; reading pauses above it.
const MAX_QUEUED: usize = 100_000;

/// Cost units: an event to embed costs [`TEXT_COST`], any other event 1.
const TEXT_COST: usize = 64;
const TURN_COST: usize = TURN_TEXTS * TEXT_COST;

/// An event waiting to be folded, with the text it needs embedded first.
struct Queued {
    event: RecordedEvent,
    text: Option<String>,
}

impl Queued {
    fn cost(&self) -> usize {
        if self.text.is_some() { TEXT_COST } else { 1 }
    }
}

/// Queues the events the recommender folds, by organization (events of no organization
/// change no catalog and are skipped).
fn enqueue(queue: &mut FairQueue<Queued>, events: Vec<RecordedEvent>) {
    // The follower reads the store itself, so it upcasts like every other reader (ADR 0011).
    // It reads no personal field (ADR 0017): review feedback stays ciphertext here, as text.
    let upcasters = trellis_kernel::upcast::global();
    for event in events {
        if !FOLDED.contains(&event.event_type.as_str()) {
            continue;
        }
        let event = match upcasters.upcast(event) {
            Ok(event) => event,
            Err(error) => {
                tracing::error!(%error, "recommender follower: an event cannot be upcast; skipped");
                continue;
            }
        };
        let Some(tenant) = event.metadata.tenant_id else {
            continue;
        };
        let text = state::text_to_embed(&event);
        queue.push(tenant.as_uuid(), Queued { event, text });
    }
}

/// The service.
pub struct Recommender<S: ?Sized> {
    store: Arc<S>,
    commands: CommandHandler<S>,
    embedder: Arc<dyn Embedder>,
    occupations: Arc<Occupations>,
    state: Arc<RwLock<State>>,
    folded: watch::Sender<u64>,
    options: RankOptions,
}

impl<S: EventStore + ?Sized + 'static> Recommender<S> {
    /// A recommender over `store` embedding with `embedder`.
    pub fn new(store: Arc<S>, embedder: Arc<dyn Embedder>) -> Self {
        Self {
            commands: CommandHandler::new(Arc::clone(&store), trellis_kernel::upcast::global()),
            store,
            embedder,
            occupations: Arc::new(bundled_occupations()),
            state: Arc::new(RwLock::new(State::default())),
            folded: watch::channel(0).0,
            options: RankOptions::default(),
        }
    }

    /// Events folded so far.
    pub fn folded(&self) -> u64 {
        *self.folded.borrow()
    }

    /// Follows `$all` from the start until `shutdown` resolves, folding what the recommender
    /// needs. Store failures back off and retry; they never end the follower.
    ///
    /// Events wait in a [`FairQueue`] per organization and are folded one organization's
    /// batch at a time, organizations in turn (at most [`TURN_TEXTS`] texts embedded per
    /// turn), while the store keeps being read. Order is kept within an organization, which
    /// is all a plan depends on: it is ranked against its own organization's catalog only.
    pub async fn follow(&self, shutdown: impl std::future::Future<Output = ()>) {
        let mut subscription = AllSubscription::new(
            Arc::clone(&self.store),
            None,
            SubscriptionOptions::default(),
        );
        let mut queue: FairQueue<Queued> = FairQueue::default();
        tokio::pin!(shutdown);
        let mut backoff = Duration::from_millis(50);
        let mut retry = Duration::from_millis(100);
        loop {
            let Some((tenant, batch)) = queue.pop_batch(TURN_COST, Queued::cost) else {
                // Nothing to fold: wait for the store.
                let read = tokio::select! {
                    () = &mut shutdown => return,
                    read = subscription.next_batch() => read,
                };
                match read {
                    Ok(events) => {
                        backoff = Duration::from_millis(50);
                        enqueue(&mut queue, events);
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "recommender follower: store read failed");
                        tokio::select! {
                            () = &mut shutdown => return,
                            () = tokio::time::sleep(backoff) => {}
                        }
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                    }
                }
                continue;
            };
            let texts: Vec<String> = batch.iter().filter_map(|q| q.text.clone()).collect();
            let vectors = if texts.is_empty() {
                Ok(Vec::new())
            } else {
                let embedder = Arc::clone(&self.embedder);
                // Inference is CPU-bound: off the async workers.
                let embedding = tokio::task::spawn_blocking(move || {
                    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
                    embedder.embed(&refs)
                });
                tokio::pin!(embedding);
                // Keep reading the store meanwhile, so another organization's work is queued
                // (and gets the next turn) while this batch is embedded.
                let mut reading = true;
                loop {
                    tokio::select! {
                        () = &mut shutdown => return,
                        done = &mut embedding => break done.map_err(|e| {
                            trellis_embed::EmbedError::Tokenizer(format!("embedding task: {e}"))
                        }).and_then(|r| r),
                        read = subscription.next_batch(), if reading && queue.len() < MAX_QUEUED => {
                            match read {
                                Ok(events) => enqueue(&mut queue, events),
                                Err(e) => {
                                    tracing::warn!(error = %e, "recommender follower: store read failed");
                                    reading = false;
                                }
                            }
                        }
                    }
                }
            };
            match vectors {
                Ok(vectors) => {
                    retry = Duration::from_millis(100);
                    self.fold(batch, vectors);
                }
                Err(e) => {
                    // Read from the store already: it must be folded, however long embedding
                    // keeps failing. Other organizations take their turns meanwhile.
                    tracing::error!(error = %e, "recommender: embedding failed; retrying");
                    queue.unpop(tenant, batch);
                    tokio::select! {
                        () = &mut shutdown => return,
                        () = tokio::time::sleep(retry) => {}
                    }
                    retry = (retry * 2).min(Duration::from_secs(10));
                }
            }
        }
    }

    /// Folds one organization's batch, with the vectors of its texts in order.
    fn fold(&self, batch: Vec<Queued>, vectors: Vec<Vec<f32>>) {
        let mut vectors = vectors.into_iter();
        let mut state = self
            .state
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for queued in batch {
            let vector = queued.text.as_ref().and_then(|_| vectors.next());
            state.fold(&queued.event, vector, &self.occupations);
        }
        let folded = state.folded;
        drop(state);
        self.folded.send_replace(folded);
    }

    /// Waits until the follower has folded version `version` of IDP `id`.
    async fn caught_up(&self, id: Uuid, version: u64) -> bool {
        let mut seen = self.folded.subscribe();
        let wait = async {
            loop {
                if self
                    .state
                    .read()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .has_seen(id, version)
                {
                    return;
                }
                if seen.changed().await.is_err() {
                    // The sender lives in `self`; closed means shutting down.
                    std::future::pending::<()>().await;
                }
            }
        };
        tokio::time::timeout(CATCH_UP, wait).await.is_ok()
    }

    /// The answer for IDP `id`, computed from the folded state.
    pub fn decide(&self, id: Uuid) -> IdpCommand {
        let state = self
            .state
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(idp) = state.idps.get(&id) else {
            return IdpCommand::RecordRecommendationFailure {
                reason: "the plan is unknown to the recommender".into(),
            };
        };
        let Some(org) = state.orgs.get(&idp.organization_id) else {
            return IdpCommand::RecordRecommendationFailure {
                reason: "the organization has no skills or resources yet".into(),
            };
        };
        let current = State::current_levels(org, idp.employee_id);
        let targets: Vec<(Uuid, u8, f32)> = idp
            .targets
            .iter()
            .map(|t| (t.skill_id, t.level.get(), 1.0))
            .collect();
        let gap_specs = gaps(&targets, &current);
        let recorded_gaps: Vec<Gap> = gap_specs
            .iter()
            .filter_map(|g| {
                Some(Gap {
                    skill_id: g.skill_id,
                    current: g.current,
                    target: Level::try_from(g.target).ok()?,
                })
            })
            .collect();
        if gap_specs.is_empty() {
            // Already at every target: an active plan with nothing to close is an answer.
            return IdpCommand::RecordRecommendations {
                gaps: Vec::new(),
                recommendations: Vec::new(),
            };
        }
        let picks = org.catalog.rank(&gap_specs, &self.options);
        if picks.is_empty() {
            let names: Vec<String> = gap_specs
                .iter()
                .take(3)
                .map(|g| org.catalog.skill_name(g.skill_id))
                .collect();
            return IdpCommand::RecordRecommendationFailure {
                reason: format!(
                    "no published resource covers the gaps ({}); publish resources for them \
                     and retry",
                    names.join(", ")
                ),
            };
        }
        IdpCommand::RecordRecommendations {
            gaps: recorded_gaps,
            recommendations: picks
                .into_iter()
                .map(|p| Recommendation {
                    resource_id: p.resource_id,
                    score: p.score,
                    skill_ids: p.skill_ids,
                    reason: p.reason,
                })
                .collect(),
        }
    }
}

#[async_trait]
impl<S: EventStore + ?Sized + 'static> EventHandler for Recommender<S> {
    fn name(&self) -> &str {
        "reaction.recommender"
    }

    fn wants(&self, event_type: &str) -> bool {
        trellis_development::idp::RECOMMENDATION_TRIGGERS.contains(&event_type)
    }

    async fn handle(&self, events: &[RecordedEvent]) -> Result<(), HandlerError> {
        for event in events.iter().filter(|e| self.wants(&e.event_type)) {
            let id = event.stream_id.id();
            if !self.caught_up(id, event.stream_version).await {
                return Err(HandlerError::msg(format!(
                    "follower has not folded {} v{} yet",
                    event.stream_id, event.stream_version
                )));
            }
            // Ranking is CPU work (milliseconds over 100,000 resources): off the async workers.
            let command = match tokio::runtime::Handle::current().runtime_flavor() {
                tokio::runtime::RuntimeFlavor::MultiThread => {
                    tokio::task::block_in_place(|| self.decide(id))
                }
                _ => self.decide(id),
            };
            let context = CommandContext::reacting_to(event, "recommender")
                .map_err(|e| HandlerError::from_error("idempotency key", e))?;
            self.commands
                .handle::<Idp>(event.stream_id.id(), &command, &context)
                .await
                .map_err(|e| HandlerError::from_error("recording recommendations", e))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use trellis_development::skill::{Skill, SkillCommand};
    use trellis_development::{Level, SkillLevel};
    use trellis_embed::{EmbedError, Embedder};
    use trellis_kernel::{Aggregate, CommandContext, CommandHandler, Metadata, StreamId, TenantId};
    use trellis_store_memory::MemoryEventStore;
    use uuid::Uuid;

    use super::Recommender;

    /// Takes `per_text` per text, like a (fast) model; vectors are all alike.
    struct SlowEmbedder {
        per_text: Duration,
    }

    impl Embedder for SlowEmbedder {
        fn dim(&self) -> usize {
            4
        }

        fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
            std::thread::sleep(self.per_text * u32::try_from(texts.len()).unwrap());
            Ok(texts.iter().map(|_| vec![0.5; 4]).collect())
        }
    }

    async fn run<A: Aggregate>(
        commands: &CommandHandler<MemoryEventStore>,
        organization: Uuid,
        stream: &StreamId,
        command: &A::Command,
    ) where
        A::Error: std::fmt::Debug,
    {
        let context = CommandContext {
            metadata: Metadata {
                tenant_id: Some(TenantId::from_uuid(organization)),
                ..Metadata::default()
            },
            ..CommandContext::default()
        };
        commands
            .handle::<A>(stream.id(), command, &context)
            .await
            .unwrap();
    }

    fn define(name: String) -> SkillCommand {
        SkillCommand::Define {
            name,
            description: String::new(),
            aliases: vec![],
            esco_uri: None,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_large_import_does_not_hold_up_another_organizations_plan() {
        let store = Arc::new(MemoryEventStore::default());
        let commands = CommandHandler::new(
            Arc::clone(&store),
            Arc::new(trellis_kernel::Upcasters::new()),
        );
        // A big organization's backlog: 1,200 skills to embed (~4 s at 3 ms a text)...
        let big = Uuid::now_v7();
        for i in 0..1_200 {
            let stream = StreamId::new("skill", Uuid::now_v7()).unwrap();
            run::<Skill>(&commands, big, &stream, &define(format!("Skill {i}"))).await;
        }
        // ...then a small organization's skill and plan.
        let small = Uuid::now_v7();
        let skill = Uuid::now_v7();
        run::<Skill>(
            &commands,
            small,
            &StreamId::new("skill", skill).unwrap(),
            &define("SQL".into()),
        )
        .await;
        let plan = Uuid::now_v7();
        let employee = Uuid::now_v7();
        run::<trellis_development::idp::Idp>(
            &commands,
            small,
            &StreamId::new("idp", plan).unwrap(),
            &trellis_development::idp::IdpCommand::Create {
                employee_id: employee,
                created_by: employee,
                title: "Plan".into(),
                target_skills: vec![SkillLevel {
                    skill_id: skill,
                    level: Level::try_from(3u8).unwrap(),
                }],
                target_role: None,
                due_date: None,
            },
        )
        .await;

        let recommender = Arc::new(Recommender::new(
            Arc::clone(&store),
            Arc::new(SlowEmbedder {
                per_text: Duration::from_millis(3),
            }),
        ));
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let follower = Arc::clone(&recommender);
        let task = tokio::spawn(async move {
            let mut stopped = stopped;
            follower
                .follow(async move {
                    let _ = stopped.wait_for(|s| *s).await;
                })
                .await;
        });
        let started = tokio::time::Instant::now();
        let seen = tokio::time::timeout(Duration::from_secs(30), recommender.caught_up(plan, 1))
            .await
            .unwrap_or(false);
        assert!(seen, "the small organization's plan was never folded");
        let folded_then = recommender.folded();
        let waited = started.elapsed();
        // Served after at most a couple of the big organization's batches, not after all of
        // them (in `$all` order it would come after 1,200 embeddings).
        assert!(
            folded_then < 200,
            "folded {folded_then} events before the small organization's plan"
        );
        assert!(waited < Duration::from_secs(2), "took {waited:?}");
        // The big organization's backlog is still folded, all of it.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while recommender.folded() < 1_202 {
            assert!(tokio::time::Instant::now() < deadline, "backlog not folded");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(recommender.folded(), 1_202);
        stop.send_replace(true);
        task.await.unwrap();
    }

    #[test]
    fn the_bundled_occupations_parse() {
        let o = trellis_development::esco::Occupations::parse(include_str!(
            "../../../data/esco/occupations.jsonl"
        ))
        .unwrap();
        assert_eq!(o.all().len(), 91);
        assert_eq!(super::bundled_occupations().all().len(), 91);
    }
}
