//! Runtime and events request members, checked as docs/personalize.md#runtime-validation says.

use std::collections::HashMap;
use std::sync::LazyLock;

use regex::Regex;
use serde_json::Value;

use crate::emulator::error::{ApiError, missing};
use crate::emulator::input::{Input, check_arn, check_count, check_length};

static FILTER_KEY: LazyLock<Regex> = LazyLock::new(|| pattern(r"^[A-Za-z0-9_]{1,50}$"));
static CONTEXT_KEY: LazyLock<Regex> = LazyLock::new(|| pattern(r"^[A-Za-z\d_]{1,150}$"));

fn pattern(p: &str) -> Regex {
    Regex::new(p).unwrap_or_else(|e| panic!("built-in pattern {p} is invalid: {e}"))
}

/// What a recommendation is asked of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Campaign(String),
    Recommender(String),
}

/// The filter of a request and its parameter values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FilterRequest {
    pub arn: Option<String>,
    pub values: HashMap<String, String>,
}

/// GetRecommendations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecommendRequest {
    pub source: Source,
    pub user_id: Option<String>,
    pub item_id: Option<String>,
    pub num_results: usize,
    pub filter: FilterRequest,
    /// `metadataColumns.ITEMS`: item columns to return with each recommendation.
    pub metadata_columns: Option<Vec<String>>,
    /// `promotions` (at most one).
    pub promotion: Option<PromotionRequest>,
}

/// A promotion: `percent` of the results drawn through another filter, marked with `name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromotionRequest {
    pub name: Option<String>,
    /// `percentPromotedItems`, 1..100.
    pub percent: usize,
    pub filter: FilterRequest,
}

impl PromotionRequest {
    /// The model leaves every member optional, but a promotion without a share or a filter
    /// promotes nothing, so both are required here.
    fn parse(input: &Input) -> Result<Self, ApiError> {
        let name = input.opt_name("name")?.map(str::to_string);
        let percent = input
            .opt_int("percentPromotedItems", 1, 100)?
            .ok_or_else(|| missing("percentPromotedItems"))?;
        let filter = filter_request(input)?;
        if filter.arn.is_none() {
            return Err(missing("filterArn"));
        }
        Ok(Self {
            name,
            percent: usize::try_from(percent).unwrap_or(100),
            filter,
        })
    }

    /// How many of `num_results` are promoted (rounded up: a promotion asked for is never
    /// dropped by rounding).
    pub fn count(&self, num_results: usize) -> usize {
        (num_results * self.percent).div_ceil(100)
    }
}

/// GetPersonalizedRanking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RankRequest {
    pub campaign_arn: String,
    pub user_id: String,
    pub input_list: Vec<String>,
    pub filter: FilterRequest,
    pub metadata_columns: Option<Vec<String>>,
}

/// The most results without / with metadata (docs/personalize.md#runtime-validation).
pub const MAX_RESULTS: usize = 500;
pub const MAX_RESULTS_WITH_METADATA: usize = 50;

/// A map member whose values are strings, with its keys checked by `key_ok`.
fn string_map(
    input: &Input,
    member: &str,
    max_entries: usize,
    key_ok: &Regex,
    value_max: usize,
) -> Result<HashMap<String, String>, ApiError> {
    let Some(raw) = input.raw(member) else {
        return Ok(HashMap::new());
    };
    let Value::Object(entries) = raw else {
        return Err(ApiError::invalid(format!(
            "'{member}' must be an object of strings"
        )));
    };
    check_count(member, entries.len(), 0, max_entries)?;
    let mut out = HashMap::with_capacity(entries.len());
    for (key, value) in entries {
        if !key_ok.is_match(key) {
            return Err(ApiError::invalid(format!(
                "'{member}' has the key {key:?}, which does not match {}",
                key_ok.as_str()
            )));
        }
        let Value::String(value) = value else {
            return Err(ApiError::invalid(format!("'{member}.{key}' must be a string")));
        };
        check_length(&format!("{member}.{key}"), value, 0, value_max)?;
        out.insert(key.clone(), value.clone());
    }
    Ok(out)
}

