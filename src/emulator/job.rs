//! Background work a Create call queues: what it is and which resource it belongs to. Plain data, so
//! the request handlers (`control`) queue it without depending on how it runs (`work`).

/// What a job does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobKind {
    Import,
    Train,
    TrainRecommender,
    /// The full retraining an UpdateRecommender that changes the training columns starts; its
    /// outcome ends the update (`latestRecommenderUpdate`), not the recommender's creation.
    RetrainRecommender,
    BatchInference,
    BatchSegment,
}

/// A unit of background work for one resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub kind: JobKind,
    pub arn: String,
    /// The creation sequence number of the resource: after a reset a new resource may reuse the ARN,
    /// and must not receive the outcome of the old one's work.
    pub seq: u64,
}
