//! Comparing what the file asks for with what Personalize describes, member by member.

use serde_json::Value;

use crate::spec::model::Tag;

/// The members of `expected` that `actual` lacks or holds with another value, as `path: …` lines.
///
/// Only what `expected` sets is compared: Personalize fills defaults into what it describes
/// (`itemExplorationConfig`, hyperparameters), and those must not read as changes. Numbers compare
/// by value (`1` equals `1.0`); objects compare without regard to key order.
pub fn json_differences(path: &str, expected: &Value, actual: Option<&Value>) -> Vec<String> {
    let mut out = Vec::new();
    walk(path, expected, actual, &mut out, &|path, want, have| match have {
        None => format!("{path}: the file has {want}, Personalize has none"),
        Some(have) => format!("{path}: the file has {want}, Personalize has {have}"),
    });
    out
}

/// As [`json_differences`], worded as the change an update makes: `path: old → new`.
pub fn json_changes(path: &str, expected: &Value, actual: Option<&Value>) -> Vec<String> {
    let mut out = Vec::new();
    walk(path, expected, actual, &mut out, &|path, want, have| {
        format!(
            "{path}: {} → {want}",
            have.map_or_else(|| "none".to_string(), Value::to_string)
        )
    });
    out
}

/// What TagResource and UntagResource must do to bring a resource's tags to the file's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagChanges {
    /// Tags to add or whose value changes.
    pub set: Vec<Tag>,
    /// Keys to remove.
    pub remove: Vec<String>,
    /// `tags.key: old → new` lines (`none` for an added or removed tag).
    pub lines: Vec<String>,
}

/// The changes that make `have` equal `want`, or `None` when they already are. Keys starting with
/// `aws:` are AWS's own and never removed.
pub fn tag_changes(want: &[Tag], have: &[Tag]) -> Option<TagChanges> {
    let mut out = TagChanges {
        set: Vec::new(),
        remove: Vec::new(),
        lines: Vec::new(),
    };
    for w in want {
        match have.iter().find(|h| h.key == w.key) {
            Some(h) if h.value == w.value => {}
            Some(h) => {
                out.lines
                    .push(format!("tags.{}: {:?} → {:?}", w.key, h.value, w.value));
                out.set.push(w.clone());
            }
            None => {
                out.lines.push(format!("tags.{}: none → {:?}", w.key, w.value));
                out.set.push(w.clone());
            }
        }
    }
    for h in have {
        if !h.key.starts_with("aws:") && !want.iter().any(|w| w.key == h.key) {
            out.lines.push(format!("tags.{}: {:?} → none", h.key, h.value));
            out.remove.push(h.key.clone());
        }
    }
    (!out.lines.is_empty()).then_some(out)
}

type Wording = dyn Fn(&str, &Value, Option<&Value>) -> String;

fn walk(path: &str, expected: &Value, actual: Option<&Value>, out: &mut Vec<String>, word: &Wording) {
    match (expected, actual) {
        (Value::Null, _) => {}
        (Value::Object(want), Some(Value::Object(have))) => {
            for (key, value) in want {
                walk(&format!("{path}.{key}"), value, have.get(key), out, word);
            }
        }
        (Value::Object(want), None | Some(Value::Null)) if want.values().all(Value::is_null) => {}
        (Value::Number(a), Some(Value::Number(b))) if a.as_f64() == b.as_f64() => {}
        // Personalize describes map values as strings ("0.3") that files may write as numbers.
        (Value::Number(a), Some(Value::String(b))) if b.parse::<f64>().ok() == a.as_f64() => {}
        (Value::String(a), Some(Value::Number(b))) if a.parse::<f64>().ok() == b.as_f64() => {}
        (want, Some(have)) if want == have => {}
        (want, have) => out.push(word(path, want, have)),
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
    fn changes_read_old_to_new() {
        let d = json_changes("cfg", &json!({"a": "2", "b": 1}), Some(&json!({"a": "1"})));
        assert_eq!(d, ["cfg.a: \"1\" → \"2\"", "cfg.b: none → 1"]);
        assert!(json_changes("cfg", &json!({"a": 1}), Some(&json!({"a": "1"}))).is_empty());
    }

    fn tag(k: &str, v: &str) -> Tag {
        Tag {
            key: k.into(),
            value: v.into(),
        }
    }

    #[test]
    fn tags_are_set_changed_and_removed_but_aws_tags_are_kept() {
        let want = [tag("team", "recs"), tag("env", "prod")];
        let have = [
            tag("team", "ads"),
            tag("old", "x"),
            tag("aws:cloudformation:stack-name", "s"),
        ];
        let c = tag_changes(&want, &have).expect("changes");
        assert_eq!(c.set, [tag("team", "recs"), tag("env", "prod")]);
        assert_eq!(c.remove, ["old"]);
        assert_eq!(
            c.lines,
            [
                "tags.team: \"ads\" → \"recs\"",
                "tags.env: none → \"prod\"",
                "tags.old: \"x\" → none"
            ]
        );
        assert_eq!(
            tag_changes(&want, &[tag("env", "prod"), tag("team", "recs")]),
            None
        );
        assert_eq!(tag_changes(&[], &[tag("aws:x", "y")]), None);
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
