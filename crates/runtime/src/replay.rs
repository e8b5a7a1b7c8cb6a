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
use uuid::Uuid;

use crate::projection::{Projection, ProjectionError};

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

    fn includes(&self, event: &RecordedEvent) -> bool {
        match self {
            Self::Position(p) => event.global_position.0 <= *p,
            Self::Time(t) => event.recorded_at <= *t,
        }
    }
}

/// A replay's progress.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct ReplayProgress {
    /// Events of the organization read so far.
    pub events_read: u64,
    /// Events the projections applied.
    pub events_applied: u64,
    /// The last position read (`$all` is read in commit order to its end).
    pub position: i64,
    /// The log's last position when the replay started (for a progress bar).
    pub end: i64,
}

/// Why a target schema name is refused, if it is.
pub fn check_schema_name(name: &str) -> Result<(), String> {
    let valid = name.len() <= 40
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !valid {
        return Err("must be 1 to 40 of a-z, 0-9 and _, starting with a letter".into());
    }
    if name.starts_with("rm_") || name.starts_with("pg_") || name == "public" {
        return Err("must not be a read model's, PostgreSQL's or the public schema".into());
    }
    Ok(())
}

/// Events read per batch.
const BATCH: usize = 5_000;

/// Replays `projections` for `organization` as of `cut` into the new schema `into`.
///
/// # Errors
/// A refused or existing schema name, clashing tables, store, database or apply failures
/// (the schema is dropped then).
pub async fn replay<S: EventStore + ?Sized>(
    pool: &PgPool,
    store: &S,
    projections: &[&dyn Projection],
    organization: Uuid,
    cut: Cut,
    into: &str,
    mut progress: impl FnMut(ReplayProgress) + Send,
) -> Result<ReplayProgress, ProjectionError> {
    check_schema_name(into).map_err(|reason| ProjectionError::Apply {
        event_type: String::new(),
        event_id: String::new(),
        reason: format!("schema {into}: {reason}"),
    })?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)")
            .bind(into)
            .fetch_one(pool)
            .await?;
    if exists {
        return Err(ProjectionError::Apply {
            event_type: String::new(),
            event_id: String::new(),
            reason: format!("schema {into} exists: replays never write into an existing schema"),
        });
    }
    let result = run(
        pool,
        store,
        projections,
        organization,
        cut,
        into,
        &mut progress,
    )
    .await;
    let guards: String = projections
        .iter()
        .map(|p| {
            format!(
                "DROP SCHEMA IF EXISTS {} CASCADE; ",
                guard_schema(into, p.name())
            )
        })
        .collect();
    let cleanup = if result.is_ok() {
        guards
    } else {
        format!("{guards}DROP SCHEMA IF EXISTS {into} CASCADE;")
    };
    sqlx::raw_sql(&cleanup).execute(pool).await?;
    result
}

fn guard_schema(into: &str, projection: &str) -> String {
    format!("{into}__guard_{projection}")
}

async fn run<S: EventStore + ?Sized>(
    pool: &PgPool,
    store: &S,
    projections: &[&dyn Projection],
    organization: Uuid,
    cut: Cut,
    into: &str,
    progress: &mut (impl FnMut(ReplayProgress) + Send),
) -> Result<ReplayProgress, ProjectionError> {
    let mut ddl = format!("CREATE SCHEMA {into}; ");
    for p in projections {
        let guard = guard_schema(into, p.name());
        ddl.push_str(&format!(
            "DROP SCHEMA IF EXISTS {guard} CASCADE; CREATE SCHEMA {guard}; \
             SET search_path TO {guard}; CREATE TABLE _streams (stream_id text PRIMARY KEY, \
             stream_version bigint NOT NULL); SET search_path TO {into}, public; {} ",
            p.schema_sql()
        ));
    }
    ddl.push_str("RESET search_path;");
    sqlx::raw_sql(&ddl).execute(pool).await?;
    let end: i64 = sqlx::query_scalar("SELECT coalesce(max(global_position), 0) FROM events")
        .fetch_one(pool)
        .await?;
    let mut stats = ReplayProgress {
        end,
        ..ReplayProgress::default()
    };
    let filter = AllFilter {
        tenant_id: Some(TenantId::from_uuid(organization)),
        event_type: None,
    };
    let upcasters = trellis_kernel::upcast::global();
    let mut after: Option<GlobalPosition> = None;
    loop {
        let events = store.read_all_filtered(after, BATCH, &filter).await?;
        let Some(last) = events.last().map(|e| e.global_position) else {
            break;
        };
        after = Some(last);
        stats.events_read += events.len() as u64;
        stats.position = last.0;
        let cut_events: Vec<RecordedEvent> = events
            .into_iter()
            .filter(|e| cut.includes(e))
            .map(|e| upcasters.upcast(e))
            .collect::<Result<_, _>>()
            .map_err(|e| ProjectionError::Apply {
                event_type: e.event_type.clone(),
                event_id: String::new(),
                reason: e.to_string(),
            })?;
        for p in projections {
            let wanted: Vec<RecordedEvent> = cut_events
                .iter()
                .filter(|e| p.event_types().contains(&e.event_type.as_str()))
                .cloned()
                .collect();
            if wanted.is_empty() {
                continue;
            }
            let mut tx = pool.begin().await?;
            let path = format!("{}, {into}", guard_schema(into, p.name()));
            stats.events_applied +=
                crate::projection::apply_in(&mut tx, *p, &path, &wanted).await? as u64;
            tx.commit().await?;
        }
        progress(stats);
    }
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
        for bad in ["rm_catalog", "public", "pg_x", "Audit", "1x", "a;drop", ""] {
            assert!(check_schema_name(bad).is_err(), "{bad}");
        }
    }
}
