//! The `EventStore` contract: one suite, run against every adapter.
//!
//! Each case is a plain async function taking a fresh, empty store; [`store_contract_tests!`]
//! turns the whole list into `#[tokio::test]`s inside an adapter's test file:
//!
//! ```ignore
//! trellis_testkit::store_contract_tests!(|| async { Arc::new(MemoryEventStore::default()) });
//! ```

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use trellis_demo::{Tally, TallyCommand, TallyError, upcasters};
use trellis_kernel::{
    AllSubscription, AppendOptions, CommandContext, CommandHandler, Direction, EventStore,
    ExpectedVersion, HandleError, IdempotencyKey, Metadata, NewEvent, NewEventError, StoreError,
    StoreLimits, StreamId, SubscriptionOptions, TenantId, Upcasters,
};

/// Instantiates every contract case as a test, given an expression that evaluates to an
/// async factory of fresh stores (`Fn() -> impl Future<Output = Arc<S>>`).
#[macro_export]
macro_rules! store_contract_tests {
    ($factory:expr) => {
        $crate::store_contract_tests!(@cases $factory;
            appending_to_a_new_stream_starts_at_version_one,
            no_stream_expectation_fails_when_the_stream_exists,
            exact_version_mismatch_returns_a_concurrency_error_with_the_actual_version,
            any_expectation_appends_after_whatever_is_there,
            streams_read_forwards_and_backwards_with_limits,
            unknown_streams_read_as_empty,
            all_is_read_in_commit_order_after_a_checkpoint,
            reading_all_after_an_unknown_position_is_a_typed_error,
            the_envelope_round_trips_with_its_metadata,
            an_idempotency_key_appends_once_and_returns_the_first_result,
            oversized_payloads_are_rejected_with_a_typed_error,
            events_over_the_per_event_limit_are_refused_and_events_at_it_are_stored,
            empty_overlong_and_malformed_appends_are_rejected,
            reusing_an_event_id_is_a_typed_error,
            concurrent_exact_appends_to_one_stream_never_fork_it,
            a_subscription_delivers_events_appended_after_it_started,
            the_command_handler_retries_conflicts_so_concurrent_commands_all_apply,
            the_command_handler_applies_an_idempotent_command_once,
            stored_v1_events_are_upcast_to_v2_on_load,
            domain_refusals_are_domain_errors_and_append_nothing,
            filtered_reads_keep_commit_order_and_only_matching_events,
            the_head_is_the_last_event_in_commit_order,
        );
    };
    (@cases $factory:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let store = ($factory)().await;
                $crate::contract::$case(store).await;
            }
        )*
    };
}

fn stream() -> StreamId {
    StreamId::new("tally", uuid::Uuid::now_v7()).unwrap()
}

fn opened(name: &str) -> NewEvent {
    NewEvent::new(
        "TallyOpened",
        1,
        serde_json::json!({ "name": name }),
        Metadata::default(),
    )
    .unwrap()
}

fn added(amount: i64) -> NewEvent {
    NewEvent::new(
        "AmountAdded",
        2,
        serde_json::json!({ "amount": amount, "unit": "point" }),
        Metadata::default(),
    )
    .unwrap()
}

async fn append<S: EventStore + ?Sized>(
    store: &S,
    stream: &StreamId,
    expected: ExpectedVersion,
    events: Vec<NewEvent>,
) -> Result<trellis_kernel::AppendResult, StoreError> {
    store
        .append(stream, expected, events, AppendOptions::default())
        .await
}

