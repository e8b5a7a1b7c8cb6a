//! The EventStore contract against PostgreSQL (a fresh database per test).

use std::sync::Arc;

use trellis_store_postgres::{PgEventStore, PgStoreOptions};

async fn fresh_store() -> Arc<PgEventStore> {
    let url = trellis_testkit::pg::fresh_database().await;
    let store = PgEventStore::connect(&url, PgStoreOptions::default())
        .await
        .expect("connect");
    store.migrate().await.expect("migrate");
    Arc::new(store)
}

trellis_testkit::store_contract_tests!(fresh_store);

/// The same contract with every single-event append beyond the first in flight grouped
/// (ADR 0018; by default grouping starts at 8 statements in flight, which few cases reach).
mod grouped_eagerly {
    use super::*;

    async fn fresh_store_grouping() -> Arc<PgEventStore> {
        let url = trellis_testkit::pg::fresh_database().await;
        let options = PgStoreOptions {
            group_commit: Some(trellis_store_postgres::GroupCommitOptions {
                statements: 1,
                flushers: 1,
            }),
            ..PgStoreOptions::default()
        };
        let store = PgEventStore::connect(&url, options).await.expect("connect");
        store.migrate().await.expect("migrate");
        Arc::new(store)
    }

    trellis_testkit::store_contract_tests!(fresh_store_grouping);
}

/// What the HTTP edge turns into 503 and 500 (`crates/edge/src/error.rs`): a database that
/// cannot be reached is `Unavailable`, one that answers with an error is `Backend`.
mod failures {
    use super::*;
    use trellis_kernel::{Direction, EventStore, StoreError, StreamId};

    fn stream() -> StreamId {
        StreamId::new("tally", uuid::Uuid::now_v7()).expect("stream id")
    }

    async fn read(store: &PgEventStore) -> StoreError {
        store
            .read_stream(&stream(), 1, Direction::Forwards, 10)
            .await
            .expect_err("the read fails")
    }

    #[tokio::test]
    async fn a_closed_pool_is_unavailable() {
        let store = fresh_store().await;
        store.pool().close().await;
        let error = read(&store).await;
        assert!(matches!(error, StoreError::Unavailable(_)), "{error:?}");
    }

    #[tokio::test]
    async fn a_connection_the_server_terminated_is_unavailable() {
        // One pooled connection, which the server then ends (SQLSTATE 57P01 on the next query,
        // or a closed socket).
        let url = trellis_testkit::pg::fresh_database().await;
        let options = PgStoreOptions {
            max_connections: 1,
            ..PgStoreOptions::default()
        };
        let store = PgEventStore::connect(&url, options).await.expect("connect");
        store.migrate().await.expect("migrate");
        let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(store.pool())
            .await
            .expect("pid");
        let admin = trellis_testkit::pg::with_database(&url, "postgres");
        let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&admin)
            .await
            .expect("admin connection");
        sqlx::query("SELECT pg_terminate_backend($1)")
            .bind(pid)
            .execute(&mut conn)
            .await
            .expect("terminate");
        // Termination is a signal: wait until the backend is gone.
        for _ in 0..100 {
            let alive: bool =
                sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $1)")
                    .bind(pid)
                    .fetch_one(&mut conn)
                    .await
                    .expect("pg_stat_activity");
            if !alive {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let error = read(&store).await;
        assert!(matches!(error, StoreError::Unavailable(_)), "{error:?}");
    }

    #[tokio::test]
    async fn a_query_the_database_refuses_is_a_backend_failure_not_an_outage() {
        let store = fresh_store().await;
        sqlx::query("ALTER TABLE events RENAME TO events_elsewhere")
            .execute(store.pool())
            .await
            .expect("rename");
        let error = read(&store).await;
        assert!(matches!(error, StoreError::Backend(_)), "{error:?}");
    }
}

/// The keyring contract against PostgreSQL (`subject_keys`, ADR 0017).
mod keyring {
    trellis_privacy::keyring_contract_tests!(trellis_store_postgres::keys::PgKeyring::new(
        super::fresh_store().await.pool().clone()
    ));
}
