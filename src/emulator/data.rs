//! The data behind the resources: dataset tables and trained models, keyed by the owning ARN.

use super::state::State;

/// Dataset contents and models. Kept beside [`State`] (not inside it) because it is large: it is
/// saved to its own files and never cloned for a response.
#[derive(Debug, Default)]
pub struct Data {}

impl Data {
    /// Drops the data of resources that no longer exist.
    pub fn retain_for(&mut self, _state: &State) {}
}
