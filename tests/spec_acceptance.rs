//! The reference's accept/reject table and the reference bugs we fix (docs/reference.md#bugs-we-fix),
//! run through the public `spec::load` API.

use personalize_ops::spec::{self, Issue, Report};
use serde_json::{Value, json};

/// The smallest valid file: the reference starts a workflow for it.
fn minimal() -> Value {
    json!({"datasetGroup": {"serviceConfig": {"name": "testDsg"}}})
}

/// `minimal()` with `value` written at the JSON pointer `pointer` (parents created as objects).
fn with(pointer: &str, value: Value) -> Value {
    let mut root = minimal();
    let mut node = &mut root;
    let keys: Vec<&str> = pointer.trim_start_matches('/').split('/').collect();
    for (i, key) in keys.iter().enumerate() {
        let map = node.as_object_mut().expect("pointer walks objects");
        if i == keys.len() - 1 {
            map.insert((*key).to_string(), value);
            break;
        }
        node = map.entry((*key).to_string()).or_insert_with(|| json!({}));
    }
    root
}

fn solution(name: &str, recipe: &str) -> Value {
    json!({"serviceConfig": {"name": name, "recipeArn": format!("arn:aws:personalize:::recipe/{recipe}")}})
}

fn messages(issues: &[Issue]) -> Vec<String> {
    issues.iter().map(|i| i.message.clone()).collect()
}

/// What a case expects.
enum Expect {
    /// No errors (warnings allowed).
    Valid,
    /// Errors whose messages contain these texts, in this order, and no others.
    Errors(&'static [&'static str]),
    /// No errors and a warning containing this text.
    Warns(&'static str),
}

fn assert_case(name: &str, report: &Report, expect: &Expect) {
    match expect {
        Expect::Valid => {
            assert!(report.errors.is_empty(), "{name}: {:?}", report.errors);
            assert!(report.spec.is_some(), "{name}: a valid file builds");
        }
        Expect::Warns(text) => {
            assert!(report.errors.is_empty(), "{name}: {:?}", report.errors);
            assert!(
                report.warnings.iter().any(|w| w.message.contains(text)),
                "{name}: {:?}",
                report.warnings
            );
            assert!(report.spec.is_some(), "{name}");
        }
        Expect::Errors(texts) => {
            let got = messages(&report.errors);
            assert_eq!(got.len(), texts.len(), "{name}: {got:#?}");
            for (message, text) in got.iter().zip(texts.iter()) {
                assert!(message.contains(text), "{name}: {message:?} lacks {text:?}");
            }
            assert!(report.spec.is_none(), "{name}");
        }
    }
}

