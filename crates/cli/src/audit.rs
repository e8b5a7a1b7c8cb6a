//! `trellis audit`: tamper evidence of the log (ADR 0016, docs/auditing.md).

// The report on stdout is this command's output.
#![allow(clippy::print_stdout)]

use clap::Subcommand;
use trellis_store_postgres::chain;
use uuid::Uuid;

/// `trellis audit …`.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Recompute the hash chains and report the first place each one breaks (exit status 1
    /// when one does).
    Verify {
        /// Only this organization's chain (the nil uuid: events without an organization).
        #[arg(long)]
        organization: Option<Uuid>,
    },
    /// Seal every event committed so far (what `trellis serve`'s sealer does continuously).
    Seal,
}

/// Runs an audit command.
///
/// # Errors
/// Database failures; a broken chain.
pub async fn run(url: &str, command: AuditCommand) -> anyhow::Result<()> {
    let store = crate::connect(url, 2).await?;
    trellis_api::migrate(&store, &trellis_contexts::modules()).await?;
    let pool = store.pool();
    match command {
        AuditCommand::Seal => {
            let total = chain::seal_all(pool).await?;
            println!("sealed {total} events");
            Ok(())
        }
        AuditCommand::Verify { organization } => {
            let started = std::time::Instant::now();
            let reports = match organization {
                Some(id) => vec![chain::verify(pool, id).await?],
                None => chain::verify_all(pool).await?,
            };
            let mut broken = 0;
            let mut checked = 0;
            for report in reports {
                let chain = report.chain_id;
                checked += report.events_checked;
                match &report.broken {
                    None => println!(
                        "{chain}: ok, {} events, head {}",
                        report.events_checked,
                        report.head.as_ref().map_or("none", |h| h.link.as_str())
                    ),
                    Some(b) => {
                        broken += 1;
                        println!(
                            "{chain}: BROKEN at seal {} (position {}): {}",
                            b.seq.map_or("-".to_owned(), |s| s.to_string()),
                            b.global_position.map_or("-".to_owned(), |p| p.to_string()),
                            b.reason
                        );
                    }
                }
            }
            let secs = started.elapsed().as_secs_f64();
            println!(
                "checked {checked} events in {secs:.2} s ({:.0} events/s)",
                checked as f64 / secs.max(1e-9)
            );
            if broken > 0 {
                anyhow::bail!("{broken} chain(s) broken");
            }
            Ok(())
        }
    }
}
