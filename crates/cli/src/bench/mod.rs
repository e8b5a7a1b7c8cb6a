//! `trellis bench …`: benchmarks that print one JSON line per run (docs/benchmarks.md).

mod append;
mod chain;
mod content;
mod idp;
mod latency;
mod rebuild;
mod recommender;
mod relay;
mod replay;
mod skills;
mod timed;

use std::sync::Arc;

use anyhow::Context;
use clap::{Subcommand, ValueEnum};
use trellis_kernel::{
    AppendOptions, EventStore, ExpectedVersion, Metadata, NewEvent, StreamId, TenantId,
};
use trellis_store_postgres::PgEventStore;

/// Benchmarks.
#[derive(Subcommand)]
pub enum BenchCommand {
    /// Append to fresh streams and report events/s and per-append latency.
    Append {
        /// Concurrent appending tasks (one pooled connection each).
        #[arg(long, default_value_t = 1)]
        concurrency: u32,
        /// Events per append.
        #[arg(long, default_value_t = 1)]
        batch: usize,
        /// Measured duration.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Each event carries a personal field, encrypted with its writer's data key
        /// (ADR 0017), as production encrypts names, addresses and free text.
        #[arg(long)]
        personal: bool,
        /// Group commit (ADR 0018): statements in flight before single-event appends are
        /// grouped; 0 writes each append with its own statement.
        #[arg(long, default_value_t = trellis_store_postgres::GroupCommitOptions::default().statements)]
        group_commit: usize,
        /// Grouped statements in flight at most.
        #[arg(long, default_value_t = trellis_store_postgres::GroupCommitOptions::default().flushers)]
        flushers: usize,
    },
    /// Seed the store, then time the relay publishing all of it to Kafka.
    Relay {
        /// Events to publish.
        #[arg(long, default_value_t = 200_000)]
        events: u64,
        /// Brokers; an embedded dev cluster when unset.
        #[arg(long, env = "KAFKA_BROKERS")]
        kafka_brokers: Option<String>,
    },
    /// Command -> read model visible latency at a fixed command rate.
    Latency {
        /// Commands per second (open loop).
        #[arg(long, default_value_t = 200)]
        rate: u64,
        /// Duration of the load.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Through Kafka or the in-process subscription.
        #[arg(long, value_enum, default_value_t = Transport::Kafka)]
        transport: Transport,
        /// Brokers; an embedded dev cluster when unset.
        #[arg(long, env = "KAFKA_BROKERS")]
        kafka_brokers: Option<String>,
    },
    /// Embedding throughput of the real MiniLM model (batched and one text at a time).
    Embed {
        /// Texts (ESCO skill descriptions).
        #[arg(long, default_value_t = 512)]
        texts: usize,
        /// Folder with skills.jsonl and occupations.jsonl.
        #[arg(long, default_value = "data/esco")]
        data: std::path::PathBuf,
    },
    /// HNSW recall@10 and queries/s against exact search.
    Hnsw {
        /// Vectors indexed.
        #[arg(long, default_value_t = 100_000)]
        vectors: usize,
        /// Queries.
        #[arg(long, default_value_t = 1_000)]
        queries: usize,
        /// ef_search values to try (comma-separated).
        #[arg(long, value_delimiter = ',', default_values_t = [96])]
        ef: Vec<usize>,
        /// Links per node (M); the service's default when unset.
        #[arg(long)]
        m: Option<usize>,
        /// Candidate list while building; the service's default when unset.
        #[arg(long)]
        ef_construction: Option<usize>,
        /// Folder with skills.jsonl and occupations.jsonl.
        #[arg(long, default_value = "data/esco")]
        data: std::path::PathBuf,
    },
    /// Ranking latency for one IDP (10 gaps) over a catalog of `resources`.
    Recommend {
        /// Resources in the catalog.
        #[arg(long, default_value_t = 100_000)]
        resources: usize,
        /// IDPs ranked.
        #[arg(long, default_value_t = 1_000)]
        queries: usize,
        /// Search text neighbours for every gap, even well-tagged ones (the worst case).
        #[arg(long)]
        always_text: bool,
        /// Folder with skills.jsonl and occupations.jsonl.
        #[arg(long, default_value = "data/esco")]
        data: std::path::PathBuf,
    },
    /// CreateIdp command -> plan active in the read model, through the real recommender.
    Idp {
        /// Plans per second (open loop).
        #[arg(long, default_value_t = 10)]
        rate: u64,
        /// Duration of the load.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Resources in the catalog.
        #[arg(long, default_value_t = 1_000)]
        resources: usize,
        /// Through Kafka or the in-process subscription.
        #[arg(long, value_enum, default_value_t = Transport::Kafka)]
        transport: Transport,
        /// Brokers; an embedded dev cluster when unset.
        #[arg(long, env = "KAFKA_BROKERS")]
        kafka_brokers: Option<String>,
    },
    /// Extract (worker process) and atomize one file, `repeat` times: seconds per document.
    Atomize {
        /// The document (a 100-page PDF: docs/benchmarks.md says where to get one).
        #[arg(long)]
        file: std::path::PathBuf,
        /// Runs.
        #[arg(long, default_value_t = 3)]
        repeat: usize,
    },
    /// `GET /v1/search`'s work over an organization with `atoms` atoms: p50/p95/p99.
    Search {
        /// Atoms in the organization (seeded once into the read model).
        #[arg(long, default_value_t = 100_000)]
        atoms: usize,
        /// Timed queries.
        #[arg(long, default_value_t = 300)]
        queries: usize,
    },
    /// `GET /v1/skills?q=`'s query over an organization with `skills` skills: p50/p95/p99.
    Skills {
        /// Skills in the organization (seeded once into the read model from ESCO labels).
        #[arg(long, default_value_t = 14_700)]
        skills: usize,
        /// Timed queries.
        #[arg(long, default_value_t = 1_000)]
        queries: usize,
        /// Folder with skills.jsonl and occupations.jsonl.
        #[arg(long, default_value = "data/esco")]
        data: std::path::PathBuf,
    },
    /// Seal and verify a seeded store, then the sealing lag and appends/s under load.
    Chain {
        /// Events seeded, sealed and verified.
        #[arg(long, default_value_t = 1_000_000)]
        events: u64,
        /// Seconds of append load without and then with the sealer.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
    /// Seed the store, then time a projection rebuild from it.
    Rebuild {
        /// Events in the store.
        #[arg(long, default_value_t = 1_000_000)]
        events: u64,
    },
    /// Seed one audited organization beside another, then time replays of its history
    /// (`trellis replay --into`) as of its end and as of its middle.
    Replay {
        /// The audited organization's events.
        #[arg(long, default_value_t = 1_000_000)]
        events: u64,
        /// Another organization's events in the same log, written first (the replay's
        /// organization index passes over them).
        #[arg(long, default_value_t = 1_000_000)]
        other_events: u64,
    },
}

/// How events reach the consumers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Transport {
    /// Relay + Kafka consumer group.
    Kafka,
    /// In-process subscription to the store (single-node mode).
    SingleNode,
}

