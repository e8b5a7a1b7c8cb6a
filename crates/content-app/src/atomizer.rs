//! The atomizer: a reactive service (serve role `atomizer`, a consumer-group member of
//! `trellis.content`) answering every upload, new version and re-atomization with the
//! content's atoms or the reason it could not make them.
//!
//! For each trigger it folds the content's stream; a content that no longer awaits an answer
//! for that version (answered already, or a newer version since) is skipped, so redelivery
//! and restarts never atomize twice (the aggregate refuses a second answer anyway). The file
//! is read from object storage and extracted in a worker process ([`crate::extraction`]);
//! the worker's refusal or death becomes `AtomizationFailed` with its reason, and the next
//! document goes on. Only a worker that cannot start at all (a deployment problem) fails the
//! event, to be retried. Atomization itself ([`trellis_atomizer`]) runs off the async
//! workers; concepts are linked to the organization's catalog skills through the
//! [`SkillLinks`] port and atoms of earlier contents become prerequisites.
//!
//! Exactly-once effect: the answer carries the idempotency key `atomizer/<trigger event id>`.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use sqlx::PgPool;
use trellis_atomizer::{ATOMIZER_VERSION, Input, KnownAtom};
use trellis_content::content::{ATOMIZATION_TRIGGERS, Content, ContentCommand};
use trellis_embed::Embedder;
use trellis_kernel::{CommandContext, CommandHandler, EventStore, RecordedEvent};
use trellis_runtime::{EventHandler, HandlerError};
use uuid::Uuid;

use crate::extraction::{self, ExtractFailure};
use crate::settings::WorkerSettings;
use crate::storage::ContentStorage;

/// Finds the organization's catalog skills a concept's phrase names (an adapter over
/// another context's read model, wired by the composition).
#[async_trait]
pub trait SkillLinks: Send + Sync {
    /// For each phrase, the ids of the skills of `organization_id` it matches (possibly none).
    ///
    /// # Errors
    /// The read model's failure.
    async fn link(
        &self,
        organization_id: Uuid,
        phrases: &[String],
    ) -> Result<Vec<Vec<Uuid>>, Box<dyn std::error::Error + Send + Sync>>;
}

/// The service.
pub struct Atomizer {
    commands: CommandHandler<dyn EventStore>,
    pool: PgPool,
    storage: ContentStorage,
    worker: WorkerSettings,
    embedder: Arc<dyn Embedder>,
    links: Arc<dyn SkillLinks>,
}

impl Atomizer {
    /// An atomizer over `store` (commands) and `pool` (earlier atoms), reading files from
    /// `storage` and extracting them with `worker`.
    pub fn new(
        store: Arc<dyn EventStore>,
        pool: PgPool,
        storage: ContentStorage,
        worker: WorkerSettings,
        embedder: Arc<dyn Embedder>,
        links: Arc<dyn SkillLinks>,
    ) -> Self {
        Self {
            commands: CommandHandler::new(store, trellis_kernel::upcast::global()),
            pool,
            storage,
            worker,
            embedder,
            links,
        }
    }

