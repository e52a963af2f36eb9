//! S3 event notifications as delivered by SQS: direct, or wrapped in an SNS envelope.
//!
//! Pure parsing. The shapes tolerate what moto sends as well as AWS: keys are form-URL-encoded (`+` is a
//! space), and `sequencer`, `versionId` and the identity blocks may be missing.

use percent_encoding::percent_decode_str;
use serde::Deserialize;

/// One `ObjectCreated:*` record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectCreated {
    pub bucket: String,
    /// The decoded key.
    pub key: String,
    pub size: Option<u64>,
    pub etag: Option<String>,
    pub version_id: Option<String>,
    /// S3's per-key ordering token (hex); the store orders the generations of a key by it.
    pub sequencer: Option<String>,
    /// `ObjectCreated:Put`, `ObjectCreated:Copy`, …
    pub event_name: String,
    /// As sent; AWS and moto format it differently, so it is kept as text for logs only.
    pub event_time: Option<String>,
}

impl ObjectCreated {
    /// A record of `event_name` for `bucket`/`key` that carries nothing else (no size, ETag, version
    /// or sequencer): what a directory scan or the resync knows before reading the object.
    pub fn bare(bucket: impl Into<String>, key: impl Into<String>, event_name: &str) -> Self {
        Self {
            bucket: bucket.into(),
            key: key.into(),
            size: None,
            etag: None,
            version_id: None,
            sequencer: None,
            event_name: event_name.to_string(),
            event_time: None,
        }
    }
}

/// What a message contains.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// Zero or more object-created records (other event kinds are dropped and counted in `ignored`).
    Records {
        created: Vec<ObjectCreated>,
        ignored: Vec<String>,
    },
    /// `s3:TestEvent`, sent when a notification configuration is saved.
    TestEvent,
}

/// Why a message body is not an S3 notification.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum EventError {
    #[error("the message body is not JSON: {0}")]
    NotJson(String),
    #[error("the message is not an S3 event notification ({0})")]
    NotS3Event(String),
    #[error("record {index}: {reason}")]
    BadRecord { index: usize, reason: String },
}

#[derive(Deserialize)]
struct SnsEnvelope {
    #[serde(rename = "Type")]
    kind: String,
    #[serde(rename = "Message")]
    message: String,
}

#[derive(Deserialize)]
struct Notification {
    #[serde(rename = "Records")]
    records: Option<Vec<serde_json::Value>>,
    #[serde(rename = "Event")]
    event: Option<String>,
}

#[derive(Deserialize)]
struct Record {
    #[serde(rename = "eventName")]
    event_name: String,
    #[serde(rename = "eventTime")]
    event_time: Option<String>,
    s3: S3Entity,
}

#[derive(Deserialize)]
struct S3Entity {
    bucket: Bucket,
    object: Object,
}

#[derive(Deserialize)]
struct Bucket {
    name: String,
}

#[derive(Deserialize)]
struct Object {
    key: String,
    size: Option<u64>,
    #[serde(rename = "eTag")]
    etag: Option<String>,
    #[serde(rename = "versionId")]
    version_id: Option<String>,
    sequencer: Option<String>,
}

/// Parses an SQS message body.
pub fn parse(body: &str) -> Result<Parsed, EventError> {
    let value: serde_json::Value =
        serde_json::from_str(body).map_err(|e| EventError::NotJson(e.to_string()))?;
    // An SNS → SQS subscription without raw delivery wraps the S3 notification in an envelope.
    let value = match serde_json::from_value::<SnsEnvelope>(value.clone()) {
        Ok(env) if env.kind == "Notification" => serde_json::from_str(&env.message)
            .map_err(|e| EventError::NotJson(format!("inside the SNS envelope: {e}")))?,
        _ => value,
    };
    let n: Notification = serde_json::from_value(value).map_err(|e| EventError::NotS3Event(e.to_string()))?;
    if n.event.as_deref() == Some("s3:TestEvent") {
        return Ok(Parsed::TestEvent);
    }
    let Some(records) = n.records else {
        return Err(EventError::NotS3Event("no Records".into()));
    };
    let mut created = Vec::new();
    let mut ignored = Vec::new();
    for (index, raw) in records.into_iter().enumerate() {
        let r: Record = serde_json::from_value(raw).map_err(|e| EventError::BadRecord {
            index,
            reason: e.to_string(),
        })?;
        // Removals are handed on too: the daemon may tear a group down when its file goes.
        if !r.event_name.starts_with("ObjectCreated:") && !is_removal(&r.event_name) {
            ignored.push(r.event_name);
            continue;
        }
        let key = decode_key(&r.s3.object.key).map_err(|reason| EventError::BadRecord { index, reason })?;
        created.push(ObjectCreated {
            bucket: r.s3.bucket.name,
            key,
            size: r.s3.object.size,
            etag: r.s3.object.etag,
            version_id: r.s3.object.version_id,
            sequencer: r.s3.object.sequencer,
            event_name: r.event_name,
            event_time: r.event_time,
        });
    }
    Ok(Parsed::Records { created, ignored })
}

