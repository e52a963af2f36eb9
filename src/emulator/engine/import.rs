//! Dataset import jobs (CSV objects checked against the dataset's schema) and single records from
//! PutEvents, PutItems and PutUsers.

use std::collections::HashMap;

use serde_json::Value;

use super::table::{Cell, Table};
use super::values::{self, camel_case, quote};
use crate::objects::{ObjectError, ObjectStore, ObjectUrl};
use crate::spec::avro::{AvroField, AvroSchema};

/// The largest CSV object an import reads. Each object is parsed and dropped before the next is
/// fetched, so memory holds one object's bytes plus the parsed rows.
pub const MAX_IMPORT_OBJECT_BYTES: u64 = 1 << 30;

/// Why an import job failed. The `Display` text is the job's `failureReason`: it names the object,
/// and for a bad value the row, the line and the column.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("the data location {location:?} is not an S3 URL: {source}")]
    BadLocation {
        location: String,
        #[source]
        source: ObjectError,
    },
    #[error("cannot read the data: {0}")]
    Store(#[from] ObjectError),
    #[error("no CSV file found at {location}")]
    NoObjects { location: String },
    #[error("{url}: {problem}")]
    Header { url: ObjectUrl, problem: String },
    #[error("{url} row {row} (line {line}), column {column}: {problem}")]
    Value {
        url: ObjectUrl,
        /// 1-based data row (the header is not counted).
        row: u64,
        /// 1-based line of the file where the row starts.
        line: u64,
        column: String,
        problem: String,
    },
    #[error("{url} line {line}: {problem}")]
    Malformed {
        url: ObjectUrl,
        line: u64,
        problem: String,
    },
}

/// Reads the CSV data of an import job: the object at `data_location`, or every `*.csv` object
/// directly under it when it names a folder (`s3://b/data/` or, as the reference sends it, the
/// folder's key without the slash). Objects are read in key order.
///
/// The table's columns are the schema's fields, in schema order. Each file's header must list them
/// in that order too, as Personalize requires (docs/personalize.md, "Schemas and datasets"); nullable fields may be left
/// out.
///
/// # Errors
/// [`ImportError`], whose text is the failure reason Personalize would show.
pub async fn read_csv_dataset(
    store: &dyn ObjectStore,
    data_location: &str,
    schema: &AvroSchema,
) -> Result<Table, ImportError> {
    let location = ObjectUrl::parse(data_location).map_err(|source| ImportError::BadLocation {
        location: data_location.to_string(),
        source,
    })?;
    let objects = csv_objects(store, &location).await?;
    let mut table = Table::new(schema.fields.iter().map(|f| f.name.clone()).collect(), Vec::new());
    for url in objects {
        let bytes = store.get(&url, MAX_IMPORT_OBJECT_BYTES).await?;
        parse_csv(&url, &bytes, schema, &mut table)?;
    }
    Ok(table)
}

async fn csv_objects(store: &dyn ObjectStore, location: &ObjectUrl) -> Result<Vec<ObjectUrl>, ImportError> {
    let folder = if location.key.ends_with('/') || location.key.is_empty() {
        location.clone()
    } else if store.head(location).await?.is_some() {
        return Ok(vec![location.clone()]);
    } else {
        ObjectUrl::new(location.bucket.clone(), format!("{}/", location.key))
    };
    let found: Vec<ObjectUrl> = store
        .list(&folder, false)
        .await?
        .into_iter()
        .map(|meta| meta.url)
        .filter(|url| url.key.to_ascii_lowercase().ends_with(".csv"))
        .collect();
    if found.is_empty() {
        return Err(ImportError::NoObjects {
            location: location.to_string(),
        });
    }
    Ok(found)
}