#[test]
fn the_reference_acceptance_table() {
    let ups = "arn:aws:personalize:::recipe/aws-user-personalization";
    let cases: Vec<(&str, Value, Expect)> = vec![
        ("minimal group", minimal(), Expect::Valid),
        (
            "empty file",
            json!({}),
            Expect::Errors(&[
                "Configuration should not be empty",
                "A datasetGroup must be provided at path datasetGroup",
            ]),
        ),
        (
            "not configuration data",
            json!({"this": "is not configuration data"}),
            Expect::Errors(&[
                "key this is not an allowed key",
                "A datasetGroup must be provided at path datasetGroup",
            ]),
        ),
        (
            "root tag with a wrong key",
            with("/tags", json!([{"tagKeys": "k", "tagValue": "v"}])),
            Expect::Errors(&["Parameter validation failed: Tag keys must be one of: 'tagKey', 'tagValue'"]),
        ),
        (
            "root tags as an object",
            with("/tags", json!({})),
            Expect::Errors(&["Invalid type at path root for tags, expected list[dict]."]),
        ),
        (
            "group tag with a wrong key",
            with(
                "/datasetGroup/serviceConfig/tags",
                json!([{"tagKeys": "k", "tagValue": "v"}]),
            ),
            Expect::Errors(&["missing tagKey; unknown tagKeys"]),
        ),
        (
            // The reference printed botocore's type message here; ours names the path the same way
            // as for root tags.
            "group tags as an object",
            with("/datasetGroup/serviceConfig/tags", json!({})),
            Expect::Errors(&[
                "Invalid type at path datasetGroup.serviceConfig.tags for tags, expected list[dict].",
            ]),
        ),
        (
            // Deliberate difference: the reference rejected `name`, although its own README and
            // CreateSolutionVersion use it.
            "solution version name",
            with(
                "/solutions",
                json!([{"serviceConfig": {"name": "s", "recipeArn": ups, "solutionVersion": {"name": "solutionV1"}}}]),
            ),
            Expect::Valid,
        ),
        (
            "solution version unknown key",
            with(
                "/solutions",
                json!([{"serviceConfig": {"name": "s", "recipeArn": ups, "solutionVersion": {"bogus": 1}}}]),
            ),
            Expect::Errors(&[
                "Allowed keys for solutionVersion are: ['name', 'trainingMode', 'tags']. Unsupported key(s): ['bogus']",
            ]),
        ),
        (
            "update schedule on sims",
            with(
                "/solutions",
                json!([{"serviceConfig": {"name": "sims", "recipeArn": "arn:aws:personalize:::recipe/aws-sims"},
                        "workflowConfig": {"schedules": {"update": "cron(0 0 ? * 1 *)"}}}]),
            ),
            Expect::Errors(&[
                "solution sims does not support solution version incremental updates - please use `full` instead of `update`.",
            ]),
        ),
        (
            "update schedule on user-personalization and hrnn-coldstart",
            with(
                "/solutions",
                json!([
                    {"serviceConfig": {"name": "up", "recipeArn": ups},
                     "workflowConfig": {"schedules": {"update": "cron(0 0 ? * 1 *)"}}},
                    {"serviceConfig": {"name": "cold", "recipeArn": "arn:aws:personalize:::recipe/aws-hrnn-coldstart"},
                     "workflowConfig": {"schedules": {"update": "cron(0 0 ? * 1 *)"}}}
                ]),
            ),
            Expect::Valid,
        ),
        (
            "datasets without interactions",
            with(
                "/datasets",
                json!({"users": {"dataset": {"serviceConfig": {"name": "u"}}},
                       "items": {"dataset": {"serviceConfig": {"name": "i"}}}}),
            ),
            Expect::Errors(&["You must at minimum create an interactions dataset and declare its schema"]),
        ),
        (
            "duplicate solution names",
            with(
                "/solutions",
                json!([solution("sol1", "aws-sims"), solution("sol1", "aws-sims")]),
            ),
            Expect::Errors(&["duplicate solution names found: sol1."]),
        ),
        (
            "duplicate campaign names",
            with(
                "/solutions",
                json!([
                    {"serviceConfig": {"name": "a", "recipeArn": ups}, "campaigns": [{"serviceConfig": {"name": "c1"}}]},
                    {"serviceConfig": {"name": "b", "recipeArn": ups}, "campaigns": [{"serviceConfig": {"name": "c1"}}]}
                ]),
            ),
            Expect::Errors(&["duplicate campaign names found: c1."]),
        ),
        (
            "45-character solution name with batch inference",
            with(
                "/solutions",
                json!([{"serviceConfig": {"name": "s".repeat(45), "recipeArn": ups}, "batchInferenceJobs": [{}]}]),
            ),
            Expect::Errors(&[
                "The generated batch inference job name",
                // (the same sentence ends the message)
            ]),
        ),
        (
            "minProvisionedTPS 0",
            with(
                "/solutions",
                json!([{"serviceConfig": {"name": "s", "recipeArn": ups},
                        "campaigns": [{"serviceConfig": {"name": "c", "minProvisionedTPS": 0}}]}]),
            ),
            Expect::Errors(&["Invalid value for parameter minProvisionedTPS, value: 0, valid min value: 1"]),
        ),
        (
            "performAutoML",
            with(
                "/solutions",
                json!([{"serviceConfig": {"name": "s", "recipeArn": ups, "performAutoML": true}}]),
            ),
            Expect::Warns("performAutoML is not a valid configuration parameter"),
        ),
        (
            "delete as a schedule",
            with("/datasetGroup/workflowConfig/schedules/import", json!("delete")),
            Expect::Valid,
        ),
    ];
    for (name, file, expect) in &cases {
        assert_case(name, &spec::load_value(file), expect);
    }
}

