//! The consumer runtime: what every projector and reactive service runs on, whatever the
//! transport (Kafka consumer groups, or the in-process subscription of single-node mode).
//!
//! - [`EventSource`]: a transport hands out batches of events, takes acknowledgements and
//!   dead letters.
//! - [`EventHandler`]: what a consumer does with a batch.
//! - [`run_consumer`]: the loop between them: filter, drop recent duplicates, retry with
//!   backoff, isolate and dead-letter a poison event, acknowledge, drain on shutdown.
//! - [`projection`]: handlers that write read models in PostgreSQL with a per-stream guard in
//!   the same transaction (exactly-once effects), and blue/green rebuilds from the store.
//! - [`StoreSource`]: the in-process source over the store's `$all`.

pub mod commands;
mod consumer;
mod handler;
pub mod projection;
pub mod replay;
mod source;
mod stats;
mod store_source;
pub mod use_case;

pub use commands::{Commands, Shows, Written};
pub use consumer::{ConsumerOptions, ConsumerOutcome, run_consumer, spawn_consumer};
pub use handler::{EventHandler, HandlerError};
pub use source::{EventSource, SourceError};
pub use stats::ConsumerStats;
pub use store_source::StoreSource;
pub use use_case::{InvalidField, UseCaseError};

/// The consumer runtime's tables (dead letters, consumer checkpoints, projection
/// bookkeeping), migrated by their owner (ADR 0011).
pub fn migrations() -> trellis_store_postgres::migrations::Owned {
    trellis_store_postgres::migrations::Owned::new(
        "trellis-runtime",
        sqlx::migrate!("./migrations"),
    )
}
