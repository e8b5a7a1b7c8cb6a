//! Imports ESCO skills into an organization's catalog, idempotently.
//!
//! Each skill's stream id is derived from the organization and the ESCO URI
//! (`esco_skill_id`), so importing the same file again finds every skill defined and skips it:
//! the import can be re-run after a crash, or on a schedule, without duplicates.

use trellis_development::esco::{EscoLineError, parse_skill_line};
use trellis_development::skill::{Skill, SkillError, esco_skill_id};
use trellis_kernel::{
    CommandContext, CommandHandler, EventStore, HandleError, Metadata, StreamId, TenantId,
};
use uuid::Uuid;

/// What an import did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// Skills defined now.
    pub imported: usize,
    /// Skills that were already in the catalog.
    pub skipped: usize,
}

/// The import stopped.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// A line is not an ESCO skill (nothing after it was imported; re-run after fixing).
    #[error("invalid ESCO data")]
    Line(#[from] EscoLineError),
    /// A skill was refused (a rule the data breaks).
    #[error("skill {uri} refused")]
    Refused {
        /// The ESCO URI.
        uri: String,
        /// Why.
        #[source]
        source: SkillError,
    },
    /// The store failed.
    #[error("event store error")]
    Store(#[source] HandleError<SkillError>),
}

/// Imports every line of `jsonl` into `organization_id`'s catalog.
///
/// # Errors
/// [`ImportError`] at the first bad line or store failure; what was imported before stays.
pub async fn import_esco_skills<S: EventStore + ?Sized>(
    commands: &CommandHandler<S>,
    organization_id: Uuid,
    metadata: &Metadata,
    jsonl: &str,
) -> Result<ImportReport, ImportError> {
    let mut metadata = metadata.clone();
    metadata.tenant_id = Some(TenantId::from_uuid(organization_id));
    let context = CommandContext {
        metadata,
        ..CommandContext::default()
    };
    let mut report = ImportReport::default();
    for (index, line) in jsonl.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let (uri, command) = parse_skill_line(index + 1, line)?;
        // "skill" is a valid stream kind, so this cannot fail.
        let stream = StreamId::new("skill", esco_skill_id(organization_id, &uri))
            .unwrap_or_else(|_| unreachable!("`skill` is a valid stream kind"));
        match commands
            .handle::<Skill>(stream.id(), &command, &context)
            .await
        {
            Ok(_) => report.imported += 1,
            Err(HandleError::Domain(SkillError::AlreadyDefined)) => report.skipped += 1,
            Err(HandleError::Domain(source)) => return Err(ImportError::Refused { uri, source }),
            Err(other) => return Err(ImportError::Store(other)),
        }
    }
    tracing::info!(
        imported = report.imported,
        skipped = report.skipped,
        "ESCO skills imported"
    );
    Ok(report)
}
