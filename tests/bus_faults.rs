//! Faults: kill the relay and the projector at random points, take the brokers down during
//! a burst, rebuild while writes continue. Real PostgreSQL and the dev cluster's Kafka
//! protocol, with its fault injection.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;
use rdkafka::message::{Headers, Message};
use trellis_bus_kafka::{DevCluster, KafkaConfig};
use trellis_demo::TallyCommand;
use trellis_kernel::{
    AppendOptions, EventId, EventStore, ExpectedVersion, Metadata, NewEvent, StreamId,
};
use trellis_runtime::ConsumerOptions;
use trellis_store_postgres::PgEventStore;
use trellis_tests::*;

const WAIT: Duration = Duration::from_secs(90);

fn added(amount: i64) -> NewEvent {
    NewEvent::new(
        "AmountAdded",
        2,
        serde_json::json!({ "amount": amount, "unit": "point" }),
        Metadata::default(),
    )
    .unwrap()
}

fn random_ms(range: std::ops::Range<u64>) -> Duration {
    Duration::from_millis(rand::rng().random_range(range))
}

/// Appends `count` events round-robin over `streams`, with small random pauses.
fn spawn_writer(
    store: &Arc<PgEventStore>,
    streams: Vec<StreamId>,
    count: usize,
) -> tokio::task::JoinHandle<Vec<EventId>> {
    let store = Arc::clone(store);
    tokio::spawn(async move {
        let mut ids = Vec::with_capacity(count);
        for i in 0..count {
            let event = added(1 + (i % 7) as i64);
            ids.push(event.event_id);
            let stream = &streams[i % streams.len()];
            store
                .append(
                    stream,
                    ExpectedVersion::Any,
                    vec![event],
                    AppendOptions::default(),
                )
                .await
                .unwrap();
            if i % 10 == 0 {
                tokio::time::sleep(random_ms(0..4)).await;
            }
        }
        ids
    })
}

/// Reads a topic from the beginning until `want` event ids were seen; returns, per key, the
/// stream versions in the order they arrived (duplicates included).
pub(crate) async fn read_topic(
    config: &KafkaConfig,
    topic: &str,
    want: &HashSet<EventId>,
) -> HashMap<String, Vec<u64>> {
    let consumer = consumer_from_start(config, &[topic]);
    let mut seen = HashSet::new();
    let mut per_key: HashMap<String, Vec<u64>> = HashMap::new();
    let deadline = Instant::now() + WAIT;
    while !want.is_subset(&seen) {
        assert!(
            Instant::now() < deadline,
            "only {} of {} events reached the topic",
            seen.len(),
            want.len()
        );
        let Ok(record) = tokio::time::timeout(Duration::from_secs(5), consumer.recv()).await else {
            continue;
        };
        let record = record.unwrap();
        let event = trellis_bus_kafka::decode_record(&record).unwrap();
        let key = String::from_utf8(record.key().unwrap().to_vec()).unwrap();
        assert_eq!(key, event.stream_id.to_string(), "key = stream id");
        assert!(record.headers().is_some_and(|h| h.count() >= 9));
        seen.insert(event.event_id);
        per_key.entry(key).or_default().push(event.stream_version);
    }
    per_key
}