/// Parses one CSV object and appends its rows to `table`, whose columns are the schema's fields.
/// Never panics, whatever the bytes.
///
/// # Errors
/// The first problem found, as an [`ImportError`] naming `url`.
pub fn parse_csv(
    url: &ObjectUrl,
    bytes: &[u8],
    schema: &AvroSchema,
    table: &mut Table,
) -> Result<(), ImportError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_reader(bytes);
    let columns = header_columns(url, &mut reader, schema)?;
    let mut record = csv::ByteRecord::new();
    let mut row_number = 0u64;
    loop {
        let line = reader.position().line();
        match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => return Err(csv_error(url, &e, line)),
        }
        row_number += 1;
        let line = record.position().map_or(line, |p| p.line());
        let mut row = vec![Cell::Null; schema.fields.len()];
        for (raw, (position, field)) in record.iter().zip(&columns) {
            let value_error = |problem: String| ImportError::Value {
                url: url.clone(),
                row: row_number,
                line,
                column: field.name.clone(),
                problem,
            };
            let text =
                std::str::from_utf8(raw).map_err(|_| value_error("the value is not valid UTF-8".into()))?;
            row[*position] = values::from_text(field, text).map_err(value_error)?;
        }
        table.rows.push(row);
    }
    Ok(())
}

/// Reads the header: each CSV column names a schema field, once, in the schema's order, and every
/// non-nullable field is there. Returns, for each CSV column, the field (and table column) it fills.
fn header_columns<'s>(
    url: &ObjectUrl,
    reader: &mut csv::Reader<&[u8]>,
    schema: &'s AvroSchema,
) -> Result<Vec<(usize, &'s AvroField)>, ImportError> {
    let header_error = |problem: String| ImportError::Header {
        url: url.clone(),
        problem,
    };
    let headers = reader.byte_headers().map_err(|e| csv_error(url, &e, 1))?.clone();
    if headers.is_empty() || (headers.len() == 1 && headers[0].is_empty()) {
        return Err(header_error(
            "the file is empty; the first line must be a header naming the schema's fields".into(),
        ));
    }
    let mut columns: Vec<(usize, &AvroField)> = Vec::with_capacity(headers.len());
    for (i, raw) in headers.iter().enumerate() {
        // Spreadsheet programs start UTF-8 files with a byte-order mark.
        let raw = if i == 0 {
            raw.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(raw)
        } else {
            raw
        };
        let name = std::str::from_utf8(raw)
            .map_err(|_| header_error(format!("header column {} is not valid UTF-8", i + 1)))?;
        let Some(position) = schema.fields.iter().position(|f| f.name == name) else {
            let hint = if schema.field(name.trim()).is_some() {
                " (remove the spaces around the name)".to_string()
            } else {
                schema
                    .fields
                    .iter()
                    .find(|f| f.name.eq_ignore_ascii_case(name.trim()))
                    .map(|f| format!(" (field names are case-sensitive: did you mean {}?)", f.name))
                    .unwrap_or_default()
            };
            return Err(header_error(format!(
                "column {} is not a field of the schema {}{hint}; the fields are {}",
                quote(name),
                schema.name,
                field_list(schema)
            )));
        };
        if columns.iter().any(|(p, _)| *p == position) {
            return Err(header_error(format!("column {name} appears twice in the header")));
        }
        columns.push((position, &schema.fields[position]));
    }
    let missing: Vec<&str> = schema
        .fields
        .iter()
        .enumerate()
        .filter(|(i, f)| !f.nullable && !columns.iter().any(|(p, _)| p == i))
        .map(|(_, f)| f.name.as_str())
        .collect();
    if !missing.is_empty() {
        return Err(header_error(format!(
            "the header lacks the required (non-nullable) field{} {}",
            if missing.len() == 1 { "" } else { "s" },
            missing.join(", ")
        )));
    }
    if let Some(pair) = columns.windows(2).find(|pair| pair[0].0 > pair[1].0) {
        return Err(header_error(format!(
            "column {} comes before {} but the schema {} orders its fields {}; the header must follow the schema's order",
            pair[0].1.name,
            pair[1].1.name,
            schema.name,
            field_list(schema)
        )));
    }
    Ok(columns)
}

