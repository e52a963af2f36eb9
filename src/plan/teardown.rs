//! Tearing a dataset group down: what each resource waits for, dependants first (pure: no I/O).
//!
//! [`teardown`] reads everything found under a group ([`Found`], as listed from Personalize) and
//! returns one [`TeardownStep`] per resource, ordered so that the list reads as the order of work:
//! campaigns and recommenders first (nothing serves from a half-deleted group), then training versions
//! stopped, filters and the event tracker, solutions, datasets, the group, and last the schemas no
//! other dataset uses. A step is [`TeardownAction::Delete`] only when everything it waits for is gone;
//! Personalize refuses a delete while dependants exist (`ResourceInUseException`), so deleting early
//! would only be refused.

use serde::Serialize;

use super::{Kind, Ref};

/// One resource found under the group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Found {
    /// What it is.
    #[serde(serialize_with = "crate::spec::kinds::serialize_arn_spelling")]
    pub kind: Kind,
    /// Its name (job name for jobs; the ARN's last part for unnamed solution versions).
    pub name: String,
    /// Its ARN.
    pub arn: String,
    /// Personalize's status as listed (`ACTIVE`, `DELETE PENDING`, …; empty for schemas).
    pub status: String,
    /// Versions, import jobs and batch jobs have no delete call: the ARN of the resource they go with
    /// (the solution, the dataset, the solution version).
    pub parent: Option<String>,
    /// A campaign's solution, a dataset's schema: the ARN of what it uses.
    pub uses: Option<String>,
    /// A schema another dataset group's dataset uses: that dataset's ARN (the schema is kept).
    pub used_elsewhere: Option<String>,
}

impl Found {
    /// A resource with no parent or use.
    pub fn new(
        kind: Kind,
        name: impl Into<String>,
        arn: impl Into<String>,
        status: impl Into<String>,
    ) -> Self {
        Self {
            kind,
            name: name.into(),
            arn: arn.into(),
            status: status.into(),
            parent: None,
            uses: None,
            used_elsewhere: None,
        }
    }

    fn deleting(&self) -> bool {
        self.status.trim().to_ascii_uppercase().starts_with("DELETE")
    }

    fn training(&self) -> bool {
        matches!(
            self.status.trim().to_ascii_uppercase().as_str(),
            "CREATE PENDING" | "CREATE IN_PROGRESS"
        )
    }

    fn stopping(&self) -> bool {
        self.status.trim().eq_ignore_ascii_case("CREATE STOPPING")
    }

    fn running_job(&self) -> bool {
        let s = self.status.trim().to_ascii_uppercase();
        s != "ACTIVE" && !s.contains("FAILED") && !s.contains("STOPPED")
    }

    fn target(&self) -> Ref {
        Ref::new(self.kind, self.name.clone())
    }
}

/// What happens to one resource next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "action")]
pub enum TeardownAction {
    /// Nothing it waits for is left: delete it now.
    Delete,
    /// A solution version in training: stop it (StopSolutionVersionCreation), since a training
    /// version blocks deleting its solution and the group's datasets.
    Stop,
    /// Waits until these are gone (`kind name`).
    Wait { on: Vec<String> },
    /// Personalize is deleting it (`DELETE PENDING`, `DELETE IN_PROGRESS`).
    Deleting { status: String },
    /// It has no delete call and disappears with `parent` (`kind name`).
    GoesWith { parent: String },
    /// Left in place, and why (a schema another group's dataset uses).
    Keep { reason: String },
}

/// One resource of the teardown and what happens to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TeardownStep {
    /// The resource.
    pub target: Ref,
    /// Its ARN.
    pub arn: String,
    /// Its status when found.
    pub status: String,
    /// What happens next.
    pub action: TeardownAction,
}

/// Whether nothing but kept resources remains: the teardown is finished.
pub fn is_finished(steps: &[TeardownStep]) -> bool {
    steps
        .iter()
        .all(|s| matches!(s.action, TeardownAction::Keep { .. }))
}

/// The rank of a kind in the order of work (lower goes first).
fn rank(kind: Kind) -> u8 {
    match kind {
        Kind::Campaign | Kind::Recommender => 0,
        Kind::SolutionVersion | Kind::BatchInferenceJob | Kind::BatchSegmentJob => 1,
        Kind::Filter | Kind::EventTracker => 2,
        Kind::Solution => 3,
        Kind::Dataset | Kind::DatasetImportJob => 4,
        Kind::DatasetGroup => 5,
        Kind::Schema => 6,
    }
}