#[test]
fn invalid_crons_of_the_reference_table_are_rejected_at_every_schedule() {
    let ups = "arn:aws:personalize:::recipe/aws-user-personalization";
    let affinity = "arn:aws:personalize:::recipe/aws-item-affinity";
    for cron in [
        "cron(0 12 * * ? * *)",
        "cron(0 12 * * ?)",
        "cron(5,35 14 * * * *)",
        "cron(5,35 14 * * ? 1888)",
        "not-cron",
        // EventBridge day-of-week is 1-7; the reference's validator let 0 through and Quartz then
        // rejected it (docs/reference.md#bugs-we-fix).
        "cron(0 0 ? * 0 *)",
    ] {
        let places = [
            with("/datasetGroup/workflowConfig/schedules/import", json!(cron)),
            with(
                "/solutions",
                json!([{"serviceConfig": {"name": "s", "recipeArn": ups},
                        "workflowConfig": {"schedules": {"full": cron, "update": cron}},
                        "batchInferenceJobs": [{"workflowConfig": {"schedule": cron}}]}]),
            ),
            // Batch segment schedules too, which the reference never checked (docs/reference.md#bugs-we-fix).
            with(
                "/solutions",
                json!([{"serviceConfig": {"name": "s", "recipeArn": affinity},
                        "batchSegmentJobs": [{"workflowConfig": {"schedule": cron}}]}]),
            ),
        ];
        let expected_errors = [1, 3, 1];
        for (file, expected) in places.iter().zip(expected_errors) {
            let report = spec::load_value(file);
            assert_eq!(report.errors.len(), expected, "{cron}: {:?}", report.errors);
            assert!(report.errors.iter().all(|e| e.message.contains(cron)), "{cron}");
        }
    }
}

#[test]
fn rate_schedules_are_accepted() {
    // Deliberate difference: the reference rejected rate(); EventBridge and we accept it.
    for rate in ["rate(1 day)", "rate(5 minutes)", "rate(2 hours)"] {
        let report = spec::load_value(&with(
            "/datasetGroup/workflowConfig/schedules/import",
            json!(rate),
        ));
        assert!(report.errors.is_empty(), "{rate}: {:?}", report.errors);
    }
    let bad = spec::load_value(&with(
        "/datasetGroup/workflowConfig/schedules/import",
        json!("rate(1 days)"),
    ));
    assert_eq!(bad.errors.len(), 1);
}

#[test]
fn json_syntax_errors_say_where() {
    let report = spec::load("{");
    assert_eq!(report.errors.len(), 1);
    assert!(
        report.errors[0]
            .message
            .starts_with("Could not validate JSON: EOF while parsing an object at line 1 column 1"),
        "{:?}",
        report.errors
    );
    assert_eq!(report.errors[0].display_path(), "(root)");
    assert!(report.spec.is_none());
}

#[test]
fn oversized_and_deep_inputs_are_rejected_without_a_crash() {
    let huge = format!(
        "{{\"datasetGroup\": {{\"serviceConfig\": {{\"name\": \"{}\"}}}}}}",
        "x".repeat(spec::MAX_FILE_BYTES)
    );
    let report = spec::load(&huge);
    assert!(report.errors[0].message.contains("at most 1048576 bytes"));
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let report = spec::load(&deep);
    assert!(
        report.errors[0]
            .message
            .starts_with("Could not validate JSON: recursion limit")
    );
    let not_object = spec::load("[1, 2]");
    assert!(
        not_object.errors[0]
            .message
            .contains("must be a JSON object, found a list")
    );
}

