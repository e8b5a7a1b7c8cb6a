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
    /// Re-wrap every data key wrapped by `TRELLIS_PREVIOUS_MASTER_KEY` with
    /// `TRELLIS_MASTER_KEY` (docs/security.md, "Rotating the master key"). The data keys and
    /// every ciphertext stay as they are; erased subjects stay erased. Running it again
    /// re-wraps nothing.
    RotateMasterKey,
}

/// Runs a privacy command.
///
/// # Errors
/// A missing master key, a chain that does not verify, database failures; for a rotation,
/// no previous key configured, or data keys that neither key opens.
pub async fn run(url: &str, command: PrivacyCommand) -> anyhow::Result<()> {
    let store = crate::connect(url, 4).await?;
    let modules = trellis_contexts::modules();
    trellis_api::migrate(&store, &modules).await?;
    let settings = trellis_api::config::Settings::from_env()?;
    match command {
        PrivacyCommand::RotateMasterKey => {
            let master = crate::master_key(&settings)?;
            anyhow::ensure!(
                master.rotating(),
                "set TRELLIS_PREVIOUS_MASTER_KEY to the key being replaced, and \
                 TRELLIS_MASTER_KEY to the new one"
            );
            let keyring = trellis_store_postgres::keys::PgKeyring::new(store.pool().clone());
            let report = trellis_privacy::rotate(&master, &keyring).await?;
            println!(
                "re-wrapped {} data keys with the new master key ({} already were, {} changed \
                 or erased meanwhile, {} open with neither key)",
                report.rewrapped, report.current, report.skipped, report.unreadable
            );
            anyhow::ensure!(
                report.unreadable == 0,
                "{} data keys open with neither key: they were wrapped by another master key; \
                 keep TRELLIS_PREVIOUS_MASTER_KEY until they are found",
                report.unreadable
            );
            Ok(())
        }
        PrivacyCommand::EncryptHistory => {
            crate::install_readers(&modules, store.pool(), &settings)?;
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
