//! `trellis bench relay`: publish throughput of the relay against the dev broker.
//!
//! Seeds the store, then starts a relay with no checkpoint and times it until its checkpoint
//! reaches the last event, i.e. until the broker acknowledged everything.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use trellis_bus_kafka::{DevCluster, KafkaConfig, Relay, RelayOptions, Routing};

/// Runs the relay benchmark.
pub async fn run(url: &str, events: u64, brokers: Option<String>) -> anyhow::Result<()> {
    let store = super::store(url, 8).await?;
    sqlx::query("DELETE FROM relay_checkpoints WHERE name = 'bench-relay'")
        .execute(store.pool())
        .await?;
    let written = super::seed(&store, events).await?;
    let cluster;
    let brokers = match brokers {
        Some(b) => b,
        None => {
            cluster = DevCluster::start(
                3,
                &KafkaConfig::new(""),
                &Routing::from_routes(trellis_contexts::with_fixture().routes()),
            )?;
            cluster.bootstrap_servers()
        }
    };
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(store.pool())
        .await?;
    let last: i64 = sqlx::query_scalar(
        "SELECT global_position FROM events ORDER BY transaction_id DESC, global_position DESC LIMIT 1",
    )
    .fetch_one(store.pool())
    .await?;
    let options = RelayOptions {
        name: "bench-relay".into(),
        ..RelayOptions::default()
    };
    let relay = Relay::new(
        Arc::clone(&store),
        store.pool().clone(),
        KafkaConfig::new(brokers),
        Routing::from_routes(trellis_contexts::with_fixture().routes()),
        options,
    )?;
    let stats = relay.stats();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let started = Instant::now();
    let task = tokio::spawn(relay.run(async {
        let _ = stopped.await;
    }));
    while stats.checkpoint.load(Ordering::Relaxed) != last {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let elapsed = started.elapsed();
    let _ = stop.send(());
    task.await??;
    super::report(&serde_json::json!({
        "bench": "relay",
        "events_published": total,
        "events_seeded": written,
        "seconds": (elapsed.as_secs_f64() * 1000.0).round() / 1000.0,
        "events_per_sec": (total as f64 / elapsed.as_secs_f64()).round(),
        "failed_attempts": stats.failed_attempts.load(Ordering::Relaxed),
    }));
    Ok(())
}
