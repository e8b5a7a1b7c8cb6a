//! Application services of the development context.

pub mod catalog;
mod esco_import;

pub use esco_import::{ImportError, ImportReport, import_esco_skills};
