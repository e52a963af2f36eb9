//! The emulator's data engine: CSV imports checked against schemas, model training, recommendations,
//! filters and batch jobs, as pure functions over the object-store port.
//!
//! The engine knows nothing of HTTP, ARNs, statuses or persistence: the server owns resources and
//! lifecycles and calls these functions. Every error's `Display` text is what Personalize would show
//! (a `failureReason`, or the message of an InvalidInputException).
//!
//! # API
//! ```text
//! table        Cell { Null, Str, Int, Float, Bool }        (serde: untagged JSON values)
//!              Table { columns, rows }                      (serde; Default; Table::new(columns, rows))
//!                .replace_all(other)                        FULL import: bulk rows replaced, Put* rows kept
//!                .upsert(other, id_column)                  INCREMENTAL import: same ID replaced, else appended
//!                .put_individual(other, id_column)          PutEvents/PutItems/PutUsers (id None for interactions)
//!                .column(name), .len(), .is_individual(i)
//! import       read_csv_dataset(store, data_location, &AvroSchema) -> Result<Table, ImportError>   (async)
//!                one object, or every *.csv directly under a folder ("…/" or the key without "/")
//!              parse_csv(url, bytes, schema, &mut table)    the same check on bytes in hand
//!              row_from_properties(schema, id_field, id, properties) -> Result<Vec<Cell>, String>
//!              row_from_event(schema, user_id, &EventRecord) -> Result<Vec<Cell>, String>
//!              EventRecord { event_type, item_id, sent_at, event_value, properties,
//!                            recommendation_id, impression, attribution_source }
//! recipes      RECIPES, find(name_or_arn) -> Option<&Recipe>, Recipe { name, recipe_type, domain,
//!                event_type, supports_update, supports_batch } (the table is spec::recipes; `trainable(r)` is the engine's own), RecipeType (USER_PERSONALIZATION …)
//! model        train(&TrainingData { interactions, items, users }, &TrainOptions { recipe,
//!                training_mode: Full|Update, event_type, event_value_threshold, previous })
//!                -> Result<Model, TrainError>
//!              Model: Serialize + Deserialize; .metrics() -> BTreeMap<String, f64>, .recipe_type(),
//!                .recipe(), .item_count(), .user_count()
//!              recommend(&model, &Query { user_id, item_id, num_results, filter }) -> Result<Vec<Scored>, QueryError>
//!              rank(&model, user_id, &input, filter) -> Result<Vec<Scored>, QueryError>
//!              segment(&model, &item_ids, num_results, filter) -> Vec<Scored>
//!              segment_by_attributes(&model, "ITEMS.GENRES = \"Comedy\"", num_results, filter) -> Result<…>
//!              Scored { id, score }
//!                (model/: learn = what each family learns, metrics = GetSolutionMetrics on a
//!                held-out split, query = answers, events = extraction and training minimums)
//! synthetic    generate(&Params { seed, users, items, interactions, categories, start, span_seconds })
//!                -> SyntheticData (ground truth + write_dir / *_table); INTERACTIONS_SCHEMA, ITEMS_SCHEMA, USERS_SCHEMA
//! filter_eval  FilterContext::new(&FilterExpression, &filterValues, FilterData { items, users, interactions })
//!                .for_request(user_id, current_item), .admits(candidate_id) -> bool
//!              check_filter_values(&FilterExpression, &filterValues) -> Result<(), String>
//! batch        run_batch_inference(store, &model, input_url, output_folder, num_results, filter)
//!              run_batch_segment(store, &model, input_url, output_folder, num_results, filter)
//!                -> Result<(), BatchError>; write <output><input name>.out and an empty _CHECK
//! ```
//! `recommend`, `rank`, `segment` and the batch jobs set the filter's current user and item from each
//! request or line, so the server builds one [`filter_eval::FilterContext`] per filter and data set.
//!
//! # Guarantees
//! * Imports stream each CSV object row by row and keep only the typed cells; one object's bytes are
//!   in memory at a time (at most [`import::MAX_IMPORT_OBJECT_BYTES`]).
//! * Training, metrics and answers are deterministic for the same data and options.
//! * No function panics on bad input: CSV bytes, property JSON and batch lines are checked.

pub mod batch;
pub mod filter_eval;
pub mod import;
pub mod model;
pub mod recipes;
pub mod synthetic;
pub mod table;
pub mod values;

#[cfg(test)]
mod testdata;

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send<T: Send>(_: &T) {}

    /// The server runs jobs on spawned tasks: the futures must be `Send`.
    #[test]
    fn job_futures_are_send() {
        let store = crate::objects::MemoryStore::new();
        let schema = testdata::users_schema();
        let import = import::read_csv_dataset(&store, "s3://b/k.csv", &schema);
        assert_send(&import);
        let model = model::train(
            &model::TrainingData {
                interactions: &testdata::synthetic(30, 40),
                items: None,
                users: None,
            },
            &model::TrainOptions {
                recipe: "aws-sims".into(),
                training_mode: model::TrainingMode::Full,
                event_type: None,
                event_value_threshold: None,
                previous: None,
            },
        )
        .expect("train");
        let expr =
            crate::spec::filter::parse(r#"EXCLUDE ItemID WHERE Items.GENRE IN ("x")"#).expect("filter");
        let values = std::collections::HashMap::new();
        let context = filter_eval::FilterContext::new(&expr, &values, filter_eval::FilterData::default());
        let job = batch::run_batch_inference(&store, &model, "s3://b/in", "s3://b/out/", 5, Some(&context));
        assert_send(&job);
        let job = batch::run_batch_segment(&store, &model, "s3://b/in", "s3://b/out/", 5, Some(&context));
        assert_send(&job);
    }
}