fn csv_error(url: &ObjectUrl, e: &csv::Error, line: u64) -> ImportError {
    let (line, problem) = match e.kind() {
        csv::ErrorKind::UnequalLengths {
            pos,
            expected_len,
            len,
        } => (
            pos.as_ref().map_or(line, |p| p.line()),
            format!("the row has {len} fields but the header has {expected_len}"),
        ),
        _ => (line, e.to_string()),
    };
    ImportError::Malformed {
        url: url.clone(),
        line,
        problem,
    }
}

fn field_list(schema: &AvroSchema) -> String {
    schema
        .fields
        .iter()
        .map(|f| f.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// A row for PutItems or PutUsers: `id` in `id_field`, the other fields from `properties`, a JSON
/// object whose keys are the camelCased field names (`CATEGORY_L1` → `categoryL1`). The row has
/// the schema's fields in schema order.
///
/// # Errors
/// A message for an InvalidInputException: bad JSON, an unknown key, a bad value, or a required
/// field left out.
pub fn row_from_properties(
    schema: &AvroSchema,
    id_field: &str,
    id: &str,
    properties: Option<&str>,
) -> Result<Vec<Cell>, String> {
    let id_position = schema
        .fields
        .iter()
        .position(|f| f.name == id_field)
        .ok_or_else(|| format!("the schema {} has no {id_field} field", schema.name))?;
    let mut row = vec![None; schema.fields.len()];
    row[id_position] =
        Some(values::from_text(&schema.fields[id_position], id).map_err(|e| format!("{id_field}: {e}"))?);
    fill_properties(schema, properties, &mut row)?;
    finish_row(schema, row, |field| {
        format!(
            "properties lacks {}, which the schema requires",
            camel_case(field)
        )
    })
}

/// One event of a PutEvents call.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventRecord {
    pub event_type: String,
    pub item_id: Option<String>,
    /// `sentAt`, in epoch seconds.
    pub sent_at: i64,
    pub event_value: Option<f64>,
    /// A JSON object string with camelCased keys of the schema's other fields.
    pub properties: Option<String>,
    pub recommendation_id: Option<String>,
    /// Item IDs shown to the user; stored joined with `|`.
    pub impression: Vec<String>,
    /// `metricAttribution.eventAttributionSource`.
    pub attribution_source: Option<String>,
}

/// The interactions row for an event. `user_id` is the call's `userId` (the server passes the
/// `sessionId` for anonymous events, as Personalize does).
///
/// # Errors
/// A message for an InvalidInputException: a field the schema requires is missing from the event,
/// a property is unknown or has a bad value.
pub fn row_from_event(schema: &AvroSchema, user_id: &str, event: &EventRecord) -> Result<Vec<Cell>, String> {
    let mut row = vec![None; schema.fields.len()];
    let impression = (!event.impression.is_empty()).then(|| event.impression.join("|"));
    let reserved: [(&str, Option<Value>); 8] = [
        ("USER_ID", Some(Value::from(user_id))),
        ("ITEM_ID", event.item_id.as_deref().map(Value::from)),
        ("TIMESTAMP", Some(Value::from(event.sent_at))),
        ("EVENT_TYPE", Some(Value::from(event.event_type.as_str()))),
        ("EVENT_VALUE", event.event_value.map(Value::from)),
        (
            "RECOMMENDATION_ID",
            event.recommendation_id.as_deref().map(Value::from),
        ),
        ("IMPRESSION", impression.map(Value::from)),
        (
            "EVENT_ATTRIBUTION_SOURCE",
            event.attribution_source.as_deref().map(Value::from),
        ),
    ];
    for (name, value) in reserved {
        if let (Some(position), Some(value)) = (schema.fields.iter().position(|f| f.name == name), value) {
            let cell =
                values::from_json(&schema.fields[position], &value).map_err(|e| format!("{name}: {e}"))?;
            row[position] = Some(cell);
        }
    }
    fill_properties(schema, event.properties.as_deref(), &mut row)?;
    finish_row(schema, row, |field| match field {
        "ITEM_ID" => "the event has no itemId, which the Interactions schema requires".to_string(),
        "EVENT_VALUE" => "the event has no eventValue, which the Interactions schema requires".to_string(),
        other => format!(
            "the event lacks {} (in properties), which the schema requires",
            camel_case(other)
        ),
    })
}

/// Fills the cells named by a `properties` JSON object; fields already set (IDs, reserved event
/// members) cannot be given again.
fn fill_properties(
    schema: &AvroSchema,
    properties: Option<&str>,
    row: &mut [Option<Cell>],
) -> Result<(), String> {
    let Some(text) = properties else { return Ok(()) };
    let parsed: Value =
        serde_json::from_str(text).map_err(|e| format!("properties is not valid JSON: {e}"))?;
    let Value::Object(object) = parsed else {
        return Err("properties must be a JSON object".to_string());
    };
    let by_key: HashMap<String, usize> = schema
        .fields
        .iter()
        .enumerate()
        .map(|(i, f)| (camel_case(&f.name), i))
        .collect();
    for (key, value) in &object {
        let Some(&position) = by_key.get(key) else {
            let hint = schema
                .fields
                .iter()
                .find(|f| f.name == *key || camel_case(&f.name).eq_ignore_ascii_case(key))
                .map(|f| format!(" (the field {} is written {})", f.name, camel_case(&f.name)))
                .unwrap_or_default();
            return Err(format!(
                "properties has the key {}, which is not a field of the schema{hint}",
                quote(key)
            ));
        };
        if row[position].is_some() {
            return Err(format!(
                "{key} is given outside properties and cannot appear in it"
            ));
        }
        let field = &schema.fields[position];
        row[position] = Some(values::from_json(field, value).map_err(|e| format!("properties.{key}: {e}"))?);
    }
    Ok(())
}

fn finish_row(
    schema: &AvroSchema,
    row: Vec<Option<Cell>>,
    missing: impl Fn(&str) -> String,
) -> Result<Vec<Cell>, String> {
    row.into_iter()
        .zip(&schema.fields)
        .map(|(cell, field)| match cell {
            Some(cell) => Ok(cell),
            None if field.nullable => Ok(Cell::Null),
            None => Err(missing(&field.name)),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;
    use crate::emulator::engine::testdata::{
        fixture_interactions, fixture_users, interactions_schema, users_schema,
    };
    use crate::objects::{DirStore, MemoryStore};
    use crate::spec::avro;

    fn items_schema() -> AvroSchema {
        avro::parse(&json!({"type": "record", "name": "items", "fields": [
            {"name": "ITEM_ID", "type": "string"},
            {"name": "GENRE", "type": "string", "categorical": true},
            {"name": "NUMBER_OF_RATINGS", "type": ["null", "int"]},
            {"name": "ADULT", "type": ["null", "boolean"]}]}))
        .expect("valid schema")
    }

    fn parse(text: &str, schema: &AvroSchema) -> Result<Table, ImportError> {
        let mut table = Table::new(schema.fields.iter().map(|f| f.name.clone()).collect(), Vec::new());
        parse_csv(&ObjectUrl::new("b", "d.csv"), text.as_bytes(), schema, &mut table).map(|()| table)
    }

    #[tokio::test]
    async fn the_reference_fixtures_import() {
        let interactions = fixture_interactions().await;
        assert_eq!(interactions.len(), 1000);
        assert_eq!(
            interactions.columns,
            ["ITEM_ID", "USER_ID", "TIMESTAMP", "EVENT_TYPE", "EVENT_VALUE"]
        );
        assert_eq!(
            interactions.rows[0],
            vec![
                Cell::Str("98".into()),
                Cell::Str("15".into()),
                Cell::Int(1_584_365_781),
                Cell::Str("RATING".into()),
                Cell::Float(4.0)
            ]
        );
        let users = fixture_users().await;
        assert_eq!(users.len(), 25);
        assert_eq!(
            users.rows[0],
            vec![Cell::Str("0".into()), Cell::Int(71), Cell::Str("F".into())]
        );
    }

    #[tokio::test]
    async fn a_folder_reads_every_csv_directly_under_it() {
        let store = MemoryStore::new();
        let put =
            |key: &str, body: &'static str| store.put_at(&ObjectUrl::new("b", key), body, chrono::Utc::now());
        put("train/g1/b.csv", "USER_ID,AGE,GENDER\n2,30,F\n");
        put("train/g1/a.csv", "USER_ID,AGE,GENDER\n1,40,M\n");
        put("train/g1/notes.txt", "not data");
        put("train/g1/old/c.csv", "USER_ID,AGE,GENDER\n3,50,F\n");
        put("train/g10/x.csv", "USER_ID,AGE,GENDER\n9,50,F\n");
        let schema = users_schema();
        for location in ["s3://b/train/g1/", "s3://b/train/g1"] {
            let table = read_csv_dataset(&store, location, &schema)
                .await
                .expect("folder import");
            let ids: Vec<String> = table.rows.iter().map(|r| r[0].to_string()).collect();
            assert_eq!(ids, ["1", "2"], "{location}");
            assert_eq!(
                table.rows[0],
                vec![Cell::Str("1".into()), Cell::Int(40), Cell::Str("M".into())]
            );
        }
        let err = read_csv_dataset(&store, "s3://b/train/none/", &schema)
            .await
            .expect_err("empty");
        assert_eq!(err.to_string(), "no CSV file found at s3://b/train/none/");
        let err = read_csv_dataset(&store, "s3://b/train/g1/notes", &schema)
            .await
            .expect_err("nothing");
        assert!(matches!(err, ImportError::NoObjects { .. }), "{err}");
        let err = read_csv_dataset(&store, "https://b/x.csv", &schema)
            .await
            .expect_err("not s3");
        assert!(err.to_string().contains("not an S3 URL"), "{err}");
    }

    #[tokio::test]
    async fn store_failures_name_the_object() {
        let store = MemoryStore::new();
        let big = format!("USER_ID,AGE,GENDER\n{}", "1,2,F\n".repeat(10));
        store.put_at(&ObjectUrl::new("b", "u.csv"), big, chrono::Utc::now());
        // The size limit applies through the same store call; a small limit proves the error path.
        let err = store
            .get(&ObjectUrl::new("b", "u.csv"), 10)
            .await
            .expect_err("limit");
        let err = ImportError::from(err);
        assert!(
            err.to_string()
                .starts_with("cannot read the data: s3://b/u.csv is"),
            "{err}"
        );
        let dir = DirStore::new("/nonexistent-root", "only");
        let err = read_csv_dataset(&dir, "s3://other/u.csv", &users_schema())
            .await
            .expect_err("bucket");
        assert!(err.to_string().contains("s3://other/u.csv"), "{err}");
    }

    #[test]
    fn every_failure_reason_names_the_place() {
        let schema = interactions_schema();
        let header = "ITEM_ID,USER_ID,TIMESTAMP,EVENT_TYPE,EVENT_VALUE";
        let cases: &[(String, &str)] = &[
            (String::new(), "s3://b/d.csv: the file is empty"),
            (
                format!("{header},EXTRA\n1,2,3,click,4,x\n"),
                "s3://b/d.csv: column \"EXTRA\" is not a field of the schema interactions; the fields are ITEM_ID, USER_ID, TIMESTAMP, EVENT_TYPE, EVENT_VALUE",
            ),
            (
                "item_id,USER_ID,TIMESTAMP,EVENT_TYPE,EVENT_VALUE\n".to_string(),
                "(field names are case-sensitive: did you mean ITEM_ID?)",
            ),
            (
                "ITEM_ID,USER_ID,ITEM_ID\n".to_string(),
                "column ITEM_ID appears twice in the header",
            ),
            (
                "ITEM_ID, USER_ID,TIMESTAMP,EVENT_TYPE,EVENT_VALUE\n".to_string(),
                "column \" USER_ID\" is not a field of the schema interactions (remove the spaces around the name)",
            ),
            (
                "ITEM_ID,USER_ID,EVENT_TYPE\n".to_string(),
                "the header lacks the required (non-nullable) fields TIMESTAMP, EVENT_VALUE",
            ),
            (
                format!("{header}\n1,2,3,click,4\n1,2,notatime,click,4\n"),
                "s3://b/d.csv row 2 (line 3), column TIMESTAMP: \"notatime\" is not a long (a whole number)",
            ),
            (
                format!("{header}\n1,2,3,click,4\n1,2,3,click\n"),
                "s3://b/d.csv line 3: the row has 4 fields but the header has 5",
            ),
            (
                format!("{header}\n{},2,3,click,4\n", "i".repeat(257)),
                "row 1 (line 2), column ITEM_ID: the ID is 257",
            ),
            (
                format!("{header}\n1,,3,click,4\n"),
                "column USER_ID: the value is missing",
            ),
            (
                format!("{header}\n1,2,3,click,NaN\n"),
                "column EVENT_VALUE: \"NaN\" is not a float",
            ),
            (
                format!("{header}\n\"1\n2\",2,3,click,1\n1,2,3,click,x\n"),
                "row 2 (line 4), column EVENT_VALUE",
            ),
        ];
        for (text, expected) in cases {
            let err = parse(text, &schema).expect_err(expected);
            assert!(
                err.to_string().contains(expected),
                "expected {expected:?} in {err}"
            );
        }
    }

    #[test]
    fn non_utf8_bytes_are_reported_with_their_column() {
        let schema = users_schema();
        let mut table = Table::new(vec![], vec![]);
        let bytes = b"USER_ID,AGE,GENDER\n1,20,\xFF\xFE\n";
        let err =
            parse_csv(&ObjectUrl::new("b", "u.csv"), bytes, &schema, &mut table).expect_err("not utf-8");
        assert_eq!(
            err.to_string(),
            "s3://b/u.csv row 1 (line 2), column GENDER: the value is not valid UTF-8"
        );
        let err = parse_csv(
            &ObjectUrl::new("b", "u.csv"),
            b"USER_ID,\xFF\n",
            &schema,
            &mut table,
        )
        .expect_err("header");
        assert!(
            err.to_string().contains("header column 2 is not valid UTF-8"),
            "{err}"
        );
    }

    #[test]
    fn nullable_columns_may_be_left_out_and_a_bom_is_ignored() {
        let schema = items_schema();
        let table = parse("\u{feff}ITEM_ID,GENRE\ni1,Comedy|Drama\n", &schema).expect("valid");
        assert_eq!(
            table.rows,
            vec![vec![
                Cell::Str("i1".into()),
                Cell::Str("Comedy|Drama".into()),
                Cell::Null,
                Cell::Null
            ]]
        );
        let table = parse("ITEM_ID,GENRE,ADULT\ni1,a,true\ni2,b,\n", &schema).expect("valid");
        let err = parse("GENRE,ITEM_ID\nComedy,i1\n", &schema).expect_err("out of order");
        assert_eq!(
            err.to_string(),
            "s3://b/d.csv: column GENRE comes before ITEM_ID but the schema items orders its fields \
             ITEM_ID, GENRE, NUMBER_OF_RATINGS, ADULT; the header must follow the schema's order"
        );
        let err = parse("ITEM_ID,ADULT,GENRE\ni1,true,a\n", &schema).expect_err("out of order");
        assert!(
            err.to_string().contains("column ADULT comes before GENRE"),
            "{err}"
        );
        assert_eq!(table.rows[0][3], Cell::Bool(true));
        assert_eq!(table.rows[1][3], Cell::Null);
        let err = parse("ITEM_ID,GENRE,ADULT\ni1,a,TRUE\n", &schema).expect_err("uppercase bool");
        assert!(
            err.to_string()
                .contains("column ADULT: \"TRUE\" is not a boolean"),
            "{err}"
        );
        let err = parse(&format!("ITEM_ID,GENRE\ni1,{}\n", "g".repeat(1001)), &schema).expect_err("long");
        assert!(
            err.to_string()
                .contains("column GENRE: a categorical value is 1001"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_few_hundred_thousand_rows_import() {
        let rows = 300_000;
        let mut text = String::from("ITEM_ID,USER_ID,TIMESTAMP,EVENT_TYPE,EVENT_VALUE\n");
        for i in 0..rows {
            text.push_str(&format!(
                "item{},user{},{},click,1.5\n",
                i % 5000,
                i % 20_000,
                1_600_000_000 + i
            ));
        }
        let store = MemoryStore::new();
        store.put_at(
            &ObjectUrl::new("b", "big/part1.csv"),
            Bytes::from(text),
            chrono::Utc::now(),
        );
        let table = read_csv_dataset(&store, "s3://b/big", &interactions_schema())
            .await
            .expect("big import");
        assert_eq!(table.len(), rows);
        assert_eq!(table.rows[rows - 1][1], Cell::Str("user19999".into()));
    }

    #[test]
    fn put_items_and_users_rows() {
        let schema = items_schema();
        let row = row_from_properties(
            &schema,
            "ITEM_ID",
            "i1",
            Some(r#"{"genre": "Comedy", "numberOfRatings": "12"}"#),
        )
        .expect("valid");
        assert_eq!(
            row,
            vec![
                Cell::Str("i1".into()),
                Cell::Str("Comedy".into()),
                Cell::Int(12),
                Cell::Null
            ]
        );
        let cases: &[(Option<&str>, &str)] = &[
            (None, "properties lacks genre, which the schema requires"),
            (Some("{"), "properties is not valid JSON"),
            (Some("[1]"), "properties must be a JSON object"),
            (
                Some(r#"{"genre": "a", "GENRE": "b"}"#),
                "the key \"GENRE\", which is not a field of the schema (the field GENRE is written genre)",
            ),
            (Some(r#"{"genre": "a", "colour": "b"}"#), "the key \"colour\""),
            (
                Some(r#"{"genre": "a", "numberOfRatings": 1.5}"#),
                "properties.numberOfRatings: 1.5 is not a whole number",
            ),
            (
                Some(r#"{"genre": "a", "itemId": "x"}"#),
                "itemId is given outside properties",
            ),
            (
                Some(r#"{"genre": null}"#),
                "properties.genre: the value is missing",
            ),
        ];
        for (properties, expected) in cases {
            let err = row_from_properties(&schema, "ITEM_ID", "i1", *properties).expect_err(expected);
            assert!(
                err.contains(expected),
                "{properties:?}: expected {expected:?} in {err}"
            );
        }
        let err = row_from_properties(&schema, "ITEM_ID", &"x".repeat(300), Some(r#"{"genre": "a"}"#))
            .expect_err("long id");
        assert!(err.starts_with("ITEM_ID: the ID is 300"), "{err}");
        let err = row_from_properties(&schema, "USER_ID", "u", None).expect_err("wrong id field");
        assert_eq!(err, "the schema items has no USER_ID field");
        let users = row_from_properties(
            &users_schema(),
            "USER_ID",
            "u1",
            Some(r#"{"age": 30, "gender": "F"}"#),
        )
        .expect("user");
        assert_eq!(
            users,
            vec![Cell::Str("u1".into()), Cell::Int(30), Cell::Str("F".into())]
        );
    }

    #[test]
    fn event_rows() {
        let schema = avro::parse(&json!({"type": "record", "name": "interactions", "fields": [
            {"name": "USER_ID", "type": "string"}, {"name": "ITEM_ID", "type": "string"},
            {"name": "TIMESTAMP", "type": "long"}, {"name": "EVENT_TYPE", "type": "string"},
            {"name": "EVENT_VALUE", "type": ["null", "float"]},
            {"name": "IMPRESSION", "type": ["null", "string"]},
            {"name": "DEVICE", "type": ["null", "string"], "categorical": true}]}))
        .expect("valid schema");
        let event = EventRecord {
            event_type: "click".into(),
            item_id: Some("i9".into()),
            sent_at: 1_700_000_000,
            event_value: Some(2.5),
            properties: Some(r#"{"device": "phone"}"#.into()),
            impression: vec!["i9".into(), "i3".into()],
            ..EventRecord::default()
        };
        let row = row_from_event(&schema, "u1", &event).expect("valid event");
        assert_eq!(
            row,
            vec![
                Cell::Str("u1".into()),
                Cell::Str("i9".into()),
                Cell::Int(1_700_000_000),
                Cell::Str("click".into()),
                Cell::Float(2.5),
                Cell::Str("i9|i3".into()),
                Cell::Str("phone".into()),
            ]
        );
        let minimal = EventRecord {
            event_type: "view".into(),
            item_id: Some("i1".into()),
            sent_at: 5,
            ..EventRecord::default()
        };
        let row = row_from_event(&schema, "u1", &minimal).expect("minimal");
        assert_eq!(row[4], Cell::Null);
        let no_item = EventRecord {
            item_id: None,
            ..minimal.clone()
        };
        assert_eq!(
            row_from_event(&schema, "u1", &no_item).expect_err("no item"),
            "the event has no itemId, which the Interactions schema requires"
        );
        let bad = EventRecord {
            properties: Some(r#"{"itemId": "i2"}"#.into()),
            ..minimal.clone()
        };
        assert!(
            row_from_event(&schema, "u1", &bad)
                .expect_err("dup")
                .contains("given outside properties")
        );
        let long_user = "u".repeat(257);
        assert!(
            row_from_event(&schema, &long_user, &minimal)
                .expect_err("long")
                .starts_with("USER_ID: the ID is 257")
        );
    }

    proptest! {
        #[test]
        fn the_csv_reader_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let schema = items_schema();
            let mut table = Table::new(vec![], vec![]);
            let _ = parse_csv(&ObjectUrl::new("b", "k"), &bytes, &schema, &mut table);
        }

        #[test]
        fn csv_like_text_never_panics(text in "[A-Z_,\"\n|0-9a-z\u{feff}]{0,200}") {
            let schema = items_schema();
            let mut table = Table::new(vec![], vec![]);
            let with_header = format!("ITEM_ID,GENRE,NUMBER_OF_RATINGS\n{text}");
            let _ = parse_csv(&ObjectUrl::new("b", "k"), with_header.as_bytes(), &schema, &mut table);
        }

        #[test]
        fn properties_never_panic(id in ".{0,300}", properties in proptest::option::of(".{0,200}")) {
            let _ = row_from_properties(&items_schema(), "ITEM_ID", &id, properties.as_deref());
        }

        #[test]
        fn json_properties_never_panic(key in "[a-zA-Z]{1,16}", value in "(null|true|-?[0-9]{1,25}(\\.[0-9]+)?|\"[^\"\\\\]{0,20}\"|\\[\\]|\\{\\})") {
            let properties = format!("{{\"genre\": \"x\", \"{key}\": {value}}}");
            let _ = row_from_properties(&items_schema(), "ITEM_ID", "i", Some(&properties));
        }
    }
}
