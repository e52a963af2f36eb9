//! The parameter file: typed model, validation with JSON paths, defaults and tag inheritance (pure, no I/O).

pub mod avro;
pub mod duration;
pub mod filter;
pub mod kinds;
pub mod model;
pub mod schedule;
