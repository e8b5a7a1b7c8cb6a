//! The content context's application side (seed 002, ADR 0012): where uploaded files live
//! ([`storage`]), the read model ([`library`]) and its use cases ([`use_cases`]), the HTTP
//! slice ([`http`]), hybrid search ([`search`]), the atomizer service ([`atomizer`]) and the
//! extraction worker it runs files through ([`extraction`]).

pub mod atomizer;
pub mod extraction;
pub mod http;
pub mod library;
pub mod search;
pub mod settings;
pub mod storage;
pub mod use_cases;

pub use atomizer::{Atomizer, SkillLinks};
pub use library::ContentLibrary;
pub use settings::ContentSettings;
