//! The black-box tests as one test binary: one link instead of one per file (see
//! docs/benchmarks.md, "Build"). Each file is a module, so a test's name is its module path,
//! e.g. `api_security::changing_the_password_ends_every_other_session`, and
//! `cargo nextest run -p trellis-tests api_security` selects one file's tests.
//!
//! A new file here needs a `mod` line below; shared helpers live in `support/` (the
//! `trellis_tests` library).

// Tests may unwrap: a panic is the failure report. Here once for every module.
#![allow(clippy::unwrap_used)]

mod api_cohort_workspaces;
mod api_cohorts;
mod api_content;
mod api_identity;
mod api_idps;
mod api_ops;
mod api_security;
mod api_skills;
mod audit_chain;
mod bus_consumers;
mod bus_faults;
mod context_modules;
mod esco_import;
mod event_store_ordering;
mod privacy;
