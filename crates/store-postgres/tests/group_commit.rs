//! Group commit (ADR 0018): concurrent single-event appends share one statement and one
//! commit, and each keeps the outcome it would have had alone.
//!
//! The tests run on tokio's current-thread runtime and let one statement be in flight before
//! appends queue: the first spawned append is written alone, every other one is queued before
//! a flusher runs, so they are written together (the transaction counts prove it).

use std::sync::Arc;

use trellis_kernel::{
    AppendOptions, AppendResult, EventId, EventStore, ExpectedVersion, Metadata, NewEvent,
    StoreError, StreamId,
};
use trellis_store_postgres::{GroupCommitOptions, PgEventStore, PgStoreOptions};

/// One statement in flight, then appends queue for one flusher.
const EAGER: Option<GroupCommitOptions> = Some(GroupCommitOptions {
    statements: 1,
    flushers: 1,
});

async fn store_with(group_commit: Option<GroupCommitOptions>) -> Arc<PgEventStore> {
    let url = trellis_testkit::pg::fresh_database().await;
    let options = PgStoreOptions {
        group_commit,
        ..PgStoreOptions::default()
    };
    let store = PgEventStore::connect(&url, options).await.expect("connect");
    store.migrate().await.expect("migrate");
    Arc::new(store)
}

fn stream() -> StreamId {
    StreamId::new("tally", uuid::Uuid::now_v7()).expect("stream id")
}

fn event(event_type: &str) -> NewEvent {
    NewEvent::new(
        event_type,
        1,
        serde_json::json!({ "name": "n" }),
        Metadata::default(),
    )
    .expect("event")
}

type Outcome = Result<AppendResult, StoreError>;

/// Appends one event in a task of its own.
fn spawn_append(
    store: &Arc<PgEventStore>,
    stream: StreamId,
    expected: ExpectedVersion,
    event: NewEvent,
) -> tokio::task::JoinHandle<Outcome> {
    let store = Arc::clone(store);
    tokio::spawn(async move {
        store
            .append(&stream, expected, vec![event], AppendOptions::default())
            .await
    })
}

/// Appends every `(stream, expected, event)` at once, one event each, in spawned tasks.
async fn all_at_once(
    store: &Arc<PgEventStore>,
    appends: Vec<(StreamId, ExpectedVersion, NewEvent)>,
) -> Vec<Outcome> {
    let tasks: Vec<_> = appends
        .into_iter()
        .map(|(stream, expected, event)| spawn_append(store, stream, expected, event))
        .collect();
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.expect("append task"));
    }
    outcomes
}

async fn transactions(store: &PgEventStore) -> i64 {
    sqlx::query_scalar("SELECT count(DISTINCT transaction_id) FROM events")
        .fetch_one(store.pool())
        .await
        .expect("transactions")
}

/// Runs `action` (PL/pgSQL) before inserting any event of `event_type`.
async fn on_insert_of(store: &PgEventStore, event_type: &str, action: &str) {
    sqlx::raw_sql(&format!(
        "CREATE FUNCTION on_insert() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
           IF NEW.event_type = '{event_type}' THEN {action} END IF;
           RETURN NEW;
         END $$;
         CREATE TRIGGER on_insert BEFORE INSERT ON events
           FOR EACH ROW EXECUTE FUNCTION on_insert();"
    ))
    .execute(store.pool())
    .await
    .expect("trigger");
}

/// `n` appends to fresh streams, the one at `at` of `event_type`, the others `TallyOpened`.
fn fresh_appends_with(
    n: usize,
    at: usize,
    event_type: &str,
) -> Vec<(StreamId, ExpectedVersion, NewEvent)> {
    (0..n)
        .map(|i| {
            let kind = if i == at { event_type } else { "TallyOpened" };
            (stream(), ExpectedVersion::NoStream, event(kind))
        })
        .collect()
}

async fn seed(store: &PgEventStore, stream: &StreamId) {
    store
        .append(
            stream,
            ExpectedVersion::NoStream,
            vec![event("TallyOpened")],
            AppendOptions::default(),
        )
        .await
        .expect("seed");
}

#[tokio::test]
async fn concurrent_appends_to_many_streams_share_commits_and_each_is_written_once() {
    // More than one statement's worth (256 rows).
    const APPENDS: usize = 600;
    for (group_commit, grouped) in [(EAGER, true), (None, false)] {
        let store = store_with(group_commit).await;
        let appends = (0..APPENDS)
            .map(|_| (stream(), ExpectedVersion::NoStream, event("TallyOpened")))
            .collect::<Vec<_>>();
        let ids: Vec<EventId> = appends.iter().map(|(_, _, e)| e.event_id).collect();
        let outcomes = all_at_once(&store, appends).await;
        for (outcome, id) in outcomes.iter().zip(&ids) {
            let result = outcome.as_ref().expect("every append succeeds");
            assert_eq!((result.first_version, result.last_version), (1, 1));
            assert_eq!(result.event_ids, vec![*id]);
        }
        let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
            .fetch_one(store.pool())
            .await
            .expect("count");
        assert_eq!(stored, APPENDS as i64);
        let transactions = transactions(&store).await;
        if grouped {
            // The first alone, the 599 queued behind it in statements of 256, 256 and 87.
            assert_eq!(
                transactions, 4,
                "{APPENDS} appends queued together took {transactions} commits"
            );
        } else {
            assert_eq!(transactions, APPENDS as i64, "group commit off: one each");
        }
    }
}

