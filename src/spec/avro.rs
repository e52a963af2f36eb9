//! Personalize Avro schemas: a flat `record` of primitive fields, and the per-dataset-type field rules.
//!
//! Two levels, because Personalize checks them at two moments:
//! * [`parse`] is what `CreateSchema` rejects (not a record, nested or unknown types, bad or duplicate
//!   names): these are errors.
//! * [`check_dataset`] is what `CreateDataset` and training reject or ignore for a given dataset type and
//!   domain (required and reserved fields, metadata limits). The reference accepts such files (one of
//!   its own fixtures has an interactions schema without `TIMESTAMP`), so the parameter-file validator
//!   reports these as warnings and the built-in Personalize enforces them at `CreateDataset`.

use std::collections::HashMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::kinds::{DatasetType, Domain};

/// The longest schema Personalize accepts (`CreateSchema.schema`, characters of JSON).
pub const MAX_SCHEMA_LEN: usize = 20_000;

/// The primitive types Personalize allows for a field (besides `null` in a union).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldType {
    Boolean,
    Int,
    Long,
    Float,
    Double,
    String,
}

impl FieldType {
    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "boolean" => Self::Boolean,
            "int" => Self::Int,
            "long" => Self::Long,
            "float" => Self::Float,
            "double" => Self::Double,
            "string" => Self::String,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Boolean => "boolean",
            Self::Int => "int",
            Self::Long => "long",
            Self::Float => "float",
            Self::Double => "double",
            Self::String => "string",
        }
    }

    /// Whether values are numbers (Personalize allows numeric metadata and range filters on them).
    pub fn is_numeric(self) -> bool {
        matches!(self, Self::Int | Self::Long | Self::Float | Self::Double)
    }
}

impl fmt::Display for FieldType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One field of a schema.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AvroField {
    pub name: String,
    /// The non-null type.
    pub ty: FieldType,
    /// Declared as a union with `null`: the value may be missing.
    pub nullable: bool,
    /// `"categorical": true` (string fields only).
    pub categorical: bool,
    /// `"textual": true` (string fields of Items only).
    pub textual: bool,
}

/// A parsed Personalize schema.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AvroSchema {
    pub name: String,
    pub namespace: Option<String>,
    pub fields: Vec<AvroField>,
}

impl AvroSchema {
    /// The field with exactly this name.
    pub fn field(&self, name: &str) -> Option<&AvroField> {
        self.fields.iter().find(|f| f.name == name)
    }
}

/// How serious a schema issue is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// A problem found in a schema, with its path relative to the schema object (`fields[2].type`; empty
/// for the schema itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SchemaIssue {
    pub path: String,
    pub message: String,
    pub severity: Severity,
}

impl SchemaIssue {
    fn error(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
            severity: Severity::Error,
        }
    }

    fn warning(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
            severity: Severity::Warning,
        }
    }
}

impl fmt::Display for SchemaIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Parses schema text (the `CreateSchema.schema` string).
pub fn parse_str(text: &str) -> Result<AvroSchema, Vec<SchemaIssue>> {
    if text.chars().count() > MAX_SCHEMA_LEN {
        return Err(vec![SchemaIssue::error(
            "",
            format!("the schema is longer than {MAX_SCHEMA_LEN} characters"),
        )]);
    }
    let value: Value = serde_json::from_str(text)
        .map_err(|e| vec![SchemaIssue::error("", format!("the schema is not JSON: {e}"))])?;
    parse(&value)
}

/// Parses a schema document. Every structural error is reported, not only the first.
pub fn parse(value: &Value) -> Result<AvroSchema, Vec<SchemaIssue>> {
    let mut issues = Vec::new();
    let Some(obj) = value.as_object() else {
        return Err(vec![SchemaIssue::error(
            "",
            format!("a schema must be an Avro record object, not {}", json_kind(value)),
        )]);
    };
    check_record_type(obj.get("type"), &mut issues);
    let name = record_name(obj.get("name"), &mut issues);
    let namespace = record_namespace(obj.get("namespace"), &mut issues);
    let fields = record_fields(obj.get("fields"), &mut issues);
    if issues.is_empty() {
        Ok(AvroSchema {
            name,
            namespace,
            fields,
        })
    } else {
        Err(issues)
    }
}

