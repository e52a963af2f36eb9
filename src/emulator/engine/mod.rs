//! The emulator's data engine: CSV imports checked against schemas, model training, recommendations,
//! filters and batch jobs, as pure functions over the object-store port.

pub mod filter_eval;
pub mod import;
pub mod recipes;
pub mod table;
pub mod values;