#[tokio::test]
async fn below_the_statement_limit_every_append_is_written_at_once_alone() {
    let store = store_with(Some(GroupCommitOptions::default())).await;
    let below = GroupCommitOptions::default().statements;
    let appends = (0..below)
        .map(|_| (stream(), ExpectedVersion::NoStream, event("TallyOpened")))
        .collect();
    for outcome in all_at_once(&store, appends).await {
        assert_eq!(outcome.expect("append").last_version, 1);
    }
    assert_eq!(transactions(&store).await, below as i64, "one commit each");
}

#[tokio::test]
async fn the_threshold_is_clamped_to_the_pool_size() {
    let url = trellis_testkit::pg::fresh_database().await;
    let options = PgStoreOptions {
        max_connections: 2,
        ..PgStoreOptions::default()
    };
    let store = Arc::new(PgEventStore::connect(&url, options).await.expect("connect"));
    store.migrate().await.expect("migrate");
    let appends = (0..10)
        .map(|_| (stream(), ExpectedVersion::NoStream, event("TallyOpened")))
        .collect();
    for outcome in all_at_once(&store, appends).await {
        assert_eq!(outcome.expect("append").last_version, 1);
    }
    // Two alone (the pool's two connections), the eight queued behind them in one statement;
    // with the default threshold of 8 unclamped, eight would have gone alone.
    assert_eq!(transactions(&store).await, 3);
}

#[tokio::test]
async fn in_one_statement_each_append_keeps_the_outcome_it_would_have_alone() {
    let store = store_with(EAGER).await;
    let (existing, at_one, any, contested, fresh) =
        (stream(), stream(), stream(), stream(), stream());
    seed(&store, &existing).await;
    seed(&store, &at_one).await;
    seed(&store, &any).await;
    let stored = event("TallyOpened");
    store
        .append(
            &stream(),
            ExpectedVersion::NoStream,
            vec![stored.clone()],
            AppendOptions::default(),
        )
        .await
        .expect("an event whose id is reused below");
    let before = transactions(&store).await;
    // One event id twice (a writer retrying): the retry with the wrong expectation must not
    // be told it succeeded.
    let reused = event("TallyOpened");
    let twice = stream();

    let outcomes = all_at_once(
        &store,
        vec![
            // Written alone (the one statement allowed in flight); the rest queue behind it.
            (stream(), ExpectedVersion::NoStream, event("TallyOpened")),
            (
                existing.clone(),
                ExpectedVersion::NoStream,
                event("AmountAdded"),
            ),
            (
                at_one.clone(),
                ExpectedVersion::Exact(1),
                event("AmountAdded"),
            ),
            (
                at_one.clone(),
                ExpectedVersion::Exact(5),
                event("AmountAdded"),
            ),
            (any.clone(), ExpectedVersion::Any, event("AmountAdded")),
            (any.clone(), ExpectedVersion::Any, event("AmountAdded")),
            (
                contested.clone(),
                ExpectedVersion::NoStream,
                event("TallyOpened"),
            ),
            (
                contested.clone(),
                ExpectedVersion::NoStream,
                event("TallyOpened"),
            ),
            (stream(), ExpectedVersion::NoStream, stored.clone()),
            (
                fresh.clone(),
                ExpectedVersion::NoStream,
                event("TallyOpened"),
            ),
            (twice.clone(), ExpectedVersion::Exact(5), reused.clone()),
            (twice.clone(), ExpectedVersion::NoStream, reused.clone()),
        ],
    )
    .await;
    assert_eq!(outcomes[0].as_ref().expect("alone").last_version, 1);
    let outcomes = &outcomes[1..];

    let conflict = |outcome: &Outcome, stream: &StreamId, actual: u64| {
        matches!(outcome, Err(StoreError::Concurrency { stream_id, actual: a, .. })
            if stream_id == stream && *a == actual)
    };
    assert!(conflict(&outcomes[0], &existing, 1), "{:?}", outcomes[0]);
    assert_eq!(outcomes[1].as_ref().expect("exact 1").last_version, 2);
    assert!(conflict(&outcomes[2], &at_one, 2), "{:?}", outcomes[2]);
    // Two `Any` appends to one stream: both written, one after the other.
    let mut any_versions = [&outcomes[3], &outcomes[4]]
        .map(|o| o.as_ref().expect("any").last_version)
        .to_vec();
    any_versions.sort_unstable();
    assert_eq!(any_versions, vec![2, 3]);
    // Two writers create one stream: exactly one wins.
    let contested_won = [&outcomes[5], &outcomes[6]]
        .iter()
        .filter(|o| o.is_ok())
        .count();
    assert_eq!(contested_won, 1, "{:?} {:?}", outcomes[5], outcomes[6]);
    assert!(
        conflict(&outcomes[5], &contested, 1) || conflict(&outcomes[6], &contested, 1),
        "the loser is told the stream exists"
    );
    assert!(
        matches!(&outcomes[7], Err(StoreError::DuplicateEventId(id)) if *id == stored.event_id),
        "{:?}",
        outcomes[7]
    );
    assert_eq!(outcomes[8].as_ref().expect("fresh").last_version, 1);
    assert!(
        matches!(&outcomes[9], Err(StoreError::Concurrency { .. })),
        "{:?}",
        outcomes[9]
    );
    assert_eq!(outcomes[10].as_ref().expect("reused id").last_version, 1);

    // Versions are gap-free and each event is stored once.
    for (s, versions) in [
        (&existing, 1),
        (&at_one, 2),
        (&any, 3),
        (&contested, 1),
        (&fresh, 1),
        (&twice, 1),
    ] {
        let stored: Vec<i64> = sqlx::query_scalar(
            "SELECT stream_version FROM events WHERE stream_id = $1 ORDER BY stream_version",
        )
        .bind(s.to_string())
        .fetch_all(store.pool())
        .await
        .expect("versions");
        assert_eq!(stored, (1..=versions).collect::<Vec<i64>>(), "{s}");
    }
    // Commits: the first append alone; one statement for Exact(1), one `Any`, the contest's
    // winner and `fresh`; the second `Any` and the reused id's retry, alone. Seven appends
    // written in four commits, or this test proved nothing about grouping.
    let commits = transactions(&store).await - before;
    assert_eq!(commits, 4, "7 appends were written in {commits} commits");
}