/// Reads `$all` after `after` until at least `count` events are visible.
///
/// `$all` promises eventual visibility in commit order, not visibility the instant an append
/// returns: on PostgreSQL an unrelated open transaction anywhere on the server holds newer
/// events back until it ends (ADR 0001). Tests wait for that instead of assuming it away.
pub async fn read_all_until<S: EventStore + ?Sized>(
    store: &S,
    after: Option<trellis_kernel::GlobalPosition>,
    count: usize,
) -> Vec<trellis_kernel::RecordedEvent> {
    for _ in 0..3000 {
        let events = store.read_all(after, count.max(100)).await.unwrap();
        if events.len() >= count {
            return events;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{count} events did not become visible in $all within 30 s");
}

/// A first append gets version 1, the next continues.
pub async fn appending_to_a_new_stream_starts_at_version_one<S: EventStore + ?Sized>(
    store: Arc<S>,
) {
    let s = stream();
    let first = append(&*store, &s, ExpectedVersion::NoStream, vec![opened("a")])
        .await
        .unwrap();
    assert_eq!((first.first_version, first.last_version), (1, 1));
    assert!(!first.duplicate);
    let next = append(
        &*store,
        &s,
        ExpectedVersion::Exact(1),
        vec![added(1), added(2)],
    )
    .await
    .unwrap();
    assert_eq!((next.first_version, next.last_version), (2, 3));
    assert_eq!(next.event_ids.len(), 2);
}

/// `NoStream` on an existing stream conflicts.
pub async fn no_stream_expectation_fails_when_the_stream_exists<S: EventStore + ?Sized>(
    store: Arc<S>,
) {
    let s = stream();
    append(&*store, &s, ExpectedVersion::NoStream, vec![opened("a")])
        .await
        .unwrap();
    let err = append(&*store, &s, ExpectedVersion::NoStream, vec![opened("b")])
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Concurrency { actual: 1, .. }),
        "{err:?}"
    );
}

/// `Exact(n)` at another version conflicts and says where the stream is.
pub async fn exact_version_mismatch_returns_a_concurrency_error_with_the_actual_version<
    S: EventStore + ?Sized,
>(
    store: Arc<S>,
) {
    let s = stream();
    append(
        &*store,
        &s,
        ExpectedVersion::Any,
        vec![opened("a"), added(1)],
    )
    .await
    .unwrap();
    let err = append(&*store, &s, ExpectedVersion::Exact(1), vec![added(2)])
        .await
        .unwrap_err();
    match err {
        StoreError::Concurrency {
            stream_id,
            expected,
            actual,
        } => {
            assert_eq!(stream_id, s);
            assert_eq!(expected, ExpectedVersion::Exact(1));
            assert_eq!(actual, 2);
        }
        other => panic!("expected a concurrency error, got {other:?}"),
    }
    let events = store
        .read_stream(&s, 1, Direction::Forwards, 10)
        .await
        .unwrap();
    assert_eq!(events.len(), 2, "a refused append writes nothing");
}

/// `Any` never conflicts.
pub async fn any_expectation_appends_after_whatever_is_there<S: EventStore + ?Sized>(
    store: Arc<S>,
) {
    let s = stream();
    for n in 1..=3 {
        let r = append(&*store, &s, ExpectedVersion::Any, vec![added(n)])
            .await
            .unwrap();
        assert_eq!(r.last_version, n as u64);
    }
}

/// Forwards from a version, backwards from a version, with limits.
pub async fn streams_read_forwards_and_backwards_with_limits<S: EventStore + ?Sized>(
    store: Arc<S>,
) {
    let s = stream();
    let events: Vec<NewEvent> = (1..=5).map(added).collect();
    append(&*store, &s, ExpectedVersion::NoStream, events)
        .await
        .unwrap();
    let versions = |events: Vec<trellis_kernel::RecordedEvent>| {
        events.iter().map(|e| e.stream_version).collect::<Vec<_>>()
    };
    let fwd = store
        .read_stream(&s, 2, Direction::Forwards, 2)
        .await
        .unwrap();
    assert_eq!(versions(fwd), vec![2, 3]);
    let back = store
        .read_stream(&s, u64::MAX, Direction::Backwards, 2)
        .await
        .unwrap();
    assert_eq!(versions(back), vec![5, 4]);
    let back_from = store
        .read_stream(&s, 3, Direction::Backwards, 10)
        .await
        .unwrap();
    assert_eq!(versions(back_from), vec![3, 2, 1]);
    let past_end = store
        .read_stream(&s, 9, Direction::Forwards, 10)
        .await
        .unwrap();
    assert!(past_end.is_empty());
}

/// A stream nobody wrote is empty, not an error.
pub async fn unknown_streams_read_as_empty<S: EventStore + ?Sized>(store: Arc<S>) {
    let events = store
        .read_stream(&stream(), 1, Direction::Forwards, 10)
        .await
        .unwrap();
    assert!(events.is_empty());
}

