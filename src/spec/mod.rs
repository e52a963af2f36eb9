//! The parameter file: typed model, validation with JSON paths, defaults and tag inheritance (pure, no I/O).
//!
//! [`load`] turns a file into a [`Report`]: every error and warning with its JSON path, and the typed
//! [`model::Spec`] when there is no error. [`json_schema::parameter_file_schema`] describes the same
//! file for editors; both come from the one declaration in `shape`.

pub mod avro;
mod build;
pub mod duration;
pub mod filter;
mod issues;
pub mod json_schema;
pub mod kinds;
mod load;
pub mod model;
pub mod names;
pub mod recipes;
mod rules;
pub mod schedule;
pub mod shape;

pub use build::{DEFAULT_IMPORT_MAX_AGE, DEFAULT_MIN_PROVISIONED_TPS};
pub use issues::Issue;
pub use load::{MAX_FILE_BYTES, Report, load, load_value};
