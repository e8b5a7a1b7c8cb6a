//! Tamper evidence: every event is sealed into its organization's hash chain (ADR 0016,
//! docs/auditing.md).
//!
//! - **Link**: `SHA-256(previous link ‖ canonical(sealed form of the event))`, the first link
//!   over 32 zero bytes. The sealed form ([`sealed_form`]) is the stored row as a JSON object
//!   (payload and metadata as stored, ciphertext included, `recorded_at` in RFC 3339 with
//!   microseconds) in which each secret field ([`DIGESTED_FIELDS`]) is replaced by the
//!   SHA-256 of its value: the chain still covers it, and an export (which carries the
//!   sealed form) never shows it. [`canonical`] is compact JSON with sorted keys, so anyone
//!   can recompute a link with a JSON library (docs/auditing.md has a verifier in Python's
//!   standard library).
//! - **Chains**: one per organization (events without one share the nil chain), so an
//!   organization's export verifies on its own. A chain's head is its highest seal (derived,
//!   not stored apart).
//! - **Sealing**: [`seal_pending`] takes the next events of `$all` in commit order (below the
//!   oldest running transaction, like every `$all` reader, so a late commit is never
//!   skipped) and appends their seals in one transaction under an advisory lock (two sealers
//!   never interleave). Appends do not wait for it: [`run_sealer`] polls every 200 ms.
//! - **Verification**: [`verify`] recomputes a chain from its first link up to the head it
//!   read first (seals added meanwhile are the next verification's), and reports the first
//!   seal whose event is missing or differs, a seal missing from the sequence, a checkpoint
//!   whose seal is gone or differs (a truncated tail), and an event the sealer passed that
//!   has no seal (inserted).

use std::time::Duration;

use chrono::SecondsFormat;
use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::{Connection, PgConnection, PgPool};
use uuid::Uuid;

use crate::GuardedConnection;
use crate::read::COLUMNS;
pub use crate::read::StoredEvent;

/// The link before a chain's first event.
pub const GENESIS: [u8; 32] = [0; 32];

/// How often a chain's head is recorded as a checkpoint (at most).
pub const CHECKPOINT_EVERY: Duration = Duration::from_secs(60);

/// How often the sealer looks for new events when it has caught up.
pub const SEAL_INTERVAL: Duration = Duration::from_millis(200);

/// Events sealed per transaction.
pub const SEAL_BATCH: i64 = 2_000;

/// Payload fields sealed as their SHA-256 (`"sha256:<hex>"`) instead of their value: secrets
/// no audit read or export may show, even to admins.
pub const DIGESTED_FIELDS: [&str; 1] = ["password_hash"];

/// The advisory lock every sealer takes (two never seal at once).
const SEALER_LOCK: i64 = 0x7472_656c_6c69_7301;

/// Takes the sealer's lock until `tx` ends: no other sealer (nor `encrypt-history`) writes
/// seals meanwhile.
pub(crate) async fn lock_sealer(tx: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(SEALER_LOCK)
        .execute(tx)
        .await
        .map(|_| ())
}

/// Seals read per page when verifying or exporting.
const PAGE: i64 = 5_000;

/// The event as the link covers it and an export carries it: every column, secrets
/// ([`DIGESTED_FIELDS`]) as their digest.
pub fn sealed_form(event: &StoredEvent) -> Value {
    let mut payload = event.payload.clone();
    if let Some(object) = payload.as_object_mut() {
        for field in DIGESTED_FIELDS {
            if let Some(value) = object.get_mut(field) {
                *value = Value::String(format!(
                    "sha256:{}",
                    hex::encode(Sha256::digest(canonical(value)))
                ));
            }
        }
    }
    serde_json::json!({
        "global_position": event.global_position,
        "event_id": event.event_id,
        "stream_id": event.stream_id,
        "stream_version": event.stream_version,
        "event_type": event.event_type,
        "schema_version": event.schema_version,
        "payload": payload,
        "metadata": event.metadata,
        "tenant_id": event.tenant_id,
        "recorded_at": event.recorded_at.to_rfc3339_opts(SecondsFormat::Micros, true),
    })
}

pub(crate) fn chain_of(event: &StoredEvent) -> Uuid {
    event.tenant_id.unwrap_or(Uuid::nil())
}

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
    hasher.update(canonical(&sealed_form(event)));
    hasher.finalize().into()
}

/// A stored link; a malformed one (not 32 bytes) reads as zeros, so it never matches.
fn to_link(bytes: &[u8]) -> [u8; 32] {
    <[u8; 32]>::try_from(bytes).unwrap_or_default()
}

