//! Property tests: no request body, however odd, makes an operation panic.

use std::sync::Arc;

use proptest::prelude::*;
use serde_json::{Map, Number, Value, json};

use super::arn::Scope;
use super::clock::Durations;
use super::control::{self, Cx};
use super::data::Data;
use super::engine::import::parse_csv;
use super::engine::model::{self, TrainOptions, TrainingData, TrainingMode};
use super::engine::table::Table;
use super::faults::FailureRules;
use super::input::Input;
use super::runtime;
use crate::objects::ObjectUrl;

const INTERACTIONS_CSV: &str = include_str!("../../tests/fixtures/data/interactions.csv");
const SCHEMA: &str = r#"{"type":"record","name":"Interactions","fields":[{"name":"ITEM_ID","type":"string"},{"name":"USER_ID","type":"string"},{"name":"TIMESTAMP","type":"long"},{"name":"EVENT_TYPE","type":"string"},{"name":"EVENT_VALUE","type":"float"}]}"#;
const G: &str = "arn:aws:personalize:us-east-1:000000000000:dataset-group/g";
const SOLUTION: &str = "arn:aws:personalize:us-east-1:000000000000:solution/s";

/// Member names the operations read, so generated bodies reach past the first check.
const MEMBERS: &[&str] = &[
    "name",
    "schema",
    "schemaArn",
    "datasetGroupArn",
    "datasetType",
    "datasetArn",
    "jobName",
    "dataSource",
    "dataLocation",
    "importMode",
    "roleArn",
    "kmsKeyArn",
    "domain",
    "tags",
    "tagKey",
    "tagValue",
    "tagKeys",
    "resourceArn",
    "filterExpression",
    "filterArn",
    "filterValues",
    "recipeArn",
    "solutionArn",
    "solutionConfig",
    "solutionUpdateConfig",
    "performAutoTraining",
    "performHPO",
    "performAutoML",
    "solutionVersionArn",
    "trainingMode",
    "campaignArn",
    "campaignConfig",
    "minProvisionedTPS",
    "syncWithLatestSolutionVersion",
    "recommenderArn",
    "recommenderConfig",
    "jobInput",
    "jobOutput",
    "s3DataSource",
    "s3DataDestination",
    "path",
    "numResults",
    "maxResults",
    "nextToken",
    "userId",
    "itemId",
    "inputList",
    "metadataColumns",
    "trackingId",
    "sessionId",
    "eventList",
    "eventType",
    "sentAt",
    "properties",
    "items",
    "users",
    "impression",
    "eventTrackerArn",
    "recipeProvider",
    "itemExplorationConfig",
    "autoTrainingConfig",
    "schedulingExpression",
    "eventValueThreshold",
];

/// Strings that name things that exist, so operations get past their lookups.
fn known_strings() -> Vec<String> {
    vec![
        G.to_string(),
        SOLUTION.to_string(),
        format!("{SOLUTION}/$LATEST"),
        "arn:aws:personalize:us-east-1:000000000000:dataset/g/INTERACTIONS".to_string(),
        "arn:aws:personalize:us-east-1:000000000000:schema/i".to_string(),
        "arn:aws:personalize:us-east-1:000000000000:filter/f".to_string(),
        "arn:aws:personalize:us-east-1:000000000000:campaign/c".to_string(),
        "arn:aws:personalize:::recipe/aws-user-personalization".to_string(),
        "arn:aws:iam::000000000000:role/r".to_string(),
        "s3://data/x.csv".to_string(),
        "Interactions".to_string(),
        "FULL".to_string(),
        SCHEMA.to_string(),
        "EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ($T)".to_string(),
        "{\"eventValue\": 1}".to_string(),
    ]
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|i| json!(i)),
        any::<f64>().prop_map(|f| Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,30}".prop_map(Value::String),
        proptest::sample::select(known_strings()).prop_map(Value::String),
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::sample::select(MEMBERS).prop_map(str::to_string),
        "[a-zA-Z]{1,8}",
    ]
}

fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(3, 32, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::btree_map(key(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<String, Value>>())),
        ]
    })
}

fn body() -> impl Strategy<Value = Map<String, Value>> {
    proptest::collection::btree_map(key(), value(), 0..8).prop_map(|m| m.into_iter().collect())
}