fn filter_request(input: &Input) -> Result<FilterRequest, ApiError> {
    Ok(FilterRequest {
        arn: input.opt_arn("filterArn")?.map(str::to_string),
        values: string_map(input, "filterValues", 25, &FILTER_KEY, 1000)?,
    })
}

/// `metadataColumns`: at most one entry, `ITEMS`, with at most 10 column names.
fn metadata_columns(input: &Input) -> Result<Option<Vec<String>>, ApiError> {
    let Some(columns) = input.opt_object("metadataColumns")? else {
        return Ok(None);
    };
    let Some(Value::Object(entries)) = input.raw("metadataColumns") else {
        return Ok(None);
    };
    if entries.keys().any(|k| k != "ITEMS") {
        return Err(ApiError::invalid("metadataColumns accepts only the key ITEMS"));
    }
    columns.opt_string_list("ITEMS", 0, 10, 150)
}

/// The common checks of `userId`/`itemId` (1..256).
fn id(input: &Input, member: &str) -> Result<Option<String>, ApiError> {
    Ok(input.opt_text(member, 1, 256)?.map(str::to_string))
}

impl RecommendRequest {
    /// # Errors
    /// InvalidInput for any member the model rejects, and for none or both of campaign/recommender.
    pub fn parse(input: &Input) -> Result<Self, ApiError> {
        let campaign = input.opt_arn("campaignArn")?;
        let recommender = input.opt_arn("recommenderArn")?;
        let source = match (campaign, recommender) {
            (Some(c), None) => Source::Campaign(c.to_string()),
            (None, Some(r)) => Source::Recommender(r.to_string()),
            _ => {
                return Err(ApiError::invalid(
                    "Exactly one of campaignArn and recommenderArn must be given",
                ));
            }
        };
        let metadata_columns = metadata_columns(input)?;
        let max = if metadata_columns.is_some() {
            MAX_RESULTS_WITH_METADATA
        } else {
            MAX_RESULTS
        };
        let num_results = input.opt_int("numResults", 0, max as i64)?.unwrap_or(25);
        string_map(input, "context", 150, &CONTEXT_KEY, 1000)?;
        let promotion = match input.opt_list("promotions")? {
            None => None,
            Some(promotions) => {
                check_count("promotions", promotions.len(), 0, 1)?;
                match promotions.first() {
                    None => None,
                    Some(Value::Object(m)) => Some(
                        PromotionRequest::parse(&Input::from_map(m.clone()))
                            .map_err(|e| at("promotions", 0, e))?,
                    ),
                    Some(_) => return Err(ApiError::invalid("'promotions.1' must be an object")),
                }
            }
        };
        Ok(Self {
            source,
            user_id: id(input, "userId")?,
            item_id: id(input, "itemId")?,
            num_results: usize::try_from(num_results).unwrap_or(25),
            filter: filter_request(input)?,
            metadata_columns,
            promotion,
        })
    }
}

impl RankRequest {
    /// # Errors
    /// InvalidInput for any member the model rejects.
    pub fn parse(input: &Input) -> Result<Self, ApiError> {
        let campaign_arn = input.arn("campaignArn")?.to_string();
        let user_id = id(input, "userId")?.ok_or_else(|| missing("userId"))?;
        let metadata_columns = metadata_columns(input)?;
        let max = if metadata_columns.is_some() {
            MAX_RESULTS_WITH_METADATA
        } else {
            MAX_RESULTS
        };
        let input_list = input
            .opt_string_list("inputList", 1, max, 256)?
            .ok_or_else(|| missing("inputList"))?;
        string_map(input, "context", 150, &CONTEXT_KEY, 1000)?;
        Ok(Self {
            campaign_arn,
            user_id,
            input_list,
            filter: filter_request(input)?,
            metadata_columns,
        })
    }
}

/// One event of PutEvents.
#[derive(Debug, Clone, PartialEq)]
pub struct EventInput {
    pub event_type: String,
    pub sent_at: f64,
    pub event_id: Option<String>,
    pub event_value: Option<f64>,
    pub item_id: Option<String>,
    pub properties: Option<String>,
    pub recommendation_id: Option<String>,
    pub impression: Option<Vec<String>>,
}

