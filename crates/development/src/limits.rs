//! Free-text limits of the development context, in characters (Unicode scalar values). Every
//! one is listed in `docs/security.md`, "Input limits"; the character rules (no control
//! characters, no bidirectional overrides, http(s) links only) are `trellis_kernel::text`'s.

/// A skill's name.
pub const SKILL_NAME_MAX: usize = 200;
/// A skill's description (multi-line). ESCO's longest is under 900.
pub const SKILL_DESCRIPTION_MAX: usize = 5_000;
/// One alias of a skill.
pub const SKILL_ALIAS_MAX: usize = 200;
/// Aliases per skill.
pub const SKILL_ALIASES_MAX: usize = 50;
/// A skill's ESCO concept URI (an http(s) URL).
pub const ESCO_URI_MAX: usize = 500;
/// A resource's title.
pub const RESOURCE_TITLE_MAX: usize = 300;
/// A resource's description (multi-line).
pub const RESOURCE_DESCRIPTION_MAX: usize = 10_000;
/// A resource's URL (http or https only).
pub const RESOURCE_URL_MAX: usize = 2_048;
/// A review's period, e.g. `2026-H2`.
pub const REVIEW_PERIOD_MAX: usize = 50;
/// A review's written feedback (multi-line).
pub const REVIEW_FEEDBACK_MAX: usize = 10_000;
/// An IDP's title, and an IDP item's title.
pub const IDP_TITLE_MAX: usize = 200;
/// An IDP's target role as stored (the resolved ESCO occupation URI).
pub const IDP_TARGET_ROLE_MAX: usize = 500;
