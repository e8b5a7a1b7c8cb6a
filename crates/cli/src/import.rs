//! `trellis import esco --organization ID PATH`.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Subcommand;
use trellis_kernel::{CommandHandler, Metadata, Upcasters};

/// Reference-data imports.
#[derive(Subcommand)]
pub enum ImportCommand {
    /// ESCO skills (JSON Lines like `data/esco/skills.jsonl`) into an organization's catalog.
    /// Idempotent: skills already imported are skipped.
    Esco {
        /// The organization.
        #[arg(long)]
        organization: uuid::Uuid,
        /// The file.
        #[arg(default_value = "data/esco/skills.jsonl")]
        path: PathBuf,
    },
}

/// Runs an import and prints one JSON line with the counts.
pub async fn run(url: &str, command: ImportCommand) -> anyhow::Result<()> {
    let ImportCommand::Esco { organization, path } = command;
    let store = Arc::new(crate::connect(url, 4).await?);
    trellis_api::migrate(&store, &trellis_contexts::modules())
        .await
        .context("migrating")?;
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let commands = CommandHandler::new(store, Arc::new(Upcasters::new()));
    let report = trellis_development_app::import_esco_skills(
        &commands,
        organization,
        &Metadata::default(),
        &text,
    )
    .await?;
    #[allow(clippy::print_stdout)] // The counts on stdout are this command's output.
    {
        println!(
            "{}",
            serde_json::json!({"imported": report.imported, "skipped": report.skipped})
        );
    }
    Ok(())
}
