//! What one commit changed in the resources: found by comparing the live state with the saved one.
//!
//! Handlers change the state in place, so instead of asking each of them what it touched, a commit
//! compares every resource with its saved copy (an equality check, far cheaper than encoding the
//! whole state) and logs only those that differ. Changes made by lifecycles settling, background
//! work and the admin API are caught the same way.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::emulator::state::{
    BatchInferenceJob, BatchSegmentJob, Campaign, Dataset, DatasetGroup, EventTracker, Filter, ImportJob,
    Recommender, Schema, Solution, SolutionVersion, State,
};

macro_rules! kinds {
    ($(($variant:ident, $field:ident, $ty:ty)),* $(,)?) => {
        /// A resource kind: which map of [`State`] a change applies to.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum Field {
            $($variant,)*
        }

        /// A resource as saved: put into its map, replacing any with the same ARN.
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "kind", content = "resource", rename_all = "snake_case")]
        pub enum Put {
            $($variant($ty),)*
        }

        /// The [`State`] maps the log carries, by their serialized names.
        #[cfg(test)]
        const FIELDS: &[&str] = &[$(stringify!($field)),*];

        /// The resources that differ between `live` and `saved`.
        pub fn diff(live: &State, saved: &State) -> Vec<Change> {
            let mut out = Vec::new();
            $(
                diff_map(&live.$field, &saved.$field, &mut out, Field::$variant, Put::$variant);
            )*
            out
        }

        /// Applies one logged change.
        pub fn apply(state: &mut State, change: Change) {
            match change {
                Change::Put(put) => match *put {
                    $(
                        Put::$variant(r) => {
                            let arn = crate::emulator::state::Resource::meta(&r).arn.clone();
                            state.$field.insert(arn, r);
                        }
                    )*
                },
                Change::Remove { kind, arn } => match kind {
                    $(
                        Field::$variant => {
                            state.$field.remove(&arn);
                        }
                    )*
                },
            }
        }
    };
}

kinds!(
    (DatasetGroup, dataset_groups, DatasetGroup),
    (Schema, schemas, Schema),
    (Dataset, datasets, Dataset),
    (ImportJob, import_jobs, ImportJob),
    (EventTracker, event_trackers, EventTracker),
    (Filter, filters, Filter),
    (Solution, solutions, Solution),
    (SolutionVersion, solution_versions, SolutionVersion),
    (Campaign, campaigns, Campaign),
    (Recommender, recommenders, Recommender),
    (BatchInferenceJob, batch_inference_jobs, BatchInferenceJob),
    (BatchSegmentJob, batch_segment_jobs, BatchSegmentJob),
);

/// One resource written or removed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    Put(Box<Put>),
    Remove { kind: Field, arn: String },
}

fn diff_map<T: Clone + PartialEq>(
    live: &BTreeMap<String, T>,
    saved: &BTreeMap<String, T>,
    out: &mut Vec<Change>,
    kind: Field,
    put: fn(T) -> Put,
) {
    for (arn, r) in live {
        if saved.get(arn) != Some(r) {
            out.push(Change::Put(Box::new(put(r.clone()))));
        }
    }
    for arn in saved.keys() {
        if !live.contains_key(arn) {
            out.push(Change::Remove {
                kind,
                arn: arn.clone(),
            });
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::emulator::lifecycle::{Phases, Timeline};
    use crate::emulator::state::Meta;

    /// An ACTIVE dataset group named like its ARN.
    pub(in crate::emulator::persist) fn group(arn: &str, seq: u64) -> DatasetGroup {
        DatasetGroup {
            meta: Meta {
                arn: arn.to_string(),
                name: arn.to_string(),
                region: "us-east-1".into(),
                seq,
                created: 0.0,
                timeline: Timeline::created(
                    0.0,
                    Phases {
                        pending: 1.0,
                        in_progress: 1.0,
                    },
                    None,
                ),
                tags: Vec::new(),
            },
            domain: None,
            role_arn: None,
            kms_key_arn: None,
        }
    }

    /// A map added to [`State`] but not to `kinds!` would never be logged, so it would vanish at
    /// every restart.
    #[test]
    fn every_map_of_the_state_is_logged() {
        let encoded = serde_json::to_value(State::default()).expect("encodes");
        let mut maps: Vec<&str> = encoded
            .as_object()
            .expect("an object")
            .keys()
            .map(String::as_str)
            .filter(|k| *k != "seq")
            .collect();
        maps.sort_unstable();
        let mut logged = FIELDS.to_vec();
        logged.sort_unstable();
        assert_eq!(maps, logged);
    }

    #[test]
    fn finds_puts_changes_and_removals_and_replays_them() {
        let mut saved = State::default();
        saved.dataset_groups.insert("a".into(), group("a", 1));
        saved.dataset_groups.insert("b".into(), group("b", 2));
        saved.dataset_groups.insert("c".into(), group("c", 3));
        let mut live = saved.clone();
        live.dataset_groups.remove("a");
        live.dataset_groups
            .get_mut("b")
            .expect("b")
            .meta
            .tags
            .push(crate::emulator::input::Tag {
                key: "k".into(),
                value: "v".into(),
            });
        live.dataset_groups.insert("d".into(), group("d", 4));
        let changes = diff(&live, &saved);
        assert_eq!(changes.len(), 3, "{changes:?}");
        assert!(diff(&live, &live).is_empty());
        // Through JSON, as the log carries them.
        let text = serde_json::to_vec(&changes).expect("encodes");
        let back: Vec<Change> = serde_json::from_slice(&text).expect("decodes");
        let mut replayed = saved.clone();
        for c in back {
            apply(&mut replayed, c);
        }
        assert_eq!(replayed, live);
    }
}
