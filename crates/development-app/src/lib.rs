//! Application services of the development context.

mod esco_import;

pub use esco_import::{ImportError, ImportReport, import_esco_skills};
