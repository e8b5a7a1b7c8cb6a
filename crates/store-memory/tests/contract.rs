//! The EventStore contract against the in-memory adapter.

use std::sync::Arc;

use trellis_store_memory::MemoryEventStore;

trellis_testkit::store_contract_tests!(|| async { Arc::new(MemoryEventStore::default()) });