/// `$all` pages follow commit order and resume after a checkpoint.
pub async fn all_is_read_in_commit_order_after_a_checkpoint<S: EventStore + ?Sized>(store: Arc<S>) {
    let (a, b) = (stream(), stream());
    let mut written = Vec::new();
    for (s, e) in [
        (&a, opened("a")),
        (&b, opened("b")),
        (&a, added(1)),
        (&b, added(2)),
    ] {
        written.push(e.event_id);
        append(&*store, s, ExpectedVersion::Any, vec![e])
            .await
            .unwrap();
    }
    let first = read_all_until(&*store, None, 4).await;
    let first = &first[..3];
    let rest = read_all_until(&*store, Some(first[2].global_position), 1).await;
    let seen: Vec<_> = first.iter().chain(&rest).map(|e| e.event_id).collect();
    assert_eq!(seen, written);
    let caught_up = store
        .read_all(Some(rest[rest.len() - 1].global_position), 10)
        .await
        .unwrap();
    assert!(caught_up.is_empty());
}

/// A checkpoint the store never handed out is refused, not silently read as "the end".
pub async fn reading_all_after_an_unknown_position_is_a_typed_error<S: EventStore + ?Sized>(
    store: Arc<S>,
) {
    append(&*store, &stream(), ExpectedVersion::Any, vec![opened("a")])
        .await
        .unwrap();
    let bogus = trellis_kernel::GlobalPosition(i64::MAX - 7);
    let err = store.read_all(Some(bogus), 10).await.unwrap_err();
    assert!(
        matches!(err, StoreError::UnknownPosition(p) if p == bogus),
        "{err:?}"
    );
}

/// Every field of SPEC §2 survives the round trip.
pub async fn the_envelope_round_trips_with_its_metadata<S: EventStore + ?Sized>(store: Arc<S>) {
    let s = stream();
    let mut event = opened("round trip ✓");
    event.metadata = Metadata {
        correlation_id: Some(trellis_kernel::EventId::new()),
        causation_id: Some(trellis_kernel::EventId::new()),
        actor_id: Some(trellis_kernel::ActorId::new()),
        tenant_id: Some(TenantId::new()),
        trace_id: Some(trellis_kernel::TraceId::new()),
        request_id: Some("client-request-7".into()),
    };
    let before = chrono::Utc::now() - chrono::Duration::seconds(5);
    append(&*store, &s, ExpectedVersion::NoStream, vec![event.clone()])
        .await
        .unwrap();
    let read = store
        .read_stream(&s, 1, Direction::Forwards, 1)
        .await
        .unwrap();
    let got = &read[0];
    assert_eq!(got.event_id, event.event_id);
    assert_eq!(
        got.event_id.as_uuid().get_version_num(),
        7,
        "ids are UUIDv7"
    );
    assert_eq!(got.stream_id, s);
    assert_eq!(got.stream_version, 1);
    assert_eq!(got.event_type, "TallyOpened");
    assert_eq!(got.schema_version, 1);
    assert_eq!(got.payload, event.payload);
    assert_eq!(got.metadata, event.metadata);
    assert!(
        got.recorded_at > before
            && got.recorded_at <= chrono::Utc::now() + chrono::Duration::seconds(5)
    );
    let all = read_all_until(&*store, None, 1).await;
    assert_eq!(all[0].global_position, got.global_position);
}

/// The same key twice appends once; the second call gets the first result back.
pub async fn an_idempotency_key_appends_once_and_returns_the_first_result<
    S: EventStore + ?Sized,
>(
    store: Arc<S>,
) {
    let s = stream();
    let key = IdempotencyKey::parse(&format!("test/{}", uuid::Uuid::now_v7())).unwrap();
    let options = AppendOptions {
        idempotency_key: Some(key.clone()),
    };
    let first = store
        .append(
            &s,
            ExpectedVersion::NoStream,
            vec![opened("a")],
            options.clone(),
        )
        .await
        .unwrap();
    let again = store
        .append(&s, ExpectedVersion::NoStream, vec![opened("a")], options)
        .await
        .unwrap();
    assert!(again.duplicate);
    assert_eq!(again.event_ids, first.event_ids);
    assert_eq!(again.last_version, first.last_version);
    assert_eq!(store.idempotent_result(&key).await.unwrap(), Some(again));
    let events = store
        .read_stream(&s, 1, Direction::Forwards, 10)
        .await
        .unwrap();
    assert_eq!(events.len(), 1);
    assert!(IdempotencyKey::parse("").is_err());
    assert!(IdempotencyKey::parse("has space").is_err());
    assert!(IdempotencyKey::parse(&"k".repeat(201)).is_err());
}