fn check_record_type(value: Option<&Value>, issues: &mut Vec<SchemaIssue>) {
    match value {
        Some(Value::String(t)) if t == "record" => {}
        Some(other) => issues.push(SchemaIssue::error(
            "type",
            format!("the schema type must be \"record\", not {}", short(other)),
        )),
        None => issues.push(SchemaIssue::error(
            "type",
            "the schema must have \"type\": \"record\"",
        )),
    }
}

fn record_name(value: Option<&Value>, issues: &mut Vec<SchemaIssue>) -> String {
    match value {
        Some(Value::String(n)) if is_avro_name(n) => n.clone(),
        Some(Value::String(n)) => {
            issues.push(SchemaIssue::error(
                "name",
                format!("{n:?} is not a valid Avro name (letters, digits and _, not starting with a digit)"),
            ));
            n.clone()
        }
        Some(other) => {
            issues.push(SchemaIssue::error(
                "name",
                format!("the record name must be a string, not {}", short(other)),
            ));
            String::new()
        }
        None => {
            issues.push(SchemaIssue::error("name", "the record must have a name"));
            String::new()
        }
    }
}

fn record_namespace(value: Option<&Value>, issues: &mut Vec<SchemaIssue>) -> Option<String> {
    match value {
        None | Some(Value::Null) => None,
        Some(Value::String(ns)) => Some(ns.clone()),
        Some(other) => {
            issues.push(SchemaIssue::error(
                "namespace",
                format!("the namespace must be a string, not {}", short(other)),
            ));
            None
        }
    }
}

fn record_fields(value: Option<&Value>, issues: &mut Vec<SchemaIssue>) -> Vec<AvroField> {
    match value {
        Some(Value::Array(items)) if items.is_empty() => {
            issues.push(SchemaIssue::error("fields", "the record has no fields"));
            Vec::new()
        }
        Some(Value::Array(items)) => field_list(items, issues),
        Some(other) => {
            issues.push(SchemaIssue::error(
                "fields",
                format!("fields must be a list, not {}", short(other)),
            ));
            Vec::new()
        }
        None => {
            issues.push(SchemaIssue::error("fields", "the record must have a fields list"));
            Vec::new()
        }
    }
}

/// The fields, each checked, and every pair that Personalize would take for one name reported.
fn field_list(items: &[Value], issues: &mut Vec<SchemaIssue>) -> Vec<AvroField> {
    let mut fields = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (i, item) in items.iter().enumerate() {
        let path = format!("fields[{i}]");
        let Some(field) = parse_field(item, &path, issues) else {
            // Keep indexes aligned for the duplicate message.
            fields.push(AvroField {
                name: String::new(),
                ty: FieldType::String,
                nullable: true,
                categorical: false,
                textual: false,
            });
            continue;
        };
        // Personalize compares names "alphanumerically": GENRES_FIELD_1 clashes with GENRESFIELD1.
        let key: String = field
            .name
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_uppercase();
        if let Some(first) = seen.get(&key) {
            issues.push(SchemaIssue::error(
                format!("{path}.name"),
                format!(
                    "field {} clashes with field {} (fields[{first}]): names must differ in their letters and digits",
                    field.name, fields_name(&fields, *first)
                ),
            ));
        } else {
            seen.insert(key, i);
        }
        fields.push(field);
    }
    fields
}

fn fields_name(fields: &[AvroField], i: usize) -> &str {
    fields.get(i).map(|f| f.name.as_str()).unwrap_or("?")
}

