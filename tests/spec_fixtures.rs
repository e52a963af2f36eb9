//! Every fixture (the reference's samples and the seed's examples, copied into tests/fixtures) is a
//! valid parameter file, and validates against the generated JSON Schema.

use std::path::PathBuf;

use personalize_ops::spec::{self, json_schema::parameter_file_schema};
use serde_json::{Value, json};

fn fixtures() -> Vec<(String, String)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut files: Vec<(String, String)> = std::fs::read_dir(&dir)
        .expect("tests/fixtures exists")
        .filter_map(|entry| {
            let path = entry.expect("readable directory entry").path();
            (path.extension().and_then(|e| e.to_str()) == Some("json")).then(|| {
                let text = std::fs::read_to_string(&path).expect("readable fixture");
                (
                    path.file_name().expect("a file").to_string_lossy().into_owned(),
                    text,
                )
            })
        })
        .collect();
    files.sort();
    files
}

fn validator() -> jsonschema::Validator {
    jsonschema::draft202012::new(&parameter_file_schema()).expect("the generated schema compiles")
}

#[test]
fn there_are_six_fixtures() {
    assert_eq!(fixtures().len(), 6);
}

#[test]
fn every_fixture_is_valid_and_builds() {
    for (name, text) in fixtures() {
        let report = spec::load(&text);
        assert!(report.errors.is_empty(), "{name}: {:#?}", report.errors);
        let spec = report.spec.expect("a valid file builds");
        assert_eq!(
            report.dataset_group_name.as_deref(),
            Some(spec.dataset_group.name.as_str())
        );
    }
}

#[test]
fn fixture_warnings_are_the_expected_ones() {
    let warnings: Vec<(String, Vec<String>)> = fixtures()
        .into_iter()
        .map(|(name, text)| {
            let paths = spec::load(&text).warnings.into_iter().map(|w| w.path).collect();
            (name, paths)
        })
        .filter(|(_, paths): &(String, Vec<String>)| !paths.is_empty())
        .collect();
    assert_eq!(
        warnings,
        [
            (
                // Interactions without TIMESTAMP, and a solution without recipeArn: the reference
                // accepted both, Personalize will not.
                "sample_config_root_tags.json".to_string(),
                vec![
                    "datasets.interactions.schema.serviceConfig.schema.fields".to_string(),
                    "solutions[0].serviceConfig".to_string(),
                ]
            ),
            (
                // A recommender in a group without a domain.
                "sample_config_wtags.json".to_string(),
                vec!["recommenders".to_string()]
            ),
        ]
    );
}

#[test]
fn the_schema_is_a_valid_draft_2020_12_schema() {
    let schema = parameter_file_schema();
    assert!(jsonschema::meta::is_valid(&schema));
}

#[test]
fn every_fixture_validates_against_the_schema() {
    let validator = validator();
    for (name, text) in fixtures() {
        let value: Value = serde_json::from_str(&text).expect("fixtures are JSON");
        if let Err(e) = validator.validate(&value) {
            panic!("{name}: {e} at {}", e.instance_path());
        }
    }
}

#[test]
fn invalid_files_do_not_validate_against_the_schema() {
    let validator = validator();
    let group = json!({"serviceConfig": {"name": "g"}});
    let invalid = [
        json!({}),
        json!({"this": "is not configuration data"}),
        json!({"datasetGroup": {"serviceConfig": {"name": "bad name!"}}}),
        json!({"datasetGroup": group, "tags": {}}),
        json!({"datasetGroup": group, "tags": [{"tagKeys": "k", "tagValue": "v"}]}),
        json!({"datasetGroup": {"serviceConfig": {"name": "g", "domain": "RETAIL"}}}),
        json!({"datasetGroup": group, "solutions": [{"serviceConfig": {"name": "s", "solutionVersion": {"trainingMode": "BOGUS"}}}]}),
        json!({"datasetGroup": group, "solutions": [{"serviceConfig": {"name": "s"}, "campaigns": [{"serviceConfig": {"name": "c", "minProvisionedTPS": 0}}]}]}),
        json!({"datasetGroup": group, "solutions": [{"serviceConfig": {"name": "s"}, "campaigns": {"serviceConfig": {"name": "c"}}}]}),
        json!({"datasetGroup": group, "solutions": [{"serviceConfig": {"name": "s"}, "workflowConfig": {"maxAge": "1 day"}}]}),
        json!({"datasetGroup": {"serviceConfig": {"name": "g"}, "workflowConfig": {"schedules": {"import": ["cron(0 3 * * ? *)"]}}}}),
        json!({"datasetGroup": {"serviceConfig": {"name": "g"}, "workflowConfig": {"schedules": {"import": "every day"}}}}),
        json!({"datasetGroup": group, "recommenders": [{}]}),
    ];
    for file in invalid {
        assert!(!validator.is_valid(&file), "the schema accepts {file}");
        assert!(
            !spec::load_value(&file).is_valid(),
            "the validator accepts {file}"
        );
    }
}

#[test]
fn what_the_validator_only_warns_about_the_schema_accepts() {
    let validator = validator();
    let accepted = [
        json!({"datasetGroup": {"serviceConfig": {"name": "g"}}, "datasets": {"serviceConfig": {"color": "blue"}, "interactions": {"dataset": {"serviceConfig": {"name": "i"}}}}}),
        json!({"datasetGroup": {"serviceConfig": {"name": "g"}}, "solutions": [{"serviceConfig": {"name": "s", "performAutoML": true, "datasetGroupArn": "x"}, "workflowConfig": {"schedules": {"weekly": 1}}}]}),
    ];
    for file in accepted {
        assert!(validator.is_valid(&file), "{file}");
        assert!(spec::load_value(&file).is_valid(), "{file}");
    }
}

#[test]
fn a_null_avro_namespace_is_accepted_by_the_validator_and_the_schema() {
    let mut file: Value = serde_json::from_str(
        &fixtures()
            .into_iter()
            .find(|(name, _)| name == "sample_config.json")
            .expect("sample_config.json")
            .1,
    )
    .expect("JSON");
    let namespace = file
        .pointer_mut("/datasets/users/schema/serviceConfig/schema/namespace")
        .expect("the users schema has a namespace");
    *namespace = Value::Null;
    assert!(
        spec::load_value(&file).is_valid(),
        "the validator accepts a null namespace"
    );
    assert!(validator().is_valid(&file), "the schema accepts a null namespace");
    // Other types stay wrong for both.
    *file
        .pointer_mut("/datasets/users/schema/serviceConfig/schema/namespace")
        .expect("namespace") = json!(7);
    assert!(!spec::load_value(&file).is_valid());
    assert!(!validator().is_valid(&file));
}
