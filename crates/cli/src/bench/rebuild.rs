//! `trellis bench rebuild`: projection rebuild rate from the event store.

use std::time::Instant;

use trellis_runtime::projection;

/// Seeds `events` (if the store holds fewer) and times a full rebuild of `tally_totals`.
pub async fn run(url: &str, events: u64) -> anyhow::Result<()> {
    let store = super::store(url, 8).await?;
    let have: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(store.pool())
        .await?;
    let missing = events.saturating_sub(u64::try_from(have).unwrap_or(0));
    if missing > 0 {
        let started = Instant::now();
        super::seed(&store, missing).await?;
        tracing::info!(
            events = missing,
            seconds = started.elapsed().as_secs_f64(),
            "seeded"
        );
    }
    let started = Instant::now();
    let result = projection::rebuild(
        store.pool(),
        &*store,
        &trellis_demo_app::TallyTotals,
        |_| {},
    )
    .await?;
    let elapsed = started.elapsed().as_secs_f64();
    super::report(&serde_json::json!({
        "bench": "rebuild",
        "projection": "tally_totals",
        "events_read": result.events_read,
        "events_applied": result.events_applied,
        "seconds": (elapsed * 1000.0).round() / 1000.0,
        "events_per_sec": (result.events_read as f64 / elapsed).round(),
    }));
    Ok(())
}
