//! `trellis relay parked | retry EVENT_ID | retry --all`: the records the relay parked because
//! the broker refused them for good (ADR 0004, "Parking").

use std::io::Write;

use anyhow::{Context, bail};
use clap::Subcommand;
use trellis_store_postgres::parked;
use uuid::Uuid;

/// Relay maintenance.
#[derive(Subcommand)]
pub enum RelayCommand {
    /// Parked records, one JSON line each, in `$all` order (what `GET /v1/ops/parked` shows).
    Parked {
        /// Most records to print.
        #[arg(long, default_value_t = 1000)]
        limit: i64,
    },
    /// Ask the running relay to republish parked records. It takes the request within about
    /// a second and publishes them out of their original order (consumers are idempotent per
    /// stream version; see docs/consuming-events.md).
    Retry {
        /// The parked event's id.
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        event_id: Option<Uuid>,
        /// Every record still parked.
        #[arg(long)]
        all: bool,
    },
}

/// Runs a relay command.
pub async fn run(url: &str, command: RelayCommand) -> anyhow::Result<()> {
    let store = crate::connect(url, 2).await?;
    trellis_api::migrate(&store, &trellis_contexts::modules())
        .await
        .context("migrating")?;
    let pool = store.pool();
    let mut out = std::io::stdout().lock();
    match command {
        RelayCommand::Parked { limit } => {
            for record in parked::list(pool, None, limit.max(1)).await? {
                let state = record.state();
                let mut line = serde_json::to_value(record)?;
                line["state"] = serde_json::to_value(state)?;
                writeln!(out, "{line}")?;
            }
        }
        RelayCommand::Retry { event_id, all } => {
            let marked = match (event_id, all) {
                (_, true) => parked::request_retry_all(pool).await?,
                (Some(id), false) => {
                    let marked = parked::request_retry(pool, id, None).await?;
                    if marked == 0 {
                        bail!("no parked record has event id {id}; see `trellis relay parked`");
                    }
                    marked
                }
                (None, false) => bail!("name an event id or pass --all"),
            };
            writeln!(out, "{}", serde_json::json!({"retry_requested": marked}))?;
        }
    }
    Ok(())
}
