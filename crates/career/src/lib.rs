//! The career context (SPEC §3), pure. Only what other contexts already need exists so far:
//! an employee's **skill profile**, the skills they declare with a self-assessed level. The
//! recommender uses declared levels where no review has rated a skill.

pub mod skill_profile;
