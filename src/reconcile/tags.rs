//! The tags of the managed resources, for the planner: read with ListTagsForResource once per run
//! and again after each change the reconciler makes to a resource, so the file's tags become the
//! resources' tags without a listing per resource on every pass.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Utc};

use crate::plan::observed::{Meta, Observation};
use crate::plan::{Phase, Request};
use crate::spec::model::{Spec, Tag};

use super::api::{Api, ApiError, ErrorClass};

/// Tags read in the current run of each group, by resource ARN.
#[derive(Debug, Default)]
pub struct TagCache(Mutex<HashMap<String, RunTags>>);

#[derive(Debug)]
struct RunTags {
    run_start: DateTime<Utc>,
    by_arn: HashMap<String, Vec<Tag>>,
}

impl TagCache {
    fn with<T>(
        &self,
        group: &str,
        run_start: DateTime<Utc>,
        f: impl FnOnce(&mut HashMap<String, Vec<Tag>>) -> T,
    ) -> T {
        let mut all = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let run = all.entry(group.to_string()).or_insert_with(|| RunTags {
            run_start,
            by_arn: HashMap::new(),
        });
        if run.run_start != run_start {
            *run = RunTags {
                run_start,
                by_arn: HashMap::new(),
            };
        }
        f(&mut run.by_arn)
    }

    /// `arn` was just created by this run with `tags`: that is what Personalize holds, so the run
    /// needs no ListTagsForResource to know it.
    pub fn created(&self, group: &str, run_start: DateTime<Utc>, arn: &str, tags: &[Tag]) {
        self.with(group, run_start, |c| c.insert(arn.to_string(), tags.to_vec()));
    }

    /// Reads `arn`'s tags again on the next pass (the reconciler just changed the resource).
    pub fn forget(&self, group: &str, arn: &str) {
        let mut all = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(run) = all.get_mut(group) {
            run.by_arn.remove(arn);
        }
    }
}

/// The tags a create sends, for the kinds [`observe`] reads tags of (`None` for other requests).
pub fn sent(request: &Request) -> Option<&[Tag]> {
    match request {
        Request::CreateDatasetGroup { tags, .. }
        | Request::CreateDataset { tags, .. }
        | Request::CreateEventTracker { tags, .. }
        | Request::CreateFilter { tags, .. }
        | Request::CreateCampaign { tags, .. }
        | Request::CreateRecommender { tags, .. } => Some(tags),
        Request::CreateSolution { solution, .. } => Some(&solution.tags),
        _ => None,
    }
}

/// The ACTIVE resources the file declares and Personalize lets tag after creation: the group,
/// datasets, the event tracker, filters, solutions, campaigns and recommenders. (Schemas take no
/// tags; versions and jobs are one-shot and get the file's tags when created.)
fn taggable(spec: &Spec, o: &Observation) -> Vec<String> {
    let mut metas: Vec<&Meta> = Vec::new();
    metas.extend(o.group.as_ref().map(|g| &g.meta));
    metas.extend(o.datasets.values().map(|d| &d.meta));
    if let Some(t) = &spec.event_tracker {
        metas.extend(
            o.event_trackers
                .iter()
                .filter(|e| e.name == t.name)
                .map(|e| &e.meta),
        );
    }
    metas.extend(
        spec.filters
            .iter()
            .filter_map(|f| o.filters.get(&f.name))
            .map(|f| &f.meta),
    );
    for s in &spec.solutions {
        metas.extend(o.solutions.get(&s.name).map(|x| &x.meta));
        metas.extend(
            s.campaigns
                .iter()
                .filter_map(|c| o.campaigns.get(&c.name))
                .map(|c| &c.meta),
        );
    }
    metas.extend(
        spec.recommenders
            .iter()
            .filter_map(|r| o.recommenders.get(&r.name))
            .map(|r| &r.meta),
    );
    metas
        .into_iter()
        .filter(|m| m.phase() == Phase::Active && !m.arn.is_empty())
        .map(|m| m.arn.clone())
        .collect()
}

/// Fills `o.tags` for every taggable resource (see [`taggable`]), from the run's cache where it can.
pub async fn observe(
    api: &Api,
    spec: &Spec,
    o: &mut Observation,
    cache: &TagCache,
    run_start: DateTime<Utc>,
) -> Result<(), ApiError> {
    let group = &spec.dataset_group.name;
    for arn in taggable(spec, o) {
        if let Some(tags) = cache.with(group, run_start, |c| c.get(&arn).cloned()) {
            o.tags.insert(arn, tags);
            continue;
        }
        let answer = api
            .call("ListTagsForResource", &arn, || {
                api.client.list_tags_for_resource().resource_arn(&arn).send()
            })
            .await;
        let tags: Vec<Tag> = match answer {
            Ok(r) => r
                .tags
                .unwrap_or_default()
                .into_iter()
                .map(|t| Tag {
                    key: t.tag_key,
                    value: t.tag_value,
                })
                .collect(),
            // Deleted since it was described: nothing to compare this pass.
            Err(e) if e.class == ErrorClass::NotFound => continue,
            Err(e) => return Err(e),
        };
        cache.with(group, run_start, |c| c.insert(arn.clone(), tags.clone()));
        o.tags.insert(arn, tags);
    }
    Ok(())
}
