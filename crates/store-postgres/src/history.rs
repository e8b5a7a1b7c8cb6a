//! The one exception to immutability (ADR 0017): personal fields of events appended before
//! they were encrypted are encrypted in place, once, and the hash chains holding those events
//! are re-linked on record (`event_chain_reseals`), so erasing a subject reaches them too.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use sqlx::{Connection, PgPool};

use crate::guarded::GuardedConnection;
use trellis_kernel::personal::{self, field};
use trellis_kernel::{NewEvent, PersonalData, StoreError};
use uuid::Uuid;

use crate::chain::{self, GENESIS, chain_of};
use crate::error::store_error;
use crate::read::{COLUMNS, StoredEvent};

/// Events read per page.
const PAGE: i64 = 1_000;

/// What [`encrypt_history`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistoryReport {
    /// Events whose personal fields were encrypted in place.
    pub events: usize,
    /// Chains re-linked, with their heads before and after.
    pub reseals: Vec<Reseal>,
}

/// One re-linked chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reseal {
    /// The organization (nil: events without one).
    pub chain_id: Uuid,
    /// The head's seq (unchanged).
    pub seq: i64,
    /// The head's link before (hex).
    pub old_head: String,
    /// The head's link after (hex).
    pub new_head: String,
}

/// Whether the declared fields of `event` still hold plain text (some non-null field, none
/// encrypted: a cipher encrypts all of an event's fields or none).
fn plain(event: &StoredEvent, declared: &PersonalData) -> bool {
    let values: Vec<_> = declared
        .fields
        .iter()
        .filter_map(|path| field(&event.payload, path))
        .filter(|v| !v.is_null())
        .collect();
    !values.is_empty() && !values.iter().any(|v| trellis_privacy::is_ciphertext(v))
}

/// Encrypts, through the installed cipher, every `declared` personal field still in plain text,
/// in one transaction holding the sealer's lock, and re-links the chains of the organizations
/// touched. Refuses (changing nothing) when one of those chains does not verify: re-linking
/// must never launder tampering. Running it again rewrites nothing.
///
/// # Errors
/// [`StoreError`]: a broken chain (`Backend`, naming it), database or cipher failures.
pub async fn encrypt_history(
    pool: &PgPool,
    declared: &[PersonalData],
) -> Result<HistoryReport, StoreError> {
    let types: Vec<&str> = declared.iter().map(|d| d.event_type).collect();
    let mut conn = GuardedConnection::acquire(pool)
        .await
        .map_err(store_error)?;
    let mut tx = conn.begin().await.map_err(store_error)?;
    chain::lock_sealer(&mut tx).await.map_err(store_error)?;
    let mut stale = Vec::new();
    let mut after = 0i64;
    loop {
        let rows: Vec<StoredEvent> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM events WHERE event_type = ANY($1) AND global_position > $2 \
             ORDER BY global_position LIMIT $3"
        ))
        .bind(&types)
        .bind(after)
        .bind(PAGE)
        .fetch_all(&mut *tx)
        .await
        .map_err(store_error)?;
        let Some(last) = rows.last() else {
            break;
        };
        after = last.global_position;
        stale.extend(rows.into_iter().filter(|row| {
            declared
                .iter()
                .find(|d| d.event_type == row.event_type)
                .is_some_and(|d| plain(row, d))
        }));
    }
    if stale.is_empty() {
        tx.rollback().await.map_err(store_error)?;
        conn.finish();
        return Ok(HistoryReport::default());
    }
    let candidates: BTreeSet<Uuid> = stale.iter().map(chain_of).collect();
    for chain_id in &candidates {
        let report = chain::verify(pool, *chain_id).await.map_err(store_error)?;
        if let Some(broken) = report.broken {
            return Err(refused(*chain_id, &broken.reason));
        }
    }
    // Each rewritten event as it was, by position: re-linking checks the chain against it.
    let mut originals: HashMap<i64, StoredEvent> = HashMap::new();
    let mut chains: BTreeMap<Uuid, i64> = BTreeMap::new();
    for row in stale {
        let original = row.clone();
        let recorded = row.into_event()?;
        let mut event = [NewEvent {
            event_id: recorded.event_id,
            event_type: recorded.event_type,
            schema_version: recorded.schema_version,
            payload: recorded.payload,
            metadata: recorded.metadata,
        }];
        personal::encrypt(&recorded.stream_id, &mut event).await?;
        let [event] = event;
        // Values already erased (a forgotten subject's) stay as they are.
        if event.payload == original.payload {
            continue;
        }
        sqlx::query("UPDATE events SET payload = $2 WHERE global_position = $1")
            .bind(original.global_position)
            .bind(&event.payload)
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
        *chains.entry(chain_of(&original)).or_default() += 1;
        originals.insert(original.global_position, original);
    }
    let events = originals.len();
    let mut reseals = Vec::new();
    for (chain_id, rewritten) in chains {
        if let Some(reseal) = relink(&mut tx, chain_id, rewritten, &originals).await? {
            reseals.push(reseal);
        }
    }
    tx.commit().await.map_err(store_error)?;
    conn.finish();
    Ok(HistoryReport { events, reseals })
}

