//! Tamper evidence: every event is sealed into its organization's hash chain (ADR 0016,
//! docs/auditing.md).
//!
//! - **Link**: `SHA-256(previous link ‖ canonical(event))`, the first link over 32 zero bytes.
//!   [`canonical`] is the stored row as compact JSON with sorted keys (payload and metadata as
//!   stored, ciphertext included, `recorded_at` in RFC 3339 with microseconds), so anyone can
//!   recompute it from an export with a JSON library (docs/auditing.md has a verifier in
//!   Python's standard library).
//! - **Chains**: one per organization (events without one share the nil chain), so an
//!   organization's export verifies on its own.
//! - **Sealing**: [`seal_pending`] takes the next events of `$all` in commit order (below the
//!   oldest running transaction, like every `$all` reader, so a late commit is never
//!   skipped) and appends their seals in one transaction under an advisory lock (two sealers
//!   never interleave). Appends do not wait for it: [`run_sealer`] polls every 200 ms.
//! - **Verification**: [`verify`] recomputes a chain from its first link and reports the first
//!   seal whose event is missing or differs, a seal missing from the sequence, an event the
//!   sealer passed that has no seal (inserted), and a head or checkpoint that the seals do not
//!   match (a truncated tail).

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use uuid::Uuid;

/// The link before a chain's first event.
pub const GENESIS: [u8; 32] = [0; 32];

/// How often a chain's head is recorded as a checkpoint (at most).
pub const CHECKPOINT_EVERY: Duration = Duration::from_secs(60);

/// How often the sealer looks for new events when it has caught up.
pub const SEAL_INTERVAL: Duration = Duration::from_millis(200);

/// Events sealed per transaction.
pub const SEAL_BATCH: i64 = 2_000;

/// The advisory lock every sealer takes (two never seal at once).
const SEALER_LOCK: i64 = 0x7472_656c_6c69_7301;

/// Seals read per page when verifying or exporting.
const PAGE: i64 = 5_000;

/// A stored event, raw: what a link covers.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoredEvent {
    /// Position in `$all`.
    pub global_position: i64,
    /// Event id.
    pub event_id: Uuid,
    /// Stream.
    pub stream_id: String,
    /// Version in the stream.
    pub stream_version: i64,
    /// Type.
    pub event_type: String,
    /// Payload schema version.
    pub schema_version: i32,
    /// Payload as stored.
    pub payload: Value,
    /// Metadata as stored.
    pub metadata: Value,
    /// Organization.
    pub tenant_id: Option<Uuid>,
    /// Commit time.
    pub recorded_at: DateTime<Utc>,
}

impl StoredEvent {
    /// The chain the event belongs to.
    pub fn chain_id(&self) -> Uuid {
        self.tenant_id.unwrap_or(Uuid::nil())
    }

    /// The event as the JSON object a link covers (and an export carries).
    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "global_position": self.global_position,
            "event_id": self.event_id,
            "stream_id": self.stream_id,
            "stream_version": self.stream_version,
            "event_type": self.event_type,
            "schema_version": self.schema_version,
            "payload": self.payload,
            "metadata": self.metadata,
            "tenant_id": self.tenant_id,
            "recorded_at": self.recorded_at.to_rfc3339_opts(SecondsFormat::Micros, true),
        })
    }
}

const EVENT_COLUMNS: &str = "e.global_position, e.event_id, e.stream_id, e.stream_version, \
     e.event_type, e.schema_version, e.payload, e.metadata, e.tenant_id, e.recorded_at";

/// Compact JSON with object keys sorted by code point, strings and numbers as serde_json
/// writes them: the bytes a link hashes.
pub fn canonical(value: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push(b'{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                // Writing a string or a number into a Vec cannot fail.
                let _ = serde_json::to_writer(&mut *out, key);
                out.push(b':');
                write_canonical(&map[key], out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out);
            }
            out.push(b']');
        }
        other => {
            let _ = serde_json::to_writer(&mut *out, other);
        }
    }
}