/// Payloads over the limit are refused before anything is written.
pub async fn oversized_payloads_are_rejected_with_a_typed_error<S: EventStore + ?Sized>(
    store: Arc<S>,
) {
    let s = stream();
    let huge = NewEvent::new(
        "TallyOpened",
        1,
        serde_json::json!({ "name": "x".repeat(2 * 1024 * 1024) }),
        Metadata::default(),
    )
    .unwrap();
    let err = append(&*store, &s, ExpectedVersion::Any, vec![huge])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::PayloadTooLarge { .. }), "{err:?}");
    assert!(
        store
            .read_stream(&s, 1, Direction::Forwards, 1)
            .await
            .unwrap()
            .is_empty()
    );
}

/// The per-event limit (payload plus metadata, [`StoreLimits::DEFAULT_MAX_EVENT_BYTES`]) is
/// the same on every adapter: an event of exactly the limit is stored, one byte more is a
/// typed error naming the size and the limit, and a batch holding it writes nothing.
pub async fn events_over_the_per_event_limit_are_refused_and_events_at_it_are_stored<
    S: EventStore + ?Sized,
>(
    store: Arc<S>,
) {
    let limit = StoreLimits::DEFAULT_MAX_EVENT_BYTES;
    let metadata = Metadata {
        tenant_id: Some(TenantId::new()),
        ..Metadata::default()
    };
    let sized = |bytes: usize| {
        let empty = NewEvent::new(
            "TallyOpened",
            1,
            serde_json::json!({ "name": "" }),
            metadata.clone(),
        )
        .unwrap();
        let framing = StoreLimits::event_size(&empty);
        NewEvent::new(
            "TallyOpened",
            1,
            serde_json::json!({ "name": "n".repeat(bytes - framing) }),
            metadata.clone(),
        )
        .unwrap()
    };
    let at_limit = sized(limit);
    assert_eq!(StoreLimits::event_size(&at_limit), limit);
    let expected_payload = at_limit.payload.clone();
    let s = stream();
    append(&*store, &s, ExpectedVersion::NoStream, vec![at_limit])
        .await
        .unwrap();

    let over = sized(limit + 1);
    let s2 = stream();
    let err = append(
        &*store,
        &s2,
        ExpectedVersion::Any,
        vec![opened("small"), over],
    )
    .await
    .unwrap_err();
    match err {
        StoreError::PayloadTooLarge {
            event_type,
            size,
            limit: reported,
        } => {
            assert_eq!(event_type, "TallyOpened");
            assert_eq!((size, reported), (limit + 1, limit));
        }
        other => panic!("expected PayloadTooLarge, got {other:?}"),
    }
    assert!(
        store
            .read_stream(&s2, 1, Direction::Forwards, 10)
            .await
            .unwrap()
            .is_empty(),
        "nothing of the refused batch is written"
    );
    let stored = store
        .read_stream(&s, 1, Direction::Forwards, 1)
        .await
        .unwrap();
    assert_eq!(stored[0].payload, expected_payload, "stored whole");
}

