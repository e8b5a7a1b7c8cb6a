//! `trellis projections list | status | rebuild NAME`.

use std::io::Write;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::Subcommand;
use trellis_runtime::projection;

/// Projection maintenance.
#[derive(Subcommand)]
pub enum ProjectionsCommand {
    /// Every projection this binary knows, with its version and events.
    List,
    /// Position, lag and counts of each built projection.
    Status,
    /// Rebuild one projection from the event store, blue/green.
    Rebuild {
        /// Projection name.
        name: String,
    },
}

/// Runs a projections command.
pub async fn run(url: &str, command: ProjectionsCommand) -> anyhow::Result<()> {
    let store = Arc::new(crate::connect(url, 4).await?);
    trellis_api::migrate(&store, &trellis_contexts::modules())
        .await
        .context("migrating")?;
    let mut out = std::io::stdout().lock();
    match command {
        ProjectionsCommand::List => {
            for (p, _) in crate::serve::projections() {
                writeln!(
                    out,
                    "{}\tv{}\t{}",
                    p.name(),
                    p.version(),
                    p.event_types().join(",")
                )?;
            }
        }
        ProjectionsCommand::Status => {
            for status in projection::status(store.pool()).await? {
                writeln!(out, "{}", serde_json::to_string(&status)?)?;
            }
        }
        ProjectionsCommand::Rebuild { name } => {
            let modules = trellis_contexts::modules();
            let Some(p) = modules.projection(&name) else {
                bail!("no projection named {name}; see `trellis projections list`");
            };
            crate::install_readers(
                &modules,
                store.pool(),
                &trellis_api::config::Settings::from_env()?,
            )?;
            let total: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
                .fetch_one(store.pool())
                .await?;
            let total = total.max(1) as f64;
            let result = projection::rebuild(store.pool(), &*store, &*p, |progress| {
                crate::progress_bar(
                    progress.events_read as f64 / total,
                    &format!(
                        "{} events, {:.0} events/s",
                        progress.events_read, progress.events_per_sec
                    ),
                );
            })
            .await?;
            eprintln!();
            writeln!(
                out,
                "{}",
                serde_json::json!({
                    "projection": name,
                    "events_read": result.events_read,
                    "events_applied": result.events_applied,
                    "events_per_sec": result.events_per_sec.round(),
                })
            )?;
        }
    }
    Ok(())
}