/// The link after `previous` for `event`.
pub fn link(previous: &[u8; 32], event: &StoredEvent) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(previous);
    hasher.update(canonical(&event.to_json()));
    hasher.finalize().into()
}

fn to_link(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    if bytes.len() == 32 {
        out.copy_from_slice(bytes);
    }
    out
}

/// Seals the next events of `$all` (up to [`SEAL_BATCH`]); returns how many.
///
/// # Errors
/// Database failures (nothing is sealed then).
pub async fn seal_pending(pool: &PgPool) -> Result<usize, sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(SEALER_LOCK)
        .execute(&mut *tx)
        .await?;
    let cursor: Option<(String, i64)> =
        sqlx::query_as("SELECT transaction_id::text, global_position FROM event_chain_cursor")
            .fetch_optional(&mut *tx)
            .await?;
    let (cursor_tx, cursor_pos) = cursor.unwrap_or_else(|| ("0".to_owned(), 0));
    let rows: Vec<(String, StoredEvent)> = sqlx::query_as::<_, TxRow>(&format!(
        "SELECT e.transaction_id::text AS transaction_id, {EVENT_COLUMNS} FROM events e \
         WHERE e.transaction_id < pg_snapshot_xmin(pg_current_snapshot()) \
           AND (e.transaction_id, e.global_position) > ($1::text::xid8, $2) \
         ORDER BY e.transaction_id, e.global_position LIMIT $3"
    ))
    .bind(&cursor_tx)
    .bind(cursor_pos)
    .bind(SEAL_BATCH)
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .map(|r| (r.transaction_id, r.event))
    .collect();
    let Some((last_tx, last)) = rows.last().map(|(t, e)| (t.clone(), e.global_position)) else {
        tx.rollback().await?;
        return Ok(0);
    };
    let chains: Vec<Uuid> = {
        let mut c: Vec<Uuid> = rows.iter().map(|(_, e)| e.chain_id()).collect();
        c.sort_unstable();
        c.dedup();
        c
    };
    let heads: Vec<(Uuid, i64, Vec<u8>)> = sqlx::query_as(
        "SELECT chain_id, seq, link FROM event_chain_heads WHERE chain_id = ANY($1)",
    )
    .bind(&chains)
    .fetch_all(&mut *tx)
    .await?;
    let mut heads: std::collections::HashMap<Uuid, (i64, [u8; 32])> = heads
        .into_iter()
        .map(|(c, s, l)| (c, (s, to_link(&l))))
        .collect();
    let (mut ids, mut seqs, mut positions, mut links) = (
        Vec::with_capacity(rows.len()),
        Vec::with_capacity(rows.len()),
        Vec::with_capacity(rows.len()),
        Vec::with_capacity(rows.len()),
    );
    for (_, event) in &rows {
        let chain = event.chain_id();
        let head = heads.entry(chain).or_insert((0, GENESIS));
        let next = link(&head.1, event);
        *head = (head.0 + 1, next);
        ids.push(chain);
        seqs.push(head.0);
        positions.push(event.global_position);
        links.push(next.to_vec());
    }
    sqlx::query(
        "INSERT INTO event_chain (chain_id, seq, global_position, link) \
         SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::bigint[], $4::bytea[])",
    )
    .bind(&ids)
    .bind(&seqs)
    .bind(&positions)
    .bind(&links)
    .execute(&mut *tx)
    .await?;
    let (head_ids, head_seqs, head_links): (Vec<Uuid>, Vec<i64>, Vec<Vec<u8>>) = heads
        .iter()
        .map(|(c, (s, l))| (*c, *s, l.to_vec()))
        .collect();
    sqlx::query(
        "INSERT INTO event_chain_heads (chain_id, seq, global_position, link, sealed_at) \
         SELECT h.c, h.s, c.global_position, h.l, now() \
         FROM unnest($1::uuid[], $2::bigint[], $3::bytea[]) AS h(c, s, l) \
         JOIN event_chain c ON c.chain_id = h.c AND c.seq = h.s \
         ON CONFLICT (chain_id) DO UPDATE SET seq = EXCLUDED.seq, \
             global_position = EXCLUDED.global_position, link = EXCLUDED.link, \
             sealed_at = EXCLUDED.sealed_at",
    )
    .bind(&head_ids)
    .bind(&head_seqs)
    .bind(&head_links)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO event_chain_checkpoints (chain_id, seq, global_position, link) \
         SELECT h.chain_id, h.seq, h.global_position, h.link FROM event_chain_heads h \
         WHERE h.chain_id = ANY($1) AND NOT EXISTS ( \
             SELECT 1 FROM event_chain_checkpoints k \
             WHERE k.chain_id = h.chain_id AND k.at > now() - make_interval(secs => $2)) \
         ON CONFLICT DO NOTHING",
    )
    .bind(&chains)
    .bind(CHECKPOINT_EVERY.as_secs_f64())
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO event_chain_cursor (only_row, transaction_id, global_position) \
         VALUES (true, $1::text::xid8, $2) \
         ON CONFLICT (only_row) DO UPDATE SET transaction_id = EXCLUDED.transaction_id, \
             global_position = EXCLUDED.global_position",
    )
    .bind(&last_tx)
    .bind(last)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(rows.len())
}