/// Runs a benchmark.
pub async fn run(url: &str, command: BenchCommand) -> anyhow::Result<()> {
    match command {
        BenchCommand::Append {
            concurrency,
            batch,
            seconds,
            personal,
            group_commit,
            flushers,
        } => {
            let group = (group_commit > 0).then_some(trellis_store_postgres::GroupCommitOptions {
                statements: group_commit,
                flushers,
            });
            append::run(
                url,
                concurrency.max(1),
                batch.clamp(1, 1000),
                seconds.max(1),
                personal,
                group,
            )
            .await
        }
        BenchCommand::Relay {
            events,
            kafka_brokers,
        } => relay::run(url, events, kafka_brokers).await,
        BenchCommand::Latency {
            rate,
            seconds,
            transport,
            kafka_brokers,
        } => latency::run(url, rate.max(1), seconds.max(1), transport, kafka_brokers).await,
        BenchCommand::Rebuild { events } => rebuild::run(url, events).await,
        BenchCommand::Replay {
            events,
            other_events,
        } => replay::run(url, events, other_events).await,
        BenchCommand::Chain { events, seconds } => chain::run(url, events, seconds.max(1)).await,
        BenchCommand::Atomize { file, repeat } => content::atomize(&file, repeat.max(1)).await,
        BenchCommand::Search { atoms, queries } => {
            content::search(url, atoms, queries.max(1)).await
        }
        BenchCommand::Skills {
            skills,
            queries,
            data,
        } => skills::run(url, &data, skills, queries.max(1)).await,
        BenchCommand::Embed { texts, data } => {
            tokio::task::block_in_place(|| recommender::embed(&data, texts.max(1)))
        }
        BenchCommand::Hnsw {
            vectors,
            queries,
            ef,
            m,
            ef_construction,
            data,
        } => {
            let defaults = trellis_recommender::index::IndexParams::default();
            let params = trellis_recommender::index::IndexParams {
                max_connections: m.unwrap_or(defaults.max_connections),
                ef_construction: ef_construction.unwrap_or(defaults.ef_construction),
                ..defaults
            };
            tokio::task::block_in_place(|| recommender::hnsw(&data, vectors, queries, &ef, params))
        }
        BenchCommand::Recommend {
            resources,
            queries,
            always_text,
            data,
        } => tokio::task::block_in_place(|| {
            recommender::recommend(&data, resources, queries, always_text)
        }),
        BenchCommand::Idp {
            rate,
            seconds,
            resources,
            transport,
            kafka_brokers,
        } => {
            idp::run(
                url,
                rate.max(1),
                seconds.max(1),
                resources,
                transport,
                kafka_brokers,
            )
            .await
        }
    }
}

