//! Request members: typed access to a JSON request body with the model's constraints checked
//! (docs/personalize.md#common-field-types). The SDKs validate nothing client-side, so every rule lives here.

use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::error::{ApiError, ErrorCode, constraint, missing};

static NAME: LazyLock<Regex> = LazyLock::new(|| re(r"^[a-zA-Z0-9][a-zA-Z0-9\-_]*$"));
static ARN: LazyLock<Regex> = LazyLock::new(|| re(r"^arn:([a-z\d-]+):personalize:.*:.*:.+$"));
static ROLE_ARN: LazyLock<Regex> =
    LazyLock::new(|| re(r"^arn:([a-z\d-]+):iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+$"));
static KMS_ARN: LazyLock<Regex> = LazyLock::new(|| re(r"^arn:aws.*:kms:.*:[0-9]{12}:key/.*$"));
static S3_LOCATION: LazyLock<Regex> = LazyLock::new(|| re(r"^(s3|http|https)://.+$"));
static TAG_TEXT: LazyLock<Regex> = LazyLock::new(|| re(r"^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$"));

fn re(pattern: &str) -> Regex {
    // The patterns are literals of this file; a typo would fail every test at once.
    Regex::new(pattern).unwrap_or_else(|e| panic!("built-in pattern {pattern} is invalid: {e}"))
}

/// The most tags a resource may carry (`TooManyTagsException` beyond).
pub const MAX_TAGS_PER_RESOURCE: usize = 50;

/// A resource tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tag {
    #[serde(rename = "tagKey")]
    pub key: String,
    #[serde(rename = "tagValue")]
    pub value: String,
}

/// A parsed request body (always a JSON object).
#[derive(Debug, Clone, Default)]
pub struct Input {
    members: Map<String, Value>,
}

fn type_error(member: &str, expected: &str, value: &Value) -> ApiError {
    let found = match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    };
    ApiError::invalid(format!("'{member}' must be {expected}, not {found}"))
}

