//! `trellis privacy`: personal data in events (ADR 0017, docs/auditing.md).

// The report on stdout is this command's output.
#![allow(clippy::print_stdout)]

use clap::Subcommand;

/// `trellis privacy …`.
#[derive(Debug, Subcommand)]
pub enum PrivacyCommand {
    /// Encrypt, once and on record, the personal fields of events appended before they were
    /// encrypted (the one exception to immutability, ADR 0017), re-linking the hash chains of
    /// the organizations touched. Refuses when one of those chains does not verify. Running it
    /// again changes nothing.
    EncryptHistory,
}

/// Runs a privacy command.
///
/// # Errors
/// A missing master key, a chain that does not verify, database failures.
pub async fn run(url: &str, command: PrivacyCommand) -> anyhow::Result<()> {
    let store = crate::connect(url, 4).await?;
    let modules = trellis_contexts::modules();
    trellis_api::migrate(&store, &modules).await?;
    crate::install_readers(
        &modules,
        store.pool(),
        &trellis_api::config::Settings::from_env()?,
    )?;
    match command {
        PrivacyCommand::EncryptHistory => {
            let report = trellis_store_postgres::history::encrypt_history(
                store.pool(),
                &modules.personal_data(),
            )
            .await?;
            println!(
                "encrypted the personal fields of {} events from before ADR 0017",
                report.events
            );
            for reseal in report.reseals {
                println!(
                    "re-linked chain {} (head seq {}): {} -> {} (recorded in event_chain_reseals)",
                    reseal.chain_id, reseal.seq, reseal.old_head, reseal.new_head
                );
            }
            Ok(())
        }
    }
}
