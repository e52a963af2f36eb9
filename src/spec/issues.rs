//! Problems found in a parameter file, each with the JSON path it concerns.

use std::fmt;

use serde::{Deserialize, Serialize};

/// One problem: where (a JSON path such as `solutions[2].campaigns[0].serviceConfig.minProvisionedTPS`,
/// the empty string for the whole file) and what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Issue {
    pub path: String,
    pub message: String,
}

impl Issue {
    /// The path as people read it: `(root)` for the whole file.
    pub fn display_path(&self) -> &str {
        if self.path.is_empty() {
            "(root)"
        } else {
            &self.path
        }
    }
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.display_path(), self.message)
    }
}

/// One step of a JSON path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    Key(String),
    Index(usize),
}

/// A JSON path being walked: push a step before looking inside, pop after.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct JsonPath {
    steps: Vec<Step>,
}

impl JsonPath {
    pub(crate) fn root() -> Self {
        Self::default()
    }

    /// A copy with one more key.
    pub(crate) fn key(&self, key: &str) -> Self {
        let mut next = self.clone();
        next.steps.push(Step::Key(key.to_string()));
        next
    }

    /// A copy with one more index.
    pub(crate) fn index(&self, index: usize) -> Self {
        let mut next = self.clone();
        next.steps.push(Step::Index(index));
        next
    }

    /// The last key of the path (the member name an issue is about), if the path ends in a key.
    pub(crate) fn last_key(&self) -> Option<&str> {
        match self.steps.last() {
            Some(Step::Key(k)) => Some(k),
            _ => None,
        }
    }

    /// The path without list indices, dot-separated, as the reference names keys
    /// (`solutions.workflowConfig.maxAge`).
    pub(crate) fn dotted(&self) -> String {
        let keys: Vec<&str> = self
            .steps
            .iter()
            .filter_map(|s| match s {
                Step::Key(k) => Some(k.as_str()),
                Step::Index(_) => None,
            })
            .collect();
        keys.join(".")
    }
}

impl fmt::Display for JsonPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, step) in self.steps.iter().enumerate() {
            match step {
                Step::Key(k) if i == 0 => f.write_str(k)?,
                Step::Key(k) => write!(f, ".{k}")?,
                Step::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// Errors and warnings collected while walking a file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Findings {
    pub(crate) errors: Vec<Issue>,
    pub(crate) warnings: Vec<Issue>,
}

impl Findings {
    pub(crate) fn error(&mut self, path: &JsonPath, message: impl Into<String>) {
        self.errors.push(Issue {
            path: path.to_string(),
            message: message.into(),
        });
    }

    pub(crate) fn warning(&mut self, path: &JsonPath, message: impl Into<String>) {
        self.warnings.push(Issue {
            path: path.to_string(),
            message: message.into(),
        });
    }
}

/// A short rendering of a JSON value for messages: long text is cut, so a 1 MiB string does not end up
/// in a notification.
pub(crate) fn snippet(value: &serde_json::Value) -> String {
    const MAX_CHARS: usize = 60;
    let text = match value {
        serde_json::Value::Array(_) => "[…]".to_string(),
        serde_json::Value::Object(_) => "{…}".to_string(),
        other => other.to_string(),
    };
    if text.chars().count() > MAX_CHARS {
        let cut: String = text.chars().take(MAX_CHARS).collect();
        format!("{cut}…")
    } else {
        text
    }
}

/// "a string", "an object", … for type messages.
pub(crate) fn kind_of(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(n) if n.is_i64() || n.is_u64() => "an integer",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "a list",
        serde_json::Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn paths_print_keys_dotted_and_indices_in_brackets() {
        let p = JsonPath::root()
            .key("solutions")
            .index(2)
            .key("campaigns")
            .index(0)
            .key("serviceConfig");
        assert_eq!(p.to_string(), "solutions[2].campaigns[0].serviceConfig");
        assert_eq!(p.dotted(), "solutions.campaigns.serviceConfig");
        assert_eq!(p.last_key(), Some("serviceConfig"));
        assert_eq!(JsonPath::root().to_string(), "");
    }

    #[test]
    fn the_root_is_displayed_by_name() {
        let issue = Issue {
            path: String::new(),
            message: "Configuration should not be empty".into(),
        };
        assert_eq!(issue.to_string(), "(root): Configuration should not be empty");
    }

    #[test]
    fn snippets_cut_long_values_on_character_boundaries() {
        let long = json!("é".repeat(1000));
        let s = snippet(&long);
        assert!(s.chars().count() <= 61, "{s}");
        assert!(s.ends_with('…'));
        assert_eq!(snippet(&json!([1, 2])), "[…]");
        assert_eq!(snippet(&json!(5)), "5");
    }
}
