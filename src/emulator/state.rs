//! The emulated account: every resource, keyed by ARN, with its time-derived lifecycle.
//!
//! One [`State`] holds all regions of the one account (ARNs carry the region). It is plain data, so it
//! serialises for persistence; operations lock it, [`State::settle`] it to the current instant, read
//! or change it, and release it before any I/O.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::arn::Kind;
use super::error::ApiError;
use super::input::Tag;
use super::lifecycle::{Status, Timeline};
use crate::spec::avro::AvroSchema;
use crate::spec::kinds::{DatasetType, Domain};

/// What every resource has.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Meta {
    pub arn: String,
    /// The resource name (empty for an unnamed solution version).
    pub name: String,
    pub region: String,
    /// Creation order across the account: the stable newest-first order of List calls.
    pub seq: u64,
    pub created: f64,
    pub timeline: Timeline,
    #[serde(default)]
    pub tags: Vec<Tag>,
}

impl Meta {
    pub fn status(&self, now: f64) -> Status {
        self.timeline.status(now)
    }

    pub fn is_gone(&self, now: f64) -> bool {
        self.status(now) == Status::Gone
    }

    pub fn is_active(&self, now: f64) -> bool {
        self.status(now) == Status::Active
    }

    /// Neither deleting nor gone: what quotas and in-use checks count.
    pub fn is_live(&self, now: f64) -> bool {
        !self.status(now).is_deleting()
    }

    pub fn last_updated(&self, now: f64) -> f64 {
        self.timeline.last_updated(now)
    }

    pub fn failure(&self, now: f64) -> Option<&str> {
        self.timeline.failure(now)
    }
}

/// An update of a resource that keeps serving its old configuration until the update is `ACTIVE`
/// (`latestCampaignUpdate` and its siblings).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingUpdate<C> {
    pub config: C,
    pub created: f64,
    pub timeline: Timeline,
    /// Set once the update became ACTIVE and its configuration replaced the resource's.
    #[serde(default)]
    pub applied: bool,
}