    /// The answer for content `id` at `content_version`, or `None` when none is awaited.
    async fn answer(&self, event: &RecordedEvent) -> Result<Option<ContentCommand>, HandlerError> {
        let id = event.stream_id.id();
        let (state, _) = self
            .commands
            .load::<Content>(id)
            .await
            .map_err(|e| HandlerError::from_error("loading the content", e))?;
        let version = state.content_version;
        let awaited = state
            .awaits_answer_for(trigger_version(event).unwrap_or(version))
            .unwrap_or(false);
        let Some(file) = state.file.clone().filter(|_| awaited) else {
            return Ok(None);
        };
        let failure = |reason: String| ContentCommand::RecordFailure {
            content_version: version,
            atomizer_version: ATOMIZER_VERSION,
            reason: reason.chars().take(1_000).collect(),
        };
        let bytes = match self.read(&file.key, file.size).await {
            Ok(bytes) => bytes,
            Err(e) => return Err(HandlerError::from_error("reading the stored file", e)),
        };
        let document = match extraction::extract(&self.worker, bytes, file.media_type).await {
            Ok(document) => document,
            Err(ExtractFailure::Unavailable(why)) => return Err(HandlerError::msg(why)),
            Err(failure_) => return Ok(Some(failure(failure_.to_string()))),
        };
        let input = Input {
            content_id: id,
            content_version: version,
            document: &document,
            title: &state.title,
        };
        let embedder = Arc::clone(&self.embedder);
        let atomized = match tokio::runtime::Handle::current().runtime_flavor() {
            tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(|| trellis_atomizer::atomize(&input, &*embedder))
            }
            _ => trellis_atomizer::atomize(&input, &*embedder),
        };
        let mut atoms = match atomized {
            Ok(atoms) => atoms,
            Err(trellis_atomizer::AtomizeError::Empty) => {
                return Ok(Some(failure("the document has no text to atomize".into())));
            }
            Err(e) => return Err(HandlerError::from_error("atomizing", e)),
        };
        let organization = event.metadata.tenant_id.map(|t| t.as_uuid());
        if let Some(organization) = organization {
            self.link(organization, id, &mut atoms).await?;
        }
        Ok(Some(ContentCommand::RecordAtoms {
            content_version: version,
            atomizer_version: ATOMIZER_VERSION,
            atoms,
        }))
    }

    /// Catalog skills for concepts, and prerequisites from the organization's earlier
    /// contents.
    async fn link(
        &self,
        organization: Uuid,
        content: Uuid,
        atoms: &mut [trellis_content::Atom],
    ) -> Result<(), HandlerError> {
        let mut phrases: Vec<String> = atoms
            .iter()
            .flat_map(|a| a.concepts.iter().map(|c| c.phrase.clone()))
            .collect();
        phrases.sort();
        phrases.dedup();
        let links = self
            .links
            .link(organization, &phrases)
            .await
            .map_err(|e| HandlerError::msg(format!("linking concepts to skills: {e}")))?;
        for atom in atoms.iter_mut() {
            for concept in &mut atom.concepts {
                if let Ok(i) = phrases.binary_search(&concept.phrase) {
                    concept.skill_ids = links.get(i).cloned().unwrap_or_default();
                    concept
                        .skill_ids
                        .truncate(trellis_content::limits::CONCEPT_SKILLS_MAX);
                }
            }
        }
        let position = crate::library::position(&self.pool, content)
            .await
            .map_err(|e| HandlerError::from_error("reading the content's position", e))?
            .unwrap_or(i64::MAX);
        let fresh: Vec<String> = trellis_atomizer::fresh_concepts(atoms).concat();
        let known: Vec<KnownAtom> =
            crate::library::earlier_atoms_with_concepts(&self.pool, organization, position, &fresh)
                .await
                .map_err(|e| HandlerError::from_error("reading earlier atoms", e))?
                .into_iter()
                .map(|(id, concepts)| KnownAtom { id, concepts })
                .collect();
        trellis_atomizer::add_outside_prerequisites(atoms, &known);
        for atom in atoms.iter_mut() {
            atom.prerequisites
                .truncate(trellis_content::limits::PREREQUISITES_MAX);
        }
        Ok(())
    }

    async fn read(&self, key: &str, size: u64) -> Result<Bytes, crate::storage::StorageError> {
        let mut stream = self.storage.get(key).await?;
        let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0).min(256 << 20));
        while let Some(chunk) = stream.next().await {
            bytes.extend_from_slice(&chunk?);
        }
        Ok(Bytes::from(bytes))
    }
}

/// How long stored bytes may go unreferenced before the sweep deletes them: an upload stores
/// its bytes before it appends its event, and the read model follows the log.
pub const SWEEP_GRACE: chrono::Duration = chrono::Duration::hours(24);

/// Sweeps object storage every `every` until `shutdown`: objects no content version
/// references ([`crate::library::referenced_keys`]), older than [`SWEEP_GRACE`], are deleted,
/// with temporary objects of uploads that died. Failures are logged and retried next time.
pub async fn sweep_periodically(
    pool: PgPool,
    storage: ContentStorage,
    every: std::time::Duration,
    shutdown: futures::future::BoxFuture<'static, ()>,
) {
    let sweep = async {
        loop {
            tokio::time::sleep(every).await;
            let result = async {
                let referenced = crate::library::referenced_keys(&pool)
                    .await
                    .map_err(|e| e.to_string())?;
                storage
                    .sweep(&referenced, chrono::Utc::now() - SWEEP_GRACE)
                    .await
                    .map_err(|e| e.to_string())
            }
            .await;
            match result {
                Ok(0) => {}
                Ok(deleted) => tracing::info!(deleted, "swept unreferenced stored files"),
                Err(error) => {
                    tracing::warn!(%error, "sweeping stored files failed; retrying later")
                }
            }
        }
    };
    tokio::select! {
        () = sweep => {}
        () = shutdown => {}
    }
}

/// The content version a trigger asks about (`None`: the current one).
fn trigger_version(event: &RecordedEvent) -> Option<u32> {
    use trellis_content::content::ContentEvent;
    use trellis_kernel::DomainEvent;
    match ContentEvent::from_payload(&event.event_type, event.payload.clone()).ok()? {
        ContentEvent::ContentUploaded { .. } => Some(1),
        ContentEvent::ContentVersionUploaded {
            content_version, ..
        } => Some(content_version),
        _ => None,
    }
}

#[async_trait]
impl EventHandler for Atomizer {
    fn name(&self) -> &str {
        "reaction.atomizer"
    }

    fn wants(&self, event_type: &str) -> bool {
        ATOMIZATION_TRIGGERS.contains(&event_type)
    }

    async fn handle(&self, events: &[RecordedEvent]) -> Result<(), HandlerError> {
        for event in events.iter().filter(|e| self.wants(&e.event_type)) {
            let Some(command) = self.answer(event).await? else {
                continue;
            };
            if let ContentCommand::RecordFailure { reason, .. } = &command {
                tracing::info!(content = %event.stream_id, %reason, "atomization failed");
            }
            let context = CommandContext::reacting_to(event, "atomizer")
                .map_err(|e| HandlerError::from_error("idempotency key", e))?;
            self.commands
                .handle::<Content>(event.stream_id.id(), &command, &context)
                .await
                .map_err(|e| HandlerError::from_error("recording the atomization", e))?;
        }
        Ok(())
    }
}
