//! Properties of the validator: no input makes it panic, a report is consistent (a model exactly when
//! there is no error), and whatever it accepts, the generated JSON Schema accepts too.

use std::sync::LazyLock;

use personalize_ops::spec::{self, Report, json_schema::parameter_file_schema};
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{Map, Value};

const FIXTURES: [&str; 6] = [
    include_str!("fixtures/sample_config.json"),
    include_str!("fixtures/sample_config_root_tags.json"),
    include_str!("fixtures/sample_config_wtags.json"),
    include_str!("fixtures/dataset-group-name-1.json"),
    include_str!("fixtures/dataset-group-name-2.json"),
    include_str!("fixtures/dataset-group-name-3.json"),
];

static SCHEMA: LazyLock<jsonschema::Validator> = LazyLock::new(|| {
    jsonschema::draft202012::new(&parameter_file_schema()).expect("the generated schema compiles")
});

fn consistent(report: &Report) {
    assert_eq!(report.spec.is_some(), report.errors.is_empty(), "{report:?}");
}

/// Strings that mean something somewhere in a parameter file, and anything else.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("delete".to_string()),
        Just("cron(0 3 * * ? *)".to_string()),
        Just("rate(1 day)".to_string()),
        Just("1 day".to_string()),
        Just("FULL".to_string()),
        Just("UPDATE".to_string()),
        Just("ECOMMERCE".to_string()),
        Just("arn:aws:personalize:::recipe/aws-item-affinity".to_string()),
        Just("arn:aws:personalize:::recipe/aws-ecomm-popular-items-by-views".to_string()),
        Just("INCLUDE ItemID WHERE Items.X IN ($v)".to_string()),
        "[a-z_]{1,8}",
        any::<String>(),
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("serviceConfig".to_string()),
        Just("workflowConfig".to_string()),
        Just("name".to_string()),
        Just("tags".to_string()),
        Just("schedules".to_string()),
        Just("full".to_string()),
        Just("update".to_string()),
        Just("schema".to_string()),
        Just("maxAge".to_string()),
        Just("tagKey".to_string()),
        "[a-zA-Z]{1,6}",
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..6)
                .prop_map(|entries| Value::Object(entries.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// One change somewhere in a document.
#[derive(Debug, Clone)]
enum Mutation {
    Replace(Index, Value),
    Remove(Index),
    Insert(Index, String, Value),
    Duplicate(Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<Index>(), json_value()).prop_map(|(i, v)| Mutation::Replace(i, v)),
        any::<Index>().prop_map(Mutation::Remove),
        (any::<Index>(), key(), json_value()).prop_map(|(i, k, v)| Mutation::Insert(i, k, v)),
        any::<Index>().prop_map(Mutation::Duplicate),
    ]
}

/// JSON pointers of every node below the root.
fn pointers(value: &Value, at: String, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let p = format!("{at}/{}", k.replace('~', "~0").replace('/', "~1"));
                out.push(p.clone());
                pointers(v, p, out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                let p = format!("{at}/{i}");
                out.push(p.clone());
                pointers(v, p, out);
            }
        }
        _ => {}
    }
}

fn parent_and_last(pointer: &str) -> (&str, String) {
    let (parent, last) = pointer.rsplit_once('/').unwrap_or(("", pointer));
    (parent, last.replace("~1", "/").replace("~0", "~"))
}

fn apply(doc: &mut Value, mutation: &Mutation) {
    let mut all = Vec::new();
    pointers(doc, String::new(), &mut all);
    if all.is_empty() {
        return;
    }
    match mutation {
        Mutation::Replace(i, v) => {
            if let Some(node) = doc.pointer_mut(i.get(&all).as_str()) {
                *node = v.clone();
            }
        }
        Mutation::Remove(i) => {
            let pointer = i.get(&all).clone();
            let (parent, last) = parent_and_last(&pointer);
            match doc.pointer_mut(parent) {
                Some(Value::Object(map)) => {
                    map.shift_remove(&last);
                }
                Some(Value::Array(items)) => {
                    if let Ok(n) = last.parse::<usize>()
                        && n < items.len()
                    {
                        items.remove(n);
                    }
                }
                _ => {}
            }
        }
        Mutation::Insert(i, k, v) => {
            if let Some(Value::Object(map)) = doc.pointer_mut(i.get(&all).as_str()) {
                map.insert(k.clone(), v.clone());
            }
        }
        Mutation::Duplicate(i) => {
            let pointer = i.get(&all).clone();
            let (parent, last) = parent_and_last(&pointer);
            if let Some(Value::Array(items)) = doc.pointer_mut(parent)
                && let Ok(n) = last.parse::<usize>()
                && let Some(item) = items.get(n).cloned()
            {
                items.push(item);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn any_json_value_gets_a_consistent_report(value in json_value()) {
        consistent(&spec::load_value(&value));
    }

    #[test]
    fn any_text_gets_a_consistent_report(text in any::<String>()) {
        consistent(&spec::load(&text));
    }

    #[test]
    fn mutated_fixtures_get_consistent_reports_and_the_schema_agrees_with_acceptance(
        fixture in 0..FIXTURES.len(),
        mutations in prop::collection::vec(mutation(), 1..4),
    ) {
        let mut doc: Value = serde_json::from_str(FIXTURES[fixture]).expect("fixtures are JSON");
        for m in &mutations {
            apply(&mut doc, m);
        }
        let report = spec::load_value(&doc);
        consistent(&report);
        if report.is_valid() {
            // Whatever the validator accepts, an editor using the schema must not flag.
            prop_assert!(SCHEMA.is_valid(&doc), "valid but rejected by the schema: {doc}");
        }
        // The text form behaves the same as the value form.
        let text = serde_json::to_string(&doc).expect("serialises");
        prop_assert_eq!(spec::load(&text).errors, report.errors);
    }
}
