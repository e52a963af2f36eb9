//! Background data work started by Create calls: imports, training, batch jobs.
//!
//! Each job reads what it needs under the lock, releases it for the object-store I/O and the
//! computation, then locks again to record the outcome, but only if the resource still awaits it
//! (it may have been stopped, deleted or reset meanwhile). The outcome ends the resource's creation
//! in `ACTIVE` or in `CREATE FAILED` with the reason.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;

use super::data::{GroupTables, id_column, pending_model_key};
use super::engine::batch::{run_batch_inference, run_batch_segment};
use super::engine::filter_eval::FilterContext;
use super::engine::import::read_csv_dataset;
use super::engine::model::{self, Model, TrainOptions, TrainingData, TrainingMode};
use super::engine::table::RowDelta;
use super::job::{Job, JobKind};
use super::shared::{Shared, World};
use super::state::BatchJob;
use crate::spec::filter::FilterExpression;

/// What a finished job changes in the world when it succeeded.
type Apply = Box<dyn FnOnce(&mut World) + Send>;

/// Runs a job to its outcome and records it.
pub async fn run(shared: &Arc<Shared>, job: Job) {
    let outcome = match job.kind {
        JobKind::Import => import(shared, &job.arn).await,
        JobKind::Train => train_version(shared, &job.arn).await,
        JobKind::TrainRecommender => train_recommender(shared, &job.arn, false).await,
        JobKind::RetrainRecommender => train_recommender(shared, &job.arn, true).await,
        JobKind::BatchInference => batch(shared, &job.arn, false).await,
        JobKind::BatchSegment => batch(shared, &job.arn, true).await,
    };
    complete(shared, &job, outcome).await;
}

/// Starts background work; it stops at shutdown.
pub fn spawn(shared: &Arc<Shared>, job: Job) {
    let task_shared = Arc::clone(shared);
    shared.tasks.spawn(async move {
        let cancel = task_shared.cancel.clone();
        tokio::select! {
            () = cancel.cancelled() => {}
            () = run(&task_shared, job) => {}
        }
    });
}

/// Records the outcome, unless the resource (or its update) no longer awaits it.
async fn complete(shared: &Arc<Shared>, job: &Job, outcome: Result<Apply, String>) {
    let now = shared.clock.now();
    let mut world = shared.world.lock().await;
    let timeline = if job.kind == JobKind::RetrainRecommender {
        world
            .state
            .recommenders
            .get_mut(&job.arn)
            .filter(|r| r.meta.seq == job.seq && !r.meta.is_gone(now))
            .and_then(|r| r.update.as_mut())
            .map(|u| &mut u.timeline)
    } else {
        world
            .state
            .meta_mut(&job.arn, now)
            .filter(|m| m.seq == job.seq)
            .map(|m| &mut m.timeline)
    };
    let Some(timeline) = timeline else { return };
    match outcome {
        Ok(apply) => {
            if timeline.finish(now, None) {
                apply(&mut world);
            }
        }
        Err(reason) => {
            timeline.finish(now, Some(reason));
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
        if full {
            world.data.table_mut(&dataset_arn).replace_all(table);
        } else {
            world.data.merge_rows(
                &dataset_arn,
                RowDelta {
                    rows: table,
                    id_column: id_column(dataset_type).map(str::to_string),
                    individual: false,
                },
            );
        }
    }))
}

/// What training needs, gathered under the lock.
struct TrainInput {
    group_arn: String,
    tables: GroupTables,
    options: TrainOptions,
}