/// Bugs we fix (docs/reference.md#bugs-we-fix): the reference crashed on these or rejected them with spurious errors.
#[test]
fn shapes_the_reference_crashed_on_or_rejected_spuriously() {
    let ups = "arn:aws:personalize:::recipe/aws-user-personalization";
    let cases: Vec<(&str, Value, Expect)> = vec![
        ("empty filters", with("/filters", json!([])), Expect::Valid),
        ("empty solutions", with("/solutions", json!([])), Expect::Valid),
        (
            "empty recommenders",
            with("/recommenders", json!([])),
            Expect::Valid,
        ),
        (
            "empty group workflowConfig",
            with("/datasetGroup/workflowConfig", json!({})),
            Expect::Valid,
        ),
        (
            "empty event tracker",
            with("/eventTracker", json!({})),
            Expect::Valid,
        ),
        ("empty root tags", with("/tags", json!([])), Expect::Valid),
        (
            "empty solution workflowConfig and batch job items",
            with(
                "/solutions",
                json!([{"serviceConfig": {"name": "s", "recipeArn": ups}, "workflowConfig": {},
                        "batchInferenceJobs": [{}], "campaigns": []}]),
            ),
            Expect::Valid,
        ),
        (
            "empty datasets",
            with("/datasets", json!({})),
            Expect::Warns("datasets is empty"),
        ),
        (
            "group serviceConfig as a string",
            json!({"datasetGroup": {"serviceConfig": "x"}}),
            Expect::Errors(&["expected an object, found a string"]),
        ),
        (
            "campaigns as an object",
            with(
                "/solutions",
                json!([{"serviceConfig": {"name": "s", "recipeArn": ups}, "campaigns": {"serviceConfig": {"name": "c"}}}]),
            ),
            Expect::Errors(&["expected a list, found an object"]),
        ),
        (
            "a solution that is a string",
            with("/solutions", json!(["sims"])),
            Expect::Errors(&["expected an object, found a string"]),
        ),
        (
            "a recommender without serviceConfig",
            with("/recommenders", json!([{}])),
            Expect::Errors(&["Missing required key \"serviceConfig\""]),
        ),
        (
            "a recommender serviceConfig that is a string",
            with("/recommenders", json!([{"serviceConfig": "x"}])),
            Expect::Errors(&["expected an object, found a string"]),
        ),
        (
            "an invalid Avro schema",
            with(
                "/datasets",
                json!({"interactions": {"dataset": {"serviceConfig": {"name": "i"}},
                       "schema": {"serviceConfig": {"name": "s", "schema": {"type": "enum", "name": "X", "fields": [{"name": "USER_ID", "type": "string"}]}}}}}),
            ),
            Expect::Errors(&["The schema is not valid: "]),
        ),
    ];
    for (name, file, expect) in &cases {
        assert_case(name, &spec::load_value(file), expect);
    }
}

/// What the reference accepted but Personalize or the workflow then rejects: errors here, each a
/// deliberate difference listed in the README.
#[test]
fn what_personalize_would_reject_is_an_error() {
    let ups = "arn:aws:personalize:::recipe/aws-user-personalization";
    let cases: Vec<(&str, Value, Expect)> = vec![
        (
            "a name with a space",
            with("/datasetGroup/serviceConfig/name", json!("bad name!")),
            Expect::Errors(&["must be letters, digits, - and _"]),
        ),
        (
            "a 100-character name",
            with("/datasetGroup/serviceConfig/name", json!("n".repeat(100))),
            Expect::Errors(&["valid max length: 63"]),
        ),
        (
            "an unknown training mode",
            with(
                "/solutions",
                json!([{"serviceConfig": {"name": "s", "recipeArn": ups, "solutionVersion": {"trainingMode": "BOGUS"}}}]),
            ),
            Expect::Errors(&["valid values: FULL, UPDATE"]),
        ),
        (
            "an unknown import mode",
            with("/datasets/serviceConfig/importMode", json!("BOGUS")),
            // (and no interactions dataset, which the reference reported too)
            Expect::Errors(&["valid values: FULL, INCREMENTAL", "interactions dataset"]),
        ),
        (
            "an unknown recipe",
            with("/solutions", json!([solution("s", "aws-bogus")])),
            Expect::Errors(&["unknown recipe"]),
        ),
        (
            "a list given as a schedule",
            with(
                "/datasetGroup/workflowConfig/schedules/import",
                json!(["cron(0 3 * * ? *)"]),
            ),
            Expect::Errors(&["a list of schedules is not accepted"]),
        ),
        (
            "a tag value with a forbidden character",
            with("/tags", json!([{"tagKey": "k", "tagValue": "a;b"}])),
            Expect::Errors(&["Invalid value for parameter tagValue"]),
        ),
        (
            "51 root tags",
            with(
                "/tags",
                Value::Array(
                    (0..51)
                        .map(|i| json!({"tagKey": format!("k{i}"), "tagValue": "v"}))
                        .collect(),
                ),
            ),
            Expect::Errors(&["at most 50"]),
        ),
        (
            "an unknown key in a recommender (the reference did not check)",
            with(
                "/recommenders",
                json!([{"serviceConfig": {"name": "r", "recipeArn": "arn:aws:personalize:::recipe/aws-vod-top-picks", "bogus": 1}}]),
            ),
            Expect::Errors(&["Unknown parameter \"bogus\""]),
        ),
        (
            "a key the reference forbids",
            with(
                "/solutions",
                json!([{"serviceConfig": {"name": "s", "recipeArn": ups}, "workflowConfig": {"maxAge": "1 day"}}]),
            ),
            Expect::Errors(&["key solutions.workflowConfig.maxAge is not an allowed key"]),
        ),
        (
            "a dataset-group role without a KMS key",
            with(
                "/datasetGroup/serviceConfig/roleArn",
                json!("arn:aws:iam::123456789012:role/kms-role"),
            ),
            Expect::Errors(&["roleArn is only valid together with kmsKeyArn"]),
        ),
    ];
    for (name, file, expect) in &cases {
        assert_case(name, &spec::load_value(file), expect);
    }
}