impl Input {
    /// Parses a request body. An empty body is `{}`; anything but a JSON object is InvalidInput.
    pub fn from_body(body: &[u8]) -> Result<Self, ApiError> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self::default());
        }
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(members)) => Ok(Self { members }),
            Ok(_) => Err(ApiError::invalid("The request body must be a JSON object")),
            Err(e) => Err(ApiError::invalid(format!(
                "The request body is not valid JSON: {e}"
            ))),
        }
    }

    pub fn from_map(members: Map<String, Value>) -> Self {
        Self { members }
    }

    /// The raw member; JSON `null` counts as absent, as the SDKs treat it.
    pub fn raw(&self, member: &str) -> Option<&Value> {
        self.members.get(member).filter(|v| !v.is_null())
    }

    pub fn opt_str(&self, member: &str) -> Result<Option<&str>, ApiError> {
        match self.raw(member) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(type_error(member, "a string", other)),
        }
    }

    pub fn str(&self, member: &str) -> Result<&str, ApiError> {
        self.opt_str(member)?.ok_or_else(|| missing(member))
    }

    /// An optional string of at most `max` characters (and at least `min`).
    pub fn opt_text(&self, member: &str, min: usize, max: usize) -> Result<Option<&str>, ApiError> {
        let Some(s) = self.opt_str(member)? else {
            return Ok(None);
        };
        check_length(member, s, min, max)?;
        Ok(Some(s))
    }

    pub fn text(&self, member: &str, min: usize, max: usize) -> Result<&str, ApiError> {
        self.opt_text(member, min, max)?.ok_or_else(|| missing(member))
    }

    /// A required `Name` (1..63, letters, digits, `-`, `_`, starting alphanumeric).
    pub fn name(&self, member: &str) -> Result<&str, ApiError> {
        self.opt_name(member)?.ok_or_else(|| missing(member))
    }

    pub fn opt_name(&self, member: &str) -> Result<Option<&str>, ApiError> {
        let Some(s) = self.opt_text(member, 1, 63)? else {
            return Ok(None);
        };
        if !NAME.is_match(s) {
            return Err(constraint(
                member,
                s,
                r"Member must satisfy regular expression pattern: ^[a-zA-Z0-9][a-zA-Z0-9\-_]*",
            ));
        }
        Ok(Some(s))
    }

    /// A required Personalize ARN; malformed → InvalidInput (a well-formed unknown one is the caller's NF).
    pub fn arn(&self, member: &str) -> Result<&str, ApiError> {
        self.opt_arn(member)?.ok_or_else(|| missing(member))
    }

    pub fn opt_arn(&self, member: &str) -> Result<Option<&str>, ApiError> {
        let Some(s) = self.opt_text(member, 0, 256)? else {
            return Ok(None);
        };
        check_arn(member, s)?;
        Ok(Some(s))
    }

    pub fn opt_role_arn(&self, member: &str) -> Result<Option<&str>, ApiError> {
        self.opt_pattern(
            member,
            256,
            &ROLE_ARN,
            "arn:([a-z\\d-]+):iam::\\d{12}:role/?[a-zA-Z_0-9+=,.@\\-_/]+",
        )
    }

    pub fn role_arn(&self, member: &str) -> Result<&str, ApiError> {
        self.opt_role_arn(member)?.ok_or_else(|| missing(member))
    }

    pub fn opt_kms_arn(&self, member: &str) -> Result<Option<&str>, ApiError> {
        self.opt_pattern(member, 2048, &KMS_ARN, "arn:aws.*:kms:.*:[0-9]{12}:key/.*")
    }

    fn opt_pattern(
        &self,
        member: &str,
        max: usize,
        pattern: &Regex,
        shown: &str,
    ) -> Result<Option<&str>, ApiError> {
        let Some(s) = self.opt_text(member, 0, max)? else {
            return Ok(None);
        };
        if !pattern.is_match(s) {
            return Err(constraint(
                member,
                s,
                &format!("Member must satisfy regular expression pattern: {shown}"),
            ));
        }
        Ok(Some(s))
    }

    /// One of `allowed`, compared exactly.
    pub fn opt_enum(&self, member: &str, allowed: &[&str]) -> Result<Option<&str>, ApiError> {
        let Some(s) = self.opt_str(member)? else {
            return Ok(None);
        };
        if !allowed.contains(&s) {
            return Err(constraint(
                member,
                s,
                &format!("Member must satisfy enum value set: [{}]", allowed.join(", ")),
            ));
        }
        Ok(Some(s))
    }

    pub fn opt_bool(&self, member: &str) -> Result<Option<bool>, ApiError> {
        match self.raw(member) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(type_error(member, "a boolean", other)),
        }
    }

    /// An optional integer within `min..=max`.
    pub fn opt_int(&self, member: &str, min: i64, max: i64) -> Result<Option<i64>, ApiError> {
        match self.raw(member) {
            None => Ok(None),
            Some(v @ Value::Number(n)) => {
                let i = n.as_i64().ok_or_else(|| type_error(member, "an integer", v))?;
                if i < min || i > max {
                    let rule = if i < min {
                        format!("Member must have value greater than or equal to {min}")
                    } else {
                        format!("Member must have value less than or equal to {max}")
                    };
                    return Err(constraint(member, &i.to_string(), &rule));
                }
                Ok(Some(i))
            }
            Some(other) => Err(type_error(member, "an integer", other)),
        }
    }

    pub fn opt_f64(&self, member: &str) -> Result<Option<f64>, ApiError> {
        match self.raw(member) {
            None => Ok(None),
            Some(v @ Value::Number(n)) => n
                .as_f64()
                .filter(|f| f.is_finite())
                .map(Some)
                .ok_or_else(|| type_error(member, "a finite number", v)),
            Some(other) => Err(type_error(member, "a number", other)),
        }
    }

    pub fn opt_object(&self, member: &str) -> Result<Option<Input>, ApiError> {
        match self.raw(member) {
            None => Ok(None),
            Some(Value::Object(m)) => Ok(Some(Input::from_map(m.clone()))),
            Some(other) => Err(type_error(member, "an object", other)),
        }
    }

    pub fn object(&self, member: &str) -> Result<Input, ApiError> {
        self.opt_object(member)?.ok_or_else(|| missing(member))
    }

    pub fn opt_list(&self, member: &str) -> Result<Option<&Vec<Value>>, ApiError> {
        match self.raw(member) {
            None => Ok(None),
            Some(Value::Array(items)) => Ok(Some(items)),
            Some(other) => Err(type_error(member, "a list", other)),
        }
    }

    /// A list of strings with `min..=max` entries, each 1..`item_max` characters.
    pub fn opt_string_list(
        &self,
        member: &str,
        min: usize,
        max: usize,
        item_max: usize,
    ) -> Result<Option<Vec<String>>, ApiError> {
        let Some(items) = self.opt_list(member)? else {
            return Ok(None);
        };
        check_count(member, items.len(), min, max)?;
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let path = format!("{member}.{}", i + 1);
            match item {
                Value::String(s) => {
                    check_length(&path, s, 1, item_max)?;
                    out.push(s.clone());
                }
                other => return Err(type_error(&path, "a string", other)),
            }
        }
        Ok(Some(out))
    }

    /// The member as the JSON value it was sent as (configs the emulator stores and echoes back).
    pub fn opt_value(&self, member: &str) -> Option<Value> {
        self.raw(member).cloned()
    }

    /// `tags` of a Create call: at most 200 in the model; more than 50 is TooManyTags.
    pub fn tags(&self, member: &str) -> Result<Vec<Tag>, ApiError> {
        let Some(items) = self.opt_list(member)? else {
            return Ok(Vec::new());
        };
        check_count(member, items.len(), 0, 200)?;
        let mut tags: Vec<Tag> = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let path = format!("{member}.{}", i + 1);
            let Value::Object(m) = item else {
                return Err(type_error(&path, "an object", item));
            };
            let tag = Input::from_map(m.clone());
            let key = tag.text("tagKey", 1, 128).map_err(|e| prefix(&path, e))?;
            let value = tag.text("tagValue", 0, 256).map_err(|e| prefix(&path, e))?;
            check_tag_text(&format!("{path}.tagKey"), key)?;
            check_tag_text(&format!("{path}.tagValue"), value)?;
            if let Some(existing) = tags.iter_mut().find(|t| t.key == key) {
                existing.value = value.to_string();
            } else {
                tags.push(Tag {
                    key: key.to_string(),
                    value: value.to_string(),
                });
            }
        }
        if tags.len() > MAX_TAGS_PER_RESOURCE {
            return Err(ApiError::new(
                ErrorCode::TooManyTags,
                format!(
                    "{} tags given; a resource can have at most {MAX_TAGS_PER_RESOURCE}",
                    tags.len()
                ),
            ));
        }
        Ok(tags)
    }

    /// `maxResults` of a List call: 1..100, default 100.
    pub fn max_results(&self) -> Result<usize, ApiError> {
        let n = self.opt_int("maxResults", 1, 100)?.unwrap_or(100);
        usize::try_from(n).map_err(|_| ApiError::invalid("maxResults is out of range"))
    }

    /// `nextToken`: at most 1500 ASCII characters (decoding is the pagination module's job).
    pub fn next_token(&self) -> Result<Option<&str>, ApiError> {
        let Some(token) = self.opt_text("nextToken", 0, 1500)? else {
            return Ok(None);
        };
        if !token.is_ascii() {
            return Err(ApiError::new(
                ErrorCode::InvalidNextToken,
                "The next token is not valid",
            ));
        }
        Ok(Some(token))
    }
}

