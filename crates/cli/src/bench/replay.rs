//! `trellis bench replay`: replay for audits (docs/auditing.md, "Replay"), events/s.
//!
//! Seeds another organization's `other_events`, then the audited organization's `events`
//! (tallies, as `bench rebuild`; the other organization's events all come first, so the
//! organization index skips them in one step: the best case), and replays `tally_totals` for the audited organization
//! into a fresh schema, as `trellis replay --into` does: once as of the log's end (every
//! event of the organization applied) and once as of the middle of its history (the rest is
//! still read, to the end of `$all` in commit order, and skipped). The schemas are dropped
//! after each run.

use std::time::Instant;

use trellis_kernel::TenantId;
use trellis_runtime::replay::{self, Cut};

/// Runs the benchmark.
pub async fn run(url: &str, events: u64, other_events: u64) -> anyhow::Result<()> {
    let store = super::store(url, 8).await?;
    let started = Instant::now();
    super::seed(&store, other_events).await?;
    let audited = TenantId::new();
    let seeded = super::seed_for(&store, audited, events / 2).await?;
    let middle = super::last_position(&store).await?;
    let seeded = seeded + super::seed_for(&store, audited, events - events / 2).await?;
    tracing::info!(
        events = seeded + other_events,
        seconds = started.elapsed().as_secs_f64(),
        "seeded"
    );
    // As autovacuum would within a minute of such a load: without statistics the planner
    // misjudges how much of the organization lies past a page's cursor (docs/benchmarks.md).
    sqlx::raw_sql("ANALYZE events")
        .execute(store.pool())
        .await?;
    let end = super::last_position(&store).await?;
    let mut runs = Vec::new();
    for (label, cut) in [("end", end), ("middle", middle)] {
        let into = format!("bench_replay_{label}");
        sqlx::raw_sql(&format!("DROP SCHEMA IF EXISTS {into} CASCADE"))
            .execute(store.pool())
            .await?;
        let started = Instant::now();
        let done = replay::replay(
            store.pool(),
            &*store,
            &[&trellis_demo_app::TallyTotals],
            audited.as_uuid(),
            Cut::Position(cut),
            &into,
            |_| {},
        )
        .await?;
        let secs = started.elapsed().as_secs_f64();
        sqlx::raw_sql(&format!("DROP SCHEMA {into} CASCADE"))
            .execute(store.pool())
            .await?;
        runs.push(serde_json::json!({
            "as_of": label,
            "events_read": done.events_read,
            "events_applied": done.events_applied,
            "seconds": (secs * 1000.0).round() / 1000.0,
            "events_read_per_sec": (done.events_read as f64 / secs).round(),
        }));
    }
    super::report(&serde_json::json!({
        "bench": "replay",
        "projection": "tally_totals",
        "organization_events": seeded,
        "other_events": other_events,
        "runs": runs,
    }));
    Ok(())
}