/// Where the reference silently ignored something, the file stays valid and says so.
#[test]
fn what_the_reference_ignored_is_a_warning() {
    let ups = "arn:aws:personalize:::recipe/aws-user-personalization";
    let interactions = json!({"dataset": {"serviceConfig": {"name": "i"}}});
    let cases: Vec<(&str, Value, Expect)> = vec![
        (
            "an unknown import setting",
            with(
                "/datasets",
                json!({"serviceConfig": {"color": "blue"}, "interactions": interactions}),
            ),
            Expect::Warns("key color is ignored"),
        ),
        (
            "an unknown schedule key",
            with(
                "/solutions",
                json!([{"serviceConfig": {"name": "s", "recipeArn": ups},
                        "workflowConfig": {"schedules": {"full": "cron(0 2 ? * 1 *)", "weekly": "x"}}}]),
            ),
            Expect::Warns("key weekly is ignored"),
        ),
        (
            "an unreadable maxAge",
            with("/datasetGroup/workflowConfig/maxAge", json!("banana")),
            Expect::Warns("banana"),
        ),
        (
            "a placeholder the workflow overwrites",
            with(
                "/solutions",
                json!([{"serviceConfig": {"name": "s", "recipeArn": ups},
                        "campaigns": [{"serviceConfig": {"name": "c", "solutionVersionArn": "arn:aws:personalize:us-east-1:1:solution/x/y"}}]}]),
            ),
            Expect::Warns("solutionVersionArn is set by personalize-ops"),
        ),
    ];
    for (name, file, expect) in &cases {
        assert_case(name, &spec::load_value(file), expect);
    }
}

#[test]
fn every_error_is_reported_at_once_with_its_path() {
    let file = json!({
        "tags": {},
        "datasetGroup": {"serviceConfig": {"name": "bad name", "domain": "RETAIL"}},
        "solutions": [
            {"serviceConfig": {"name": "s", "recipeArn": "arn:aws:personalize:::recipe/aws-user-personalization"},
             "campaigns": [{"serviceConfig": {"name": "c", "minProvisionedTPS": 0}}]},
            {"serviceConfig": {"name": "t", "recipeArn": "arn:aws:personalize:::recipe/aws-sims"},
             "campaigns": [{"serviceConfig": {"name": "d", "minProvisionedTPS": "2"}}]},
            {"serviceConfig": {"name": "u", "recipeArn": "arn:aws:personalize:::recipe/aws-sims"},
             "campaigns": [{"serviceConfig": {"name": "e", "minProvisionedTPS": -3}}]}
        ]
    });
    let report = spec::load_value(&file);
    let paths: Vec<&str> = report.errors.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "tags",
            "datasetGroup.serviceConfig.name",
            "datasetGroup.serviceConfig.domain",
            "solutions[0].campaigns[0].serviceConfig.minProvisionedTPS",
            "solutions[1].campaigns[0].serviceConfig.minProvisionedTPS",
            "solutions[2].campaigns[0].serviceConfig.minProvisionedTPS",
        ]
    );
    assert_eq!(report.dataset_group_name.as_deref(), Some("bad name"));
    assert_eq!(report.dataset_group_name_or_unknown(), "bad name");
    assert_eq!(spec::load("{").dataset_group_name_or_unknown(), "UNKNOWN");
}

#[test]
fn min_provisioned_tps_defaults_to_one() {
    // The reference validated it as optional and then failed at run time without it (docs/reference.md#bugs-we-fix).
    let report = spec::load_value(&with(
        "/solutions",
        json!([{"serviceConfig": {"name": "s", "recipeArn": "arn:aws:personalize:::recipe/aws-user-personalization"},
                "campaigns": [{"serviceConfig": {"name": "c"}}]}]),
    ));
    let spec = report.spec.expect("valid");
    assert_eq!(spec.solutions[0].campaigns[0].min_provisioned_tps, 1);
}