fn parse_field(item: &Value, path: &str, issues: &mut Vec<SchemaIssue>) -> Option<AvroField> {
    let Some(obj) = item.as_object() else {
        issues.push(SchemaIssue::error(
            path,
            format!("a field must be an object, not {}", json_kind(item)),
        ));
        return None;
    };
    let before = issues.len();
    let name = match obj.get("name") {
        Some(Value::String(n)) if is_avro_name(n) && n.len() <= 150 => n.clone(),
        Some(Value::String(n)) => {
            issues.push(SchemaIssue::error(
                format!("{path}.name"),
                format!("{n:?} is not a valid field name (letters, digits and _, not starting with a digit, at most 150)"),
            ));
            n.clone()
        }
        Some(other) => {
            issues.push(SchemaIssue::error(
                format!("{path}.name"),
                format!("a field name must be a string, not {}", short(other)),
            ));
            String::new()
        }
        None => {
            issues.push(SchemaIssue::error(
                format!("{path}.name"),
                "the field has no name",
            ));
            String::new()
        }
    };
    let (ty, nullable) = match obj.get("type") {
        Some(t) => parse_type(t, &format!("{path}.type"), issues).unwrap_or((FieldType::String, false)),
        None => {
            issues.push(SchemaIssue::error(
                format!("{path}.type"),
                format!("field {name} has no type"),
            ));
            (FieldType::String, false)
        }
    };
    let flag = |key: &str, issues: &mut Vec<SchemaIssue>| match obj.get(key) {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            issues.push(SchemaIssue::error(
                format!("{path}.{key}"),
                format!("{key} must be true or false, not {}", short(other)),
            ));
            false
        }
    };
    let categorical = flag("categorical", issues);
    let textual = flag("textual", issues);
    if categorical && textual {
        issues.push(SchemaIssue::error(
            format!("{path}.textual"),
            format!("field {name} cannot be both categorical and textual"),
        ));
    }
    if (categorical || textual) && ty != FieldType::String && issues.len() == before {
        let which = if categorical { "categorical" } else { "textual" };
        issues.push(SchemaIssue::error(
            format!("{path}.{which}"),
            format!("field {name} is {ty}; only string fields can be {which}"),
        ));
    }
    (issues.len() == before).then_some(AvroField {
        name,
        ty,
        nullable,
        categorical,
        textual,
    })
}

/// A field type: a primitive name, `{"type": primitive}`, or a union of one primitive with `null`.
fn parse_type(t: &Value, path: &str, issues: &mut Vec<SchemaIssue>) -> Option<(FieldType, bool)> {
    match t {
        Value::String(s) => named_type(s, path, issues),
        Value::Array(members) => union_type(members, path, issues),
        Value::Object(obj) => object_type(obj, path, issues),
        other => {
            issues.push(SchemaIssue::error(
                path,
                format!("a type must be a string or a union list, not {}", short(other)),
            ));
            None
        }
    }
}

/// A type written as its name: `"string"`.
fn named_type(s: &str, path: &str, issues: &mut Vec<SchemaIssue>) -> Option<(FieldType, bool)> {
    match FieldType::parse(s) {
        Some(ft) => Some((ft, false)),
        None if s == "null" => {
            issues.push(SchemaIssue::error(
                path,
                "a field cannot be only null; use a union such as [\"null\", \"string\"]",
            ));
            None
        }
        None if matches!(s, "record" | "array" | "map" | "enum" | "fixed" | "bytes") => {
            issues.push(SchemaIssue::error(
                path,
                format!("{s} is not allowed: a Personalize schema is flat (boolean, int, long, float, double, string, or a union with null)"),
            ));
            None
        }
        None => {
            issues.push(SchemaIssue::error(
                path,
                format!("unknown type {s:?}; use boolean, int, long, float, double or string"),
            ));
            None
        }
    }
}

/// A union: one type with `null` at most once.
fn union_type(members: &[Value], path: &str, issues: &mut Vec<SchemaIssue>) -> Option<(FieldType, bool)> {
    let mut has_null = false;
    let mut prims = Vec::new();
    for (i, m) in members.iter().enumerate() {
        match m {
            Value::String(s) if s == "null" => {
                if has_null {
                    issues.push(SchemaIssue::error(
                        format!("{path}[{i}]"),
                        "null appears twice in the union",
                    ));
                    return None;
                }
                has_null = true;
            }
            other => prims.push(parse_type(other, &format!("{path}[{i}]"), issues)?),
        }
    }
    match (prims.as_slice(), has_null) {
        ([(ft, false)], true) => Some((*ft, true)),
        ([(ft, false)], false) => Some((*ft, false)),
        ([], _) => {
            issues.push(SchemaIssue::error(path, "a union needs one type besides null"));
            None
        }
        _ => {
            issues.push(SchemaIssue::error(
                path,
                "a union may only combine one type with null, e.g. [\"null\", \"string\"]",
            ));
            None
        }
    }
}

