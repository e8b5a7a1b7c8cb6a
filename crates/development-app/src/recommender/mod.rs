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
//!   commit order, so everything published before the IDP is then in the index.
//!
//! Exactly-once effect: the answer carries the idempotency key `recommender/<trigger event
//! id>`, and the IDP accepts an answer only while `processing`. A crash between answering and
//! checkpointing redelivers the trigger; the second answer changes nothing.

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
    AllSubscription, CommandContext, CommandHandler, EventStore, IdempotencyKey, Metadata,
    RecordedEvent, SubscriptionOptions, Upcasters,
};
use trellis_recommender::RankOptions;
use trellis_recommender::rank::gaps;
use trellis_runtime::{EventHandler, HandlerError};
use uuid::Uuid;

pub use state::{FOLDED, State, resource_text, skill_text};

/// ESCO occupations shipped with Trellis (`data/esco/occupations.jsonl`, CC BY 4.0; see
/// `data/esco/README.md`): target roles and co-occurrence evidence.
pub fn bundled_occupations() -> Occupations {
    // The file is part of the repository and parsed by a test, so this cannot fail at run time.
    Occupations::parse(include_str!("../../../../data/esco/occupations.jsonl")).unwrap_or_default()
}

/// How long a trigger waits for the follower before the consumer retries it. Generous: after
/// a restart the follower re-embeds the whole catalog (the 1,277 ESCO skills take ~15 s), and
/// a trigger that exhausts its retries is dead-lettered with its plan left processing.
const CATCH_UP: Duration = Duration::from_secs(120);

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
            commands: CommandHandler::new(Arc::clone(&store), Arc::new(Upcasters::new())),
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
    pub async fn follow(&self, shutdown: impl std::future::Future<Output = ()>) {
        let mut subscription = AllSubscription::new(
            Arc::clone(&self.store),
            None,
            SubscriptionOptions::default(),
        );
        tokio::pin!(shutdown);
        let mut backoff = Duration::from_millis(50);
        loop {
            let batch = tokio::select! {
                () = &mut shutdown => return,
                batch = subscription.next_batch() => batch,
            };
            match batch {
                Ok(events) => {
                    backoff = Duration::from_millis(50);
                    // The subscription has moved past this batch: it must be folded before
                    // the next one, however long embedding keeps failing.
                    let mut retry = Duration::from_millis(100);
                    while let Err(e) = self.fold(&events).await {
                        tracing::error!(error = %e, "recommender: embedding failed; retrying");
                        tokio::select! {
                            () = &mut shutdown => return,
                            () = tokio::time::sleep(retry) => {}
                        }
                        retry = (retry * 2).min(Duration::from_secs(10));
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "recommender follower: store read failed");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    async fn fold(&self, events: &[RecordedEvent]) -> Result<(), trellis_embed::EmbedError> {
        let events: Vec<&RecordedEvent> = events
            .iter()
            .filter(|e| FOLDED.contains(&e.event_type.as_str()))
            .collect();
        if events.is_empty() {
            return Ok(());
        }
        let texts: Vec<Option<String>> = events.iter().map(|e| state::text_to_embed(e)).collect();
        let wanted: Vec<String> = texts.iter().flatten().cloned().collect();
        let embedder = Arc::clone(&self.embedder);
        // Inference is CPU-bound: off the async workers.
        let mut vectors = tokio::task::spawn_blocking(move || {
            let refs: Vec<&str> = wanted.iter().map(String::as_str).collect();
            embedder.embed(&refs)
        })
        .await
        .map_err(|e| trellis_embed::EmbedError::Tokenizer(format!("embedding task: {e}")))??
        .into_iter();
        let mut state = self
            .state
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for (event, text) in events.iter().zip(&texts) {
            let vector = text.as_ref().and_then(|_| vectors.next());
            state.fold(event, vector, &self.occupations);
        }
        let folded = state.folded;
        drop(state);
        self.folded.send_replace(folded);
        Ok(())
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
        matches!(event_type, "IdpCreated" | "IdpRecommendationRetried")
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
            let key = IdempotencyKey::parse(&format!("recommender/{}", event.event_id))
                .map_err(|e| HandlerError::from_error("idempotency key", e))?;
            let context = CommandContext {
                metadata: Metadata::caused_by(event, None),
                idempotency_key: Some(key),
                expected_version: None,
            };
            self.commands
                .handle::<Idp>(&event.stream_id, &command, &context)
                .await
                .map_err(|e| HandlerError::from_error("recording recommendations", e))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_bundled_occupations_parse() {
        let o = trellis_development::esco::Occupations::parse(include_str!(
            "../../../../data/esco/occupations.jsonl"
        ))
        .unwrap();
        assert_eq!(o.all().len(), 91);
        assert_eq!(super::bundled_occupations().all().len(), 91);
    }
}
