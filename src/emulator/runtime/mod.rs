//! The runtime (GetRecommendations, GetPersonalizedRanking) and events (PutEvents, PutItems, PutUsers)
//! APIs: restJson1, answered from the trained models and appended to the dataset tables.

pub mod events;
pub mod recommend;
pub mod request;

use serde_json::Value;

use super::control::Cx;
use super::data::Data;
use super::error::{ApiError, ErrorCode};
use super::input::Input;
use crate::spec::kinds::DatasetType;

/// Runs one runtime or events operation on the settled world.
pub fn call(cx: &mut Cx, data: &mut Data, op: &str, input: &Input) -> Result<Value, ApiError> {
    match op {
        "GetRecommendations" => recommend::get_recommendations(cx, data, input),
        "GetPersonalizedRanking" => recommend::get_personalized_ranking(cx, data, input),
        "PutEvents" => events::put_events(cx, data, input),
        "PutItems" => events::put_records(cx, data, input, DatasetType::Items),
        "PutUsers" => events::put_records(cx, data, input, DatasetType::Users),
        other => Err(ApiError::new(
            ErrorCode::UnknownOperation,
            format!("{other} is not supported by the built-in Personalize"),
        )),
    }
}