/// A primitive in object form: `{"type": "long", "logicalType": …}`.
fn object_type(
    obj: &serde_json::Map<String, Value>,
    path: &str,
    issues: &mut Vec<SchemaIssue>,
) -> Option<(FieldType, bool)> {
    match obj.get("type") {
        // A primitive written in object form; logicalType and other attributes are allowed by Avro.
        Some(Value::String(s)) if FieldType::parse(s).is_some() => FieldType::parse(s).map(|ft| (ft, false)),
        Some(Value::String(s)) => {
            issues.push(SchemaIssue::error(
                path,
                format!("{s} is not allowed: a Personalize schema is flat (boolean, int, long, float, double, string, or a union with null)"),
            ));
            None
        }
        _ => {
            issues.push(SchemaIssue::error(
                path,
                "a type object needs a \"type\" naming a primitive type",
            ));
            None
        }
    }
}

fn is_avro_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 40 {
        format!("{}…", s.chars().take(40).collect::<String>())
    } else {
        s
    }
}

/// A field a dataset type requires or reserves, with the type Personalize expects.
struct Rule {
    name: &'static str,
    types: &'static [FieldType],
    /// Must the field be present?
    required: bool,
    /// `Some(true)`: must be categorical; `Some(false)`: must not be.
    categorical: Option<bool>,
}

const STR: &[FieldType] = &[FieldType::String];
const LONG: &[FieldType] = &[FieldType::Long, FieldType::Int];
const NUM: &[FieldType] = &[
    FieldType::Float,
    FieldType::Double,
    FieldType::Int,
    FieldType::Long,
];

const fn req(name: &'static str, types: &'static [FieldType]) -> Rule {
    Rule {
        name,
        types,
        required: true,
        categorical: None,
    }
}
const fn opt(name: &'static str, types: &'static [FieldType], categorical: Option<bool>) -> Rule {
    Rule {
        name,
        types,
        required: false,
        categorical,
    }
}

fn rules(ty: DatasetType, domain: Option<Domain>) -> Vec<Rule> {
    use DatasetType::*;
    let mut rules = match ty {
        Interactions => vec![
            req("USER_ID", STR),
            req("ITEM_ID", STR),
            req("TIMESTAMP", LONG),
            opt("EVENT_TYPE", STR, Some(false)),
            opt("EVENT_VALUE", NUM, None),
            opt("IMPRESSION", STR, Some(false)),
            opt("RECOMMENDATION_ID", STR, Some(false)),
            opt("EVENT_ATTRIBUTION_SOURCE", STR, Some(false)),
        ],
        Items => vec![req("ITEM_ID", STR), opt("CREATION_TIMESTAMP", LONG, None)],
        Users => vec![req("USER_ID", STR)],
        Actions => vec![
            req("ACTION_ID", STR),
            opt("CREATION_TIMESTAMP", LONG, None),
            opt("VALUE", LONG, None),
            opt("EXPIRATION_TIMESTAMP", LONG, None),
            opt("REPEAT_FREQUENCY", LONG, None),
        ],
        ActionInteractions => vec![
            req("USER_ID", STR),
            req("ACTION_ID", STR),
            req("EVENT_TYPE", STR),
            req("TIMESTAMP", LONG),
            opt("IMPRESSION", STR, Some(false)),
            opt("RECOMMENDATION_ID", STR, Some(false)),
        ],
    };
    if let Some(domain) = domain {
        match (ty, domain) {
            (Interactions, _) => {
                if let Some(r) = rules.iter_mut().find(|r| r.name == "EVENT_TYPE") {
                    r.required = true;
                }
            }
            (Items, Domain::Ecommerce) => {
                rules.push(req("PRICE", NUM));
                rules.push(Rule {
                    name: "CATEGORY_L1",
                    types: STR,
                    required: true,
                    categorical: Some(true),
                });
                rules.push(opt("CATEGORY_L2", STR, Some(true)));
                rules.push(opt("CATEGORY_L3", STR, Some(true)));
            }
            (Items, Domain::VideoOnDemand) => {
                rules.push(Rule {
                    name: "GENRES",
                    types: STR,
                    required: true,
                    categorical: Some(true),
                });
                if let Some(r) = rules.iter_mut().find(|r| r.name == "CREATION_TIMESTAMP") {
                    r.required = true;
                }
                rules.push(opt("GENRE_L2", STR, Some(true)));
                rules.push(opt("GENRE_L3", STR, Some(true)));
            }
            _ => {}
        }
    }
    rules
}

