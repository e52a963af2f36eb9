//! Batch inference and batch segment jobs: JSON lines in, `<input name>.out` and `_CHECK` out, as the
//! real service writes them.

use bytes::Bytes;
use serde_json::{Value, json};

use super::filter_eval::FilterContext;
use super::model::{self, Model, Query, QueryError, Scored};
use super::recipes::RecipeType;
use crate::objects::{ObjectError, ObjectStore, ObjectUrl};

/// The largest input file a job reads (Personalize allows 1 GB of input per job).
pub const MAX_BATCH_INPUT_BYTES: u64 = 1 << 30;

/// Why a batch job failed as a whole. The `Display` text is the job's `failureReason`. A bad input
/// line does not fail the job: its output line carries the error instead.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    #[error("the job {which} {location:?} is not an S3 URL: {source}")]
    BadLocation {
        which: &'static str,
        location: String,
        #[source]
        source: ObjectError,
    },
    #[error("{0}")]
    Store(#[from] ObjectError),
    #[error("{url} is not UTF-8 text")]
    NotText { url: ObjectUrl },
    #[error("{job} jobs are not available for a {recipe_type} solution version")]
    WrongRecipe {
        job: &'static str,
        recipe_type: RecipeType,
    },
}

/// Runs a batch inference job: each line of `input` is `{"userId": …}`, `{"itemId": …}` or
/// `{"userId": …, "itemList": […]}` as the recipe needs, and the output has one line per input line
/// (blank lines skipped), `{"input": …, "output": {"recommendedItems": […], "scores": […]},
/// "error": null}`, or `"output": null` and the error text for a bad line.
///
/// # Errors
/// [`BatchError`]: bad locations, a store failure, input that is not text, or a recipe without
/// batch inference (segmentation, actions).
pub async fn run_batch_inference(
    store: &dyn ObjectStore,
    model: &Model,
    input: &str,
    output: &str,
    num_results: usize,
    filter: Option<&FilterContext<'_>>,
) -> Result<(), BatchError> {
    if matches!(
        model.recipe_type(),
        RecipeType::UserSegmentation | RecipeType::PersonalizedActions
    ) {
        return Err(BatchError::WrongRecipe {
            job: "Batch inference",
            recipe_type: model.recipe_type(),
        });
    }
    run_lines(store, input, output, |line| {
        let items = infer(model, line, num_results, filter)?;
        let (ids, scores): (Vec<String>, Vec<f64>) = items.into_iter().map(|s| (s.id, s.score)).unzip();
        Ok(json!({"recommendedItems": ids, "scores": scores}))
    })
    .await
}

/// Runs a batch segment job: each line is `{"itemId": …}` or `{"itemAttributes": "ITEMS.X = \"v\""}`
/// and the output line is `{"input": …, "output": {"usersList": […]}, "error": null}`.
///
/// # Errors
/// As [`run_batch_inference`]; only USER_SEGMENTATION models run segment jobs.
pub async fn run_batch_segment(
    store: &dyn ObjectStore,
    model: &Model,
    input: &str,
    output: &str,
    num_results: usize,
    filter: Option<&FilterContext<'_>>,
) -> Result<(), BatchError> {
    if model.recipe_type() != RecipeType::UserSegmentation {
        return Err(BatchError::WrongRecipe {
            job: "Batch segment",
            recipe_type: model.recipe_type(),
        });
    }
    run_lines(store, input, output, |line| {
        let users = if let Some(item) = line.get("itemId") {
            let item = item.as_str().ok_or("itemId must be a string")?;
            model::segment(model, &[item.to_string()], num_results, filter)
        } else if let Some(attributes) = line.get("itemAttributes") {
            let attributes = attributes.as_str().ok_or("itemAttributes must be a string")?;
            model::segment_by_attributes(model, attributes, num_results, filter).map_err(|e| e.to_string())?
        } else {
            return Err("the line needs itemId or itemAttributes".to_string());
        };
        let ids: Vec<String> = users.into_iter().map(|s| s.id).collect();
        Ok(json!({"usersList": ids}))
    })
    .await
}

