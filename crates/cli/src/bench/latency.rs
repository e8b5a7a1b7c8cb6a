//! `trellis bench latency`: from a command being sent to its effect being visible in a read
//! model, at a fixed (open-loop) command rate.
//!
//! Each command opens a new tally through the command handler (load, decide, append). The
//! projection handler is wrapped so that the moment its transaction commits (the moment the
//! row becomes visible to readers) is recorded per stream: latency = commit time − send time.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use trellis_bus_kafka::KafkaSource;
use trellis_demo::{Tally, TallyCommand};
use trellis_kernel::{CommandContext, CommandHandler, StreamId, SubscriptionOptions};
use trellis_runtime::projection::{self, ProjectionHandler};
use trellis_runtime::{ConsumerOptions, EventHandler, EventSource, StoreSource, spawn_consumer};

use super::Transport;

use super::timed::{Sent, Timed, lock};

/// Runs the latency benchmark.
pub async fn run(
    url: &str,
    rate: u64,
    seconds: u64,
    transport: Transport,
    brokers: Option<String>,
) -> anyhow::Result<()> {
    let store = super::store(url, 16).await?;
    let pool = store.pool().clone();
    projection::ensure(&pool, &*store, &trellis_demo_app::TallyTotals).await?;
    sqlx::query("DELETE FROM consumer_checkpoints WHERE name = 'projection.tally_totals'")
        .execute(&pool)
        .await?;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let shutdown = move || {
        let mut stopped = stopped.clone();
        async move {
            let _ = stopped.wait_for(|s| *s).await;
        }
    };
    let mut bench_kafka = None;
    let source: Box<dyn EventSource> = match transport {
        Transport::SingleNode => Box::new(
            StoreSource::resume(
                Arc::clone(&store),
                pool.clone(),
                "projection.tally_totals",
                SubscriptionOptions::default(),
            )
            .await?,
        ),
        Transport::Kafka => {
            let kafka = super::bench_kafka(
                &store,
                brokers,
                format!("bench-{}", uuid::Uuid::now_v7()),
                shutdown(),
            )?;
            let config = kafka.config.clone();
            bench_kafka = Some(kafka);
            Box::new(KafkaSource::new(
                &config,
                &format!("bench-projection-{}", uuid::Uuid::now_v7()),
                &[config.topic("fixture")],
            )?)
        }
    };
    let sent: Sent = Arc::default();
    let seen: Arc<Mutex<Vec<Duration>>> = Arc::default();
    let handler = Arc::new(Timed {
        inner: ProjectionHandler::new(Arc::new(trellis_demo_app::TallyTotals), pool.clone()),
        sent: Arc::clone(&sent),
        seen: Arc::clone(&seen),
        done: |_| true,
    });
    let (consumer, _) = spawn_consumer(
        source,
        Arc::clone(&handler) as Arc<dyn EventHandler>,
        ConsumerOptions::default(),
        shutdown(),
    );
    let commands = CommandHandler::new(Arc::clone(&store), Arc::new(trellis_demo::upcasters()));

    // Warm up until one command makes it through (Kafka group join takes seconds).
    let warm = Instant::now();
    loop {
        let stream = StreamId::new("tally", uuid::Uuid::now_v7())?;
        lock(&sent).insert(stream.id(), Instant::now());
        open(&commands, &stream).await?;
        tokio::time::sleep(Duration::from_millis(200)).await;
        if !lock(&seen).is_empty() {
            break;
        }
        anyhow::ensure!(
            warm.elapsed() < Duration::from_secs(60),
            "pipeline did not warm up"
        );
    }
    lock(&seen).clear();
    lock(&sent).clear();

    let total = rate * seconds;
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let started = tokio::time::Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..total {
        tokio::time::sleep_until(started + interval.mul_f64(i as f64)).await;
        let stream = StreamId::new("tally", uuid::Uuid::now_v7())?;
        lock(&sent).insert(stream.id(), Instant::now());
        let commands = commands.clone();
        tasks.spawn(async move { open(&commands, &stream).await });
    }
    let issue_secs = started.elapsed().as_secs_f64();
    while let Some(result) = tasks.join_next().await {
        result??;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while (lock(&seen).len() as u64) < total && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = stop.send(true);
    consumer.await?;
    if let Some(kafka) = bench_kafka {
        kafka.relay.await??;
    }
    let mut latencies = lock(&seen).clone();
    latencies.sort_unstable();
    super::report(&serde_json::json!({
        "bench": "latency",
        "transport": format!("{transport:?}"),
        "target_rate": rate,
        "achieved_rate": (total as f64 / issue_secs).round(),
        "commands": total,
        "observed": latencies.len(),
        "p50_ms": super::quantile_ms(&latencies, 0.50),
        "p99_ms": super::quantile_ms(&latencies, 0.99),
        "max_ms": super::quantile_ms(&latencies, 1.0),
    }));
    Ok(())
}

async fn open(
    commands: &CommandHandler<trellis_store_postgres::PgEventStore>,
    stream: &StreamId,
) -> anyhow::Result<()> {
    let command = TallyCommand::Open {
        name: "latency".into(),
    };
    commands
        .handle::<Tally>(stream.id(), &command, &CommandContext::default())
        .await?;
    Ok(())
}
