//! Reading a parameter file: every error and warning with its JSON path, and the typed model when
//! there is no error.

use serde_json::Value;

use crate::spec::build;
use crate::spec::issues::{Findings, Issue, JsonPath, kind_of};
use crate::spec::model::Spec;
use crate::spec::rules;
use crate::spec::shape::{self, PARAMETER_FILE, Shape};

/// The largest parameter file read (1 MiB); anything longer is rejected before parsing.
pub const MAX_FILE_BYTES: usize = 1024 * 1024;

/// The deepest nesting accepted, the same limit the JSON parser applies to text.
pub const MAX_DEPTH: usize = 128;

/// Whether `value` nests deeper than `limit`, found without recursion so any value can be measured.
fn nests_deeper_than(value: &Value, limit: usize) -> bool {
    let mut pending = vec![(value, 1usize)];
    while let Some((node, depth)) = pending.pop() {
        let children: Box<dyn Iterator<Item = &Value>> = match node {
            Value::Array(items) => Box::new(items.iter()),
            Value::Object(map) => Box::new(map.values()),
            _ => continue,
        };
        if depth > limit {
            return true;
        }
        pending.extend(children.map(|child| (child, depth + 1)));
    }
    false
}

/// What validation found.
///
/// # Guarantees
/// * `spec` is `Some` exactly when `errors` is empty.
/// * `errors` and `warnings` are in file order within each kind of check; every issue has the JSON
///   path it concerns (`""` for the whole file).
/// * `dataset_group_name` is set whenever `datasetGroup.serviceConfig.name` is a string, even in an
///   invalid file, so notifications can name the group.
#[derive(Debug, Clone, PartialEq)]
#[must_use]
pub struct Report {
    pub spec: Option<Spec>,
    pub errors: Vec<Issue>,
    pub warnings: Vec<Issue>,
    pub dataset_group_name: Option<String>,
}

impl Report {
    /// No errors (warnings allowed).
    pub fn is_valid(&self) -> bool {
        self.errors.is_empty()
    }

    /// The group's name for messages: `UNKNOWN` when the file does not say it (the reference's word).
    pub fn dataset_group_name_or_unknown(&self) -> &str {
        self.dataset_group_name.as_deref().unwrap_or("UNKNOWN")
    }

    fn failed(path: &str, message: String) -> Self {
        Self {
            spec: None,
            errors: vec![Issue {
                path: path.to_string(),
                message,
            }],
            warnings: Vec::new(),
            dataset_group_name: None,
        }
    }
}

/// Validates parameter-file text.
///
/// Never panics, whatever the input. Text over [`MAX_FILE_BYTES`] is rejected unread; invalid JSON
/// gives one error `Could not validate JSON: <reason> at line L column C`.
pub fn load(text: &str) -> Report {
    if text.len() > MAX_FILE_BYTES {
        return Report::failed(
            "",
            format!(
                "the file is {} bytes; a parameter file may have at most {MAX_FILE_BYTES} bytes (1 MiB)",
                text.len()
            ),
        );
    }
    match serde_json::from_str::<Value>(text) {
        Ok(value) => load_value(&value),
        Err(e) => Report::failed("", format!("Could not validate JSON: {e}")),
    }
}

/// Validates an already parsed parameter file. See [`load`].
///
/// A value nested deeper than [`MAX_DEPTH`] is rejected before it is walked, so no value (however it
/// was built) can exhaust the stack here.
pub fn load_value(value: &Value) -> Report {
    if nests_deeper_than(value, MAX_DEPTH) {
        return Report::failed(
            "",
            format!("the file nests lists and objects deeper than {MAX_DEPTH} levels"),
        );
    }
    let Some(root) = value.as_object() else {
        return Report::failed(
            "",
            format!("a parameter file must be a JSON object, found {}", kind_of(value)),
        );
    };
    let mut findings = Findings::default();
    if root.is_empty() {
        findings.error(&JsonPath::root(), "Configuration should not be empty");
    }
    shape::check(
        value,
        &Shape::Object(&PARAMETER_FILE),
        &JsonPath::root(),
        &mut findings,
    );
    rules::check(value, &mut findings);
    let Findings { mut errors, warnings } = findings;
    let spec = if errors.is_empty() {
        match build::build(value) {
            Ok(spec) => Some(spec),
            Err(issue) => {
                errors.push(issue);
                None
            }
        }
    } else {
        None
    };
    Report {
        spec,
        errors,
        warnings,
        dataset_group_name: rules::str_at(value, &["datasetGroup", "serviceConfig", "name"])
            .map(str::to_string),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// A value nested `depth` lists deep, built without recursion.
    fn nested(depth: usize) -> Value {
        (1..depth).fold(json!([]), |inner, _| Value::Array(vec![inner]))
    }

    #[test]
    fn nesting_is_measured_in_containers() {
        assert!(!nests_deeper_than(&json!(1), 0));
        assert!(!nests_deeper_than(&json!({"a": [1]}), 2));
        assert!(nests_deeper_than(&json!({"a": [[]]}), 2));
        assert!(!nests_deeper_than(&nested(MAX_DEPTH), MAX_DEPTH));
        assert!(nests_deeper_than(&nested(MAX_DEPTH + 1), MAX_DEPTH));
    }

    #[test]
    fn a_value_deeper_than_the_parser_allows_is_rejected_unwalked() {
        let mut deep = nested(5_000);
        let root = json!({"datasetGroup": {"serviceConfig": {"name": "g"}}, "tags": []});
        let mut file = root.clone();
        file["tags"] = std::mem::take(&mut deep);
        let report = load_value(&file);
        assert_eq!(report.errors.len(), 1);
        assert!(report.errors[0].message.contains("deeper than 128 levels"));
        // Take the deep value apart iteratively: dropping it recursively could exhaust the stack.
        let mut stack = vec![std::mem::take(&mut file)];
        while let Some(mut v) = stack.pop() {
            match &mut v {
                Value::Array(items) => stack.append(items),
                Value::Object(map) => stack.extend(std::mem::take(map).into_iter().map(|(_, v)| v)),
                _ => {}
            }
        }
        assert!(load_value(&root).is_valid());
    }
}
