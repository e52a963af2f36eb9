//! Every key the parameter file declares (`spec::shape`) reaches the typed `Spec` (`spec::build` and
//! the serde model): a key declared in one place and forgotten in another fails here, not as an
//! "internal error … passed validation" on a user's file.
//!
//! The files in `tests/fixtures/every_field/` together use every declared key that the service acts
//! on (keys the reference overwrote or removed are accepted with a warning and deliberately dropped).
//! Two checks:
//! - coverage: every such key of the shape appears in at least one of those files;
//! - arrival: every file is valid, and each of its scalar values is found in the `Spec` built from it
//!   (strings and numbers among the `Spec`'s values; a boolean by flipping it and seeing the `Spec`
//!   change, since `true` alone would be found anywhere).

use std::collections::BTreeSet;
use std::path::PathBuf;

use personalize_ops::spec::{
    self,
    shape::{Field, Object, PARAMETER_FILE, Presence, Shape},
};
use serde_json::Value;

fn files() -> Vec<(String, Value)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/every_field");
    let mut out: Vec<(String, Value)> = std::fs::read_dir(&dir)
        .expect("tests/fixtures/every_field exists")
        .map(|entry| entry.expect("readable directory entry").path())
        .filter(|path| path.extension().and_then(|e| e.to_str()) == Some("json"))
        .map(|path| {
            let text = std::fs::read_to_string(&path).expect("readable file");
            let value = serde_json::from_str(&text).expect("the file is JSON");
            (
                path.file_name().expect("a file").to_string_lossy().into_owned(),
                value,
            )
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(out.len() >= 2, "the every-field files are missing");
    out
}

/// Whether the service acts on a key (as opposed to accepting it with a warning and dropping it).
fn carried(field: &Field) -> bool {
    !matches!(field.presence, Presence::SetByService | Presence::Removed(_))
}

/// Every carried key path of the shape, lists written `[]` and map entries `{}`. An Avro document,
/// tags and the values of maps are leaves: their insides are checked by their own parsers and stored
/// whole.
fn declared(object: &Object, prefix: &str, out: &mut BTreeSet<String>) {
    for field in object.fields.iter().filter(|f| carried(f)) {
        let path = if prefix.is_empty() {
            field.name.to_string()
        } else {
            format!("{prefix}.{}", field.name)
        };
        out.insert(path.clone());
        declared_in(&field.shape, &path, out);
    }
}

fn declared_in(shape: &Shape, path: &str, out: &mut BTreeSet<String>) {
    match shape {
        Shape::Object(object) => declared(object, path, out),
        Shape::List(list) => declared_in(&list.item, &format!("{path}[]"), out),
        Shape::Map(map) => declared_in(&map.value, &format!("{path}{{}}"), out),
        _ => {}
    }
}

/// The key paths a file uses, in the same notation, following the shape so that maps are recognised.
fn used(value: &Value, shape: &Shape, path: &str, out: &mut BTreeSet<String>) {
    match (shape, value) {
        (Shape::Object(object), Value::Object(map)) => {
            for (key, member) in map {
                let Some(field) = object.fields.iter().find(|f| f.name == key) else {
                    continue;
                };
                let member_path = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                out.insert(member_path.clone());
                used(member, &field.shape, &member_path, out);
            }
        }
        (Shape::List(list), Value::Array(items)) => {
            for item in items {
                used(item, &list.item, &format!("{path}[]"), out);
            }
        }
        (Shape::Map(map), Value::Object(entries)) => {
            for member in entries.values() {
                used(member, &map.value, &format!("{path}{{}}"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn the_every_field_files_use_every_declared_key() {
    let mut wanted = BTreeSet::new();
    declared(&PARAMETER_FILE, "", &mut wanted);
    let mut seen = BTreeSet::new();
    for (_, value) in files() {
        used(&value, &Shape::Object(&PARAMETER_FILE), "", &mut seen);
    }
    let missing: Vec<&String> = wanted.difference(&seen).collect();
    assert!(
        missing.is_empty(),
        "declared in spec/shape.rs but used by no file in tests/fixtures/every_field/ — add each to a \
         file there (and make sure it reaches the Spec): {missing:#?}"
    );
}

/// A scalar of the file: where it is, and the value.
struct Leaf {
    pointer: String,
    value: Value,
}

/// The carried scalar values of a file, with their JSON pointers. Values under dropped keys are
/// skipped; an Avro document is stored whole, so its leaves are included like any other.
fn leaves(value: &Value, shape: Option<&Shape>, pointer: &str, out: &mut Vec<Leaf>) {
    match value {
        Value::Object(map) => {
            for (key, member) in map {
                let member_shape = match shape {
                    Some(Shape::Object(object)) => match object.fields.iter().find(|f| f.name == key) {
                        Some(field) if !carried(field) => continue,
                        Some(field) => Some(&field.shape),
                        None => None,
                    },
                    Some(Shape::Map(map)) => Some(&map.value),
                    _ => None,
                };
                let escaped = key.replace('~', "~0").replace('/', "~1");
                leaves(member, member_shape, &format!("{pointer}/{escaped}"), out);
            }
        }
        Value::Array(items) => {
            let item_shape = match shape {
                Some(Shape::List(list)) => Some(&list.item),
                _ => None,
            };
            for (i, item) in items.iter().enumerate() {
                leaves(item, item_shape, &format!("{pointer}/{i}"), out);
            }
        }
        Value::Null => {}
        scalar => out.push(Leaf {
            pointer: pointer.to_string(),
            value: scalar.clone(),
        }),
    }
}

/// Every scalar of the `Spec`, as text (numbers compared by value).
fn spec_scalars(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => map.values().for_each(|v| spec_scalars(v, out)),
        Value::Array(items) => items.iter().for_each(|v| spec_scalars(v, out)),
        Value::String(s) => out.push(s.clone()),
        Value::Number(n) => out.push(number_text(n)),
        Value::Bool(_) | Value::Null => {}
    }
}

fn number_text(n: &serde_json::Number) -> String {
    n.as_f64().map_or_else(|| n.to_string(), |f| format!("{f}"))
}

fn built(name: &str, file: &Value) -> Value {
    let report = spec::load_value(file);
    assert!(
        report.is_valid(),
        "{name} must be a valid parameter file: {:#?}",
        report.errors
    );
    let spec = report.spec.as_ref().expect("a valid file has a Spec");
    serde_json::to_value(spec).expect("a Spec serialises")
}

#[test]
fn every_value_of_the_every_field_files_reaches_the_spec() {
    let mut lost = Vec::new();
    for (name, file) in files() {
        let spec = built(&name, &file);
        let mut scalars = Vec::new();
        spec_scalars(&spec, &mut scalars);
        let mut file_leaves = Vec::new();
        leaves(&file, Some(&Shape::Object(&PARAMETER_FILE)), "", &mut file_leaves);
        for leaf in file_leaves {
            let found = match &leaf.value {
                // A string may be kept inside a larger one (a schedule's text, a schema document).
                Value::String(s) => scalars.iter().any(|x| x == s || x.contains(s.as_str())),
                Value::Number(n) => scalars.contains(&number_text(n)),
                Value::Bool(b) => {
                    let mut flipped = file.clone();
                    if let Some(slot) = flipped.pointer_mut(&leaf.pointer) {
                        *slot = Value::Bool(!b);
                    }
                    let report = spec::load_value(&flipped);
                    match report.spec.as_ref() {
                        Some(other) => serde_json::to_value(other).expect("a Spec serialises") != spec,
                        // Flipping made the file invalid: the value is read, so it arrives.
                        None => !report.errors.is_empty(),
                    }
                }
                _ => true,
            };
            if !found {
                lost.push(format!("{name}: {} = {}", leaf.pointer, leaf.value));
            }
        }
    }
    assert!(
        lost.is_empty(),
        "these values validate but never reach the Spec (declared in spec/shape.rs, missing in \
         spec/build.rs or spec/model.rs): {lost:#?}"
    );
}