/// Bad batches are typed errors, never panics or partial writes.
pub async fn empty_overlong_and_malformed_appends_are_rejected<S: EventStore + ?Sized>(
    store: Arc<S>,
) {
    let s = stream();
    let err = append(&*store, &s, ExpectedVersion::Any, vec![])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::EmptyAppend), "{err:?}");
    let many: Vec<NewEvent> = (0..1001).map(|_| added(1)).collect();
    let err = append(&*store, &s, ExpectedVersion::Any, many)
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::TooManyEvents { count: 1001, .. }),
        "{err:?}"
    );
    let mut bad_type = added(1);
    bad_type.event_type = "amount added; DROP TABLE events".into();
    let err = append(&*store, &s, ExpectedVersion::Any, vec![bad_type])
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::InvalidEvent(NewEventError::BadEventType(_))
        ),
        "{err:?}"
    );
    let mut not_object = added(1);
    not_object.payload = serde_json::json!("just a string");
    let err = append(&*store, &s, ExpectedVersion::Any, vec![not_object])
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::InvalidEvent(NewEventError::PayloadNotAnObject(_))
        ),
        "{err:?}"
    );
    let nul = NewEvent {
        payload: serde_json::json!({ "name": "a\u{0}b" }),
        ..opened("x")
    };
    let err = append(&*store, &s, ExpectedVersion::Any, vec![nul])
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::InvalidEvent(NewEventError::NulCharacter(_))
        ),
        "{err:?}"
    );
    let mut version_zero = added(1);
    version_zero.schema_version = 0;
    let err = append(&*store, &s, ExpectedVersion::Any, vec![version_zero])
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        StoreError::InvalidEvent(NewEventError::BadSchemaVersion)
    ));
    assert!(
        store
            .read_stream(&s, 1, Direction::Forwards, 1)
            .await
            .unwrap()
            .is_empty()
    );
}

/// An event id can be stored once.
pub async fn reusing_an_event_id_is_a_typed_error<S: EventStore + ?Sized>(store: Arc<S>) {
    let event = opened("a");
    append(
        &*store,
        &stream(),
        ExpectedVersion::Any,
        vec![event.clone()],
    )
    .await
    .unwrap();
    let err = append(
        &*store,
        &stream(),
        ExpectedVersion::Any,
        vec![event.clone()],
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, StoreError::DuplicateEventId(id) if id == event.event_id),
        "{err:?}"
    );
}

/// 64 writers race on one stream with exact versions: versions 1..N exist once each, every
/// loser gets `Concurrency`, and nothing else fails.
pub async fn concurrent_exact_appends_to_one_stream_never_fork_it<
    S: EventStore + ?Sized + 'static,
>(
    store: Arc<S>,
) {
    const TASKS: usize = 64;
    const ROUNDS: usize = 4;
    let s = stream();
    let mut tasks = Vec::new();
    for _ in 0..TASKS {
        let (store, s) = (Arc::clone(&store), s.clone());
        tasks.push(tokio::spawn(async move {
            let (mut won, mut lost) = (Vec::new(), 0usize);
            for _ in 0..ROUNDS {
                let current = store
                    .read_stream(&s, u64::MAX, Direction::Backwards, 1)
                    .await
                    .unwrap()
                    .first()
                    .map_or(0, |e| e.stream_version);
                let event = added(1);
                let id = event.event_id;
                match append(&*store, &s, ExpectedVersion::Exact(current), vec![event]).await {
                    Ok(r) => {
                        assert_eq!(r.last_version, current + 1);
                        won.push(id);
                    }
                    Err(StoreError::Concurrency { .. }) => lost += 1,
                    Err(other) => panic!("only concurrency errors are allowed, got {other:?}"),
                }
            }
            (won, lost)
        }));
    }
    let (mut won, mut lost) = (HashSet::new(), 0);
    for task in tasks {
        let (w, l) = task.await.unwrap();
        won.extend(w);
        lost += l;
    }
    assert_eq!(won.len() + lost, TASKS * ROUNDS);
    let events = store
        .read_stream(&s, 1, Direction::Forwards, 10_000)
        .await
        .unwrap();
    let versions: Vec<u64> = events.iter().map(|e| e.stream_version).collect();
    assert_eq!(versions, (1..=won.len() as u64).collect::<Vec<_>>());
    let stored: HashSet<_> = events.iter().map(|e| e.event_id).collect();
    assert_eq!(stored, won, "exactly the winners' events are stored");
}

/// A live subscription sees history, then new appends, each once.
pub async fn a_subscription_delivers_events_appended_after_it_started<
    S: EventStore + ?Sized + 'static,