#[derive(sqlx::FromRow)]
struct TxRow {
    transaction_id: String,
    #[sqlx(flatten)]
    event: StoredEvent,
}

/// Seals until `shutdown`: at once while there is a backlog, else every [`SEAL_INTERVAL`].
pub async fn run_sealer(pool: PgPool, shutdown: impl std::future::Future<Output = ()>) {
    tokio::pin!(shutdown);
    loop {
        let wait = match seal_pending(&pool).await {
            Ok(n) if n as i64 == SEAL_BATCH => Duration::ZERO,
            Ok(_) => SEAL_INTERVAL,
            Err(e) => {
                tracing::warn!(error = %e, "sealing the log");
                Duration::from_secs(1)
            }
        };
        tokio::select! {
            () = &mut shutdown => return,
            () = tokio::time::sleep(wait) => {}
        }
    }
}

/// Where and why a chain breaks.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Break {
    /// The seal (place in the chain) where it breaks; `None` for an inserted event.
    pub seq: Option<i64>,
    /// The event's position in the log, where known.
    pub global_position: Option<i64>,
    /// What was found.
    pub reason: String,
}

/// A chain's verification.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ChainReport {
    /// The organization (nil: events without one).
    pub chain_id: Uuid,
    /// Seals recomputed up to the break (or all).
    pub events_checked: i64,
    /// The head: its seq, position and link (hex).
    pub head: Option<Head>,
    /// The first break, if any.
    pub broken: Option<Break>,
}

impl ChainReport {
    /// Whether the chain verified.
    pub fn ok(&self) -> bool {
        self.broken.is_none()
    }
}

/// A chain's head.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Head {
    /// Seals in the chain.
    pub seq: i64,
    /// The last sealed event's position.
    pub global_position: i64,
    /// The last link, hex.
    pub link: String,
}

/// A seal and, when it is still there, its event.
struct SealRow {
    seq: i64,
    seal_position: i64,
    link: Vec<u8>,
    event: Option<StoredEvent>,
}

/// Seals of `chain_id` after `after` up to `until`, at most `limit`, with their events. Two
/// indexed reads (seals by chain and seq, then their events by position), not a join the
/// planner may turn into a scan of the whole log per page.
async fn seal_page(
    pool: &PgPool,
    chain_id: Uuid,
    after: i64,
    until: Option<i64>,
    limit: i64,
) -> Result<Vec<SealRow>, sqlx::Error> {
    let seals: Vec<(i64, i64, Vec<u8>)> = sqlx::query_as(
        "SELECT seq, global_position, link FROM event_chain \
         WHERE chain_id = $1 AND seq > $2 AND ($3::bigint IS NULL OR seq <= $3) \
         ORDER BY seq LIMIT $4",
    )
    .bind(chain_id)
    .bind(after)
    .bind(until)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    let positions: Vec<i64> = seals.iter().map(|(_, p, _)| *p).collect();
    let events: Vec<StoredEvent> = sqlx::query_as(&format!(
        "SELECT {EVENT_COLUMNS} FROM events e WHERE e.global_position = ANY($1)"
    ))
    .bind(&positions)
    .fetch_all(pool)
    .await?;
    let mut events: std::collections::HashMap<i64, StoredEvent> =
        events.into_iter().map(|e| (e.global_position, e)).collect();
    Ok(seals
        .into_iter()
        .map(|(seq, seal_position, link)| SealRow {
            seq,
            seal_position,
            link,
            event: events.remove(&seal_position),
        })
        .collect())
}