/// The most metadata fields (beyond required and reserved ones) a dataset type allows.
fn metadata_limit(ty: DatasetType) -> usize {
    match ty {
        DatasetType::Interactions | DatasetType::ActionInteractions => 5,
        DatasetType::Users => 25,
        DatasetType::Items => 100,
        DatasetType::Actions => 10,
    }
}

/// The rules `CreateDataset` and training apply to a schema used for `ty` in a group of `domain`.
/// All issues are warnings; see the module documentation for why.
pub fn check_dataset(schema: &AvroSchema, ty: DatasetType, domain: Option<Domain>) -> Vec<SchemaIssue> {
    let mut out = Vec::new();
    let rules = rules(ty, domain);
    let kind = match domain {
        Some(d) => format!("a {d} {} dataset", ty.api_name()),
        None => format!("an {} dataset", ty.api_name()).replace("an Users", "a Users"),
    };
    for rule in &rules {
        check_reserved_field(schema, rule, &kind, &mut out);
    }
    check_metadata_fields(schema, ty, domain, &rules, &kind, &mut out);
    out
}

/// One reserved field of the dataset type: present when required, of its type, categorical or not.
fn check_reserved_field(schema: &AvroSchema, rule: &Rule, kind: &str, out: &mut Vec<SchemaIssue>) {
    let found = schema.fields.iter().position(|f| f.name == rule.name);
    match found {
        None if rule.required => out.push(SchemaIssue::warning(
            "fields",
            format!(
                "{kind} requires a field {} ({}); Personalize will reject this schema for it",
                rule.name, rule.types[0]
            ),
        )),
        None => {}
        Some(i) => {
            let f = &schema.fields[i];
            let path = format!("fields[{i}]");
            if !rule.types.contains(&f.ty) {
                out.push(SchemaIssue::warning(
                    format!("{path}.type"),
                    format!("{} must be {} in {kind}, not {}", f.name, rule.types[0], f.ty),
                ));
            }
            if rule.required && f.nullable {
                out.push(SchemaIssue::warning(
                    format!("{path}.type"),
                    format!("{} is required in {kind} and cannot be nullable", f.name),
                ));
            }
            match rule.categorical {
                Some(true) if !f.categorical => out.push(SchemaIssue::warning(
                    format!("{path}.categorical"),
                    format!("{} must be declared \"categorical\": true", f.name),
                )),
                Some(false) if f.categorical => out.push(SchemaIssue::warning(
                    format!("{path}.categorical"),
                    format!("{} is a reserved field and cannot be categorical", f.name),
                )),
                _ => {}
            }
        }
    }
}

/// The fields besides the reserved ones: how many, which may be textual, which Personalize ignores.
fn check_metadata_fields(
    schema: &AvroSchema,
    ty: DatasetType,
    domain: Option<Domain>,
    rules: &[Rule],
    kind: &str,
    out: &mut Vec<SchemaIssue>,
) {
    let reserved = |name: &str| rules.iter().any(|r| r.name == name);
    let metadata: Vec<(usize, &AvroField)> = schema
        .fields
        .iter()
        .enumerate()
        .filter(|(_, f)| !reserved(&f.name))
        .collect();
    if domain.is_none()
        && matches!(ty, DatasetType::Users | DatasetType::Items | DatasetType::Actions)
        && metadata.is_empty()
    {
        out.push(SchemaIssue::warning(
            "fields",
            format!("{kind} needs at least one metadata field besides its ID"),
        ));
    }
    let limit = metadata_limit(ty);
    if metadata.len() > limit {
        out.push(SchemaIssue::warning(
            "fields",
            format!(
                "{kind} allows at most {limit} metadata fields, this schema has {}",
                metadata.len()
            ),
        ));
    }
    let textual: Vec<&(usize, &AvroField)> = metadata.iter().filter(|(_, f)| f.textual).collect();
    if !textual.is_empty() && ty != DatasetType::Items {
        out.push(SchemaIssue::warning(
            format!("fields[{}].textual", textual[0].0),
            "only Items datasets can have a textual field",
        ));
    } else if textual.len() > 1 {
        out.push(SchemaIssue::warning(
            format!("fields[{}].textual", textual[1].0),
            "an Items dataset can have at most one textual field",
        ));
    }
    for (i, f) in &metadata {
        if f.ty == FieldType::String && !f.categorical && !f.textual {
            out.push(SchemaIssue::warning(
                format!("fields[{i}]"),
                format!("{} is a string that is neither categorical nor textual; Personalize ignores it in training", f.name),
            ));
        }
    }
}

