//! A JSON Schema (draft 2020-12) of the parameter file, generated from the same shape the validator
//! checks, so editors can complete and check files while people type.
//!
//! The schema covers what a JSON Schema can say (keys, types, enums, lengths, patterns, ranges,
//! required keys, unknown keys). Rules across values (recipes, duplicates, cron syntax in detail,
//! Avro fields) are `personalize-ops validate`'s job.

use serde_json::{Map, Value, json};

use crate::spec::shape::{
    self, Field, List, MapShape, Object, PARAMETER_FILE, Pattern, Presence, Shape, Syntax, Text, Unknown,
};

/// The `$id` of the generated schema.
pub const SCHEMA_ID: &str = "https://personalize-ops.invalid/parameter-file.schema.json";

/// The whole schema.
pub fn parameter_file_schema() -> Value {
    let mut schema = object_schema(&PARAMETER_FILE);
    if let Value::Object(map) = &mut schema {
        let mut head = Map::new();
        head.insert(
            "$schema".into(),
            json!("https://json-schema.org/draft/2020-12/schema"),
        );
        head.insert("$id".into(), json!(SCHEMA_ID));
        head.insert("title".into(), json!("personalize-ops parameter file"));
        head.append(map);
        head.insert("minProperties".into(), json!(1));
        return Value::Object(head);
    }
    schema
}

fn shape_schema(shape: &Shape) -> Value {
    match shape {
        Shape::Object(object) => object_schema(object),
        Shape::List(list) => list_schema(list),
        Shape::Map(map) => map_schema(map),
        Shape::Text(text) => text_schema(text),
        Shape::Enum(values) => json!({ "type": "string", "enum": values }),
        Shape::Bool => json!({ "type": "boolean" }),
        Shape::Int(range) => {
            let mut s = Map::new();
            s.insert("type".into(), json!("integer"));
            s.insert("minimum".into(), json!(range.min.unwrap_or(i64::from(i32::MIN))));
            s.insert("maximum".into(), json!(range.max.unwrap_or(i64::from(i32::MAX))));
            Value::Object(s)
        }
        Shape::Number(range) => {
            let mut s = Map::new();
            s.insert("type".into(), json!("number"));
            if let Some(min) = range.min {
                s.insert("minimum".into(), json!(min));
            }
            if let Some(max) = range.max {
                s.insert("maximum".into(), json!(max));
            }
            Value::Object(s)
        }
        Shape::Tags => tags_schema(),
        Shape::AvroDocument => json!({
            "type": "object",
            "required": ["type", "name", "fields"],
            "properties": {
                "type": { "const": "record" },
                "name": { "type": "string" },
                // Personalize passes the schema through and Avro allows a null namespace; so does the validator.
                "namespace": { "type": ["string", "null"] },
                "fields": { "type": "array", "items": { "type": "object", "required": ["name", "type"] } }
            }
        }),
    }
}

fn field_schema(field: &Field) -> Value {
    let mut schema = match field.presence {
        // Accepted with a warning: any value, marked deprecated so editors strike it through.
        Presence::SetByService | Presence::Removed(_) => json!({ "deprecated": true }),
        _ => shape_schema(&field.shape),
    };
    if let Value::Object(map) = &mut schema {
        map.insert("description".into(), json!(field.description));
    }
    schema
}

fn object_schema(object: &Object) -> Value {
    let mut properties = Map::new();
    for field in object.fields {
        properties.insert(field.name.into(), field_schema(field));
    }
    let required: Vec<&str> = object
        .fields
        .iter()
        .filter(|f| matches!(f.presence, Presence::Required | Presence::RequiredSaying(_)))
        .map(|f| f.name)
        .collect();
    let mut schema = Map::new();
    schema.insert("type".into(), json!("object"));
    schema.insert("description".into(), json!(object.description));
    schema.insert("properties".into(), Value::Object(properties));
    if !required.is_empty() {
        schema.insert("required".into(), json!(required));
    }
    if object.unknown != Unknown::Ignored {
        schema.insert("additionalProperties".into(), json!(false));
    }
    Value::Object(schema)
}

fn list_schema(list: &List) -> Value {
    let mut schema = Map::new();
    schema.insert("type".into(), json!("array"));
    schema.insert("items".into(), shape_schema(&list.item));
    if let Some(max) = list.max_items {
        schema.insert("maxItems".into(), json!(max));
    }
    Value::Object(schema)
}

fn map_schema(map: &MapShape) -> Value {
    let mut schema = Map::new();
    schema.insert("type".into(), json!("object"));
    schema.insert("propertyNames".into(), shape_schema(&map.key));
    schema.insert("additionalProperties".into(), shape_schema(&map.value));
    if let Some(max) = map.max_entries {
        schema.insert("maxProperties".into(), json!(max));
    }
    Value::Object(schema)
}

fn text_schema(text: &Text) -> Value {
    let mut schema = Map::new();
    schema.insert("type".into(), json!("string"));
    if text.min_len > 0 {
        schema.insert("minLength".into(), json!(text.min_len));
    }
    if let Some(max) = text.max_len {
        schema.insert("maxLength".into(), json!(max));
    }
    let pattern = match (text.pattern, text.syntax) {
        (Some(p), _) => Some(p.regex_source()),
        // Only the outline: the schedule parser checks the fields.
        (None, Syntax::Schedule) => Some(r"^\s*(cron\(.*\)|rate\(.*\)|delete)\s*$"),
        (None, _) => None,
    };
    if let Some(p) = pattern {
        schema.insert("pattern".into(), json!(p));
    }
    Value::Object(schema)
}

fn tags_schema() -> Value {
    let (key_min, key_max) = shape::TAG_KEY_LEN;
    let (value_min, value_max) = shape::TAG_VALUE_LEN;
    let pattern = Pattern::TagText.regex_source();
    json!({
        "type": "array",
        "maxItems": shape::MAX_TAGS,
        "items": {
            "type": "object",
            "properties": {
                "tagKey": { "type": "string", "minLength": key_min, "maxLength": key_max, "pattern": pattern },
                "tagValue": { "type": "string", "minLength": value_min, "maxLength": value_max, "pattern": pattern }
            },
            "required": ["tagKey", "tagValue"],
            "additionalProperties": false
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_declares_the_draft_and_requires_the_dataset_group() {
        let schema = parameter_file_schema();
        assert_eq!(schema["$schema"], "https://json-schema.org/draft/2020-12/schema");
        assert_eq!(schema["required"], json!(["datasetGroup"]));
        assert_eq!(schema["additionalProperties"], json!(false));
        assert!(schema["properties"]["solutions"]["items"]["properties"]["campaigns"].is_object());
    }

    #[test]
    fn ignored_unknown_keys_stay_open_and_service_set_keys_are_deprecated() {
        let schema = parameter_file_schema();
        let import = &schema["properties"]["datasets"]["properties"]["serviceConfig"];
        assert!(import.get("additionalProperties").is_none());
        let campaign = &schema["properties"]["solutions"]["items"]["properties"]["campaigns"]["items"]["properties"]
            ["serviceConfig"];
        assert_eq!(
            campaign["properties"]["solutionVersionArn"]["deprecated"],
            json!(true)
        );
        assert_eq!(campaign["properties"]["minProvisionedTPS"]["minimum"], json!(1));
    }
}
