//! Application services of the development context: the ESCO import, the read models
//! (catalog, plans) and the bundled ESCO occupations. The recommender service is its own
//! crate (`trellis-recommender-service`), so nothing else compiles its model runtime.

pub mod catalog;
mod esco_import;
pub mod occupations;
pub mod plans;

pub use esco_import::{ImportError, ImportReport, import_esco_skills};
