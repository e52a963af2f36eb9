//! personalize-ops: runs the whole life of Amazon Personalize resources from parameter files.
//!
//! The library holds everything but the command line: the parameter-file model (`spec`), the planner
//! (`plan`, pure) and the reconciler that runs its plans (`reconcile`), the daemon (`daemon`) with its
//! ports and adapters (`intake`, `store`, `notify`, `metrics`, `objects`, `health`, `aws`), settings,
//! logging, and the built-in Personalize (`emulator`).

// Every public item is documented; the modules marked `allow(missing_docs)` are not there yet (the
// marker goes when the module is done, and new modules start documented).
#![deny(missing_docs)]
// Product code handles what comes from outside; tests may unwrap (clippy.toml).
#![deny(clippy::unwrap_used, clippy::expect_used)]

pub mod aws;
#[allow(missing_docs)]
pub mod daemon;
#[allow(missing_docs)]
pub mod emulator;
#[allow(missing_docs)]
pub mod health;
#[allow(missing_docs)]
pub mod intake;
pub mod locks;
pub mod logging;
#[allow(missing_docs)]
pub mod metrics;
#[allow(missing_docs)]
pub mod notify;
pub mod object_url;
pub mod objects;
#[allow(missing_docs)]
pub mod plan;
#[allow(missing_docs)]
pub mod reconcile;
#[allow(missing_docs)]
pub mod schedule;
#[allow(missing_docs)]
pub mod settings;
#[allow(missing_docs)]
pub mod spec;
#[allow(missing_docs)]
pub mod store;
