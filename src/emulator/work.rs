//! Background data work started by Create calls: imports, training, batch jobs.
//!
//! Each job reads what it needs under the lock, releases it for the object-store I/O and the
//! computation, then locks again to record the outcome, but only if the resource still awaits it
//! (it may have been stopped, deleted or reset meanwhile). The outcome ends the resource's creation
//! in `ACTIVE` or in `CREATE FAILED` with the reason.

use std::sync::Arc;

use super::data::id_column;
use super::engine::import::read_csv_dataset;
use super::shared::{Shared, World};

/// What a job does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobKind {
    Import,
    Train,
    TrainRecommender,
    BatchInference,
    BatchSegment,
}

/// A unit of background work for one resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub kind: JobKind,
    pub arn: String,
    /// The creation sequence number of the resource: after a reset a new resource may reuse the ARN,
    /// and must not receive the outcome of the old one's work.
    pub seq: u64,
}

/// What a finished job changes in the world when it succeeded.
type Apply = Box<dyn FnOnce(&mut World) + Send>;

/// Runs a job to its outcome and records it.
pub async fn run(shared: &Arc<Shared>, job: Job) {
    let outcome = match job.kind {
        JobKind::Import => import(shared, &job.arn).await,
        JobKind::Train | JobKind::TrainRecommender | JobKind::BatchInference | JobKind::BatchSegment => {
            Ok(Box::new(|_: &mut World| {}) as Apply)
        }
    };
    complete(shared, &job, outcome).await;
}

/// Records the outcome, unless the resource no longer awaits it.
async fn complete(shared: &Arc<Shared>, job: &Job, outcome: Result<Apply, String>) {
    let now = shared.clock.now();
    let mut world = shared.world.lock().await;
    let Some(meta) = world.state.meta_mut(&job.arn, now).filter(|m| m.seq == job.seq) else {
        return;
    };
    match outcome {
        Ok(apply) => {
            if meta.timeline.finish(now, None) {
                apply(&mut world);
            }
        }
        Err(reason) => {
            meta.timeline.finish(now, Some(reason));
        }
    }
    drop(world);
    shared.dirty.notify_one();
}

/// Reads the job's CSV data against the dataset's schema; on success the rows replace (FULL) or
/// update (INCREMENTAL) the dataset's bulk data.
async fn import(shared: &Arc<Shared>, arn: &str) -> Result<Apply, String> {
    let (location, schema, mode, dataset_arn, dataset_type) = {
        let world = shared.world.lock().await;
        let state = &world.state;
        let job = state
            .import_jobs
            .get(arn)
            .ok_or_else(|| format!("The import job {arn} no longer exists"))?;
        let dataset = state
            .datasets
            .get(&job.dataset_arn)
            .ok_or_else(|| format!("The dataset {} no longer exists", job.dataset_arn))?;
        let schema = state
            .schemas
            .get(&dataset.schema_arn)
            .ok_or_else(|| format!("The schema {} no longer exists", dataset.schema_arn))?;
        (
            job.data_location.clone(),
            schema.parsed.clone(),
            job.import_mode.clone(),
            dataset.meta.arn.clone(),
            dataset.dataset_type,
        )
    };
    let table = read_csv_dataset(shared.objects.as_ref(), &location, &schema)
        .await
        .map_err(|e| e.to_string())?;
    Ok(Box::new(move |world: &mut World| {
        let Some(dataset) = world.state.datasets.get_mut(&dataset_arn) else {
            return;
        };
        let full = mode != "INCREMENTAL";
        if full {
            dataset.bulk_imported = true;
        }
        let target = world.data.table_mut(&dataset_arn);
        if full {
            target.replace_all(table);
        } else {
            target.upsert(table, id_column(dataset_type));
        }
    }))
}
