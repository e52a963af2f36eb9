//! The admin API under `/_emulator/`: faults, call counts, reset, the clock. Not part of Personalize;
//! admin calls are neither counted nor faulted.
//!
//! | method and path | does |
//! |---|---|
//! | `GET /_emulator/health` | `{"status":"ok"}`, or 503 `{"status":"degraded","saveError":…}` when the latest save of the state failed |
//! | `GET /_emulator/faults` | the fault spec in force (JSON form) |
//! | `PUT /_emulator/faults` | replaces it: a JSON body, or the text form with `Content-Type: text/plain` |
//! | `GET /_emulator/calls` | `{"calls":{op:n},"throttled":{op:n},"limited":{op:n}}` |
//! | `POST /_emulator/reset` | forgets every resource, its data and the call counts (faults stay) |
//! | `GET /_emulator/clock` | `{"now": epoch seconds, "offsetSeconds": …}` |
//! | `POST /_emulator/clock` | `{"advanceSeconds": N}` moves the emulator clock forward and saves the state (500 naming the file when the save fails) |

use std::sync::Arc;

use axum::body::Body;
use axum::response::Response;
use http::header::{CONTENT_TYPE, HeaderMap, HeaderValue};
use http::{Method, StatusCode};
use serde_json::{Value, json};

use super::faults::FaultSpec;
use super::shared::Shared;

fn reply(status: StatusCode, body: &Value) -> Response {
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn bad_request(message: impl Into<String>) -> Response {
    reply(StatusCode::BAD_REQUEST, &json!({ "message": message.into() }))
}

/// Serves one admin request.
pub async fn handle(
    shared: &Arc<Shared>,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    match (method.as_str(), path) {
        ("GET", "health") => match shared.save_error_text() {
            None => reply(StatusCode::OK, &json!({ "status": "ok" })),
            Some(e) => reply(
                StatusCode::SERVICE_UNAVAILABLE,
                &json!({ "status": "degraded", "saveError": e }),
            ),
        },
        ("GET", "faults") => reply(StatusCode::OK, &json!(shared.faults().spec())),
        ("PUT", "faults") => {
            let is_text = headers
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("text/plain"));
            let spec = if is_text {
                std::str::from_utf8(body)
                    .map_err(|e| e.to_string())
                    .and_then(|text| FaultSpec::parse(text).map_err(|e| e.to_string()))
            } else {
                serde_json::from_slice::<FaultSpec>(body).map_err(|e| format!("not a fault spec: {e}"))
            };
            match spec.and_then(|s| shared.faults().replace(s).map_err(|e| e.to_string())) {
                Ok(()) => reply(StatusCode::OK, &json!(shared.faults().spec())),
                Err(e) => bad_request(e),
            }
        }
        ("GET", "calls") => reply(StatusCode::OK, &json!(shared.faults().counts)),
        ("POST", "reset") => {
            reset(shared).await;
            reply(StatusCode::OK, &json!({}))
        }
        ("GET", "clock") => reply(StatusCode::OK, &clock(shared)),
        ("POST", "clock") => {
            let advance = serde_json::from_slice::<Value>(body)
                .ok()
                .and_then(|v| v.get("advanceSeconds").and_then(Value::as_f64))
                .filter(|s| s.is_finite() && *s >= 0.0);
            match advance {
                Some(secs) => {
                    shared.clock.advance(secs);
                    match super::commit::save(shared).await {
                        Ok(()) => reply(StatusCode::OK, &clock(shared)),
                        Err(e) => reply(
                            StatusCode::INTERNAL_SERVER_ERROR,
                            &json!({ "message": format!("the clock moved but the state was not saved: {e}") }),
                        ),
                    }
                }
                None => bad_request("expected {\"advanceSeconds\": a number ≥ 0}"),
            }
        }
        _ => reply(
            StatusCode::NOT_FOUND,
            &json!({ "message": format!("No admin endpoint {method} /_emulator/{path}") }),
        ),
    }
}

fn clock(shared: &Shared) -> Value {
    json!({ "now": shared.clock.now(), "offsetSeconds": shared.clock.offset() })
}

/// Forgets all resources, data and call counts. Work in flight finds its resource gone and stops.
pub async fn reset(shared: &Arc<Shared>) {
    {
        let mut world = shared.world.lock().await;
        let world = &mut *world;
        world.state.clear();
        world.data.retain_for(&world.state);
    }
    shared.faults().counts = Default::default();
    shared.dirty.notify_one();
}