impl<C> PendingUpdate<C> {
    /// Whether a new update may start: the previous one is `ACTIVE` or `CREATE FAILED`.
    pub fn is_settled(&self, now: f64) -> bool {
        matches!(self.timeline.status(now), Status::Active | Status::CreateFailed)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetGroup {
    pub meta: Meta,
    pub domain: Option<Domain>,
    pub role_arn: Option<String>,
    pub kms_key_arn: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Schema {
    pub meta: Meta,
    /// The schema text exactly as given (DescribeSchema echoes it).
    pub text: String,
    pub parsed: AvroSchema,
    pub domain: Option<Domain>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dataset {
    pub meta: Meta,
    pub group_arn: String,
    pub dataset_type: DatasetType,
    pub schema_arn: String,
    pub update: Option<PendingUpdate<String>>,
    /// A FULL import has succeeded, so INCREMENTAL imports are allowed.
    #[serde(default)]
    pub bulk_imported: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportJob {
    pub meta: Meta,
    pub dataset_arn: String,
    pub data_location: String,
    pub role_arn: Option<String>,
    pub import_mode: String,
    pub publish_attribution_metrics: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventTracker {
    pub meta: Meta,
    pub group_arn: String,
    pub tracking_id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Filter {
    pub meta: Meta,
    pub group_arn: String,
    pub expression: String,
}

/// The part of a solution's configuration UpdateSolution may change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SolutionUpdateConfig {
    pub perform_auto_training: Option<bool>,
    pub perform_incremental_update: Option<bool>,
    pub solution_update_config: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Solution {
    pub meta: Meta,
    pub group_arn: String,
    pub recipe_arn: String,
    pub perform_hpo: bool,
    pub perform_automl: bool,
    /// Absent in the request means the service default, true (docs/personalize.md#serialization).
    pub perform_auto_training: bool,
    pub perform_incremental_update: Option<bool>,
    pub event_type: Option<String>,
    pub config: Option<Value>,
    pub update: Option<PendingUpdate<SolutionUpdateConfig>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SolutionVersion {
    pub meta: Meta,
    pub solution_arn: String,
    pub group_arn: String,
    pub recipe_arn: String,
    pub training_mode: String,
    pub training_type: String,
    pub perform_hpo: bool,
    pub perform_automl: bool,
    pub perform_incremental_update: Option<bool>,
    pub event_type: Option<String>,
    pub config: Option<Value>,
    /// The trained model's metrics (GetSolutionMetrics), set when training succeeds.
    #[serde(default)]
    pub metrics: Option<BTreeMap<String, f64>>,
}

/// What a campaign serves; UpdateCampaign replaces it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CampaignConfig {
    pub solution_version_arn: String,
    pub min_provisioned_tps: i64,
    pub campaign_config: Option<Value>,
    /// `syncWithLatestSolutionVersion`: the solution whose newest ACTIVE version the campaign follows.
    pub follows_solution: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Campaign {
    pub meta: Meta,
    pub current: CampaignConfig,
    pub update: Option<PendingUpdate<CampaignConfig>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recommender {
    pub meta: Meta,
    pub group_arn: String,
    pub recipe_arn: String,
    pub config: Value,
    pub update: Option<PendingUpdate<Value>>,
    /// The trained model's metrics (`modelMetrics`), set when training succeeds.
    #[serde(default)]
    pub metrics: Option<BTreeMap<String, f64>>,
}

/// A batch inference or batch segment job (the two share their shape but for a few members).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchJob {
    pub meta: Meta,
    pub solution_version_arn: String,
    pub input_path: String,
    pub output_path: String,
    /// `jobInput` / `jobOutput` as sent (with their optional KMS keys), echoed by Describe.
    pub job_input: Value,
    pub job_output: Value,
    pub role_arn: String,
    pub filter_arn: Option<String>,
    pub num_results: Option<i64>,
    /// Inference only: `batchInferenceJobConfig`, `batchInferenceJobMode`, `themeGenerationConfig`.
    pub config: Option<Value>,
    pub mode: Option<String>,
    pub theme_config: Option<Value>,
}

/// Access to the common part of every resource.
pub trait Resource {
    const KIND: Kind;
    fn meta(&self) -> &Meta;
    fn meta_mut(&mut self) -> &mut Meta;
}

macro_rules! resource {
    ($ty:ty, $kind:expr) => {
        impl Resource for $ty {
            const KIND: Kind = $kind;
            fn meta(&self) -> &Meta {
                &self.meta
            }
            fn meta_mut(&mut self) -> &mut Meta {
                &mut self.meta
            }
        }
    };
}

resource!(DatasetGroup, Kind::DatasetGroup);
resource!(Schema, Kind::Schema);
resource!(Dataset, Kind::Dataset);
resource!(ImportJob, Kind::DatasetImportJob);
resource!(EventTracker, Kind::EventTracker);
resource!(Filter, Kind::Filter);
resource!(Solution, Kind::Solution);
resource!(SolutionVersion, Kind::SolutionVersion);
resource!(Campaign, Kind::Campaign);
resource!(Recommender, Kind::Recommender);

/// Batch jobs of both kinds share a struct, so their maps are told apart by a wrapper.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct BatchInferenceJob(pub BatchJob);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct BatchSegmentJob(pub BatchJob);

impl Resource for BatchInferenceJob {
    const KIND: Kind = Kind::BatchInferenceJob;
    fn meta(&self) -> &Meta {
        &self.0.meta
    }
    fn meta_mut(&mut self) -> &mut Meta {
        &mut self.0.meta
    }
}

impl Resource for BatchSegmentJob {
    const KIND: Kind = Kind::BatchSegmentJob;
    fn meta(&self) -> &Meta {
        &self.0.meta
    }
    fn meta_mut(&mut self) -> &mut Meta {
        &mut self.0.meta
    }
}

/// Every resource of the account.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct State {
    /// The last creation sequence number handed out.
    pub seq: u64,
    pub dataset_groups: BTreeMap<String, DatasetGroup>,
    pub schemas: BTreeMap<String, Schema>,
    pub datasets: BTreeMap<String, Dataset>,
    pub import_jobs: BTreeMap<String, ImportJob>,
    pub event_trackers: BTreeMap<String, EventTracker>,
    pub filters: BTreeMap<String, Filter>,
    pub solutions: BTreeMap<String, Solution>,
    pub solution_versions: BTreeMap<String, SolutionVersion>,
    pub campaigns: BTreeMap<String, Campaign>,
    pub recommenders: BTreeMap<String, Recommender>,
    pub batch_inference_jobs: BTreeMap<String, BatchInferenceJob>,
    pub batch_segment_jobs: BTreeMap<String, BatchSegmentJob>,
}

/// Typed access to the map of one resource kind.
pub trait Store<T> {
    fn map(&self) -> &BTreeMap<String, T>;
    fn map_mut(&mut self) -> &mut BTreeMap<String, T>;
}

macro_rules! store {
    ($ty:ty, $field:ident) => {
        impl Store<$ty> for State {
            fn map(&self) -> &BTreeMap<String, $ty> {
                &self.$field
            }
            fn map_mut(&mut self) -> &mut BTreeMap<String, $ty> {
                &mut self.$field
            }
        }
    };
}

store!(DatasetGroup, dataset_groups);
store!(Schema, schemas);
store!(Dataset, datasets);
store!(ImportJob, import_jobs);
store!(EventTracker, event_trackers);
store!(Filter, filters);
store!(Solution, solutions);
store!(SolutionVersion, solution_versions);
store!(Campaign, campaigns);
store!(Recommender, recommenders);
store!(BatchInferenceJob, batch_inference_jobs);
store!(BatchSegmentJob, batch_segment_jobs);

impl State {
    pub fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// The resource with this ARN, unless it does not exist or its deletion has finished.
    pub fn find<T: Resource>(&self, arn: &str, now: f64) -> Result<&T, ApiError>
    where
        Self: Store<T>,
    {
        self.map()
            .get(arn)
            .filter(|r| !r.meta().is_gone(now))
            .ok_or_else(|| ApiError::not_found(T::KIND.label(), arn))
    }

    pub fn find_mut<T: Resource>(&mut self, arn: &str, now: f64) -> Result<&mut T, ApiError>
    where
        Self: Store<T>,
    {
        self.map_mut()
            .get_mut(arn)
            .filter(|r| !r.meta().is_gone(now))
            .ok_or_else(|| ApiError::not_found(T::KIND.label(), arn))
    }

    /// Whether the ARN is taken (by anything not yet gone: a name being deleted is still taken).
    pub fn exists<T: Resource>(&self, arn: &str, now: f64) -> bool
    where
        Self: Store<T>,
    {
        self.find::<T>(arn, now).is_ok()
    }

    /// The live resources of one kind for which `keep` holds.
    pub fn live<'a, T: Resource + 'a>(
        &'a self,
        now: f64,
        keep: impl Fn(&T) -> bool + 'a,
    ) -> impl Iterator<Item = &'a T>
    where
        Self: Store<T>,
    {
        self.present(now, move |r: &T| r.meta().is_live(now) && keep(r))
    }

    /// The resources of one kind for which `keep` holds that still exist, including those being
    /// deleted: a dependant in `DELETE PENDING` or `DELETE IN_PROGRESS` still blocks the deletion of
    /// its parent (`ResourceInUseException`) until it is gone.
    pub fn present<'a, T: Resource + 'a>(
        &'a self,
        now: f64,
        keep: impl Fn(&T) -> bool + 'a,
    ) -> impl Iterator<Item = &'a T>
    where
        Self: Store<T>,
    {
        self.map()
            .values()
            .filter(move |r| !r.meta().is_gone(now) && keep(r))
    }

    /// The metadata of any resource by ARN (tags work on every kind).
    pub fn meta_mut(&mut self, arn: &str, now: f64) -> Option<&mut Meta> {
        macro_rules! probe {
            ($($field:ident),*) => {
                $(
                    if let Some(r) = self.$field.get_mut(arn) {
                        let meta = r.meta_mut();
                        return (!meta.is_gone(now)).then_some(meta);
                    }
                )*
            };
        }
        probe!(
            dataset_groups,
            schemas,
            datasets,
            import_jobs,
            event_trackers,
            filters,
            solutions,
            solution_versions,
            campaigns,
            recommenders,
            batch_inference_jobs,
            batch_segment_jobs
        );
        None
    }

    /// Brings the state to `now`: finished deletions disappear together with their children, updates
    /// that became ACTIVE take effect, and campaigns that follow their solution switch to its newest
    /// ACTIVE version. Idempotent; called before every operation and before saving.
    pub fn settle(&mut self, now: f64) {
        self.purge_gone(now);
        self.apply_updates(now);
        self.follow_latest_versions(now);
    }

    fn purge_gone(&mut self, now: f64) {
        fn drop_gone<T: Resource>(map: &mut BTreeMap<String, T>, now: f64) {
            map.retain(|_, r| !r.meta().is_gone(now));
        }
        drop_gone(&mut self.dataset_groups, now);
        drop_gone(&mut self.schemas, now);
        drop_gone(&mut self.datasets, now);
        drop_gone(&mut self.event_trackers, now);
        drop_gone(&mut self.filters, now);
        drop_gone(&mut self.solutions, now);
        drop_gone(&mut self.campaigns, now);
        drop_gone(&mut self.recommenders, now);
        // Children go with their parents; there is no "DELETED" status to show.
        let groups = &self.dataset_groups;
        self.datasets.retain(|_, d| groups.contains_key(&d.group_arn));
        self.event_trackers
            .retain(|_, t| groups.contains_key(&t.group_arn));
        self.filters.retain(|_, f| groups.contains_key(&f.group_arn));
        self.solutions.retain(|_, s| groups.contains_key(&s.group_arn));
        self.recommenders.retain(|_, r| groups.contains_key(&r.group_arn));
        let datasets = &self.datasets;
        self.import_jobs
            .retain(|_, j| datasets.contains_key(&j.dataset_arn));
        let solutions = &self.solutions;
        self.solution_versions
            .retain(|_, v| solutions.contains_key(&v.solution_arn));
    }

    fn apply_updates(&mut self, now: f64) {
        fn due<C>(update: &mut Option<PendingUpdate<C>>, now: f64) -> Option<&mut PendingUpdate<C>> {
            update
                .as_mut()
                .filter(|u| !u.applied && u.timeline.status(now) == Status::Active)
        }
        for c in self.campaigns.values_mut() {
            if let Some(u) = due(&mut c.update, now) {
                u.applied = true;
                c.current = u.config.clone();
            }
        }
        for d in self.datasets.values_mut() {
            if let Some(u) = due(&mut d.update, now) {
                u.applied = true;
                d.schema_arn = u.config.clone();
            }
        }
        for r in self.recommenders.values_mut() {
            if let Some(u) = due(&mut r.update, now) {
                u.applied = true;
                r.config = u.config.clone();
            }
        }
        for s in self.solutions.values_mut() {
            if let Some(u) = due(&mut s.update, now) {
                u.applied = true;
                if let Some(v) = u.config.perform_auto_training {
                    s.perform_auto_training = v;
                }
                if let Some(v) = u.config.perform_incremental_update {
                    s.perform_incremental_update = Some(v);
                }
                if let Some(cfg) = &u.config.solution_update_config {
                    merge_solution_config(&mut s.config, cfg);
                }
            }
        }
    }

    fn follow_latest_versions(&mut self, now: f64) {
        let versions = &self.solution_versions;
        for c in self.campaigns.values_mut() {
            let Some(solution) = &c.current.follows_solution else {
                continue;
            };
            if let Some(newest) = newest_active_version(versions, solution, now)
                && newest.meta.arn != c.current.solution_version_arn
            {
                c.current.solution_version_arn = newest.meta.arn.clone();
            }
        }
    }

    /// The newest ACTIVE version of a solution.
    pub fn newest_active_version(&self, solution_arn: &str, now: f64) -> Option<&SolutionVersion> {
        newest_active_version(&self.solution_versions, solution_arn, now)
    }

    /// Clears every resource (the admin reset). The sequence keeps counting, so work still in flight
    /// for a forgotten resource cannot be mistaken for work of a new one with the same ARN.
    pub fn clear(&mut self) {
        *self = Self {
            seq: self.seq,
            ..Self::default()
        };
    }
}

fn newest_active_version<'a>(
    versions: &'a BTreeMap<String, SolutionVersion>,
    solution_arn: &str,
    now: f64,
) -> Option<&'a SolutionVersion> {
    versions
        .values()
        .filter(|v| v.solution_arn == solution_arn && v.meta.is_active(now))
        .max_by(|a, b| {
            let at = |v: &SolutionVersion| v.meta.timeline.active_since(now).unwrap_or(0.0);
            at(a).total_cmp(&at(b)).then(a.meta.seq.cmp(&b.meta.seq))
        })
}

/// UpdateSolution's `solutionUpdateConfig{autoTrainingConfig, eventsConfig}` replaces those two members
/// of `solutionConfig`.
fn merge_solution_config(config: &mut Option<Value>, update: &Value) {
    let Some(update) = update.as_object() else { return };
    let target = config.get_or_insert_with(|| Value::Object(Map::new()));
    if let Some(obj) = target.as_object_mut() {
        for (k, v) in update {
            obj.insert(k.clone(), v.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emulator::lifecycle::Phases;

    const NO_TIME: Phases = Phases {
        pending: 0.0,
        in_progress: 0.0,
    };
    const SLOW: Phases = Phases {
        pending: 10.0,
        in_progress: 10.0,
    };

    fn meta(arn: &str, seq: u64) -> Meta {
        Meta {
            arn: arn.into(),
            name: arn.rsplit('/').next().unwrap_or_default().into(),
            region: "us-east-1".into(),
            seq,
            created: 0.0,
            timeline: Timeline::created(0.0, NO_TIME, None),
            tags: Vec::new(),
        }
    }

    fn group(state: &mut State, arn: &str) {
        let seq = state.next_seq();
        state.dataset_groups.insert(
            arn.into(),
            DatasetGroup {
                meta: meta(arn, seq),
                domain: None,
                role_arn: None,
                kms_key_arn: None,
            },
        );
    }

    fn filter(state: &mut State, arn: &str, group_arn: &str) {
        let seq = state.next_seq();
        state.filters.insert(
            arn.into(),
            Filter {
                meta: meta(arn, seq),
                group_arn: group_arn.into(),
                expression: "EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN (\"*\")".into(),
            },
        );
    }

    #[test]
    fn deleted_resources_take_their_children_along() {
        let mut s = State::default();
        group(&mut s, "g1");
        group(&mut s, "g2");
        filter(&mut s, "f1", "g1");
        filter(&mut s, "f2", "g2");
        let g = s.find_mut::<DatasetGroup>("g1", 1.0).expect("exists");
        g.meta
            .timeline
            .transition(1.0, Status::DeletePending, None, Status::Gone, SLOW);
        s.settle(5.0);
        assert!(
            s.find::<Filter>("f1", 5.0).is_ok(),
            "children live on while the parent is deleting"
        );
        assert_eq!(
            s.find::<DatasetGroup>("g1", 5.0)
                .expect("deleting")
                .meta
                .status(5.0),
            Status::DeletePending
        );
        s.settle(30.0);
        assert!(s.find::<DatasetGroup>("g1", 30.0).is_err());
        assert!(s.find::<Filter>("f1", 30.0).is_err());
        assert!(s.find::<Filter>("f2", 30.0).is_ok());
    }

    #[test]
    fn a_gone_resource_is_not_found_even_before_settling() {
        let mut s = State::default();
        group(&mut s, "g1");
        s.dataset_groups
            .get_mut("g1")
            .expect("exists")
            .meta
            .timeline
            .transition(1.0, Status::DeletePending, None, Status::Gone, NO_TIME);
        let e = s.find::<DatasetGroup>("g1", 2.0).unwrap_err();
        assert_eq!(e.code, crate::emulator::error::ErrorCode::ResourceNotFound);
        assert!(s.meta_mut("g1", 2.0).is_none());
    }

    #[test]
    fn campaign_updates_apply_once_active() {
        let mut s = State::default();
        let config = |v: &str| CampaignConfig {
            solution_version_arn: v.into(),
            min_provisioned_tps: 1,
            campaign_config: None,
            follows_solution: None,
        };
        s.campaigns.insert(
            "c".into(),
            Campaign {
                meta: meta("c", 1),
                current: config("v1"),
                update: Some(PendingUpdate {
                    config: config("v2"),
                    created: 0.0,
                    timeline: Timeline::created(0.0, SLOW, None),
                    applied: false,
                }),
            },
        );
        s.settle(5.0);
        assert_eq!(s.campaigns["c"].current.solution_version_arn, "v1");
        s.settle(25.0);
        assert_eq!(s.campaigns["c"].current.solution_version_arn, "v2");
        assert!(s.campaigns["c"].update.as_ref().is_some_and(|u| u.applied));
    }
}