/// Prints the benchmark's one JSON line.
fn report(line: &serde_json::Value) {
    #[allow(clippy::print_stdout)] // The JSON line on stdout is a bench command's output.
    {
        println!("{line}");
    }
}

/// The value at quantile `q` of sorted values (nearest rank).
fn quantile<T: Copy>(sorted: &[T], q: f64) -> Option<T> {
    let i = ((sorted.len() as f64 * q).ceil() as usize).saturating_sub(1);
    sorted.get(i).copied()
}

/// Milliseconds at quantile `q` of sorted durations.
fn quantile_ms(sorted: &[std::time::Duration], q: f64) -> f64 {
    let ms = quantile(sorted, q).map_or(0.0, |d| d.as_secs_f64() * 1000.0);
    (ms * 1000.0).round() / 1000.0
}

/// Kafka for a benchmark: the given brokers or an embedded dev cluster (kept alive by the
/// returned value), and a relay publishing the store until `shutdown`.
pub(crate) struct BenchKafka {
    /// Client settings for the brokers.
    pub config: trellis_bus_kafka::KafkaConfig,
    /// The relay's task.
    pub relay: tokio::task::JoinHandle<Result<(), trellis_bus_kafka::RelayError>>,
    _cluster: Option<trellis_bus_kafka::DevCluster>,
}

pub(crate) fn bench_kafka(
    store: &Arc<PgEventStore>,
    brokers: Option<String>,
    relay_name: String,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<BenchKafka> {
    use trellis_bus_kafka::{DevCluster, KafkaConfig, Relay, RelayOptions, Routing};
    let (brokers, cluster) = match brokers {
        Some(b) => (b, None),
        None => {
            let cluster = DevCluster::start(
                3,
                &KafkaConfig::new(""),
                &Routing::from_routes(trellis_contexts::with_fixture().routes()),
            )?;
            (cluster.bootstrap_servers(), Some(cluster))
        }
    };
    let config = KafkaConfig::new(brokers);
    let relay = Relay::new(
        Arc::clone(store),
        store.pool().clone(),
        config.clone(),
        Routing::from_routes(trellis_contexts::with_fixture().routes()),
        RelayOptions {
            name: relay_name,
            ..RelayOptions::default()
        },
    )?;
    Ok(BenchKafka {
        config,
        relay: tokio::spawn(relay.run(shutdown)),
        _cluster: cluster,
    })
}

/// A migrated store with a pool of `connections`.
async fn store(url: &str, connections: u32) -> anyhow::Result<Arc<PgEventStore>> {
    let store = crate::connect(url, connections).await?;
    trellis_api::migrate(&store, &trellis_contexts::modules())
        .await
        .context("migrating")?;
    Ok(Arc::new(store))
}

/// The highest position written (writers interleave, so not the head in commit order).
async fn last_position(store: &PgEventStore) -> anyhow::Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT coalesce(max(global_position), 0) FROM events")
            .fetch_one(store.pool())
            .await?,
    )
}

/// Writes `events` tally events (100 per stream, one append per stream) for a new
/// organization as fast as it can, with 4 writers. Returns how many were written.
async fn seed(store: &Arc<PgEventStore>, events: u64) -> anyhow::Result<u64> {
    seed_for(store, TenantId::new(), events).await
}

/// [`seed`] for `tenant`.
async fn seed_for(store: &Arc<PgEventStore>, tenant: TenantId, events: u64) -> anyhow::Result<u64> {
    const PER_STREAM: u64 = 100;
    let streams = events.div_ceil(PER_STREAM);
    let mut tasks = tokio::task::JoinSet::new();
    for writer in 0..4u64 {
        let store = Arc::clone(store);
        tasks.spawn(async move {
            let mut written = 0;
            for s in (writer..streams).step_by(4) {
                let n = PER_STREAM.min(events - s * PER_STREAM);
                let metadata = Metadata {
                    tenant_id: Some(tenant),
                    ..Metadata::default()
                };
                let mut batch = vec![NewEvent::new(
                    "TallyOpened",
                    1,
                    serde_json::json!({ "name": format!("seed {s}") }),
                    metadata.clone(),
                )?];
                for i in 1..n {
                    batch.push(NewEvent::new(
                        "AmountAdded",
                        2,
                        serde_json::json!({ "amount": 1 + i % 9, "unit": "point" }),
                        metadata.clone(),
                    )?);
                }
                let stream = StreamId::new("tally", uuid::Uuid::now_v7())?;
                store
                    .append(
                        &stream,
                        ExpectedVersion::NoStream,
                        batch,
                        AppendOptions::default(),
                    )
                    .await?;
                written += n;
            }
            Ok::<u64, anyhow::Error>(written)
        });
    }
    let mut written = 0;
    while let Some(result) = tasks.join_next().await {
        written += result??;
    }
    Ok(written)
}
