//! The runtime (GetRecommendations, GetPersonalizedRanking) and events (PutEvents, PutItems, PutUsers)
//! APIs: restJson1, answered from the trained models and appended to the dataset tables.

pub mod request;