fn infer(
    model: &Model,
    line: &Value,
    num_results: usize,
    filter: Option<&FilterContext<'_>>,
) -> Result<Vec<Scored>, String> {
    let text = |key: &str| -> Result<Option<&str>, String> {
        match line.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(format!("{key} must be a string")),
        }
    };
    let (user_id, item_id) = (text("userId")?, text("itemId")?);
    if model.recipe_type() == RecipeType::PersonalizedRanking {
        let user =
            user_id.ok_or_else(|| QueryError::MissingUserId(RecipeType::PersonalizedRanking).to_string())?;
        let list: Vec<String> = line
            .get("itemList")
            .and_then(Value::as_array)
            .and_then(|items| {
                items
                    .iter()
                    .map(|i| i.as_str().map(str::to_string))
                    .collect::<Option<_>>()
            })
            .ok_or("itemList must be a list of item IDs")?;
        return model::rank(model, user, &list, filter).map_err(|e| e.to_string());
    }
    let query = Query {
        user_id,
        item_id,
        num_results,
        filter,
    };
    model::recommend(model, &query).map_err(|e| e.to_string())
}

/// Reads the JSON lines of `input`, answers each with `answer`, and writes `<output><input name>.out`
/// and an empty `_CHECK`.
async fn run_lines(
    store: &dyn ObjectStore,
    input: &str,
    output: &str,
    answer: impl Fn(&Value) -> Result<Value, String>,
) -> Result<(), BatchError> {
    let location = |which, text: &str| {
        ObjectUrl::parse(text).map_err(|source| BatchError::BadLocation {
            which,
            location: text.to_string(),
            source,
        })
    };
    let input_url = location("input", input)?;
    let output_url = location("output", output)?;
    let name = input_url.key.rsplit('/').next().unwrap_or_default();
    if name.is_empty() {
        return Err(BatchError::BadLocation {
            which: "input",
            location: input.to_string(),
            source: ObjectError::BadUrl {
                url: input.to_string(),
                reason: "the input must name a file, not a folder",
            },
        });
    }
    let body = store.get(&input_url, MAX_BATCH_INPUT_BYTES).await?;
    let text = std::str::from_utf8(&body).map_err(|_| BatchError::NotText {
        url: input_url.clone(),
    })?;
    let mut out = String::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let record = match serde_json::from_str::<Value>(line) {
            Ok(value @ Value::Object(_)) => match answer(&value) {
                Ok(result) => json!({"input": value, "output": result, "error": null}),
                Err(error) => json!({"input": value, "output": null, "error": error}),
            },
            Ok(other) => json!({"input": other, "output": null, "error": "the line must be a JSON object"}),
            Err(e) => {
                json!({"input": line, "output": null, "error": format!("the line is not valid JSON: {e}")})
            }
        };
        out.push_str(&record.to_string());
        out.push('\n');
    }
    store
        .put(&output_url.join(&format!("{name}.out")), Bytes::from(out))
        .await?;
    store.put(&output_url.join("_CHECK"), Bytes::new()).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use super::*;
    use crate::emulator::engine::filter_eval::FilterData;
    use crate::emulator::engine::model::{TrainOptions, TrainingData, TrainingMode, train};
    use crate::emulator::engine::table::{Cell, Table};
    use crate::emulator::engine::testdata::{fixture_interactions, fixture_users, synthetic};
    use crate::objects::{MemoryStore, ObjectMeta};
    use crate::spec::filter;

    fn trained(table: &Table, recipe: &str) -> Model {
        train(
            &TrainingData {
                interactions: table,
                items: None,
                users: None,
            },
            &TrainOptions {
                recipe: recipe.to_string(),
                training_mode: TrainingMode::Full,
                event_type: None,
                event_value_threshold: None,
                previous: None,
            },
        )
        .expect("train")
    }

    fn store_with_input(lines: &str) -> MemoryStore {
        let store = MemoryStore::new();
        store.put_at(
            &ObjectUrl::new("b", "batch/g/s/job_config.json"),
            lines.to_string(),
            chrono::Utc::now(),
        );
        store
    }

    const INPUT: &str = "s3://b/batch/g/s/job_config.json";
    const OUTPUT: &str = "s3://b/batch/g/s/batch_s_2024/";

    async fn output_lines(store: &MemoryStore) -> Vec<Value> {
        let out = store
            .get(
                &ObjectUrl::new("b", "batch/g/s/batch_s_2024/job_config.json.out"),
                1 << 20,
            )
            .await
            .expect("the .out file");
        let check = store
            .head(&ObjectUrl::new("b", "batch/g/s/batch_s_2024/_CHECK"))
            .await
            .expect("head")
            .expect("_CHECK");
        assert_eq!(check.size, 0);
        std::str::from_utf8(&out)
            .expect("text")
            .lines()
            .map(|l| serde_json::from_str(l).expect("each line is JSON"))
            .collect()
    }

    #[tokio::test]
    async fn batch_inference_writes_one_line_per_input_line() {
        let table = fixture_interactions().await;
        let model = trained(&table, "aws-user-personalization");
        let store = store_with_input(
            "{\"userId\": \"15\"}\n\n{\"userId\": \"nobody\"}\nnot json\n[1]\n{\"itemId\": \"5\"}\n{\"userId\": 7}\n",
        );
        run_batch_inference(&store, &model, INPUT, OUTPUT, 5, None)
            .await
            .expect("job");
        let lines = output_lines(&store).await;
        assert_eq!(lines.len(), 6);
        assert_eq!(lines[0]["input"], json!({"userId": "15"}));
        assert_eq!(lines[0]["error"], Value::Null);
        let items = lines[0]["output"]["recommendedItems"].as_array().expect("items");
        assert_eq!(items.len(), 5);
        assert_eq!(lines[0]["output"]["scores"].as_array().expect("scores").len(), 5);
        // The job serves what the trained model answers for the user.
        let expected: Vec<String> = model::recommend(
            &model,
            &Query {
                user_id: Some("15"),
                item_id: None,
                num_results: 5,
                filter: None,
            },
        )
        .expect("recommend")
        .into_iter()
        .map(|s| s.id)
        .collect();
        assert_eq!(items, &expected.iter().map(|id| json!(id)).collect::<Vec<_>>());
        assert_eq!(
            lines[1]["output"]["recommendedItems"]
                .as_array()
                .expect("cold")
                .len(),
            5
        );
        assert_eq!(lines[2]["input"], json!("not json"));
        assert!(
            lines[2]["error"]
                .as_str()
                .expect("error")
                .starts_with("the line is not valid JSON")
        );
        assert_eq!(lines[3]["error"], json!("the line must be a JSON object"));
        assert_eq!(lines[4]["output"], Value::Null);
        assert_eq!(
            lines[4]["error"],
            json!("userId is required by a USER_PERSONALIZATION campaign")
        );
        assert_eq!(lines[5]["error"], json!("userId must be a string"));
    }

    #[tokio::test]
    async fn each_line_gets_its_own_user_in_the_filter() {
        let table = fixture_interactions().await;
        let users = fixture_users().await;
        let model = trained(&table, "aws-user-personalization");
        let items = Table::new(
            vec!["ITEM_ID".into(), "GENRE".into()],
            (0..200)
                .map(|i| {
                    vec![
                        Cell::Str(i.to_string()),
                        Cell::Str(if i % 2 == 0 { "even" } else { "odd" }.into()),
                    ]
                })
                .collect(),
        );
        let expr =
            filter::parse(r#"INCLUDE ItemID WHERE Items.GENRE IN ($G) IF CurrentUser.GENDER IN ("F")"#)
                .expect("filter");
        let values = HashMap::from([("G".to_string(), "\"even\"".to_string())]);
        let context = FilterContext::new(
            &expr,
            &values,
            FilterData {
                items: Some(&items),
                users: Some(&users),
                interactions: Some(&table),
            },
        );
        // User 0 is F (only even items), user 1 is M (the INCLUDE does not apply to him).
        let store = store_with_input("{\"userId\": \"0\"}\n{\"userId\": \"1\"}\n");
        run_batch_inference(&store, &model, INPUT, OUTPUT, 10, Some(&context))
            .await
            .expect("job");
        let lines = output_lines(&store).await;
        let ids = |line: &Value| -> Vec<u32> {
            line["output"]["recommendedItems"]
                .as_array()
                .expect("items")
                .iter()
                .map(|v| v.as_str().expect("id").parse().expect("numeric id"))
                .collect()
        };
        assert!(ids(&lines[0]).iter().all(|i| i % 2 == 0), "{:?}", ids(&lines[0]));
        assert!(ids(&lines[1]).iter().any(|i| i % 2 == 1), "{:?}", ids(&lines[1]));
    }

    #[tokio::test]
    async fn related_items_and_ranking_lines() {
        let table = synthetic(30, 40);
        let sims = trained(&table, "aws-sims");
        let store = store_with_input("{\"itemId\": \"i1\"}\n{\"userId\": \"u1\"}\n");
        run_batch_inference(&store, &sims, INPUT, OUTPUT, 3, None)
            .await
            .expect("sims job");
        let lines = output_lines(&store).await;
        let related = lines[0]["output"]["recommendedItems"].as_array().expect("items");
        assert_eq!(related.len(), 3);
        assert!(!related.contains(&json!("i1")));
        assert_eq!(
            lines[1]["error"],
            json!("itemId is required by a RELATED_ITEMS campaign")
        );

        let ranking = trained(&table, "aws-personalized-ranking");
        let store = store_with_input(
            "{\"userId\": \"u1\", \"itemList\": [\"zz\", \"i1\", \"i2\"]}\n{\"userId\": \"u1\", \"itemList\": \"i1\"}\n{\"itemList\": []}\n",
        );
        run_batch_inference(&store, &ranking, INPUT, OUTPUT, 3, None)
            .await
            .expect("ranking job");
        let lines = output_lines(&store).await;
        let ranked = lines[0]["output"]["recommendedItems"].as_array().expect("items");
        assert_eq!(ranked.len(), 3);
        assert_eq!(ranked[2], json!("zz"));
        assert_eq!(lines[1]["error"], json!("itemList must be a list of item IDs"));
        assert_eq!(
            lines[2]["error"],
            json!("userId is required by a PERSONALIZED_RANKING campaign")
        );
    }

    #[tokio::test]
    async fn batch_segments_list_users() {
        let table = synthetic(30, 40);
        let model = trained(&table, "aws-item-affinity");
        let store = store_with_input(
            "{\"itemId\": \"i3\"}\n{\"itemAttributes\": \"ITEMS.GENRE = \\\"x\\\"\"}\n{\"other\": 1}\n{\"itemId\": 3}\n",
        );
        run_batch_segment(&store, &model, INPUT, OUTPUT, 4, None)
            .await
            .expect("segment job");
        let lines = output_lines(&store).await;
        assert_eq!(lines[0]["input"], json!({"itemId": "i3"}));
        let users = lines[0]["output"]["usersList"].as_array().expect("users");
        assert_eq!(users.len(), 4);
        let users_of_i3: HashSet<String> = table
            .rows
            .iter()
            .filter(|r| r[1].to_string() == "i3")
            .map(|r| r[0].to_string())
            .collect();
        assert!(
            users
                .iter()
                .all(|u| users_of_i3.contains(u.as_str().expect("id"))),
            "{users:?}"
        );
        assert_eq!(
            lines[1]["error"],
            json!("itemAttributes queries need a model trained with an Items dataset")
        );
        assert_eq!(
            lines[2]["error"],
            json!("the line needs itemId or itemAttributes")
        );
        assert_eq!(lines[3]["error"], json!("itemId must be a string"));
        let err = run_batch_inference(&store, &model, INPUT, OUTPUT, 4, None)
            .await
            .expect_err("segmentation model");
        assert_eq!(
            err.to_string(),
            "Batch inference jobs are not available for a USER_SEGMENTATION solution version"
        );
        let popular = trained(&table, "aws-popularity-count");
        let err = run_batch_segment(&store, &popular, INPUT, OUTPUT, 4, None)
            .await
            .expect_err("not segmentation");
        assert!(matches!(err, BatchError::WrongRecipe { .. }));
    }

    /// Reads from memory but fails every write.
    #[derive(Debug)]
    struct ReadOnly(MemoryStore);

    #[async_trait::async_trait]
    impl ObjectStore for ReadOnly {
        async fn list(&self, prefix: &ObjectUrl, recursive: bool) -> Result<Vec<ObjectMeta>, ObjectError> {
            self.0.list(prefix, recursive).await
        }
        async fn head(&self, url: &ObjectUrl) -> Result<Option<ObjectMeta>, ObjectError> {
            self.0.head(url).await
        }
        async fn get(&self, url: &ObjectUrl, limit: u64) -> Result<Bytes, ObjectError> {
            self.0.get(url, limit).await
        }
        async fn put(&self, url: &ObjectUrl, _: Bytes) -> Result<(), ObjectError> {
            Err(ObjectError::Backend {
                op: "put",
                url: url.clone(),
                source: "access denied".into(),
            })
        }
    }

    #[tokio::test]
    async fn job_failures_name_what_failed() {
        let model = trained(&synthetic(30, 40), "aws-popularity-count");
        let store = store_with_input("{\"userId\": \"u1\"}\n");
        let missing = run_batch_inference(&store, &model, "s3://b/none.json", OUTPUT, 3, None)
            .await
            .expect_err("missing");
        assert_eq!(missing.to_string(), "s3://b/none.json does not exist");
        let bad = run_batch_inference(&store, &model, "b/x.json", OUTPUT, 3, None)
            .await
            .expect_err("bad url");
        assert!(
            bad.to_string()
                .starts_with("the job input \"b/x.json\" is not an S3 URL"),
            "{bad}"
        );
        let folder = run_batch_inference(&store, &model, "s3://b/batch/", OUTPUT, 3, None)
            .await
            .expect_err("folder");
        assert!(folder.to_string().contains("must name a file"), "{folder}");
        let bad = run_batch_inference(&store, &model, INPUT, "output/", 3, None)
            .await
            .expect_err("bad output");
        assert!(bad.to_string().starts_with("the job output"), "{bad}");
        store.put_at(
            &ObjectUrl::new("b", "bin.json"),
            vec![0xFF, 0xFE],
            chrono::Utc::now(),
        );
        let binary = run_batch_inference(&store, &model, "s3://b/bin.json", OUTPUT, 3, None)
            .await
            .expect_err("binary");
        assert_eq!(binary.to_string(), "s3://b/bin.json is not UTF-8 text");
        let read_only = ReadOnly(store_with_input("{\"userId\": \"u1\"}\n"));
        let denied = run_batch_inference(&read_only, &model, INPUT, OUTPUT, 3, None)
            .await
            .expect_err("denied");
        assert_eq!(
            denied.to_string(),
            "put s3://b/batch/g/s/batch_s_2024/job_config.json.out failed: access denied"
        );
        // An output location without the trailing slash is a folder too.
        run_batch_inference(&store, &model, INPUT, "s3://b/batch/g/s/batch_s_2024", 3, None)
            .await
            .expect("no slash");
        assert_eq!(output_lines(&store).await.len(), 1);
    }
}
