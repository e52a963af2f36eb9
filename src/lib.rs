//! personalize-ops: runs the whole life of Amazon Personalize resources from parameter files.
//!
//! The library holds everything but the command line: the parameter-file model (`spec`), the planner
//! (`plan`, pure) and the reconciler that runs its plans (`reconcile`), the daemon (`daemon`) with its
//! ports and adapters (`intake`, `store`, `notify`, `metrics`, `objects`, `health`, `aws`), settings,
//! logging, and the built-in Personalize (`emulator`).

pub mod aws;
pub mod daemon;
pub mod emulator;
pub mod health;
pub mod intake;
pub mod logging;
pub mod metrics;
pub mod notify;
pub mod object_url;
pub mod objects;
pub mod plan;
pub mod reconcile;
pub mod schedule;
pub mod settings;
pub mod spec;
pub mod store;
