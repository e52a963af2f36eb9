//! Fault injection for tests: throttling (at a rate, a TPS quota, or "the next N calls"), forced
//! `LimitExceededException`, `CREATE FAILED` by name pattern, added latency; and per-operation call
//! counts.
//!
//! The text form (`--faults`) is a `;`-separated list of entries:
//!
//! | entry | effect |
//! |---|---|
//! | `seed=N` | seeds the random generator behind `throttle=` (reproducible runs) |
//! | `throttle=P` | each API call is throttled with probability P (0..1) |
//! | `throttle-next=N` | the next N API calls are throttled, deterministically |
//! | `throttle-ops=Op1,Op2` | limits `throttle=` and `throttle-next=` to these operations |
//! | `tps=N` | control-plane calls beyond N per second are throttled (a token bucket of N) |
//! | `limit=Op1,Op2` | these operations always fail with `LimitExceededException` |
//! | `fail.KIND=REGEX` | resources of KIND (`dataset-group`, `solution-version`, …) whose name matches REGEX end in `CREATE FAILED` |
//! | `latency=MS` | every API call is delayed by MS milliseconds (`latency=50` or `latency=50ms`) |
//!
//! The JSON form (`GET`/`PUT /_emulator/faults`) has the same members in camelCase:
//! `{"seed":1,"throttleRate":0.5,"throttleNext":2,"throttleOps":["CreateCampaign"],"tps":5,
//! "limitExceeded":["CreateCampaign"],"fail":{"solution-version":"^bad"},"latencyMs":50}`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use regex::Regex;
use serde::{Deserialize, Serialize};

use super::arn::Kind;
use super::error::{ApiError, ErrorCode};

/// The fault settings, as given by `--faults` or `PUT /_emulator/faults`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct FaultSpec {
    /// Seed of the generator behind `throttle_rate`; random when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// Probability (0..1) that a call is throttled.
    pub throttle_rate: f64,
    /// How many of the next calls are throttled.
    pub throttle_next: u64,
    /// The operations the two throttle settings apply to; empty means all.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub throttle_ops: Vec<String>,
    /// Control-plane calls per second before ThrottlingException.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tps: Option<f64>,
    /// Operations that always fail with LimitExceededException.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub limit_exceeded: Vec<String>,
    /// Name patterns per resource kind whose creation ends in CREATE FAILED.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub fail: BTreeMap<Kind, String>,
    /// Added latency per call, in milliseconds.
    pub latency_ms: u64,
}

/// Why a fault spec is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FaultSpecError {
    #[error("fault entry {entry:?}: {reason}")]
    Entry { entry: String, reason: String },
    #[error("fault rule fail.{kind}: {pattern:?} is not a valid regular expression: {reason}")]
    Pattern {
        kind: Kind,
        pattern: String,
        reason: String,
    },
    #[error("fault setting {name}: {reason}")]
    Value { name: &'static str, reason: String },
}

fn entry_error(entry: &str, reason: impl Into<String>) -> FaultSpecError {
    FaultSpecError::Entry {
        entry: entry.to_string(),
        reason: reason.into(),
    }
}

