//! Shared test support for every Trellis crate.
//!
//! - [`contract`]: the `EventStore` contract suite, written once and instantiated per adapter
//!   with [`store_contract_tests!`].
//! - [`harness`]: given/when/then for aggregates; every emitted event is checked against its
//!   JSON Schema in `events/`.
//! - [`schemas`]: the `events/` registry, and [`schemas::SchemaCheckingStore`], a store
//!   wrapper that validates every appended event (use it in integration tests).
//! - [`pg`]: a throwaway PostgreSQL database per test.

#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

pub mod contract;
pub mod harness;
pub mod pg;
pub mod schemas;
