//! The identity context: who may do what, in which organization.
//!
//! Three aggregates, all pure deciders:
//! - [`organization`]: a tenant; created at sign-up.
//! - [`user`]: a member of one organization, with roles, an optional manager, a password hash
//!   (argon2id, computed by the caller: hashing is slow and random, so not in `decide`) and an
//!   active flag.
//! - [`email_claim`]: the reservation that makes e-mail addresses unique across Trellis (a
//!   login names only an e-mail). Its stream id is derived from the normalised address, so
//!   "claim if free" is an append with `ExpectedVersion::NoStream`.

use trellis_kernel::{PersonalData, Subject};

mod actor;
pub mod email_claim;
pub mod organization;
pub mod user;
mod values;

pub use actor::Actor;
pub use values::{DisplayName, Email, OrganizationName, Role, ValueError};

/// Stream kinds of this context, for routing to `trellis.identity`.
pub const STREAM_KINDS: [&str; 3] = [
    organization::Organization::KIND_NAME,
    user::User::KIND_NAME,
    email_claim::EmailClaim::KIND_NAME,
];

/// The event that erases a user (ADR 0017), for read models of other contexts that hold
/// their personal data and blank it on this event.
pub const SUBJECT_FORGOTTEN: &str = "SubjectForgotten";

/// Event fields holding personal data, and whose (ADR 0017): encrypted with the user's data key
/// before the append. The password hash goes too: erasing a user leaves nothing of theirs.
pub const PERSONAL_DATA: &[PersonalData] = &[
    PersonalData {
        event_type: "UserRegistered",
        subject: Subject::Stream,
        fields: &["email", "display_name", "password_hash"],
    },
    PersonalData {
        event_type: "PasswordChanged",
        subject: Subject::Stream,
        fields: &["password_hash"],
    },
];
