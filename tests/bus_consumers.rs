//! The consumer contract, run on both transports: Kafka (relay + consumer groups on the dev
//! cluster) and in-process (single-node mode). Real PostgreSQL, real Kafka protocol.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use rdkafka::message::Message;
use trellis_bus_kafka::DevCluster;
use trellis_demo::TallyCommand;
use trellis_kernel::{
    AppendOptions, Direction, EventStore, ExpectedVersion, Metadata, NewEvent, StreamId,
};
use trellis_runtime::ConsumerOptions;
use trellis_tests::*;

const WAIT: Duration = Duration::from_secs(60);

/// Runs `scenario` on the in-process transport.
macro_rules! on_both_transports {
    ($scenario:ident, $in_process:ident, $kafka:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $in_process() {
            $scenario(Transport::InProcess, None).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $kafka() {
            let cluster = DevCluster::start(3, &kafka_config(""), &routing()).unwrap();
            let config = kafka_config(&cluster.bootstrap_servers());
            $scenario(Transport::Kafka(config), Some(&cluster)).await;
        }
    };
}

on_both_transports!(
    projection_and_reaction_follow_the_store,
    projection_and_reaction_follow_the_store_in_process,
    projection_and_reaction_follow_the_store_through_kafka
);
on_both_transports!(
    a_poison_event_is_dead_lettered_and_later_events_flow,
    a_poison_event_is_dead_lettered_and_later_events_flow_in_process,
    a_poison_event_is_dead_lettered_and_later_events_flow_through_kafka
);
on_both_transports!(
    a_restarted_consumer_resumes_without_loss_or_double_effects,
    a_restarted_consumer_resumes_without_loss_or_double_effects_in_process,
    a_restarted_consumer_resumes_without_loss_or_double_effects_through_kafka
);

fn relay_if_kafka(
    transport: &Transport,
    store: &Arc<trellis_store_postgres::PgEventStore>,
    stop: &Stop,
) -> Option<tokio::task::JoinHandle<()>> {
    match transport {
        Transport::Kafka(config) => Some(spawn_relay(store, config, stop.signal())),
        Transport::InProcess => None,
    }
}

async fn projection_and_reaction_follow_the_store(transport: Transport, _: Option<&DevCluster>) {
    let store = fresh_pg_store(16).await;
    ensure_tally_totals(&store).await;
    let stop = Stop::new();
    let relay = relay_if_kafka(&transport, &store, &stop);
    let (projector, _) = spawn_consumer(
        &transport,
        &store,
        tally_totals_handler(&store),
        ConsumerOptions::default(),
        stop.signal(),
    )
    .await;
    let certifier: Arc<dyn trellis_runtime::EventHandler> =
        Arc::new(trellis_demo_app::Certifier::new(schema_checked(&store)));
    let (reactor, _) = spawn_consumer(
        &transport,
        &store,
        certifier,
        ConsumerOptions::default(),
        stop.signal(),
    )
    .await;

    let tallies = Tallies::new(&store);
    let mut streams = Vec::new();
    for n in 1..=5 {
        let stream = tallies.open_with(&[n, 10, 100]).await;
        tallies.run(&stream, TallyCommand::Close).await;
        streams.push(stream);
    }
    wait_until(WAIT, "every tally certified in the read model", || async {
        let rows = tally_rows(&store).await;
        rows.len() == 5 && rows.iter().all(|r| r.3 == "certified" && r.4 == 6)
    })
    .await;
    assert_eq!(tally_rows(&store).await, expected_tally_rows(&store).await);
    let rows = tally_rows(&store).await;
    for (n, stream) in streams.iter().enumerate() {
        let row = rows.iter().find(|r| r.0 == stream.id()).unwrap();
        assert_eq!((row.1, row.2), (n as i64 + 1 + 110, 3));
    }

    // The reaction's event carries the trigger's correlation, and the trigger as causation.
    let events = store
        .read_stream(&streams[0], 1, Direction::Forwards, 10)
        .await
        .unwrap();
    let closed = events
        .iter()
        .find(|e| e.event_type == "TallyClosed")
        .unwrap();
    let certified = events
        .iter()
        .find(|e| e.event_type == "TallyCertified")
        .unwrap();
    assert_eq!(certified.metadata.causation_id, Some(closed.event_id));
    assert_eq!(
        certified.metadata.correlation_id,
        closed.metadata.correlation_id
    );
    assert_eq!(certified.metadata.tenant_id, Some(tallies.tenant));
    assert_eq!(
        events
            .iter()
            .filter(|e| e.event_type == "TallyCertified")
            .count(),
        1
    );

    stop.stop();
    projector.await.unwrap();
    reactor.await.unwrap();
    if let Some(relay) = relay {
        relay.await.unwrap();
    }
}

async fn a_poison_event_is_dead_lettered_and_later_events_flow(
    transport: Transport,
    _: Option<&DevCluster>,
) {
    let store = fresh_pg_store(16).await;
    ensure_tally_totals(&store).await;
    let stop = Stop::new();
    let relay = relay_if_kafka(&transport, &store, &stop);
    let handler = tally_totals_handler(&store);
    let (projector, stats) =
        spawn_consumer(&transport, &store, handler, quick_options(), stop.signal()).await;

    let tallies = Tallies::new(&store);
    let victim = tallies.open_with(&[1]).await;
    let poison = NewEvent::new(
        "AmountAdded",
        2,
        serde_json::json!({ "amount": "lots", "unit": "point" }),
        Metadata::default(),
    )
    .unwrap();
    let poison_id = poison.event_id;
    store
        .append(
            &victim,
            ExpectedVersion::Any,
            vec![poison],
            AppendOptions::default(),
        )
        .await
        .unwrap();
    let later = tallies.open_with(&[5, 6]).await;

    wait_until(WAIT, "events after the poison to be projected", || async {
        tally_rows(&store)
            .await
            .iter()
            .any(|r| r.0 == later.id() && r.1 == 11)
    })
    .await;
    wait_until(WAIT, "the poison to be dead-lettered", || async {
        stats.dead_lettered.load(Ordering::Relaxed) == 1
    })
    .await;

    match &transport {
        Transport::InProcess => {
            let (event_id, error): (uuid::Uuid, String) = sqlx::query_as(
                "SELECT event_id, error FROM dead_letters WHERE consumer = 'projection.tally_totals'",
            )
            .fetch_one(store.pool())
            .await
            .unwrap();
            assert_eq!(event_id, poison_id.as_uuid());
            assert!(error.contains("does not decode"), "{error}");
        }
        Transport::Kafka(config) => {
            let topic = config.dead_letter_topic("projection.tally_totals");
            let consumer = consumer_from_start(config, &[&topic]);
            let record = tokio::time::timeout(WAIT, consumer.recv())
                .await
                .unwrap()
                .unwrap();
            let headers = record_headers(&record);
            assert_eq!(headers["ce_id"], poison_id.to_string());
            assert_eq!(headers["ce_type"], "trellis.fixture.AmountAdded.v2");
            assert!(
                headers["trellis_error"].contains("does not decode"),
                "{headers:?}"
            );
            assert_eq!(headers["trellis_consumer"], "projection.tally_totals");
            assert_eq!(record.key(), Some(victim.to_string().as_bytes()));
        }
    }
    // The victim's good events were applied; only the poison is missing.
    let victim_row = tally_rows(&store)
        .await
        .into_iter()
        .find(|r| r.0 == victim.id())
        .unwrap();
    assert_eq!((victim_row.1, victim_row.2), (1, 1));

    stop.stop();
    projector.await.unwrap();
    if let Some(relay) = relay {
        relay.await.unwrap();
    }
}

async fn a_restarted_consumer_resumes_without_loss_or_double_effects(
    transport: Transport,
    _: Option<&DevCluster>,
) {
    let store = fresh_pg_store(16).await;
    ensure_tally_totals(&store).await;
    let relay_stop = Stop::new();
    let relay = relay_if_kafka(&transport, &store, &relay_stop);
    let tallies = Tallies::new(&store);
    let first = tallies.open_with(&[1, 2]).await;

    let stop = Stop::new();
    let (projector, _) = spawn_consumer(
        &transport,
        &store,
        tally_totals_handler(&store),
        ConsumerOptions::default(),
        stop.signal(),
    )
    .await;
    wait_until(WAIT, "the first tally", || async {
        tally_rows(&store)
            .await
            .iter()
            .any(|r| r.0 == first.id() && r.1 == 3)
    })
    .await;
    stop.stop();
    projector.await.unwrap();

    // While it is down, more happens.
    tallies.run(&first, TallyCommand::Add { amount: 4 }).await;
    let second = tallies.open_with(&[10]).await;

    let stop = Stop::new();
    let (projector, _) = spawn_consumer(
        &transport,
        &store,
        tally_totals_handler(&store),
        ConsumerOptions::default(),
        stop.signal(),
    )
    .await;
    wait_until(WAIT, "the read model to catch up", || async {
        let rows = tally_rows(&store).await;
        !rows.is_empty() && rows == expected_tally_rows(&store).await
    })
    .await;
    let rows = tally_rows(&store).await;
    let row = |id: uuid::Uuid| rows.iter().find(|r| r.0 == id).cloned().unwrap();
    assert_eq!((row(first.id()).1, row(first.id()).2), (7, 3));
    assert_eq!((row(second.id()).1, row(second.id()).2), (10, 1));
    stop.stop();
    projector.await.unwrap();
    relay_stop.stop();
    if let Some(relay) = relay {
        relay.await.unwrap();
    }
    let _ = StreamId::parse;
}
