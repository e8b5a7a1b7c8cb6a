//! `trellis dev`: the dev Kafka broker and a live tail of `$all`, for trying Trellis by hand.
//! (The demo tally is a test fixture now, not product data: ADR 0011.)

use std::sync::Arc;

use anyhow::Context;
use clap::Subcommand;
use trellis_kernel::{AllSubscription, SubscriptionOptions};

/// Developer helpers.
#[derive(Subcommand)]
pub enum DevCommand {
    /// Follow `$all` and print each event as a JSON line, until interrupted.
    Tail,
    /// Host a multi-broker Kafka-protocol dev cluster (librdkafka's mock cluster) with the
    /// Trellis topics, write its bootstrap address to a file, and stay in the foreground.
    Kafka {
        /// Brokers in the cluster.
        #[arg(long, default_value_t = 3)]
        brokers: i32,
        /// Partitions per topic.
        #[arg(long, default_value_t = 3)]
        partitions: i32,
        /// Where to write `host:port,…` for scripts (KAFKA_BROKERS).
        #[arg(long, default_value = ".trellis/kafka.bootstrap")]
        bootstrap_file: std::path::PathBuf,
    },
}

/// Runs a dev helper.
pub async fn run(url: &str, command: DevCommand) -> anyhow::Result<()> {
    if let DevCommand::Kafka {
        brokers,
        partitions,
        bootstrap_file,
    } = command
    {
        return kafka(brokers, partitions, &bootstrap_file).await;
    }
    let store = Arc::new(crate::connect(url, 4).await?);
    trellis_api::migrate(&store, &trellis_contexts::modules())
        .await
        .context("migrating")?;
    match command {
        DevCommand::Tail => tail(store).await,
        DevCommand::Kafka { .. } => Ok(()),
    }
}

async fn tail(store: Arc<trellis_store_postgres::PgEventStore>) -> anyhow::Result<()> {
    let mut subscription = AllSubscription::new(store, None, SubscriptionOptions::default());
    loop {
        tokio::select! {
            batch = subscription.next_batch() => {
                for event in batch? {
                    #[allow(clippy::print_stdout)] // Printing events is what tail is for.
                    {
                        println!("{}", serde_json::to_string(&event)?);
                    }
                }
            }
            _ = tokio::signal::ctrl_c() => {
                tracing::info!(checkpoint = ?subscription.checkpoint(), "tail stopped");
                return Ok(());
            }
        }
    }
}

async fn kafka(
    brokers: i32,
    partitions: i32,
    bootstrap_file: &std::path::Path,
) -> anyhow::Result<()> {
    let mut config = trellis_bus_kafka::KafkaConfig::new("");
    config.partitions = partitions;
    let cluster = trellis_bus_kafka::DevCluster::start(
        brokers,
        &config,
        &trellis_bus_kafka::Routing::from_routes(trellis_contexts::modules().routes()),
    )
    .context("starting the mock cluster")?;
    let bootstrap = cluster.bootstrap_servers();
    if let Some(dir) = bootstrap_file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(bootstrap_file, &bootstrap)?;
    tracing::info!(%bootstrap, file = %bootstrap_file.display(), brokers, partitions, "dev kafka ready");
    tokio::signal::ctrl_c().await?;
    let _ = std::fs::remove_file(bootstrap_file);
    drop(cluster);
    Ok(())
}
