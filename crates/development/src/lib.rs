//! The development context (seed 000, Optima IDP): skills, learning resources, performance
//! reviews and individual development plans (IDPs), as pure deciders.
//!
//! The recommender is not here: it is a reactive service that reads these events and answers
//! `IdpCommand::RecordRecommendations` or `RecordRecommendationFailure`.

use trellis_kernel::{PersonalData, Subject};

pub mod esco;
pub mod idp;
pub mod limits;
pub mod resource;
pub mod review;
pub mod skill;
mod values;

pub use values::{Level, SkillLevel, ValueError};

/// Stream kinds of this context, routed to `trellis.development`.
pub const STREAM_KINDS: [&str; 4] = ["skill", "resource", "review", "idp"];

/// Event fields holding personal data, and whose (ADR 0017): review feedback is free text about
/// the employee reviewed, encrypted with their data key.
pub const PERSONAL_DATA: &[PersonalData] = &[PersonalData {
    event_type: "ReviewSubmitted",
    subject: Subject::Field("employee_id"),
    fields: &["feedback"],
}];
