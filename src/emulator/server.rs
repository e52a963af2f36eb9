//! The HTTP front: one port for the control plane, the runtime, the events API and the admin API.
//!
//! Routing follows docs/personalize.md#wire-protocol: an `X-Amz-Target: AmazonPersonalize.<Op>`
//! header means the control plane (awsJson1_1); otherwise the path picks the runtime or events
//! operation (restJson1).
//! The three services share one signing name, so nothing else can tell them apart.

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::response::Response;
use http::header::{CONTENT_TYPE, HeaderMap, HeaderValue};
use http::{Method, StatusCode};
use serde_json::Value;

use super::admin;
use super::control;
use super::control::Cx;
use super::data::Data;
use super::error::{ApiError, ErrorCode};
use super::input::Input;
use super::runtime;
use super::shared::{Shared, World};
use super::work;

/// The largest request body accepted. PutItems carries at most 10 × 32,000 characters of properties;
/// this leaves room for JSON escaping while bounding memory per request.
pub const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;

/// The wire protocol of the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// awsJson1_1: every error is HTTP 400.
    Json11,
    /// restJson1: ResourceNotFound is 404, ResourceInUse 409.
    Rest,
}

impl Protocol {
    fn content_type(self) -> &'static str {
        match self {
            Self::Json11 => "application/x-amz-json-1.1",
            Self::Rest => "application/json",
        }
    }
}

/// Where a request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Route {
    Control(String),
    Runtime(&'static str),
    Events(&'static str),
    Admin(String),
    /// Not an operation of this emulator; the message says why.
    Unknown(Protocol, String),
}

fn route(method: &Method, path: &str, headers: &HeaderMap) -> Route {
    if let Some(target) = headers.get("x-amz-target") {
        let target = target.to_str().unwrap_or_default();
        return match target.strip_prefix("AmazonPersonalize.") {
            Some(op) if control::OPERATIONS.contains(&op) => Route::Control(op.to_string()),
            Some(op) => Route::Unknown(
                Protocol::Json11,
                format!("Operation {op} is not supported by the built-in Personalize"),
            ),
            None => Route::Unknown(
                Protocol::Json11,
                format!("X-Amz-Target {target:?} is not an Amazon Personalize operation"),
            ),
        };
    }
    if let Some(rest) = path.strip_prefix("/_emulator/") {
        return Route::Admin(rest.to_string());
    }
    let op = match path {
        "/recommendations" => Route::Runtime("GetRecommendations"),
        "/personalize-ranking" => Route::Runtime("GetPersonalizedRanking"),
        "/events" => Route::Events("PutEvents"),
        "/items" => Route::Events("PutItems"),
        "/users" => Route::Events("PutUsers"),
        "/action-recommendations" | "/actions" | "/action-interactions" => {
            return Route::Unknown(
                Protocol::Rest,
                format!("{path} (actions) is not supported by the built-in Personalize"),
            );
        }
        "/" => {
            return Route::Unknown(
                Protocol::Json11,
                "Missing X-Amz-Target header: control-plane calls name their operation in it".into(),
            );
        }
        other => return Route::Unknown(Protocol::Rest, format!("No operation at {method} {other}")),
    };
    if method != Method::POST {
        return Route::Unknown(Protocol::Rest, format!("{path} accepts POST only, not {method}"));
    }
    op
}

/// The region of the request's SigV4 credential scope
/// (`Credential=AKID/20250101/<region>/personalize/aws4_request`), if it has one.
pub fn region_of(headers: &HeaderMap) -> Option<String> {
    let auth = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let credential = auth.split("Credential=").nth(1)?;
    let scope = credential.split([',', ' ']).next()?;
    let region = scope.split('/').nth(2)?;
    let valid = !region.is_empty()
        && region.len() <= 32
        && region
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    valid.then(|| region.to_string())
}

/// A successful JSON answer.
pub fn ok(protocol: Protocol, body: &Value, request_id: &str) -> Response {
    respond(StatusCode::OK, protocol, body.to_string(), request_id, None)
}

/// An error answer: `x-amzn-ErrorType` plus `{"__type", "message"}`
/// (docs/personalize.md#errors-as-the-rust-sdk-parses-them).
pub fn error(protocol: Protocol, e: &ApiError, request_id: &str) -> Response {
    let status = match protocol {
        Protocol::Json11 if !e.code.is_server_fault() => StatusCode::BAD_REQUEST,
        _ => StatusCode::from_u16(e.code.rest_status()).unwrap_or(StatusCode::BAD_REQUEST),
    };
    let body = serde_json::json!({ "__type": e.code.as_str(), "message": e.message });
    respond(status, protocol, body.to_string(), request_id, Some(e.code))
}

fn respond(
    status: StatusCode,
    protocol: Protocol,
    body: String,
    request_id: &str,
    code: Option<ErrorCode>,
) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(protocol.content_type()));
    if let Ok(id) = HeaderValue::from_str(request_id) {
        headers.insert("x-amzn-requestid", id);
    }
    if let Some(code) = code {
        headers.insert("x-amzn-errortype", HeaderValue::from_static(code.as_str()));
    }
    response
}

pub fn router(shared: Arc<Shared>) -> Router {
    Router::new().fallback(handle).with_state(shared)
}