/// The head (last seal and its link) of each of `chains`, from the seals themselves.
async fn heads(
    conn: &mut PgConnection,
    chains: &[Uuid],
) -> Result<std::collections::HashMap<Uuid, (i64, [u8; 32])>, sqlx::Error> {
    let rows: Vec<(Uuid, i64, Vec<u8>)> = sqlx::query_as(
        "SELECT c.id, h.seq, h.link FROM unnest($1::uuid[]) AS c(id) \
         CROSS JOIN LATERAL (SELECT seq, link FROM event_chain \
                             WHERE chain_id = c.id ORDER BY seq DESC LIMIT 1) h",
    )
    .bind(chains)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(c, s, l)| (c, (s, to_link(&l))))
        .collect())
}

#[derive(sqlx::FromRow)]
struct TxRow {
    /// `transaction_id` as text, under another name: an output column named
    /// `transaction_id` would be what `ORDER BY transaction_id` sorts by (text order: wrong,
    /// and no index).
    tx: String,
    #[sqlx(flatten)]
    event: StoredEvent,
}

/// Seals the next events of `$all` (up to [`SEAL_BATCH`]); returns how many.
///
/// # Errors
/// Database failures (nothing is sealed then).
pub async fn seal_pending(pool: &PgPool) -> Result<usize, sqlx::Error> {
    let mut conn = GuardedConnection::acquire(pool).await?;
    let mut tx = conn.begin().await?;
    lock_sealer(&mut tx).await?;
    let cursor: Option<(String, i64)> =
        sqlx::query_as("SELECT transaction_id::text, global_position FROM event_chain_cursor")
            .fetch_optional(&mut *tx)
            .await?;
    let (cursor_tx, cursor_pos) = cursor.unwrap_or_else(|| ("0".to_owned(), 0));
    let rows: Vec<TxRow> = sqlx::query_as(&format!(
        "SELECT transaction_id::text AS tx, {COLUMNS} FROM events \
         WHERE transaction_id < pg_snapshot_xmin(pg_current_snapshot()) \
           AND (transaction_id, global_position) > ($1::text::xid8, $2) \
         ORDER BY transaction_id, global_position LIMIT $3"
    ))
    .bind(&cursor_tx)
    .bind(cursor_pos)
    .bind(SEAL_BATCH)
    .fetch_all(&mut *tx)
    .await?;
    let Some(last) = rows.last() else {
        tx.rollback().await?;
        conn.finish();
        return Ok(0);
    };
    let (last_tx, last_position) = (last.tx.clone(), last.event.global_position);
    let mut chains: Vec<Uuid> = rows.iter().map(|r| chain_of(&r.event)).collect();
    chains.sort_unstable();
    chains.dedup();
    let mut heads = heads(&mut tx, &chains).await?;
    let (mut ids, mut seqs, mut positions, mut links) = (
        Vec::with_capacity(rows.len()),
        Vec::with_capacity(rows.len()),
        Vec::with_capacity(rows.len()),
        Vec::with_capacity(rows.len()),
    );
    for TxRow { event, .. } in &rows {
        let chain = chain_of(event);
        let head = heads.entry(chain).or_insert((0, GENESIS));
        *head = (head.0 + 1, link(&head.1, event));
        ids.push(chain);
        seqs.push(head.0);
        positions.push(event.global_position);
        links.push(head.1.to_vec());
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
    // A checkpoint of each touched chain's new head, at most one a minute per chain.
    let (head_ids, head_seqs, head_links): (Vec<Uuid>, Vec<i64>, Vec<Vec<u8>>) = heads
        .iter()
        .map(|(c, (s, l))| (*c, *s, l.to_vec()))
        .collect();
    sqlx::query(
        "INSERT INTO event_chain_checkpoints (chain_id, seq, global_position, link) \
         SELECT h.c, h.s, c.global_position, h.l \
         FROM unnest($1::uuid[], $2::bigint[], $3::bytea[]) AS h(c, s, l) \
         JOIN event_chain c ON c.chain_id = h.c AND c.seq = h.s \
         WHERE NOT EXISTS (SELECT 1 FROM event_chain_checkpoints k \
                           WHERE k.chain_id = h.c AND k.at > now() - make_interval(secs => $4)) \
         ON CONFLICT DO NOTHING",
    )
    .bind(&head_ids)
    .bind(&head_seqs)
    .bind(&head_links)
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
    .bind(last_position)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    conn.finish();
    Ok(rows.len())
}

/// Seals everything committed so far; returns how many.
///
/// # Errors
/// Database failures.
pub async fn seal_all(pool: &PgPool) -> Result<usize, sqlx::Error> {
    let mut total = 0;
    loop {
        let n = seal_pending(pool).await?;
        total += n;
        if n == 0 {
            return Ok(total);
        }
    }
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
    /// Seals recomputed up to the break (or all up to the head).
    pub events_checked: i64,
    /// The head verified against: its seq, position and link (hex).
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

/// A chain's last seal.
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
/// planner may turn into a scan of the whole log per page. The seq range is bounded to one
/// page (`after + limit`), so the read stays small whatever plan stale statistics pick; a
/// wider gap (seals removed) is stepped over to the next seal.
async fn seal_page(
    pool: &PgPool,
    chain_id: Uuid,
    after: i64,
    until: Option<i64>,
    limit: i64,
) -> Result<Vec<SealRow>, sqlx::Error> {
    let until = until.unwrap_or(i64::MAX);
    let read = |from: i64| {
        sqlx::query_as::<_, (i64, i64, Vec<u8>)>(
            "SELECT seq, global_position, link FROM event_chain \
             WHERE chain_id = $1 AND seq > $2 AND seq <= $3 ORDER BY seq",
        )
        .bind(chain_id)
        .bind(from)
        .bind(until.min(from.saturating_add(limit)))
        .fetch_all(pool)
    };
    let mut seals = read(after).await?;
    if seals.is_empty() {
        let next: Option<i64> = sqlx::query_scalar(
            "SELECT min(seq) FROM event_chain WHERE chain_id = $1 AND seq > $2 AND seq <= $3",
        )
        .bind(chain_id)
        .bind(after)
        .bind(until)
        .fetch_one(pool)
        .await?;
        if let Some(next) = next {
            seals = read(next - 1).await?;
        }
    }
    let positions: Vec<i64> = seals.iter().map(|(_, p, _)| *p).collect();
    let events: Vec<StoredEvent> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM events WHERE global_position = ANY($1)"
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

/// Every chain with a seal (organizations and nil), in order.
///
/// # Errors
/// Database failures.
pub async fn chains(pool: &PgPool) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar("SELECT DISTINCT chain_id FROM event_chain ORDER BY chain_id")
        .fetch_all(pool)
        .await
}

/// Verifies every chain.
///
/// # Errors
/// Database failures.
pub async fn verify_all(pool: &PgPool) -> Result<Vec<ChainReport>, sqlx::Error> {
    let mut reports = Vec::new();
    for chain in chains(pool).await? {
        reports.push(verify(pool, chain).await?);
    }
    Ok(reports)
}

/// Recomputes `chain_id`'s chain up to its head and reports the first break.
///
/// # Errors
/// Database failures.
pub async fn verify(pool: &PgPool, chain_id: Uuid) -> Result<ChainReport, sqlx::Error> {
    let head: Option<(i64, i64, Vec<u8>)> = sqlx::query_as(
        "SELECT seq, global_position, link FROM event_chain WHERE chain_id = $1 \
         ORDER BY seq DESC LIMIT 1",
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
            link: hex::encode(l),
        }),
        broken: None,
    };
    let until = head.as_ref().map_or(0, |h| h.0);
    let mut previous = GENESIS;
    let mut last = 0i64;
    while last < until {
        let rows = seal_page(pool, chain_id, last, Some(until), PAGE).await?;
        if rows.is_empty() {
            break;
        }
        for row in rows {
            report.broken = check_seal(&row, last, &mut previous);
            if report.broken.is_some() {
                return Ok(report);
            }
            last = row.seq;
            report.events_checked += 1;
        }
    }
    report.broken = tail_and_insertions(pool, chain_id).await?;
    Ok(report)
}

