//! Helpers shared by the black-box tests in this folder.

#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

use std::sync::Arc;

use trellis_store_postgres::{PgEventStore, PgStoreOptions};

/// A migrated event store on a fresh database.
pub async fn fresh_pg_store(connections: u32) -> Arc<PgEventStore> {
    let url = trellis_testkit::pg::fresh_database().await;
    let options = PgStoreOptions {
        max_connections: connections,
        ..PgStoreOptions::default()
    };
    let store = PgEventStore::connect(&url, options).await.unwrap();
    store.migrate().await.unwrap();
    Arc::new(store)
}
