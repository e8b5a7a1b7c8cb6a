//! `$all` never skips a late commit (SPEC §2, ADR 0001), against real PostgreSQL.
//!
//! The classic failure: transaction A takes global position 10 and stays open while B takes
//! 11 and commits; a reader that orders by position sees 11, checkpoints it, and never sees
//! 10. These tests hold transactions open on purpose and check that the store's reader sees
//! every committed event exactly once, in a stable order.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use trellis_kernel::{
    AllSubscription, AppendOptions, EventId, EventStore, ExpectedVersion, GlobalPosition, Metadata,
    NewEvent, StreamId, SubscriptionOptions,
};
use trellis_store_postgres::append_in;
use trellis_tests::fresh_pg_store;

fn stream() -> StreamId {
    StreamId::new("tally", uuid::Uuid::now_v7()).unwrap()
}

fn event(n: i64) -> NewEvent {
    NewEvent::new(
        "AmountAdded",
        2,
        serde_json::json!({ "amount": n.max(1), "unit": "point" }),
        Metadata::default(),
    )
    .unwrap()
}

fn ids(events: &[trellis_kernel::RecordedEvent]) -> Vec<EventId> {
    events.iter().map(|e| e.event_id).collect()
}

/// Reads `$all` after `after` until `count` events are visible. Snapshot xmin is cluster-wide,
/// so an open transaction of a test running in parallel (another database, same server) can
/// hold events back for a moment: that delays, never reorders or drops, so wait it out.
async fn read_visible(
    store: &trellis_store_postgres::PgEventStore,
    after: Option<GlobalPosition>,
    count: usize,
) -> Vec<trellis_kernel::RecordedEvent> {
    for _ in 0..1500 {
        let events = store.read_all(after, 100).await.unwrap();
        if events.len() >= count {
            return events;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{count} events did not become visible within 30 s");
}

/// What a naive reader ordering by position alone would see after `after`.
async fn naive_read(store: &trellis_store_postgres::PgEventStore, after: i64) -> Vec<i64> {
    sqlx::query_scalar(
        "SELECT global_position FROM events WHERE global_position > $1 ORDER BY global_position",
    )
    .bind(after)
    .fetch_all(store.pool())
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_waits_for_an_open_transaction_and_then_sees_both_events_once() {
    let store = fresh_pg_store(4).await;
    let first = event(1);
    store
        .append(
            &stream(),
            ExpectedVersion::Any,
            vec![first],
            AppendOptions::default(),
        )
        .await
        .unwrap();
    let checkpoint: GlobalPosition = read_visible(&store, None, 1).await[0].global_position;

    // A takes the lower position and stays open.
    let late = event(2);
    let mut tx_a = store.pool().begin().await.unwrap();
    let a = append_in(
        &mut tx_a,
        &stream(),
        ExpectedVersion::NoStream,
        std::slice::from_ref(&late),
        &AppendOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(a.last_version, 1);

    // B takes a higher position and commits.
    let early = event(3);
    store
        .append(
            &stream(),
            ExpectedVersion::NoStream,
            vec![early.clone()],
            AppendOptions::default(),
        )
        .await
        .unwrap();

    // The trap is set: ordering by position alone would hand out B now and skip A later.
    assert_eq!(
        naive_read(&store, checkpoint.0).await.len(),
        1,
        "B is visible to a naive reader"
    );
    assert!(
        store
            .read_all(Some(checkpoint), 10)
            .await
            .unwrap()
            .is_empty(),
        "the store holds B back while the older transaction A is open"
    );

    tx_a.commit().await.unwrap();
    let seen = read_visible(&store, Some(checkpoint), 2).await;
    assert_eq!(ids(&seen), vec![late.event_id, early.event_id]);
    assert!(seen[0].global_position < seen[1].global_position);
    let again = store
        .read_all(Some(seen[1].global_position), 10)
        .await
        .unwrap();
    assert!(again.is_empty(), "each event is handed out once");
    let from_start = read_visible(&store, None, 3).await;
    assert_eq!(
        &ids(&from_start)[1..],
        &ids(&seen)[..],
        "the order is stable across reads"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_that_started_first_but_wrote_last_is_not_skipped() {
    let store = fresh_pg_store(4).await;
    // A gets its transaction id first, but inserts (and takes its position) after B.
    let mut tx_a = store.pool().begin().await.unwrap();
    let _: i64 = sqlx::query_scalar("SELECT pg_current_xact_id()::text::bigint")
        .fetch_one(&mut *tx_a)
        .await
        .unwrap();
    let b = event(1);
    store
        .append(
            &stream(),
            ExpectedVersion::Any,
            vec![b.clone()],
            AppendOptions::default(),
        )
        .await
        .unwrap();
    let a = event(2);
    append_in(
        &mut tx_a,
        &stream(),
        ExpectedVersion::Any,
        std::slice::from_ref(&a),
        &AppendOptions::default(),
    )
    .await
    .unwrap();
    assert!(store.read_all(None, 10).await.unwrap().is_empty());
    tx_a.commit().await.unwrap();
    let seen = read_visible(&store, None, 2).await;
    assert_eq!(ids(&seen), vec![a.event_id, b.event_id]);
    assert!(
        seen[0].global_position > seen[1].global_position,
        "commit order, not position order: a reader keeping the last position still resumes right"
    );
    assert!(
        store
            .read_all(Some(seen[1].global_position), 10)
            .await
            .unwrap()
            .is_empty()
    );
    let after_a = read_visible(&store, Some(seen[0].global_position), 1).await;
    assert_eq!(ids(&after_a), vec![b.event_id]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_reader_sees_every_event_exactly_once_under_random_late_commits() {
    const WRITERS: usize = 12;
    const APPENDS: usize = 25;
    let store = fresh_pg_store(WRITERS as u32 + 4).await;
    let options = SubscriptionOptions {
        batch_size: 7,
        poll_interval: Duration::from_millis(2),
    };
    // The reader follows $all until told to stop. It is not stopped on idleness: PostgreSQL's
    // snapshot horizon is cluster-wide, so transactions of tests running in parallel may delay
    // (never reorder or drop) what it sees.
    let seen_so_far = Arc::new(std::sync::Mutex::new(Vec::new()));
    let stop = Arc::new(tokio::sync::Notify::new());
    let reader = {
        let (store, seen, stop) = (
            Arc::clone(&store),
            Arc::clone(&seen_so_far),
            Arc::clone(&stop),
        );
        tokio::spawn(async move {
            let mut sub = AllSubscription::new(store, None, options);
            loop {
                tokio::select! {
                    () = stop.notified() => return,
                    batch = sub.next_batch() => seen.lock().unwrap().extend(ids(&batch.unwrap())),
                }
            }
        })
    };
    let mut writers = Vec::new();
    for _ in 0..WRITERS {
        let store = Arc::clone(&store);
        writers.push(tokio::spawn(async move {
            let mut committed = Vec::new();
            for n in 0..APPENDS {
                let (delay_before, hold, roll_back) = {
                    let mut rng = rand::rng();
                    (
                        rng.random_range(0..5),
                        rng.random_range(0..25),
                        rng.random_bool(0.1),
                    )
                };
                tokio::time::sleep(Duration::from_millis(delay_before)).await;
                let batch: Vec<NewEvent> = (0..=(n % 3)).map(|i| event(i as i64 + 1)).collect();
                let mut tx = store.pool().begin().await.unwrap();
                append_in(
                    &mut tx,
                    &stream(),
                    ExpectedVersion::NoStream,
                    &batch,
                    &AppendOptions::default(),
                )
                .await
                .unwrap();
                tokio::time::sleep(Duration::from_millis(hold)).await;
                if roll_back {
                    tx.rollback().await.unwrap();
                } else {
                    tx.commit().await.unwrap();
                    committed.extend(batch.iter().map(|e| e.event_id));
                }
            }
            committed
        }));
    }
    let mut committed = HashSet::new();
    for writer in writers {
        committed.extend(writer.await.unwrap());
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while seen_so_far.lock().unwrap().len() < committed.len() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the reader fell behind for 60 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Anything delivered twice would arrive about now.
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.notify_one();
    reader.await.unwrap();
    let seen = seen_so_far.lock().unwrap().clone();
    let unique: HashSet<_> = seen.iter().copied().collect();
    assert_eq!(unique.len(), seen.len(), "no event is delivered twice");
    assert_eq!(
        unique, committed,
        "every committed event, and only those, is delivered"
    );
    let replay = ids(&store.read_all(None, 100_000).await.unwrap());
    assert_eq!(replay, seen, "a fresh reader sees the same order");
}
