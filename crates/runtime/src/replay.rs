//! Replays for audits (docs/auditing.md, "Replay"): chosen projections rebuilt as they stood
//! at a past point, for one organization, into a schema an auditor can query.
//!
//! Only the projections' `apply` runs: no checkpoint, no `projection_state`, no live schema,
//! no reaction or service is involved, so a replay appends nothing and sends nothing (tested
//! by counting appends and outgoing calls during one). The projection's tables are created in
//! the target schema; each projection's guard table (`_streams`) lives in a schema of its
//! own, dropped at the end, so several projections can share the target schema as long as
//! their table names differ.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use trellis_kernel::{AllFilter, EventStore, GlobalPosition, RecordedEvent, TenantId};
use trellis_store_postgres::GuardedConnection;
use uuid::Uuid;

use crate::projection::{Projection, ProjectionError, apply_prepared, prepare_for};

/// Where a replay stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// Events at or before this global position.
    Position(i64),
    /// Events recorded at or before this time.
    Time(DateTime<Utc>),
}

impl Cut {
    /// Parses digits as a position, else an RFC 3339 time.
    pub fn parse(text: &str) -> Option<Self> {
        if let Ok(position) = text.parse::<i64>() {
            return (position >= 0).then_some(Self::Position(position));
        }
        DateTime::parse_from_rfc3339(text)
            .ok()
            .map(|t| Self::Time(t.with_timezone(&Utc)))
    }

    /// Whether `event` is at or before the cut.
    pub fn includes(&self, event: &RecordedEvent) -> bool {
        match self {
            Self::Position(p) => event.global_position.0 <= *p,
            Self::Time(t) => event.recorded_at <= *t,
        }
    }
}

/// A replay's progress.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct ReplayProgress {
    /// Events of the organization at or before the cut read so far.
    pub events_read: u64,
    /// Events the projections applied.
    pub events_applied: u64,
    /// The last position read (`$all` is read in commit order to its end).
    pub position: i64,
    /// The log's last position when the replay started (for a progress bar).
    pub end: i64,
}

impl ReplayProgress {
    /// How far the replay is, from 0 to 1 (1 for an empty log).
    pub fn share(&self) -> f64 {
        if self.end > 0 {
            (self.position as f64 / self.end as f64).min(1.0)
        } else {
            1.0
        }
    }
}

/// Longest target schema name: its guard schemas (`<name>__guard_<projection>`) stay within
/// PostgreSQL's 63 bytes.
const NAME_MAX: usize = 30;

/// Why a target schema name is refused, if it is.
pub fn check_schema_name(name: &str) -> Result<(), String> {
    let valid = name.len() <= NAME_MAX
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !valid {
        return Err(format!(
            "must be 1 to {NAME_MAX} of a-z, 0-9 and _, starting with a letter"
        ));
    }
    if name.starts_with("rm_") || name.starts_with("pg_") || name == "public" {
        return Err("must not be a read model's, PostgreSQL's or the public schema".into());
    }
    Ok(())
}

/// Events read per batch.
const BATCH: usize = 5_000;

/// The organization's events at or before a cut, batch by batch: `$all` is read in commit
/// order to its end (a later commit may hold an earlier position).
pub struct EventsUntil<'a, S: ?Sized> {
    store: &'a S,
    filter: AllFilter,
    cut: Cut,
    after: Option<GlobalPosition>,
    done: bool,
}

impl<'a, S: EventStore + ?Sized> EventsUntil<'a, S> {
    /// The organization's events in `store` at or before `cut`.
    pub fn new(store: &'a S, organization: Uuid, cut: Cut) -> Self {
        Self {
            store,
            filter: AllFilter {
                tenant_id: Some(TenantId::from_uuid(organization)),
                event_type: None,
            },
            cut,
            after: None,
            done: false,
        }
    }

    /// The next batch and the last position read; `None` at the end of the log.
    ///
    /// # Errors
    /// Store failures.
    pub async fn next_batch(
        &mut self,
    ) -> Result<Option<(Vec<RecordedEvent>, i64)>, trellis_kernel::StoreError> {
        if self.done {
            return Ok(None);
        }
        let events = self
            .store
            .read_all_filtered(self.after, BATCH, &self.filter)
            .await?;
        self.done = events.len() < BATCH;
        let Some(last) = events.last().map(|e| e.global_position) else {
            return Ok(None);
        };
        self.after = Some(last);
        let cut = self.cut;
        Ok(Some((
            events.into_iter().filter(|e| cut.includes(e)).collect(),
            last.0,
        )))
    }
}

