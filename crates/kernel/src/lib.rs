//! The Trellis event-sourcing kernel.
//!
//! Everything a bounded context needs to be event sourced, and nothing that talks to a
//! database or a broker: typed ids, the event envelope of SPEC §2, the decider shape
//! (`decide`/`evolve`), the [`EventStore`] port with its typed errors, a command handler
//! that retries on optimistic-concurrency conflicts and honours idempotency keys, an upcaster
//! chain, and a catch-up subscription to `$all` built on the port alone.
//!
//! Adapters (`trellis-store-postgres`, `trellis-store-memory`) implement the port; the same
//! contract suite (`trellis-testkit`) runs against each of them.

pub mod aggregate;
pub mod envelope;
pub mod handler;
pub mod ids;
pub mod personal;
pub mod store;
pub mod subscription;
pub mod text;
pub mod upcast;

pub use aggregate::{Aggregate, DomainEvent, EventDecodeError};
pub use envelope::{Metadata, MetadataError, NewEvent, NewEventError, RecordedEvent};
pub use handler::{CommandContext, CommandHandler, CommandOutcome, HandleError};
pub use ids::{
    ActorId, EventId, GlobalPosition, IdError, StreamId, StreamVersion, TenantId, TraceId,
};
pub use personal::{PersonalData, Subject};
pub use store::{
    AllFilter, AppendOptions, AppendResult, Direction, EventStore, ExpectedVersion, IdempotencyKey,
    StoreError, StoreLimits,
};
pub use strum::VariantNames;
pub use subscription::{AllSubscription, SubscriptionOptions};
pub use text::{TextError, TextProblem};
pub use upcast::{UpcastError, Upcaster, Upcasters};