/// Whether a dataset of `ty` may move from schema `old` to `new` in place (UpdateDataset): Personalize
/// allows it for Items and Users datasets only, when `new` keeps every field of `old` with its type
/// and attributes and every added field accepts null. `Ok` lists the added fields; `Err` says what
/// stands in the way, one line per reason.
pub fn in_place_change(
    old: &AvroSchema,
    new: &AvroSchema,
    ty: DatasetType,
) -> Result<Vec<String>, Vec<String>> {
    let mut problems = Vec::new();
    if !matches!(ty, DatasetType::Items | DatasetType::Users) {
        problems.push(format!(
            "the schema of a{} {} dataset cannot be replaced (only Items and Users datasets take a new schema)",
            if ty.api_name().starts_with(['A', 'I']) { "n" } else { "" },
            ty.api_name()
        ));
    }
    let show = |f: &AvroField| {
        let mut t = f.ty.to_string();
        if f.nullable {
            t.push_str(" or null");
        }
        if f.categorical {
            t.push_str(", categorical");
        }
        if f.textual {
            t.push_str(", textual");
        }
        t
    };
    for f in &old.fields {
        match new.field(&f.name) {
            None => problems.push(format!(
                "field {} is removed (a new schema must keep every field)",
                f.name
            )),
            Some(n) if n != f => problems.push(format!(
                "field {} changes from {} to {} (fields keep their type and attributes)",
                f.name,
                show(f),
                show(n)
            )),
            Some(_) => {}
        }
    }
    let mut added = Vec::new();
    for f in new.fields.iter().filter(|f| old.field(&f.name).is_none()) {
        if f.nullable {
            added.push(f.name.clone());
        } else {
            problems.push(format!(
                "new field {} does not accept null (added fields must: [\"null\", \"{}\"])",
                f.name, f.ty
            ));
        }
    }
    if problems.is_empty() {
        Ok(added)
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn interactions() -> Value {
        json!({"type": "record", "name": "Interactions", "namespace": "com.amazonaws.personalize.schema",
               "fields": [{"name": "USER_ID", "type": "string"}, {"name": "ITEM_ID", "type": "string"},
                          {"name": "TIMESTAMP", "type": "long"}, {"name": "EVENT_TYPE", "type": "string"},
                          {"name": "EVENT_VALUE", "type": ["null", "float"]}], "version": "1.0"})
    }

    fn messages(issues: &[SchemaIssue]) -> String {
        issues
            .iter()
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(" | ")
    }

    #[test]
    fn parses_a_flat_record() {
        let s = parse(&interactions()).expect("valid");
        assert_eq!(s.name, "Interactions");
        assert_eq!(s.fields.len(), 5);
        let ev = s.field("EVENT_VALUE").expect("field");
        assert_eq!((ev.ty, ev.nullable), (FieldType::Float, true));
        assert!(check_dataset(&s, DatasetType::Interactions, None).is_empty());
    }

    #[test]
    fn rejects_non_records_and_nested_types() {
        let e = parse(&json!("string")).expect_err("not object");
        assert!(messages(&e).contains("record object"));
        let e = parse(&json!({"type": "enum", "name": "X", "fields": []})).expect_err("not record");
        let m = messages(&e);
        assert!(m.contains("type: the schema type must be \"record\""), "{m}");
        assert!(m.contains("no fields"), "{m}");
        let e = parse(&json!({"type": "record", "name": "X", "fields": [
            {"name": "A", "type": {"type": "array", "items": "string"}},
            {"name": "B", "type": ["null", "string", "int"]},
            {"name": "C", "type": "null"},
            {"name": "D", "type": "date"},
            {"name": "1E", "type": "string"},
            {"name": "F", "type": "int", "categorical": true},
            {"name": "G", "type": "string", "categorical": "yes"}]}))
        .expect_err("bad fields");
        let m = messages(&e);
        for expected in [
            "fields[0].type: array is not allowed",
            "fields[1].type: a union may only combine one type with null",
            "fields[2].type: a field cannot be only null",
            "fields[3].type: unknown type \"date\"",
            "fields[4].name",
            "fields[5].categorical: field F is int",
            "fields[6].categorical: categorical must be true or false",
        ] {
            assert!(m.contains(expected), "missing {expected:?} in {m}");
        }
        assert_eq!(e.len(), 7, "{m}");
    }

    #[test]
    fn detects_alphanumeric_name_clashes() {
        let e = parse(&json!({"type": "record", "name": "X", "fields": [
            {"name": "GENRES_FIELD_1", "type": "string"}, {"name": "GENRESFIELD1", "type": "string"}]}))
        .expect_err("clash");
        assert!(
            messages(&e).contains("fields[1].name: field GENRESFIELD1 clashes with field GENRES_FIELD_1")
        );
    }

    #[test]
    fn object_form_primitive_is_accepted() {
        let s = parse(&json!({"type": "record", "name": "X", "fields": [
            {"name": "TS", "type": {"type": "long", "logicalType": "timestamp-millis"}}]}))
        .expect("valid");
        assert_eq!(s.fields[0].ty, FieldType::Long);
    }

    #[test]
    fn dataset_rules_are_warnings() {
        // The reference's sample_config_root_tags.json: an interactions schema without TIMESTAMP.
        let s = parse(&json!({"type": "record", "name": "Interactions", "fields": [
            {"name": "USER_ID", "type": "string"}, {"name": "ITEM_ID", "type": "string"},
            {"name": "EVENT_TYPE", "type": "string", "categorical": true}]}))
        .expect("structurally valid");
        let w = check_dataset(&s, DatasetType::Interactions, None);
        assert!(w.iter().all(|i| i.severity == Severity::Warning));
        let m = messages(&w);
        assert!(m.contains("requires a field TIMESTAMP (long)"), "{m}");
        assert!(
            m.contains("EVENT_TYPE is a reserved field and cannot be categorical"),
            "{m}"
        );
    }

    #[test]
    fn domain_rules() {
        let items = parse(&json!({"type": "record", "name": "Items", "fields": [
            {"name": "ITEM_ID", "type": "string"}, {"name": "PRICE", "type": "float"},
            {"name": "CATEGORY_L1", "type": "string"}]}))
        .expect("valid");
        let m = messages(&check_dataset(
            &items,
            DatasetType::Items,
            Some(Domain::Ecommerce),
        ));
        assert!(
            m.contains("CATEGORY_L1 must be declared \"categorical\": true"),
            "{m}"
        );
        let m = messages(&check_dataset(
            &items,
            DatasetType::Items,
            Some(Domain::VideoOnDemand),
        ));
        assert!(m.contains("requires a field GENRES"), "{m}");
        assert!(m.contains("requires a field CREATION_TIMESTAMP"), "{m}");
        let s = parse(&interactions()).expect("valid");
        assert!(check_dataset(&s, DatasetType::Interactions, Some(Domain::Ecommerce)).is_empty());
        let users = parse(
            &json!({"type": "record", "name": "Users", "fields": [{"name": "USER_ID", "type": "string"}]}),
        )
        .expect("valid");
        assert!(
            messages(&check_dataset(&users, DatasetType::Users, None))
                .contains("at least one metadata field")
        );
        assert!(check_dataset(&users, DatasetType::Users, Some(Domain::Ecommerce)).is_empty());
    }

    #[test]
    fn metadata_limits_and_textual() {
        let mut fields = vec![json!({"name": "USER_ID", "type": "string"})];
        for i in 0..26 {
            fields.push(json!({"name": format!("M{i}"), "type": "int"}));
        }
        fields.push(json!({"name": "BIO", "type": "string", "textual": true}));
        let users = parse(&json!({"type": "record", "name": "Users", "fields": fields})).expect("valid");
        let m = messages(&check_dataset(&users, DatasetType::Users, None));
        assert!(
            m.contains("at most 25 metadata fields, this schema has 27"),
            "{m}"
        );
        assert!(m.contains("only Items datasets can have a textual field"), "{m}");
    }

    #[test]
    fn parse_str_reports_json_and_length() {
        assert!(messages(&parse_str("{").expect_err("bad json")).contains("not JSON"));
        let long = format!("{{\"doc\": \"{}\"}}", "x".repeat(MAX_SCHEMA_LEN));
        assert!(messages(&parse_str(&long).expect_err("too long")).contains("longer than 20000"));
    }
}