/// The teardown of everything in `found`, dependants first (see the module documentation).
pub fn teardown(found: &[Found]) -> Vec<TeardownStep> {
    let mut order: Vec<&Found> = found.iter().collect();
    order.sort_by(|a, b| {
        rank(a.kind)
            .cmp(&rank(b.kind))
            .then(a.kind.cmp(&b.kind))
            .then(a.name.cmp(&b.name))
            .then(a.arn.cmp(&b.arn))
    });
    let named = |arn: &str| {
        found
            .iter()
            .find(|f| f.arn == arn)
            .map_or_else(|| arn.to_string(), |f| f.target().to_string())
    };
    let of_kinds = |kinds: &[Kind]| -> Vec<String> {
        order
            .iter()
            .filter(|f| kinds.contains(&f.kind))
            .map(|f| f.target().to_string())
            .collect()
    };
    // Everything that serves: nothing else is deleted while any of it is left.
    let serving = of_kinds(&[Kind::Campaign, Kind::Recommender]);
    let training: Vec<&Found> = order
        .iter()
        .copied()
        .filter(|f| f.kind == Kind::SolutionVersion && (f.training() || f.stopping()))
        .collect();
    order
        .iter()
        .map(|f| {
            let action = if f.deleting() {
                TeardownAction::Deleting {
                    status: f.status.clone(),
                }
            } else {
                action_of(f, found, &serving, &training, &of_kinds, &named)
            };
            TeardownStep {
                target: f.target(),
                arn: f.arn.clone(),
                status: f.status.clone(),
                action,
            }
        })
        .collect()
}

fn wait_or_delete(on: Vec<String>) -> TeardownAction {
    if on.is_empty() {
        TeardownAction::Delete
    } else {
        TeardownAction::Wait { on }
    }
}

