//! `trellis bench chain`: tamper evidence's costs (docs/benchmarks.md, "Audit").
//!
//! 1. Seeds `events` tally events, seals them all (`chain::seal_pending` until done) and
//!    verifies every chain: sealing and verification throughput.
//! 2. Appends for `seconds` with 4 writers (one event per append, as `bench append`), first
//!    without and then with the sealer running: appends/s of both (the sealer shares the
//!    machine) and the sealing lag (seal time minus commit time) of every event appended
//!    while it ran: p50, p99, max.

use std::sync::Arc;
use std::time::{Duration, Instant};

use trellis_kernel::{
    AppendOptions, EventStore, ExpectedVersion, Metadata, NewEvent, StreamId, TenantId,
};
use trellis_store_postgres::PgEventStore;
use trellis_store_postgres::chain;

/// Runs the benchmark.
pub async fn run(url: &str, events: u64, seconds: u64) -> anyhow::Result<()> {
    let store = super::store(url, 8).await?;
    let pool = store.pool().clone();
    let seeded = super::seed(&store, events).await?;
    let started = Instant::now();
    let sealed = chain::seal_all(&pool).await?;
    let seal_secs = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let mut checked = 0i64;
    for report in chain::verify_all(&pool).await? {
        anyhow::ensure!(
            report.ok(),
            "chain {} broken: {:?}",
            report.chain_id,
            report.broken
        );
        checked += report.events_checked;
    }
    let verify_secs = started.elapsed().as_secs_f64();

    let load = Duration::from_secs(seconds);
    let plain = appends(&store, load).await?;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let sealer = tokio::spawn(chain::run_sealer(pool.clone(), async move {
        let mut stopped = stopped;
        let _ = stopped.wait_for(|s| *s).await;
    }));
    let from = super::last_position(&store).await?;
    let with_sealer = appends(&store, load).await?;
    // Let the sealer finish the tail, then stop it.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let _ = stop.send(true);
    sealer.await?;
    let mut lags: Vec<f64> = sqlx::query_scalar(
        "SELECT extract(epoch FROM c.sealed_at - e.recorded_at)::float8 * 1000 \
         FROM events e JOIN event_chain c USING (global_position) WHERE e.global_position > $1",
    )
    .bind(from)
    .fetch_all(&pool)
    .await?;
    lags.sort_by(f64::total_cmp);
    let at = |q: f64| super::quantile(&lags, q).map_or(0.0, |v| (v * 10.0).round() / 10.0);
    super::report(&serde_json::json!({
        "seeded": seeded,
        "sealed": sealed,
        "seal_events_per_sec": (sealed as f64 / seal_secs).round(),
        "verified": checked,
        "verify_events_per_sec": (checked as f64 / verify_secs).round(),
        "verify_secs": (verify_secs * 100.0).round() / 100.0,
        "appends_per_sec_without_sealer": (plain as f64 / load.as_secs_f64()).round(),
        "appends_per_sec_with_sealer": (with_sealer as f64 / load.as_secs_f64()).round(),
        "lag_events": lags.len(),
        "lag_ms_p50": at(0.5),
        "lag_ms_p99": at(0.99),
        "lag_ms_max": at(1.0),
    }));
    Ok(())
}

/// One-event appends to fresh streams by 4 writers for `load`; how many.
async fn appends(store: &Arc<PgEventStore>, load: Duration) -> anyhow::Result<u64> {
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let store = Arc::clone(store);
        tasks.spawn(async move {
            let metadata = Metadata {
                tenant_id: Some(TenantId::new()),
                ..Metadata::default()
            };
            let mut n = 0u64;
            while started.elapsed() < load {
                let event = NewEvent::new(
                    "TallyOpened",
                    1,
                    serde_json::json!({ "name": format!("load {n}") }),
                    metadata.clone(),
                )?;
                let stream = StreamId::new("tally", uuid::Uuid::now_v7())?;
                store
                    .append(
                        &stream,
                        ExpectedVersion::NoStream,
                        vec![event],
                        AppendOptions::default(),
                    )
                    .await?;
                n += 1;
            }
            Ok::<u64, anyhow::Error>(n)
        });
    }
    let mut total = 0;
    while let Some(result) = tasks.join_next().await {
        total += result??;
    }
    Ok(total)
}
