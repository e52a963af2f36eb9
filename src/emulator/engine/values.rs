//! Turning CSV text and JSON property values into typed cells, with Personalize's value limits.

use serde_json::Value;

use super::table::Cell;
use crate::spec::avro::{AvroField, FieldType};

/// The longest ID (`USER_ID`, `ITEM_ID`, `ACTION_ID`), in characters.
pub const MAX_ID_CHARS: usize = 256;
/// The longest categorical or impression value (each `|`-separated value), in characters.
pub const MAX_CATEGORICAL_CHARS: usize = 1000;
/// The longest textual value, in characters.
pub const MAX_TEXTUAL_CHARS: usize = 20_000;

const ID_FIELDS: [&str; 3] = ["USER_ID", "ITEM_ID", "ACTION_ID"];

/// The cell for a CSV field. An empty field is null, which only a nullable field accepts.
///
/// # Errors
/// A sentence saying what is wrong with the value, for the import's `failureReason`.
pub fn from_text(field: &AvroField, text: &str) -> Result<Cell, String> {
    if text.is_empty() {
        return null_for(field);
    }
    let cell = match field.ty {
        FieldType::String => Cell::Str(text.to_string()),
        FieldType::Boolean => match text {
            "true" => Cell::Bool(true),
            "false" => Cell::Bool(false),
            _ => {
                return Err(format!(
                    "{} is not a boolean: write true or false in lowercase",
                    quote(text)
                ));
            }
        },
        FieldType::Int => Cell::Int(
            text.parse::<i32>()
                .map_err(|_| format!("{} is not an int (a whole number within 32 bits)", quote(text)))?
                .into(),
        ),
        FieldType::Long => Cell::Int(
            text.parse::<i64>()
                .map_err(|_| format!("{} is not a long (a whole number)", quote(text)))?,
        ),
        FieldType::Float | FieldType::Double => {
            let value = text
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| format!("{} is not a {} (a finite number)", quote(text), field.ty))?;
            Cell::Float(value)
        }
    };
    check_limits(field, &cell)?;
    Ok(cell)
}

/// The cell for a JSON value in a Put* `properties` object. Numbers may also be given as strings,
/// as the Personalize examples do (`{"numberOfRatings": "12"}`).
///
/// # Errors
/// A sentence naming the field and what is wrong with the value.
pub fn from_json(field: &AvroField, value: &Value) -> Result<Cell, String> {
    let cell = match (field.ty, value) {
        (_, Value::Null) => return null_for(field),
        (FieldType::String, Value::String(s)) => Cell::Str(s.clone()),
        (FieldType::String, Value::Number(n)) => Cell::Str(n.to_string()),
        (FieldType::String, Value::Bool(b)) => Cell::Str(b.to_string()),
        (FieldType::Boolean, Value::Bool(b)) => Cell::Bool(*b),
        (FieldType::Int | FieldType::Long, Value::Number(n)) => {
            let whole = n.as_i64().ok_or_else(|| format!("{n} is not a whole number"))?;
            if field.ty == FieldType::Int && i32::try_from(whole).is_err() {
                return Err(format!("{n} does not fit an int (32 bits)"));
            }
            Cell::Int(whole)
        }
        (FieldType::Float | FieldType::Double, Value::Number(n)) => Cell::Float(
            n.as_f64()
                .filter(|v| v.is_finite())
                .ok_or_else(|| format!("{n} is not a finite number"))?,
        ),
        (_, Value::String(s)) if field.ty != FieldType::String => return from_text(field, s),
        (ty, other) => return Err(format!("{other} is not a {ty}")),
    };
    check_limits(field, &cell)?;
    Ok(cell)
}

fn null_for(field: &AvroField) -> Result<Cell, String> {
    if field.nullable {
        Ok(Cell::Null)
    } else {
        Err(format!(
            "the value is missing, and the schema does not allow null for {} (declare it as [\"null\", \"{}\"])",
            field.name, field.ty
        ))
    }
}

/// Personalize's length limits on string values.
fn check_limits(field: &AvroField, cell: &Cell) -> Result<(), String> {
    let Cell::Str(text) = cell else { return Ok(()) };
    if ID_FIELDS.contains(&field.name.as_str()) {
        let n = text.chars().count();
        if n > MAX_ID_CHARS {
            return Err(format!(
                "the ID is {n} characters long; the limit is {MAX_ID_CHARS}"
            ));
        }
    } else if field.categorical || field.name == "IMPRESSION" {
        // Multi-value fields join their values with `|`; the limit applies to each value.
        if let Some(long) = text
            .split('|')
            .find(|v| v.chars().count() > MAX_CATEGORICAL_CHARS)
        {
            return Err(format!(
                "a categorical value is {} characters long; the limit is {MAX_CATEGORICAL_CHARS}",
                long.chars().count()
            ));
        }
    } else if field.textual {
        let n = text.chars().count();
        if n > MAX_TEXTUAL_CHARS {
            return Err(format!(
                "the textual value is {n} characters long; the limit is {MAX_TEXTUAL_CHARS}"
            ));
        }
    }
    Ok(())
}

/// A value for a message: quoted, and cut after 40 characters.
pub(crate) fn quote(text: &str) -> String {
    if text.chars().count() > 40 {
        format!("\"{}…\"", text.chars().take(40).collect::<String>())
    } else {
        format!("{text:?}")
    }
}