/// The break at `row` (the seal after `last`), or none; advances `previous`.
fn check_seal(row: &SealRow, last: i64, previous: &mut [u8; 32]) -> Option<Break> {
    if row.seq != last + 1 {
        return Some(Break {
            seq: Some(last + 1),
            global_position: None,
            reason: format!("seal {} is missing", last + 1),
        });
    }
    let broken = |reason: String| {
        Some(Break {
            seq: Some(row.seq),
            global_position: Some(row.seal_position),
            reason,
        })
    };
    let Some(event) = &row.event else {
        return broken(format!(
            "the event at position {} was deleted",
            row.seal_position
        ));
    };
    let computed = link(previous, event);
    if computed[..] != row.link[..] {
        return broken(format!(
            "the event at position {} is not the one sealed (changed, moved or swapped)",
            row.seal_position
        ));
    }
    *previous = computed;
    None
}

/// The checks after the walk: checkpoints against the seals (a checkpoint whose seal is gone
/// shows a truncated tail), and events the sealer passed without sealing.
async fn tail_and_insertions(pool: &PgPool, chain_id: Uuid) -> Result<Option<Break>, sqlx::Error> {
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
            reason: format!(
                "checkpoint {seq} does not match the chain (its seal was removed or changed)"
            ),
        }));
    }
    // By organization or the nil chain's NULL, so the tenant index serves it.
    let tenant = if chain_id.is_nil() {
        "e.tenant_id IS NULL AND $1::uuid IS NOT NULL"
    } else {
        "e.tenant_id = $1"
    };
    let inserted: Option<i64> = sqlx::query_scalar(&format!(
        "SELECT min(e.global_position) FROM events e, event_chain_cursor k \
         WHERE {tenant} \
           AND (e.transaction_id, e.global_position) <= (k.transaction_id, k.global_position) \
           AND NOT EXISTS (SELECT 1 FROM event_chain c \
                           WHERE c.global_position = e.global_position)"
    ))
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
    /// The event's sealed form, as the link covers it (`null` when it was deleted).
    pub event: Option<Value>,
}