/// Every chain in the store (organizations and nil), in order.
///
/// # Errors
/// Database failures.
pub async fn chains(pool: &PgPool) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar("SELECT chain_id FROM event_chain_heads ORDER BY chain_id")
        .fetch_all(pool)
        .await
}

/// Recomputes `chain_id`'s chain and reports the first break.
///
/// # Errors
/// Database failures.
pub async fn verify(pool: &PgPool, chain_id: Uuid) -> Result<ChainReport, sqlx::Error> {
    let head: Option<(i64, i64, Vec<u8>)> = sqlx::query_as(
        "SELECT seq, global_position, link FROM event_chain_heads WHERE chain_id = $1",
    )
    .bind(chain_id)
    .fetch_optional(pool)
    .await?;
    let mut report = ChainReport {
        chain_id,
        events_checked: 0,
        head: head.as_ref().map(|(s, p, l)| Head {
            seq: *s,
            global_position: *p,
            link: hex(l),
        }),
        broken: None,
    };
    let mut previous = GENESIS;
    let mut last = 0i64;
    'pages: loop {
        let rows = seal_page(pool, chain_id, last, None, PAGE).await?;
        if rows.is_empty() {
            break;
        }
        for row in rows {
            let broken = |reason: String| Break {
                seq: Some(row.seq),
                global_position: Some(row.seal_position),
                reason,
            };
            if row.seq != last + 1 {
                report.broken = Some(Break {
                    seq: Some(last + 1),
                    global_position: None,
                    reason: format!("seal {} is missing", last + 1),
                });
                break 'pages;
            }
            let Some(event) = &row.event else {
                report.broken = Some(broken(format!(
                    "the event at position {} was deleted",
                    row.seal_position
                )));
                break 'pages;
            };
            let computed = link(&previous, event);
            if computed[..] != row.link[..] {
                report.broken = Some(broken(format!(
                    "the event at position {} is not the one sealed (changed, moved or \
                     swapped)",
                    row.seal_position
                )));
                break 'pages;
            }
            previous = computed;
            last = row.seq;
            report.events_checked += 1;
        }
    }
    if report.broken.is_none() {
        report.broken = tail_and_insertions(pool, chain_id, last, &previous, head).await?;
    }
    Ok(report)
}

/// The checks after the walk: the head and checkpoints against the seals, and events the
/// sealer passed without sealing.
async fn tail_and_insertions(
    pool: &PgPool,
    chain_id: Uuid,
    last: i64,
    previous: &[u8; 32],
    head: Option<(i64, i64, Vec<u8>)>,
) -> Result<Option<Break>, sqlx::Error> {
    if let Some((seq, position, link)) = head
        && (seq != last || link[..] != previous[..])
    {
        return Ok(Some(Break {
            seq: Some(seq),
            global_position: Some(position),
            reason: format!("the chain's head is seal {seq} but the seals end at {last}"),
        }));
    }
    let checkpoint: Option<(i64, i64)> = sqlx::query_as(
        "SELECT k.seq, k.global_position FROM event_chain_checkpoints k \
         LEFT JOIN event_chain c ON c.chain_id = k.chain_id AND c.seq = k.seq \
         WHERE k.chain_id = $1 AND c.link IS DISTINCT FROM k.link ORDER BY k.seq LIMIT 1",
    )
    .bind(chain_id)
    .fetch_optional(pool)
    .await?;
    if let Some((seq, position)) = checkpoint {
        return Ok(Some(Break {
            seq: Some(seq),
            global_position: Some(position),
            reason: format!("checkpoint {seq} does not match the chain"),
        }));
    }
    let inserted: Option<i64> = sqlx::query_scalar(
        "SELECT min(e.global_position) FROM events e, event_chain_cursor k \
         WHERE coalesce(e.tenant_id, '00000000-0000-0000-0000-000000000000') = $1 \
           AND (e.transaction_id, e.global_position) <= (k.transaction_id, k.global_position) \
           AND NOT EXISTS (SELECT 1 FROM event_chain c \
                           WHERE c.global_position = e.global_position)",
    )
    .bind(chain_id)
    .fetch_one(pool)
    .await?;
    Ok(inserted.map(|position| Break {
        seq: None,
        global_position: Some(position),
        reason: format!(
            "the event at position {position} has no seal although the sealer passed it \
             (inserted)"
        ),
    }))
}