/// Every key's first occurrences are 1, 2, 3, …: nothing lost, nothing out of order.
fn assert_in_stream_order(per_key: &HashMap<String, Vec<u64>>) {
    for (key, versions) in per_key {
        let mut firsts = Vec::new();
        let mut seen = HashSet::new();
        for v in versions {
            if seen.insert(*v) {
                firsts.push(*v);
            }
        }
        let expected: Vec<u64> = (1..=firsts.len() as u64).collect();
        assert_eq!(firsts, expected, "stream {key} arrived out of order");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_relay_at_random_points_loses_nothing_and_keeps_stream_order() {
    let cluster = DevCluster::start(3, &kafka_config(""), &routing()).unwrap();
    let config = kafka_config(&cluster.bootstrap_servers());
    let store = fresh_pg_store(16).await;
    let streams: Vec<StreamId> = (0..8)
        .map(|_| StreamId::new("tally", uuid::Uuid::now_v7()).unwrap())
        .collect();
    let writer = spawn_writer(&store, streams, 400);
    for _ in 0..20 {
        let stop = Stop::new();
        let relay = spawn_relay(&store, &config, stop.signal());
        tokio::time::sleep(random_ms(5..150)).await;
        relay.abort(); // no cleanup: a crash at whatever await point it reached
        let _ = relay.await;
    }
    let ids: HashSet<EventId> = writer.await.unwrap().into_iter().collect();
    let stop = Stop::new();
    let relay = spawn_relay(&store, &config, stop.signal());
    let per_key = read_topic(&config, &config.topic("fixture"), &ids).await;
    assert_eq!(per_key.len(), 8);
    assert_in_stream_order(&per_key);
    stop.stop();
    relay.await.unwrap();
}

/// Kills the projector `runs` times at random points while events keep coming, then checks
/// the read model against the store.
async fn kill_the_projector(transport: Transport, runs: usize, life: std::ops::Range<u64>) {
    let store = fresh_pg_store(16).await;
    ensure_tally_totals(&store).await;
    let relay_stop = Stop::new();
    if let Transport::Kafka(config) = &transport {
        spawn_relay(&store, config, relay_stop.signal());
    }
    let tallies = Tallies::new(&store);
    let mut streams = Vec::new();
    for _ in 0..12 {
        streams.push(tallies.open_with(&[]).await);
    }
    let writer = spawn_writer(&store, streams, 1500);
    for _ in 0..runs {
        let (projector, _) = spawn_consumer(
            &transport,
            &store,
            tally_totals_handler(&store),
            ConsumerOptions::default(),
            std::future::pending::<()>(),
        )
        .await;
        tokio::time::sleep(random_ms(life.clone())).await;
        projector.abort(); // mid-batch: the transaction in flight is dropped
        let _ = projector.await;
    }
    writer.await.unwrap();
    let stop = Stop::new();
    let (projector, _) = spawn_consumer(
        &transport,
        &store,
        tally_totals_handler(&store),
        ConsumerOptions::default(),
        stop.signal(),
    )
    .await;
    wait_until(WAIT, "the read model to equal the store", || async {
        let rows = tally_rows(&store).await;
        !rows.is_empty() && rows == expected_tally_rows(&store).await
    })
    .await;
    stop.stop();
    projector.await.unwrap();
    relay_stop.stop();

    // And equal to a from-scratch rebuild.
    let live = tally_rows(&store).await;
    trellis_runtime::projection::rebuild(
        store.pool(),
        &*store,
        &trellis_demo_app::TallyTotals,
        |_| {},
    )
    .await
    .unwrap();
    assert_eq!(tally_rows(&store).await, live);
    let additions: i64 = live.iter().map(|r| i64::from(r.2)).sum();
    assert_eq!(additions, 1500, "every addition applied exactly once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_projector_mid_batch_twenty_times_applies_every_event_once() {
    kill_the_projector(Transport::InProcess, 20, 10..120).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_a_kafka_projector_mid_batch_applies_every_event_once() {
    let cluster = DevCluster::start(3, &kafka_config(""), &routing()).unwrap();
    let config = kafka_config(&cluster.bootstrap_servers());
    kill_the_projector(Transport::Kafka(config), 5, 500..2500).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_outage_during_a_burst_loses_nothing() {
    let cluster = DevCluster::start(3, &kafka_config(""), &routing()).unwrap();
    let config = kafka_config(&cluster.bootstrap_servers());
    let store = fresh_pg_store(16).await;
    let stop = Stop::new();
    let relay = spawn_relay(&store, &config, stop.signal());
    let stream = StreamId::new("tally", uuid::Uuid::now_v7()).unwrap();
    store
        .append(
            &stream,
            ExpectedVersion::Any,
            vec![added(1)],
            AppendOptions::default(),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;

    cluster.broker_down(-1).unwrap();
    let started = Instant::now();
    let mut ids = HashSet::new();
    for i in 0..300 {
        let event = added(1 + i % 5);
        ids.insert(event.event_id);
        let s = StreamId::new("tally", uuid::Uuid::now_v7()).unwrap();
        store
            .append(
                &s,
                ExpectedVersion::NoStream,
                vec![event],
                AppendOptions::default(),
            )
            .await
            .unwrap();
    }
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "commands keep being accepted while the brokers are down"
    );
    tokio::time::sleep(Duration::from_secs(4)).await;
    cluster.broker_up(-1).unwrap();

    let per_key = read_topic(&config, &config.topic("fixture"), &ids).await;
    assert!(per_key.len() >= 300);
    assert_in_stream_order(&per_key);
    stop.stop();
    relay.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebuilding_while_writes_continue_ends_equal_to_the_live_projection() {
    let store = fresh_pg_store(16).await;
    ensure_tally_totals(&store).await;
    let tallies = Tallies::new(&store);
    let mut streams = Vec::new();
    for _ in 0..10 {
        streams.push(tallies.open_with(&[1]).await);
    }
    let stop = Stop::new();
    let (projector, _) = spawn_consumer(
        &Transport::InProcess,
        &store,
        tally_totals_handler(&store),
        ConsumerOptions::default(),
        stop.signal(),
    )
    .await;
    let writer = spawn_writer(&store, streams.clone(), 3000);
    tokio::time::sleep(Duration::from_millis(300)).await;
    for _ in 0..3 {
        trellis_runtime::projection::rebuild(
            store.pool(),
            &*store,
            &trellis_demo_app::TallyTotals,
            |_| {},
        )
        .await
        .unwrap();
    }
    writer.await.unwrap();
    tallies.run(&streams[0], TallyCommand::Close).await;
    wait_until(
        WAIT,
        "the live projection to catch up after the rebuilds",
        || async {
            let rows = tally_rows(&store).await;
            !rows.is_empty() && rows == expected_tally_rows(&store).await
        },
    )
    .await;
    let rows = tally_rows(&store).await;
    assert_eq!(rows.iter().map(|r| i64::from(r.2)).sum::<i64>(), 3010);
    stop.stop();
    projector.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_projectors_of_one_projection_racing_never_apply_an_event_twice() {
    // What a zombie consumer during a rebalance looks like: two appliers of the same events.
    let store = fresh_pg_store(16).await;
    ensure_tally_totals(&store).await;
    let tallies = Tallies::new(&store);
    let mut streams = Vec::new();
    for _ in 0..6 {
        streams.push(tallies.open_with(&[]).await);
    }
    let stop = Stop::new();
    let mut projectors = Vec::new();
    for _ in 0..3 {
        // Separate checkpoints, same read model: each sees every event.
        let source = trellis_runtime::StoreSource::resume(
            Arc::clone(&store),
            store.pool().clone(),
            &format!("racer-{}", uuid::Uuid::now_v7()),
            trellis_kernel::SubscriptionOptions {
                batch_size: 17,
                poll_interval: Duration::from_millis(2),
            },
        )
        .await
        .unwrap();
        let (task, _) = trellis_runtime::spawn_consumer(
            Box::new(source),
            tally_totals_handler(&store),
            ConsumerOptions::default(),
            stop.signal(),
        );
        projectors.push(task);
    }
    spawn_writer(&store, streams, 900).await.unwrap();
    wait_until(WAIT, "the racing projectors to converge", || async {
        let rows = tally_rows(&store).await;
        !rows.is_empty() && rows == expected_tally_rows(&store).await
    })
    .await;
    stop.stop();
    for p in projectors {
        p.await.unwrap();
    }
    let additions: i64 = tally_rows(&store)
        .await
        .iter()
        .map(|r| i64::from(r.2))
        .sum();
    assert_eq!(additions, 900);
}

/// A relay over `store` with its own producer settings; returns its task and counters.
fn spawn_relay_with(
    store: &Arc<PgEventStore>,
    config: &KafkaConfig,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> (
    tokio::task::JoinHandle<()>,
    Arc<trellis_bus_kafka::RelayStats>,
) {
    let relay = trellis_bus_kafka::Relay::new(
        Arc::clone(store),
        store.pool().clone(),
        config.clone(),
        routing(),
        trellis_bus_kafka::RelayOptions {
            retry_poll_interval: Duration::from_millis(100),
            ..trellis_bus_kafka::RelayOptions::default()
        },
    )
    .unwrap();
    let stats = relay.stats();
    (
        tokio::spawn(async move { relay.run(stop).await.unwrap() }),
        stats,
    )
}

async fn parked_rows(store: &PgEventStore) -> Vec<trellis_store_postgres::parked::ParkedRecord> {
    trellis_store_postgres::parked::list(store.pool(), None, 100)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_the_broker_refuses_is_parked_and_the_rest_goes_on_until_a_retry_publishes_it() {
    use trellis_store_postgres::parked::{self, ParkedState};

    let cluster = DevCluster::start(3, &kafka_config(""), &routing()).unwrap();
    // A producer that refuses records over 16 KiB: librdkafka answers MSG_SIZE_TOO_LARGE at
    // once, a permanent error, exactly as it does for a record over the default 1,000,000.
    let mut small = kafka_config(&cluster.bootstrap_servers());
    small.message_max_bytes = 16 * 1024;
    let store = fresh_pg_store(16).await;
    let stop = Stop::new();
    let (relay, stats) = spawn_relay_with(&store, &small, stop.signal());

    // Ordinary records, then one the producer refuses (well within the store's limit), then
    // more ordinary records on the same stream and on another organization's stream.
    let a = StreamId::new("tally", uuid::Uuid::now_v7()).unwrap();
    let b = StreamId::new("tally", uuid::Uuid::now_v7()).unwrap();
    let big = NewEvent::new(
        "AmountAdded",
        2,
        serde_json::json!({ "amount": 1, "unit": "x".repeat(40_000) }),
        Metadata::default(),
    )
    .unwrap();
    let big_id = big.event_id;
    let mut ordinary = HashSet::new();
    let append = async |stream: &StreamId, event: NewEvent| {
        store
            .append(
                stream,
                ExpectedVersion::Any,
                vec![event],
                AppendOptions::default(),
            )
            .await
            .unwrap()
            .last_version
    };
    for (stream, amount) in [(&a, 1), (&b, 2)] {
        let event = added(amount);
        ordinary.insert(event.event_id);
        append(stream, event).await;
    }
    assert_eq!(append(&a, big).await, 2);
    for (stream, amount) in [(&a, 3), (&b, 4), (&a, 5)] {
        let event = added(amount);
        ordinary.insert(event.event_id);
        append(stream, event).await;
    }

    // Everything after the refused record is published and consumed; it is not.
    let per_key = read_topic(&small, &small.topic("fixture"), &ordinary).await;
    let mut a_versions = per_key[&a.to_string()].clone();
    a_versions.dedup();
    assert_eq!(
        a_versions,
        vec![1, 3, 4],
        "stream a goes on past the parked v2"
    );
    assert_eq!(per_key[&b.to_string()].first(), Some(&1));

    // The refused record is parked with its error, counted, and the checkpoint is past it.
    wait_until(WAIT, "the refused record to be parked", || async {
        parked_rows(&store).await.len() == 1
    })
    .await;
    let row = parked_rows(&store).await.remove(0);
    assert_eq!(row.event_id, big_id.as_uuid());
    assert_eq!(
        (row.stream_id.as_str(), row.stream_version),
        (a.to_string().as_str(), 2)
    );
    assert_eq!(row.topic, small.topic("fixture"));
    assert_eq!(row.state(), ParkedState::Parked);
    assert!(
        row.error.contains("MessageSizeTooLarge"),
        "the producer's error is kept: {}",
        row.error
    );
    assert_eq!(stats.parked.load(std::sync::atomic::Ordering::Relaxed), 1);
    assert_eq!(parked::counts(store.pool()).await.unwrap().parked, 1);
    wait_until(WAIT, "the checkpoint to pass the parked record", || async {
        let checkpoint: Option<i64> = sqlx::query_scalar(
            "SELECT global_position FROM relay_checkpoints WHERE name = 'relay'",
        )
        .fetch_optional(store.pool())
        .await
        .unwrap();
        checkpoint.is_some_and(|c| c > row.global_position)
    })
    .await;

    // Retrying with the same limit parks it again (one more attempt), and nothing else stalls.
    assert_eq!(
        parked::request_retry(store.pool(), big_id.as_uuid(), None)
            .await
            .unwrap(),
        1
    );
    wait_until(WAIT, "the retry to be refused again", || async {
        parked_rows(&store).await[0].attempts == 2
    })
    .await;
    assert_eq!(parked_rows(&store).await[0].state(), ParkedState::Parked);
    stop.stop();
    relay.await.unwrap();

    // Raise the limit (the default producer) and retry: the record is published, out of order.
    let config = kafka_config(&cluster.bootstrap_servers());
    let stop = Stop::new();
    let (relay, stats) = spawn_relay_with(&store, &config, stop.signal());
    assert_eq!(
        parked::request_retry(store.pool(), big_id.as_uuid(), None)
            .await
            .unwrap(),
        1
    );
    let per_key = read_topic(&config, &config.topic("fixture"), &HashSet::from([big_id])).await;
    assert!(per_key[&a.to_string()].contains(&2));
    wait_until(WAIT, "the record to be marked republished", || async {
        parked_rows(&store).await[0].state() == ParkedState::Republished
    })
    .await;
    let row = parked_rows(&store).await.remove(0);
    assert!(row.retried_at.is_some() && row.retry_requested_at.is_none());
    assert_eq!(
        stats.republished.load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    let counts = parked::counts(store.pool()).await.unwrap();
    assert_eq!((counts.parked, counts.republished), (0, 1));
    stop.stop();
    relay.await.unwrap();
}
