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