/// Prefixes a member error with the path of its enclosing structure.
fn prefix(path: &str, e: ApiError) -> ApiError {
    ApiError::new(e.code, format!("{path}: {}", e.message))
}

pub fn check_length(member: &str, s: &str, min: usize, max: usize) -> Result<(), ApiError> {
    let len = s.chars().count();
    if len < min {
        return Err(constraint(
            member,
            s,
            &format!("Member must have length greater than or equal to {min}"),
        ));
    }
    if len > max {
        return Err(constraint(
            member,
            s,
            &format!("Member must have length less than or equal to {max}"),
        ));
    }
    Ok(())
}

pub fn check_count(member: &str, n: usize, min: usize, max: usize) -> Result<(), ApiError> {
    if n < min || n > max {
        return Err(ApiError::invalid(format!(
            "'{member}' has {n} entries; it must have between {min} and {max}"
        )));
    }
    Ok(())
}

/// A Personalize ARN: at most 256 characters matching `arn:([a-z\d-]+):personalize:.*:.*:.+`.
pub fn check_arn(member: &str, s: &str) -> Result<(), ApiError> {
    check_length(member, s, 0, 256)?;
    if !ARN.is_match(s) {
        return Err(constraint(
            member,
            s,
            r"Member must satisfy regular expression pattern: arn:([a-z\d-]+):personalize:.*:.*:.+",
        ));
    }
    Ok(())
}

/// An `S3Location` (`dataLocation`, `path`): at most 256 characters, `s3://`, `http://` or `https://`.
pub fn check_s3_location(member: &str, s: &str) -> Result<(), ApiError> {
    check_length(member, s, 0, 256)?;
    if !S3_LOCATION.is_match(s) {
        return Err(constraint(
            member,
            s,
            "Member must satisfy regular expression pattern: (s3|http|https)://.+",
        ));
    }
    Ok(())
}