fn list(value: &str) -> Vec<String> {
    value
        .split([',', '|'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

impl FaultSpec {
    /// Parses the text form (see the module documentation).
    ///
    /// # Errors
    /// An entry without `=`, an unknown key, a value of the wrong type or an invalid regex.
    pub fn parse(text: &str) -> Result<Self, FaultSpecError> {
        let mut spec = Self::default();
        for entry in text.split([';', '\n']).map(str::trim).filter(|e| !e.is_empty()) {
            let (key, value) = entry
                .split_once('=')
                .ok_or_else(|| entry_error(entry, "expected KEY=VALUE"))?;
            let (key, value) = (key.trim(), value.trim());
            let number = |what: &str| -> Result<f64, FaultSpecError> {
                value
                    .parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite() && *v >= 0.0)
                    .ok_or_else(|| entry_error(entry, format!("{value:?} is not {what}")))
            };
            let count = || -> Result<u64, FaultSpecError> {
                value
                    .parse::<u64>()
                    .map_err(|_| entry_error(entry, format!("{value:?} is not a whole number")))
            };
            match key {
                "seed" => spec.seed = Some(count()?),
                "throttle" => spec.throttle_rate = number("a probability")?,
                "throttle-next" => spec.throttle_next = count()?,
                "throttle-ops" => spec.throttle_ops = list(value),
                "tps" => spec.tps = Some(number("a rate")?),
                "limit" => spec.limit_exceeded = list(value),
                "latency" => {
                    let ms = value.strip_suffix("ms").unwrap_or(value).trim();
                    spec.latency_ms = ms.parse().map_err(|_| {
                        entry_error(entry, format!("{value:?} is not a number of milliseconds"))
                    })?;
                }
                other => {
                    let Some(kind) = other.strip_prefix("fail.") else {
                        return Err(entry_error(
                            entry,
                            "unknown key; expected seed, throttle, throttle-next, throttle-ops, tps, limit, fail.KIND or latency",
                        ));
                    };
                    let kind: Kind = kind.parse().map_err(|e: String| entry_error(entry, e))?;
                    spec.fail.insert(kind, value.to_string());
                }
            }
        }
        spec.check()?;
        Ok(spec)
    }

    /// Checks ranges and patterns (the JSON form is checked the same way).
    pub fn check(&self) -> Result<(), FaultSpecError> {
        if !(0.0..=1.0).contains(&self.throttle_rate) {
            return Err(FaultSpecError::Value {
                name: "throttleRate",
                reason: format!("{} is not between 0 and 1", self.throttle_rate),
            });
        }
        if let Some(tps) = self.tps
            && !(tps.is_finite() && tps > 0.0)
        {
            return Err(FaultSpecError::Value {
                name: "tps",
                reason: format!("{tps} is not a positive rate"),
            });
        }
        // Schemas exist at once and have no status, so a rule for them could never apply.
        if self.fail.contains_key(&Kind::Schema) {
            return Err(FaultSpecError::Value {
                name: "fail.schema",
                reason: "schemas have no status and cannot end in CREATE FAILED".into(),
            });
        }
        FailureRules::compile(&self.fail).map(|_| ())
    }
}

/// Compiled `fail.KIND=REGEX` rules.
#[derive(Debug, Clone, Default)]
pub struct FailureRules {
    rules: Vec<(Kind, Regex)>,
}

impl FailureRules {
    pub fn compile(patterns: &BTreeMap<Kind, String>) -> Result<Self, FaultSpecError> {
        let mut rules = Vec::with_capacity(patterns.len());
        for (kind, pattern) in patterns {
            let re = Regex::new(pattern).map_err(|e| FaultSpecError::Pattern {
                kind: *kind,
                pattern: pattern.clone(),
                reason: e.to_string(),
            })?;
            rules.push((*kind, re));
        }
        Ok(Self { rules })
    }

    /// The failure reason for a new resource of `kind` called by one of `names`, if a rule matches.
    pub fn failure_for(&self, kind: Kind, names: &[&str]) -> Option<String> {
        let (_, re) = self.rules.iter().find(|(k, _)| *k == kind)?;
        let name = names.iter().find(|n| re.is_match(n))?;
        Some(format!(
            "Injected failure: the name {name} matches the fault rule fail.{kind}={}",
            re.as_str()
        ))
    }
}

/// What the faults decide for one call.
#[derive(Debug, Default)]
pub struct Verdict {
    pub latency: Duration,
    pub error: Option<ApiError>,
}

/// Calls seen per operation, with the injected faults counted separately.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CallCounts {
    /// Every API call received, faulted or not.
    pub calls: BTreeMap<String, u64>,
    /// Calls answered with an injected ThrottlingException.
    pub throttled: BTreeMap<String, u64>,
    /// Calls answered with an injected LimitExceededException.
    pub limited: BTreeMap<String, u64>,
}

/// The live fault state: the spec plus the generator, the countdown and the token bucket.
#[derive(Debug)]
pub struct Faults {
    spec: FaultSpec,
    failures: FailureRules,
    rng: StdRng,
    throttle_left: u64,
    bucket: Option<TokenBucket>,
    pub counts: CallCounts,
}

#[derive(Debug)]
struct TokenBucket {
    rate: f64,
    tokens: f64,
    at: Instant,
}

impl TokenBucket {
    fn new(rate: f64) -> Self {
        Self {
            rate,
            tokens: rate.max(1.0),
            at: Instant::now(),
        }
    }

    fn take(&mut self) -> bool {
        let now = Instant::now();
        let refill = now.duration_since(self.at).as_secs_f64() * self.rate;
        self.tokens = (self.tokens + refill).min(self.rate.max(1.0));
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

impl Faults {
    /// # Errors
    /// The spec's checks ([`FaultSpec::check`]).
    pub fn new(spec: FaultSpec) -> Result<Self, FaultSpecError> {
        spec.check()?;
        let failures = FailureRules::compile(&spec.fail)?;
        let rng = match spec.seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => StdRng::from_os_rng(),
        };
        Ok(Self {
            throttle_left: spec.throttle_next,
            bucket: spec.tps.map(TokenBucket::new),
            spec,
            failures,
            rng,
            counts: CallCounts::default(),
        })
    }

    /// Replaces the spec (counts are kept).
    pub fn replace(&mut self, spec: FaultSpec) -> Result<(), FaultSpecError> {
        let counts = std::mem::take(&mut self.counts);
        *self = Self::new(spec)?;
        self.counts = counts;
        Ok(())
    }

    /// The spec as it stands now (`throttleNext` counts down as calls are throttled).
    pub fn spec(&self) -> FaultSpec {
        FaultSpec {
            throttle_next: self.throttle_left,
            ..self.spec.clone()
        }
    }

    pub fn failures(&self) -> &FailureRules {
        &self.failures
    }

    /// Counts the call and decides its fate. `control_plane` calls are subject to the TPS quota.
    pub fn admit(&mut self, op: &str, control_plane: bool) -> Verdict {
        *self.counts.calls.entry(op.to_string()).or_default() += 1;
        let latency = Duration::from_millis(self.spec.latency_ms);
        let targeted = self.spec.throttle_ops.is_empty() || self.spec.throttle_ops.iter().any(|o| o == op);
        let throttle = if targeted && self.throttle_left > 0 {
            self.throttle_left -= 1;
            Some("Rate exceeded (injected: throttle-next)")
        } else if control_plane && self.bucket.as_mut().is_some_and(|b| !b.take()) {
            Some("Rate exceeded (injected: the control-plane TPS quota)")
        } else if targeted && self.spec.throttle_rate > 0.0 && self.rng.random_bool(self.spec.throttle_rate) {
            Some("Rate exceeded (injected: throttle rate)")
        } else {
            None
        };
        if let Some(message) = throttle {
            *self.counts.throttled.entry(op.to_string()).or_default() += 1;
            return Verdict {
                latency,
                error: Some(ApiError::new(ErrorCode::Throttling, message)),
            };
        }
        if self.spec.limit_exceeded.iter().any(|o| o == op) {
            *self.counts.limited.entry(op.to_string()).or_default() += 1;
            return Verdict {
                latency,
                error: Some(ApiError::limit(format!(
                    "The account has exceeded a limit for {op} (injected)"
                ))),
            };
        }
        Verdict { latency, error: None }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_entry() {
        let spec = FaultSpec::parse(
            "seed=7; throttle=0.5; throttle-next=2; throttle-ops=CreateCampaign,DescribeCampaign; tps=3; \
             limit=CreateSolutionVersion|CreateCampaign; fail.solution-version=^bad-(a|b),x; latency=25ms",
        )
        .expect("valid");
        assert_eq!(spec.seed, Some(7));
        assert_eq!(spec.throttle_rate, 0.5);
        assert_eq!(spec.throttle_next, 2);
        assert_eq!(spec.throttle_ops, vec!["CreateCampaign", "DescribeCampaign"]);
        assert_eq!(spec.tps, Some(3.0));
        assert_eq!(
            spec.limit_exceeded,
            vec!["CreateSolutionVersion", "CreateCampaign"]
        );
        assert_eq!(spec.fail[&Kind::SolutionVersion], "^bad-(a|b),x");
        assert_eq!(spec.latency_ms, 25);
        assert_eq!(FaultSpec::parse("").expect("empty"), FaultSpec::default());
    }

    #[test]
    fn rejects_bad_entries() {
        for bad in [
            "throttle",
            "throttle=2",
            "throttle=x",
            "throttle-next=-1",
            "tps=0",
            "latency=fast",
            "fail.widget=x",
            "fail.schema=x",
            "fail.campaign=(",
            "explode=1",
        ] {
            assert!(FaultSpec::parse(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn the_json_form_round_trips() {
        let spec = FaultSpec::parse("seed=1;throttle-next=3;fail.campaign=^x").expect("valid");
        let json = serde_json::to_string(&spec).expect("serialises");
        assert!(json.contains("\"throttleNext\":3"), "{json}");
        assert_eq!(serde_json::from_str::<FaultSpec>(&json).expect("parses"), spec);
        assert!(serde_json::from_str::<FaultSpec>("{\"bogus\":1}").is_err());
        let schema_rule: FaultSpec = serde_json::from_str(r#"{"fail":{"schema":"x"}}"#).expect("parses");
        assert!(
            Faults::new(schema_rule).is_err(),
            "the JSON form is checked the same way"
        );
    }

    #[test]
    fn throttle_next_is_exact_and_scoped() {
        let mut f =
            Faults::new(FaultSpec::parse("throttle-next=2;throttle-ops=A").expect("valid")).expect("ok");
        assert!(f.admit("B", true).error.is_none());
        assert_eq!(
            f.admit("A", true).error.expect("throttled").code,
            ErrorCode::Throttling
        );
        assert!(f.admit("A", true).error.is_some());
        assert!(f.admit("A", true).error.is_none());
        assert_eq!(f.counts.calls["A"], 3);
        assert_eq!(f.counts.throttled["A"], 2);
        assert_eq!(f.spec().throttle_next, 0);
    }

    #[test]
    fn seeded_rates_are_reproducible() {
        let run = || {
            let mut f = Faults::new(FaultSpec::parse("seed=42;throttle=0.5").expect("valid")).expect("ok");
            (0..64)
                .map(|_| f.admit("X", false).error.is_some())
                .collect::<Vec<_>>()
        };
        let a = run();
        assert_eq!(a, run());
        assert!(a.iter().any(|t| *t) && a.iter().any(|t| !*t));
    }

    #[test]
    fn the_tps_quota_applies_to_the_control_plane_only() {
        let mut f = Faults::new(FaultSpec::parse("tps=2").expect("valid")).expect("ok");
        // Calls in one burst: the bucket holds 2 tokens and refills far slower than a loop runs.
        let throttled = (0..10)
            .filter(|_| f.admit("DescribeCampaign", true).error.is_some())
            .count();
        assert!(throttled >= 7, "{throttled} of 10 throttled");
        assert!(f.admit("GetRecommendations", false).error.is_none());
    }

    #[test]
    fn forced_limits_and_failures() {
        let mut f = Faults::new(FaultSpec::parse("limit=CreateCampaign;fail.campaign=^bad").expect("valid"))
            .expect("ok");
        assert_eq!(
            f.admit("CreateCampaign", true).error.expect("limited").code,
            ErrorCode::LimitExceeded
        );
        assert_eq!(f.counts.limited["CreateCampaign"], 1);
        let rules = f.failures();
        assert!(rules.failure_for(Kind::Campaign, &["bad-one"]).is_some());
        assert!(rules.failure_for(Kind::Campaign, &["good"]).is_none());
        assert!(rules.failure_for(Kind::Solution, &["bad-one"]).is_none());
        assert!(rules.failure_for(Kind::Campaign, &["good", "bad"]).is_some());
    }
}