/// PutEvents.
#[derive(Debug, Clone, PartialEq)]
pub struct EventsRequest {
    pub tracking_id: String,
    pub user_id: Option<String>,
    pub session_id: String,
    pub events: Vec<EventInput>,
}

/// A `properties` member: a string holding a JSON object, within `max` characters.
fn properties(input: &Input, member: &str, max: usize) -> Result<Option<String>, ApiError> {
    let Some(text) = input.opt_text(member, 1, max)? else {
        return Ok(None);
    };
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(_)) => Ok(Some(text.to_string())),
        _ => Err(ApiError::invalid(format!(
            "'{member}' must be a string holding a JSON object, e.g. \"{{\\\"genre\\\":\\\"drama\\\"}}\""
        ))),
    }
}

fn objects(input: &Input, member: &str) -> Result<Vec<Input>, ApiError> {
    let items = input.opt_list(member)?.ok_or_else(|| missing(member))?;
    check_count(member, items.len(), 1, 10)?;
    items
        .iter()
        .enumerate()
        .map(|(i, item)| match item {
            Value::Object(m) => Ok(Input::from_map(m.clone())),
            _ => Err(ApiError::invalid(format!(
                "'{member}.{}' must be an object",
                i + 1
            ))),
        })
        .collect()
}

/// Prefixes an error with the position of the record it is about.
fn at(member: &str, i: usize, e: ApiError) -> ApiError {
    ApiError::new(e.code, format!("{member}.{}: {}", i + 1, e.message))
}

impl EventsRequest {
    /// # Errors
    /// InvalidInput for any member the model rejects.
    pub fn parse(input: &Input) -> Result<Self, ApiError> {
        let tracking_id = input.text("trackingId", 1, 256)?.to_string();
        let user_id = id(input, "userId")?;
        let session_id = input.text("sessionId", 1, 256)?.to_string();
        let mut events = Vec::new();
        for (i, e) in objects(input, "eventList")?.iter().enumerate() {
            let parse = || -> Result<EventInput, ApiError> {
                let sent_at = e.opt_f64("sentAt")?.ok_or_else(|| missing("sentAt"))?;
                Ok(EventInput {
                    event_type: e.text("eventType", 1, 256)?.to_string(),
                    sent_at,
                    event_id: e.opt_text("eventId", 1, 256)?.map(str::to_string),
                    event_value: e.opt_f64("eventValue")?,
                    item_id: id(e, "itemId")?,
                    properties: properties(e, "properties", 1024)?,
                    recommendation_id: e.opt_text("recommendationId", 1, 40)?.map(str::to_string),
                    impression: e.opt_string_list("impression", 1, 25, 256)?,
                })
            };
            events.push(parse().map_err(|err| at("eventList", i, err))?);
        }
        Ok(Self {
            tracking_id,
            user_id,
            session_id,
            events,
        })
    }
}

/// PutItems or PutUsers: a dataset and records of an id and optional properties.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordsRequest {
    pub dataset_arn: String,
    pub records: Vec<(String, Option<String>)>,
}

