//! The identity application service and its read model.

pub mod projection;
pub mod service;