#[tokio::test]
async fn a_row_the_database_refuses_fails_alone_and_the_others_in_its_statement_are_written() {
    let store = store_with(EAGER).await;
    // A trigger stands for any row-level refusal the edge's validation did not foresee.
    on_insert_of(&store, "PoisonAdded", "RAISE EXCEPTION 'poisoned row';").await;
    let appends = fresh_appends_with(10, 5, "PoisonAdded");
    let outcomes = all_at_once(&store, appends).await;
    for (i, outcome) in outcomes.iter().enumerate() {
        if i == 5 {
            assert!(
                matches!(outcome, Err(StoreError::Backend(_))),
                "{outcome:?}"
            );
        } else {
            assert_eq!(outcome.as_ref().expect("innocent").last_version, 1);
        }
    }
}

#[tokio::test]
async fn an_outage_during_a_grouped_statement_fails_each_of_its_appends_and_writes_none_again() {
    let store = store_with(EAGER).await;
    // A row whose insert ends its own connection: the connection is lost mid-statement.
    on_insert_of(
        &store,
        "OutageHappened",
        "PERFORM pg_terminate_backend(pg_backend_pid()); PERFORM pg_sleep(5);",
    )
    .await;
    let appends = fresh_appends_with(6, 3, "OutageHappened");
    let outcomes = all_at_once(&store, appends).await;
    // The first was written alone before the others queued.
    assert_eq!(outcomes[0].as_ref().expect("alone").last_version, 1);
    for outcome in &outcomes[1..] {
        assert!(
            matches!(outcome, Err(StoreError::Unavailable(_))),
            "{outcome:?}"
        );
    }
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(store.pool())
        .await
        .expect("count");
    assert_eq!(
        stored, 1,
        "nothing of the failed statement is written again"
    );
}

#[tokio::test]
async fn a_queued_append_whose_caller_went_away_is_not_written() {
    let store = store_with(EAGER).await;
    let first = spawn_append(
        &store,
        stream(),
        ExpectedVersion::NoStream,
        event("TallyOpened"),
    );
    let abandoned = event("TallyOpened");
    let abandoned_id = abandoned.event_id;
    let queued = spawn_append(&store, stream(), ExpectedVersion::NoStream, abandoned);
    // Both run until they wait: the first on its statement, the second in the queue.
    tokio::task::yield_now().await;
    queued.abort();
    first.await.expect("first task").expect("first append");
    let later = event("TallyOpened");
    let later_id = later.event_id;
    store
        .append(
            &stream(),
            ExpectedVersion::NoStream,
            vec![later],
            AppendOptions::default(),
        )
        .await
        .expect("a later append");
    let stored: Vec<uuid::Uuid> = sqlx::query_scalar("SELECT event_id FROM events")
        .fetch_all(store.pool())
        .await
        .expect("events");
    assert_eq!(stored.len(), 2, "{stored:?}");
    assert!(stored.contains(&later_id.as_uuid()));
    assert!(!stored.contains(&abandoned_id.as_uuid()));
}