async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    let (parts, body) = request.into_parts();
    let route = route(&parts.method, parts.uri.path(), &parts.headers);
    let protocol = match &route {
        Route::Control(_) => Protocol::Json11,
        Route::Unknown(p, _) => *p,
        _ => Protocol::Rest,
    };
    let body = match to_bytes(body, MAX_BODY_BYTES).await {
        Ok(b) => b,
        Err(_) => {
            let e = ApiError::invalid(format!(
                "The request body is larger than {MAX_BODY_BYTES} bytes or could not be read"
            ));
            return error(protocol, &e, &request_id);
        }
    };
    let (op, control_plane) = match &route {
        Route::Admin(path) => {
            return admin::handle(&shared, &parts.method, path, &parts.headers, &body).await;
        }
        Route::Unknown(_, message) => {
            return error(
                protocol,
                &ApiError::new(ErrorCode::UnknownOperation, message.clone()),
                &request_id,
            );
        }
        Route::Control(op) => (op.as_str(), true),
        Route::Runtime(op) | Route::Events(op) => (*op, false),
    };
    let verdict = shared.faults().admit(op, control_plane);
    if !verdict.latency.is_zero() {
        tokio::time::sleep(verdict.latency).await;
    }
    if let Some(e) = verdict.error {
        return error(protocol, &e, &request_id);
    }
    let region = region_of(&parts.headers);
    let result = match Input::from_body(&body) {
        Err(e) => Err(e),
        Ok(input) => match &route {
            Route::Control(op) => with_cx(&shared, region, |cx, _data| control::call(cx, op, &input)).await,
            _ => with_cx(&shared, region, |cx, data| runtime::call(cx, data, op, &input)).await,
        },
    };
    match result {
        Ok(value) => ok(protocol, &value, &request_id),
        Err(e) => error(protocol, &e, &request_id),
    }
}

/// Runs `op` on the settled world. When `op` changed anything, the answer waits until the change
/// is saved (with a state directory): a client that got an answer never loses what it was told,
/// even to a kill -9 right after. A change that cannot be saved is undone and answered
/// `ServiceUnavailable`. The work `op` queued starts once its change is saved; the lock is
/// released before any work starts or any file is written.
async fn with_cx<T>(
    shared: &Arc<Shared>,
    region: Option<String>,
    op: impl FnOnce(&mut Cx, &mut Data) -> Result<T, ApiError>,
) -> Result<T, ApiError> {
    let failures = shared.faults().failures().clone();
    let now = shared.clock.now();
    let (result, jobs, change) = {
        let mut world = shared.world.lock().await;
        world.settle(now);
        let World { state, data, .. } = &mut *world;
        let mut cx = Cx {
            state,
            now,
            scope: shared.scope(region),
            durations: &shared.durations,
            quotas: &shared.quotas,
            failures: &failures,
            jobs: Vec::new(),
            changed: false,
        };
        let result = op(&mut cx, data);
        let (jobs, changed) = (cx.jobs, cx.changed);
        if changed {
            world.changes += 1;
        }
        (result, jobs, changed.then_some(world.changes))
    };
    if let Some(change) = change
        && let Err(e) = super::commit::commit(shared, Some(change)).await
    {
        return Err(ApiError::new(
            ErrorCode::ServiceUnavailable,
            format!("The change could not be saved, so it was not made: {e}"),
        ));
    }
    for job in jobs {
        work::spawn(shared, job);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).expect("ascii"));
        }
        h
    }

    #[test]
    fn routes_on_the_target_header_first() {
        let control = headers(&[("x-amz-target", "AmazonPersonalize.CreateDatasetGroup")]);
        assert_eq!(
            route(&Method::POST, "/", &control),
            Route::Control("CreateDatasetGroup".into())
        );
        // The header wins even on a runtime path.
        assert_eq!(
            route(&Method::POST, "/recommendations", &control),
            Route::Control("CreateDatasetGroup".into())
        );
        let none = HeaderMap::new();
        assert_eq!(
            route(&Method::POST, "/recommendations", &none),
            Route::Runtime("GetRecommendations")
        );
        assert_eq!(route(&Method::POST, "/users", &none), Route::Events("PutUsers"));
        assert_eq!(
            route(&Method::GET, "/_emulator/calls", &none),
            Route::Admin("calls".into())
        );
        assert!(matches!(
            route(&Method::GET, "/events", &none),
            Route::Unknown(Protocol::Rest, _)
        ));
        assert!(matches!(
            route(&Method::POST, "/", &none),
            Route::Unknown(Protocol::Json11, _)
        ));
        let bogus = headers(&[("x-amz-target", "AmazonPersonalize.LaunchRocket")]);
        assert!(matches!(
            route(&Method::POST, "/", &bogus),
            Route::Unknown(Protocol::Json11, _)
        ));
        let other = headers(&[("x-amz-target", "DynamoDB_20120810.GetItem")]);
        assert!(matches!(
            route(&Method::POST, "/", &other),
            Route::Unknown(Protocol::Json11, _)
        ));
    }

    #[test]
    fn reads_the_region_from_the_credential_scope() {
        let h = headers(&[(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=AKID/20250101/eu-west-1/personalize/aws4_request, SignedHeaders=host, Signature=abc",
        )]);
        assert_eq!(region_of(&h).as_deref(), Some("eu-west-1"));
        assert_eq!(region_of(&HeaderMap::new()), None);
        let bad = headers(&[("authorization", "AWS4-HMAC-SHA256 Credential=AKID/x/EU WEST/p")]);
        assert_eq!(region_of(&bad), None);
        let short = headers(&[("authorization", "Bearer token")]);
        assert_eq!(region_of(&short), None);
    }
}
