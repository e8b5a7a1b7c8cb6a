//! `trellis replay`: projections as they stood at a past point, for one organization, into
//! a schema auditors can query; or the range republished to a Kafka topic (docs/auditing.md,
//! "Replay"). Nothing reactive runs: no event is appended, nothing is sent but the topic's
//! records.

use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use trellis_runtime::replay::{self, Cut, ReplayProgress};
use uuid::Uuid;

/// Options of `trellis replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The organization whose events are replayed.
    #[arg(long)]
    organization: Uuid,
    /// The cut: a global position (digits) or an RFC 3339 time; events at or before it.
    #[arg(long)]
    until: String,
    /// Projections to rebuild (`trellis projections list` names them).
    #[arg(long, value_delimiter = ',')]
    projections: Vec<String>,
    /// The new schema to rebuild them into.
    #[arg(long)]
    into: Option<String>,
    /// Instead (or as well), republish the organization's events up to the cut to this
    /// Kafka topic, with CloudEvents headers and `trellis_replay_id`.
    #[arg(long)]
    to_topic: Option<String>,
    /// Kafka bootstrap servers for `--to-topic` (else `KAFKA_BROKERS`).
    #[arg(long, env = "KAFKA_BROKERS")]
    kafka_brokers: Option<String>,
}

/// The replay's progress bar.
fn bar(p: ReplayProgress) {
    crate::progress_bar(
        p.share(),
        &format!(
            "position {} of {}, {} events up to the cut, {} applied",
            p.position, p.end, p.events_read, p.events_applied
        ),
    );
}

/// Runs `trellis replay`.
///
/// # Errors
/// Bad arguments, store, database or broker failures.
pub async fn run(url: &str, args: ReplayArgs) -> anyhow::Result<()> {
    let cut =
        Cut::parse(&args.until).context("--until must be a global position or an RFC 3339 time")?;
    anyhow::ensure!(
        args.into.is_some() || args.to_topic.is_some(),
        "say where to replay: --into SCHEMA (with --projections) or --to-topic NAME"
    );
    let store = Arc::new(crate::connect(url, 4).await?);
    let modules = trellis_contexts::modules();
    trellis_api::migrate(&store, &modules).await?;
    if let Some(into) = &args.into {
        // Projections read decrypted, upcast events; --to-topic republishes stored ones as
        // they are (personal fields stay ciphertext on the auditors' topic).
        crate::install_readers(
            &modules,
            store.pool(),
            &trellis_api::config::Settings::from_env()?,
        )?;
        let mut chosen = Vec::new();
        for name in &args.projections {
            chosen.push(
                modules
                    .projection(name)
                    .with_context(|| format!("no projection named {name}"))?,
            );
        }
        anyhow::ensure!(!chosen.is_empty(), "--into needs --projections");
        let refs: Vec<&dyn trellis_runtime::projection::Projection> =
            chosen.iter().map(|p| &**p).collect();
        let done = replay::replay(
            store.pool(),
            &*store,
            &refs,
            args.organization,
            cut,
            into,
            bar,
        )
        .await?;
        eprintln!();
        tracing::info!(schema = %into, events_applied = done.events_applied, "replayed");
    }
    if let Some(topic) = &args.to_topic {
        let brokers = args
            .kafka_brokers
            .clone()
            .context("--to-topic needs --kafka-brokers or KAFKA_BROKERS")?;
        let replay_id = Uuid::now_v7();
        let config = trellis_bus_kafka::KafkaConfig::new(brokers);
        let routing = trellis_bus_kafka::Routing::from_routes(modules.routes());
        let publisher = trellis_bus_kafka::Republisher::new(&config, routing, topic, replay_id)?;
        let mut sent = 0usize;
        let mut batches = replay::EventsUntil::new(&*store, args.organization, cut);
        while let Some((events, _)) = batches.next_batch().await? {
            publisher.send(&events).await?;
            sent += events.len();
        }
        #[allow(clippy::print_stdout)] // The replay id is this command's output.
        {
            println!("replay {replay_id}: {sent} events published to {topic}");
        }
    }
    Ok(())
}
