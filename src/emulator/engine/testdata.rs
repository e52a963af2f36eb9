//! Test data shared by the engine's unit tests: the reference fixtures and small synthetic tables.

use serde_json::json;

use super::import::read_csv_dataset;
use super::table::{Cell, Table};
use crate::objects::DirStore;
use crate::spec::avro::{self, AvroSchema};

/// `tests/fixtures/data`, served as the bucket `fixtures`.
pub fn fixture_store() -> DirStore {
    DirStore::new(
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/data"),
        "fixtures",
    )
}

/// The interactions schema of the reference's sample_config.json.
pub fn interactions_schema() -> AvroSchema {
    avro::parse(&json!({"type": "record", "name": "interactions", "fields": [
        {"name": "ITEM_ID", "type": "string"}, {"name": "USER_ID", "type": "string"},
        {"name": "TIMESTAMP", "type": "long"}, {"name": "EVENT_TYPE", "type": "string"},
        {"name": "EVENT_VALUE", "type": "float"}]}))
    .expect("valid schema")
}

/// The users schema of the reference's sample_config.json.
pub fn users_schema() -> AvroSchema {
    avro::parse(&json!({"type": "record", "name": "users", "fields": [
        {"name": "USER_ID", "type": "string"}, {"name": "AGE", "type": "int"},
        {"name": "GENDER", "type": "string", "categorical": true}]}))
    .expect("valid schema")
}

/// The reference's 1000 interactions of 25 users.
pub async fn fixture_interactions() -> Table {
    read_csv_dataset(
        &fixture_store(),
        "s3://fixtures/interactions.csv",
        &interactions_schema(),
    )
    .await
    .expect("the fixture imports")
}

/// The reference's 25 users.
pub async fn fixture_users() -> Table {
    read_csv_dataset(&fixture_store(), "s3://fixtures/users.csv", &users_schema())
        .await
        .expect("the fixture imports")
}

/// Interactions as (user, item, timestamp, event type) rows.
pub fn interactions(rows: impl IntoIterator<Item = (String, String, i64, &'static str)>) -> Table {
    Table::new(
        vec![
            "USER_ID".into(),
            "ITEM_ID".into(),
            "TIMESTAMP".into(),
            "EVENT_TYPE".into(),
        ],
        rows.into_iter()
            .map(|(u, i, t, e)| vec![Cell::Str(u), Cell::Str(i), Cell::Int(t), Cell::Str(e.into())])
            .collect(),
    )
}

/// `users` users with `per_user` clicks each on items `i0..i49` in a fixed pattern.
pub fn synthetic(users: usize, per_user: usize) -> Table {
    interactions((0..users).flat_map(|u| {
        (0..per_user).map(move |j| {
            let item = (u * 7 + j * 3) % 50;
            (
                format!("u{u}"),
                format!("i{item}"),
                (u * 1000 + j) as i64,
                "click",
            )
        })
    }))
}
