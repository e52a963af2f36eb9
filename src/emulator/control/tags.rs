//! TagResource, UntagResource, ListTagsForResource: on any resource of the account.

use serde_json::{Value, json};

use super::Cx;
use crate::emulator::error::{ApiError, ErrorCode};
use crate::emulator::input::{Input, MAX_TAGS_PER_RESOURCE, check_count, check_tag_key};
use crate::emulator::state::Meta;

/// The resource's metadata; NF when unknown, IU while it is being deleted.
fn taggable<'s>(cx: &'s mut Cx, input: &Input) -> Result<&'s mut Meta, ApiError> {
    let arn = input.arn("resourceArn")?;
    let now = cx.now;
    let meta = cx
        .state
        .meta_mut(arn, now)
        .ok_or_else(|| ApiError::not_found("resource", arn))?;
    let status = meta.status(now);
    if status.is_deleting() {
        return Err(ApiError::in_use(format!(
            "The resource {arn} is being deleted (status {})",
            status.as_str()
        )));
    }
    Ok(meta)
}

pub fn tag(cx: &mut Cx, input: &Input) -> Result<Value, ApiError> {
    if input.raw("tags").is_none() {
        return Err(crate::emulator::error::missing("tags"));
    }
    let tags = input.tags("tags")?;
    let meta = taggable(cx, input)?;
    let mut merged = meta.tags.clone();
    for t in tags {
        match merged.iter_mut().find(|m| m.key == t.key) {
            Some(existing) => existing.value = t.value,
            None => merged.push(t),
        }
    }
    if merged.len() > MAX_TAGS_PER_RESOURCE {
        return Err(ApiError::new(
            ErrorCode::TooManyTags,
            format!(
                "The resource {} would have {} tags; at most {MAX_TAGS_PER_RESOURCE} are allowed",
                meta.arn,
                merged.len()
            ),
        ));
    }
    meta.tags = merged;
    cx.changed = true;
    Ok(json!({}))
}

pub fn untag(cx: &mut Cx, input: &Input) -> Result<Value, ApiError> {
    let keys = input
        .opt_list("tagKeys")?
        .ok_or_else(|| crate::emulator::error::missing("tagKeys"))?;
    check_count("tagKeys", keys.len(), 0, 200)?;
    if keys.len() > MAX_TAGS_PER_RESOURCE {
        return Err(ApiError::new(
            ErrorCode::TooManyTagKeys,
            format!(
                "{} tag keys given; a resource has at most {MAX_TAGS_PER_RESOURCE}",
                keys.len()
            ),
        ));
    }
    let mut names = Vec::with_capacity(keys.len());
    for (i, key) in keys.iter().enumerate() {
        let member = format!("tagKeys.{}", i + 1);
        let Value::String(key) = key else {
            return Err(ApiError::invalid(format!("'{member}' must be a string")));
        };
        check_tag_key(&member, key)?;
        names.push(key.clone());
    }
    let meta = taggable(cx, input)?;
    meta.tags.retain(|t| !names.contains(&t.key));
    cx.changed = true;
    Ok(json!({}))
}

pub fn list(cx: &mut Cx, input: &Input) -> Result<Value, ApiError> {
    let meta = taggable(cx, input)?;
    Ok(json!({ "tags": meta.tags }))
}