fn check_tag_text(member: &str, s: &str) -> Result<(), ApiError> {
    if !TAG_TEXT.is_match(s) {
        return Err(constraint(
            member,
            s,
            r"Member must satisfy regular expression pattern: ^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$",
        ));
    }
    if member.ends_with("tagKey") && s.to_ascii_lowercase().starts_with("aws:") {
        return Err(ApiError::invalid(format!(
            "{member}: tag keys starting with aws: are reserved for AWS use"
        )));
    }
    Ok(())
}

/// Checks one tag key given to UntagResource.
pub fn check_tag_key(member: &str, key: &str) -> Result<(), ApiError> {
    check_length(member, key, 1, 128)?;
    check_tag_text(member, key)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn input(v: Value) -> Input {
        Input::from_body(v.to_string().as_bytes()).expect("object")
    }

    #[test]
    fn bodies_must_be_objects() {
        assert!(Input::from_body(b"").is_ok());
        assert!(Input::from_body(b"  ").is_ok());
        assert_eq!(
            Input::from_body(b"[1]").unwrap_err().code,
            ErrorCode::InvalidInput
        );
        assert_eq!(
            Input::from_body(b"{\"a\":").unwrap_err().code,
            ErrorCode::InvalidInput
        );
        assert_eq!(
            Input::from_body(&[0xff, 0xfe]).unwrap_err().code,
            ErrorCode::InvalidInput
        );
    }

    #[test]
    fn names_follow_the_model_pattern() {
        assert_eq!(input(json!({"name": "a-b_1"})).name("name").expect("ok"), "a-b_1");
        for bad in ["", "-a", "a b", "ä", &"x".repeat(64)] {
            assert!(input(json!({ "name": bad })).name("name").is_err(), "{bad:?}");
        }
        let e = input(json!({})).name("name").unwrap_err();
        assert!(e.message.contains("Value null at 'name'"), "{}", e.message);
        let e = input(json!({"name": 5})).name("name").unwrap_err();
        assert!(e.message.contains("must be a string"), "{}", e.message);
    }

    #[test]
    fn arns_and_roles_are_checked() {
        let ok = "arn:aws:personalize:us-east-1:000000000000:dataset-group/x";
        assert!(input(json!({ "a": ok })).arn("a").is_ok());
        assert!(input(json!({"a": "arn:aws:s3:::b"})).arn("a").is_err());
        assert!(
            input(json!({"r": "arn:aws:iam::123456789012:role/p"}))
                .opt_role_arn("r")
                .is_ok()
        );
        assert!(
            input(json!({"r": "arn:aws:iam::12:role/p"}))
                .opt_role_arn("r")
                .is_err()
        );
        assert!(check_s3_location("p", "s3://b/k").is_ok());
        assert!(check_s3_location("p", "/tmp/x").is_err());
    }

    #[test]
    fn integers_are_range_checked() {
        assert_eq!(input(json!({"maxResults": 5})).max_results().expect("ok"), 5);
        assert_eq!(input(json!({})).max_results().expect("default"), 100);
        for bad in [json!(0), json!(101), json!(1.5), json!("3")] {
            assert!(input(json!({ "maxResults": bad })).max_results().is_err());
        }
    }

    #[test]
    fn tags_are_validated_and_counted() {
        let ok = input(
            json!({"tags": [{"tagKey": "env", "tagValue": "dev"}, {"tagKey": "env", "tagValue": "prod"}]}),
        );
        assert_eq!(
            ok.tags("tags").expect("ok"),
            vec![Tag {
                key: "env".into(),
                value: "prod".into()
            }]
        );
        let many: Vec<Value> = (0..51)
            .map(|i| json!({"tagKey": format!("k{i}"), "tagValue": ""}))
            .collect();
        assert_eq!(
            input(json!({ "tags": many })).tags("tags").unwrap_err().code,
            ErrorCode::TooManyTags
        );
        assert!(
            input(json!({"tags": [{"tagKey": "", "tagValue": "v"}]}))
                .tags("tags")
                .is_err()
        );
        assert!(
            input(json!({"tags": [{"tagKey": "a", "tagValue": "v!"}]}))
                .tags("tags")
                .is_err()
        );
        assert!(
            input(json!({"tags": [{"tagKey": "aws:x", "tagValue": "v"}]}))
                .tags("tags")
                .is_err()
        );
        assert!(input(json!({"tags": [{"tagKey": "a"}]})).tags("tags").is_err());
        assert!(input(json!({"tags": "a"})).tags("tags").is_err());
    }
}
