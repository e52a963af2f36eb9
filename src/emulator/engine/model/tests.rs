//! The model's unit tests: recipes, minimums and refusals, queries, and on data with planted
//! structure, that the families learn it.

use std::collections::{HashMap, HashSet};

use super::events::held_out_users;
use super::metrics::ndcg;
use super::query::split_keyword;
use super::*;
use crate::emulator::engine::filter_eval::FilterData;
use crate::emulator::engine::table::Cell;
use crate::emulator::engine::testdata::{fixture_interactions, interactions, synthetic};
use crate::spec::filter;

fn options(recipe: &str) -> TrainOptions {
    TrainOptions {
        recipe: recipe.to_string(),
        training_mode: TrainingMode::Full,
        event_type: None,
        event_value_threshold: None,
        previous: None,
    }
}

fn train_on(table: &Table, opts: &TrainOptions) -> Result<Model, TrainError> {
    train(
        &TrainingData {
            interactions: table,
            items: None,
            users: None,
        },
        opts,
    )
}

const STANDARD_METRICS: [&str; 8] = [
    "coverage",
    "mean_reciprocal_rank_at_25",
    "normalized_discounted_cumulative_gain_at_10",
    "normalized_discounted_cumulative_gain_at_25",
    "normalized_discounted_cumulative_gain_at_5",
    "precision_at_10",
    "precision_at_25",
    "precision_at_5",
];

#[tokio::test]
async fn the_reference_fixture_trains_with_eight_finite_metrics() {
    let table = fixture_interactions().await;
    for recipe in [
        "aws-user-personalization",
        "aws-sims",
        "aws-personalized-ranking",
        "aws-popularity-count",
    ] {
        let model = train_on(&table, &options(recipe)).expect(recipe);
        let metrics = model.metrics();
        assert_eq!(
            metrics.keys().map(String::as_str).collect::<Vec<_>>(),
            STANDARD_METRICS,
            "{recipe}"
        );
        for (key, value) in &metrics {
            assert!(
                value.is_finite() && (0.0..=1.0).contains(value),
                "{recipe} {key} = {value}"
            );
        }
        assert!(metrics["coverage"] > 0.0, "{recipe}: {metrics:?}");
        assert_eq!(model.user_count(), 25);
    }
    // Pinned: the split and the model are deterministic, so these never drift between runs.
    let model = train_on(&table, &options("aws-user-personalization")).expect("train");
    let metrics = model.metrics();
    assert_eq!(metrics["coverage"], 0.69);
    assert_eq!(metrics["precision_at_25"], 0.04);
    assert_eq!(metrics["mean_reciprocal_rank_at_25"], 0.0625);
}

#[tokio::test]
async fn training_is_deterministic_and_survives_serialisation() {
    let table = fixture_interactions().await;
    let first = train_on(&table, &options("aws-user-personalization")).expect("train");
    let second = train_on(&table, &options("aws-user-personalization")).expect("train again");
    assert_eq!(first, second);
    let json = serde_json::to_string(&first).expect("serialise");
    let back: Model = serde_json::from_str(&json).expect("deserialise");
    assert_eq!(back, first);
    let q = Query {
        user_id: Some("3"),
        item_id: None,
        num_results: 10,
        filter: None,
    };
    assert_eq!(recommend(&back, &q), recommend(&first, &q));
}

#[test]
fn damaged_models_are_rejected_when_loaded() {
    let table = synthetic(30, 40);
    let model = train_on(&table, &options("aws-sims")).expect("train");
    let mut value = serde_json::to_value(&model).expect("serialise");
    value["user_items"][0][0] = serde_json::json!(9999);
    let err = serde_json::from_value::<Model>(value).expect_err("index out of range");
    assert!(err.to_string().contains("does not list"), "{err}");
    let mut value = serde_json::to_value(&model).expect("serialise");
    value["item_counts"] = serde_json::json!([1]);
    assert!(serde_json::from_value::<Model>(value).is_err());
    let mut value = serde_json::to_value(&model).expect("serialise");
    value["neighbors"][0][0] = serde_json::json!([9999, 0.5]);
    let err = serde_json::from_value::<Model>(value).expect_err("neighbour out of range");
    assert!(err.to_string().contains("does not list"), "{err}");
    let mut value = serde_json::to_value(&model).expect("serialise");
    value["neighbors"] = serde_json::json!([[]]);
    assert!(serde_json::from_value::<Model>(value).is_err());
    let mut value = serde_json::to_value(&model).expect("serialise");
    value["trend"] = serde_json::json!([1.0]);
    assert!(serde_json::from_value::<Model>(value).is_err());
}