/// The key of a schema field in a Put* `properties` object: `NUMBER_OF_RATINGS` → `numberOfRatings`.
pub fn camel_case(field: &str) -> String {
    let mut out = String::with_capacity(field.len());
    for (i, part) in field.split('_').filter(|p| !p.is_empty()).enumerate() {
        let lower = part.to_lowercase();
        if i == 0 {
            out.push_str(&lower);
        } else {
            let mut chars = lower.chars();
            if let Some(first) = chars.next() {
                out.extend(first.to_uppercase());
                out.push_str(chars.as_str());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn field(name: &str, ty: FieldType, nullable: bool) -> AvroField {
        AvroField {
            name: name.to_string(),
            ty,
            nullable,
            categorical: false,
            textual: false,
        }
    }

    #[test]
    fn text_values_by_type() {
        let cases: &[(FieldType, &str, Result<Cell, &str>)] = &[
            (FieldType::String, "abc", Ok(Cell::Str("abc".into()))),
            (FieldType::Boolean, "true", Ok(Cell::Bool(true))),
            (FieldType::Boolean, "True", Err("lowercase")),
            (FieldType::Boolean, "1", Err("not a boolean")),
            (FieldType::Int, "42", Ok(Cell::Int(42))),
            (FieldType::Int, "-7", Ok(Cell::Int(-7))),
            (FieldType::Int, "3000000000", Err("not an int")),
            (FieldType::Int, "4.0", Err("not an int")),
            (FieldType::Long, "1584365781", Ok(Cell::Int(1_584_365_781))),
            (FieldType::Long, "1e9", Err("not a long")),
            (FieldType::Float, "4", Ok(Cell::Float(4.0))),
            (FieldType::Double, "-0.25", Ok(Cell::Float(-0.25))),
            (FieldType::Float, "NaN", Err("finite")),
            (FieldType::Float, "inf", Err("finite")),
            (FieldType::Float, "abc", Err("not a float")),
            (FieldType::Float, " 4", Err("not a float")),
        ];
        for (ty, text, expected) in cases {
            let got = from_text(&field("X", *ty, false), text);
            match (expected, &got) {
                (Ok(cell), Ok(g)) => assert_eq!(g, cell, "{ty} {text:?}"),
                (Err(part), Err(message)) => assert!(message.contains(part), "{ty} {text:?}: {message}"),
                _ => panic!("{ty} {text:?}: expected {expected:?}, got {got:?}"),
            }
        }
    }

    #[test]
    fn empty_values_need_a_nullable_field() {
        assert_eq!(from_text(&field("A", FieldType::Int, true), ""), Ok(Cell::Null));
        let e = from_text(&field("A", FieldType::Int, false), "").expect_err("not nullable");
        assert!(e.contains("does not allow null for A"), "{e}");
        assert_eq!(
            from_json(&field("A", FieldType::Int, true), &Value::Null),
            Ok(Cell::Null)
        );
    }

    #[test]
    fn length_limits() {
        let id = field("ITEM_ID", FieldType::String, false);
        assert!(from_text(&id, &"x".repeat(256)).is_ok());
        assert!(
            from_text(&id, &"x".repeat(257))
                .expect_err("long id")
                .contains("limit is 256")
        );
        let mut genre = field("GENRE", FieldType::String, false);
        genre.categorical = true;
        assert!(from_text(&genre, &format!("{}|{}", "a".repeat(1000), "b".repeat(1000))).is_ok());
        assert!(
            from_text(&genre, &format!("a|{}", "b".repeat(1001)))
                .expect_err("long")
                .contains("1001")
        );
        let impression = field("IMPRESSION", FieldType::String, true);
        assert!(from_text(&impression, &"i".repeat(1001)).is_err());
        let mut text = field("DESCRIPTION", FieldType::String, true);
        text.textual = true;
        assert!(from_text(&text, &"ü".repeat(20_000)).is_ok());
        assert!(from_text(&text, &"ü".repeat(20_001)).is_err());
        // An uncategorised string has no limit of its own.
        assert!(from_text(&field("NOTE", FieldType::String, true), &"n".repeat(5000)).is_ok());
    }

    #[test]
    fn json_values() {
        let int = field("N", FieldType::Int, false);
        assert_eq!(from_json(&int, &json!(12)), Ok(Cell::Int(12)));
        assert_eq!(from_json(&int, &json!("12")), Ok(Cell::Int(12)));
        assert!(
            from_json(&int, &json!(1.5))
                .expect_err("fraction")
                .contains("whole")
        );
        assert!(from_json(&int, &json!(3_000_000_000_i64)).is_err());
        assert!(
            from_json(&int, &json!([1]))
                .expect_err("list")
                .contains("not a int")
        );
        let float = field("F", FieldType::Float, false);
        assert_eq!(from_json(&float, &json!(2)), Ok(Cell::Float(2.0)));
        let string = field("S", FieldType::String, false);
        assert_eq!(from_json(&string, &json!(7)), Ok(Cell::Str("7".into())));
        let boolean = field("B", FieldType::Boolean, false);
        assert_eq!(from_json(&boolean, &json!(false)), Ok(Cell::Bool(false)));
        assert!(from_json(&boolean, &json!("yes")).is_err());
    }

    #[test]
    fn camel_case_keys() {
        assert_eq!(camel_case("NUMBER_OF_RATINGS"), "numberOfRatings");
        assert_eq!(camel_case("CATEGORY_L1"), "categoryL1");
        assert_eq!(camel_case("GENRES"), "genres");
        assert_eq!(camel_case("ITEM_ID"), "itemId");
        assert_eq!(camel_case("price"), "price");
        assert_eq!(camel_case("A__B_"), "aB");
    }
}
