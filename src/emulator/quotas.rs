//! Service quotas the emulator enforces, adjustable per emulator (docs/personalize.md#quotas-and-durations).
//!
//! Most Personalize quotas are adjustable on a real account, so tests and local setups may need
//! other values than the defaults; every limit lives here instead of in the operation that checks it.

use serde::{Deserialize, Serialize};

use super::clock::overrides;

/// Limits answered with `LimitExceededException` once reached. The defaults are the real ones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct Quotas {
    /// Dataset groups per region that are not being deleted (real: 5, adjustable).
    pub dataset_groups: usize,
    /// Schemas per region (real: 500).
    pub schemas: usize,
    /// Import jobs per region in `CREATE PENDING`/`CREATE IN_PROGRESS` (real: 5, not adjustable).
    pub pending_import_jobs: usize,
    /// Solution versions per region pending, in progress or stopping (real: 20, adjustable).
    pub pending_solution_versions: usize,
    /// Solutions per dataset group (real: 10, adjustable).
    pub solutions_per_group: usize,
    /// Campaigns per dataset group (real: 5, adjustable).
    pub campaigns_per_group: usize,
    /// Filters per dataset group (real: 30, adjustable).
    pub filters_per_group: usize,
    /// Recommenders per dataset group (real: 5).
    pub recommenders_per_group: usize,
    /// Batch inference jobs per region pending or in progress (real: 5, adjustable).
    pub pending_batch_inference_jobs: usize,
    /// Batch segment jobs per region pending or in progress (real: 5).
    pub pending_batch_segment_jobs: usize,
}

impl Default for Quotas {
    fn default() -> Self {
        Self {
            dataset_groups: 5,
            schemas: 500,
            pending_import_jobs: 5,
            pending_solution_versions: 20,
            solutions_per_group: 10,
            campaigns_per_group: 5,
            filters_per_group: 30,
            recommenders_per_group: 5,
            pending_batch_inference_jobs: 5,
            pending_batch_segment_jobs: 5,
        }
    }
}

/// The names `--quotas` accepts, with the field each sets.
const NAMES: &[&str] = &[
    "dataset-groups",
    "schemas",
    "pending-import-jobs",
    "pending-solution-versions",
    "solutions-per-group",
    "campaigns-per-group",
    "filters-per-group",
    "recommenders-per-group",
    "pending-batch-inference-jobs",
    "pending-batch-segment-jobs",
];

impl Quotas {
    fn slot(&mut self, name: &str) -> Option<&mut usize> {
        Some(match name {
            "dataset-groups" => &mut self.dataset_groups,
            "schemas" => &mut self.schemas,
            "pending-import-jobs" => &mut self.pending_import_jobs,
            "pending-solution-versions" => &mut self.pending_solution_versions,
            "solutions-per-group" => &mut self.solutions_per_group,
            "campaigns-per-group" => &mut self.campaigns_per_group,
            "filters-per-group" => &mut self.filters_per_group,
            "recommenders-per-group" => &mut self.recommenders_per_group,
            "pending-batch-inference-jobs" => &mut self.pending_batch_inference_jobs,
            "pending-batch-segment-jobs" => &mut self.pending_batch_segment_jobs,
            _ => return None,
        })
    }

    /// Applies `NAME=N,...` overrides (`dataset-groups=20,campaigns-per-group=10`).
    ///
    /// # Errors
    /// An entry without `=`, an unknown name, or a value that is not a whole number ≥ 1.
    pub fn apply_overrides(&mut self, spec: &str) -> Result<(), String> {
        for (name, n) in overrides(spec, "quota", "NAME=N", "a whole number ≥ 1", |n: &usize| {
            *n >= 1
        })? {
            let slot = self.slot(name).ok_or_else(|| {
                format!(
                    "quota {name:?}: unknown name; expected one of {}",
                    NAMES.join(", ")
                )
            })?;
            *slot = n;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_documented_quotas() {
        let q = Quotas::default();
        assert_eq!(q.dataset_groups, 5);
        assert_eq!(q.pending_import_jobs, 5);
        assert_eq!(q.pending_solution_versions, 20);
        assert_eq!(q.filters_per_group, 30);
    }

    #[test]
    fn every_name_sets_its_quota_and_garbage_is_refused() {
        for name in NAMES {
            let mut q = Quotas::default();
            q.apply_overrides(&format!("{name}=77")).expect("known name");
            assert_ne!(q, Quotas::default(), "{name} changes a quota");
        }
        let mut q = Quotas::default();
        q.apply_overrides(" dataset-groups = 9 , schemas=3")
            .expect("valid");
        assert_eq!((q.dataset_groups, q.schemas), (9, 3));
        for bad in [
            "dataset-groups",
            "dataset-groups=0",
            "dataset-groups=-1",
            "widgets=3",
            "schemas=x",
        ] {
            assert!(Quotas::default().apply_overrides(bad).is_err(), "{bad}");
        }
    }
}