impl RecordsRequest {
    /// `list` is `items` or `users`, `id_member` `itemId` or `userId`, `max_properties` the
    /// properties' length limit.
    ///
    /// # Errors
    /// InvalidInput for any member the model rejects.
    pub fn parse(
        input: &Input,
        list: &str,
        id_member: &str,
        max_properties: usize,
    ) -> Result<Self, ApiError> {
        let dataset_arn = input.str("datasetArn")?;
        check_arn("datasetArn", dataset_arn)?;
        let mut records = Vec::new();
        for (i, r) in objects(input, list)?.iter().enumerate() {
            let record = (|| -> Result<(String, Option<String>), ApiError> {
                let id = r.text(id_member, 1, 256)?.to_string();
                Ok((id, properties(r, "properties", max_properties)?))
            })()
            .map_err(|e| at(list, i, e))?;
            records.push(record);
        }
        Ok(Self {
            dataset_arn: dataset_arn.to_string(),
            records,
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::emulator::error::ErrorCode;

    fn input(v: Value) -> Input {
        Input::from_body(v.to_string().as_bytes()).expect("object")
    }

    const CAMPAIGN: &str = "arn:aws:personalize:us-east-1:000000000000:campaign/c";

    #[test]
    fn recommendations_need_exactly_one_source() {
        let both = input(json!({"campaignArn": CAMPAIGN, "recommenderArn": CAMPAIGN}));
        assert!(RecommendRequest::parse(&both).is_err());
        assert!(RecommendRequest::parse(&input(json!({}))).is_err());
        let ok =
            RecommendRequest::parse(&input(json!({"campaignArn": CAMPAIGN, "userId": "u1"}))).expect("valid");
        assert_eq!(ok.source, Source::Campaign(CAMPAIGN.into()));
        assert_eq!(ok.num_results, 25);
    }

    #[test]
    fn result_counts_and_filter_values_are_bounded() {
        let over = input(json!({"campaignArn": CAMPAIGN, "numResults": 501}));
        assert!(RecommendRequest::parse(&over).is_err());
        let meta_over = input(
            json!({"campaignArn": CAMPAIGN, "numResults": 51, "metadataColumns": {"ITEMS": ["GENRE"]}}),
        );
        assert!(RecommendRequest::parse(&meta_over).is_err());
        let bad_meta = input(json!({"campaignArn": CAMPAIGN, "metadataColumns": {"USERS": ["AGE"]}}));
        assert!(RecommendRequest::parse(&bad_meta).is_err());
        let values: serde_json::Map<String, Value> =
            (0..26).map(|i| (format!("P{i}"), json!("\"a\""))).collect();
        let too_many = input(json!({"campaignArn": CAMPAIGN, "filterValues": values}));
        assert!(RecommendRequest::parse(&too_many).is_err());
        let bad_key = input(json!({"campaignArn": CAMPAIGN, "filterValues": {"a-b": "x"}}));
        assert!(RecommendRequest::parse(&bad_key).is_err());
        let ok = input(json!({"campaignArn": CAMPAIGN, "filterValues": {"GENRE": "\"Drama\""}}));
        assert_eq!(
            RecommendRequest::parse(&ok).expect("valid").filter.values["GENRE"],
            "\"Drama\""
        );
    }

    #[test]
    fn promotions_need_a_share_and_a_filter() {
        const FILTER: &str = "arn:aws:personalize:us-east-1:000000000000:filter/f";
        let with = |promotion: Value| input(json!({"campaignArn": CAMPAIGN, "promotions": [promotion]}));
        let ok = RecommendRequest::parse(&with(
            json!({"name": "p", "percentPromotedItems": 10, "filterArn": FILTER, "filterValues": {"G": "\"a\""}}),
        ))
        .expect("valid");
        let p = ok.promotion.expect("parsed");
        assert_eq!((p.name.as_deref(), p.percent), (Some("p"), 10));
        assert_eq!(p.filter.values["G"], "\"a\"");
        assert_eq!((p.count(25), p.count(10), p.count(0)), (3, 1, 0));
        for (bad, why) in [
            (json!({"percentPromotedItems": 0, "filterArn": FILTER}), "0 %"),
            (json!({"percentPromotedItems": 101, "filterArn": FILTER}), "101 %"),
            (json!({"filterArn": FILTER}), "no share"),
            (json!({"percentPromotedItems": 10}), "no filter"),
            (json!({"percentPromotedItems": 10, "filterArn": "f"}), "bad ARN"),
            (
                json!({"name": "-x", "percentPromotedItems": 10, "filterArn": FILTER}),
                "bad name",
            ),
            (json!("p"), "not an object"),
        ] {
            let e = RecommendRequest::parse(&with(bad)).expect_err(why);
            assert_eq!(e.code, ErrorCode::InvalidInput, "{why}");
        }
        let two = input(json!({"campaignArn": CAMPAIGN, "promotions": [
            {"percentPromotedItems": 10, "filterArn": FILTER}, {"percentPromotedItems": 10, "filterArn": FILTER}]}));
        assert!(RecommendRequest::parse(&two).is_err());
        let none = input(json!({"campaignArn": CAMPAIGN, "promotions": []}));
        assert_eq!(
            RecommendRequest::parse(&none).expect("empty list").promotion,
            None
        );
    }

    #[test]
    fn rankings_need_a_user_and_a_list() {
        assert!(RankRequest::parse(&input(json!({"campaignArn": CAMPAIGN, "inputList": ["a"]}))).is_err());
        assert!(RankRequest::parse(&input(json!({"campaignArn": CAMPAIGN, "userId": "u"}))).is_err());
        let long: Vec<String> = (0..501).map(|i| i.to_string()).collect();
        assert!(
            RankRequest::parse(&input(
                json!({"campaignArn": CAMPAIGN, "userId": "u", "inputList": long})
            ))
            .is_err()
        );
        let ok = RankRequest::parse(&input(
            json!({"campaignArn": CAMPAIGN, "userId": "u", "inputList": ["a", "b"]}),
        ));
        assert_eq!(ok.expect("valid").input_list, ["a", "b"]);
    }

    #[test]
    fn events_are_checked_one_by_one() {
        let event = |extra: Value| {
            let mut e = json!({"eventType": "click", "sentAt": 1_700_000_000, "itemId": "i1"});
            if let (Some(e), Value::Object(extra)) = (e.as_object_mut(), extra) {
                e.extend(extra);
            }
            e
        };
        let ok = EventsRequest::parse(&input(
            json!({"trackingId": "t", "sessionId": "s", "eventList": [event(json!({}))]}),
        ))
        .expect("valid");
        assert_eq!(ok.events[0].sent_at, 1_700_000_000.0);
        for (bad, why) in [
            (
                json!({"trackingId": "t", "sessionId": "s", "eventList": []}),
                "empty list",
            ),
            (
                json!({"trackingId": "t", "eventList": [event(json!({}))]}),
                "no session",
            ),
            (
                json!({"trackingId": "t", "sessionId": "s", "eventList": [event(json!({"sentAt": "yesterday"}))]}),
                "sentAt text",
            ),
            (
                json!({"trackingId": "t", "sessionId": "s", "eventList": [event(json!({"properties": "{bad"}))]}),
                "properties",
            ),
            (
                json!({"trackingId": "t", "sessionId": "s", "eventList": [event(json!({"recommendationId": "x".repeat(41)}))]}),
                "long rid",
            ),
            (
                json!({"trackingId": "t", "sessionId": "s", "eventList": [event(json!({"impression": []}))]}),
                "empty impression",
            ),
        ] {
            let e = EventsRequest::parse(&input(bad)).expect_err(why);
            assert_eq!(e.code, ErrorCode::InvalidInput, "{why}");
        }
        let eleven: Vec<Value> = (0..11).map(|_| event(json!({}))).collect();
        assert!(
            EventsRequest::parse(&input(
                json!({"trackingId": "t", "sessionId": "s", "eventList": eleven})
            ))
            .is_err()
        );
        let e = EventsRequest::parse(&input(
            json!({"trackingId": "t", "sessionId": "s", "eventList": [event(json!({})), {"sentAt": 1}]}),
        ))
        .expect_err("second event lacks a type");
        assert!(e.message.starts_with("eventList.2"), "{}", e.message);
    }

    #[test]
    fn records_carry_ids_and_json_properties() {
        let ds = "arn:aws:personalize:us-east-1:000000000000:dataset/g/ITEMS";
        let ok = RecordsRequest::parse(
            &input(json!({"datasetArn": ds, "items": [{"itemId": "i1", "properties": "{\"genre\":\"drama\"}"}, {"itemId": "i2"}]})),
            "items",
            "itemId",
            32_000,
        )
        .expect("valid");
        assert_eq!(ok.records.len(), 2);
        assert_eq!(ok.records[1], ("i2".to_string(), None));
        assert!(
            RecordsRequest::parse(
                &input(json!({"datasetArn": ds, "items": [{"properties": "{}"}]})),
                "items",
                "itemId",
                10
            )
            .is_err()
        );
        assert!(
            RecordsRequest::parse(
                &input(json!({"datasetArn": "x", "items": [{"itemId": "a"}]})),
                "items",
                "itemId",
                10
            )
            .is_err()
        );
        assert!(
            RecordsRequest::parse(
                &input(json!({"datasetArn": ds, "items": [{"itemId": "a", "properties": "[1]"}]})),
                "items",
                "itemId",
                10
            )
            .is_err()
        );
    }
}
