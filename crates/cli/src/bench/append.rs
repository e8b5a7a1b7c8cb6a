//! `trellis bench append`: append throughput and latency against the real store.
//!
//! Each of `concurrency` tasks appends `batch` events per append to a fresh stream, for
//! `seconds`, after a one-second warm-up. The payload mimics a small domain event (about
//! 200 bytes of JSON) with full metadata, the same row shape `scripts/bench-append` gives
//! pgbench for the raw-insert baseline.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use trellis_kernel::{
    ActorId, AppendOptions, EventId, EventStore, ExpectedVersion, Metadata, NewEvent, StreamId,
    TenantId, TraceId,
};

fn bench_event(seq: u64, metadata: &Metadata) -> anyhow::Result<NewEvent> {
    let payload = serde_json::json!({ "seq": seq, "filler": "x".repeat(180) });
    NewEvent::new("BenchEventRecorded", 1, payload, metadata.clone()).context("bench event")
}

/// With `--personal`: the filler is a personal field of the writer (the metadata's actor),
/// encrypted with their data key like a name or an address (ADR 0017). Each task is one
/// writer, whose key is made once and then cached, as a user's is.
const PERSONAL: [trellis_kernel::PersonalData; 1] = [trellis_kernel::PersonalData {
    event_type: "BenchEventRecorded",
    subject: trellis_kernel::Subject::Field("writer"),
    fields: &["filler"],
}];

fn personal_event(seq: u64, metadata: &Metadata) -> anyhow::Result<NewEvent> {
    let writer = metadata.actor_id.map(|a| a.to_string());
    let payload = serde_json::json!({ "seq": seq, "writer": writer, "filler": "x".repeat(180) });
    NewEvent::new("BenchEventRecorded", 1, payload, metadata.clone()).context("bench event")
}

/// Runs the append benchmark.
pub async fn run(
    url: &str,
    concurrency: u32,
    batch: usize,
    seconds: u64,
    personal: bool,
    group_commit: Option<trellis_store_postgres::GroupCommitOptions>,
) -> anyhow::Result<()> {
    let store = Arc::new(
        Arc::unwrap_or_clone(super::store(url, concurrency).await?).with_group_commit(group_commit),
    );
    let make: fn(u64, &Metadata) -> anyhow::Result<NewEvent> = if personal {
        let master = crate::master_key(&trellis_api::config::Settings::from_env()?)?;
        trellis_store_postgres::keys::install_cipher(store.pool().clone(), master, PERSONAL);
        personal_event
    } else {
        bench_event
    };
    let warmup = Duration::from_secs(1);
    let measured = Duration::from_secs(seconds);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            let metadata = Metadata {
                correlation_id: Some(EventId::new()),
                causation_id: None,
                actor_id: Some(ActorId::new()),
                tenant_id: Some(TenantId::new()),
                trace_id: Some(TraceId::new()),
                request_id: None,
            };
            let mut latencies = Vec::new();
            let mut events = 0u64;
            let mut seq = 0u64;
            loop {
                let now = Instant::now();
                if now.duration_since(start) >= warmup + measured {
                    return Ok::<_, anyhow::Error>((latencies, events));
                }
                let stream = StreamId::new("bench", uuid::Uuid::now_v7())?;
                let batch_events = (0..batch)
                    .map(|_| {
                        seq += 1;
                        make(seq, &metadata)
                    })
                    .collect::<anyhow::Result<Vec<_>>>()?;
                store
                    .append(
                        &stream,
                        ExpectedVersion::NoStream,
                        batch_events,
                        AppendOptions::default(),
                    )
                    .await?;
                if now.duration_since(start) >= warmup {
                    latencies.push(now.elapsed());
                    events += batch as u64;
                }
            }
        }));
    }
    let mut latencies = Vec::new();
    let mut events = 0;
    for task in tasks {
        let (l, e) = task.await??;
        latencies.extend(l);
        events += e;
    }
    latencies.sort_unstable();
    super::report(&serde_json::json!({
        "events_per_sec": (events as f64 / measured.as_secs_f64()).round(),
        "appends": latencies.len(),
        "p50_ms": super::quantile_ms(&latencies, 0.50),
        "p99_ms": super::quantile_ms(&latencies, 0.99),
        "concurrency": concurrency,
        "batch": batch,
        "group_commit": group_commit.map(|g| [g.statements, g.flushers]),
        "seconds": seconds,
    }));
    Ok(())
}
