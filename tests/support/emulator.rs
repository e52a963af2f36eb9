//! The built-in Personalize in tests: starting it, SDK clients pointed at it, raw HTTP.

use std::net::SocketAddr;
use std::sync::Arc;

use aws_sdk_personalize::config::retry::RetryConfig;
use aws_sdk_personalize::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_personalize::error::ProvideErrorMetadata;
use personalize_ops::emulator::{self, Emulator, EmulatorConfig};
use personalize_ops::objects::ObjectStore;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The three SDK clients, pointed at one emulator.
pub struct Clients {
    pub control: aws_sdk_personalize::Client,
    pub runtime: aws_sdk_personalizeruntime::Client,
    pub events: aws_sdk_personalizeevents::Client,
}

fn credentials() -> Credentials {
    Credentials::new("AKIDTEST", "secret", None, None, "emulator-tests")
}

/// Clients for `region`, with retries off (so every error surfaces at once) unless `retries`.
pub fn clients_in(emu: &Emulator, region: &str, retries: bool) -> Clients {
    let retry = if retries {
        // Standard mode, 3 attempts, with a tiny backoff so retry tests stay quick.
        RetryConfig::standard()
            .with_max_attempts(3)
            .with_initial_backoff(std::time::Duration::from_millis(1))
    } else {
        RetryConfig::disabled()
    };
    let control = aws_sdk_personalize::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(emu.url())
        .region(Region::new(region.to_string()))
        .credentials_provider(credentials())
        .retry_config(retry.clone())
        .build();
    let runtime = aws_sdk_personalizeruntime::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(emu.url())
        .region(aws_sdk_personalizeruntime::config::Region::new(
            region.to_string(),
        ))
        .credentials_provider(credentials())
        .retry_config(retry.clone())
        .build();
    let events = aws_sdk_personalizeevents::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(emu.url())
        .region(aws_sdk_personalizeevents::config::Region::new(region.to_string()))
        .credentials_provider(credentials())
        .retry_config(retry)
        .build();
    Clients {
        control: aws_sdk_personalize::Client::from_conf(control),
        runtime: aws_sdk_personalizeruntime::Client::from_conf(runtime),
        events: aws_sdk_personalizeevents::Client::from_conf(events),
    }
}

pub fn clients(emu: &Emulator) -> Clients {
    clients_in(emu, "us-east-1", false)
}

/// A control-plane client of the built-in Personalize at `url`, without SDK retries: every answer
/// the test sees is one the emulator gave.
pub fn personalize_at(url: &str) -> aws_sdk_personalize::Client {
    let conf = aws_sdk_personalize::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(url)
        .region(Region::new("us-east-1"))
        .credentials_provider(credentials())
        .retry_config(RetryConfig::disabled())
        .build();
    aws_sdk_personalize::Client::from_conf(conf)
}

/// The names of the dataset groups `client` lists (one page of 100), sorted.
pub async fn group_names(client: &aws_sdk_personalize::Client) -> Vec<String> {
    let call = client.list_dataset_groups().max_results(100).send();
    let listed = tokio::time::timeout(super::wait::PATIENCE, call)
        .await
        .expect("answers")
        .expect("ListDatasetGroups");
    sorted(listed.dataset_groups().iter().map(|g| g.name()))
}

/// The names of the schemas `client` lists (one page of 100), sorted.
pub async fn schema_names(client: &aws_sdk_personalize::Client) -> Vec<String> {
    let call = client.list_schemas().max_results(100).send();
    let listed = tokio::time::timeout(super::wait::PATIENCE, call)
        .await
        .expect("answers")
        .expect("ListSchemas");
    sorted(listed.schemas().iter().map(|s| s.name()))
}

fn sorted<'a>(names: impl Iterator<Item = Option<&'a str>>) -> Vec<String> {
    let mut names: Vec<String> = names.flatten().map(str::to_string).collect();
    names.sort();
    names
}

/// `count` seeds from the clock, each printed before it is used, or only the one in the environment
/// variable `var` when it is set (replaying a red run).
pub fn seeds(var: &str, case: &str, count: u64) -> Vec<u64> {
    if let Some(seed) = std::env::var(var).ok().and_then(|s| s.parse().ok()) {
        println!("{case}: replaying seed {seed}");
        return vec![seed];
    }
    let base = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let seeds: Vec<u64> = (0..count).map(|i| base.wrapping_add(i * 7919)).collect();
    println!("{case}: seeds {seeds:?} (replay one with {var}=<seed>)");
    seeds
}

/// Starts an emulator with `config` adjusted by `tweak`.
pub async fn start_with(objects: Arc<dyn ObjectStore>, tweak: impl FnOnce(&mut EmulatorConfig)) -> Emulator {
    let mut config = EmulatorConfig::new(objects);
    tweak(&mut config);
    emulator::start(config).await.expect("the emulator starts")
}

/// The error code of a failed SDK call (panics on success: the test expected an error).
pub fn code<T: std::fmt::Debug, E: ProvideErrorMetadata + std::fmt::Debug>(result: Result<T, E>) -> String {
    match result {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => e
            .code()
            .unwrap_or_else(|| panic!("the error has no code: {e:?}"))
            .to_string(),
    }
}

/// The error message of a failed SDK call.
pub fn message<T: std::fmt::Debug, E: ProvideErrorMetadata + std::fmt::Debug>(
    result: Result<T, E>,
) -> String {
    match result {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => e.message().unwrap_or_default().to_string(),
    }
}

/// A raw HTTP exchange, for what the SDKs never send (bad bodies, unknown targets, the admin API).
pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// Sends one HTTP/1.1 request and reads the whole answer (the connection is closed after it).
pub async fn raw(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> RawResponse {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connects");
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.expect("writes the head");
    stream.write_all(body).await.expect("writes the body");
    let mut bytes = Vec::new();
    stream.read_to_end(&mut bytes).await.expect("reads the answer");
    let text = String::from_utf8_lossy(&bytes).to_string();
    let (head, body) = text.split_once("\r\n\r\n").expect("a full HTTP answer");
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    RawResponse {
        status,
        headers,
        body: body.to_string(),
    }
}

/// A control-plane call over raw HTTP.
pub async fn raw_control(addr: SocketAddr, op: &str, body: &str) -> RawResponse {
    let target = format!("AmazonPersonalize.{op}");
    raw(
        addr,
        "POST",
        "/",
        &[
            ("X-Amz-Target", &target),
            ("Content-Type", "application/x-amz-json-1.1"),
        ],
        body.as_bytes(),
    )
    .await
}

/// A schema text for the interactions CSV of the fixtures.
pub const INTERACTIONS_SCHEMA: &str = r#"{"type":"record","name":"Interactions","namespace":"com.amazonaws.personalize.schema","fields":[{"name":"ITEM_ID","type":"string"},{"name":"USER_ID","type":"string"},{"name":"TIMESTAMP","type":"long"},{"name":"EVENT_TYPE","type":"string"},{"name":"EVENT_VALUE","type":"float"}],"version":"1.0"}"#;

/// A schema text for the users CSV of the fixtures.
pub const USERS_SCHEMA: &str = r#"{"type":"record","name":"Users","namespace":"com.amazonaws.personalize.schema","fields":[{"name":"USER_ID","type":"string"},{"name":"AGE","type":"int"},{"name":"GENDER","type":"string","categorical":true}],"version":"1.0"}"#;