fn action_of(
    f: &Found,
    found: &[Found],
    serving: &[String],
    training: &[&Found],
    of_kinds: &dyn Fn(&[Kind]) -> Vec<String>,
    named: &dyn Fn(&str) -> String,
) -> TeardownAction {
    let goes_with = || TeardownAction::GoesWith {
        parent: f.parent.as_deref().map_or_else(String::new, named),
    };
    match f.kind {
        Kind::Campaign | Kind::Recommender => TeardownAction::Delete,
        Kind::SolutionVersion if f.training() => TeardownAction::Stop,
        Kind::SolutionVersion if f.stopping() => TeardownAction::Wait {
            on: vec![format!("{} to stop training", f.target())],
        },
        Kind::SolutionVersion | Kind::BatchInferenceJob | Kind::BatchSegmentJob | Kind::DatasetImportJob => {
            goes_with()
        }
        Kind::Filter | Kind::EventTracker => wait_or_delete(serving.to_vec()),
        Kind::Solution => {
            let mut on = serving.to_vec();
            on.extend(
                training
                    .iter()
                    .filter(|v| v.parent.as_deref() == Some(f.arn.as_str()))
                    .map(|v| v.target().to_string()),
            );
            wait_or_delete(on)
        }
        Kind::Dataset => {
            let mut on = serving.to_vec();
            on.extend(of_kinds(&[Kind::Solution]));
            on.extend(
                found
                    .iter()
                    .filter(|j| {
                        j.kind == Kind::DatasetImportJob
                            && j.parent.as_deref() == Some(f.arn.as_str())
                            && j.running_job()
                    })
                    .map(|j| j.target().to_string()),
            );
            wait_or_delete(on)
        }
        Kind::DatasetGroup => wait_or_delete(of_kinds(&[
            Kind::Campaign,
            Kind::Recommender,
            Kind::Filter,
            Kind::EventTracker,
            Kind::Solution,
            Kind::Dataset,
        ])),
        Kind::Schema => {
            if let Some(user) = &f.used_elsewhere {
                return TeardownAction::Keep {
                    reason: format!("the dataset {user} of another dataset group uses it"),
                };
            }
            wait_or_delete(
                found
                    .iter()
                    .filter(|d| d.kind == Kind::Dataset && d.uses.as_deref() == Some(f.arn.as_str()))
                    .map(|d| d.target().to_string())
                    .collect(),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: &str = "arn:aws:personalize:us-east-1:000000000000:";

    fn found(kind: Kind, name: &str, status: &str) -> Found {
        Found::new(kind, name, format!("{P}{}/{name}", kind.as_str()), status)
    }

    fn with_parent(mut f: Found, parent: &Found) -> Found {
        f.parent = Some(parent.arn.clone());
        f
    }

    fn with_use(mut f: Found, used: &Found) -> Found {
        f.uses = Some(used.arn.clone());
        f
    }

    /// A whole custom group, everything ACTIVE.
    fn group() -> Vec<Found> {
        let schema = found(Kind::Schema, "s", "");
        let dataset = with_use(found(Kind::Dataset, "g/INTERACTIONS", "ACTIVE"), &schema);
        let solution = found(Kind::Solution, "sol", "ACTIVE");
        let version = with_parent(found(Kind::SolutionVersion, "sol/v1", "ACTIVE"), &solution);
        vec![
            found(Kind::DatasetGroup, "g", "ACTIVE"),
            schema,
            with_parent(found(Kind::DatasetImportJob, "imp", "ACTIVE"), &dataset),
            dataset,
            found(Kind::EventTracker, "t", "ACTIVE"),
            found(Kind::Filter, "f", "ACTIVE"),
            with_parent(found(Kind::BatchInferenceJob, "b", "ACTIVE"), &version),
            version,
            solution,
            with_use(
                found(Kind::Campaign, "c", "ACTIVE"),
                &found(Kind::Solution, "sol", ""),
            ),
        ]
    }

    fn action<'a>(steps: &'a [TeardownStep], name: &str) -> &'a TeardownAction {
        &steps
            .iter()
            .find(|s| s.target.name == name)
            .unwrap_or_else(|| panic!("no step {name}: {steps:#?}"))
            .action
    }

    fn without(found: &[Found], kinds: &[Kind]) -> Vec<Found> {
        found
            .iter()
            .filter(|f| !kinds.contains(&f.kind))
            .cloned()
            .collect()
    }

    #[test]
    fn campaigns_go_first_and_everything_else_waits_for_them() {
        let steps = teardown(&group());
        let kinds: Vec<Kind> = steps.iter().map(|s| s.target.kind).collect();
        assert_eq!(kinds.first(), Some(&Kind::Campaign));
        assert_eq!(kinds.last(), Some(&Kind::Schema));
        let group_at = kinds
            .iter()
            .position(|k| *k == Kind::DatasetGroup)
            .expect("group");
        let dataset_at = kinds.iter().position(|k| *k == Kind::Dataset).expect("dataset");
        let solution_at = kinds.iter().position(|k| *k == Kind::Solution).expect("solution");
        assert!(solution_at < dataset_at && dataset_at < group_at, "{kinds:?}");
        assert_eq!(action(&steps, "c"), &TeardownAction::Delete);
        let serving = vec!["campaign c".to_string()];
        assert_eq!(action(&steps, "f"), &TeardownAction::Wait { on: serving.clone() });
        assert_eq!(action(&steps, "t"), &TeardownAction::Wait { on: serving.clone() });
        assert_eq!(action(&steps, "sol"), &TeardownAction::Wait { on: serving });
        assert_eq!(
            action(&steps, "sol/v1"),
            &TeardownAction::GoesWith {
                parent: "solution sol".into()
            }
        );
        assert_eq!(
            action(&steps, "imp"),
            &TeardownAction::GoesWith {
                parent: "dataset g/INTERACTIONS".into()
            }
        );
        assert!(matches!(action(&steps, "g"), TeardownAction::Wait { on } if on.len() == 5));
        assert_eq!(
            action(&steps, "s"),
            &TeardownAction::Wait {
                on: vec!["dataset g/INTERACTIONS".into()]
            }
        );
        assert!(!is_finished(&steps));
    }

    #[test]
    fn each_layer_is_ready_once_the_one_before_is_gone() {
        let rest = without(&group(), &[Kind::Campaign]);
        let steps = teardown(&rest);
        assert_eq!(action(&steps, "f"), &TeardownAction::Delete);
        assert_eq!(action(&steps, "t"), &TeardownAction::Delete);
        assert_eq!(action(&steps, "sol"), &TeardownAction::Delete);
        assert_eq!(
            action(&steps, "g/INTERACTIONS"),
            &TeardownAction::Wait {
                on: vec!["solution sol".into()]
            }
        );
        let rest = without(
            &rest,
            &[Kind::Solution, Kind::SolutionVersion, Kind::BatchInferenceJob],
        );
        let steps = teardown(&rest);
        assert_eq!(action(&steps, "g/INTERACTIONS"), &TeardownAction::Delete);
        let rest = without(
            &rest,
            &[
                Kind::Filter,
                Kind::EventTracker,
                Kind::Dataset,
                Kind::DatasetImportJob,
            ],
        );
        let steps = teardown(&rest);
        assert_eq!(action(&steps, "g"), &TeardownAction::Delete);
        assert_eq!(action(&steps, "s"), &TeardownAction::Delete);
        let rest = without(&rest, &[Kind::DatasetGroup, Kind::Schema]);
        assert!(teardown(&rest).is_empty());
        assert!(is_finished(&teardown(&rest)));
    }

    #[test]
    fn a_training_version_is_stopped_and_holds_back_its_solution_and_the_datasets() {
        let mut all = without(&group(), &[Kind::Campaign]);
        let solution = all
            .iter()
            .find(|f| f.kind == Kind::Solution)
            .cloned()
            .expect("solution");
        all.push(with_parent(
            found(Kind::SolutionVersion, "sol/v2", "CREATE IN_PROGRESS"),
            &solution,
        ));
        let steps = teardown(&all);
        assert_eq!(action(&steps, "sol/v2"), &TeardownAction::Stop);
        assert_eq!(
            action(&steps, "sol"),
            &TeardownAction::Wait {
                on: vec!["solution-version sol/v2".into()]
            }
        );
        // Stopping: the solution still waits.
        let last = all.len() - 1;
        all[last].status = "CREATE STOPPING".into();
        let steps = teardown(&all);
        assert!(matches!(action(&steps, "sol/v2"), TeardownAction::Wait { .. }));
        assert!(matches!(action(&steps, "sol"), TeardownAction::Wait { .. }));
        all[last].status = "CREATE STOPPED".into();
        let steps = teardown(&all);
        assert_eq!(action(&steps, "sol"), &TeardownAction::Delete);
    }

    #[test]
    fn a_running_import_holds_back_its_dataset_only() {
        let mut all = without(&group(), &[Kind::Campaign, Kind::Solution, Kind::SolutionVersion]);
        let dataset = all
            .iter()
            .find(|f| f.kind == Kind::Dataset)
            .cloned()
            .expect("dataset");
        all.push(with_parent(
            found(Kind::DatasetImportJob, "imp2", "CREATE IN_PROGRESS"),
            &dataset,
        ));
        let steps = teardown(&all);
        assert_eq!(
            action(&steps, "g/INTERACTIONS"),
            &TeardownAction::Wait {
                on: vec!["dataset-import-job imp2".into()]
            }
        );
        assert_eq!(action(&steps, "f"), &TeardownAction::Delete);
    }

    #[test]
    fn resources_being_deleted_are_waited_for_and_a_shared_schema_is_kept() {
        let mut all = group();
        for f in &mut all {
            if f.kind == Kind::Campaign {
                f.status = "DELETE IN_PROGRESS".into();
            }
            if f.kind == Kind::Schema {
                f.used_elsewhere = Some(format!("{P}dataset/other/USERS"));
            }
        }
        let steps = teardown(&all);
        assert_eq!(
            action(&steps, "c"),
            &TeardownAction::Deleting {
                status: "DELETE IN_PROGRESS".into()
            }
        );
        assert!(matches!(action(&steps, "f"), TeardownAction::Wait { .. }));
        assert!(
            matches!(action(&steps, "s"), TeardownAction::Keep { reason } if reason.contains("dataset/other/USERS"))
        );
        let kept_only: Vec<Found> = all.into_iter().filter(|f| f.kind == Kind::Schema).collect();
        assert!(is_finished(&teardown(&kept_only)));
    }

    #[test]
    fn a_domain_group_deletes_recommenders_before_its_datasets() {
        let schema = found(Kind::Schema, "vod-s", "");
        let all = vec![
            found(Kind::DatasetGroup, "vod", "ACTIVE"),
            with_use(found(Kind::Dataset, "vod/INTERACTIONS", "ACTIVE"), &schema),
            schema,
            found(Kind::Recommender, "top-picks", "ACTIVE"),
        ];
        let steps = teardown(&all);
        assert_eq!(steps[0].target.kind, Kind::Recommender);
        assert_eq!(action(&steps, "top-picks"), &TeardownAction::Delete);
        assert_eq!(
            action(&steps, "vod/INTERACTIONS"),
            &TeardownAction::Wait {
                on: vec!["recommender top-picks".into()]
            }
        );
    }
}