/// Whether an event name (`ObjectRemoved:Delete`, `ObjectRemoved:DeleteMarkerCreated`) says the
/// object was removed.
pub fn is_removal(event_name: &str) -> bool {
    event_name.starts_with("ObjectRemoved:")
}

/// Decodes an S3 event key: form-URL-encoding, so `+` is a space and `%2B` a plus.
pub fn decode_key(raw: &str) -> Result<String, String> {
    let spaced = raw.replace('+', " ");
    percent_decode_str(&spaced)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|e| format!("key {raw:?} is not UTF-8 once decoded: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOTO: &str = r#"{"Records": [{"eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
      "eventTime": "2026-11-28T10:42:47.394387", "eventName": "ObjectCreated:Put",
      "s3": {"s3SchemaVersion": "1.0", "configurationId": "train-json",
             "bucket": {"name": "data", "arn": "arn:aws:s3:::data"},
             "object": {"key": "train%2Fmy+file%2Bx.json", "size": 7, "eTag": "ac3e"}}}]}"#;

    #[test]
    fn parses_moto_records_and_decodes_keys() {
        let Parsed::Records { created, ignored } = parse(MOTO).expect("valid") else {
            panic!("not records")
        };
        assert!(ignored.is_empty());
        assert_eq!(created.len(), 1);
        assert_eq!(created[0].bucket, "data");
        assert_eq!(created[0].key, "train/my file+x.json");
        assert_eq!(created[0].size, Some(7));
        assert_eq!(created[0].sequencer, None);
    }

    #[test]
    fn unwraps_an_sns_envelope() {
        let body = serde_json::json!({"Type": "Notification", "MessageId": "m", "Message": MOTO}).to_string();
        let Parsed::Records { created, .. } = parse(&body).expect("valid") else {
            panic!("not records")
        };
        assert_eq!(created[0].key, "train/my file+x.json");
    }

    #[test]
    fn test_event_and_other_kinds() {
        let t = r#"{"Service": "Amazon S3", "Event": "s3:TestEvent", "Time": "x", "Bucket": "data"}"#;
        assert_eq!(parse(t), Ok(Parsed::TestEvent));
        let restored = MOTO.replace("ObjectCreated:Put", "ObjectRestore:Post");
        assert_eq!(
            parse(&restored),
            Ok(Parsed::Records {
                created: vec![],
                ignored: vec!["ObjectRestore:Post".into()]
            })
        );
        // Removals are handed on: the daemon notes them or tears the group down.
        let removed = MOTO.replace("ObjectCreated:Put", "ObjectRemoved:Delete");
        let Ok(Parsed::Records { created, ignored }) = parse(&removed) else {
            panic!("not records")
        };
        assert!(ignored.is_empty());
        assert!(is_removal(&created[0].event_name), "{created:?}");
    }

    #[test]
    fn rejects_garbage_without_panicking() {
        assert!(matches!(parse("{"), Err(EventError::NotJson(_))));
        assert!(matches!(parse("[]"), Err(EventError::NotS3Event(_))));
        assert!(matches!(parse(r#"{"foo": 1}"#), Err(EventError::NotS3Event(_))));
        assert!(matches!(
            parse(r#"{"Records": [{"eventName": 5}]}"#),
            Err(EventError::BadRecord { index: 0, .. })
        ));
        let bad_utf8 = MOTO.replace("train%2Fmy+file%2Bx.json", "train%2F%FF.json");
        assert!(matches!(parse(&bad_utf8), Err(EventError::BadRecord { .. })));
        let env = r#"{"Type": "Notification", "Message": "not json"}"#;
        assert!(matches!(parse(env), Err(EventError::NotJson(_))));
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(body in ".{0,400}") {
            let _ = parse(&body);
        }

        #[test]
        fn decode_never_panics(key in ".{0,200}") {
            let _ = decode_key(&key);
        }
    }
}
