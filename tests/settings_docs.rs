//! The settings are declared in three places that must agree: the structs in `src/settings.rs`,
//! `config/default.toml` (every key with its default and meaning) and the README. The structs and
//! the defaults are held together by loading (unknown keys are rejected, no key has a serde default);
//! this suite holds the documentation to them:
//! - every key of `config/default.toml` is explained by a comment above it (or above its group);
//! - every `section.key` the README names exists;
//! - every README table row `| \`section.key\` | default | … |` shows the default the file has.

use std::collections::BTreeMap;
use std::path::PathBuf;

const SECTIONS: [&str; 8] = [
    "log",
    "personalize",
    "reconcile",
    "daemon",
    "scheduler",
    "notify",
    "metrics",
    "aws",
];

fn read(relative: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// One `key = value` line of the defaults file.
struct Entry {
    /// `section.key` (`reconcile.kinds.schema.poll_min_secs` for nested tables).
    key: String,
    /// The value as written (strings keep their quotes).
    value: String,
    /// Whether a comment explains it: directly above, or above the run of keys (and of
    /// `[reconcile.kinds.*]` headers, documented once for all kinds) it belongs to.
    documented: bool,
}

/// A reader for the defaults file's own subset of TOML: `[section]` headers, `key = value` lines
/// with scalar values, `#` comments.
fn defaults() -> Vec<Entry> {
    let text = read("config/default.toml");
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    let mut section = String::new();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if let Some(header) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = header.to_string();
        } else if let Some((key, value)) = line.split_once('=').filter(|_| !line.starts_with('#')) {
            let documented = lines[..i]
                .iter()
                .rev()
                .find(|l| !(l.contains('=') && !l.starts_with('#') || l.starts_with("[reconcile.kinds.")))
                .is_some_and(|l| l.starts_with('#'));
            out.push(Entry {
                key: format!("{section}.{}", key.trim()),
                value: value.trim().to_string(),
                documented,
            });
        }
    }
    assert!(
        out.len() > 40,
        "config/default.toml was not read: {} keys",
        out.len()
    );
    out
}

#[test]
fn every_default_is_explained_by_a_comment() {
    let bare: Vec<String> = defaults()
        .into_iter()
        .filter(|e| !e.documented)
        .map(|e| e.key)
        .collect();
    assert!(
        bare.is_empty(),
        "keys of config/default.toml without a comment saying what they mean: {bare:#?}"
    );
}

/// The `section.key` names in backticks in the README (a `<kind>` placeholder kept as written).
fn readme_keys(readme: &str) -> Vec<String> {
    let mut out = Vec::new();
    for quoted in readme.split('`').skip(1).step_by(2) {
        let Some((section, rest)) = quoted.split_once('.') else {
            continue;
        };
        let keyish = rest
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_.<>".contains(c));
        // `personalize.amazonaws.com` is a service principal and `metrics.jsonl` a file, not settings.
        let not_a_setting = rest.ends_with(".com") || ["json", "jsonl"].contains(&rest);
        if SECTIONS.contains(&section) && keyish && !not_a_setting && !rest.is_empty() {
            out.push(quoted.to_string());
        }
    }
    out
}

fn exists(key: &str, known: &BTreeMap<String, String>) -> bool {
    if let Some((before, after)) = key.split_once("<kind>") {
        return known
            .keys()
            .any(|k| k.starts_with(before) && k.ends_with(after) && k.len() > before.len() + after.len());
    }
    known.contains_key(key)
}

#[test]
fn every_setting_the_readme_names_exists() {
    let known: BTreeMap<String, String> = defaults().into_iter().map(|e| (e.key, e.value)).collect();
    let readme = read("README.md");
    let keys = readme_keys(&readme);
    assert!(keys.len() > 10, "the README names settings: found only {keys:?}");
    let stale: Vec<&String> = keys.iter().filter(|k| !exists(k, &known)).collect();
    assert!(
        stale.is_empty(),
        "the README names settings that config/default.toml does not have: {stale:#?}"
    );
}

/// A literal default as the README writes it, comparable with the file's value.
fn literal(cell: &str) -> Option<String> {
    let cell = cell.trim().trim_matches('`').trim_matches('"');
    let plain = !cell.is_empty()
        && cell
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-:/".contains(c));
    plain.then(|| normalise(cell))
}

fn normalise(value: &str) -> String {
    let value = value.trim_matches('"');
    value
        .parse::<f64>()
        .map_or_else(|_| value.to_string(), |n| format!("{n}"))
}

#[test]
fn the_readme_tables_show_the_real_defaults() {
    let known: BTreeMap<String, String> = defaults().into_iter().map(|e| (e.key, e.value)).collect();
    let readme = read("README.md");
    let mut checked = 0;
    let mut wrong = Vec::new();
    for row in readme.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = row.trim_matches('|').split('|').map(str::trim).collect();
        let [key_cell, default_cell, ..] = cells.as_slice() else {
            continue;
        };
        let key = key_cell.trim_matches('`');
        let Some(file_value) = known.get(key) else {
            continue;
        };
        let Some(shown) = literal(default_cell) else {
            continue;
        };
        checked += 1;
        let real = normalise(file_value);
        let unset = ["none", "empty", "unset", "off"];
        if shown != real && !(real.is_empty() && unset.contains(&shown.as_str())) {
            wrong.push(format!(
                "{key}: README says {default_cell}, config/default.toml has {file_value}"
            ));
        }
    }
    assert!(
        checked >= 5,
        "no README settings table found ({checked} rows checked)"
    );
    assert!(
        wrong.is_empty(),
        "README defaults that differ from config/default.toml: {wrong:#?}"
    );
}