/// Replays `projections` for `organization` as of `cut` into the new schema `into`.
///
/// # Errors
/// A refused or existing schema name, clashing tables, store, database or apply failures
/// (the schema this replay created is dropped then).
pub async fn replay<S: EventStore + ?Sized>(
    pool: &PgPool,
    store: &S,
    projections: &[&dyn Projection],
    organization: Uuid,
    cut: Cut,
    into: &str,
    mut progress: impl FnMut(ReplayProgress) + Send,
) -> Result<ReplayProgress, ProjectionError> {
    check_schema_name(into)
        .map_err(|reason| ProjectionError::Refused(format!("schema {into} {reason}")))?;
    // Created alone first: an existing schema (another replay's, anyone's) is refused here
    // and never dropped by this replay's cleanup.
    sqlx::raw_sql(&format!("CREATE SCHEMA {into}"))
        .execute(pool)
        .await
        .map_err(
            |e| match e.as_database_error().and_then(|d| d.code()).as_deref() {
                Some("42P06") => ProjectionError::Refused(format!(
                    "schema {into} exists: replays never write into an existing schema"
                )),
                _ => e.into(),
            },
        )?;
    let mut guards = Vec::new();
    let result = run(
        pool,
        store,
        projections,
        (organization, cut),
        into,
        &mut guards,
        &mut progress,
    )
    .await;
    // Only what this replay created goes: its guard schemas, and its target on failure.
    let mut cleanup: String = guards
        .iter()
        .map(|g| format!("DROP SCHEMA IF EXISTS {g} CASCADE; "))
        .collect();
    if result.is_err() {
        cleanup.push_str(&format!("DROP SCHEMA IF EXISTS {into} CASCADE;"));
    }
    if let Err(e) = sqlx::raw_sql(&cleanup).execute(pool).await {
        tracing::warn!(schema = %into, error = %e, "cleaning up after a replay");
    }
    result
}

fn guard_schema(into: &str, projection: &str) -> String {
    format!("{into}__guard_{projection}")
}

async fn run<S: EventStore + ?Sized>(
    pool: &PgPool,
    store: &S,
    projections: &[&dyn Projection],
    (organization, cut): (Uuid, Cut),
    into: &str,
    guards: &mut Vec<String>,
    progress: &mut (impl FnMut(ReplayProgress) + Send),
) -> Result<ReplayProgress, ProjectionError> {
    for p in projections {
        let guard = guard_schema(into, p.name());
        sqlx::raw_sql(&format!("CREATE SCHEMA {guard}"))
            .execute(pool)
            .await?;
        guards.push(guard.clone());
        sqlx::raw_sql(&format!(
            "SET search_path TO {guard}; \
             CREATE TABLE _streams (stream_id text PRIMARY KEY, stream_version bigint NOT NULL); \
             SET search_path TO {into}, public; {} RESET search_path;",
            p.schema_sql()
        ))
        .execute(pool)
        .await?;
    }
    let mut stats = ReplayProgress {
        end: store.head().await?.map_or(0, |p| p.0),
        ..ReplayProgress::default()
    };
    let mut conn = GuardedConnection::acquire(pool).await?;
    let mut batches = EventsUntil::new(store, organization, cut);
    let types: Vec<&[&str]> = projections.iter().map(|p| p.event_types()).collect();
    while let Some((events, last)) = batches.next_batch().await? {
        stats.events_read += events.len() as u64;
        stats.position = last;
        // Decrypted and upcast once per batch, whatever the number of projections.
        let prepared = prepare_for(&types, &events).await?;
        for p in projections {
            let path = format!("{}, {into}", guard_schema(into, p.name()));
            stats.events_applied += apply_prepared(&mut conn, *p, &path, &prepared).await? as u64;
        }
        progress(stats);
    }
    conn.finish();
    stats.position = stats.position.max(stats.end);
    progress(stats);
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_and_schema_names_parse() {
        assert_eq!(Cut::parse("42"), Some(Cut::Position(42)));
        assert!(matches!(
            Cut::parse("2026-12-07T10:00:00Z"),
            Some(Cut::Time(_))
        ));
        assert_eq!(Cut::parse("-1"), None);
        assert_eq!(Cut::parse("yesterday"), None);
        assert!(check_schema_name("audit_2026").is_ok());
        for bad in [
            "rm_catalog",
            "public",
            "pg_x",
            "Audit",
            "1x",
            "a;drop",
            "",
            "a_very_long_schema_name_for_a_replay",
        ] {
            assert!(check_schema_name(bad).is_err(), "{bad}");
        }
    }
}