>(
    store: Arc<S>,
) {
    let s = stream();
    append(&*store, &s, ExpectedVersion::NoStream, vec![opened("a")])
        .await
        .unwrap();
    let mut sub = AllSubscription::new(Arc::clone(&store), None, SubscriptionOptions::default());
    let first = sub.next_batch().await.unwrap();
    assert_eq!(first.len(), 1);
    let writer = {
        let (store, s) = (Arc::clone(&store), s.clone());
        tokio::spawn(async move {
            for n in 1..=20 {
                append(&*store, &s, ExpectedVersion::Any, vec![added(n)])
                    .await
                    .unwrap();
            }
        })
    };
    let mut seen = Vec::new();
    while seen.len() < 20 {
        let batch = tokio::time::timeout(Duration::from_secs(30), sub.next_batch())
            .await
            .expect("subscription delivers within 30 s")
            .unwrap();
        seen.extend(batch.into_iter().map(|e| e.stream_version));
    }
    writer.await.unwrap();
    assert_eq!(seen, (2..=21).collect::<Vec<u64>>());
    let all = read_all_until(&*store, None, 21).await;
    assert_eq!(sub.checkpoint(), all.last().map(|e| e.global_position));
}

fn handler<S: EventStore + ?Sized>(store: &Arc<S>) -> CommandHandler<S> {
    CommandHandler::new(Arc::clone(store), Arc::new(upcasters()))
}

/// Without a caller expectation, conflicts are retried: every concurrent command lands.
pub async fn the_command_handler_retries_conflicts_so_concurrent_commands_all_apply<
    S: EventStore + ?Sized + 'static,
