//! Comparing what the file asks for with what Personalize describes, member by member.

use serde_json::Value;

/// The members of `expected` that `actual` lacks or holds with another value, as `path: …` lines.
///
/// Only what `expected` sets is compared: Personalize fills defaults into what it describes
/// (`itemExplorationConfig`, hyperparameters), and those must not read as changes. Numbers compare
/// by value (`1` equals `1.0`); objects compare without regard to key order.
pub fn json_differences(path: &str, expected: &Value, actual: Option<&Value>) -> Vec<String> {
    let mut out = Vec::new();
    walk(path, expected, actual, &mut out);
    out
}

fn walk(path: &str, expected: &Value, actual: Option<&Value>, out: &mut Vec<String>) {
    match (expected, actual) {
        (Value::Null, _) => {}
        (Value::Object(want), Some(Value::Object(have))) => {
            for (key, value) in want {
                walk(&format!("{path}.{key}"), value, have.get(key), out);
            }
        }
        (Value::Object(want), None | Some(Value::Null)) if want.values().all(Value::is_null) => {}
        (Value::Number(a), Some(Value::Number(b))) if a.as_f64() == b.as_f64() => {}
        // Personalize describes map values as strings ("0.3") that files may write as numbers.
        (Value::Number(a), Some(Value::String(b))) if b.parse::<f64>().ok() == a.as_f64() => {}
        (Value::String(a), Some(Value::Number(b))) if a.parse::<f64>().ok() == b.as_f64() => {}
        (want, Some(have)) if want == have => {}
        (want, None) => out.push(format!("{path}: the file has {want}, Personalize has none")),
        (want, Some(have)) => out.push(format!("{path}: the file has {want}, Personalize has {have}")),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn only_what_the_file_sets_is_compared() {
        let want = json!({"itemExplorationConfig": {"explorationWeight": "0.5"}});
        let have =
            json!({"itemExplorationConfig": {"explorationWeight": "0.5", "explorationItemAgeCutOff": "30"}});
        assert!(json_differences("campaignConfig", &want, Some(&have)).is_empty());
    }

    #[test]
    fn differences_name_the_member_and_both_values() {
        let want = json!({"a": {"b": "1"}, "c": true});
        let have = json!({"a": {"b": "2"}});
        let d = json_differences("cfg", &want, Some(&have));
        assert_eq!(d.len(), 2, "{d:?}");
        assert!(
            d[0].contains("cfg.a.b") && d[0].contains("\"1\"") && d[0].contains("\"2\""),
            "{d:?}"
        );
        assert!(d[1].contains("cfg.c") && d[1].contains("none"), "{d:?}");
    }

    #[test]
    fn numbers_compare_by_value_and_keys_without_order() {
        assert!(
            json_differences("x", &json!({"p": 1, "q": 2}), Some(&json!({"q": 2.0, "p": "1"}))).is_empty()
        );
        assert_eq!(json_differences("x", &json!(2), Some(&json!(3))).len(), 1);
        assert!(json_differences("x", &json!({}), None).is_empty());
        assert!(json_differences("x", &json!(null), Some(&json!(5))).is_empty());
    }
}