/// Trains on a blocking thread (it is CPU work) and returns the model.
async fn run_training(input: TrainInput) -> Result<Model, String> {
    let TrainInput {
        group_arn,
        tables,
        options,
    } = input;
    tokio::task::spawn_blocking(move || {
        let interactions = tables.interactions.ok_or_else(|| {
            format!("Create failed. The dataset group {group_arn} has no interactions data.")
        })?;
        let data = TrainingData {
            interactions: &interactions,
            items: tables.items.as_deref(),
            users: tables.users.as_deref(),
        };
        model::train(&data, &options).map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| format!("Create failed. Training stopped unexpectedly: {e}"))?
}

/// `solutionConfig.eventValueThreshold`, a number sent as a string.
fn event_value_threshold(config: Option<&Value>) -> Result<Option<f64>, String> {
    let Some(text) = config
        .and_then(|c| c.get("eventValueThreshold"))
        .and_then(Value::as_str)
    else {
        return Ok(None);
    };
    text.trim()
        .parse::<f64>()
        .map(Some)
        .map_err(|_| format!("Create failed. eventValueThreshold {text:?} is not a number."))
}

/// Trains a solution version on its group's data; UPDATE starts from the newest ACTIVE FULL model.
async fn train_version(shared: &Arc<Shared>, arn: &str) -> Result<Apply, String> {
    let input = {
        let world = shared.world.lock().await;
        let (state, data) = (&world.state, &world.data);
        let now = shared.clock.now();
        let v = state
            .solution_versions
            .get(arn)
            .ok_or_else(|| format!("The solution version {arn} no longer exists"))?;
        let update = v.training_mode == "UPDATE";
        let previous = if update {
            state
                .solution_versions
                .values()
                .filter(|p| {
                    p.solution_arn == v.solution_arn && p.training_mode == "FULL" && p.meta.is_active(now)
                })
                .max_by_key(|p| p.meta.seq)
                .and_then(|p| data.model(&p.meta.arn))
                .map(|m| Model::clone(m))
        } else {
            None
        };
        TrainInput {
            group_arn: v.group_arn.clone(),
            tables: GroupTables::of(state, data, &v.group_arn),
            options: TrainOptions {
                recipe: v.recipe_arn.clone(),
                training_mode: if update {
                    TrainingMode::Update
                } else {
                    TrainingMode::Full
                },
                event_type: v.event_type.clone(),
                event_value_threshold: event_value_threshold(v.config.as_ref())?,
                previous,
            },
        }
    };
    let model = run_training(input).await?;
    let arn = arn.to_string();
    Ok(Box::new(move |world: &mut World| {
        if let Some(v) = world.state.solution_versions.get_mut(&arn) {
            v.metrics = Some(model.metrics());
        }
        world.data.set_model(&arn, Arc::new(model));
    }))
}

/// Trains a recommender's use case (its own event type applies) on its group's data. A
/// `retrain` keeps the new model aside until the update that asked for it is ACTIVE
/// ([`World::settle`]), so the recommender serves the old one meanwhile.
async fn train_recommender(shared: &Arc<Shared>, arn: &str, retrain: bool) -> Result<Apply, String> {
    let input = {
        let world = shared.world.lock().await;
        let r = world
            .state
            .recommenders
            .get(arn)
            .ok_or_else(|| format!("The recommender {arn} no longer exists"))?;
        TrainInput {
            group_arn: r.group_arn.clone(),
            tables: GroupTables::of(&world.state, &world.data, &r.group_arn),
            options: TrainOptions {
                recipe: r.recipe_arn.clone(),
                training_mode: TrainingMode::Full,
                event_type: None,
                event_value_threshold: None,
                previous: None,
            },
        }
    };
    let model = run_training(input).await?;
    let arn = arn.to_string();
    Ok(Box::new(move |world: &mut World| {
        if retrain {
            world.data.set_model(&pending_model_key(&arn), Arc::new(model));
            return;
        }
        if let Some(r) = world.state.recommenders.get_mut(&arn) {
            r.metrics = Some(model.metrics());
        }
        world.data.set_model(&arn, Arc::new(model));
    }))
}

/// The results per line when a job does not say (GetRecommendations' default).
const DEFAULT_BATCH_RESULTS: usize = 25;

/// Runs a batch inference (or, with `segment`, batch segment) job: reads its JSON lines and writes
/// `<input name>.out` and `_CHECK` under its output path.
async fn batch(shared: &Arc<Shared>, arn: &str, segment: bool) -> Result<Apply, String> {
    let (job, model, filter, tables): (BatchJob, Arc<Model>, Option<String>, GroupTables) = {
        let world = shared.world.lock().await;
        let (state, data) = (&world.state, &world.data);
        let job = if segment {
            state.batch_segment_jobs.get(arn).map(|j| j.0.clone())
        } else {
            state.batch_inference_jobs.get(arn).map(|j| j.0.clone())
        }
        .ok_or_else(|| format!("The batch job {arn} no longer exists"))?;
        let version = state
            .solution_versions
            .get(&job.solution_version_arn)
            .ok_or_else(|| {
                format!(
                    "The solution version {} no longer exists",
                    job.solution_version_arn
                )
            })?;
        let model = data
            .model(&version.meta.arn)
            .cloned()
            .ok_or_else(|| format!("The solution version {} has no trained model", version.meta.arn))?;
        let filter = match &job.filter_arn {
            Some(f) => Some(
                state
                    .filters
                    .get(f)
                    .map(|f| f.expression.clone())
                    .ok_or_else(|| format!("The filter {f} no longer exists"))?,
            ),
            None => None,
        };
        let tables = GroupTables::of(state, data, &version.group_arn);
        (job, model, filter, tables)
    };
    let expression: Option<FilterExpression> = filter
        .map(|text| crate::spec::filter::parse(&text).map_err(|e| format!("The filter is invalid: {e}")))
        .transpose()?;
    // Batch jobs have no filterValues: placeholders of EXCLUDE parts are skipped.
    let values = HashMap::new();
    let context = expression
        .as_ref()
        .map(|e| FilterContext::new(e, &values, tables.filter_data()));
    let num_results = job
        .num_results
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(DEFAULT_BATCH_RESULTS);
    let store = shared.objects.as_ref();
    let result = if segment {
        run_batch_segment(
            store,
            &model,
            &job.input_path,
            &job.output_path,
            num_results,
            context.as_ref(),
        )
        .await
    } else {
        run_batch_inference(
            store,
            &model,
            &job.input_path,
            &job.output_path,
            num_results,
            context.as_ref(),
        )
        .await
    };
    result.map_err(|e| e.to_string())?;
    Ok(Box::new(|_: &mut World| {}))
}