/// One line of an export: a seal and its event.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ExportLine {
    /// The organization's chain.
    pub chain_id: Uuid,
    /// Place in the chain.
    pub seq: i64,
    /// The previous link (hex).
    pub prev: String,
    /// This link (hex).
    pub link: String,
    /// The event as the link covers it (`null` when it was deleted).
    pub event: Option<Value>,
}

/// Seals of `chain_id` after `after` (seq) up to `until` (seq, inclusive), at most `limit`,
/// with their events.
///
/// # Errors
/// Database failures.
pub async fn export_page(
    pool: &PgPool,
    chain_id: Uuid,
    after: i64,
    until: Option<i64>,
    limit: i64,
) -> Result<Vec<ExportLine>, sqlx::Error> {
    let previous: Option<Vec<u8>> = if after <= 0 {
        None
    } else {
        sqlx::query_scalar("SELECT link FROM event_chain WHERE chain_id = $1 AND seq = $2")
            .bind(chain_id)
            .bind(after)
            .fetch_optional(pool)
            .await?
    };
    let mut previous = previous.map_or(GENESIS, |l| to_link(&l));
    let rows = seal_page(pool, chain_id, after.max(0), until, limit.clamp(1, PAGE)).await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let line = ExportLine {
                chain_id,
                seq: row.seq,
                prev: hex(&previous),
                link: hex(&row.link),
                event: row.event.as_ref().map(StoredEvent::to_json),
            };
            previous = to_link(&row.link);
            line
        })
        .collect())
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_json_sorts_keys_at_every_depth_and_keeps_values_as_written() {
        let value = serde_json::json!({"b": 1, "a": {"z": [true, null, 0.5], "é": "x\n\"y\""}});
        assert_eq!(
            String::from_utf8(canonical(&value)).unwrap(),
            r#"{"a":{"z":[true,null,0.5],"é":"x\n\"y\""},"b":1}"#
        );
    }

    #[test]
    fn a_link_covers_every_column_and_the_previous_link() {
        let event = StoredEvent {
            global_position: 7,
            event_id: Uuid::from_u128(1),
            stream_id: "skill-00000000-0000-0000-0000-000000000002".into(),
            stream_version: 1,
            event_type: "SkillDefined".into(),
            schema_version: 1,
            payload: serde_json::json!({"name": "Rust"}),
            metadata: serde_json::json!({}),
            tenant_id: Some(Uuid::from_u128(3)),
            recorded_at: DateTime::from_timestamp(1_700_000_000, 123_456_000).unwrap(),
        };
        let base = link(&GENESIS, &event);
        assert_ne!(link(&[1; 32], &event), base);
        let mut changed = event.clone();
        changed.payload = serde_json::json!({"name": "Rusty"});
        assert_ne!(link(&GENESIS, &changed), base);
        let mut moved = event.clone();
        moved.global_position = 8;
        assert_ne!(link(&GENESIS, &moved), base);
        assert_eq!(
            event.to_json()["recorded_at"],
            serde_json::json!("2023-11-14T22:13:20.123456Z")
        );
    }
}
