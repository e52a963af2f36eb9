//! What the promotion gate needs beyond the plain observation: the offline metrics of each gated
//! solution's serving and candidate versions, and the batch jobs of the serving version.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use crate::plan::Phase;
use crate::plan::observed::Observation;
use crate::spec::model::Spec;

use super::api::{Api, ApiError, ErrorClass};
use super::observe::list_batch_jobs;

/// Metrics of versions already read: a version's metrics never change once it is ACTIVE.
#[derive(Debug, Default)]
pub struct MetricsCache(Mutex<HashMap<String, BTreeMap<String, f64>>>);

impl MetricsCache {
    fn get(&self, arn: &str) -> Option<BTreeMap<String, f64>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(arn)
            .cloned()
    }

    fn put(&self, arn: &str, metrics: BTreeMap<String, f64>) {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(arn.to_string(), metrics);
    }
}

/// Fills `o.metrics` for the serving and the newest ACTIVE version of every solution with a
/// promotion gate (only when they differ: otherwise there is nothing to decide), and lists the
/// serving version's batch jobs, which the plain observation lists only for the newest version.
pub async fn observe(
    api: &Api,
    spec: &Spec,
    o: &mut Observation,
    cache: &MetricsCache,
) -> Result<(), ApiError> {
    for s in spec.solutions.iter().filter(|s| s.promotion.is_some()) {
        let Some(candidate) = o
            .versions
            .get(&s.name)
            .into_iter()
            .flatten()
            .filter(|v| v.meta.phase() == Phase::Active)
            .max_by_key(|v| (v.meta.created, v.meta.arn.clone()))
            .map(|v| v.meta.arn.clone())
        else {
            continue;
        };
        let Some(serving) = crate::plan::serving_version(o, s).filter(|v| *v != candidate) else {
            continue;
        };
        for arn in [&candidate, &serving] {
            if let Some(m) = metrics(api, arn, cache).await? {
                o.metrics.insert(arn.clone(), m);
            }
        }
        if !s.batch_inference_jobs.is_empty() && !o.batch_inference_jobs.contains_key(&serving) {
            let jobs = list_batch_jobs(api, &serving, false).await?;
            o.batch_inference_jobs.insert(serving.clone(), jobs);
        }
        if !s.batch_segment_jobs.is_empty() && !o.batch_segment_jobs.contains_key(&serving) {
            let jobs = list_batch_jobs(api, &serving, true).await?;
            o.batch_segment_jobs.insert(serving.clone(), jobs);
        }
    }
    Ok(())
}

/// `GetSolutionMetrics` of an ACTIVE version; `None` when Personalize has none for it (yet).
async fn metrics(
    api: &Api,
    arn: &str,
    cache: &MetricsCache,
) -> Result<Option<BTreeMap<String, f64>>, ApiError> {
    if let Some(m) = cache.get(arn) {
        return Ok(Some(m));
    }
    let answer = api
        .call("GetSolutionMetrics", arn, || {
            api.client.get_solution_metrics().solution_version_arn(arn).send()
        })
        .await;
    match answer {
        Ok(r) => {
            let m: BTreeMap<String, f64> = r.metrics.unwrap_or_default().into_iter().collect();
            cache.put(arn, m.clone());
            Ok(Some(m))
        }
        Err(e) if matches!(e.class, ErrorClass::NotFound | ErrorClass::InUse) => Ok(None),
        Err(e) => Err(e),
    }
}