#[test]
fn models_saved_before_neighbours_existed_still_load() {
    // A state directory written by the popularity-only engine holds counts and histories only.
    let table = synthetic(30, 40);
    let model = train_on(&table, &options("aws-user-personalization")).expect("train");
    let mut value = serde_json::to_value(&model).expect("serialise");
    let object = value.as_object_mut().expect("object");
    object.remove("neighbors");
    object.remove("trend");
    let old: Model = serde_json::from_value(value).expect("loads");
    let recs = recommend(
        &old,
        &Query {
            user_id: Some("u1"),
            item_id: None,
            num_results: 5,
            filter: None,
        },
    )
    .expect("answers");
    assert_eq!(recs.len(), 5);
}

#[tokio::test]
async fn user_personalization_answers_in_score_order_and_cold_users_get_popular_items() {
    let table = fixture_interactions().await;
    let model = train_on(&table, &options("aws-user-personalization")).expect("train");
    let (user_col, item_col) = (
        table.column("USER_ID").expect("col"),
        table.column("ITEM_ID").expect("col"),
    );
    for user in ["0", "15", "24"] {
        let seen: HashSet<String> = table
            .rows
            .iter()
            .filter(|r| r[user_col].to_string() == user)
            .map(|r| r[item_col].to_string())
            .collect();
        assert!(!seen.is_empty());
        let recs = recommend(
            &model,
            &Query {
                user_id: Some(user),
                item_id: None,
                num_results: 25,
                filter: None,
            },
        )
        .expect("recommend");
        assert_eq!(recs.len(), 25);
        // Seen items stay candidates (a filter excludes them), and the history leads.
        assert!(seen.contains(&recs[0].id), "user {user}: {recs:?}");
        assert!(recs.windows(2).all(|w| w[0].score >= w[1].score), "{recs:?}");
    }
    // An unknown user gets the most popular items, the first one being the most interacted.
    let cold = recommend(
        &model,
        &Query {
            user_id: Some("nobody"),
            item_id: None,
            num_results: 3,
            filter: None,
        },
    )
    .expect("cold start");
    let mut counts: HashMap<String, u64> = HashMap::new();
    for r in &table.rows {
        *counts.entry(r[item_col].to_string()).or_default() += 1;
    }
    let max = counts.values().max().copied().expect("items");
    assert_eq!(counts[&cold[0].id], max);
    assert_eq!(cold.len(), 3);
}

#[test]
fn related_items_follow_co_occurrence_then_popularity() {
    // Every user who has "a" also has "b"; "c" is the most popular item overall but never
    // shares a user with "a".
    let mut rows = Vec::new();
    for u in 0..30 {
        let user = format!("u{u}");
        if u < 5 {
            rows.push((user.clone(), "a".to_string(), 100, "click"));
            rows.push((user.clone(), "b".to_string(), 101, "click"));
            for j in 0..38 {
                rows.push((user.clone(), format!("e{u}"), j, "click"));
            }
        } else {
            for j in 0..40 {
                rows.push((user.clone(), "c".to_string(), j, "click"));
            }
        }
    }
    let model = train_on(&interactions(rows), &options("aws-sims")).expect("train");
    let related = |item: &str| {
        recommend(
            &model,
            &Query {
                user_id: None,
                item_id: Some(item),
                num_results: 7,
                filter: None,
            },
        )
        .expect("related")
    };
    let for_a: Vec<String> = related("a").into_iter().map(|s| s.id).collect();
    assert_eq!(for_a, ["b", "e0", "e1", "e2", "e3", "e4", "c"]);
    // Cosine with shrinkage: 5 shared users of 5 and 5 → 5 / (5 + 5); 1 of 5 and 1 → 1 / (√5 + 5).
    assert_eq!(related("a")[0].score, 0.5);
    assert!((related("a")[1].score - 1.0 / (5f64.sqrt() + 5.0)).abs() < 1e-6);
    let unknown: Vec<String> = related("zzz").into_iter().map(|s| s.id).collect();
    assert_eq!(unknown[0], "c");
    assert!(!related("c").iter().any(|s| s.id == "c"));
    let err = recommend(
        &model,
        &Query {
            user_id: Some("u1"),
            item_id: None,
            num_results: 5,
            filter: None,
        },
    )
    .expect_err("no item");
    assert_eq!(err.to_string(), "itemId is required by a RELATED_ITEMS campaign");
}