>(
    store: Arc<S>,
) {
    let s = stream();
    let handler = handler(&store).with_max_attempts(200);
    handler
        .handle::<Tally>(
            s.id(),
            &TallyCommand::Open { name: "t".into() },
            &CommandContext::default(),
        )
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for n in 1..=16 {
        let (handler, s) = (handler.clone(), s.clone());
        tasks.push(tokio::spawn(async move {
            handler
                .handle::<Tally>(
                    s.id(),
                    &TallyCommand::Add { amount: n },
                    &CommandContext::default(),
                )
                .await
                .unwrap()
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let (state, version) = handler.load::<Tally>(s.id()).await.unwrap();
    assert_eq!(state.total, (1..=16).sum::<i64>());
    assert_eq!(version, 17);
}

/// An idempotent command applies once; the repeat returns the first outcome.
pub async fn the_command_handler_applies_an_idempotent_command_once<S: EventStore + ?Sized>(
    store: Arc<S>,
) {
    let s = stream();
    let handler = handler(&store);
    handler
        .handle::<Tally>(
            s.id(),
            &TallyCommand::Open { name: "t".into() },
            &CommandContext::default(),
        )
        .await
        .unwrap();
    let context = CommandContext {
        idempotency_key: Some(
            IdempotencyKey::parse(&format!("k-{}", uuid::Uuid::now_v7())).unwrap(),
        ),
        ..CommandContext::default()
    };
    let add = TallyCommand::Add { amount: 5 };
    let first = handler
        .handle::<Tally>(s.id(), &add, &context)
        .await
        .unwrap();
    let second = handler
        .handle::<Tally>(s.id(), &add, &context)
        .await
        .unwrap();
    assert!(!first.duplicate && second.duplicate);
    assert_eq!(
        (first.version, &first.event_ids),
        (second.version, &second.event_ids)
    );
    let (state, version) = handler.load::<Tally>(s.id()).await.unwrap();
    assert_eq!((state.total, version), (5, 2));
}

/// An event stored as v1 is read as v2 by code that only knows v2.
pub async fn stored_v1_events_are_upcast_to_v2_on_load<S: EventStore + ?Sized>(store: Arc<S>) {
    let s = stream();
    let v1 = NewEvent::new(
        "AmountAdded",
        1,
        serde_json::json!({"amount": 7}),
        Metadata::default(),
    )
    .unwrap();
    append(
        &*store,
        &s,
        ExpectedVersion::NoStream,
        vec![opened("old"), v1],
    )
    .await
    .unwrap();
    let raw = store
        .read_stream(&s, 2, Direction::Forwards, 1)
        .await
        .unwrap();
    assert_eq!(raw[0].schema_version, 1, "the store keeps what was written");
    let upcast = upcasters().upcast(raw[0].clone()).unwrap();
    assert_eq!(upcast.schema_version, 2);
    assert_eq!(
        upcast.payload,
        serde_json::json!({"amount": 7, "unit": "point"})
    );
    let (state, _) = handler(&store).load::<Tally>(s.id()).await.unwrap();
    assert_eq!(state.total, 7);
    // Without the upcaster the v1 payload does not decode: the chain is what makes it work.
    let bare = CommandHandler::new(Arc::clone(&store), Arc::new(Upcasters::new()));
    assert!(matches!(
        bare.load::<Tally>(s.id()).await,
        Err(HandleError::Decode(_))
    ));
}

/// A refused command is a domain error and leaves the stream untouched.
pub async fn domain_refusals_are_domain_errors_and_append_nothing<S: EventStore + ?Sized>(
    store: Arc<S>,
) {
    let s = stream();
    let err = handler(&store)
        .handle::<Tally>(
            s.id(),
            &TallyCommand::Add { amount: 1 },
            &CommandContext::default(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, HandleError::Domain(TallyError::NotOpen)),
        "{err:?}"
    );
    let caller_expectation = CommandContext {
        expected_version: Some(ExpectedVersion::Exact(3)),
        ..CommandContext::default()
    };
    let err = handler(&store)
        .handle::<Tally>(
            s.id(),
            &TallyCommand::Open { name: "t".into() },
            &caller_expectation,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            HandleError::Store(StoreError::Concurrency { actual: 0, .. })
        ),
        "{err:?}"
    );
    assert!(
        store
            .read_stream(&s, 1, Direction::Forwards, 1)
            .await
            .unwrap()
            .is_empty()
    );
}

/// Filtered `$all` reads keep the order and page by matching events only.
pub async fn filtered_reads_keep_commit_order_and_only_matching_events<S: EventStore + ?Sized>(
    store: Arc<S>,
) {
    let (mine, theirs) = (TenantId::new(), TenantId::new());
    let mut expected = Vec::new();
    for n in 0..6 {
        let tenant = if n % 2 == 0 { mine } else { theirs };
        let mut event = if n % 3 == 0 { opened("t") } else { added(n) };
        event.metadata.tenant_id = Some(tenant);
        if tenant == mine && event.event_type == "AmountAdded" {
            expected.push(event.event_id);
        }
        append(&*store, &stream(), ExpectedVersion::Any, vec![event])
            .await
            .unwrap();
    }
    read_all_until(&*store, None, 6).await;
    let filter = trellis_kernel::AllFilter {
        tenant_id: Some(mine),
        event_type: Some("AmountAdded".into()),
    };
    let page = store.read_all_filtered(None, 1, &filter).await.unwrap();
    assert_eq!(page.len(), 1);
    let rest = store
        .read_all_filtered(Some(page[0].global_position), 10, &filter)
        .await
        .unwrap();
    let seen: Vec<_> = page.iter().chain(&rest).map(|e| e.event_id).collect();
    assert_eq!(seen, expected);
    // By type alone, across organizations, paged.
    let by_type = trellis_kernel::AllFilter {
        tenant_id: None,
        event_type: Some("TallyOpened".into()),
    };
    let first = store.read_all_filtered(None, 1, &by_type).await.unwrap();
    let rest = store
        .read_all_filtered(Some(first[0].global_position), 10, &by_type)
        .await
        .unwrap();
    assert_eq!(first.len() + rest.len(), 2, "events 0 and 3 opened tallies");
    assert!(
        first
            .iter()
            .chain(&rest)
            .all(|e| e.event_type == "TallyOpened")
    );
    // A cursor that names no event is refused, not read as the end.
    let bogus = trellis_kernel::GlobalPosition(i64::MAX - 7);
    let error = store
        .read_all_filtered(Some(bogus), 10, &filter)
        .await
        .unwrap_err();
    assert!(
        matches!(error, StoreError::UnknownPosition(p) if p == bogus),
        "{error:?}"
    );
}

/// `head` names the last visible event, so "only new events" readers start there.
pub async fn the_head_is_the_last_event_in_commit_order<S: EventStore + ?Sized>(store: Arc<S>) {
    assert_eq!(store.head().await.unwrap(), None);
    for n in 1..=3 {
        append(&*store, &stream(), ExpectedVersion::Any, vec![added(n)])
            .await
            .unwrap();
    }
    let all = read_all_until(&*store, None, 3).await;
    assert_eq!(
        store.head().await.unwrap(),
        all.last().map(|e| e.global_position)
    );
}
