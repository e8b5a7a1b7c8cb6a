//! `tally_totals`: one row per tally with its running total and status.
//!
//! A batch is folded in memory per tally first, then written with one upsert, so a rebuild
//! costs one statement per batch rather than one per event.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use sqlx::{PgConnection, PgPool};
use trellis_kernel::RecordedEvent;
use trellis_runtime::projection::{Projection, ProjectionError, live_schema};
use uuid::Uuid;

/// The projection.
pub struct TallyTotals;

#[derive(Default)]
struct Delta {
    tenant: Option<Uuid>,
    name: Option<String>,
    total: i64,
    additions: i32,
    status: Option<&'static str>,
    version: i64,
    updated_at: Option<DateTime<Utc>>,
}

#[derive(Deserialize)]
struct Opened {
    name: String,
}

#[derive(Deserialize)]
struct Added {
    amount: i64,
}

fn decode<T: serde::de::DeserializeOwned>(event: &RecordedEvent) -> Result<T, ProjectionError> {
    serde_json::from_value(event.payload.clone())
        .map_err(|e| ProjectionError::apply(event, format!("payload does not decode: {e}")))
}

#[async_trait]
impl Projection for TallyTotals {
    fn name(&self) -> &'static str {
        "tally_totals"
    }

    fn version(&self) -> i32 {
        1
    }

    fn event_types(&self) -> &'static [&'static str] {
        &[
            "TallyOpened",
            "AmountAdded",
            "TallyClosed",
            "TallyCertified",
        ]
    }

    fn schema_sql(&self) -> &'static str {
        include_str!("../../../projections/tally_totals/schema.sql")
    }

    async fn apply(
        &self,
        conn: &mut PgConnection,
        events: &[RecordedEvent],
    ) -> Result<(), ProjectionError> {
        let mut deltas: HashMap<Uuid, Delta> = HashMap::new();
        for event in events {
            let delta = deltas.entry(event.stream_id.id()).or_default();
            delta.tenant = event
                .metadata
                .tenant_id
                .map(|t| t.as_uuid())
                .or(delta.tenant);
            delta.version = event.stream_version as i64;
            delta.updated_at = Some(event.recorded_at);
            match event.event_type.as_str() {
                "TallyOpened" => delta.name = Some(decode::<Opened>(event)?.name),
                "AmountAdded" => {
                    delta.total += decode::<Added>(event)?.amount;
                    delta.additions += 1;
                }
                "TallyClosed" => delta.status = Some("closed"),
                "TallyCertified" => delta.status = Some("certified"),
                _ => {}
            }
        }
        let mut ids = Vec::new();
        let mut tenants = Vec::new();
        let mut names = Vec::new();
        let mut totals = Vec::new();
        let mut additions = Vec::new();
        let mut statuses = Vec::new();
        let mut versions = Vec::new();
        let mut times = Vec::new();
        for (id, d) in deltas {
            ids.push(id);
            tenants.push(d.tenant);
            names.push(d.name);
            totals.push(d.total);
            additions.push(d.additions);
            statuses.push(d.status);
            versions.push(d.version);
            times.push(d.updated_at.unwrap_or_else(Utc::now));
        }
        sqlx::query(
            "INSERT INTO tallies AS t (tally_id, tenant_id, name, total, additions, status, \
                                       version, updated_at) \
             SELECT id, tenant, COALESCE(name, ''), total, additions, COALESCE(status, 'open'), \
                    version, at \
             FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::bigint[], $5::int4[], \
                         $6::text[], $7::bigint[], $8::timestamptz[]) \
                  AS d(id, tenant, name, total, additions, status, version, at) \
             ON CONFLICT (tally_id) DO UPDATE SET \
                 tenant_id = COALESCE(EXCLUDED.tenant_id, t.tenant_id), \
                 name = CASE WHEN EXCLUDED.name = '' THEN t.name ELSE EXCLUDED.name END, \
                 total = t.total + EXCLUDED.total, \
                 additions = t.additions + EXCLUDED.additions, \
                 status = CASE WHEN EXCLUDED.status = 'open' THEN t.status ELSE EXCLUDED.status END, \
                 version = GREATEST(t.version, EXCLUDED.version), \
                 updated_at = EXCLUDED.updated_at",
        )
        .bind(&ids)
        .bind(&tenants)
        .bind(&names)
        .bind(&totals)
        .bind(&additions)
        .bind(&statuses)
        .bind(&versions)
        .bind(&times)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }
}

/// One tally as the read model has it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct TallyRow {
    /// The tally's id (stream `tally-<id>`).
    pub tally_id: Uuid,
    /// Its name.
    pub name: String,
    /// Sum of amounts.
    pub total: i64,
    /// Number of additions.
    pub additions: i32,
    /// `open`, `closed` or `certified`.
    pub status: String,
    /// Stream version applied.
    pub version: i64,
}

/// Reads one tally from the live read model.
///
/// # Errors
/// Database failures.
pub async fn read_tally(pool: &PgPool, tally_id: Uuid) -> Result<Option<TallyRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT tally_id, name, total, additions, status, version FROM {}.tallies \
         WHERE tally_id = $1",
        live_schema("tally_totals")
    ))
    .bind(tally_id)
    .fetch_optional(pool)
    .await
}
