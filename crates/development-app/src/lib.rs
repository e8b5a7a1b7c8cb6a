//! Application services of the development context: the ESCO import, the read models
//! (catalog, plans) and the recommender.

pub mod catalog;
mod esco_import;
pub mod plans;
pub mod recommender;

pub use esco_import::{ImportError, ImportReport, import_esco_skills};