/// A page of an export and the link it ends on (the next page's `previous`).
pub struct ExportPage {
    /// The lines.
    pub lines: Vec<ExportLine>,
    /// The last line's link.
    pub last: [u8; 32],
}

/// Seals of `chain_id` after `after` (seq) up to `until` (seq, inclusive), at most `limit`,
/// with their events. `previous` is the link of seal `after` when the caller has it (the
/// last page's); else it is read.
///
/// # Errors
/// Database failures.
pub async fn export_page(
    pool: &PgPool,
    chain_id: Uuid,
    after: i64,
    until: Option<i64>,
    limit: i64,
    previous: Option<[u8; 32]>,
) -> Result<ExportPage, sqlx::Error> {
    let mut previous = match previous {
        Some(link) => link,
        None if after <= 0 => GENESIS,
        None => sqlx::query_scalar::<_, Vec<u8>>(
            "SELECT link FROM event_chain WHERE chain_id = $1 AND seq = $2",
        )
        .bind(chain_id)
        .bind(after)
        .fetch_optional(pool)
        .await?
        .map_or(GENESIS, |l| to_link(&l)),
    };
    let rows = seal_page(pool, chain_id, after.max(0), until, limit.clamp(1, PAGE)).await?;
    let lines = rows
        .into_iter()
        .map(|row| {
            let line = ExportLine {
                chain_id,
                seq: row.seq,
                prev: hex::encode(previous),
                link: hex::encode(&row.link),
                event: row.event.as_ref().map(sealed_form),
            };
            previous = to_link(&row.link);
            line
        })
        .collect();
    Ok(ExportPage {
        lines,
        last: previous,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;

    fn event() -> StoredEvent {
        StoredEvent {
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
        }
    }

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
        let event = event();
        let base = link(&GENESIS, &event);
        assert_ne!(link(&[1; 32], &event), base);
        let mut changed = event.clone();
        changed.payload = serde_json::json!({"name": "Rusty"});
        assert_ne!(link(&GENESIS, &changed), base);
        let mut moved = event.clone();
        moved.global_position = 8;
        assert_ne!(link(&GENESIS, &moved), base);
        assert_eq!(
            sealed_form(&event)["recorded_at"],
            serde_json::json!("2023-11-14T22:13:20.123456Z")
        );
    }

    #[test]
    fn secrets_are_sealed_as_their_digest_and_still_covered() {
        let mut event = event();
        event.payload = serde_json::json!({"email": "a@x", "password_hash": "$argon2id$v=19$x"});
        let sealed = sealed_form(&event);
        let shown = sealed["payload"]["password_hash"].as_str().unwrap();
        assert!(
            shown.starts_with("sha256:") && !shown.contains("argon2"),
            "{shown}"
        );
        assert_eq!(sealed["payload"]["email"], "a@x");
        let base = link(&GENESIS, &event);
        event.payload["password_hash"] = serde_json::json!("$argon2id$v=19$y");
        assert_ne!(link(&GENESIS, &event), base);
    }
}