fn refused(chain_id: Uuid, reason: &str) -> StoreError {
    StoreError::Backend(
        format!(
            "the chain of {chain_id} does not verify ({reason}); it is not re-linked and nothing \
             was encrypted"
        )
        .into(),
    )
}

#[derive(sqlx::FromRow)]
struct SealedRow {
    seq: i64,
    old_link: Vec<u8>,
    #[sqlx(flatten)]
    event: StoredEvent,
}

/// Recomputes `chain_id`'s links over the events as they are now, updates the changed ones and
/// the checkpoints, and records the re-seal.
async fn relink(
    tx: &mut sqlx::PgConnection,
    chain_id: Uuid,
    rewritten: i64,
    originals: &HashMap<i64, StoredEvent>,
) -> Result<Option<Reseal>, StoreError> {
    let rows: Vec<SealedRow> = sqlx::query_as(&format!(
        "SELECT c.seq, c.link AS old_link, {COLUMNS} FROM event_chain c \
         JOIN events e USING (global_position) \
         WHERE c.chain_id = $1 ORDER BY c.seq FOR UPDATE OF c"
    ))
    .bind(chain_id)
    .fetch_all(&mut *tx)
    .await
    .map_err(store_error)?;
    let Some(last) = rows.last() else {
        return Ok(None);
    };
    let (head_seq, old_head) = (last.seq, last.old_link.clone());
    // The chain must still be the one that verified, over the events as they were (read in
    // this transaction, seals locked): re-linking never seals a change it did not make.
    let (mut before, mut previous) = (GENESIS, GENESIS);
    let (mut seqs, mut links) = (Vec::new(), Vec::new());
    for (expected, row) in (1..).zip(&rows) {
        let was = originals
            .get(&row.event.global_position)
            .unwrap_or(&row.event);
        before = chain::link(&before, was);
        if row.seq != expected || before[..] != row.old_link[..] {
            return Err(refused(
                chain_id,
                &format!("seal {} changed while re-linking", row.seq),
            ));
        }
        previous = chain::link(&previous, &row.event);
        if previous[..] != row.old_link[..] {
            seqs.push(row.seq);
            links.push(previous.to_vec());
        }
    }
    if seqs.is_empty() {
        return Ok(None);
    }
    sqlx::query(
        "UPDATE event_chain c SET link = u.link \
         FROM unnest($2::bigint[], $3::bytea[]) AS u(seq, link) \
         WHERE c.chain_id = $1 AND c.seq = u.seq",
    )
    .bind(chain_id)
    .bind(&seqs)
    .bind(&links)
    .execute(&mut *tx)
    .await
    .map_err(store_error)?;
    sqlx::query(
        "UPDATE event_chain_checkpoints k SET link = c.link FROM event_chain c \
         WHERE k.chain_id = $1 AND c.chain_id = k.chain_id AND c.seq = k.seq",
    )
    .bind(chain_id)
    .execute(&mut *tx)
    .await
    .map_err(store_error)?;
    sqlx::query(
        "INSERT INTO event_chain_reseals (chain_id, seq, old_head, new_head, events_rewritten, \
                                          reason) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(chain_id)
    .bind(head_seq)
    .bind(&old_head)
    .bind(previous.to_vec())
    .bind(rewritten)
    .bind("personal data of events from before ADR 0017 encrypted in place")
    .execute(&mut *tx)
    .await
    .map_err(store_error)?;
    Ok(Some(Reseal {
        chain_id,
        seq: head_seq,
        old_head: hex::encode(old_head),
        new_head: hex::encode(previous),
    }))
}
