//! PutEvents, PutItems, PutUsers: records appended to (or replacing rows of) the dataset tables.

use serde_json::{Value, json};

use super::request::{EventsRequest, RecordsRequest};
use crate::emulator::control::Cx;
use crate::emulator::data::{Data, id_column};
use crate::emulator::engine::import::{EventRecord, row_from_event, row_from_properties};
use crate::emulator::engine::table::{Cell, RowDelta, Table};
use crate::emulator::error::ApiError;
use crate::emulator::input::Input;
use crate::emulator::lifecycle::Status;
use crate::emulator::state::{Dataset, EventTracker};
use crate::spec::avro::AvroSchema;
use crate::spec::kinds::DatasetType;

/// The schema a dataset's rows follow now.
fn schema_of<'s>(cx: &'s Cx, dataset: &Dataset) -> Result<&'s AvroSchema, ApiError> {
    cx.state
        .schemas
        .get(&dataset.schema_arn)
        .map(|s| &s.parsed)
        .ok_or_else(|| ApiError::not_found("schema", &dataset.schema_arn))
}

/// Appends `rows` to the dataset's table as individually put records.
fn put_rows(
    cx: &mut Cx,
    data: &mut Data,
    dataset_arn: &str,
    schema: &AvroSchema,
    ty: DatasetType,
    rows: Vec<Vec<Cell>>,
) {
    let columns = schema.fields.iter().map(|f| f.name.clone()).collect();
    data.merge_rows(
        dataset_arn,
        RowDelta {
            rows: Table::new(columns, rows),
            id_column: id_column(ty).map(str::to_string),
            individual: true,
        },
    );
    cx.changed = true;
}

/// PutEvents: the events go to the Interactions dataset of the tracker's group. Its only modeled
/// error is InvalidInput, so every refusal is one.
pub fn put_events(cx: &mut Cx, data: &mut Data, input: &Input) -> Result<Value, ApiError> {
    let request = EventsRequest::parse(input)?;
    let now = cx.now;
    let tracker = cx
        .state
        .live::<EventTracker>(now, |t| t.tracking_id == request.tracking_id)
        .next()
        .ok_or_else(|| {
            ApiError::invalid(format!(
                "No event tracker has the trackingId {}",
                request.tracking_id
            ))
        })?;
    if tracker.meta.status(now) != Status::Active {
        return Err(ApiError::invalid(format!(
            "The event tracker {} is not ACTIVE (status {})",
            tracker.meta.arn,
            tracker.meta.status(now).as_str()
        )));
    }
    let group = tracker.group_arn.clone();
    let dataset = cx
        .state
        .live::<Dataset>(now, |d| {
            d.group_arn == group && d.dataset_type == DatasetType::Interactions
        })
        .next()
        .ok_or_else(|| ApiError::invalid(format!("The dataset group {group} has no Interactions dataset")))?;
    if !dataset.meta.is_active(now) {
        return Err(ApiError::invalid(format!(
            "The Interactions dataset {} is not ACTIVE",
            dataset.meta.arn
        )));
    }
    let schema = schema_of(cx, dataset)?;
    // Anonymous events are attributed to the session, as Personalize does.
    let user = request.user_id.as_deref().unwrap_or(&request.session_id);
    let mut rows = Vec::with_capacity(request.events.len());
    for (i, e) in request.events.iter().enumerate() {
        let record = EventRecord {
            event_type: e.event_type.clone(),
            item_id: e.item_id.clone(),
            sent_at: e.sent_at.round() as i64,
            event_value: e.event_value,
            properties: e.properties.clone(),
            recommendation_id: e.recommendation_id.clone(),
            impression: e.impression.clone().unwrap_or_default(),
            attribution_source: None,
        };
        let row = row_from_event(schema, user, &record)
            .map_err(|m| ApiError::invalid(format!("eventList.{}: {m}", i + 1)))?;
        rows.push(row);
    }
    let (arn, schema) = (dataset.meta.arn.clone(), schema.clone());
    put_rows(cx, data, &arn, &schema, DatasetType::Interactions, rows);
    Ok(json!({}))
}

/// PutItems (`ty` Items) and PutUsers (`ty` Users): unknown dataset NF, another type II, a dataset
/// that is not ACTIVE IU.
pub fn put_records(cx: &mut Cx, data: &mut Data, input: &Input, ty: DatasetType) -> Result<Value, ApiError> {
    let (list, id_member, max_properties) = match ty {
        DatasetType::Users => ("users", "userId", 24_000),
        _ => ("items", "itemId", 32_000),
    };
    let request = RecordsRequest::parse(input, list, id_member, max_properties)?;
    let now = cx.now;
    let dataset = cx.state.find::<Dataset>(&request.dataset_arn, now)?;
    if dataset.dataset_type != ty {
        return Err(ApiError::invalid(format!(
            "{} is a {} dataset, not a {} dataset",
            request.dataset_arn,
            dataset.dataset_type.api_name(),
            ty.api_name()
        )));
    }
    let status = dataset.meta.status(now);
    if status != Status::Active {
        return Err(ApiError::in_use(format!(
            "The dataset {} is not ACTIVE (status {})",
            request.dataset_arn,
            status.as_str()
        )));
    }
    let schema = schema_of(cx, dataset)?;
    let id_field = id_column(ty).unwrap_or("ITEM_ID");
    let mut rows = Vec::with_capacity(request.records.len());
    for (i, (id, properties)) in request.records.iter().enumerate() {
        let row = row_from_properties(schema, id_field, id, properties.as_deref())
            .map_err(|m| ApiError::invalid(format!("{list}.{}: {m}", i + 1)))?;
        rows.push(row);
    }
    let schema = schema.clone();
    put_rows(cx, data, &request.dataset_arn, &schema, ty, rows);
    Ok(json!({}))
}