static QUOTAS: std::sync::LazyLock<super::quotas::Quotas> = std::sync::LazyLock::new(Default::default);

/// Runs an operation that must succeed while the world is built.
fn call(cx: &mut Cx, op: &str, body: Value) {
    let Value::Object(m) = body else { return };
    control::call(cx, op, &Input::from_map(m)).unwrap_or_else(|e| panic!("{op}: {e}"));
}

/// A world with a group, a dataset with data, a filter, a solution with a trained version and a
/// campaign, built through the operations themselves.
fn world(state: &mut super::state::State, data: &mut Data, durations: &Durations, rules: &FailureRules) {
    let mut cx = Cx {
        state,
        now: 1_700_000_000.0,
        scope: Scope {
            region: "us-east-1".into(),
            account: "000000000000".into(),
        },
        durations,
        quotas: &QUOTAS,
        failures: rules,
        jobs: Vec::new(),
        changed: false,
    };
    call(&mut cx, "CreateDatasetGroup", json!({"name": "g"}));
    call(&mut cx, "CreateSchema", json!({"name": "i", "schema": SCHEMA}));
    call(
        &mut cx,
        "CreateDataset",
        json!({"name": "d", "datasetGroupArn": G, "datasetType": "Interactions",
               "schemaArn": "arn:aws:personalize:us-east-1:000000000000:schema/i"}),
    );
    call(
        &mut cx,
        "CreateFilter",
        json!({"name": "f", "datasetGroupArn": G,
               "filterExpression": "EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN (\"RATING\")"}),
    );
    call(
        &mut cx,
        "CreateEventTracker",
        json!({"name": "t", "datasetGroupArn": G}),
    );
    call(
        &mut cx,
        "CreateSolution",
        json!({"name": "s", "datasetGroupArn": G, "recipeArn": "arn:aws:personalize:::recipe/aws-user-personalization"}),
    );
    call(&mut cx, "CreateSolutionVersion", json!({"solutionArn": SOLUTION}));
    let schema = crate::spec::avro::parse_str(SCHEMA).expect("valid schema");
    let mut table = Table::new(schema.fields.iter().map(|f| f.name.clone()).collect(), Vec::new());
    parse_csv(
        &ObjectUrl::new("data", "i.csv"),
        INTERACTIONS_CSV.as_bytes(),
        &schema,
        &mut table,
    )
    .expect("fixture parses");
    let trained = model::train(
        &TrainingData {
            interactions: &table,
            items: None,
            users: None,
        },
        &TrainOptions {
            recipe: "aws-user-personalization".into(),
            training_mode: TrainingMode::Full,
            event_type: None,
            event_value_threshold: None,
            previous: None,
        },
    )
    .expect("fixture trains");
    let version_arn = cx
        .state
        .solution_versions
        .keys()
        .next()
        .cloned()
        .expect("a version");
    cx.state
        .solution_versions
        .get_mut(&version_arn)
        .expect("present")
        .meta
        .timeline
        .finish(1_700_000_000.0, None);
    data.table_mut("arn:aws:personalize:us-east-1:000000000000:dataset/g/INTERACTIONS")
        .replace_all(table);
    data.set_model(&version_arn, Arc::new(trained));
    call(
        &mut cx,
        "CreateCampaign",
        json!({"name": "c", "solutionVersionArn": version_arn}),
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn no_body_makes_an_operation_panic(body in body()) {
        let durations = Durations::default();
        let rules = FailureRules::default();
        let mut state = super::state::State::default();
        let mut data = Data::default();
        world(&mut state, &mut data, &durations, &rules);
        let input = Input::from_map(body);
        let mut cx = Cx {
            state: &mut state,
            now: 1_700_000_100.0,
            scope: Scope { region: "us-east-1".into(), account: "000000000000".into() },
            durations: &durations,
            quotas: &QUOTAS,
            failures: &rules,
            jobs: Vec::new(),
            changed: false,
        };
        for op in control::OPERATIONS {
            let _ = control::call(&mut cx, op, &input);
        }
        for op in ["GetRecommendations", "GetPersonalizedRanking", "PutEvents", "PutItems", "PutUsers"] {
            let _ = runtime::call(&mut cx, &mut data, op, &input);
        }
    }

    #[test]
    fn no_bytes_make_parsing_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = Input::from_body(&bytes);
    }
}