#[test]
fn filters_admit_and_exclude_recommendations() {
    let table = synthetic(30, 40);
    let model = train_on(&table, &options("aws-popularity-count")).expect("train");
    let expr = filter::parse(r#"EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("CLICK")"#).expect("filter");
    let values = HashMap::new();
    let context = FilterContext::new(
        &expr,
        &values,
        FilterData {
            interactions: Some(&table),
            ..FilterData::default()
        },
    );
    let mut query = Query {
        user_id: Some("u1"),
        item_id: None,
        num_results: 50,
        filter: None,
    };
    let all = recommend(&model, &query).expect("unfiltered");
    query.filter = Some(&context);
    let filtered = recommend(&model, &query).expect("filtered");
    let clicked: HashSet<String> = table
        .rows
        .iter()
        .filter(|r| r[0].to_string() == "u1")
        .map(|r| r[1].to_string())
        .collect();
    assert!(all.iter().any(|s| clicked.contains(&s.id)));
    assert!(!filtered.is_empty());
    assert!(filtered.iter().all(|s| !clicked.contains(&s.id)));
    assert_eq!(filtered.len(), all.len() - clicked.len());
}

#[test]
fn ranking_orders_by_popularity_with_unknown_items_last() {
    let table = interactions((0..30).flat_map(|u| {
        (0..40).map(move |j| {
            let item = ["p", "q", "q", "r", "r", "r"][j % 6];
            (format!("u{u}"), item.to_string(), j as i64, "click")
        })
    }));
    let model = train_on(&table, &options("aws-personalized-ranking")).expect("train");
    let input: Vec<String> = ["new", "p", "r", "q", "p", "other"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let ranked = rank(&model, "u1", &input, None).expect("rank");
    let ids: Vec<&str> = ranked.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["r", "q", "p", "new", "other"]);
    assert!((ranked.iter().map(|s| s.score).sum::<f64>() - 1.0).abs() < 1e-9);
    assert_eq!(ranked[3].score, 0.0);
    let expr = filter::parse(r#"EXCLUDE ItemID WHERE Items.GENRE IN ("x")"#).expect("filter");
    let values = HashMap::new();
    let items = Table::new(
        vec!["ITEM_ID".into(), "GENRE".into()],
        vec![vec![Cell::Str("q".into()), Cell::Str("x".into())]],
    );
    let context = FilterContext::new(
        &expr,
        &values,
        FilterData {
            items: Some(&items),
            ..FilterData::default()
        },
    );
    let ids: Vec<String> = rank(&model, "u1", &input, Some(&context))
        .expect("rank")
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(ids, ["r", "p", "new", "other"]);
    let err = recommend(
        &model,
        &Query {
            user_id: Some("u1"),
            item_id: None,
            num_results: 5,
            filter: None,
        },
    )
    .expect_err("ranking");
    assert_eq!(
        err.to_string(),
        "GetRecommendations is not available for a PERSONALIZED_RANKING solution version"
    );
    let up = train_on(&table, &options("aws-user-personalization")).expect("train");
    assert!(matches!(
        rank(&up, "u1", &input, None),
        Err(QueryError::WrongOperation { .. })
    ));
    let err = recommend(
        &up,
        &Query {
            user_id: None,
            item_id: Some("p"),
            num_results: 5,
            filter: None,
        },
    )
    .expect_err("user needed");
    assert_eq!(err, QueryError::MissingUserId(RecipeType::UserPersonalization));
}

#[test]
fn minimums_fail_with_personalizes_reasons() {
    let err = train_on(&synthetic(30, 33), &options("aws-sims")).expect_err("990 interactions");
    assert_eq!(
        err.to_string(),
        "Create failed. Dataset has fewer than 1000 interactions (found 990)."
    );
    let mut opts = options("aws-sims");
    opts.event_type = Some("purchase".into());
    let err = train_on(&synthetic(30, 40), &opts).expect_err("no purchases");
    assert_eq!(
        err.to_string(),
        "Create failed. Dataset has fewer than 1000 interactions of event type purchase (found 0)."
    );
    opts.event_type = Some("CLICK".into());
    assert!(
        train_on(&synthetic(30, 40), &opts).is_ok(),
        "event types match case-insensitively"
    );
    let err = train_on(&synthetic(24, 50), &options("aws-sims")).expect_err("24 users");
    assert_eq!(
        err.to_string(),
        "Create failed. Dataset has fewer than 25 users with at least 2 interactions each."
    );
    let mut rows = synthetic(25, 40);
    rows.upsert(synthetic(0, 0), None);
    for u in 0..3000 {
        rows.rows.push(vec![
            Cell::Str(format!("single{u}")),
            Cell::Str("i1".into()),
            Cell::Int(5),
            Cell::Str("click".into()),
        ]);
    }
    let err = train_on(&rows, &options("aws-sims")).expect_err("1% rule");
    assert_eq!(
        err.to_string(),
        "Create failed. Fewer than 1% of the dataset's users have at least 2 interactions (25 of 3025)."
    );
    let no_users = Table::new(vec!["ITEM_ID".into()], vec![]);
    assert_eq!(
        train_on(&no_users, &options("aws-sims")),
        Err(TrainError::MissingColumn("USER_ID"))
    );
}

#[test]
fn the_event_value_threshold_drops_weaker_interactions() {
    let mut table = synthetic(30, 40);
    table.columns.push("EVENT_VALUE".into());
    for (i, row) in table.rows.iter_mut().enumerate() {
        row.push(Cell::Float(if i % 2 == 0 { 1.0 } else { 5.0 }));
    }
    let mut opts = options("aws-sims");
    opts.event_value_threshold = Some(5.0);
    let err = train_on(&table, &opts).expect_err("half the interactions");
    assert_eq!(
        err.to_string(),
        "Create failed. Dataset has fewer than 1000 interactions with EVENT_VALUE >= 5 (found 600)."
    );
    opts.event_value_threshold = Some(1.0);
    assert!(train_on(&table, &opts).is_ok());
}

#[test]
fn recipes_and_training_modes() {
    let table = synthetic(30, 40);
    assert_eq!(
        train_on(&table, &options("aws-magic")),
        Err(TrainError::UnknownRecipe("aws-magic".into()))
    );
    assert!(matches!(
        train_on(&table, &options("aws-next-best-action")),
        Err(TrainError::Unsupported(_))
    ));
    let full = train_on(
        &table,
        &options("arn:aws:personalize:::recipe/aws-user-personalization"),
    )
    .expect("arn");
    assert_eq!(full.recipe(), "aws-user-personalization");
    let mut update = options("aws-user-personalization");
    update.training_mode = TrainingMode::Update;
    assert_eq!(train_on(&table, &update), Err(TrainError::UpdateWithoutPrevious));
    update.previous = Some(full.clone());
    // The update sees new data but keeps the metrics of the version it updates.
    let mut more = table.clone();
    more.upsert(synthetic(31, 40), None);
    let updated = train_on(&more, &update).expect("update");
    assert_eq!(updated.metrics(), full.metrics());
    assert_eq!(updated.user_count(), 31);
    let mut sims_update = options("aws-sims");
    sims_update.training_mode = TrainingMode::Update;
    assert!(matches!(
        train_on(&table, &sims_update),
        Err(TrainError::UpdateNotSupported(_))
    ));
    let mut mismatch = options("aws-hrnn-coldstart");
    mismatch.training_mode = TrainingMode::Update;
    mismatch.previous = Some(train_on(&table, &options("aws-sims")).expect("sims"));
    let err = train_on(&table, &mismatch).expect_err("mismatch");
    assert!(
        err.to_string()
            .contains("previous model is a RELATED_ITEMS model"),
        "{err}"
    );
}

#[test]
fn use_cases_train_on_their_event_type() {
    let mut rows: Vec<(String, String, i64, &'static str)> = Vec::new();
    for u in 0..40 {
        for j in 0..40 {
            let event = if j % 4 == 0 { "View" } else { "Purchase" };
            rows.push((format!("u{u}"), format!("i{}", (u + j) % 20), j as i64, event));
        }
    }
    let table = interactions(rows);
    let err = train_on(&table, &options("aws-ecomm-popular-items-by-views")).expect_err("300 views");
    assert!(
        err.to_string().contains("of event type View (found 400)"),
        "{err}"
    );
    assert!(train_on(&table, &options("aws-ecomm-popular-items-by-purchases")).is_ok());
}

#[tokio::test]
async fn segments_rank_users_by_affinity() {
    let mut rows = Vec::new();
    for u in 0..30 {
        for j in 0..40 {
            rows.push((format!("u{u:02}"), format!("i{}", j % 10), j as i64, "click"));
        }
    }
    // Only u05 and u07 touched "rare"; u07 twice as many other items.
    rows.push(("u05".to_string(), "rare".to_string(), 100, "click"));
    rows.push(("u07".to_string(), "rare".to_string(), 100, "click"));
    rows.push(("u07".to_string(), "extra".to_string(), 101, "click"));
    let table = interactions(rows);
    let items = Table::new(
        vec!["ITEM_ID".into(), "GENRES".into()],
        vec![
            vec![Cell::Str("rare".into()), Cell::Str("Comedy|Drama".into())],
            vec![Cell::Str("i1".into()), Cell::Str("Action".into())],
        ],
    );
    let model = train(
        &TrainingData {
            interactions: &table,
            items: Some(&items),
            users: None,
        },
        &options("aws-item-attribute-affinity"),
    )
    .expect("train");
    assert_eq!(model.metrics().keys().collect::<Vec<_>>(), ["hit", "recall"]);
    assert!(model.metrics().values().all(|v| v.is_finite()));
    let ids = |scored: Vec<Scored>| scored.into_iter().map(|s| s.id).collect::<Vec<_>>();
    let segment_rare = segment(&model, &["rare".to_string(), "unknown".to_string()], 3, None);
    // u05's newest item is "rare"; u07 touched "extra" after it, so its vote for "rare" weighs less.
    assert!(segment_rare[0].score > segment_rare[1].score && segment_rare[1].score > segment_rare[2].score);
    assert!(segment_rare.iter().all(|s| (0.0..=1.0).contains(&s.score)));
    assert_eq!(ids(segment_rare), ["u05", "u07", "u00"]);
    let by_attribute = segment_by_attributes(
        &model,
        r#"ITEMS.GENRES = "Drama" OR ITEMS.GENRES IN ("Horror")"#,
        2,
        None,
    )
    .expect("attributes");
    assert_eq!(ids(by_attribute), ["u05", "u07"]);
    let users = Table::new(
        vec!["USER_ID".into(), "TIER".into()],
        vec![vec![Cell::Str("u05".into()), Cell::Str("gold".into())]],
    );
    let expr = filter::parse(r#"INCLUDE UserID WHERE Users.TIER IN ("gold")"#).expect("filter");
    let values = HashMap::new();
    let context = FilterContext::new(
        &expr,
        &values,
        FilterData {
            users: Some(&users),
            ..FilterData::default()
        },
    );
    assert_eq!(
        ids(segment(&model, &["rare".to_string()], 3, Some(&context))),
        ["u05"]
    );
    for (expression, expected) in [
        ("GENRES = \"Drama\"", "is not ITEMS.FIELD"),
        ("ITEMS.COLOUR = \"red\"", "has no field COLOUR"),
        ("ITEMS.GENRES = Drama", "has no quoted value"),
    ] {
        let err = segment_by_attributes(&model, expression, 2, None).expect_err(expression);
        assert!(err.to_string().contains(expected), "{expression}: {err}");
    }
    let plain = train_on(&table, &options("aws-item-affinity")).expect("train");
    assert_eq!(
        segment_by_attributes(&plain, "ITEMS.GENRES = \"Drama\"", 2, None),
        Err(QueryError::NoItemMetadata)
    );
    let err = recommend(
        &plain,
        &Query {
            user_id: Some("u01"),
            item_id: None,
            num_results: 1,
            filter: None,
        },
    )
    .expect_err("segmentation");
    assert!(matches!(err, QueryError::WrongOperation { .. }));
}

#[test]
fn ndcg_matches_the_definition() {
    assert_eq!(ndcg(&[true, false], 1, 5), 1.0);
    let expected = (1.0 / 3f64.log2()) / 1.0;
    assert!((ndcg(&[false, true], 1, 5) - expected).abs() < 1e-12);
    assert_eq!(ndcg(&[false, false], 2, 5), 0.0);
    assert_eq!(ndcg(&[false, true], 1, 1), 0.0);
}

#[test]
fn held_out_users_are_a_stable_tenth() {
    let users: Vec<String> = (0..1000).map(|u| format!("user{u}")).collect();
    let held = held_out_users(&users);
    assert!((60..=140).contains(&held.len()), "{}", held.len());
    assert_eq!(held, held_out_users(&users));
    assert_eq!(held_out_users(&["only".to_string()]).len(), 0);
    assert_eq!(held_out_users(&["a".to_string(), "b".to_string()]).len(), 1);
}

#[test]
fn keyword_split_respects_quotes() {
    assert_eq!(
        split_keyword(r#"a = "x OR y" OR b = "z""#, "OR"),
        [r#"a = "x OR y""#, r#"b = "z""#]
    );
    assert_eq!(split_keyword("a and b", "AND"), ["a", "b"]);
}

mod planted {
    //! On the generator's data: the structure it plants is what the models learn.
    use super::*;
    use crate::emulator::engine::synthetic::{self, Params, SyntheticData};

    pub(super) fn data(seed: u64) -> SyntheticData {
        synthetic::generate(&Params::new(600, 240, 24_000, seed)).expect("valid params")
    }

    pub(super) fn train_with_items(d: &SyntheticData, recipe: &str) -> Model {
        train(
            &TrainingData {
                interactions: &d.interactions_table(),
                items: Some(&d.items_table()),
                users: Some(&d.users_table()),
            },
            &options(recipe),
        )
        .expect(recipe)
    }

    fn ndcg10(model: &Model) -> f64 {
        model.metrics()["normalized_discounted_cumulative_gain_at_10"]
    }

    #[test]
    fn user_personalization_beats_popularity_by_a_clear_margin() {
        let d = data(5);
        let popularity = train_with_items(&d, "aws-popularity-count");
        for recipe in ["aws-user-personalization", "aws-user-personalization-v2"] {
            let up = train_with_items(&d, recipe);
            assert!(
                ndcg10(&up) > 1.8 * ndcg10(&popularity),
                "{recipe}: NDCG@10 {} vs popularity {}",
                ndcg10(&up),
                ndcg10(&popularity)
            );
            let (p, q) = (up.metrics(), popularity.metrics());
            assert!(p["precision_at_10"] > q["precision_at_10"]);
            assert!(p["mean_reciprocal_rank_at_25"] > q["mean_reciprocal_rank_at_25"]);
            // Popularity shows every user the same 25 items; the personal model spreads.
            assert!(p["coverage"] > 3.0 * q["coverage"], "{p:?} {q:?}");
        }
        // Without item metadata the collaborative model alone still wins.
        let plain = train_on(&d.interactions_table(), &options("aws-user-personalization")).expect("train");
        assert!(ndcg10(&plain) > 1.8 * ndcg10(&popularity));
    }

    /// Share of the top-10 related items of the first 30 items that are of the item's category.
    fn same_category_share(d: &SyntheticData, model: &Model) -> f64 {
        let (mut same, mut total) = (0, 0);
        for item in 0..30 {
            let id = format!("i{item}");
            let related = recommend(
                model,
                &Query {
                    user_id: None,
                    item_id: Some(&id),
                    num_results: 10,
                    filter: None,
                },
            )
            .expect("related");
            assert_eq!(related.len(), 10);
            assert!(related.iter().all(|s| s.id != id), "never the item itself");
            for s in &related {
                let other: usize = s.id[1..].parse().expect("generated id");
                same += usize::from(d.item_category[other] == d.item_category[item]);
                total += 1;
            }
        }
        same as f64 / total as f64
    }

    #[test]
    fn similar_items_are_mostly_of_the_items_category() {
        let d = data(9);
        // 8 balanced categories: a random item is of the same category 1 time in 8.
        let similar = train_with_items(&d, "aws-similar-items");
        let share = same_category_share(&d, &similar);
        assert!(share > 0.8, "aws-similar-items: {share}");
        // SIMS uses co-occurrence only, and still finds the category more often than not.
        let sims = train_with_items(&d, "aws-sims");
        let share = same_category_share(&d, &sims);
        assert!(share > 0.5, "aws-sims: {share}");
        let popularity = train_with_items(&d, "aws-popularity-count");
        let top: Vec<Scored> = recommend(
            &popularity,
            &Query {
                user_id: Some("u1"),
                item_id: None,
                num_results: 10,
                filter: None,
            },
        )
        .expect("popular");
        let categories: HashSet<u16> = top
            .iter()
            .map(|s| d.item_category[s.id[1..].parse::<usize>().expect("id")])
            .collect();
        assert!(
            categories.len() >= 4,
            "popularity ignores categories: {categories:?}"
        );
    }

    #[test]
    fn user_recommendations_follow_the_users_taste_and_keep_seen_items() {
        let d = data(3);
        let model = train_with_items(&d, "aws-user-personalization");
        let table = d.interactions_table();
        let (mut in_taste, mut total, mut seen_recommended) = (0, 0, 0);
        for user in 0..40usize {
            let cluster = d.user_cluster[user];
            let id = format!("u{user}");
            let recs = recommend(
                &model,
                &Query {
                    user_id: Some(&id),
                    item_id: None,
                    num_results: 10,
                    filter: None,
                },
            )
            .expect("recommend");
            assert_eq!(recs.len(), 10);
            assert!(recs.windows(2).all(|w| w[0].score >= w[1].score), "{recs:?}");
            assert!(recs.iter().all(|s| (0.0..=1.0).contains(&s.score)));
            let seen: HashSet<String> = d
                .interactions
                .iter()
                .filter(|e| e.user as usize == user)
                .map(|e| format!("i{}", e.item))
                .collect();
            for s in &recs {
                let category = d.item_category[s.id[1..].parse::<usize>().expect("id")];
                in_taste += usize::from(category == cluster || category == (cluster + 1) % 8);
                total += 1;
                seen_recommended += usize::from(seen.contains(&s.id));
            }
        }
        // The user's two categories hold a quarter of the items.
        assert!(in_taste as f64 > 0.75 * total as f64, "{in_taste} of {total}");
        assert!(
            seen_recommended > 0,
            "seen items are not removed without a filter"
        );
        // An interactions filter removes them.
        let expr = filter::parse(r#"EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("click", "purchase")"#)
            .expect("filter");
        let values = HashMap::new();
        let context = FilterContext::new(
            &expr,
            &values,
            FilterData {
                interactions: Some(&table),
                ..FilterData::default()
            },
        );
        for user in 0..10 {
            let id = format!("u{user}");
            let recs = recommend(
                &model,
                &Query {
                    user_id: Some(&id),
                    item_id: None,
                    num_results: 10,
                    filter: Some(&context),
                },
            )
            .expect("filtered");
            assert_eq!(recs.len(), 10);
            assert!(recs.iter().all(|s| {
                !d.interactions
                    .iter()
                    .any(|e| e.user as usize == user && format!("i{}", e.item) == s.id)
            }));
        }
        // A cold user gets the most popular items.
        let cold = recommend(
            &model,
            &Query {
                user_id: Some("stranger"),
                item_id: None,
                num_results: 5,
                filter: None,
            },
        )
        .expect("cold");
        let mut counts = vec![0usize; d.item_category.len()];
        d.interactions.iter().for_each(|e| counts[e.item as usize] += 1);
        let max = counts.iter().max().copied().expect("items");
        assert_eq!(counts[cold[0].id[1..].parse::<usize>().expect("id")], max);
    }

    #[test]
    fn personalized_ranking_puts_the_users_categories_first() {
        let d = data(4);
        let model = train_with_items(&d, "aws-personalized-ranking");
        // Four items of each category, in category order.
        let mut input: Vec<String> = Vec::new();
        for category in 0..8u16 {
            input.extend(
                (0..d.item_category.len())
                    .filter(|&i| d.item_category[i] == category)
                    .take(4)
                    .map(|i| format!("i{i}")),
            );
        }
        input.push("not-an-item".into());
        let (mut in_taste, mut total) = (0, 0);
        for user in 0..30usize {
            let cluster = d.user_cluster[user];
            let ranked = rank(&model, &format!("u{user}"), &input, None).expect("rank");
            assert_eq!(ranked.len(), input.len());
            assert_eq!(ranked.last().map(|s| s.id.as_str()), Some("not-an-item"));
            assert!((ranked.iter().map(|s| s.score).sum::<f64>() - 1.0).abs() < 1e-9);
            for s in &ranked[..8] {
                let category = d.item_category[s.id[1..].parse::<usize>().expect("id")];
                in_taste += usize::from(category == cluster || category == (cluster + 1) % 8);
                total += 1;
            }
        }
        // The user's two categories are 8 of the 32 items.
        assert!(in_taste as f64 > 0.6 * total as f64, "{in_taste} of {total}");
    }

    #[test]
    fn trending_now_finds_the_rising_new_items() {
        let d = data(6);
        let trending = train_with_items(&d, "aws-trending-now");
        let popularity = train_with_items(&d, "aws-popularity-count");
        let window_start = d.params.start + d.params.span_seconds - 21 * 86_400;
        let new_in_top = |model: &Model| {
            recommend(
                model,
                &Query {
                    user_id: None,
                    item_id: None,
                    num_results: 10,
                    filter: None,
                },
            )
            .expect("popular")
            .iter()
            .filter(|s| d.item_created[s.id[1..].parse::<usize>().expect("id")] >= window_start)
            .count()
        };
        let (rising, popular) = (new_in_top(&trending), new_in_top(&popularity));
        assert!(
            rising >= 5,
            "trending top 10 has {rising} items of the last 3 weeks"
        );
        assert!(rising > popular, "popularity top 10 has {popular}");
    }

    #[test]
    fn item_affinity_segments_are_the_users_who_like_the_category() {
        let d = data(8);
        let model = train_with_items(&d, "aws-item-affinity");
        let metrics = model.metrics();
        assert!(metrics["hit"] > 0.0 && metrics["recall"] > 0.0, "{metrics:?}");
        let (mut fans, mut total) = (0, 0);
        for item in 0..20usize {
            let category = d.item_category[item];
            for s in segment(&model, &[format!("i{item}")], 20, None) {
                let cluster = d.user_cluster[s.id[1..].parse::<usize>().expect("id")];
                // Cluster c likes categories c and c + 1.
                fans += usize::from(cluster == category || (cluster + 1) % 8 == category);
                total += 1;
            }
        }
        assert!(fans as f64 > 0.6 * total as f64, "{fans} of {total}");
    }

    #[test]
    fn events_put_after_the_import_count_in_training() {
        let d = data(2);
        let mut table = d.interactions_table();
        // A new user whose only events arrive through PutEvents, all in category 0.
        let books: Vec<usize> = (0..d.item_category.len())
            .filter(|&i| d.item_category[i] == 0)
            .take(6)
            .collect();
        let events = Table::new(
            table.columns.clone(),
            books
                .iter()
                .enumerate()
                .map(|(k, i)| {
                    vec![
                        Cell::Str("newcomer".into()),
                        Cell::Str(format!("i{i}")),
                        Cell::Int(d.params.start + d.params.span_seconds + k as i64),
                        Cell::Str("click".into()),
                    ]
                })
                .collect(),
        );
        table.put_individual(events, None);
        let model = train(
            &TrainingData {
                interactions: &table,
                items: Some(&d.items_table()),
                users: None,
            },
            &options("aws-user-personalization"),
        )
        .expect("train");
        let recs = recommend(
            &model,
            &Query {
                user_id: Some("newcomer"),
                item_id: None,
                num_results: 10,
                filter: None,
            },
        )
        .expect("recommend");
        let in_category = recs
            .iter()
            .filter(|s| matches!(d.item_category[s.id[1..].parse::<usize>().expect("id")], 0 | 1))
            .count();
        assert!(in_category >= 7, "{recs:?}");
    }
}
